//! Limits that protect the observer from its surroundings, on the real binary and broker:
//! slow HTTP clients and exhausted descriptors must not silence `/healthz` or spin the CPU,
//! and consumers started by the local launcher must never outlive the observer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness;
use crate::support::eventually_every;
use crate::support::observer::local_observer_in;

/// A consumer stand-in that records `PID RUN INDEX` and sleeps (at most two minutes, so that
/// a failing test cannot leave it behind for long).
fn sleeper(dir: &Path) -> PathBuf {
    let script = dir.join("consumer.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$$ $CE_JOBRUN $JOB_INDEX\" >> {}/starts\ni=0\nwhile [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n",
            dir.display()
        ),
    )
    .unwrap();
    let _ = std::process::Command::new("chmod")
        .args(["+x", script.to_str().unwrap()])
        .status();
    script
}

/// (pid, run) of every start so far.
fn starts(dir: &Path) -> Vec<(u32, String)> {
    std::fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?.parse().ok()?, f.next()?.to_string()))
        })
        .collect()
}

/// Whether `pid` still runs (a zombie waiting for its new parent to reap it does not).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A topic of 2 partitions and a mapping for one job that never commits; with `backlog`,
/// both partitions lag.
fn mapping(dir: &Path, backlog: bool) -> PathBuf {
    let b = harness::broker();
    let topic = harness::unique("orphans");
    b.create_topic(&topic, 2);
    if backlog {
        b.produce(&topic, 0, 3);
        b.produce(&topic, 1, 3);
    }
    let job = harness::unique("orphan-job");
    let group = harness::unique("orphan-group");
    let file = dir.join("kafkadata");
    std::fs::write(
        &file,
        format!("{topic}:\n  jobs:\n    - name: {job}\n      consumer_group: {group}\n"),
    )
    .unwrap();
    file
}

#[test]
fn local_consumers_die_with_a_killed_observer_and_runs_are_never_renamed_alike() {
    let dir = std::env::temp_dir().join(harness::unique("orphans"));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = sleeper(&dir);
    let kafkadata = mapping(&dir, true);

    let mut first = local_observer_in(
        &dir,
        &kafkadata,
        &["--consumer-exe", exe.to_str().unwrap()],
        &[],
    );
    eventually_every(
        Duration::from_millis(50),
        60,
        "the first observer to start 2 consumers",
        || starts(&dir).len() >= 2,
    );
    let before = starts(&dir);
    first.kill_9();
    eventually_every(
        Duration::from_millis(50),
        30,
        "consumers of the killed observer to end",
        || before.iter().all(|(pid, _)| !running(*pid)),
    );

    // A new observer sees the same lag and starts consumers again, under new run names.
    let mut second = local_observer_in(
        &dir,
        &kafkadata,
        &["--consumer-exe", exe.to_str().unwrap()],
        &[],
    );
    eventually_every(
        Duration::from_millis(50),
        60,
        "the second observer to start consumers",
        || starts(&dir).len() >= before.len() + 2,
    );
    let after: Vec<(u32, String)> = starts(&dir).split_off(before.len());
    for (_, run) in &after {
        assert!(
            before.iter().all(|(_, r)| r != run),
            "run name {run} was used before the restart: {before:?}"
        );
    }
    // An orderly stop ends them too.
    assert_eq!(second.stop(), Some(0), "{}", second.log_text());
    eventually_every(
        Duration::from_millis(50),
        30,
        "consumers of the stopped observer to end",
        || after.iter().all(|(pid, _)| !running(*pid)),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /healthz` on a fresh connection: (status, seconds it took); retried until `secs`.
fn healthz_within(addr: &str, secs: u64) -> (u16, f64) {
    let start = Instant::now();
    let pause = Duration::from_millis(50);
    eventually_every(pause, secs, "/healthz to answer", || {
        let attempt = (|| -> std::io::Result<u16> {
            let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0))
        })();
        match attempt {
            Ok(status) if status != 0 => Ok((status, start.elapsed().as_secs_f64())),
            other => Err(format!("{other:?}")),
        }
    })
}

/// CPU seconds the process has used (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// Opens `n` connections that each send half a request head and then wait.
fn slow_clients(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s =
                TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500))
                    .ok()?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n").ok()?;
            Some(s)
        })
        .collect()
}

#[test]
fn healthz_answers_while_hundreds_of_slow_clients_hold_connections_or_descriptors_run_out() {
    let dir = std::env::temp_dir().join(harness::unique("slow-http"));
    std::fs::create_dir_all(&dir).unwrap();
    // No backlog: nothing is launched, so only the HTTP clients compete for descriptors.
    let kafkadata = mapping(&dir, false);
    let obs = local_observer_in(&dir, &kafkadata, &["--consumer-exe", "/bin/true"], &[]);
    let addr = obs.metrics.clone().unwrap();
    eventually_every(
        Duration::from_millis(50),
        60,
        "the observer to be healthy",
        || healthz_within(&addr, 60).0 == 200,
    );

    // 1. Plenty of descriptors: 300 slow clients against a cap of 128.
    let held = slow_clients(&addr, 300);
    let (status, took) = healthz_within(&addr, 30);
    assert_eq!(status, 200);
    eprintln!(
        "/healthz with {} slow clients held: {took:.3} s",
        held.len()
    );
    drop(held);

    // 2. Descriptors run out: the observer may open only 64 files, fewer than its cap.
    let pid = rustix::process::Pid::from_raw(obs.pid() as i32).unwrap();
    rustix::process::prlimit(
        Some(pid),
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(64),
            maximum: Some(64),
        },
    )
    .expect("lower the observer's descriptor limit");
    let cpu_before = cpu_seconds(obs.pid());
    let wall = Instant::now();
    let held = slow_clients(&addr, 300);
    // It answers; 200 unless running out of descriptors also failed a cycle.
    let (status, took) = healthz_within(&addr, 60);
    std::thread::sleep(Duration::from_secs(2));
    let cpu = (cpu_seconds(obs.pid()) - cpu_before) / wall.elapsed().as_secs_f64();
    eprintln!(
        "/healthz with {} slow clients and 64 descriptors: HTTP {status} in {took:.3} s; observer CPU {:.0} %",
        held.len(),
        cpu * 100.0
    );
    // A busy loop would use a whole core; a paused accept loop almost nothing.
    assert!(
        cpu < 0.5,
        "observer CPU {:.0} % while out of descriptors",
        cpu * 100.0
    );
    let log = obs.log_text();
    let accept_lines = log.matches("cannot accept a connection").count();
    assert!(accept_lines >= 1, "no accept failure logged:\n{log}");
    let secs = wall.elapsed().as_secs() + 1;
    assert!(
        accept_lines as u64 <= secs / 10 + 2,
        "{accept_lines} accept lines in {secs} s: not rate-limited"
    );
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}
