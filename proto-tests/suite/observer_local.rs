//! The observer with the local launcher against the real broker: which jobs wake, when, and
//! how often. A stand-in consumer (a shell script) records each start and stays alive until the
//! test releases its run, so "active" is under the test's control.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness;
use crate::support::observer::{
    local_observer, local_observer_in, sample_mapping, ObserverProc, StandIn,
};
use crate::support::wait::{eventually, exit_within};

#[test]
fn local_launcher_wakes_exactly_the_lagging_jobs_and_heals() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    let mut obs = local_observer(&standin, &m, &[]);
    obs.wait_cycles(3);
    assert!(
        standin.starts().is_empty(),
        "nothing to do yet: {:?}",
        standin.starts()
    );

    // (a) Records in partitions 0 and 1 of payments: both payments jobs get one run of 2.
    b.produce_spread(&m.pay, &[(0, 3), (1, 2)]);
    let runs = standin.wait(60, "both payments jobs to start 2 instances", |s| {
        let r = s.runs();
        let n = |j: &str| {
            r.get(j)
                .map(|runs| runs.values().sum::<usize>())
                .unwrap_or(0)
        };
        (n(&m.jobs[0]) == 2 && n(&m.jobs[1]) == 2).then_some(r)
    });
    // The observer cycles every 100 ms and the two partitions may be seen a cycle apart: two
    // runs of one are as right as one of two. Never more instances than lagging partitions.
    for j in &m.jobs[..2] {
        assert!(runs[j].len() <= 2, "{j}: {runs:?}");
    }
    assert!(
        !runs.contains_key(&m.jobs[2]),
        "shipping has no work: {runs:?}"
    );
    let starts = standin.starts();
    for s in starts.iter().filter(|s| s[0] == m.jobs[0]) {
        let (index, size): (u32, u32) = (s[2].parse().unwrap(), s[3].parse().unwrap());
        assert!(index < size, "{s:?}");
        assert_eq!(
            (s[4].as_str(), s[5].as_str()),
            (m.pay.as_str(), m.groups[0].as_str())
        );
    }

    // (b) While they are active, later cycles start nothing.
    obs.wait_cycles(15);
    assert_eq!(standin.starts().len(), 4, "{:?}", standin.starts());

    // (e) The payments runs end with lag left: the job is woken again.
    let pay_runs = runs[&m.jobs[0]].len();
    let foo_runs = runs[&m.jobs[1]].len();
    for run in runs[&m.jobs[0]].keys() {
        standin.release(run);
    }
    standin.wait(60, "payments-consumer to be woken again", |s| {
        (s.runs().get(&m.jobs[0]).map_or(0, |r| r.len()) > pay_runs).then_some(())
    });
    assert_eq!(
        standin.runs()[&m.jobs[1]].len(),
        foo_runs,
        "foobar was still active"
    );

    // (c) Groups commit to the end; after every instance ends, nothing is started again.
    for g in &m.groups[..2] {
        b.commit_offset(g, &m.pay, 0, 3);
        b.commit_offset(g, &m.pay, 1, 2);
    }
    obs.wait_cycles(3);
    standin.release_all();
    let lag_gone = format!(
        "kafka_consumergroup_group_sum_lag{{group=\"{}\"}}",
        m.groups[0]
    );
    obs.wait_metric(60, &lag_gone, "lag never reached 0", |v| v == 0.0);
    let before = standin.starts().len();
    obs.wait_cycles(15);
    assert_eq!(
        standin.starts().len(),
        before,
        "started after lag reached 0: {:?}",
        standin.starts()
    );

    // Metrics name what happened.
    let created = format!(
        "kafka_observer_jobruns_created_total{{job=\"{}\"}}",
        m.jobs[0]
    );
    assert_eq!(
        obs.metric(&created),
        Some(standin.runs()[&m.jobs[0]].len() as f64)
    );
    let (status, body) = obs.get("/healthz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        obs.stop(),
        Some(0),
        "observer exits 0 on SIGTERM:\n{}",
        obs.log_text()
    );
}

