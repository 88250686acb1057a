//! `kafka-observer lag` against the real broker, with kafka-consumer-groups as the oracle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, USERS};
use crate::support::{eventually, run as ko, run_env as ko_env, text};

/// `lag --json` parsed into group → (topic, partition) → row.
fn lag_json(args: &[&str]) -> BTreeMap<String, BTreeMap<(String, i64), Value>> {
    let out = ko(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("lag --json prints JSON");
    let mut groups = BTreeMap::new();
    for g in v["groups"].as_array().expect("groups array") {
        let mut rows = BTreeMap::new();
        for p in g["partitions"].as_array().expect("partitions array") {
            rows.insert(
                (
                    p["topic"].as_str().unwrap().to_string(),
                    p["partition"].as_i64().unwrap(),
                ),
                p.clone(),
            );
        }
        groups.insert(g["group"].as_str().unwrap().to_string(), rows);
    }
    groups
}

/// A topic with `counts[p]` records in partition p.
fn topic_with(counts: &[u32]) -> String {
    let b = harness::broker();
    let topic = harness::unique("lag");
    b.create_topic(&topic, counts.len() as i32);
    for (p, n) in counts.iter().enumerate() {
        if *n > 0 {
            b.produce(&topic, p as i32, *n);
        }
    }
    topic
}

#[test]
fn every_listener_and_mechanism_reads_offsets() {
    let b = harness::broker();
    let topic = topic_with(&[3, 0]);
    let group = harness::unique("g");
    b.commit_offset(&group, &topic, 0, 1);
    let ca = b.ca_file().to_str().unwrap().to_string();
    let plain = b.plaintext();
    let sasl = b.sasl_plaintext();
    let ssl = b.sasl_ssl();
    let (user, pass) = USERS[0];
    let mut cases: Vec<(String, Vec<String>)> =
        vec![("PLAINTEXT".into(), vec!["--bootstrap".into(), plain])];
    for mech in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let mut a: Vec<String> = [
            "--bootstrap",
            &sasl,
            "--username",
            user,
            "--password",
            pass,
            "--sasl-mechanism",
            mech,
        ]
        .map(String::from)
        .to_vec();
        if mech == "PLAIN" {
            a.push("--allow-plain-without-tls".into());
        }
        cases.push((format!("SASL_PLAINTEXT {mech}"), a));
        cases.push((
            format!("SASL_SSL {mech}"),
            [
                "--bootstrap",
                &ssl,
                "--tls",
                "--ca-file",
                &ca,
                "--username",
                user,
                "--password",
                pass,
                "--sasl-mechanism",
                mech,
            ]
            .map(String::from)
            .to_vec(),
        ));
    }
    for (name, conn) in cases {
        let mut args: Vec<&str> = vec!["lag", "--json", "--group", &group, "--topic", &topic];
        args.extend(conn.iter().map(String::as_str));
        let groups = lag_json(&args);
        let rows = &groups[&group];
        let p0 = &rows[&(topic.clone(), 0)];
        assert_eq!(p0["committed"], 1, "{name}: {p0}");
        assert_eq!(p0["high_watermark"], 3, "{name}: {p0}");
        assert_eq!(p0["last_stable"], 3, "{name}: {p0}");
        assert_eq!(p0["log_start"], 0, "{name}: {p0}");
        assert_eq!(p0["lag"], 2, "{name}: {p0}");
        let p1 = &rows[&(topic.clone(), 1)];
        assert_eq!(p1["committed"], Value::Null, "{name}: {p1}");
        assert_eq!(p1["lag"], Value::Null, "{name}: {p1}");
        assert_eq!(p1["high_watermark"], 0, "{name}: {p1}");
    }
}

