//! Every record a broker can hold reaches the handler: header names that are not UTF-8 (which
//! librdkafka and franz-go can write; the Java clients cannot, so these batches are built raw and
//! written with one Produce request), repeated header names in order, between ordinary records
//! written by Kafka's Java producer — through `consume` and through `observe --launcher local`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use kafka_observer::protocol::produce::{self, ProduceResponse};
use kafka_observer::protocol::records::encode::{BatchBuilder, HeaderRef, ProducerStamp};
use kafka_observer::protocol::records::Compression;
use kafka_protocol::messages::ProduceRequest;
use serde_json::Value;

use crate::harness;
use crate::support::consumer::{exec_consumer, wait_child};
use crate::support::observer::local_observer_in;
use crate::support::{eventually_every, temp_dir};

/// One record of a raw batch: key, value, headers.
pub type RawRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Vec<HeaderRef<'a>>);

/// Writes `records` as one batch to `topic`/`partition` with a single Produce request (acks=all);
/// returns the base offset the broker gave it.
pub fn produce_raw(topic: &str, partition: i32, records: &[RawRecord<'_>], c: Compression) -> i64 {
    let mut batch = BatchBuilder::new();
    let now = crate::support::now_ms();
    for (k, v, h) in records {
        batch.push(now, *k, *v, h);
    }
    let batch = batch.finish(c, ProducerStamp::NONE).unwrap();
    crate::support::with_plaintext(async |conn| {
        let resp: ProduceResponse = conn
            .call::<ProduceRequest, ProduceResponse>(|_| {
                produce::request(&[(topic, partition, batch.clone())], 30_000)
            })
            .await
            .unwrap();
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "{resp:?}");
        p.base_offset
    })
}

/// The test batch: two records whose header names are not UTF-8, one of them repeated, plus a
/// null header value and an ordinary name written twice.
fn odd_records() -> Vec<RawRecord<'static>> {
    vec![
        (
            Some(b"odd-0"),
            Some(b"\x00\xffvalue"),
            vec![
                (b"\xff\xfe", Some(b"first")),
                (b"trace", Some(b"t1")),
                (b"\xff\xfe", Some(b"second")),
                (b"trace", None),
            ],
        ),
        (
            None,
            Some(b"odd-1"),
            vec![(b"caf\xe9", Some(b"latin-1 name"))],
        ),
    ]
}

fn b64(b: &[u8]) -> Value {
    serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) })
}