#[test]
fn backlog_present_at_start_is_dispatched_in_the_first_cycle() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    b.produce(&m.ship, 2, 4);
    // One cycle a minute: a launch within 30 s can only come from the first cycle.
    let mut obs = local_observer(&standin, &m, &["--ticker-ms", "60000"]);
    let runs = standin.wait(30, "shipping-consumer to start", |s| {
        s.runs().get(&m.jobs[2]).cloned()
    });
    assert_eq!(runs.values().sum::<usize>(), 1, "{runs:?}");
    assert_eq!(
        standin.runs().len(),
        1,
        "only shipping lags: {:?}",
        standin.runs()
    );
    assert!(obs.metric("kafka_observer_cycles_total").unwrap_or(0.0) <= 1.0);
    standin.release_all();
    obs.stop();
}

#[test]
fn stuck_lag_is_reported_and_wake_ups_back_off() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    // Instances that die at once without committing: the classic crash loop.
    standin.release_all();
    b.produce(&m.ship, 0, 1);
    let mut obs = local_observer(
        &standin,
        &m,
        &["--stuck-cycles", "5", "--stuck-backoff", "3600"],
    );
    let stuck = format!(
        "kafka_observer_partition_stuck{{group=\"{}\",topic=\"{}\",partition=\"0\"}}",
        m.groups[2], m.ship
    );
    obs.wait_metric(60, &stuck, "never reported stuck", |v| v == 1.0);
    assert!(
        obs.log_text().contains("lag is stuck"),
        "{}",
        obs.log_text()
    );
    let after = standin.runs()[&m.jobs[2]].len();
    obs.wait_cycles(30);
    let later = standin.runs()[&m.jobs[2]].len();
    assert!(
        later <= after + 1,
        "wake-ups did not back off: {after} → {later} runs"
    );
    // The commit moves: no longer stuck.
    b.commit_offset(&m.groups[2], &m.ship, 0, 1);
    obs.wait_metric(60, &stuck, "still stuck after commit", |v| v == 0.0);
    obs.stop();
}

/// Requests per cycle for a mapping: the maximum of `kafka_observer_broker_requests_per_cycle`
/// over `cycles` steady cycles.
fn max_requests_per_cycle(obs: &mut ObserverProc, cycles: u64) -> f64 {
    let mut max = 0.0f64;
    for _ in 0..cycles {
        obs.wait_cycles(1);
        max = max.max(
            obs.metric("kafka_observer_broker_requests_per_cycle")
                .unwrap_or(f64::MAX),
        );
    }
    max
}

#[test]
fn broker_requests_per_cycle_do_not_grow_with_partitions_or_groups() {
    // One broker leads every partition and coordinates every group: per cycle at most one
    // ListOffsets per kind (log start, high watermark, last stable) + one OffsetFetch + one
    // Metadata when a refresh is due — whatever the number of topics, partitions and groups.
    // Timed cycles only here, so every cycle asks for the ends; with the long poll, idle
    // partitions need no ListOffsets at all (next test).
    const BOUND: f64 = 3.0 + 1.0 + 1.0;
    let b = harness::broker();
    let standin = StandIn::new();
    let small = sample_mapping(&standin.dir);
    let mut obs = local_observer(
        &standin,
        &small,
        &["--metadata-refresh", "2", "--long-poll", "false"],
    );
    obs.wait_cycles(2);
    let few = max_requests_per_cycle(&mut obs, 30);
    obs.stop();

    let (wide_dir, _) = wide_mapping(b, &standin);
    let mut obs = wide_observer(&standin, &wide_dir, &["--long-poll", "false"]);
    obs.wait_cycles(2);
    let many = max_requests_per_cycle(&mut obs, 30);
    obs.stop();
    eprintln!("broker requests per cycle (max of 30): sample mapping {few}, 72 partitions / 24 groups {many}");
    // At least the 3 ListOffsets and 1 OffsetFetch: the metric measures real traffic.
    assert!(few >= 4.0 && many >= 4.0, "{few} {many}");
    assert!(few <= BOUND, "sample mapping: {few} requests in a cycle");
    assert!(
        many <= BOUND,
        "72 partitions, 24 groups: {many} requests in a cycle"
    );
}

