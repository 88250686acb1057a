//! `kafka-observer consume` against the real broker: every record handled, commits after
//! handling, idle exit, signals, shared groups with Java consumers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness;
use crate::support::consumer::{consume_cmd, handled, high_watermarks, wait_child, wait_handled};
use crate::support::{eventually_every, temp_dir};

/// Runs to completion with a deadline; returns (output status, log text).
fn run_to_end(mut cmd: Command, log: &Path, secs: u64) -> (Option<i32>, String) {
    let mut child = cmd.spawn().unwrap();
    let status = wait_child(&mut child, secs);
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

fn committed(group: &str) -> BTreeMap<i32, Option<i64>> {
    harness::broker()
        .describe_group(group)
        .into_iter()
        .map(|r| (r.partition, r.current_offset))
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
    wait_handled(&out, 10, &log, 60);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_child(&mut child, 60);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    // The commit interval is 10 minutes: only the shutdown commit can have stored offset 10.
    assert_eq!(committed(&group).get(&0), Some(&Some(10)), "{text}");
}

#[test]
fn kill_9_mid_batch_loses_nothing_and_repeats_only_the_uncommitted_tail() {
    let b = harness::broker();
    let topic = harness::unique("kill9");
    b.create_topic(&topic, 1);
    b.produce(&topic, 0, 300);
    let dir = temp_dir("consume-kill");
    let group = harness::unique("killg");
    let out = dir.join("handled.jsonl");
    // Batches of 10, each taking 50 ms: 30 batches, ~1.5 s; commits every 200 ms.
    let exec = format!("cat >> {}; sleep 0.05", out.display());
    let args = [
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
        "--batch-size",
        "10",
        "--commit-interval-ms",
        "200",
    ];
    let (mut cmd, log) = consume_cmd(&dir, "first", &args, &[]);
    let mut child = cmd.spawn().unwrap();
    wait_handled(&out, 100, &log, 60);
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let before = handled(&out).len();
    assert!(
        before < 300,
        "finished before the kill; make the handler slower"
    );
    let (cmd, log) = consume_cmd(&dir, "second", &args, &[]);
    let (status, text) = run_to_end(cmd, &log, 120);
    assert_eq!(status, Some(0), "{text}");
    let seen = handled(&out);
    for o in 0..300 {
        assert!(seen.contains_key(&(0, o)), "offset {o} lost");
    }
    // Duplicates: one contiguous block, the tail that was handled but not yet committed.
    let dups: Vec<i64> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((_, o), _)| *o)
        .collect();
    assert!(seen.values().all(|n| *n <= 2), "handled more than twice");
    if let (Some(first), Some(last)) = (dups.first(), dups.last()) {
        assert_eq!(
            dups.len() as i64,
            last - first + 1,
            "duplicates not contiguous: {dups:?}"
        );
        assert!(
            *last < before as i64,
            "duplicates past what the first run handled"
        );
    }
    eprintln!(
        "kill -9 after {before} records: {} duplicates on restart",
        dups.len()
    );
    assert_eq!(committed(&group).get(&0), Some(&Some(300)));
}

#[test]
fn a_failing_exec_is_retried_and_nothing_past_it_is_committed() {
    let b = harness::broker();
    let topic = harness::unique("fail");
    b.create_topic(&topic, 1);
    b.produce(&topic, 0, 5);
    let dir = temp_dir("consume-fail");
    let group = harness::unique("failg");
    let calls = dir.join("calls");
    let marker = dir.join("healthy");
    let exec = format!(
        "cat > /dev/null; echo call >> {}; test -e {}",
        calls.display(),
        marker.display()
    );
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
            "3",
            "--exec",
            &exec,
            "--commit-interval-ms",
            "100",
        ],
        &[],
    );
    let mut child = cmd.spawn().unwrap();
    let count = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    eventually_every(Duration::from_millis(50), 60, "three handler calls", || {
        if count(&calls) >= 3 {
            Ok(())
        } else {
            Err(std::fs::read_to_string(&log).unwrap_or_default())
        }
    });
    // Failing for three tries: the group's commit never passed the first record.
    let c = committed(&group).get(&0).cloned().flatten();
    assert!(c.unwrap_or(0) == 0, "committed past a failed record: {c:?}");
    std::fs::write(&marker, "").unwrap();
    let status = wait_child(&mut child, 120);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("handler failed"), "{text}");
    assert_eq!(committed(&group).get(&0), Some(&Some(5)), "{text}");
}