/// Checks the JSON lines of `--exec 'cat >> out'`: offsets 0..6 exactly once, and the odd
/// records (offsets 2 and 3) byte for byte, headers in order.
fn assert_delivered_exactly(out: &Path, log: &Path) {
    let text = std::fs::read_to_string(out).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let offsets: Vec<i64> = lines
        .iter()
        .map(|v| v["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(
        offsets,
        [0, 1, 2, 3, 4, 5],
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let odd = &lines[2];
    assert_eq!(odd["key"], "odd-0");
    assert_eq!(odd["value"], b64(b"\x00\xffvalue"));
    assert_eq!(
        odd["headers"],
        serde_json::json!([
            { "key": b64(b"\xff\xfe"), "value": "first" },
            { "key": "trace", "value": "t1" },
            { "key": b64(b"\xff\xfe"), "value": "second" },
            { "key": "trace", "value": null },
        ])
    );
    assert_eq!(lines[3]["key"], Value::Null);
    assert_eq!(
        lines[3]["headers"],
        serde_json::json!([{ "key": b64(b"caf\xe9"), "value": "latin-1 name" }])
    );
    // The Java producer's records around them are untouched.
    assert_eq!(lines[1]["value"], "value-1");
    assert_eq!(lines[4]["value"], "value-0");
}

/// Java records 0–1, the odd batch at 2–3, Java records 4–5.
fn mixed_topic(prefix: &str, c: Compression) -> String {
    let b = harness::broker();
    let topic = harness::unique(prefix);
    b.create_topic(&topic, 1);
    b.produce(&topic, 0, 2);
    assert_eq!(produce_raw(&topic, 0, &odd_records(), c), 2);
    b.produce(&topic, 0, 2);
    topic
}

fn lag_is_zero(group: &str, topic: &str) {
    let rows = harness::broker().describe_group(group);
    let row = rows
        .iter()
        .find(|r| r.topic == topic && r.partition == 0)
        .unwrap_or_else(|| panic!("{group}: {rows:?}"));
    assert_eq!(
        (row.current_offset, row.lag),
        (Some(6), Some(0)),
        "{rows:?}"
    );
}

#[test]
fn header_names_that_are_not_utf8_reach_the_handler_with_their_bytes() {
    // zstd here; the observer test below uses lz4, the console-consumer one gzip, the corrupt
    // one none.
    let topic = mixed_topic("odd-headers", Compression::Zstd);
    let dir = temp_dir("odd-headers");
    let group = harness::unique("oddg");
    let (mut cmd, log, out) = exec_consumer(&dir, &topic, &group, &[]);
    let mut child = cmd.spawn().unwrap();
    let status = wait_child(&mut child, 120);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    assert_delivered_exactly(&out, &log);
    lag_is_zero(&group, &topic);
}

#[test]
fn the_observer_wakes_one_consumer_that_drains_odd_headers_and_is_not_relaunched() {
    let topic = mixed_topic("odd-observe", Compression::Lz4);
    let dir = temp_dir("odd-observe");
    let group = harness::unique("odd-observe-g");
    let job = harness::unique("odd-observe-job");
    let kafkadata = dir.join("kafkadata");
    std::fs::write(
        &kafkadata,
        format!("{topic}:\n  partitions: 1\n  jobs:\n    - name: {job}\n      consumer_group: {group}\n"),
    )
    .unwrap();
    let out = dir.join("handled.jsonl");
    let exec = format!("cat >> {}", out.display());
    let mut obs = local_observer_in(
        &dir,
        &kafkadata,
        &["--ticker-ms", "200"],
        &[
            ("IDLE_TIMEOUT", "3"),
            ("SESSION_TIMEOUT", "6"),
            ("CONSUMER_EXEC", &exec),
        ],
    );
    obs.wait_log(120, "the consumer to drain and stop", |t| {
        t.contains("consumer stopped").then_some(())
    });
    assert_delivered_exactly(&out, &obs.log);
    lag_is_zero(&group, &topic);
    // Lag 0: a few more cycles launch nothing.
    obs.wait_cycles(10);
    let text = obs.log_text();
    assert_eq!(text.matches("woke consumers").count(), 1, "{text}");
    assert!(!text.contains("invalid UTF-8"), "{text}");
    assert_eq!(obs.stop(), Some(0));
}

/// The console consumer's view: Kafka's own Java client reads the same topic, headers printed.
#[test]
fn the_java_console_consumer_reads_the_odd_batch_too() {
    let b = harness::broker();
    let topic = mixed_topic("odd-java", Compression::Gzip);
    let out = b.java_ok(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            &b.plaintext(),
            "--topic",
            &topic,
            "--from-beginning",
            "--max-messages",
            "6",
            "--timeout-ms",
            "60000",
            "--property",
            "print.headers=true",
            "--property",
            "print.key=true",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("value-") || l.contains("odd"))
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(
        lines[2].contains("trace:t1") && lines[2].contains("odd-0"),
        "{text}"
    );
    assert!(
        lines[3].contains("latin-1 name") && lines[3].contains("odd-1"),
        "{text}"
    );
}

/// Flips one byte inside the records of the batch at `base_offset` in the partition's log
/// segment on disk: the broker serves it as stored (fetches are zero-copy), so consumers see a
/// CRC mismatch — what disk or memory corruption looks like.
pub fn corrupt_batch_on_disk(topic: &str, partition: i32, base_offset: i64) {
    let b = harness::broker();
    let seg = b
        .work_dir()
        .join("data")
        .join(format!("{topic}-{partition}"))
        .join("00000000000000000000.log");
    let mut data = std::fs::read(&seg).unwrap();
    let mut pos = 0usize;
    while pos + 12 <= data.len() {
        let base = i64::from_be_bytes(data[pos..pos + 8].try_into().unwrap());
        let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if base == base_offset {
            let last = pos + 12 + len - 1;
            data[last] ^= 0x5a;
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
            f.seek(SeekFrom::Start(last as u64)).unwrap();
            f.write_all(&data[last..=last]).unwrap();
            f.sync_all().unwrap();
            return;
        }
        pos += 12 + len;
    }
    panic!("no batch at offset {base_offset} in {}", seg.display());
}

#[test]
fn a_corrupt_batch_blocks_without_exiting_and_nothing_past_it_is_committed() {
    let b = harness::broker();
    let topic = mixed_topic("corrupt-block", Compression::None);
    corrupt_batch_on_disk(&topic, 0, 2);
    let dir = temp_dir("corrupt-block");
    let group = harness::unique("corrupt-block-g");
    let (mut cmd, log, out) = exec_consumer(&dir, &topic, &group, &["--commit-interval-ms", "100"]);
    let mut child = cmd.spawn().unwrap();
    // Retried with back-off (fetched again), longer than the idle timeout, without exiting.
    let pause = Duration::from_millis(100);
    eventually_every(pause, 90, "three failed decodes", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches("cannot be decoded").count() >= 3 {
            assert!(text.contains("CRC mismatch"), "{text}");
            return Ok(());
        }
        assert!(child.try_wait().unwrap().is_none(), "exited:\n{text}");
        Err(text)
    });
    assert!(child.try_wait().unwrap().is_none(), "the consumer exited");
    // The good records before it are handled and committed; nothing at or past it.
    let handled = crate::support::consumer::handled(&out);
    assert_eq!(handled.keys().map(|(_, o)| *o).collect::<Vec<_>>(), [0, 1]);
    let rows = b.describe_group(&group);
    assert_eq!(rows[0].current_offset, Some(2), "{rows:?}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(wait_child(&mut child, 60), Some(0));
    assert_eq!(b.describe_group(&group)[0].current_offset, Some(2));
}

/// `--exec` that fails every batch holding a record whose value starts with `poison`, and
/// otherwise appends the batch to `out`: only handled batches reach the file.
fn poison_exec(out: &Path) -> String {
    format!(
        "input=$(cat); if printf '%s\\n' \"$input\" | grep -q '\"value\":\"poison'; then exit 3; fi; printf '%s\\n' \"$input\" >> {}",
        out.display()
    )
}

/// A header value of the JSON the exec handler gets, as bytes.
fn json_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => base64::engine::general_purpose::STANDARD
            .decode(o["base64"].as_str().unwrap())
            .unwrap(),
        other => panic!("not bytes: {other}"),
    }
}