#[test]
fn idle_partitions_under_the_long_poll_need_no_list_offsets() {
    let b = harness::broker();
    let standin = StandIn::new();
    let (wide_dir, topics) = wide_mapping(b, &standin);
    let mut obs = wide_observer(&standin, &wide_dir, &[]);
    let list_offsets = |o: &ObserverProc| {
        o.metric("kafka_observer_broker_requests_total{api=\"ListOffsets\"}")
            .unwrap_or(0.0)
    };
    // The first cycles ask ListOffsets and hand every (idle) partition to the long poll; from
    // then on its answers are the ends.
    obs.wait_cycles(5);
    let before = list_offsets(&obs);
    assert!(before >= 3.0, "no ListOffsets at all: {before}");
    obs.wait_cycles(20);
    let after = list_offsets(&obs);
    assert_eq!(
        before,
        after,
        "idle cycles asked ListOffsets:\n{}",
        obs.log_text()
    );
    assert_eq!(
        obs.metric(&format!(
            "kafka_partition_latest_offset{{topic=\"{}\",partition=\"0\"}}",
            topics[0]
        ))
        .map(|v| v as i64),
        Some(0)
    );
    // A record: the long poll wakes a cycle, which asks ListOffsets for the partition that
    // moved, sees the lag and starts the job.
    b.produce(&topics[0], 3, 1);
    standin.wait(60, "the wide job woken", |s| {
        (!s.runs().is_empty()).then_some(())
    });
    assert!(list_offsets(&obs) > after);
    let latest = format!(
        "kafka_partition_latest_offset{{topic=\"{}\",partition=\"3\"}}",
        topics[0]
    );
    assert_eq!(obs.metric(&latest).map(|v| v as i64), Some(1));
    standin.release_all();
    obs.stop();
}

/// 12 topics × 6 partitions, 20 groups, 24 jobs; returns the mapping's directory and topics.
fn wide_mapping(b: &harness::Broker, standin: &StandIn) -> (std::path::PathBuf, Vec<String>) {
    let mut yaml = String::new();
    let mut topics = Vec::new();
    for t in 0..12 {
        let topic = harness::unique("wide");
        b.create_topic(&topic, 6);
        yaml.push_str(&format!("{topic}:\n  jobs:\n"));
        for j in 0..2 {
            let n = t * 2 + j;
            yaml.push_str(&format!(
                "    - name: {}\n      consumer_group: {}\n",
                harness::unique(&format!("job{n}")),
                harness::unique(&format!("group{}", n % 20))
            ));
        }
        topics.push(topic);
    }
    let wide_dir = standin.dir.join(harness::unique("wide"));
    std::fs::create_dir_all(&wide_dir).unwrap();
    std::fs::write(wide_dir.join("kafkadata"), yaml).unwrap();
    (wide_dir, topics)
}

fn wide_observer(standin: &StandIn, wide_dir: &std::path::Path, extra: &[&str]) -> ObserverProc {
    let exe = standin.exe();
    let args = [
        &["--consumer-exe", exe.as_str(), "--metadata-refresh", "2"],
        extra,
    ]
    .concat();
    local_observer_in(wide_dir, &wide_dir.join("kafkadata"), &args, &[])
}

