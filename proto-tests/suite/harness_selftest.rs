//! Proves the harness itself: broker, listeners, topics, produce, commits, describe, transactions.

use std::net::TcpStream;
use std::time::Duration;

use crate::harness::{self, parse_group_table, GroupRow};
use crate::support::eventually_every;

/// Polls `describe_group` until `done` holds for its rows, or panics with the last rows seen.
fn await_group(group: &str, what: &str, done: impl Fn(&[GroupRow]) -> bool) -> Vec<GroupRow> {
    let pause = Duration::from_millis(500);
    eventually_every(pause, 60, &format!("group {group}: {what}"), || {
        let rows = harness::broker().describe_group(group);
        if done(&rows) {
            Ok(rows)
        } else {
            Err(format!("last rows: {rows:#?}"))
        }
    })
}

fn row(rows: &[GroupRow], partition: i32) -> Option<&GroupRow> {
    rows.iter().find(|r| r.partition == partition)
}

#[test]
fn harness_broker_listeners_accept_tcp_and_tls_files_exist() {
    let b = harness::broker();
    for addr in [b.plaintext(), b.sasl_plaintext(), b.sasl_ssl()] {
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    }
    let ca = std::fs::read_to_string(b.ca_file()).expect("CA file");
    let wrong = std::fs::read_to_string(b.wrong_ca_file()).expect("wrong CA file");
    assert!(ca.contains("BEGIN CERTIFICATE") && wrong.contains("BEGIN CERTIFICATE"));
    assert_ne!(ca, wrong);
    assert!(b.libs_dir().join("kafka-clients-4.3.1.jar").is_file());
    assert!(b.work_dir().join("logs").join("server.log").is_file());
    assert!(b.is_running());
    assert_ne!(harness::unique("x"), harness::unique("x"));
}

#[test]
fn harness_produce_commit_describe() {
    let b = harness::broker();
    let topic = harness::unique("selftest");
    let group = harness::unique("selftest-group");
    b.create_topic(&topic, 3);

    assert_eq!(b.produce(&topic, 1, 5), 0..5);
    assert_eq!(b.produce(&topic, 2, 2), 0..2);
    b.commit_offset(&group, &topic, 1, 3);
    b.commit_offset(&group, &topic, 2, 0);

    // Only partitions with a committed offset are listed for a group without members.
    let rows = await_group(&group, "2 committed partitions", |r| r.len() == 2);
    let p1 = row(&rows, 1).expect("partition 1");
    assert_eq!(p1.group, group);
    assert_eq!(p1.topic, topic);
    assert_eq!(
        (p1.current_offset, p1.log_end_offset, p1.lag),
        (Some(3), Some(5), Some(2))
    );
    let p2 = row(&rows, 2).expect("partition 2");
    assert_eq!(
        (p2.current_offset, p2.log_end_offset, p2.lag),
        (Some(0), Some(2), Some(2))
    );
    assert!(row(&rows, 0).is_none());

    b.add_partitions(&topic, 4);
    assert_eq!(b.produce(&topic, 3, 1), 0..1);
    b.commit_offset(&group, &topic, 3, 1);
    let rows = await_group(&group, "partition 3 committed", |r| r.len() == 3);
    let p3 = row(&rows, 3).expect("partition 3");
    assert_eq!(
        (p3.current_offset, p3.log_end_offset, p3.lag),
        (Some(1), Some(1), Some(0))
    );

    assert!(b
        .describe_group(&harness::unique("no-such-group"))
        .is_empty());
}

