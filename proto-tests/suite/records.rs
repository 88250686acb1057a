//! Every record a broker can hold reaches the handler: header names that are not UTF-8 (which
//! librdkafka and franz-go can write; the Java clients cannot, so these batches are built raw and
//! written with one Produce request), repeated header names in order, between ordinary records
//! written by Kafka's Java producer — through `consume` and through `observe --launcher local`.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use kafka_observer::protocol::produce::{self, ProduceResponse};
use kafka_observer::protocol::records::encode::{BatchBuilder, HeaderRef, ProducerStamp};
use kafka_observer::protocol::records::Compression;
use kafka_observer::wire::{ConnectOptions, Connection};
use kafka_protocol::messages::ProduceRequest;
use serde_json::Value;

use crate::harness;
use crate::support::consumer::{exec_consumer, wait_child};
use crate::support::observer::ObserverProc;
use crate::support::temp_dir;

/// One record of a raw batch: key, value, headers.
pub type RawRecord<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Vec<HeaderRef<'a>>);

/// Writes `records` as one batch to `topic`/`partition` with a single Produce request (acks=all);
/// returns the base offset the broker gave it.
pub fn produce_raw(topic: &str, partition: i32, records: &[RawRecord<'_>], c: Compression) -> i64 {
    let mut batch = BatchBuilder::new();
    let now = kafka_observer::consumer::handler::log::now_ms();
    for (k, v, h) in records {
        batch.push(now, *k, *v, h);
    }
    let batch = batch.finish(c, ProducerStamp::NONE).unwrap();
    with_plaintext(async |conn| {
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

/// Runs `f` with a fresh connection to the shared broker's plaintext listener.
pub fn with_plaintext<T>(f: impl AsyncFnOnce(&Connection) -> T) -> T {
    let b = harness::broker();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = b.plaintext();
        let (host, port) = addr.rsplit_once(':').unwrap();
        let conn = Connection::connect(host, port.parse().unwrap(), &ConnectOptions::default())
            .await
            .unwrap();
        f(&conn).await
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
    let b = harness::broker();
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
    let bootstrap = b.plaintext();
    let mut obs = ObserverProc::start(
        &dir,
        &[
            "--launcher",
            "local",
            "--bootstrap",
            &bootstrap,
            "--kafkadata",
            kafkadata.to_str().unwrap(),
            "--ticker-ms",
            "200",
        ],
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
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.matches("cannot be decoded").count() >= 3 {
            assert!(text.contains("CRC mismatch"), "{text}");
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "exited:\n{text}");
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