/// Ten records in one batch; 3 and 7 are poison, with a key, a non-UTF-8 value tail and
/// headers (a repeated, non-UTF-8 name) whose bytes must reach the dead-letter topic intact.
fn poisoned_topic(prefix: &str) -> String {
    let topic = harness::unique(prefix);
    harness::broker().create_topic(&topic, 1);
    let values: Vec<Vec<u8>> = (0..10)
        .map(|i| {
            if i == 3 || i == 7 {
                format!("poison-{i}\u{1}").into_bytes()
            } else {
                format!("good-{i}").into_bytes()
            }
        })
        .collect();
    let headers: Vec<HeaderRef<'_>> = vec![
        (b"\xff\xfe", Some(b"a")),
        (b"trace", None),
        (b"\xff\xfe", Some(b"b")),
    ];
    let records: Vec<RawRecord<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let poison = i == 3 || i == 7;
            (
                poison.then_some(&b"bad-key"[..]),
                Some(&v[..]),
                if poison { headers.clone() } else { vec![] },
            )
        })
        .collect();
    assert_eq!(produce_raw(&topic, 0, &records, Compression::Snappy), 0);
    topic
}

fn consume_with(
    dir: &Path,
    topic: &str,
    group: &str,
    exec: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Command, std::path::PathBuf) {
    let bootstrap = harness::broker().plaintext();
    let mut args = vec![
        "--topic",
        topic,
        "--group",
        group,
        "--idle-timeout",
        "3",
        "--commit-interval-ms",
        "100",
        "--exec",
        exec,
    ];
    if !extra.contains(&"--bootstrap") {
        args.extend(["--bootstrap", &bootstrap]);
    }
    args.extend_from_slice(extra);
    crate::support::consumer::consume_cmd(dir, group, &args, env)
}