#[test]
fn partitions_added_later_are_watched_after_a_metadata_refresh() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    let mut obs = local_observer(&standin, &m, &["--metadata-refresh", "1"]);
    obs.wait_cycles(2);
    b.add_partitions(&m.ship, 5);
    b.produce(&m.ship, 4, 2);
    let runs = standin.wait(60, "shipping-consumer woken by the new partition", |s| {
        s.runs().get(&m.jobs[2]).cloned()
    });
    assert_eq!(runs.values().sum::<usize>(), 1, "{runs:?}");
    let series = format!(
        "kafka_partition_latest_offset{{topic=\"{}\",partition=\"4\"}}",
        m.ship
    );
    // The first record may wake the cycle before the second is written: wait for both.
    obs.wait_metric(
        60,
        &series,
        "both records on the new partition exported",
        |v| v == 2.0,
    );
    standin.release_all();
    obs.stop();
}

#[test]
fn transaction_markers_alone_never_wake_a_consumer() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    // Committed and aborted transactions; the group read everything and committed at the end
    // (past the markers), as a read_committed Java consumer does.
    let c = b.produce_txn(&m.ship, 1, 3, true);
    let a = b.produce_txn(&m.ship, 1, 2, false);
    let end = a.end + 1;
    let _ = c;
    let hw = format!(
        "kafka_partition_latest_offset{{topic=\"{}\",partition=\"1\"}}",
        m.ship
    );
    b.commit_offset(&m.groups[2], &m.ship, 1, end);
    let mut obs = local_observer(&standin, &m, &[]);
    obs.wait_metric(60, &hw, "markers never landed", |v| v == end as f64);
    obs.wait_cycles(10);
    assert!(
        standin.starts().is_empty(),
        "woken by markers: {:?}",
        standin.starts()
    );
    let lag = format!(
        "kafka_consumergroup_group_lag{{group=\"{}\",topic=\"{}\",partition=\"1\"}}",
        m.groups[2], m.ship
    );
    assert_eq!(obs.metric(&lag), Some(0.0));
    obs.stop();
}

#[test]
fn a_commit_parked_before_markers_and_aborted_records_is_no_work() {
    // A client that commits before reading the COMMIT marker leaves offset lag with nothing to
    // read behind it (KEDA #5675 wakes consumers for it forever); so does an aborted
    // transaction after it. The observer looks at such small gaps and sees no work.
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    let c = b.produce_txn(&m.ship, 2, 3, true);
    let a = b.produce_txn(&m.ship, 2, 2, false);
    let end = a.end + 1;
    // Parked on the COMMIT marker of the first transaction.
    b.commit_offset(&m.groups[2], &m.ship, 2, c.end);
    let mut obs = local_observer(&standin, &m, &[]);
    let hw = format!(
        "kafka_partition_latest_offset{{topic=\"{}\",partition=\"2\"}}",
        m.ship
    );
    obs.wait_metric(60, &hw, "markers never landed", |v| v == end as f64);
    obs.wait_cycles(10);
    assert!(
        standin.starts().is_empty(),
        "woken for a gap of markers and aborted records: {:?}",
        standin.starts()
    );
    let series = |name: &str| {
        format!(
            "{name}{{group=\"{}\",topic=\"{}\",partition=\"2\"}}",
            m.groups[2], m.ship
        )
    };
    assert_eq!(
        obs.metric(&series("kafka_consumergroup_group_lag")),
        Some(0.0)
    );
    // The committed offset is reported as it is.
    assert_eq!(
        obs.metric(&series("kafka_consumergroup_group_offset")),
        Some(c.end as f64)
    );
    // A visible record behind the same commit is work.
    b.produce(&m.ship, 2, 1);
    standin.wait(60, "shipping-consumer woken", |s| {
        s.runs().get(&m.jobs[2]).cloned()
    });
    // …and then the lag is counted in offsets, as every tool does: 3 (marker) to 8.
    assert_eq!(
        obs.metric(&series("kafka_consumergroup_group_lag")),
        Some((end + 1 - c.end) as f64)
    );
    standin.release_all();
    obs.stop();
}

