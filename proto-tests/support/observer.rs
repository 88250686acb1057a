//! Running `kafka-observer observe` as a child process in tests, and reading its /metrics:
//! [`ObserverProc`]; the launches every suite uses ([`local_observer`], [`ce_observer`]); the
//! stand-in consumer ([`StandIn`]) that makes "active" the test's decision; the sample mapping.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fake_ce::FakeCloud;
use crate::harness;

/// A stand-in consumer: logs `CE_JOB CE_JOBRUN JOB_INDEX JOB_ARRAY_SIZE KAFKA_TOPIC CONSUMER_GROUP
/// IDLE_TIMEOUT` (`-` when unset) and lives until `release-<run>` (or `release-all`) exists in its directory.
pub struct StandIn {
    pub dir: PathBuf,
}

impl StandIn {
    pub fn new() -> StandIn {
        let dir = super::temp_dir("standin");
        let script = dir.join("consumer.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$CE_JOB $CE_JOBRUN $JOB_INDEX $JOB_ARRAY_SIZE $KAFKA_TOPIC $CONSUMER_GROUP ${{IDLE_TIMEOUT:--}}\" >> {dir}/starts\n\
                 while [ ! -e {dir}/release-$CE_JOBRUN ] && [ ! -e {dir}/release-all ]; do sleep 0.05; done\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let _ = std::process::Command::new("chmod")
            .args(["+x", script.to_str().unwrap()])
            .status();
        StandIn { dir }
    }

    pub fn exe(&self) -> String {
        self.dir.join("consumer.sh").display().to_string()
    }

    /// Every start so far: (job, run, index, size, topics, group, idle timeout or `-`).
    pub fn starts(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.dir.join("starts"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').map(String::from).collect())
            .collect()
    }

    /// Runs per job: job → [(run, instances started)].
    pub fn runs(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for s in self.starts() {
            *out.entry(s[0].clone())
                .or_default()
                .entry(s[1].clone())
                .or_default() += 1;
        }
        out
    }

    pub fn release(&self, run: &str) {
        std::fs::write(self.dir.join(format!("release-{run}")), "").unwrap();
    }

    pub fn release_all(&self) {
        std::fs::write(self.dir.join("release-all"), "").unwrap();
    }

    /// Waits until `f` finds something; on timeout the panic lists every start.
    pub fn wait<T>(&self, secs: u64, what: &str, f: impl Fn(&Self) -> Option<T>) -> T {
        super::wait::eventually_every(Duration::from_millis(100), secs, what, || {
            f(self).ok_or_else(|| format!("starts: {:?}", self.starts()))
        })
    }
}

/// The sample mapping with unique topic, job and group names: (file, pay topic, ship topic,
/// [pay job, foo job, ship job], [groups]).
pub struct Mapping {
    pub file: PathBuf,
    pub pay: String,
    pub ship: String,
    pub jobs: [String; 3],
    pub groups: [String; 3],
}

/// A mapping is where its file is, for the launchers.
impl AsRef<Path> for Mapping {
    fn as_ref(&self) -> &Path {
        &self.file
    }
}

pub fn sample_mapping(dir: &Path) -> Mapping {
    let b = harness::broker();
    let pay = harness::unique("payments");
    let ship = harness::unique("shipping");
    b.create_topic(&pay, 4);
    b.create_topic(&ship, 3);
    let jobs = [
        harness::unique("payments-consumer"),
        harness::unique("foobar-consumer"),
        harness::unique("shipping-consumer"),
    ];
    let groups = [
        harness::unique("payments-consumer-group"),
        harness::unique("foobar-consumer-group"),
        harness::unique("shipping-consumer-group"),
    ];
    let file = dir.join("kafkadata");
    std::fs::write(
        &file,
        format!(
            "{pay}:\n  partitions: 4\n  jobs:\n    - name: {}\n      consumer_group: {}\n    - name: {}\n      consumer_group: {}\n\
             {ship}:\n  partitions: 3\n  jobs:\n    - name: {}\n      consumer_group: {}\n",
            jobs[0], groups[0], jobs[1], groups[1], jobs[2], groups[2]
        ),
    )
    .unwrap();
    Mapping {
        file,
        pay,
        ship,
        jobs,
        groups,
    }
}

/// `observe --launcher local --kafkadata FILE EXTRA` with `env`, logging into `dir`: on the
/// shared broker's plaintext listener and with a 100 ms ticker unless EXTRA names `--bootstrap`
/// or `--ticker-ms`; the consumers it starts are this build's `consume` unless EXTRA names
/// `--consumer-exe`.
pub fn local_observer_in(
    dir: &Path,
    kafkadata: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> ObserverProc {
    let bootstrap = harness::broker().plaintext();
    let mut args = vec![
        "--launcher",
        "local",
        "--kafkadata",
        kafkadata.to_str().unwrap(),
    ];
    if !extra.contains(&"--bootstrap") {
        args.extend(["--bootstrap", &bootstrap]);
    }
    if !extra.contains(&"--ticker-ms") {
        args.extend(["--ticker-ms", "100"]);
    }
    args.extend_from_slice(extra);
    ObserverProc::start(dir, &args, env)
}

/// [`local_observer_in`] the stand-in's directory, starting the stand-in consumer.
pub fn local_observer(
    standin: &StandIn,
    kafkadata: impl AsRef<Path>,
    extra: &[&str],
) -> ObserverProc {
    let exe = standin.exe();
    let args = [&["--consumer-exe", exe.as_str()], extra].concat();
    local_observer_in(&standin.dir, kafkadata.as_ref(), &args, &[])
}

/// `observe` with the Code Engine launcher against the fake IBM Cloud `cloud`, logging into
/// `dir`: the shared broker's plaintext listener, a 300 ms ticker unless EXTRA names
/// `--ticker-ms`, the fake's API key, IAM URL, API URL and project.
pub fn ce_observer(
    cloud: &FakeCloud,
    kafkadata: impl AsRef<Path>,
    dir: &Path,
    extra: &[&str],
) -> ObserverProc {
    ce_observer_env(cloud, kafkadata, dir, extra, &[])
}

/// Like [`ce_observer`], with more (or replaced) environment variables.
pub fn ce_observer_env(
    cloud: &FakeCloud,
    kafkadata: impl AsRef<Path>,
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> ObserverProc {
    let bootstrap = harness::broker().plaintext();
    let iam = cloud.iam_url();
    let api = cloud.url();
    let mut args = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--kafkadata",
        kafkadata.as_ref().to_str().unwrap(),
    ];
    if !extra.contains(&"--ticker-ms") {
        args.extend(["--ticker-ms", "300"]);
    }
    args.extend_from_slice(extra);
    let mut vars = vec![
        ("IAM_API_KEY", FakeCloud::API_KEY),
        ("IAM_URL", iam.as_str()),
        ("CE_API_BASE_URL", api.as_str()),
        ("CE_PROJECT_ID", FakeCloud::PROJECT_ID),
    ];
    for (k, v) in env {
        vars.retain(|(kk, _)| kk != k);
        vars.push((k, v));
    }
    ObserverProc::start(dir, &args, &vars)
}

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

    /// The observer's child processes that still exist: (pid, state letter of
    /// `/proc/<pid>/stat`, `Z` for a zombie nobody reaped), from the `ppid` of every process.
    pub fn children(&self) -> Vec<(u32, char)> {
        let me = self.pid();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue; // gone meanwhile
            };
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next().and_then(|s| s.chars().next());
            let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
            if let (Some(state), Some(ppid)) = (state, ppid) {
                if ppid == me {
                    out.push((pid, state));
                }
            }
        }
        out
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

    /// Polls the log until `f` finds something; panics with the log after `secs`, or at once
    /// when the observer exits.
    pub fn wait_log<T>(&mut self, secs: u64, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        let pause = Duration::from_millis(100);
        super::wait::eventually_every(pause, secs, what, || {
            let text = self.log_text();
            if let Some(v) = f(&text) {
                return Ok(v);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("observer exited ({status}) while waiting for {what}:\n{text}");
            }
            Err(format!("observer log:\n{text}"))
        })
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
        let pause = Duration::from_millis(50);
        super::wait::eventually_every(pause, secs, &format!("{what} ({series})"), || {
            let (_, body) = self.get("/metrics");
            metric_value(&body, series)
                .filter(|v| ok(*v))
                .ok_or_else(|| format!("{body}\n{}", self.log_text()))
        })
    }

    /// Waits until `kafka_observer_cycles_total` grew by `n` from now.
    pub fn wait_cycles(&mut self, n: u64) {
        let cycles = |me: &Self| me.metric("kafka_observer_cycles_total").unwrap_or(0.0) as u64;
        let start = cycles(self);
        let pause = Duration::from_millis(50);
        super::wait::eventually_every(pause, 120, &format!("{n} more cycles"), || {
            if cycles(self) >= start + n {
                Ok(())
            } else {
                Err(format!("observer does not cycle:\n{}", self.log_text()))
            }
        });
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
        super::wait::exit_within(&mut self.child, 30).and_then(|s| s.code())
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
