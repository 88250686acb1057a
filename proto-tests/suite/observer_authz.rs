//! The long poll (event-driven wake-ups) where it may not or must not wake: a topic the observer
//! may describe but not read (Fetch answers TOPIC_AUTHORIZATION_FAILED, so that topic falls back
//! to timed cycles), and a read_committed observer facing an open transaction (the wake-up
//! follows the commit, not the records).

use std::time::Instant;

use crate::harness::{self, Broker, Options};
use crate::support::observer::{local_observer, sample_mapping, StandIn};

const CYCLES: &str = "kafka_observer_cycles_total";
const FAILURES: &str = "kafka_observer_cycle_failures_total";
const DENIED_LOG: &str = "not authorised to Fetch";

/// Instances started per job so far.
fn instances(standin: &StandIn, job: &str) -> usize {
    standin
        .runs()
        .get(job)
        .map_or(0, |runs| runs.values().sum::<usize>())
}

/// `text` without ANSI escape sequences (the log's colours: `ESC [ ... letter`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The observer's "not authorised to Fetch" lines, as the topics they name.
fn denied_topics(log: &str) -> Vec<String> {
    plain(log)
        .lines()
        .filter(|l| l.contains(DENIED_LOG))
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("topic="))
                .unwrap_or("<none>")
                .to_string()
        })
        .collect()
}