#[test]
fn failing_records_go_to_the_dead_letter_topic_once_with_springs_headers_and_the_rest_once() {
    let b = harness::broker();
    let topic = poisoned_topic("dlt-src");
    let dlt = format!("{topic}.DLT");
    b.create_topic(&dlt, 1);
    let dir = temp_dir("dlt");
    let group = harness::unique("dltg");
    let out = dir.join("handled.jsonl");
    // Over SASL_SSL: the dead-letter copies go out on the consumer's own connection settings.
    let (user, password) = harness::USERS[0];
    let (sasl_ssl, ca) = (b.sasl_ssl(), b.ca_file().display().to_string());
    let (mut cmd, log) = consume_with(
        &dir,
        &topic,
        &group,
        &poison_exec(&out),
        &[
            "--bootstrap",
            &sasl_ssl,
            "--tls",
            "--ca-file",
            &ca,
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--username",
            user,
            "--password",
            password,
            "--max-attempts",
            "3",
            "--dead-letter-topic",
            &dlt,
        ],
        &[],
    );
    let status = wait_child(&mut cmd.spawn().unwrap(), 120);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    // Every other record handled exactly once; the poison ones never.
    let handled = crate::support::consumer::handled(&out);
    let want: BTreeMap<(i64, i64), usize> = [0, 1, 2, 4, 5, 6, 8, 9].map(|o| ((0, o), 1)).into();
    assert_eq!(handled, want, "{text}");
    assert_eq!(text.matches("record dead-lettered").count(), 2, "{text}");
    assert!(text.contains(&format!("dead_lettered={topic}=2")), "{text}");
    let rows = b.describe_group(&group);
    assert_eq!(
        (rows[0].current_offset, rows[0].lag),
        (Some(10), Some(0)),
        "{rows:?}"
    );

    // The dead-letter topic, read losslessly by our own consumer: the two records exactly.
    let dgroup = harness::unique("dltread");
    let (mut cmd, dlog, dout) = exec_consumer(&dir, &dlt, &dgroup, &[]);
    assert_eq!(wait_child(&mut cmd.spawn().unwrap(), 120), Some(0));
    let lines: Vec<Value> = std::fs::read_to_string(&dout)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "{}",
        std::fs::read_to_string(&dlog).unwrap_or_default()
    );
    for (line, offset) in lines.iter().zip([3i64, 7]) {
        assert_eq!(line["key"], "bad-key");
        assert_eq!(line["value"], format!("poison-{offset}\u{1}"));
        let h: Vec<(Vec<u8>, Option<Vec<u8>>)> = line["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    json_bytes(&h["key"]),
                    (!h["value"].is_null()).then(|| json_bytes(&h["value"])),
                )
            })
            .collect();
        let get = |name: &str| {
            let v: Vec<_> = h.iter().filter(|(k, _)| k == name.as_bytes()).collect();
            assert_eq!(v.len(), 1, "{name}: {h:?}");
            v[0].1.clone().unwrap()
        };
        // The original headers first, in order, with their bytes.
        assert_eq!(
            h[..3],
            [
                (b"\xff\xfe".to_vec(), Some(b"a".to_vec())),
                (b"trace".to_vec(), None),
                (b"\xff\xfe".to_vec(), Some(b"b".to_vec())),
            ]
        );
        assert_eq!(get("kafka_dlt-original-topic"), topic.as_bytes());
        assert_eq!(get("kafka_dlt-original-partition"), 0i32.to_be_bytes());
        assert_eq!(get("kafka_dlt-original-offset"), offset.to_be_bytes());
        let ts = i64::from_be_bytes(get("kafka_dlt-original-timestamp").try_into().unwrap());
        assert_eq!(
            Value::from(ts),
            line["timestamp"],
            "the original timestamp is kept"
        );
        assert_eq!(get("kafka_dlt-original-timestamp-type"), b"CreateTime");
        assert_eq!(get("kafka_dlt-original-consumer-group"), group.as_bytes());
        assert_eq!(
            get("kafka_dlt-exception-fqcn"),
            b"kafka-observer.ExecStatus"
        );
        let msg = String::from_utf8(get("kafka_dlt-exception-message")).unwrap();
        assert!(
            msg.contains("exit status 3") && msg.contains(&format!("@{offset}")),
            "{msg}"
        );
        assert_eq!(get("kafka-observer-attempts"), 3u32.to_be_bytes());
    }

    // Kafka's own console consumer reads the dead-letter topic and prints those headers.
    let printed = crate::support::produce::console_consume(&dlt, 2);
    assert_eq!(printed.len(), 2, "{printed:?}");
    for (p, offset) in printed.iter().zip([3, 7]) {
        assert_eq!(p.key, "bad-key");
        assert_eq!(p.value, format!("poison-{offset}\u{1}"));
        for h in [
            format!("kafka_dlt-original-topic:{topic}"),
            "kafka_dlt-original-partition:".into(),
            "kafka_dlt-original-offset:".into(),
            "kafka_dlt-original-timestamp:".into(),
            "kafka_dlt-original-timestamp-type:CreateTime".into(),
            "kafka_dlt-exception-fqcn:kafka-observer.ExecStatus".into(),
            "kafka_dlt-exception-message:--exec: the command failed with exit status 3".into(),
        ] {
            assert!(p.headers.contains(&h), "{h} not in {}", p.headers);
        }
    }
}

