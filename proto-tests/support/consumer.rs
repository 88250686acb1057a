//! `kafka-observer consume` in tests: the command (clean environment, log to a file), the
//! `--exec 'cat >> FILE'` consumer most tests use, what its handler wrote, and waiting for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness;

/// A `consume` child with a clean environment, logging to a file.
pub fn consume_cmd(
    dir: &Path,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Command, PathBuf) {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = super::command(&["consume"]);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    cmd.env("LOG_LEVEL", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, log)
}

/// `consume --exec 'cat >> OUT'` on the plaintext listener with a 3 s idle timeout, plus
/// `extra` flags: (command, log, OUT).
pub fn exec_consumer(
    dir: &Path,
    topic: &str,
    group: &str,
    extra: &[&str],
) -> (Command, PathBuf, PathBuf) {
    let out = dir.join(format!("{group}.jsonl"));
    let exec = format!("cat >> {}", out.display());
    let bootstrap = harness::broker().plaintext();
    let mut args = vec![
        "--bootstrap",
        &bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--idle-timeout",
        "3",
        "--exec",
        &exec,
    ];
    args.extend_from_slice(extra);
    let (cmd, log) = consume_cmd(dir, group, &args, &[]);
    (cmd, log, out)
}

/// Waits up to `secs` for a consumer to exit: its exit code; kills it and panics on timeout.
pub fn wait_child(child: &mut Child, secs: u64) -> Option<i32> {
    match super::wait::exit_within(child, secs) {
        Some(status) => status.code(),
        None => panic!("consumer did not exit within {secs} s"),
    }
}

/// Waits until `out` holds at least `n` handled records; panics with the consumer's log.
pub fn wait_handled(out: &Path, n: usize, log: &Path, secs: u64) {
    super::eventually(secs, &format!("{n} records handled"), || {
        if handled(out).len() >= n {
            Ok(())
        } else {
            Err(std::fs::read_to_string(log).unwrap_or_default())
        }
    });
}

/// The JSON lines an `--exec 'cat >> FILE'` handler wrote: (partition, offset) → times seen.
pub fn handled(file: &Path) -> BTreeMap<(i64, i64), usize> {
    let mut seen = BTreeMap::new();
    for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        *seen
            .entry((
                v["partition"].as_i64().unwrap(),
                v["offset"].as_i64().unwrap(),
            ))
            .or_default() += 1;
    }
    seen
}

/// Partition → high watermark, read with `lag --json` for a group that never committed.
pub fn high_watermarks(topic: &str) -> BTreeMap<i32, i64> {
    let b = harness::broker();
    let out = super::run(&[
        "lag",
        "--json",
        "--bootstrap",
        &b.plaintext(),
        "--group",
        "nobody",
        "--topic",
        topic,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["groups"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_i64().unwrap() as i32,
                p["high_watermark"].as_i64().unwrap(),
            )
        })
        .collect()
}
