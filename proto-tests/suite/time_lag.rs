//! Exact time lag against the real broker: records with known timestamps (explicit CreateTime
//! from the Java producer, and a LogAppendTime topic), then `lag --json` and the observer's
//! metrics must give the age of the first record the group would read next, within 1 s.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::harness::{self, Broker};
use crate::support::now_ms;
use crate::support::observer::ObserverProc;
use crate::support::run as ko;
use crate::support::wait::{eventually_every, Later};

const HOUR: i64 = 3_600_000;

/// The scene, built once: every case in its own partition.
struct Scene {
    topic: String,
    /// LogAppendTime topic, one partition.
    append: String,
    /// Committed on `topic` 0, 2, 3; never on 1.
    group: String,
    /// Committed on `append` 0.
    append_group: String,
    /// CreateTimes: records of the old part, and the ones the commits wait at.
    old: i64,
    mid: i64,
    /// When the LogAppendTime records were written (the broker's stamp lies in between).
    appended: (i64, i64),
}

fn kotool(b: &Broker, args: &[&str]) -> String {
    let bootstrap = b.running_bootstrap();
    let mut all = vec![bootstrap.as_str()];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&b.java_ok("KoTool", &all).stdout).into_owned()
}

fn produce_at(b: &Broker, topic: &str, partition: i32, count: u32, ts: i64) {
    kotool(
        b,
        &[
            "produce-at",
            topic,
            &partition.to_string(),
            &count.to_string(),
            &ts.to_string(),
        ],
    );
}

fn scene() -> Scene {
    let b = harness::broker();
    let now = now_ms();
    let (old, mid) = (now - 2 * HOUR, now - HOUR / 6);
    let topic = harness::unique("timelag");
    b.create_topic(&topic, 4);
    // 0: committed at 3, the first of the `mid` records.
    produce_at(b, &topic, 0, 3, old);
    produce_at(b, &topic, 0, 2, mid);
    // 1: no commit: earliest starts at the `old` record, latest waits for nothing.
    produce_at(b, &topic, 1, 2, old);
    produce_at(b, &topic, 1, 1, mid);
    // 2: committed after a committed transaction: its COMMIT marker, then an aborted
    // transaction (stamped now) and its ABORT marker lie before the `mid` record.
    let txn = b.produce_txn(&topic, 2, 2, true);
    b.produce_txn(&topic, 2, 2, false);
    produce_at(b, &topic, 2, 1, mid);
    // 3: committed at 1, then retention (delete-records) moves the log start to 3.
    produce_at(b, &topic, 3, 3, old);
    produce_at(b, &topic, 3, 2, mid);
    let deleted = kotool(b, &["delete-records", &topic, "3", "3"]);
    assert!(deleted.contains("log-start 3"), "{deleted}");

    let append = harness::unique("timelag-append");
    let bootstrap = b.running_bootstrap();
    #[rustfmt::skip]
    let create = [
        "--bootstrap-server", &bootstrap, "--create", "--topic", &append, "--partitions", "1",
        "--replication-factor", &b.replication_factor().to_string(),
        "--config", "message.timestamp.type=LogAppendTime",
    ];
    b.java_ok("org.apache.kafka.tools.TopicCommand", &create);
    b.wait_for_partitions(&append, 1);
    let before = now_ms();
    // CreateTime `old` is overwritten by the broker's clock.
    produce_at(b, &append, 0, 2, old);
    let appended = (before, now_ms());

    let group = harness::unique("timelag-g");
    let append_group = harness::unique("timelag-append-g");
    b.commit_offset(&group, &topic, 0, 3);
    b.commit_offset(&group, &topic, 2, txn.end);
    b.commit_offset(&group, &topic, 3, 1);
    b.commit_offset(&append_group, &append, 0, 0);
    Scene {
        topic,
        append,
        group,
        append_group,
        old,
        mid,
        appended,
    }
}

/// Asserts `got` (ms) is the age of a record stamped in `stamped` as seen some time in `seen`,
/// within 1 s.
fn assert_age(what: &str, got: f64, stamped: (i64, i64), seen: (i64, i64)) {
    let (lo, hi) = (seen.0 - stamped.1 - 1000, seen.1 - stamped.0 + 1000);
    assert!(
        (lo as f64..=hi as f64).contains(&got),
        "{what}: time lag {got} ms, expected {lo}..={hi}"
    );
}

/// `lag --json` rows: (group, topic, partition) → row; and when it ran.
type Rows = BTreeMap<(String, String, i64), Value>;

fn lag_rows(args: &[&str]) -> (Rows, (i64, i64)) {
    let before = now_ms();
    let out = ko(args);
    let seen = (before, now_ms());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut rows = BTreeMap::new();
    for g in v["groups"].as_array().unwrap() {
        for p in g["partitions"].as_array().unwrap() {
            rows.insert(
                (
                    g["group"].as_str().unwrap().to_string(),
                    p["topic"].as_str().unwrap().to_string(),
                    p["partition"].as_i64().unwrap(),
                ),
                p.clone(),
            );
        }
    }
    (rows, seen)
}