#[test]
fn aborted_transactions_are_never_handled() {
    let b = harness::broker();
    let topic = harness::unique("txc");
    b.create_topic(&topic, 1);
    let ok1 = b.produce_txn(&topic, 0, 3, true);
    let bad = b.produce_txn(&topic, 0, 4, false);
    let ok2 = b.produce_txn(&topic, 0, 2, true);
    let dir = temp_dir("consume-txn");
    for (isolation, want) in [("read_committed", 5), ("read_uncommitted", 9)] {
        let group = harness::unique("txg");
        let out = dir.join(format!("{isolation}.jsonl"));
        let exec = format!("cat >> {}", out.display());
        let (cmd, log) = consume_cmd(
            &dir,
            isolation,
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
                "--isolation",
                isolation,
            ],
            &[],
        );
        let (status, text) = run_to_end(cmd, &log, 120);
        assert_eq!(status, Some(0), "{text}");
        let seen = handled(&out);
        assert_eq!(seen.len(), want, "{isolation}: {seen:?}");
        let offsets: Vec<i64> = seen.keys().map(|(_, o)| *o).collect();
        if isolation == "read_committed" {
            assert!(
                offsets.iter().all(|o| ok1.contains(o) || ok2.contains(o)),
                "{offsets:?}"
            );
            assert!(!offsets.iter().any(|o| bad.contains(o)));
        }
        // Committed past the last marker: lag 0, nothing to wake for.
        assert_eq!(
            committed(&group).get(&0),
            Some(&Some(ok2.end + 1)),
            "{isolation}"
        );
    }
}

/// A minimal HTTP/1.1 server that answers 200 to everything and records request heads.
fn http_sink() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = s2.clone();
            std::thread::spawn(move || {
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                loop {
                    let mut head = String::new();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        head.push_str(&line);
                    }
                    let mut body = vec![0u8; len];
                    let _ = r.read_exact(&mut body);
                    head.push_str(&format!("body:{}\r\n", String::from_utf8_lossy(&body)));
                    seen.lock().unwrap().push(head);
                    let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (format!("http://{addr}/events"), seen)
}

#[test]
fn sink_posts_cloudevents() {
    let b = harness::broker();
    let topic = harness::unique("sink");
    b.create_topic(&topic, 1);
    b.produce(&topic, 0, 3);
    let (url, seen) = http_sink();
    let dir = temp_dir("consume-sink");
    let group = harness::unique("sinkg");
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
            "--sink",
            &url,
        ],
        &[],
    );
    let (status, text) = run_to_end(cmd, &log, 120);
    assert_eq!(status, Some(0), "{text}");
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 3, "{heads:?}");
    for (i, h) in heads.iter().enumerate() {
        let h = h.to_ascii_lowercase();
        assert!(h.starts_with("post /events http/1.1"), "{h}");
        assert!(h.contains("ce-specversion: 1.0"), "{h}");
        assert!(
            h.contains(&format!("ce-id: {}-0-{i}", topic.to_ascii_lowercase())),
            "{h}"
        );
        assert!(h.contains(&format!("ce-offset: {i}")), "{h}");
        assert!(h.contains(&format!("ce-key: key-{i}")), "{h}");
        assert!(h.contains("ce-type: "), "{h}");
        assert!(h.contains("ce-time: "), "{h}");
        assert!(h.contains(&format!("body:value-{i}")), "{h}");
    }
    assert_eq!(committed(&group).get(&0), Some(&Some(3)));
}

