//! `kafka-observer produce` against the real broker, with Kafka's Java console consumer as the
//! oracle: keys, values and headers read back exactly, every codec, keyed records where the Java
//! client's partitioner puts them, SASL_SSL, exit codes; and the broker dropping a resent batch
//! of our idempotent producer.

use std::collections::BTreeMap;

use kafka_observer::protocol::init_producer_id::{self, InitProducerIdResponse};
use kafka_observer::protocol::produce::{self, ProduceResponse};
use kafka_observer::protocol::records::encode::{BatchBuilder, ProducerStamp};
use kafka_observer::protocol::records::Compression;
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest};

use crate::harness;
use crate::support::produce::{console_consume, ko_produce, summary, Printed};
use crate::support::wait::eventually_async;

#[test]
fn every_codec_keys_and_headers_are_read_back_exactly_by_the_java_console_consumer() {
    let b = harness::broker();
    let topic = harness::unique("produce-codecs");
    b.create_topic(&topic, 3);
    let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for codec in codecs {
        let mut input = String::new();
        for k in &keys {
            input.push_str(&format!("{k}:{codec}-{k}\n"));
        }
        input.push_str(&format!("{codec}-without-key\n"));
        input.push_str("k-empty:\n");
        let out = ko_produce(
            &[
                "--bootstrap",
                &b.plaintext(),
                "--topic",
                &topic,
                "-K",
                ":",
                "-H",
                "h=1",
                "-H",
                "h=2",
                "-H",
                &format!("codec={codec}"),
                "--compression",
                codec,
            ],
            input.as_bytes(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{codec}: {stderr}");
        let s = summary(&out.stdout);
        assert_eq!(s.values().map(|v| v.2).sum::<u64>(), 32, "{codec}: {s:?}");
        for (first, last, n) in s.values() {
            assert!(last - first + 1 >= *n as i64, "{codec}: {s:?}");
        }
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let java = b.produce_keys(&topic, &key_refs);
    let printed = console_consume(&topic, 5 * 32 + keys.len());
    assert_eq!(printed.len(), 5 * 32 + keys.len(), "{printed:?}");
    for codec in codecs {
        let ours: Vec<&Printed> = printed
            .iter()
            .filter(|p| p.headers.contains(&format!("codec:{codec}")))
            .collect();
        assert_eq!(ours.len(), 32, "{codec}");
        for p in &ours {
            assert_eq!(p.headers, format!("h:1,h:2,codec:{codec}"), "{p:?}");
        }
        for k in &keys {
            let p = ours
                .iter()
                .find(|p| p.key == *k)
                .unwrap_or_else(|| panic!("{codec} {k}: {ours:?}"));
            assert_eq!(p.value, format!("{codec}-{k}"));
            // Where Java's default partitioner put the same key.
            assert_eq!(p.partition, java[k.as_str()], "{codec} {k}");
        }
        let unkeyed = ours
            .iter()
            .find(|p| p.value == format!("{codec}-without-key"))
            .unwrap();
        assert_eq!(unkeyed.key, "null");
        let empty = ours.iter().find(|p| p.key == "k-empty").unwrap();
        assert_eq!(empty.value, "");
    }
}

#[test]
fn over_sasl_ssl_from_a_file_with_a_record_separator_to_one_partition() {
    let b = harness::broker();
    let topic = harness::unique("produce-sasl");
    b.create_topic(&topic, 3);
    let dir = crate::support::temp_dir("produce-sasl");
    let file = dir.join("records");
    let records: Vec<String> = (0..500)
        .map(|i| format!("line one {i}\nline two {i}"))
        .collect();
    std::fs::write(&file, records.join("\x1e")).unwrap();
    let (user, password) = harness::USERS[0];
    let out = crate::support::command(&[
        "produce",
        "--bootstrap",
        &b.sasl_ssl(),
        "--tls",
        "--ca-file",
        b.ca_file().to_str().unwrap(),
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--username",
        user,
        "--password",
        password,
        "--topic",
        &topic,
        "--file",
        file.to_str().unwrap(),
        "--delimiter",
        "\\x1e",
        "--partition",
        "1",
        "--compression",
        "zstd",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(password), "{stderr}");
    assert_eq!(summary(&out.stdout), BTreeMap::from([(1, (0, 499, 500))]));
    // Newlines inside records survive: the console consumer prints each record on two lines.
    let printed = console_consume(&topic, 500);
    assert_eq!(printed.len(), 500);
    assert!(printed.iter().all(|p| p.partition == 1 && p.key == "null"));
    for (i, p) in printed.iter().enumerate() {
        assert_eq!(p.value, format!("line one {i}"), "{p:?}");
    }
}

#[test]
fn usage_errors_exit_2_naming_the_flag() {
    let b = harness::broker();
    let topic = harness::unique("produce-usage");
    b.create_topic(&topic, 3);
    let bootstrap = b.plaintext();
    let base = ["--bootstrap", bootstrap.as_str()];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "--topic"),
        (vec!["--topic", "no-such-topic-anywhere"], "does not exist"),
        (vec!["--topic", &topic, "--partition", "3"], "--partition"),
        (vec!["--topic", &topic, "--partition", "x"], "--partition"),
        (vec!["--topic", &topic, "-H", "novalue"], "-H"),
        (
            vec!["--topic", &topic, "--compression", "brotli"],
            "--compression",
        ),
        (vec!["--topic", &topic, "--delimiter", ""], "--delimiter"),
        (vec!["--topic", &topic, "--file", "/no/such/file"], "--file"),
        (
            vec!["--topic", &topic, "--max-record-bytes", "3"],
            "--max-record-bytes",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = base.to_vec();
        args.extend(&extra);
        let out = ko_produce(&args, b"a longer record\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
    // Nothing was written by any of them.
    let ends = crate::support::consumer::high_watermarks(&topic);
    assert_eq!(ends.values().sum::<i64>(), 0, "{ends:?}");
}

/// The broker side of "retries never duplicate": the same batch, same producer id and
/// sequence, sent twice — written once.
#[test]
fn a_resent_batch_of_the_idempotent_producer_is_written_once() {
    let b = harness::broker();
    let topic = harness::unique("produce-dedup");
    b.create_topic(&topic, 1);
    crate::support::with_plaintext(async |conn| {
        // A fresh broker answers COORDINATOR_LOAD_IN_PROGRESS (14) while it creates its
        // transaction state topic.
        let pause = std::time::Duration::from_millis(200);
        let id = eventually_async(pause, 60, "the transaction coordinator", || async {
            let id: InitProducerIdResponse = conn
                .call::<InitProducerIdRequest, InitProducerIdResponse>(|_| {
                    init_producer_id::request()
                })
                .await
                .unwrap();
            if id.error_code != 14 {
                Ok(id)
            } else {
                Err(format!("{id:?}"))
            }
        })
        .await;
        assert_eq!(id.error_code, 0);
        let mut batch = BatchBuilder::new();
        for i in 0..10 {
            batch.push(
                1_700_000_000_000,
                None,
                Some(format!("v{i}").as_bytes()),
                &[],
            );
        }
        let batch = batch
            .finish(
                Compression::Lz4,
                ProducerStamp {
                    producer_id: id.producer_id,
                    producer_epoch: id.producer_epoch,
                    base_sequence: 0,
                },
            )
            .unwrap();
        let mut offsets = Vec::new();
        for _ in 0..2 {
            let r: ProduceResponse = conn
                .call::<ProduceRequest, ProduceResponse>(|_| {
                    produce::request(&[(&topic, 0, batch.clone())], 30_000)
                })
                .await
                .unwrap();
            let p = &r.topics[0].partitions[0];
            assert!(p.error_code == 0 || p.error_code == 46, "{r:?}");
            offsets.push(p.base_offset);
        }
        assert_eq!(offsets[0], 0);
    });
    assert_eq!(crate::support::consumer::high_watermarks(&topic)[&0], 10);
}
