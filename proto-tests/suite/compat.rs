//! Compatibility beyond the pinned single broker: `kafka-observer lag` against a Kafka 3.9.1
//! broker (IBM Event Streams runs 3.8; version negotiation meets 3.x ranges such as ListOffsets
//! 0-9, OffsetFetch 0-9) and against a 3-node KRaft cluster whose partition leaders move.
//! The Java tools of the broker's own version are the oracle.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, Broker, GroupRow, Options, USERS};
use crate::support::{eventually, run, text};

/// The 3.x line IBM Event Streams is closest to.
const V3: &str = "3.9.1";

type Rows = BTreeMap<(String, i64), Value>;

/// The partitions of `group` in one `lag --json` document.
fn rows_of(doc: &Value, group: &str) -> Option<Rows> {
    let g = doc["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == group)?;
    let mut rows = Rows::new();
    for p in g["partitions"].as_array()? {
        rows.insert(
            (p["topic"].as_str()?.to_string(), p["partition"].as_i64()?),
            p.clone(),
        );
    }
    Some(rows)
}

/// Runs `lag --json ARGS`; the group's rows if it exits 0 with JSON, else the full output.
fn lag_rows(args: &[&str], group: &str) -> Result<Rows, String> {
    let mut all = vec!["lag", "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    if out.status.code() != Some(0) {
        return Err(text(&out));
    }
    let doc: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    rows_of(&doc, group).ok_or_else(|| format!("no group {group}: {}", text(&out)))
}

/// Differences between our rows and kafka-consumer-groups' (which lists committed partitions
/// only); empty when they agree.
fn disagreements(ours: &Rows, java: &[GroupRow]) -> Vec<String> {
    let mut diffs = Vec::new();
    let committed: Vec<&Value> = ours
        .values()
        .filter(|r| !r["committed"].is_null())
        .collect();
    if committed.len() != java.len() {
        diffs.push(format!(
            "{} committed rows ours, {} in kafka-consumer-groups",
            committed.len(),
            java.len()
        ));
    }
    for j in java {
        let key = (j.topic.clone(), i64::from(j.partition));
        let Some(r) = ours.get(&key) else {
            diffs.push(format!("{}-{} missing from ours", j.topic, j.partition));
            continue;
        };
        for (name, mine, theirs) in [
            ("committed", r["committed"].as_i64(), j.current_offset),
            (
                "high_watermark",
                r["high_watermark"].as_i64(),
                j.log_end_offset,
            ),
            ("lag", r["lag"].as_i64(), j.lag),
        ] {
            if mine != theirs {
                diffs.push(format!(
                    "{}-{} {name}: ours {mine:?}, java {theirs:?} ({r})",
                    j.topic, j.partition
                ));
            }
        }
        if !r["error"].is_null() {
            diffs.push(format!("{}-{} error: {r}", j.topic, j.partition));
        }
    }
    diffs
}

#[test]
fn kafka_3_9_lag_agrees_with_its_own_consumer_groups_tool() {
    let b = harness::broker_version(V3);
    assert_eq!(b.version(), V3);
    let topic = harness::unique("v3");
    b.create_topic(&topic, 3);
    b.produce_spread(&topic, &[(0, 8), (1, 5), (2, 3)]);
    let group = harness::unique("g3");
    // p0 lags 6, p1 caught up, p2 never committed.
    b.commit_offsets(&group, &[(&topic, 0, 2), (&topic, 1, 5)]);
    let java = b.describe_group(&group);
    assert_eq!(java.len(), 2, "kafka-consumer-groups {V3}: {java:?}");
    assert_eq!(java[0].log_end_offset, Some(8), "{java:?}");

    let bootstrap = b.plaintext();
    let ours = lag_rows(&["--bootstrap", &bootstrap, "--group", &group], &group)
        .unwrap_or_else(|e| panic!("lag against Kafka {V3}: {e}"));
    let diffs = disagreements(&ours, &java);
    assert!(diffs.is_empty(), "Kafka {V3}: {diffs:#?}\nours {ours:#?}");
    assert_eq!(ours.len(), 2, "{ours:#?}");

    // With --topic the uncommitted partition shows too, with its ends and no lag.
    let ours = lag_rows(
        &[
            "--bootstrap",
            &bootstrap,
            "--group",
            &group,
            "--topic",
            &topic,
        ],
        &group,
    )
    .unwrap_or_else(|e| panic!("lag --topic against Kafka {V3}: {e}"));
    assert_eq!(ours.len(), 3, "{ours:#?}");
    let p2 = &ours[&(topic.clone(), 2)];
    assert_eq!(p2["committed"], Value::Null, "{p2}");
    assert_eq!(p2["lag"], Value::Null, "{p2}");
    assert_eq!(p2["high_watermark"], 3, "{p2}");
    let p0 = &ours[&(topic.clone(), 0)];
    assert_eq!(p0["log_start"], 0, "{p0}");
    assert_eq!(p0["last_stable"], 8, "{p0}");
    assert_eq!(p0["lag"], 6, "{p0}");
}

#[test]
fn kafka_3_9_scram_sha_512_on_both_sasl_listeners() {
    let b = harness::broker_version(V3);
    let topic = harness::unique("v3sasl");
    b.create_topic(&topic, 1);
    b.produce(&topic, 0, 4);
    let group = harness::unique("g3sasl");
    b.commit_offset(&group, &topic, 0, 1);
    let (user, pass) = USERS[1];
    let ca = b.ca_file().to_str().unwrap().to_string();
    let sasl = b.sasl_plaintext();
    let ssl = b.sasl_ssl();
    #[rustfmt::skip]
    let cases: [(&str, Vec<&str>); 3] = [
        ("SASL_PLAINTEXT SCRAM-SHA-512", vec!["--bootstrap", &sasl, "--sasl-mechanism", "SCRAM-SHA-512"]),
        ("SASL_SSL SCRAM-SHA-512", vec!["--bootstrap", &ssl, "--tls", "--ca-file", &ca, "--sasl-mechanism", "SCRAM-SHA-512"]),
        ("SASL_SSL SCRAM-SHA-256", vec!["--bootstrap", &ssl, "--tls", "--ca-file", &ca, "--sasl-mechanism", "SCRAM-SHA-256"]),
    ];
    for (name, conn) in cases {
        let mut args = conn.clone();
        args.extend(["--username", user, "--password", pass, "--group", &group]);
        let rows = lag_rows(&args, &group).unwrap_or_else(|e| panic!("Kafka {V3} {name}: {e}"));
        let p0 = &rows[&(topic.clone(), 0)];
        assert_eq!(p0["committed"], 1, "{name}: {p0}");
        assert_eq!(p0["high_watermark"], 4, "{name}: {p0}");
        assert_eq!(p0["lag"], 3, "{name}: {p0}");
    }
    // A wrong password is refused by the 3.9 SCRAM exchange, not mistaken for something else.
    let out = run(&[
        "lag",
        "--bootstrap",
        &sasl,
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--username",
        user,
        "--password",
        "wrong",
        "--group",
        &group,
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.to_lowercase().contains("authentic"), "{all}");
}

/// `lag --json --watch` running in the background: every refreshed JSON document, parsed.
struct Watch {
    child: std::process::Child,
    frames: mpsc::Receiver<Result<Value, String>>,
    stderr: std::thread::JoinHandle<String>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut cmd = crate::support::command(&["lag", "--json", "--watch", "0.5"]);
        cmd.args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start kafka-observer lag --watch");
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, frames) = mpsc::channel();
        std::thread::spawn(move || {
            // Off a terminal each refresh is one JSON document on one line.
            for line in std::io::BufRead::lines(std::io::BufReader::new(&mut stdout)) {
                let Ok(line) = line else { break };
                let parsed =
                    serde_json::from_str::<Value>(&line).map_err(|e| format!("{e}: {line}"));
                if tx.send(parsed).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Watch {
            child,
            frames,
            stderr,
        }
    }

    /// Reads frames until `check` accepts one (returns how many frames it took), or panics after
    /// `secs` with the last frame and every distinct error seen.
    fn until(
        &mut self,
        secs: u64,
        what: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> usize {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::from("(no frame)");
        let mut seen = 0;
        let mut errors: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match self.frames.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(f) => f,
                Err(_) => {
                    let status = self.child.try_wait();
                    panic!(
                        "lag --watch: no frame passing '{what}' within {secs} s ({seen} frames; \
                         process {status:?});\nlast: {last}\nerrors seen: {errors:#?}"
                    );
                }
            };
            seen += 1;
            match frame.and_then(|v| check(&v).map_err(|e| format!("{e}\nframe: {v}"))) {
                Ok(()) => {
                    if !errors.is_empty() {
                        eprintln!("lag --watch: '{what}' after {seen} frames; errors on the way: {errors:#?}");
                    }
                    return seen;
                }
                Err(e) => {
                    let short = e.lines().next().unwrap_or_default().to_string();
                    if !errors.contains(&short) {
                        errors.push(short);
                    }
                    last = e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "lag --watch: no frame passing '{what}' within {secs} s ({seen} frames);\n\
                 last: {last}\nerrors seen: {errors:#?}"
            );
        }
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.join().unwrap_or_default()
    }
}

/// Checks a `lag --json` document: `group` has no error and shows every partition of `topic`
/// with exactly these high watermarks and commits.
fn expect_offsets(
    doc: &Value,
    group: &str,
    topic: &str,
    hw: &[i64],
    committed: &[Option<i64>],
) -> Result<(), String> {
    let g = doc["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group"] == group))
        .ok_or("group missing")?;
    if !g["error"].is_null() {
        return Err(format!("group error: {}", g["error"]));
    }
    expect_rows(
        &rows_of(doc, group).ok_or("no partitions")?,
        topic,
        hw,
        committed,
    )
}

/// Every partition of `topic` present, without error, with these high watermarks and commits.
fn expect_rows(
    rows: &Rows,
    topic: &str,
    hw: &[i64],
    committed: &[Option<i64>],
) -> Result<(), String> {
    for (p, want_hw) in hw.iter().enumerate() {
        let r = rows
            .get(&(topic.to_string(), p as i64))
            .ok_or_else(|| format!("partition {p} missing"))?;
        if !r["error"].is_null() {
            return Err(format!("partition {p} error: {}", r["error"]));
        }
        if r["high_watermark"].as_i64() != Some(*want_hw) || r["committed"].as_i64() != committed[p]
        {
            return Err(format!(
                "partition {p}: want hw {want_hw} committed {:?}, got {r}",
                committed[p]
            ));
        }
    }
    Ok(())
}

#[test]
fn cluster_lag_follows_moving_partition_leaders() {
    let started = Instant::now();
    let c = Broker::start_with(Options {
        nodes: 3,
        sasl: false,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let up = started.elapsed();
    let topic = harness::unique("rf3");
    c.create_topic(&topic, 6);
    let md = c.metadata(&[&topic]).expect("metadata");
    for p in &md.topic(&topic).unwrap().partitions {
        assert_eq!(p.replicas.len(), 3, "{p:?}");
    }
    let leaders: Vec<i32> = (0..6).map(|p| c.leader_of(&topic, p)).collect();
    let mut distinct = leaders.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "all partitions led by one node: {leaders:?}"
    );

    let mut hw: Vec<i64> = vec![10, 7, 4, 9, 0, 3];
    let parts: Vec<(i32, u32)> = hw
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| (p as i32, *n as u32))
        .collect();
    c.produce_spread(&topic, &parts);
    let group = harness::unique("gc");
    let committed: Vec<Option<i64>> = vec![Some(4), Some(7), Some(1), Some(9), None, None];
    let plan: Vec<(&str, i32, i64)> = committed
        .iter()
        .enumerate()
        .filter_map(|(p, c)| Some((topic.as_str(), p as i32, (*c)?)))
        .collect();
    c.commit_offsets(&group, &plan);

    // Three distinct roles: p0's first leader, the node p0's leadership moves to, and the node
    // the long-running watch bootstraps from (it stays up throughout).
    let l0 = leaders[0];
    let ids = c.node_ids();
    let mut rest = ids.iter().copied().filter(|n| *n != l0);
    let (target, boot) = (rest.next().unwrap(), rest.next().unwrap());

    // 1. One node as bootstrap: offsets of partitions led by all three nodes agree with Java.
    let java = c.describe_group(&group);
    assert_eq!(java.len(), 4, "{java:?}");
    for node in &ids {
        let one = c.node_plaintext(*node);
        let ours = lag_rows(
            &["--bootstrap", &one, "--group", &group, "--topic", &topic],
            &group,
        )
        .unwrap_or_else(|e| panic!("lag via node {node}: {e}"));
        let diffs = disagreements(&ours, &java);
        assert!(
            diffs.is_empty(),
            "bootstrap node {node} (leaders {leaders:?}): {diffs:#?}"
        );
        assert_eq!(ours.len(), 6, "{ours:#?}");
    }
    let phase1 = started.elapsed();

    // 2. A long-running watch follows leadership moves (cached metadata and connections).
    let bootstrap = c.node_plaintext(boot);
    let args = [
        "--bootstrap",
        &bootstrap,
        "--group",
        &group,
        "--topic",
        &topic,
    ];
    let mut watch = Watch::start(&args);
    let check = |hw: &[i64]| {
        let (group, topic, committed) = (group.clone(), topic.clone(), committed.clone());
        let hw = hw.to_vec();
        move |v: &Value| expect_offsets(v, &group, &topic, &hw, &committed)
    };
    watch.until(60, "first correct frame", check(&hw));

    // 2a. p0's leadership moves while its old leader stays up (it answers NOT_LEADER_OR_FOLLOWER
    // for p0 now). Only the new leader serves p0's offsets, so clean frames prove the switch.
    c.move_leader(&topic, 0, target);
    let moved = started.elapsed();
    watch.until(60, "p0 after a leader move", check(&hw));
    watch.until(30, "a second frame after the leader move", check(&hw));

    // 2b. Stop p0's current leader: a dead connection, and a new leader elected from the ISR.
    c.stop_node(target);
    let new_l0 = c.await_leader(&topic, 0, "a live leader", |l| l != target);
    hw[0] += c.produce(&topic, 0, 3).count() as i64;
    let frames = watch.until(90, "all partitions after p0's leader stopped", check(&hw));
    let watch_stderr = watch.stop();
    eprintln!(
        "lag --watch: correct {frames} frames after node {target} (p0's leader) stopped; \
         p0 now led by {new_l0}; stderr:\n{watch_stderr}"
    );

    // 3. A fresh one-shot run against a survivor agrees with Java again.
    let survivor = c.node_plaintext(boot);
    let args = [
        "--bootstrap",
        &survivor,
        "--group",
        &group,
        "--topic",
        &topic,
    ];
    eventually(60, "one-shot lag with p0's leader down", || {
        let rows = lag_rows(&args, &group)?;
        expect_rows(&rows, &topic, &hw, &committed)
    });
    let stopped = started.elapsed();

    // 4. The stopped node comes back (same config, data and ports) and serves as bootstrap.
    c.start_node(target);
    assert_eq!(c.running_nodes(), ids);
    let back = c.node_plaintext(target);
    let args = ["--bootstrap", &back, "--group", &group, "--topic", &topic];
    eventually(60, "lag via the restarted node", || {
        expect_rows(&lag_rows(&args, &group)?, &topic, &hw, &committed)
    });
    // 5. The consumer follows a leader move mid-drain: every record handled, all committed.
    let ctopic = harness::unique("rf3c");
    c.create_topic(&ctopic, 2);
    c.produce_spread(&ctopic, &[(0, 200), (1, 200)]);
    let dir = crate::support::temp_dir("consume-rf3");
    let out = dir.join("handled.jsonl");
    let cgroup = harness::unique("rf3g");
    let exec = format!("cat >> {}; sleep 0.02", out.display());
    let boot_all = c.running_bootstrap();
    let (mut cmd, log) = crate::support::consumer::consume_cmd(
        &dir,
        "consumer",
        &[
            "--bootstrap",
            &boot_all,
            "--topic",
            &ctopic,
            "--group",
            &cgroup,
            "--idle-timeout",
            "5",
            "--exec",
            &exec,
            "--batch-size",
            "10",
            "--session-timeout",
            "6",
        ],
        &[],
    );
    let mut child = cmd.spawn().unwrap();
    crate::support::consumer::wait_handled(&out, 60, &log, 60);
    let l = c.leader_of(&ctopic, 0);
    let to = c.node_ids().into_iter().find(|n| *n != l).unwrap();
    c.move_leader(&ctopic, 0, to);
    let status = crate::support::consumer::wait_child(&mut child, 180);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    let seen = crate::support::consumer::handled(&out);
    for p in 0..2 {
        for o in 0..200 {
            assert!(
                seen.contains_key(&(p, o)),
                "partition {p} offset {o} lost:\n{text}"
            );
        }
    }
    let rows = c.describe_group(&cgroup);
    assert!(
        rows.iter().all(|r| r.current_offset == Some(200)),
        "{rows:?}"
    );

    // 6. The observer's long poll survives a leader move. Ten-minute ticks: only the long poll
    // can explain a wake-up. (Kafka serves a v11+ consumer Fetch from a follower too, so the
    // held fetch on the old leader keeps watching, up to the follower's high watermark, until a
    // metadata refresh moves the watch to the new leader; a fetch that fails instead is rebuilt
    // from fresh metadata.)
    let otopic = harness::unique("rf3o");
    c.create_topic(&otopic, 1);
    let standin = crate::support::observer::StandIn::new();
    let job = harness::unique("rf3-job");
    let file = standin.dir.join("kafkadata");
    std::fs::write(
        &file,
        format!(
            "{otopic}:\n  jobs:\n    - name: {job}\n      consumer_group: {}\n",
            harness::unique("rf3-group")
        ),
    )
    .unwrap();
    let exe = standin.exe();
    let boot_all = c.running_bootstrap();
    let mut obs = crate::support::observer::ObserverProc::start(
        &standin.dir,
        &[
            "--launcher",
            "local",
            "--consumer-exe",
            &exe,
            "--bootstrap",
            &boot_all,
            "--kafkadata",
            file.to_str().unwrap(),
            "--ticker-ms",
            "600000",
            "--idle-ticker-ms",
            "600000",
        ],
        &[("LOG_LEVEL", "kafka_observer=debug")],
    );
    obs.wait_log(60, "the long poll armed", |t| {
        t.contains("long-poll watch updated").then_some(())
    });
    let l = c.leader_of(&otopic, 0);
    let to = c.node_ids().into_iter().find(|n| *n != l).unwrap();
    c.move_leader(&otopic, 0, to);
    // The old leader ends the held fetch; the observer rebuilds the watch on the new leader.
    c.await_leader(&otopic, 0, "the moved leader", |x| x == to);
    let woken = |t: &str| t.matches("woken by the long poll").count();
    let before = woken(&obs.log_text());
    c.produce(&otopic, 0, 1);
    standin.wait(60, "job woken after the leader move", |s| {
        s.runs().get(&job).cloned()
    });
    let text = obs.log_text();
    assert!(
        woken(&text) > before,
        "the record after the move did not wake the long poll:\n{text}"
    );
    standin.release_all();
    obs.stop();

    eprintln!(
        "cluster test: up {:.1} s, compared with Java {:.1} s, leader moved {:.1} s, \
         leader stopped and followed {:.1} s, node restarted {:.1} s; first leaders {leaders:?}",
        up.as_secs_f64(),
        phase1.as_secs_f64(),
        moved.as_secs_f64(),
        stopped.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