#[test]
fn local_end_to_end_real_consumers_wake_drain_and_exit() {
    let b = harness::broker();
    let d = std::env::temp_dir().join(harness::unique("e2e"));
    std::fs::create_dir_all(&d).unwrap();
    let m = sample_mapping(&d);
    let mut obs = local_observer_in(
        &d,
        &m.file,
        &["--ticker-ms", "200"],
        &[("IDLE_TIMEOUT", "3"), ("SESSION_TIMEOUT", "6")],
    );
    obs.wait_cycles(2);
    b.produce(&m.pay, 0, 5);
    b.produce(&m.ship, 2, 3);
    // Three jobs had work: three consumers start, drain, commit and leave on their own.
    obs.wait_log(120, "three consumers to finish", |t| {
        (t.matches("consumer stopped").count() >= 3).then_some(())
    });
    for (g, topic, p, end) in [
        (&m.groups[0], &m.pay, 0, 5),
        (&m.groups[1], &m.pay, 0, 5),
        (&m.groups[2], &m.ship, 2, 3),
    ] {
        let rows = b.describe_group(g);
        let row = rows
            .iter()
            .find(|r| &r.topic == topic && r.partition == p)
            .unwrap_or_else(|| panic!("{g}: {rows:?}"));
        assert_eq!(row.current_offset, Some(end), "{g}");
        assert_eq!(row.lag, Some(0), "{g}");
    }
    let text = obs.log_text();
    assert_eq!(text.matches("woke consumers").count(), 3, "{text}");
    // Lag is 0: no further launches.
    obs.wait_cycles(10);
    assert_eq!(obs.log_text().matches("woke consumers").count(), 3);
    assert_eq!(obs.stop(), Some(0));
}

/// A consumer that drained its work and exited is reaped at once, not at its job's next count
/// (a job with no lag is not counted again): no zombie child of the observer remains.
#[test]
fn consumers_that_exit_idle_leave_no_zombie() {
    let b = harness::broker();
    let d = std::env::temp_dir().join(harness::unique("reap"));
    std::fs::create_dir_all(&d).unwrap();
    let m = sample_mapping(&d);
    let mut obs = local_observer_in(
        &d,
        &m.file,
        &["--ticker-ms", "200"],
        &[("IDLE_TIMEOUT", "2"), ("SESSION_TIMEOUT", "6")],
    );
    obs.wait_cycles(2);
    // Only the shipping job has work: one consumer starts, drains, commits and exits.
    b.produce(&m.ship, 1, 2);
    obs.wait_log(120, "the consumer to finish", |t| {
        t.contains("consumer stopped").then_some(())
    });
    // Its process ends just after that line; from then on the observer has no child at all,
    // dead or alive (with the bug: one in state Z until the job is counted again).
    eventually(60, "no child of the observer, zombie or not", || {
        let children = obs.children();
        if children.is_empty() {
            Ok(())
        } else {
            Err(format!("children (pid, state): {children:?}"))
        }
    });
    let text = obs.log_text();
    assert_eq!(text.matches("woke consumers").count(), 1, "{text}");
    assert_eq!(obs.stop(), Some(0));
}

