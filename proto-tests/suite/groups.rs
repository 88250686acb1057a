//! Consumer groups under scale-out, against the real broker: a busy member gives up partitions
//! after the handler call in flight, members woken together each end up with a partition and
//! keep it (cooperative-sticky), groups mixed with Java consumers (cooperative-sticky or range,
//! either joining first) lose nothing, and the observer plans jobs that share a group together
//! (one instance per lagging partition of the group; `check` explains such a mapping).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness;
use crate::support::consumer::{consume_cmd, wait_child};
use crate::support::observer::{local_observer_in, ObserverProc};
use crate::support::temp_dir;
use crate::support::wait::wait_until;

/// One of our consumers, its log and the file its `--exec` handler appends records to.
pub struct Ours {
    pub child: Child,
    pub log: PathBuf,
    pub out: PathBuf,
}

impl Ours {
    /// `consume --topic TOPICS --group GROUP ARGS`, handler `EXEC` (`{out}` = its record file).
    pub fn start(
        dir: &Path,
        name: &str,
        topics: &str,
        group: &str,
        exec: &str,
        args: &[&str],
    ) -> Ours {
        Self::start_env(dir, name, topics, group, exec, args, &[])
    }

    /// Like [`Ours::start`], with these environment variables.
    pub fn start_env(
        dir: &Path,
        name: &str,
        topics: &str,
        group: &str,
        exec: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Ours {
        let b = harness::broker();
        let out = dir.join(format!("{name}.jsonl"));
        let exec = exec.replace("{out}", &out.display().to_string());
        let mut all = vec![
            "--bootstrap",
            &b.plaintext(),
            "--topic",
            topics,
            "--group",
            group,
            "--exec",
            &exec,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (mut cmd, log) = consume_cmd(dir, name, &refs, env);
        Ours {
            child: cmd.spawn().unwrap(),
            log,
            out,
        }
    }

    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every `assigned` line so far.
    pub fn assignments(&self) -> Vec<Assigned> {
        assignments(&self.text())
    }

    /// SIGTERM, then expect a clean exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert_eq!(wait_child(&mut self.child, 60), Some(0), "{}", self.text());
    }
}

/// One `assigned` log line of our consumer.
#[derive(Debug, Clone, Default)]
pub struct Assigned {
    pub generation: i64,
    pub protocol: String,
    pub partitions: Vec<String>,
    pub added: Vec<String>,
    pub revoked: Vec<String>,
}

pub fn assignments(text: &str) -> Vec<Assigned> {
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    text.lines()
        .filter(|l| l.contains(" assigned ") || l.ends_with(" assigned"))
        .filter(|l| l.contains("generation="))
        .map(|l| {
            let mut a = Assigned::default();
            for tok in l.split_whitespace() {
                if let Some(v) = tok.strip_prefix("generation=") {
                    a.generation = v.parse().unwrap_or(-1);
                } else if let Some(v) = tok.strip_prefix("protocol=") {
                    a.protocol = v.to_string();
                } else if let Some(v) = tok.strip_prefix("partitions=") {
                    a.partitions = list(v);
                } else if let Some(v) = tok.strip_prefix("added=") {
                    a.added = list(v);
                } else if let Some(v) = tok.strip_prefix("revoked=") {
                    a.revoked = list(v);
                }
            }
            a
        })
        .collect()
}

/// Records an `--exec` handler wrote: (topic, partition, offset) → times handled. A last line
/// without its newline is being written right now and is left for the next look.
pub fn records(file: &Path) -> BTreeMap<(String, i64, i64), usize> {
    let mut seen = BTreeMap::new();
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    for line in complete.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
        *seen
            .entry((
                v["topic"].as_str().unwrap().to_string(),
                v["partition"].as_i64().unwrap(),
                v["offset"].as_i64().unwrap(),
            ))
            .or_default() += 1;
    }
    seen
}