#[test]
fn harness_transactions_add_markers() {
    let b = harness::broker();
    let topic = harness::unique("selftest-txn");
    let group = harness::unique("selftest-txn-group");
    b.create_topic(&topic, 1);
    b.commit_offset(&group, &topic, 0, 0);

    // 3 records + 1 commit marker.
    assert_eq!(b.produce_txn(&topic, 0, 3, true), 0..3);
    await_group(&group, "log end 4", |r| {
        row(r, 0).and_then(|r| r.log_end_offset) == Some(4)
    });
    // 2 records + 1 abort marker.
    assert_eq!(b.produce_txn(&topic, 0, 2, false), 4..6);
    let rows = await_group(&group, "log end 7", |r| {
        row(r, 0).and_then(|r| r.log_end_offset) == Some(7)
    });
    assert_eq!(row(&rows, 0).unwrap().lag, Some(7));

    // Transactional load: every record plus at least one marker.
    let perf_topic = harness::unique("selftest-perf");
    b.create_topic(&perf_topic, 1);
    b.producer_perf_txn(&perf_topic, 200, &harness::unique("perf-txn"));
    b.commit_offset(&group, &perf_topic, 0, 200);
    let rows = await_group(&group, "perf topic committed", |r| {
        r.iter().any(|r| r.topic == perf_topic)
    });
    let perf = rows.iter().find(|r| r.topic == perf_topic).unwrap();
    assert!(perf.log_end_offset.unwrap() > 200, "{perf:?}");
}

#[test]
fn harness_parses_describe_output_by_header() {
    let out = "\n\
        Warning: something odd\n\
        \n\
        GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID\n\
        g      t      1          -               5               -    -            -     -\n\
        g      t      0          3               5               2    c-1          /127.0.0.1  cli\n";
    let rows = parse_group_table(out);
    assert_eq!(
        rows,
        vec![
            GroupRow {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                current_offset: Some(3),
                log_end_offset: Some(5),
                lag: Some(2),
            },
            GroupRow {
                group: "g".into(),
                topic: "t".into(),
                partition: 1,
                current_offset: None,
                log_end_offset: Some(5),
                lag: None,
            },
        ]
    );
}

/// The SASL listeners authenticate the configured users with the official Java client, TLS is
/// verified against `ca_file()` and fails against `wrong_ca_file()`.
#[test]
fn harness_sasl_listeners_work_with_java_client() {
    let b = harness::broker();
    let topic = harness::unique("selftest-sasl");
    b.create_topic(&topic, 1);
    let list = |bootstrap: String, config: std::path::PathBuf| {
        let config = config.to_string_lossy().into_owned();
        #[rustfmt::skip]
        let args = ["--bootstrap-server", &bootstrap, "--command-config", &config, "--list"];
        b.java("org.apache.kafka.tools.TopicCommand", &args)
    };
    let ok = |bootstrap: String, config| {
        let out = list(bootstrap, config);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.lines().any(|l| l == topic),
            "{out:?}"
        );
    };
    let ca = Some(b.ca_file());
    ok(
        b.sasl_plaintext(),
        b.sasl_client_config(None, "PLAIN", "alice", "alice-secret"),
    );
    ok(
        b.sasl_plaintext(),
        b.sasl_client_config(None, "SCRAM-SHA-256", "bob", "bob-secret"),
    );
    ok(
        b.sasl_ssl(),
        b.sasl_client_config(ca, "SCRAM-SHA-512", "alice", "alice-secret"),
    );
    ok(
        b.sasl_ssl(),
        b.sasl_client_config(ca, "PLAIN", "bob", "bob-secret"),
    );

    let bad_password = list(
        b.sasl_plaintext(),
        b.sasl_client_config(None, "SCRAM-SHA-512", "bob", "wrong"),
    );
    let text = String::from_utf8_lossy(&bad_password.stdout);
    assert!(
        !bad_password.status.success() && text.contains("invalid credentials"),
        "{bad_password:?}"
    );
    let wrong_ca = list(
        b.sasl_ssl(),
        b.sasl_client_config(Some(b.wrong_ca_file()), "PLAIN", "alice", "alice-secret"),
    );
    let text = String::from_utf8_lossy(&wrong_ca.stdout);
    assert!(
        !wrong_ca.status.success() && text.contains("SSL handshake failed"),
        "{wrong_ca:?}"
    );
}

/// A private broker (not the shared one) stops on request: ports close, work dir goes away.
#[test]
fn harness_private_broker_stops() {
    let b = harness::Broker::start().unwrap_or_else(|e| panic!("{e}"));
    let addr = b.plaintext();
    TcpStream::connect(&addr).expect("private broker accepts connections");
    b.stop();
    assert!(!b.is_running());
    assert!(TcpStream::connect(&addr).is_err(), "{addr} still open");
    assert!(!b.work_dir().exists(), "{:?} left behind", b.work_dir());
    b.stop(); // idempotent
}