#[test]
fn the_event_streams_environment_is_understood() {
    // The binding's variables: brokers as a JSON array, user and password; TLS implied.
    let b = harness::broker();
    let topic = topic_with(&[2]);
    let group = harness::unique("g");
    b.commit_offset(&group, &topic, 0, 2);
    let brokers = format!("[\"{}\"]", b.sasl_ssl());
    let out = ko_env(
        &["lag", "--json", "--group", &group, "--topic", &topic],
        &[
            ("MESSAGEHUB_KAFKA_BROKERS_SASL", &brokers),
            ("MESSAGEHUB_USER", "alice"),
            ("MESSAGEHUB_PASSWORD", "alice-secret"),
            ("KAFKA_CA_FILE", b.ca_file().to_str().unwrap()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["groups"][0]["partitions"][0]["committed"], 2, "{v}");
    assert_eq!(v["groups"][0]["total_lag"], 0, "{v}");
}

#[test]
fn wrong_password_is_a_clear_authentication_error() {
    let b = harness::broker();
    for (mech, addr, tls) in [
        ("SCRAM-SHA-256", b.sasl_plaintext(), false),
        ("SCRAM-SHA-512", b.sasl_ssl(), true),
        ("PLAIN", b.sasl_ssl(), true),
    ] {
        let mut args = vec![
            "lag",
            "--group",
            "g",
            "--topic",
            "t",
            "--bootstrap",
            &addr,
            "--username",
            "alice",
            "--password",
            "not-the-Secret-42",
            "--sasl-mechanism",
            mech,
        ];
        let ca = b.ca_file().to_str().unwrap().to_string();
        if tls {
            args.extend(["--tls", "--ca-file", &ca]);
        }
        let out = ko(&args);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{mech}: {all}");
        assert!(
            all.contains(&format!(
                "authentication failed for user 'alice' with {mech}"
            )),
            "{mech}: {all}"
        );
        assert!(
            !all.contains("not-the-Secret-42"),
            "{mech}: the password leaked: {all}"
        );
    }
}

#[test]
fn wrong_ca_is_a_clear_certificate_error() {
    let b = harness::broker();
    let ssl = b.sasl_ssl();
    let out = ko(&[
        "lag",
        "--group",
        "g",
        "--topic",
        "t",
        "--bootstrap",
        &ssl,
        "--tls",
        "--ca-file",
        b.wrong_ca_file().to_str().unwrap(),
        "--username",
        "alice",
        "--password",
        "alice-secret",
        "--sasl-mechanism",
        "SCRAM-SHA-256",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("TLS handshake with"), "{all}");
    assert!(all.contains("certificate"), "{all}");
    assert!(all.contains("--ca-file"), "{all}");
    assert!(!all.contains("alice-secret"), "{all}");
}

#[test]
fn plain_without_tls_is_refused_unless_allowed() {
    let b = harness::broker();
    let sasl = b.sasl_plaintext();
    let out = ko(&[
        "lag",
        "--group",
        "g",
        "--topic",
        "t",
        "--bootstrap",
        &sasl,
        "--username",
        "alice",
        "--password",
        "alice-secret",
        "--sasl-mechanism",
        "PLAIN",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("--allow-plain-without-tls"), "{all}");
}

#[test]
fn unreachable_broker_is_exit_1_with_address_and_cause() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = ko(&[
        "lag",
        "--group",
        "g",
        "--topic",
        "t",
        "--bootstrap",
        &addr,
        "--connect-timeout",
        "2",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(&addr), "{all}");
    assert!(all.to_lowercase().contains("refused"), "{all}");
}

#[test]
fn json_agrees_with_kafka_consumer_groups() {
    let b = harness::broker();
    let a = topic_with(&[10, 7, 4]);
    let t2 = topic_with(&[5, 9]);
    let g1 = harness::unique("g1");
    let g2 = harness::unique("g2");
    let g3 = harness::unique("g3");
    // g1: some partitions committed, one not; g2: one group on two topics; g3: caught up.
    b.commit_offset(&g1, &a, 0, 2);
    b.commit_offset(&g1, &a, 1, 7);
    b.commit_offset(&g2, &a, 2, 1);
    b.commit_offset(&g2, &t2, 1, 3);
    b.commit_offset(&g3, &t2, 0, 5);
    let ours = lag_json(&[
        "lag",
        "--json",
        "--bootstrap",
        &b.plaintext(),
        "--group",
        &g1,
        "--group",
        &g2,
        "--group",
        &g3,
    ]);
    for g in [&g1, &g2, &g3] {
        let java = b.describe_group(g);
        assert!(
            !java.is_empty(),
            "kafka-consumer-groups shows nothing for {g}"
        );
        let rows = &ours[g];
        assert_eq!(
            rows.len(),
            java.len(),
            "{g}: rows differ: ours {rows:?} java {java:?}"
        );
        for j in &java {
            let r = &rows[&(j.topic.clone(), j.partition as i64)];
            assert_eq!(
                r["committed"].as_i64(),
                j.current_offset,
                "{g} {}-{}",
                j.topic,
                j.partition
            );
            assert_eq!(
                r["high_watermark"].as_i64(),
                j.log_end_offset,
                "{g} {}-{}",
                j.topic,
                j.partition
            );
            assert_eq!(r["lag"].as_i64(), j.lag, "{g} {}-{}", j.topic, j.partition);
        }
    }
    // Totals: g1 = (10-2) + (7-7) = 8 with one lagging partition.
    let out = ko(&[
        "lag",
        "--json",
        "--bootstrap",
        &b.plaintext(),
        "--group",
        &g1,
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["groups"][0]["total_lag"], 8, "{v}");
    assert_eq!(v["groups"][0]["lagging_partitions"], 1, "{v}");

    // With --topic, partitions without a commit are listed too, with no lag.
    let filtered = lag_json(&[
        "lag",
        "--json",
        "--bootstrap",
        &b.plaintext(),
        "--group",
        &g1,
        "--topic",
        &a,
    ]);
    let rows = &filtered[&g1];
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[&(a.clone(), 2)]["committed"], Value::Null);
    assert_eq!(rows[&(a.clone(), 2)]["high_watermark"], 4);
}

#[test]
fn table_output_and_all_groups() {
    let b = harness::broker();
    let t = topic_with(&[6]);
    let g = harness::unique("tbl");
    b.commit_offset(&g, &t, 0, 2);
    let out = ko(&["lag", "--bootstrap", &b.plaintext(), "--all-groups"]);
    let s = text(&out);
    assert_eq!(out.status.code(), Some(0), "{s}");
    let line = s
        .lines()
        .find(|l| l.starts_with(&g) && l.contains(&t))
        .unwrap_or_else(|| panic!("no row for {g}: {s}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    // kafka-consumer-groups' columns (no member: `-`), then LOG-START, LAST-STABLE, TIME-LAG
    // (the records' age: some seconds).
    let age = cols.last().copied().unwrap_or_default();
    assert!(
        age.ends_with('s')
            && age
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == 'm' || c == 's')
                .is_empty(),
        "{line}"
    );
    assert_eq!(
        cols[..cols.len() - 1],
        [
            g.as_str(),
            t.as_str(),
            "0",
            "2",
            "6",
            "4",
            "-",
            "-",
            "-",
            "0",
            "6"
        ],
        "{line}"
    );
    assert!(
        s.contains(&format!(
            "{g}: total lag 4, 1 of 1 partition lagging; no active members"
        )),
        "{s}"
    );
}

#[test]
fn kafkadata_mapping_selects_groups_and_topics() {
    let b = harness::broker();
    let pay = topic_with(&[3, 1]);
    let ship = topic_with(&[2]);
    let g = harness::unique("paygroup");
    let g2 = harness::unique("shipgroup");
    b.commit_offset(&g, &pay, 0, 3);
    let dir = std::env::temp_dir().join(harness::unique("kd"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kafkadata");
    std::fs::write(
        &file,
        format!(
            "{pay}:\n  partitions: 2\n  jobs:\n    - name: pay-consumer\n      consumer_group: {g}\n\
             {ship}:\n  partitions: 1\n  jobs:\n    - name: ship-consumer\n      consumer_group: {g2}\n    - name: pay-consumer\n      consumer_group: {g}\n"
        ),
    )
    .unwrap();
    let groups = lag_json(&[
        "lag",
        "--json",
        "--bootstrap",
        &b.plaintext(),
        "--kafkadata",
        file.to_str().unwrap(),
    ]);
    assert_eq!(groups.len(), 2, "{groups:?}");
    let rows = &groups[&g];
    assert_eq!(rows.len(), 3, "{rows:?}"); // pay 0,1 + ship 0
    assert_eq!(rows[&(pay.clone(), 0)]["lag"], 0);
    assert_eq!(rows[&(pay.clone(), 1)]["committed"], Value::Null);
    assert_eq!(rows[&(ship.clone(), 0)]["high_watermark"], 2);
    assert_eq!(groups[&g2].len(), 1);
}

#[test]
fn transactional_topic_last_stable_offset_and_lag() {
    let b = harness::broker();
    let t = harness::unique("txn");
    b.create_topic(&t, 1);
    let g = harness::unique("txg");
    // ProducerPerformance in transactions: every record plus one marker per transaction.
    b.producer_perf_txn(&t, 500, &harness::unique("perf"));
    let committed = b.produce_txn(&t, 0, 5, true);
    let aborted = b.produce_txn(&t, 0, 3, false);
    assert!(aborted.start > committed.end, "{committed:?} {aborted:?}");
    // After the abort marker the log ends at aborted.end + 1 and nothing is open: LSO = HW.
    let end = aborted.end + 1;
    b.commit_offset(&g, &t, 0, committed.end);
    let row = eventually(60, "markers to land", || {
        let groups = lag_json(&[
            "lag",
            "--json",
            "--bootstrap",
            &b.plaintext(),
            "--group",
            &g,
        ]);
        let row = groups[&g][&(t.clone(), 0)].clone();
        (row["high_watermark"] == end).then_some(row)
    });
    assert_eq!(row["last_stable"], end, "{row}");
    assert_eq!(row["lag"], end - committed.end, "{row}");
    let java = b.describe_group(&g);
    assert_eq!(java[0].log_end_offset, Some(end));
    // A consumer that read everything commits past the last marker: lag 0, not 1.
    b.commit_offset(&g, &t, 0, end);
    let groups = lag_json(&[
        "lag",
        "--json",
        "--bootstrap",
        &b.plaintext(),
        "--group",
        &g,
    ]);
    assert_eq!(groups[&g][&(t.clone(), 0)]["lag"], 0);
    assert!(end > 500 + 5 + 3, "markers count in the offsets: end {end}");
}

#[test]
fn bad_flags_and_env_exit_2_naming_the_culprit() {
    // (arguments, environment, what stderr must name)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["lag", "--group", "g"], &[], "--bootstrap"),
        (
            &["lag", "--group", "g", "--bootstrap", "nohostport"],
            &[],
            "--bootstrap",
        ),
        (
            &["lag", "--group", "g"],
            &[("MESSAGEHUB_KAFKA_BROKERS_SASL", "[\"host-without-port\"]")],
            "MESSAGEHUB_KAFKA_BROKERS_SASL",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--sasl-mechanism",
                "GSSAPI",
                "--username",
                "u",
                "--password",
                "p",
            ],
            &[],
            "--sasl-mechanism",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--username",
                "u",
            ],
            &[],
            "--password",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--password",
                "hunter2-Secret",
            ],
            &[],
            "--username",
        ),
        (&["lag", "--bootstrap", "h:1"], &[], "--group"),
        (
            &["lag", "--group", "g", "--bootstrap", "h:1", "--watch", "0"],
            &[],
            "--watch",
        ),
        (
            &["lag", "--group", "g", "--bootstrap", "h:1"],
            &[("KAFKA_TLS", "maybe")],
            "KAFKA_TLS",
        ),
        (
            &[
                "lag",
                "--bootstrap",
                "h:1",
                "--kafkadata",
                "/nonexistent/kafkadata",
            ],
            &[],
            "--kafkadata",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--tls",
                "--ca-file",
                "/nonexistent/ca.pem",
            ],
            &[],
            "/nonexistent/ca.pem",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--no-such-flag",
            ],
            &[],
            "--no-such-flag",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--isolation",
                "dirty",
            ],
            &[],
            "--isolation",
        ),
        (
            &[
                "lag",
                "--group",
                "g",
                "--bootstrap",
                "h:1",
                "--ca-file",
                "/tmp/x.pem",
            ],
            &[],
            "--tls",
        ),
    ];
    for (args, env, culprit) in cases {
        let out = ko_env(args, env);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {all}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(culprit),
            "{args:?}: stderr does not name {culprit}: {all}"
        );
        assert!(
            !all.contains("hunter2-Secret"),
            "{args:?}: password leaked: {all}"
        );
    }
}