#[test]
fn a_topic_the_observer_may_describe_but_not_read_falls_back_to_timed_cycles() {
    let b = Broker::start_with(Options {
        authorizer: true,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let standin = StandIn::new();
    let denied = harness::unique("authz-describe-only");
    let readable = harness::unique("authz-readable");
    let principal = format!("User:{}", harness::DESCRIBER.0);
    // Both topics get ACLs, so `allow.everyone.if.no.acl.found` no longer applies to them: the
    // observer's user may describe `denied` (Metadata, ListOffsets, OffsetFetch) but not read it
    // (Fetch), and may read (which implies describe) `readable`. Groups have no ACLs: open.
    std::thread::scope(|s| {
        for (topic, operation) in [(&denied, "Describe"), (&readable, "Read")] {
            let (b, principal) = (&b, &principal);
            s.spawn(move || {
                b.create_topic(topic, 2);
                #[rustfmt::skip]
                b.acl(&[
                    "--add", "--allow-principal", principal, "--operation", operation,
                    "--topic", topic,
                ]);
            });
        }
    });
    let (denied_job, readable_job) = (harness::unique("denied-job"), harness::unique("read-job"));
    let (denied_group, readable_group) = (
        harness::unique("denied-group"),
        harness::unique("read-group"),
    );
    let kafkadata = standin.dir.join("kafkadata");
    std::fs::write(
        &kafkadata,
        format!(
            "{denied}:\n  jobs:\n    - name: {denied_job}\n      consumer_group: {denied_group}\n\
             {readable}:\n  jobs:\n    - name: {readable_job}\n      consumer_group: {readable_group}\n"
        ),
    )
    .unwrap();
    let bootstrap = b.sasl_plaintext();
    let (user, password) = harness::DESCRIBER;
    #[rustfmt::skip]
    let mut obs = local_observer(&standin, &kafkadata, &[
        "--bootstrap", &bootstrap, "--username", user, "--password", password,
        "--sasl-mechanism", "SCRAM-SHA-512", "--ticker-ms", "1000",
    ]);

    // The first long poll over both topics answers TOPIC_AUTHORIZATION_FAILED for `denied`.
    obs.wait_log(60, "the Fetch authorisation warning", |t| {
        (!denied_topics(t).is_empty()).then_some(())
    });
    obs.wait_cycles(4);
    let text = obs.log_text();
    assert_eq!(
        denied_topics(&text),
        std::slice::from_ref(&denied),
        "one warning, for {denied} only:\n{text}"
    );
    assert!(standin.starts().is_empty(), "{:?}", standin.starts());

    // Timed cycles still serve the topic the long poll may not read ...
    b.produce(&denied, 1, 1);
    standin.wait(60, "the describe-only topic's job to start", |s| {
        (instances(s, &denied_job) == 1).then_some(())
    });
    // ... and the long poll keeps watching the readable one.
    b.produce(&readable, 0, 1);
    standin.wait(60, "the readable topic's job to start", |s| {
        (instances(s, &readable_job) == 1).then_some(())
    });
    obs.wait_cycles(4);
    let text = obs.log_text();
    assert_eq!(
        denied_topics(&text),
        std::slice::from_ref(&denied),
        "still one warning, for {denied} only:\n{text}"
    );
    let runs = standin.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(instances(&standin, &denied_job), 1, "{runs:?}");
    assert_eq!(instances(&standin, &readable_job), 1, "{runs:?}");
    assert_eq!(obs.metric(FAILURES), Some(0.0), "{text}");
    assert!(!text.contains("cycle failed"), "{text}");
    // The readable topic's long poll ran (and was allowed to).
    let fetches = obs
        .metric("kafka_observer_broker_requests_total{api=\"Fetch\"}")
        .unwrap_or(0.0);
    assert!(
        fetches >= 1.0,
        "no long-poll Fetch:\n{}",
        obs.get("/metrics").1
    );
    standin.release_all();
    assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
}

#[test]
fn read_committed_long_poll_wakes_at_the_commit_not_at_the_open_transaction() {
    let b = harness::broker();
    let standin = StandIn::new();
    let m = sample_mapping(&standin.dir);
    let bootstrap = b.plaintext();
    // Timed cycles every 10 minutes: every cycle after the first is a long-poll wake-up.
    #[rustfmt::skip]
    let mut obs = local_observer(&standin, &m.file, &[
        "--bootstrap", &bootstrap, "--isolation", "read_committed",
        "--ticker-ms", "600000", "--idle-ticker-ms", "600000",
    ]);
    assert_eq!(obs.wait_metric(60, CYCLES, "cycles", |v| v >= 1.0), 1.0);

    // Two records of shipping-1 in an open transaction: the high watermark moves, the last
    // stable offset does not, so a read_committed long poll must not wake.
    let txn = b.open_txn(&m.ship, 1, 2);
    assert_eq!(txn.offsets, 0..2);
    // A plain record in payments wakes the long poll; that cycle sees the open transaction.
    b.produce(&m.pay, 0, 1);
    standin.wait(60, "both payments jobs woken by the long poll", |s| {
        (instances(s, &m.jobs[0]) == 1 && instances(s, &m.jobs[1]) == 1).then_some(())
    });
    let cycles = obs.wait_metric(30, CYCLES, "cycles", |v| v >= 2.0);
    assert_eq!(
        cycles,
        2.0,
        "the open transaction's records woke the observer:\n{}",
        obs.log_text()
    );
    let series = |name: &str| {
        format!(
            "kafka_partition_{name}_offset{{topic=\"{}\",partition=\"1\"}}",
            m.ship
        )
    };
    assert_eq!(
        (
            obs.metric(&series("latest")),
            obs.metric(&series("last_stable"))
        ),
        (Some(2.0), Some(0.0)),
        "the second cycle saw the open transaction:\n{}",
        obs.get("/metrics").1
    );
    assert_eq!(
        instances(&standin, &m.jobs[2]),
        0,
        "woken by uncommitted records: {:?}",
        standin.starts()
    );

    // The commit moves the last stable offset: the long poll wakes the shipping job.
    let committed = Instant::now();
    txn.commit();
    standin.wait(60, "shipping-consumer woken by the commit", |s| {
        (instances(s, &m.jobs[2]) == 1).then_some(())
    });
    eprintln!(
        "read_committed wake-up after the commit (including the Java producer's exit): {:?}",
        committed.elapsed()
    );
    obs.wait_metric(30, CYCLES, "cycles", |v| v >= 3.0);
    let lag = format!(
        "kafka_consumergroup_group_lag{{group=\"{}\",topic=\"{}\",partition=\"1\"}}",
        m.groups[2], m.ship
    );
    // Two records and the commit marker, all below the new last stable offset.
    assert_eq!(obs.metric(&lag), Some(3.0), "{}", obs.get("/metrics").1);
    assert_eq!(obs.metric(FAILURES), Some(0.0), "{}", obs.log_text());
    standin.release_all();
    assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
}