#[test]
fn shares_a_group_with_a_java_consumer() {
    use std::io::BufRead;
    let b = harness::broker();
    let topic = harness::unique("mixed");
    b.create_topic(&topic, 6);
    let group = harness::unique("mixedg");
    let dir = temp_dir("consume-mixed");
    // The Java member: VerifiableConsumer, classic protocol, range assignor, JSON events.
    let java_out = dir.join("java.jsonl");
    let mut java = {
        let f = std::fs::File::create(&java_out).unwrap();
        let libs = b.libs_dir().join("*");
        Command::new("java")
            .args(["-Xmx256m", "-cp"])
            .arg(libs)
            .args([
                "org.apache.kafka.tools.VerifiableConsumer",
                "--bootstrap-server",
                &b.plaintext(),
                "--topic",
                &topic,
                "--group-id",
                &group,
                "--verbose",
                "--enable-autocommit",
                "--session-timeout",
                "10000",
            ])
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let ours: Vec<(Child, PathBuf, PathBuf)> = (0..2)
        .map(|i| {
            let out = dir.join(format!("ours{i}.jsonl"));
            let exec = format!("cat >> {}", out.display());
            let (mut cmd, log) = consume_cmd(
                &dir,
                &format!("ours{i}"),
                &[
                    "--bootstrap",
                    &b.plaintext(),
                    "--topic",
                    &topic,
                    "--group",
                    &group,
                    "--idle-timeout",
                    "120",
                    "--exec",
                    &exec,
                    "--session-timeout",
                    "10",
                ],
                &[],
            );
            (cmd.spawn().unwrap(), log, out)
        })
        .collect();
    // (Ours are stopped with SIGTERM at the end, so their idle timeout only has to outlast the
    // Java member's start, which takes many seconds on a loaded machine.)
    // Wait until both of ours hold two partitions each in the same generation: the Java member
    // then holds the other two.
    let last_assignment = |log: &Path| -> Option<(u64, Vec<String>)> {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let line = text.lines().rev().find(|l| l.contains(" assigned "))?;
        let clean: String = line.chars().filter(|c| !c.is_control()).collect();
        let gen = clean
            .split("generation")
            .nth(1)?
            .trim_start_matches(|c: char| !c.is_ascii_digit());
        let gen: u64 = gen
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .ok()?;
        let parts = clean
            .split("partitions")
            .nth(1)?
            .trim_start_matches(|c: char| c == '=' || c == ' ' || !c.is_alphanumeric());
        let parts: Vec<String> = parts
            .split_whitespace()
            .next()?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .to_string()
            })
            .collect();
        Some((gen, parts))
    };
    let pause = Duration::from_millis(200);
    let (mine_a, mine_b) = eventually_every(pause, 120, "a stable 3-member assignment", || {
        let a = last_assignment(&ours[0].1);
        let c = last_assignment(&ours[1].1);
        if let (Some((ga, pa)), Some((gb, pb))) = (a, c) {
            if ga == gb && pa.len() == 2 && pb.len() == 2 {
                return Ok((pa, pb));
            }
        }
        Err(format!(
            "{}\n{}",
            std::fs::read_to_string(&ours[0].1).unwrap_or_default(),
            std::fs::read_to_string(&ours[1].1).unwrap_or_default()
        ))
    });
    // Now the records: 50 per partition.
    b.produce_spread(
        &topic,
        &[(0, 50), (1, 50), (2, 50), (3, 50), (4, 50), (5, 50)],
    );
    // Who handled what: partition → set of handlers.
    let java_records = |p: &Path| -> Vec<(i64, i64)> {
        let f = std::fs::File::open(p).unwrap();
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter(|v| v["name"] == "record_data")
            .map(|v| {
                (
                    v["partition"].as_i64().unwrap(),
                    v["offset"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    eventually_every(
        Duration::from_millis(200),
        120,
        "300 records handled",
        || {
            let total = java_records(&java_out).len()
                + handled(&ours[0].2).len()
                + handled(&ours[1].2).len();
            if total >= 300 {
                Ok(())
            } else {
                Err(format!("only {total} of 300 records handled"))
            }
        },
    );
    let mut by_partition: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    let mut all: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for (who, recs) in [
        ("java", java_records(&java_out)),
        ("ours0", handled(&ours[0].2).into_keys().collect()),
        ("ours1", handled(&ours[1].2).into_keys().collect()),
    ] {
        for (p, o) in recs {
            let v = by_partition.entry(p).or_default();
            if !v.contains(&who) {
                v.push(who);
            }
            *all.entry((p, o)).or_default() += 1;
        }
    }
    assert_eq!(all.len(), 300, "every record handled");
    assert!(all.values().all(|n| *n == 1), "a record was handled twice");
    for (p, who) in &by_partition {
        assert_eq!(who.len(), 1, "partition {p} handled by {who:?}");
    }
    let java_parts: Vec<&i64> = by_partition
        .iter()
        .filter(|(_, w)| w[0] == "java")
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        java_parts.len(),
        2,
        "{by_partition:?} ours: {mine_a:?} {mine_b:?}"
    );
    let _ = java.kill();
    let _ = java.wait();
    for (mut child, log, _) in ours {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        assert_eq!(
            wait_child(&mut child, 60),
            Some(0),
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
}

#[test]
fn wrong_password_exits_1_at_once_without_the_password() {
    let b = harness::broker();
    let dir = temp_dir("consume-auth");
    let (cmd, log) = consume_cmd(
        &dir,
        "consumer",
        &[
            "--bootstrap",
            &b.sasl_plaintext(),
            "--username",
            "alice",
            "--password",
            "Wrong-Pass-77",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--topic",
            "t",
            "--group",
            "g",
            "--idle-timeout",
            "600",
        ],
        &[],
    );
    let (status, text) = run_to_end(cmd, &log, 60);
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("authentication failed for user 'alice' with SCRAM-SHA-512"),
        "{text}"
    );
    assert!(!text.contains("Wrong-Pass-77"), "{text}");
}

#[test]
fn static_membership_joins_and_leaves() {
    let b = harness::broker();
    let topic = harness::unique("static");
    b.create_topic(&topic, 2);
    b.produce_spread(&topic, &[(0, 2), (1, 3)]);
    let dir = temp_dir("consume-static");
    let group = harness::unique("staticg");
    let out = dir.join("handled.jsonl");
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
            "--static-membership",
        ],
        &[("CE_JOBRUN", "orders-jobrun-7"), ("JOB_INDEX", "1")],
    );
    let (status, text) = run_to_end(cmd, &log, 120);
    assert_eq!(status, Some(0), "{text}");
    assert_eq!(handled(&out).len(), 5);
    assert!(text.contains("left the group"), "{text}");
    let c = committed(&group);
    assert_eq!((c.get(&0), c.get(&1)), (Some(&Some(2)), Some(&Some(3))));
}
