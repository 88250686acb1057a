//! Running `kafka-observer observe` as a child process in tests, and reading its /metrics.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An observer process; SIGTERM and wait on drop.
pub struct ObserverProc {
    child: Child,
    pub log: PathBuf,
    pub metrics: Option<String>,
}

impl ObserverProc {
    /// Starts `observe` with `args` and `env` (broker and Code Engine variables are cleared
    /// first), logging to `dir/observer.log`, and waits for its /metrics address.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> ObserverProc {
        Self::start_exe(&super::command::exe(), dir, args, env)
    }

    /// Like `start`, with the program `exe` (a benchmark's baseline build).
    pub fn start_exe(
        exe: &std::ffi::OsStr,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ObserverProc {
        let log = dir.join("observer.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd =
            super::command::command_exe(exe, &["observe", "--metrics-addr", "127.0.0.1:0"]);
        cmd.args(args);
        // Tests count cycles: unless a test says otherwise, idle cycles run at the same pace.
        if !args.contains(&"--idle-ticker-ms") {
            if let Some(i) = args.iter().position(|a| *a == "--ticker-ms") {
                cmd.args(["--idle-ticker-ms", args[i + 1]]);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        cmd.env("LOG_LEVEL", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start observer");
        let mut me = ObserverProc {
            child,
            log,
            metrics: None,
        };
        let url = me.wait_log(60, "metrics address", |text| {
            let i = text.find("http://127.0.0.1:")?;
            let rest = &text[i + 7..];
            let end = rest.find("/metrics")?;
            Some(rest[..end].to_string())
        });
        me.metrics = Some(url);
        me
    }

    /// The observer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls the log until `f` finds something; panics with the log after `secs`.
    pub fn wait_log<T>(&mut self, secs: u64, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.log_text();
            if let Some(v) = f(&text) {
                return v;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("observer exited ({status}) while waiting for {what}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; observer log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// GET a path of the metrics server: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.metrics.as_deref().unwrap(), path)
    }

    /// The value of one metric line (exact name with labels), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        metric_value(&body, series)
    }

    /// Waits until `series` has a value `ok` accepts, and returns it; on timeout fails with
    /// `what`, the metrics and the log.
    pub fn wait_metric(
        &self,
        secs: u64,
        series: &str,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (_, body) = self.get("/metrics");
            if let Some(v) = metric_value(&body, series).filter(|v| ok(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what} ({series}):\n{body}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `kafka_observer_cycles_total` grew by `n` from now.
    pub fn wait_cycles(&mut self, n: u64) {
        let start = self.metric("kafka_observer_cycles_total").unwrap_or(0.0) as u64;
        let deadline = Instant::now() + Duration::from_secs(120);
        while (self.metric("kafka_observer_cycles_total").unwrap_or(0.0) as u64) < start + n {
            assert!(
                Instant::now() < deadline,
                "observer does not cycle:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown of any kind, as when a node dies; then reaps it.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (killed after 30 s).
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ObserverProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn metric_value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let rest = rest.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