#[test]
fn bad_kafkadata_is_exit_2_naming_the_field() {
    let dir = std::env::temp_dir().join(harness::unique("kdbad"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kafkadata");
    std::fs::write(&file, "payments:\n  partitions: 4\n  jobs:\n    - name: Payments_Consumer\n      consumer_group: g\n").unwrap();
    let out = ko(&[
        "lag",
        "--bootstrap",
        "h:1",
        "--kafkadata",
        file.to_str().unwrap(),
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("payments") && all.contains("Payments_Consumer"),
        "{all}"
    );
}

#[test]
fn many_requests_in_flight_on_one_connection() {
    use kafka_observer::protocol::metadata::MetadataResponse;
    use kafka_observer::wire::{ConnectOptions, Connection};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let b = harness::broker();
    let topics: Vec<String> = (0..3).map(|i| topic_with(&vec![1; i + 1])).collect();
    let addr: std::net::SocketAddr = b.plaintext().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = Connection::connect("127.0.0.1", addr.port(), &ConnectOptions::default())
            .await
            .unwrap();
        // 60 requests at once, each asking for one topic: every answer matches its question.
        let calls = (0..60).map(|i| {
            let topic = topics[i % 3].clone();
            let conn = &conn;
            async move {
                let t = topic.clone();
                let resp: MetadataResponse = conn
                    .call(move |_| {
                        MetadataRequest::default()
                            .with_topics(Some(vec![MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(t))))]))
                    })
                    .await
                    .unwrap();
                (topic, resp)
            }
        });
        for (i, (topic, resp)) in futures_util::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(resp.topics.len(), 1);
            assert_eq!(resp.topics[0].name.as_deref(), Some(topic.as_str()));
            assert_eq!(resp.topics[0].partitions.len(), i % 3 + 1);
        }
    });
}

