//! `kafka-observer consume` against the real broker: every record handled, commits after
//! handling, idle exit, signals, shared groups with Java consumers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafka-observer"));
    cmd.arg("consume")
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    for v in [
        "MESSAGEHUB_KAFKA_BROKERS_SASL",
        "MESSAGEHUB_USER",
        "MESSAGEHUB_PASSWORD",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_TLS",
        "KAFKA_CA_FILE",
        "KAFKA_TOPIC",
        "CONSUMER_GROUP",
        "IDLE_TIMEOUT",
        "RUST_LOG",
        "CE_JOBRUN",
        "JOB_INDEX",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("LOG_LEVEL", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, log)
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(harness::unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs to completion with a deadline; returns (output status, log text).
fn run_to_end(mut cmd: Command, log: &Path, secs: u64) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let status = wait_child(&mut child, secs);
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

pub fn wait_child(child: &mut Child, secs: u64) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("consumer did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

fn committed(group: &str) -> BTreeMap<i32, Option<i64>> {
    harness::broker()
        .describe_group(group)
        .into_iter()
        .map(|r| (r.partition, r.current_offset))
        .collect()
}

/// Partition → high watermark, read with `lag --json` for a group that never committed.
pub fn high_watermarks(topic: &str) -> BTreeMap<i32, i64> {
    let b = harness::broker();
    let out = crate::lag_cli::ko(&[
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

fn perf_produce(topic: &str, records: u64, codec: &str) -> Output {
    let b = harness::broker();
    let props = [
        format!("bootstrap.servers={}", b.plaintext()),
        format!("compression.type={codec}"),
        "linger.ms=20".to_string(),
        "batch.size=16384".to_string(),
    ];
    let n = records.to_string();
    let mut args = vec![
        "--topic",
        topic,
        "--num-records",
        &n,
        "--record-size",
        "200",
        "--throughput",
        "-1",
        "--producer-props",
    ];
    args.extend(props.iter().map(String::as_str));
    let out = b.java("org.apache.kafka.tools.ProducerPerformance", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn every_codec_every_record_handled_once_and_committed() {
    let b = harness::broker();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = harness::unique(&format!("codec-{codec}"));
        b.create_topic(&topic, 3);
        perf_produce(&topic, 3000, codec);
        let ends = high_watermarks(&topic);
        assert_eq!(ends.values().sum::<i64>(), 3000, "{codec}: {ends:?}");
        let dir = temp_dir("consume");
        let out = dir.join("handled.jsonl");
        let group = harness::unique("cg");
        let exec = format!("cat >> {}", out.display());
        let (cmd, log) = consume_cmd(
            &dir,
            "consumer",
            &[
                "--bootstrap",
                &b.plaintext(),
                "--topic",
                &topic,
                "--group",
                &group,
                "--idle-timeout",
                "3",
                "--exec",
                &exec,
            ],
            &[],
        );
        let (status, text) = run_to_end(cmd, &log, 120);
        assert_eq!(status, Some(0), "{codec}: {text}");
        let seen = handled(&out);
        for (p, end) in &ends {
            for o in 0..*end {
                assert_eq!(
                    seen.get(&(*p as i64, o)),
                    Some(&1),
                    "{codec}: partition {p} offset {o}"
                );
            }
        }
        assert_eq!(seen.len(), 3000, "{codec}");
        let c = committed(&group);
        for (p, end) in &ends {
            assert_eq!(c.get(p), Some(&Some(*end)), "{codec}: committed {c:?}");
        }
    }
}

#[test]
fn env_variables_of_the_sample_and_idle_exit() {
    let b = harness::broker();
    let topic = harness::unique("envt");
    b.create_topic(&topic, 2);
    b.produce(&topic, 1, 4);
    let dir = temp_dir("consume-env");
    let group = harness::unique("envg");
    let bootstrap = b.plaintext();
    let (cmd, log) = consume_cmd(
        &dir,
        "consumer",
        &[],
        &[
            ("MESSAGEHUB_KAFKA_BROKERS_SASL", &bootstrap),
            ("KAFKA_TLS", "false"),
            ("KAFKA_TOPIC", &topic),
            ("CONSUMER_GROUP", &group),
            ("IDLE_TIMEOUT", "4"),
        ],
    );
    let start = Instant::now();
    let (status, text) = run_to_end(cmd, &log, 120);
    let took = start.elapsed();
    assert_eq!(status, Some(0), "{text}");
    assert!(
        took >= Duration::from_secs(4),
        "exited before the idle timeout: {took:?}\n{text}"
    );
    // The default handler logs every record, like the sample.
    assert_eq!(text.matches("value-").count(), 4, "{text}");
    assert!(text.contains("left the group"), "{text}");
    assert_eq!(committed(&group).get(&1), Some(&Some(4)));
}

#[test]
fn sigterm_commits_and_exits_0() {
    let b = harness::broker();
    let topic = harness::unique("term");
    b.create_topic(&topic, 1);
    b.produce(&topic, 0, 10);
    let dir = temp_dir("consume-term");
    let group = harness::unique("termg");
    let out = dir.join("handled.jsonl");
    let exec = format!("cat >> {}", out.display());
    let (mut cmd, log) = consume_cmd(
        &dir,
        "consumer",
        &[
            "--bootstrap",
            &b.plaintext(),
            "--topic",
            &topic,
            "--group",
            &group,
            "--idle-timeout",
            "600",
            "--exec",
            &exec,
            "--commit-interval-ms",
            "600000",
        ],
        &[],
    );
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while handled(&out).len() < 10 {
        assert!(
            Instant::now() < deadline,
            "records never handled: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_child(&mut child, 60);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    // The commit interval is 10 minutes: only the shutdown commit can have stored offset 10.
    assert_eq!(committed(&group).get(&0), Some(&Some(10)), "{text}");
}