#[test]
fn on_exhausted_skip_from_the_environment_commits_past_the_failing_record_and_says_so() {
    let b = harness::broker();
    let topic = poisoned_topic("skip-src");
    let dir = temp_dir("skip");
    let group = harness::unique("skipg");
    let out = dir.join("handled.jsonl");
    let (mut cmd, log) = consume_with(
        &dir,
        &topic,
        &group,
        &poison_exec(&out),
        &[],
        &[("MAX_ATTEMPTS", "2"), ("ON_EXHAUSTED", "skip")],
    );
    let status = wait_child(&mut cmd.spawn().unwrap(), 120);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    let handled = crate::support::consumer::handled(&out);
    let want: BTreeMap<(i64, i64), usize> = [0, 1, 2, 4, 5, 6, 8, 9].map(|o| ((0, o), 1)).into();
    assert_eq!(handled, want, "{text}");
    assert_eq!(
        text.matches("record skipped (--on-exhausted skip)").count(),
        2,
        "{text}"
    );
    assert!(text.contains(&format!("skipped={topic}=2")), "{text}");
    let rows = b.describe_group(&group);
    assert_eq!(
        (rows[0].current_offset, rows[0].lag),
        (Some(10), Some(0)),
        "{rows:?}"
    );
}

#[test]
fn an_undecodable_batch_that_exhausts_its_attempts_is_dead_lettered_with_its_raw_bytes() {
    let b = harness::broker();
    let topic = mixed_topic("corrupt-dlt", Compression::None);
    corrupt_batch_on_disk(&topic, 0, 2);
    let dlt = format!("{topic}.DLT");
    b.create_topic(&dlt, 1);
    let dir = temp_dir("corrupt-dlt");
    let group = harness::unique("corrupt-dlt-g");
    let (mut cmd, log, out) = exec_consumer(
        &dir,
        &topic,
        &group,
        &[
            "--max-attempts",
            "2",
            "--dead-letter-topic",
            &dlt,
            "--commit-interval-ms",
            "100",
        ],
    );
    let status = wait_child(&mut cmd.spawn().unwrap(), 120);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(0), "{text}");
    // The records around the broken batch are handled once; the batch's range is passed.
    let handled = crate::support::consumer::handled(&out);
    assert_eq!(
        handled.keys().map(|(_, o)| *o).collect::<Vec<_>>(),
        [0, 1, 4, 5],
        "{text}"
    );
    lag_is_zero(&group, &topic);
    // One copy for the range, its value the batch as fetched, its range in the headers.
    let dgroup = harness::unique("corrupt-dlt-read");
    let (mut cmd, _, dout) = exec_consumer(&dir, &dlt, &dgroup, &[]);
    assert_eq!(wait_child(&mut cmd.spawn().unwrap(), 120), Some(0));
    let lines: Vec<Value> = std::fs::read_to_string(&dout)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let raw = json_bytes(&lines[0]["value"]);
    assert_eq!(
        i64::from_be_bytes(raw[..8].try_into().unwrap()),
        2,
        "a record batch at offset 2"
    );
    let header = |name: &str| {
        lines[0]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == name)
            .map(|h| json_bytes(&h["value"]))
            .unwrap_or_else(|| panic!("{name}: {}", lines[0]))
    };
    assert_eq!(header("kafka_dlt-original-offset"), 2i64.to_be_bytes());
    assert_eq!(
        header("kafka-observer-original-last-offset"),
        3i64.to_be_bytes()
    );
    assert_eq!(
        header("kafka_dlt-exception-fqcn"),
        b"kafka-observer.UndecodableBatch"
    );
}