#[test]
fn the_long_poll_wakes_at_the_first_record_and_storms_coalesce() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    // Timed cycles every 10 minutes: only the long poll can explain a prompt wake-up.
    let mut obs = local_observer(
        &standin,
        &m,
        &["--ticker-ms", "600000", "--idle-ticker-ms", "600000"],
    );
    obs.wait_metric(60, "kafka_observer_cycles_total", "no first cycle", |v| {
        v >= 1.0
    });
    let produced = Instant::now();
    b.produce(&m.ship, 1, 1);
    standin.wait(30, "shipping-consumer woken by the long poll", |s| {
        s.runs().get(&m.jobs[2]).cloned()
    });
    eprintln!(
        "long-poll wake-up (including the Java producer's exit): {:?}",
        produced.elapsed()
    );
    let cycles = obs.metric("kafka_observer_cycles_total").unwrap();
    // A storm on another idle partition: the first record wakes one cycle, which sees lag and
    // stops watching that partition; the rest of the storm costs nothing.
    let n = "2000".to_string();
    let props = format!("bootstrap.servers={}", b.plaintext());
    let out = b.java(
        "org.apache.kafka.tools.ProducerPerformance",
        &[
            "--topic",
            &m.pay,
            "--num-records",
            &n,
            "--record-size",
            "100",
            "--throughput",
            "2000",
            "--producer-props",
            &props,
            "linger.ms=0",
            "batch.size=200",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    standin.wait(30, "payments jobs woken", |s| {
        s.runs().get(&m.jobs[0]).cloned()
    });
    let after = obs.metric("kafka_observer_cycles_total").unwrap();
    assert!(
        after - cycles <= 3.0,
        "{} cycles for one storm",
        after - cycles
    );
    standin.release_all();
    obs.stop();
}

/// `observe` against `bootstrap` with `extra` flags and the local launcher; (exit code within
/// 60 s, all output).
fn observe_until_exit(dir: &Path, bootstrap: &str, extra: &[&str]) -> (Option<i32>, String) {
    let m = sample_mapping(dir);
    let log = dir.join(harness::unique("start.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = crate::support::command(&[
        "observe",
        "--metrics-addr",
        "127.0.0.1:0",
        "--launcher",
        "local",
        "--consumer-exe",
        "/bin/true",
        "--bootstrap",
        bootstrap,
        "--kafkadata",
        m.file.to_str().unwrap(),
    ]);
    cmd.args(extra)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .env("LOG_LEVEL", "info");
    let mut child = cmd.spawn().unwrap();
    let code = exit_within(&mut child, 60).and_then(|s| s.code());
    (code, std::fs::read_to_string(&log).unwrap_or_default())
}

/// Errors no retry can fix end `observe` with exit 1 and the reason (so a daemon job run shows
/// as failed, with the reason in its log): a wrong password names user and mechanism, never
/// the password; an untrusted certificate says so.
#[test]
fn permanent_start_up_errors_exit_1_with_the_reason() {
    let b = harness::broker();
    let d = std::env::temp_dir().join(harness::unique("start-errors"));
    std::fs::create_dir_all(&d).unwrap();
    let t = Instant::now();
    let (code, out) = observe_until_exit(
        &d,
        &b.sasl_plaintext(),
        &[
            "--sasl-mechanism",
            "SCRAM-SHA-256",
            "--username",
            "alice",
            "--password",
            "Not-Alices-Password-77",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "{:?}: {out}",
        t.elapsed()
    );
    assert!(
        out.contains("alice") && out.contains("SCRAM-SHA-256"),
        "{out}"
    );
    assert!(out.contains("authentication failed"), "{out}");
    assert!(!out.contains("Not-Alices-Password-77"), "{out}");

    let wrong_ca = b.wrong_ca_file().to_str().unwrap().to_string();
    let (code, out) = observe_until_exit(
        &d,
        &b.sasl_ssl(),
        &[
            "--tls",
            "--ca-file",
            &wrong_ca,
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--username",
            "bob",
            "--password",
            "bob-secret",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("TLS handshake"), "{out}");
    assert!(!out.contains("bob-secret"), "{out}");
}

/// A broker that is not reachable yet is asked again, with a line per back-off step, and the
/// observer keeps running.
#[test]
fn an_unreachable_cluster_at_start_is_retried_with_a_line_per_step() {
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bootstrap = format!("127.0.0.1:{port}");
    let exe = standin.exe();
    let mut obs = ObserverProc::start(
        &standin.dir,
        &[
            "--launcher",
            "local",
            "--consumer-exe",
            &exe,
            "--bootstrap",
            &bootstrap,
            "--kafkadata",
            m.file.to_str().unwrap(),
        ],
        &[],
    );
    obs.wait_log(90, "two retry lines", |t| {
        (t.matches("Kafka cluster not reachable yet; retrying")
            .count()
            >= 2)
            .then_some(())
    });
    assert!(obs.running(), "{}", obs.log_text());
    assert_eq!(obs.get("/healthz").0, 503);
    obs.stop();
}