#[test]
fn lag_and_metrics_report_the_age_of_the_next_record() {
    let b = harness::broker();
    let s = scene();
    let (old, mid) = ((s.old, s.old), (s.mid, s.mid));
    let bootstrap = b.plaintext();
    let nobody = harness::unique("timelag-nobody");

    // `lag`: the committed group, the append-time group, a group without commits.
    for reset in ["earliest", "latest"] {
        #[rustfmt::skip]
        let args = [
            "lag", "--json", "--bootstrap", &bootstrap, "--offset-reset", reset,
            "--group", &s.group, "--group", &s.append_group, "--group", &nobody,
            "--topic", &s.topic, "--topic", &s.append,
        ];
        let (rows, seen) = lag_rows(&args);
        let age = |g: &str, t: &str, p: i64| -> f64 {
            let row = &rows[&(g.to_string(), t.to_string(), p)];
            row["time_lag_ms"]
                .as_f64()
                .unwrap_or_else(|| panic!("{reset}: no time lag in {row}"))
        };
        let (g, t) = (s.group.as_str(), s.topic.as_str());
        assert_age("committed", age(g, t, 0), mid, seen);
        assert_age(
            "commit before markers and aborted records",
            age(g, t, 2),
            mid,
            seen,
        );
        assert_age(
            "LogAppendTime",
            age(&s.append_group, &s.append, 0),
            s.appended,
            seen,
        );
        if reset == "earliest" {
            assert_age("no commit, earliest", age(&nobody, t, 1), old, seen);
            assert_age(
                "no commit (this group's), earliest",
                age(g, t, 1),
                old,
                seen,
            );
            assert_age("commit below the log start", age(g, t, 3), mid, seen);
        } else {
            assert_eq!(age(&nobody, t, 1), 0.0, "no commit, latest");
            assert_eq!(age(g, t, 3), 0.0, "commit below the log start, latest");
        }
    }

    // The observer's metrics, for both resets. Its consumers (woken: the groups lag) only sleep.
    let dir = std::env::temp_dir().join(harness::unique("timelag"));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("consumer.sh");
    std::fs::write(&exe, "#!/bin/sh\nexec sleep 600\n").unwrap();
    let status = std::process::Command::new("chmod")
        .args(["+x", exe.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let mapping = dir.join("kafkadata");
    std::fs::write(
        &mapping,
        format!(
            "{}:\n  jobs:\n    - name: {}\n      consumer_group: {}\n{}:\n  jobs:\n    - name: {}\n      consumer_group: {}\n",
            s.topic,
            harness::unique("timelag-job"),
            s.group,
            s.append,
            harness::unique("timelag-append-job"),
            s.append_group
        ),
    )
    .unwrap();
    let exe = exe.to_str().unwrap();
    for reset in ["earliest", "latest"] {
        #[rustfmt::skip]
        let args = [
            "--launcher", "local", "--consumer-exe", exe, "--bootstrap", &bootstrap,
            "--kafkadata", mapping.to_str().unwrap(), "--ticker-ms", "200",
            "--offset-reset", reset,
        ];
        let mut obs = ObserverProc::start(&dir, &args, &[]);
        let series = |g: &str, t: &str, p: i32| {
            format!("kafka_consumergroup_group_lag_seconds{{group=\"{g}\",topic=\"{t}\",partition=\"{p}\"}}")
        };
        let (g, t) = (s.group.as_str(), s.topic.as_str());
        let mut cases = vec![
            ("committed", series(g, t, 0), mid),
            (
                "commit before markers and aborted records",
                series(g, t, 2),
                mid,
            ),
            (
                "LogAppendTime",
                series(&s.append_group, &s.append, 0),
                s.appended,
            ),
        ];
        if reset == "earliest" {
            cases.push(("no commit", series(g, t, 1), old));
            cases.push(("commit below the log start", series(g, t, 3), mid));
            cases.push((
                "the group's largest",
                format!("kafka_consumergroup_group_max_lag_seconds{{group=\"{g}\"}}"),
                old,
            ));
        }
        let log = || obs.log_text();
        for (what, name, stamped) in cases {
            // A metric is as old as its cycle: it must come within 1 s of the truth.
            let pause = std::time::Duration::from_millis(200);
            eventually_every(pause, 60, &format!("{reset}, {what}: {name}"), || {
                let before = now_ms();
                let got = obs.metric(&name);
                let seen = (before, now_ms());
                let (lo, hi) = (seen.0 - stamped.1 - 1000, seen.1 - stamped.0 + 1000);
                match got.map(|v| v * 1000.0) {
                    Some(v) if (lo as f64..=hi as f64).contains(&v) => Ok(()),
                    other => Err(Later(move || {
                        format!("{other:?} ms, expected {lo}..={hi}; log:\n{}", log())
                    })),
                }
            });
        }
        if reset == "latest" {
            for p in [1, 3] {
                let what = format!("partition {p} waits for nothing from the end");
                obs.wait_metric(60, &series(g, t, p), &what, |v| v == 0.0);
            }
        }
        assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
    }
}