#[test]
fn a_dead_letter_topic_that_does_not_exist_is_refused_at_start() {
    let b = harness::broker();
    let topic = harness::unique("dlt-missing");
    b.create_topic(&topic, 1);
    let missing = format!("{topic}.DLT");
    let dir = temp_dir("dlt-missing");
    let group = harness::unique("dlt-missing-g");
    let (mut cmd, log) = consume_with(
        &dir,
        &topic,
        &group,
        "cat > /dev/null",
        &["--dead-letter-topic", &missing],
        &[],
    );
    let status = wait_child(&mut cmd.spawn().unwrap(), 60);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status, Some(2), "{text}");
    assert!(
        text.contains("--dead-letter-topic")
            && text.contains(&format!(
                "the dead-letter topic '{missing}' does not exist: create it first"
            )),
        "{text}"
    );
}

/// The motivating case: a record the handler always fails on no longer costs a consumer per
/// wake-up. The observer's local consumers inherit DEAD_LETTER_TOPIC: one wake-up, the poison
/// records in the dead-letter topic, lag 0, no relaunch.
#[test]
fn under_the_observer_a_dead_letter_topic_ends_the_relaunches_of_a_failing_record() {
    let b = harness::broker();
    let topic = poisoned_topic("dlt-observe");
    let dlt = format!("{topic}.DLT");
    b.create_topic(&dlt, 1);
    let dir = temp_dir("dlt-observe");
    let group = harness::unique("dlt-observe-g");
    let job = harness::unique("dlt-observe-job");
    let kafkadata = dir.join("kafkadata");
    std::fs::write(
        &kafkadata,
        format!("{topic}:\n  partitions: 1\n  jobs:\n    - name: {job}\n      consumer_group: {group}\n"),
    )
    .unwrap();
    let out = dir.join("handled.jsonl");
    let exec = poison_exec(&out);
    let mut obs = local_observer_in(
        &dir,
        &kafkadata,
        &["--ticker-ms", "200"],
        &[
            ("IDLE_TIMEOUT", "3"),
            ("SESSION_TIMEOUT", "6"),
            ("CONSUMER_EXEC", &exec),
            ("MAX_ATTEMPTS", "2"),
            ("DEAD_LETTER_TOPIC", &dlt),
        ],
    );
    obs.wait_log(120, "the consumer to drain and stop", |t| {
        t.contains("consumer stopped").then_some(())
    });
    let handled = crate::support::consumer::handled(&out);
    assert_eq!(handled.len(), 8, "{}", obs.log_text());
    assert!(handled.values().all(|n| *n == 1), "{handled:?}");
    let rows = b.describe_group(&group);
    assert_eq!(
        (rows[0].current_offset, rows[0].lag),
        (Some(10), Some(0)),
        "{rows:?}"
    );
    assert_eq!(crate::support::consumer::high_watermarks(&dlt)[&0], 2);
    obs.wait_cycles(10);
    let text = obs.log_text();
    assert_eq!(text.matches("woke consumers").count(), 1, "{text}");
    assert_eq!(text.matches("record dead-lettered").count(), 2, "{text}");
    assert_eq!(obs.stop(), Some(0));
}