/// `lag --json ARGS` as one document (exit 0 required).
fn lag_doc(args: &[&str]) -> Value {
    let out = ko(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("lag --json prints JSON")
}

/// kafka-consumer-groups' words, columns by header (see `harness::parse_columns`).
fn java_table(b: &harness::Broker, args: &[&str]) -> Vec<BTreeMap<String, String>> {
    let out = b.consumer_groups(args);
    assert!(
        out.status.success(),
        "kafka-consumer-groups {args:?}: {}",
        text(&out)
    );
    harness::parse_columns(&String::from_utf8_lossy(&out.stdout))
}

/// Our table for `lag ARGS`, columns by header (exit 0 required).
fn our_table(args: &[&str]) -> (Vec<BTreeMap<String, String>>, String) {
    let out = ko(args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    (
        harness::parse_columns(&String::from_utf8_lossy(&out.stdout)),
        all,
    )
}

/// Rows keyed by the given columns.
fn keyed(
    rows: &[BTreeMap<String, String>],
    key: &[&str],
) -> BTreeMap<Vec<String>, BTreeMap<String, String>> {
    rows.iter()
        .map(|r| (key.iter().map(|k| r[*k].clone()).collect(), r.clone()))
        .collect()
}

/// Asserts that `ours` and `java` hold the same rows (by `key`) with equal `columns`.
fn assert_same_rows(
    what: &str,
    ours: &[BTreeMap<String, String>],
    java: &[BTreeMap<String, String>],
    key: &[&str],
    columns: &[&str],
) {
    let (o, j) = (keyed(ours, key), keyed(java, key));
    assert_eq!(
        o.keys().collect::<Vec<_>>(),
        j.keys().collect::<Vec<_>>(),
        "{what}: different rows\nours: {ours:#?}\njava: {java:#?}"
    );
    for (k, jr) in &j {
        for c in columns {
            assert_eq!(o[k].get(*c), jr.get(*c), "{what}: {k:?} column {c}");
        }
    }
}

#[test]
fn describe_members_and_state_agree_with_kafka_consumer_groups_with_live_java_consumers() {
    let b = harness::broker();
    let t = topic_with(&[10, 7, 0]);
    let other = topic_with(&[4]);
    let g = harness::unique("live");
    // Before anyone joins: a commit on t-0, and one on a topic no member subscribes to.
    b.commit_offsets(&g, &[(&t, 0, 2), (&other, 0, 1)]);
    // Two Java consumers (classic protocol, range assignor) that never commit.
    let bootstrap = b.plaintext();
    let _java: Vec<harness::JavaChild> = (0..2)
        .map(|i| {
            let client = format!("client.id=java-{i}");
            b.spawn_java(
                "org.apache.kafka.tools.consumer.ConsoleConsumer",
                &[
                    "--bootstrap-server",
                    &bootstrap,
                    "--topic",
                    &t,
                    "--group",
                    &g,
                    "--consumer-property",
                    "enable.auto.commit=false",
                    "--consumer-property",
                    &client,
                ],
            )
        })
        .collect();
    let base = [
        "lag",
        "--bootstrap",
        bootstrap.as_str(),
        "--group",
        g.as_str(),
    ];
    let json: Vec<&str> = base.iter().copied().chain(["--json"]).collect();
    let doc = eventually(180, "two Java members holding all three partitions", || {
        let v = lag_doc(&json);
        let grp = &v["groups"][0];
        let held: usize = grp["members"]
            .as_array()?
            .iter()
            .flat_map(|m| m["assignment"].as_array().cloned().unwrap_or_default())
            .map(|a| a["partitions"].as_array().map_or(0, Vec::len))
            .sum();
        (grp["state"] == "Stable" && grp["members"].as_array()?.len() == 2 && held == 3)
            .then_some(v)
    });

    // --describe: the same rows, the same nine columns, in kafka-consumer-groups' order.
    let java = java_table(b, &["--describe", "--group", &g]);
    let (ours, all) = our_table(&base);
    let kafka_columns = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ];
    let header: Vec<&str> = all
        .lines()
        .find(|l| l.starts_with("GROUP"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(header[..9], kafka_columns, "{all}");
    assert_eq!(
        header[9..],
        ["LOG-START", "LAST-STABLE", "TIME-LAG"],
        "{all}"
    );
    assert_same_rows(
        "--describe",
        &ours,
        &java,
        &["TOPIC", "PARTITION"],
        &kafka_columns,
    );
    assert_eq!(ours.len(), 4, "{all}");
    let row = |topic: &str, p: &str| {
        ours.iter()
            .find(|r| r["TOPIC"] == topic && r["PARTITION"] == p)
            .unwrap()
            .clone()
    };
    // Assigned without a commit: `-` offset and lag, with its member.
    let t1 = row(&t, "1");
    assert_eq!(
        (t1["CURRENT-OFFSET"].as_str(), t1["LAG"].as_str()),
        ("-", "-"),
        "{all}"
    );
    assert!(t1["CLIENT-ID"].starts_with("java-"), "{all}");
    assert_eq!(t1["HOST"], "/127.0.0.1", "{all}");
    // Committed, assigned: lag to the end.
    assert_eq!(row(&t, "0")["LAG"], "8", "{all}");
    // Committed, unassigned: no member.
    let o0 = row(&other, "0");
    assert_eq!(
        (o0["CURRENT-OFFSET"].as_str(), o0["CONSUMER-ID"].as_str()),
        ("1", "-"),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "{g}: total lag 11, 2 of 4 partitions lagging, 2 without a commit"
        )),
        "{all}"
    );

    // --members and --state: kafka-consumer-groups' columns, the same values.
    let java = java_table(b, &["--describe", "--group", &g, "--members"]);
    let members: Vec<&str> = base.iter().copied().chain(["--members"]).collect();
    let (ours, all) = our_table(&members);
    assert_eq!(ours.len(), 2, "{all}");
    assert_same_rows(
        "--members",
        &ours,
        &java,
        &["CONSUMER-ID"],
        &["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"],
    );
    let java = java_table(b, &["--describe", "--group", &g, "--state"]);
    let state: Vec<&str> = base.iter().copied().chain(["--state"]).collect();
    let (ours, all) = our_table(&state);
    assert_eq!(ours.len(), 1, "{all}");
    assert_same_rows(
        "--state",
        &ours,
        &java,
        &["GROUP"],
        &[
            "GROUP",
            "COORDINATOR",
            "(ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS",
        ],
    );

    // JSON carries the same member fields as the table.
    let (table, _) = our_table(&base);
    let grp = &doc["groups"][0];
    for p in grp["partitions"].as_array().unwrap() {
        let r = table
            .iter()
            .find(|r| {
                r["TOPIC"] == p["topic"].as_str().unwrap()
                    && r["PARTITION"].parse::<i64>().ok() == p["partition"].as_i64()
            })
            .unwrap();
        for (field, column) in [
            ("consumer_id", "CONSUMER-ID"),
            ("host", "HOST"),
            ("client_id", "CLIENT-ID"),
        ] {
            assert_eq!(p[field].as_str().unwrap_or("-"), r[column], "{p}");
        }
    }
    assert_eq!(grp["assignment_strategy"], "range", "{grp}");
    assert_eq!(grp["exists"], true, "{grp}");
}

#[test]
fn unknown_and_empty_groups_and_missing_topics_are_said_like_kafka_does() {
    let b = harness::broker();
    let bootstrap = b.plaintext();
    // A group that does not exist: nothing to show, exit 1, kafka-consumer-groups' sentence.
    let nobody = harness::unique("nobody");
    let out = ko(&["lag", "--bootstrap", &bootstrap, "--group", &nobody]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("Consumer group '{nobody}' does not exist.")),
        "{all}"
    );
    assert!(!all.contains("PARTITION"), "no empty header: {all}");
    let java = b.consumer_groups(&["--describe", "--group", &nobody]);
    assert!(
        text(&java).contains("not found") || text(&java).contains("does not exist"),
        "{}",
        text(&java)
    );
    for view in ["--members", "--state"] {
        let out = ko(&["lag", "--bootstrap", &bootstrap, "--group", &nobody, view]);
        assert_eq!(out.status.code(), Some(1), "{view}: {}", text(&out));
    }

    // A group that had a member but never committed: what kafka-consumer-groups says, exit 0.
    // One record, read by a console consumer that then exits: it has surely joined the group
    // (a fixed --timeout-ms alone can expire before the join on a loaded machine).
    let t = topic_with(&[1]);
    let empty = harness::unique("empty");
    b.java_ok(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &t,
            "--group",
            &empty,
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout-ms",
            "90000",
            "--consumer-property",
            "enable.auto.commit=false",
        ],
    );
    let java = b.consumer_groups(&["--describe", "--group", &empty]);
    let sentence = format!("Consumer group '{empty}' has no active members.");
    assert!(text(&java).contains(&sentence), "{}", text(&java));
    let out = ko(&["lag", "--bootstrap", &bootstrap, "--group", &empty]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sentence);

    // A missing topic: a clear line, no invented row, exit 1; the real topic is still shown.
    let g = harness::unique("g");
    b.commit_offset(&g, &t, 0, 0);
    let gone = harness::unique("gone");
    let out = ko(&[
        "lag",
        "--bootstrap",
        &bootstrap,
        "--group",
        &g,
        "--topic",
        &t,
        "--topic",
        &gone,
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("Topic '{gone}' does not exist.")),
        "{all}"
    );
    let rows = harness::parse_columns(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows.len(), 1, "{all}");
    assert_eq!(rows[0]["TOPIC"], t, "{all}");
    let v: Value = serde_json::from_slice(
        &ko(&[
            "lag",
            "--json",
            "--bootstrap",
            &bootstrap,
            "--group",
            &g,
            "--topic",
            &gone,
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(v["groups"][0]["missing_topics"][0], gone.as_str(), "{v}");
    assert_eq!(v["groups"][0]["partitions"], serde_json::json!([]), "{v}");

    // A group that does not exist, asked with --topic: the topic's partitions, exit 0.
    let out = ko(&[
        "lag",
        "--bootstrap",
        &bootstrap,
        "--group",
        &nobody,
        "--topic",
        &t,
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!("Consumer group '{nobody}' does not exist.")),
        "{all}"
    );
    assert_eq!(
        harness::parse_columns(&String::from_utf8_lossy(&out.stdout)).len(),
        1,
        "{all}"
    );
}

/// Reads `child`'s stdout until `done` says the text so far is enough, or 60 s pass.
fn read_until(child: &mut std::process::Child, done: impl Fn(&str) -> bool) -> String {
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match std::io::Read::read(&mut stdout, &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if done(&String::from_utf8_lossy(&buf)) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    String::from_utf8_lossy(&buf).to_string()
}

fn is_rfc3339_millis(s: &str) -> bool {
    s.len() == 24 && s.ends_with('Z') && s.as_bytes()[10] == b'T' && s[..4].parse::<u32>().is_ok()
}

#[test]
fn watch_through_a_pipe_is_plain_text_or_one_json_document_per_line() {
    let b = harness::broker();
    let t = topic_with(&[1]);
    let g = harness::unique("watch");
    b.commit_offset(&g, &t, 0, 0);
    let bootstrap = b.plaintext();
    let args = [
        "lag",
        "--bootstrap",
        bootstrap.as_str(),
        "--group",
        g.as_str(),
        "--watch",
        "0.2",
    ];
    let summary = format!("{g}: total lag 1, 1 of 1 partition lagging");

    // Text: no escape codes; each refresh is a timestamp line and the report.
    let mut child = crate::support::command(&args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = read_until(&mut child, |s| s.matches(&summary).count() >= 3);
    assert!(!out.contains('\x1b'), "escape codes in a pipe: {out:?}");
    let frames: Vec<&str> = out.split("--- ").filter(|f| !f.is_empty()).collect();
    assert!(frames.len() >= 3, "{out}");
    for f in &frames[..2] {
        let (stamp, report) = f.split_once('\n').unwrap();
        assert!(
            is_rfc3339_millis(stamp),
            "timestamp line '{stamp}' in {out}"
        );
        assert!(report.contains(&summary), "{f}");
        assert!(report.starts_with("GROUP "), "{f}");
    }

    // JSON: one document per line, each with its time.
    let json: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let mut child = crate::support::command(&json)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = read_until(&mut child, |s| s.matches('\n').count() >= 3);
    for line in out.lines().take(3) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(is_rfc3339_millis(v["time"].as_str().unwrap()), "{v}");
        assert_eq!(v["groups"][0]["total_lag"], 1, "{v}");
    }

    // On a terminal (script(1) gives it one): refreshed in place.
    let command = format!(
        "{} {}",
        crate::support::command::exe().to_string_lossy(),
        args.join(" ")
    );
    // script(1) runs the program on a terminal; it inherits the clean environment.
    let script = std::ffi::OsStr::new("script");
    let mut child =
        crate::support::command::command_exe(script, &["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script(1) from util-linux");
    let out = read_until(&mut child, |s| s.matches("\x1b[H\x1b[2J").count() >= 2);
    assert!(out.matches("\x1b[H\x1b[2J").count() >= 2, "{out:?}");
    assert!(out.contains(&summary), "{out:?}");
}

#[test]
fn isolation_is_spelled_either_way_for_every_subcommand() {
    let b = harness::broker();
    let t = harness::unique("iso");
    b.create_topic(&t, 1);
    let g = harness::unique("isog");
    b.produce(&t, 0, 2);
    b.commit_offset(&g, &t, 0, 2);
    // An open transaction: 3 records past the last stable offset.
    let txn = b.open_txn(&t, 0, 3);
    let bootstrap = b.plaintext();
    let lag_of = |extra: &[&str], env: &[(&str, &str)]| -> i64 {
        let mut args = vec!["lag", "--json", "--bootstrap", &bootstrap, "--group", &g];
        args.extend_from_slice(extra);
        let out = ko_env(&args, env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{extra:?} {env:?}: {}",
            text(&out)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["groups"][0]["total_lag"].as_i64().unwrap()
    };
    for v in ["read_committed", "read-committed", "READ_COMMITTED"] {
        assert_eq!(lag_of(&["--isolation", v], &[]), 0, "{v}");
        assert_eq!(
            lag_of(&[], &[("KAFKA_ISOLATION", v)]),
            0,
            "KAFKA_ISOLATION={v}"
        );
    }
    for v in ["read_uncommitted", "Read-Uncommitted"] {
        assert_eq!(lag_of(&["--isolation", v], &[]), 3, "{v}");
        assert_eq!(
            lag_of(&[], &[("KAFKA_ISOLATION", v)]),
            3,
            "KAFKA_ISOLATION={v}"
        );
    }
    // The flag wins over the variable.
    assert_eq!(
        lag_of(
            &["--isolation", "read_committed"],
            &[("KAFKA_ISOLATION", "read-uncommitted")]
        ),
        0
    );
    drop(txn);

    // The same parser behind observe and consume: a bad value names its origin (exit 2), a
    // dashed one is accepted (consume runs, finds nothing, exits idle).
    let dir = std::env::temp_dir().join(harness::unique("iso"));
    std::fs::create_dir_all(&dir).unwrap();
    let kd = dir.join("kafkadata");
    std::fs::write(
        &kd,
        format!("{t}:\n  jobs:\n    - name: iso-consumer\n      consumer_group: {g}\n"),
    )
    .unwrap();
    let kd = kd.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &["lag", "--bootstrap", &bootstrap, "--group", &g],
        &[
            "observe",
            "--launcher",
            "local",
            "--bootstrap",
            &bootstrap,
            "--kafkadata",
            kd,
        ],
        &[
            "consume",
            "--bootstrap",
            &bootstrap,
            "--topic",
            &t,
            "--group",
            &g,
            "--discard",
        ],
    ];
    for cmd in commands {
        let out = ko_env(cmd, &[("KAFKA_ISOLATION", "dirty")]);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("KAFKA_ISOLATION")
                && stderr.contains("read_committed or read_uncommitted"),
            "{cmd:?}: {stderr}"
        );
        let mut flagged = cmd.to_vec();
        flagged.extend(["--isolation", "dirty"]);
        let out = ko(&flagged);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--isolation"),
            "{cmd:?}"
        );
    }
    let out = ko(&[
        "consume",
        "--bootstrap",
        &bootstrap,
        "--topic",
        &t,
        "--group",
        &g,
        "--discard",
        "--idle-timeout",
        "1",
        "--isolation",
        "Read-Committed",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