/// Consecutive generations of one member that re-added a partition it already held: an eager
/// revocation. Cooperative-sticky keeps such partitions (they are in neither list).
fn readded(a: &[Assigned]) -> Vec<String> {
    a.windows(2)
        .filter(|w| w[1].generation == w[0].generation + 1)
        .flat_map(|w| {
            w[1].added
                .iter()
                .filter(|p| w[0].partitions.contains(p))
                .map(move |p| format!("{p} in generation {}", w[1].generation))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_busy_member_gives_up_partitions_after_its_handler_call_in_flight() {
    let b = harness::broker();
    let topics: Vec<String> = (1..=3)
        .map(|i| harness::unique(&format!("chain{i}")))
        .collect();
    for t in &topics {
        b.create_topic(t, 1);
        b.produce(t, 0, 20);
    }
    let group = harness::unique("chain-consumers");
    let dir = temp_dir("groups-busy");
    let gate = dir.join("gate");
    std::fs::create_dir_all(&gate).unwrap();
    // The shared-group mapping of issue 12: a on all three topics (it joins first and gets
    // everything), then b on the first two and c on the first. Each call of a's handler waits
    // for a token from the test (or for the gate to open), so the test knows which call is in
    // flight when the group rebalances.
    let calls = dir.join("a-calls");
    let gated = format!(
        "f=$(mktemp); cat > $f; echo call >> {calls}; \
         while ! rm {gate}/token 2>/dev/null && [ ! -e {gate}/open ]; do sleep 0.02; done; \
         cat $f >> {{out}}; rm -f $f",
        calls = calls.display(),
        gate = gate.display()
    );
    let common = ["--batch-size", "5", "--idle-timeout", "120"];
    let a = Ours::start(
        &dir,
        "a",
        &topics.join(","),
        &group,
        &gated,
        &[
            &common[..],
            &["--handler-timeout", "120", "--session-timeout", "6"],
        ]
        .concat(),
    );
    let calls_started = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_until(
        60,
        "a to own every partition and be inside its first handler call",
        || {
            a.assignments()
                .last()
                .is_some_and(|x| x.partitions.len() == 3)
                && calls_started() == 1
        },
        || a.text(),
    );
    let fast = "cat >> {out}";
    let bm = Ours::start(&dir, "b", &topics[..2].join(","), &group, fast, &common);
    let c = Ours::start(&dir, "c", &topics[0], &group, fast, &common);
    wait_until(
        60,
        "a's heartbeat to hear of the rebalance",
        || {
            a.text()
                .contains("rebalance started; rejoining after the handler call in flight")
        },
        || a.text(),
    );
    // The call in flight outlasts a's session timeout on purpose: a slow handler must not cost
    // the membership while the group waits for it (heartbeats go on during the rebalance).
    std::thread::sleep(Duration::from_secs(7));
    std::fs::write(gate.join("token"), "").unwrap();
    // One call later a rejoins: it keeps the topic only it reads, b and c get theirs.
    wait_until(
        60,
        "b and c to get a partition each",
        || {
            let last = |m: &Ours| m.assignments().last().map(|x| x.partitions.clone());
            last(&bm).is_some_and(|p| p.len() == 1) && last(&c).is_some_and(|p| p.len() == 1)
        },
        || format!("a:\n{}\nb:\n{}\nc:\n{}", a.text(), bm.text(), c.text()),
    );
    // (Had a gone on with the rest of its fetched chunk, its next call would wait for a token
    // that never comes, and b and c would never get their partitions.)
    std::fs::write(gate.join("open"), "").unwrap();
    let total = || records(&a.out).len() + records(&bm.out).len() + records(&c.out).len();
    wait_until(
        120,
        "all 60 records handled",
        || total() >= 60,
        || format!("a:\n{}\nb:\n{}\nc:\n{}", a.text(), bm.text(), c.text()),
    );

    let (ra, rb, rc) = (records(&a.out), records(&bm.out), records(&c.out));
    let mut all: BTreeMap<(String, i64, i64), usize> = BTreeMap::new();
    for r in [&ra, &rb, &rc] {
        for (k, n) in r {
            *all.entry(k.clone()).or_default() += n;
        }
    }
    assert_eq!(all.len(), 60, "every record handled");
    assert!(
        all.values().all(|n| *n == 1),
        "a record handled twice: {all:?}"
    );
    assert!(rb.keys().all(|(t, _, _)| t == &topics[1]), "b: {rb:?}");
    assert!(rc.keys().all(|(t, _, _)| t == &topics[0]), "c: {rc:?}");
    // a handled at most its one call (5 records) of what moved; what it had fetched beyond that
    // was dropped, not handled.
    let moved_by_a = ra.keys().filter(|(t, _, _)| t != &topics[2]).count();
    assert!(
        moved_by_a <= 5,
        "a handled {moved_by_a} records of partitions it gave up"
    );
    assert_eq!(rb.len() + rc.len() + moved_by_a, 40);
    let text = a.text();
    assert!(!text.contains("left behind by the group"), "{text}");
    let mine = a.assignments();
    let t3 = format!("{}-0", topics[2]);
    let revoking = mine
        .iter()
        .position(|x| x.revoked.len() == 2)
        .unwrap_or_else(|| panic!("a never revoked the two partitions: {mine:?}"));
    assert_eq!(mine[revoking].partitions, [t3], "{mine:?}");
    assert!(readded(&mine).is_empty(), "{mine:?}");
    assert!(
        mine.iter().all(|x| x.protocol == "cooperative-sticky"),
        "{mine:?}"
    );
    for m in [a, bm, c] {
        m.stop();
    }
    let committed: BTreeMap<String, Option<i64>> = b
        .describe_group(&group)
        .into_iter()
        .map(|r| (r.topic, r.current_offset))
        .collect();
    for t in &topics {
        assert_eq!(committed.get(t), Some(&Some(20)), "{committed:?}");
    }
}

#[test]
fn members_woken_together_each_get_a_partition_and_keep_it() {
    let b = harness::broker();
    let topic = harness::unique("together");
    b.create_topic(&topic, 4);
    b.produce_spread(&topic, &[(0, 30), (1, 30), (2, 30), (3, 30)]);
    let group = harness::unique("together-g");
    let dir = temp_dir("groups-together");
    // Four instances at once, as the observer starts a job run of four (with the variables
    // Code Engine sets); a slow handler.
    let members: Vec<Ours> = (0..4)
        .map(|i| {
            Ours::start_env(
                &dir,
                &format!("m{i}"),
                &topic,
                &group,
                "cat >> {out}; sleep 0.2",
                &["--batch-size", "5", "--idle-timeout", "120"],
                &[
                    ("CE_JOB", "together-job"),
                    ("CE_JOBRUN", "together-job-run-7"),
                    ("JOB_INDEX", &i.to_string()),
                ],
            )
        })
        .collect();
    let logs = || {
        members
            .iter()
            .map(|m| m.text())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    wait_until(
        120,
        "every member to own one partition",
        || {
            members.iter().all(|m| {
                m.assignments()
                    .last()
                    .is_some_and(|a| a.partitions.len() == 1)
            })
        },
        logs,
    );
    wait_until(
        120,
        "all 120 records handled",
        || members.iter().map(|m| records(&m.out).len()).sum::<usize>() >= 120,
        logs,
    );
    let mut all: BTreeMap<(String, i64, i64), usize> = BTreeMap::new();
    for m in &members {
        for (k, n) in records(&m.out) {
            *all.entry(k).or_default() += n;
        }
    }
    assert_eq!(all.len(), 120, "every record handled");
    assert!(all.values().all(|n| *n == 1), "a record handled twice");
    let owned: BTreeSet<String> = members
        .iter()
        .flat_map(|m| m.assignments().last().unwrap().partitions.clone())
        .collect();
    assert_eq!(owned.len(), 4, "{owned:?}");
    for (i, m) in members.iter().enumerate() {
        // Every line names the instance it comes from.
        let tag =
            format!("consumer{{job=together-job group={group} run=together-job-run-7 index={i}}}:");
        let text = m.text();
        assert!(
            text.lines().all(|l| l.contains(&tag)),
            "a line without {tag}:\n{text}"
        );
        let a = m.assignments();
        assert!(readded(&a).is_empty(), "revoked and assigned again: {a:?}");
        assert!(
            a.iter().all(|x| x.protocol == "cooperative-sticky"),
            "{a:?}"
        );
    }
    for m in members {
        m.stop();
    }
}

/// (partition, offset)
type Rec = (i64, i64);

/// The Java member of a mixed group: VerifiableConsumer (classic protocol, commitSync after
/// every poll), its JSON events in a file.
struct Java {
    child: Child,
    out: PathBuf,
}

impl Java {
    fn start(dir: &Path, topic: &str, group: &str, assignor: &str) -> Java {
        let b = harness::broker();
        let out = dir.join("java.jsonl");
        let f = std::fs::File::create(&out).unwrap();
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-cp",
            ])
            .arg(b.libs_dir().join("*"))
            .args([
                "org.apache.kafka.tools.VerifiableConsumer",
                "--bootstrap-server",
                &b.plaintext(),
                "--topic",
                topic,
                "--group-id",
                group,
                "--verbose",
                "--session-timeout",
                "10000",
                "--assignment-strategy",
                &format!("org.apache.kafka.clients.consumer.{assignor}"),
            ])
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Java { child, out }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    fn owns_something(&self) -> bool {
        // The partitions it holds: assigned minus revoked, in event order.
        let mut held: BTreeSet<i64> = BTreeSet::new();
        for e in self.events() {
            let parts = || {
                e["partitions"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p["partition"].as_i64())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            match e["name"].as_str() {
                Some("partitions_assigned") => held.extend(parts()),
                Some("partitions_revoked") => {
                    for p in parts() {
                        held.remove(&p);
                    }
                }
                _ => {}
            }
        }
        !held.is_empty()
    }

    /// (records handled, records whose commit the group refused: these may be handled again).
    fn records(&self) -> (Vec<Rec>, BTreeSet<Rec>) {
        let mut all = Vec::new();
        let mut batch = Vec::new();
        let mut uncommitted = BTreeSet::new();
        for e in self.events() {
            match e["name"].as_str() {
                Some("record_data") => {
                    let r = (
                        e["partition"].as_i64().unwrap(),
                        e["offset"].as_i64().unwrap(),
                    );
                    all.push(r);
                    batch.push(r);
                }
                Some("offsets_committed") => {
                    if e["success"] == false {
                        uncommitted.extend(batch.iter().copied());
                    }
                    batch.clear();
                }
                _ => {}
            }
        }
        (all, uncommitted)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

impl Drop for Java {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two of ours and one Java consumer in one group on a 6-partition topic while a producer
/// writes; members join one after another in `order`. Nothing is lost; a record is handled twice
/// only if the Java member's commit of it was refused mid-rebalance (ours never repeat one).
fn mixed_group(java_first: bool, java_assignor: &str, protocol: &str) {
    let b = harness::broker();
    let topic = harness::unique("mixed");
    b.create_topic(&topic, 6);
    let group = harness::unique("mixed-g");
    let dir = temp_dir("groups-mixed");
    let bootstrap = b.plaintext();
    let producer = {
        let topic = topic.clone();
        std::thread::spawn(move || {
            let out = harness::broker().java(
                "org.apache.kafka.tools.ProducerPerformance",
                &[
                    "--topic",
                    &topic,
                    "--num-records",
                    "600",
                    "--throughput",
                    "60",
                    "--record-size",
                    "50",
                    "--producer-props",
                    &format!("bootstrap.servers={bootstrap}"),
                    "linger.ms=5",
                    // Every partition gets records while members come and go (the default
                    // partitioner sticks to one partition per 16 KB batch).
                    "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
                ],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    };
    let handler = "cat >> {out}; sleep 0.05";
    let args = [
        "--batch-size",
        "10",
        "--idle-timeout",
        "120",
        "--session-timeout",
        "10",
    ];
    let ours_has = |m: &Ours| {
        m.assignments()
            .last()
            .is_some_and(|a| !a.partitions.is_empty())
    };
    let mut ours: Vec<Ours> = Vec::new();
    let java;
    if java_first {
        java = Java::start(&dir, &topic, &group, java_assignor);
        wait_until(
            120,
            "the Java member to own partitions",
            || java.owns_something(),
            || java.text(),
        );
        for name in ["ours0", "ours1"] {
            let m = Ours::start(&dir, name, &topic, &group, handler, &args);
            wait_until(
                120,
                "our member to own partitions",
                || ours_has(&m),
                || m.text(),
            );
            ours.push(m);
        }
    } else {
        let m = Ours::start(&dir, "ours0", &topic, &group, handler, &args);
        wait_until(
            120,
            "our first member to own partitions",
            || ours_has(&m),
            || m.text(),
        );
        ours.push(m);
        java = Java::start(&dir, &topic, &group, java_assignor);
        wait_until(
            120,
            "the Java member to own partitions",
            || java.owns_something(),
            || java.text(),
        );
        let m = Ours::start(&dir, "ours1", &topic, &group, handler, &args);
        wait_until(
            120,
            "our second member to own partitions",
            || ours_has(&m),
            || m.text(),
        );
        ours.push(m);
    }
    producer.join().unwrap();
    let ends = crate::support::consumer::high_watermarks(&topic);
    let want: usize = ends.values().map(|e| *e as usize).sum();
    assert_eq!(want, 600);
    let handled_by = |m: &Ours| -> BTreeMap<(i64, i64), usize> {
        records(&m.out)
            .into_iter()
            .map(|((_, p, o), n)| ((p, o), n))
            .collect()
    };
    let logs = || {
        format!(
            "ours0:\n{}\nours1:\n{}\njava:\n{}",
            ours[0].text(),
            ours[1].text(),
            java.text()
        )
    };
    wait_until(
        180,
        "every record handled",
        || {
            let mut seen: BTreeSet<(i64, i64)> = java.records().0.into_iter().collect();
            for m in &ours {
                seen.extend(handled_by(m).into_keys());
            }
            seen.len() >= want
        },
        logs,
    );
    let (java_records, java_uncommitted) = java.records();
    let mut all: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for r in &java_records {
        *all.entry(*r).or_default() += 1;
    }
    for m in &ours {
        let mine = handled_by(m);
        assert!(
            mine.values().all(|n| *n == 1),
            "our member repeated a record"
        );
        assert!(!mine.is_empty(), "our member handled nothing:\n{}", logs());
        for (k, n) in mine {
            *all.entry(k).or_default() += n;
        }
    }
    assert!(!java_records.is_empty(), "the Java member handled nothing");
    for (p, end) in &ends {
        for o in 0..*end {
            assert!(
                all.contains_key(&(*p as i64, o)),
                "partition {p} offset {o} lost"
            );
        }
    }
    let twice: Vec<&(i64, i64)> = all
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        twice.iter().all(|r| java_uncommitted.contains(r)),
        "handled twice without a refused commit: {twice:?}\n{}",
        logs()
    );
    eprintln!(
        "mixed group (java {java_assignor}, {}): {} records, {} handled twice after a refused Java commit",
        if java_first { "java first" } else { "ours first" },
        all.len(),
        twice.len()
    );
    for m in &ours {
        // The group settles on what every member supports (ours alone start cooperative).
        let a = m.assignments();
        assert_eq!(
            a.last().map(|x| x.protocol.as_str()),
            Some(protocol),
            "{a:?}"
        );
        if protocol == "cooperative-sticky" {
            assert!(readded(&a).is_empty(), "{a:?}");
        }
    }
    drop(java);
    for m in ours {
        m.stop();
    }
}

#[test]
fn mixed_with_java_cooperative_sticky_ours_first() {
    mixed_group(false, "CooperativeStickyAssignor", "cooperative-sticky");
}

#[test]
fn mixed_with_java_cooperative_sticky_java_first() {
    mixed_group(true, "CooperativeStickyAssignor", "cooperative-sticky");
}

#[test]
fn mixed_with_java_range_ours_first() {
    mixed_group(false, "RangeAssignor", "range");
}

#[test]
fn mixed_with_java_range_java_first() {
    mixed_group(true, "RangeAssignor", "range");
}

/// The kafkadata of issue 12's mapping: group `group` read by job 1 on topic 1, job 2 on topics
/// 1–2, job 3 on topics 1–3.
pub fn chain_mapping(topics: &[String], jobs: &[String], group: &str) -> String {
    let mut yaml = String::new();
    for (t, topic) in topics.iter().enumerate() {
        yaml.push_str(&format!("{topic}:\n  jobs:\n"));
        for job in &jobs[t..] {
            yaml.push_str(&format!("    - {{name: {job}, consumer_group: {group}}}\n"));
        }
    }
    yaml
}

/// Records handled by the instances of an observer whose handler writes `out-*.jsonl` in `dir`.
pub fn handled_in(dir: &Path) -> BTreeMap<(String, i64, i64), usize> {
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("out-") && name.ends_with(".jsonl") {
            for (k, n) in records(&e.path()) {
                *all.entry(k).or_default() += n;
            }
        }
    }
    all
}

/// `kafka_observer_instances_started_total` of `job`.
pub fn started(obs: &ObserverProc, job: &str) -> u64 {
    obs.metric(&format!(
        "kafka_observer_instances_started_total{{job=\"{job}\"}}"
    ))
    .unwrap_or(0.0) as u64
}

#[test]
fn a_shared_group_wakes_one_instance_per_lagging_partition_and_handles_each_record_once() {
    let b = harness::broker();
    let dir = temp_dir("groups-plan");
    let topics: Vec<String> = (1..=3)
        .map(|i| harness::unique(&format!("chain{i}")))
        .collect();
    let jobs: Vec<String> = (1..=3)
        .map(|i| harness::unique(&format!("chain-{i}")))
        .collect();
    let group = harness::unique("chain-consumers");
    for t in &topics {
        b.create_topic(t, 1);
        b.produce(t, 0, 1);
    }
    let kd = dir.join("kafkadata");
    std::fs::write(&kd, chain_mapping(&topics, &jobs, &group)).unwrap();
    let exec = format!("cat >> {}/out-$CE_JOBRUN-$JOB_INDEX.jsonl", dir.display());
    let mut obs = local_observer_in(
        &dir,
        &kd,
        &[],
        &[("CONSUMER_EXEC", &exec), ("IDLE_TIMEOUT", "3")],
    );
    wait_until(
        120,
        "the three records handled",
        || handled_in(&dir).len() >= 3,
        || obs.log_text(),
    );
    // Everything committed: nothing more will start.
    let lag = format!("kafka_consumergroup_group_sum_lag{{group=\"{group}\"}}");
    obs.wait_metric(120, &lag, "the group's lag to reach 0", |v| v == 0.0);
    obs.wait_cycles(20);
    let per_job: Vec<u64> = jobs.iter().map(|j| started(&obs, j)).collect();
    let total: u64 = per_job.iter().sum();
    eprintln!("instances started per job (topics 1, 1-2, 1-3): {per_job:?}");
    // A plan per job started 1 + 2 + 3 = 6 for these 3 partitions.
    assert!(
        (1..=3).contains(&total),
        "{per_job:?} instances for 3 lagging partitions:\n{}",
        obs.log_text()
    );
    let all = handled_in(&dir);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.values().all(|n| *n == 1), "handled twice: {all:?}");
    let committed: BTreeMap<String, Option<i64>> = b
        .describe_group(&group)
        .into_iter()
        .map(|r| (r.topic, r.current_offset))
        .collect();
    for t in &topics {
        assert_eq!(committed.get(t), Some(&Some(1)), "{committed:?}");
    }
    assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
}

#[test]
fn check_explains_a_shared_group_as_the_readme_shows() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme.find("\n## `kafka-observer check`\n").unwrap();
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let block = |after: usize, lang: &str| -> (usize, String) {
        let open = format!("```{lang}\n");
        let s = section[after..].find(&open).unwrap() + after + open.len();
        let e = section[s..].find("```").unwrap() + s;
        (e, section[s..e].to_string())
    };
    let (end, yaml) = block(0, "yaml");
    let (_, console) = block(end, "console");
    let (command, shown) = console.split_once('\n').unwrap();
    let args: Vec<&str> = command
        .strip_prefix("$ kafka-observer ")
        .unwrap()
        .split_whitespace()
        .collect();
    let dir = temp_dir("groups-check");
    std::fs::write(dir.join("kafkadata-chain"), &yaml).unwrap();
    let out = crate::support::command(&args)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown);
    // The warning says the same, and the README quotes it.
    let warning = "consumer group 'chain-consumers' is shared by jobs 'chain-1', 'chain-2' and \
                   'chain-3': they split its partitions, and the observer wakes one instance per \
                   lagging partition of the group, not per job ('kafka-observer check' explains \
                   the mapping)";
    assert!(stderr.contains(warning), "{stderr}");
    let unwrapped = section.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(unwrapped.contains(warning), "the README does not quote it");
}
