//! The dead-letter copy of a record the failure policy gave up on, and writing it.
//!
//! Why Spring Kafka's headers: a dead-letter topic is read by people and by tools long after
//! the consumer that wrote it is gone, and the tools that exist (Spring's
//! `DeadLetterPublishingRecoverer` and retry-topic consumers, replay scripts written for them)
//! read `kafka_dlt-*` headers in Spring's encoding. So the names are Spring's and so are the
//! encodings: text is UTF-8, numbers are big-endian binary (partition a 4-byte int; offset and
//! timestamp 8-byte longs), the timestamp type is Kafka's `CreateTime`/`LogAppendTime`. Binary
//! numbers print as raw bytes in Kafka's console consumer, so `kafka_dlt-exception-message`
//! also says, in words, where the record came from and how often it failed.
//!
//! The copy is the original record (key, value, headers in order, timestamp) with these
//! headers appended. A batch that could not be decoded has no records to copy: its copy is one
//! record whose value is the batch's raw bytes as fetched (when they arrived whole and fit), so
//! nothing that reached the consumer is lost.
//!
//! Writing: the idempotent producer (acks=all) on the consumer's own connection settings, one
//! record at a time; [`DeadLetter::deliver`] returns only once the broker acknowledged it,
//! retrying a failed write with back-off and a log line, and the caller (`dispatch.rs`) moves
//! the position past the record only after that — a record is never skipped because its
//! dead-letter write failed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::dispatch::{Control, Reason};
use super::error::ConsumerError;
use super::fetcher::Broken;
use super::message::Message;
use crate::cluster::Cluster;
use crate::offsets::TopicPartition;
use crate::producer::partitioner::for_key;
use crate::producer::{OutRecord, ProduceError, Producer, ProducerConfig};
use crate::protocol::error::ErrorCode;
use crate::protocol::records::Compression;
use crate::wire::WireError;

pub(crate) const ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
pub(crate) const ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
pub(crate) const ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
pub(crate) const ORIGINAL_TIMESTAMP: &str = "kafka_dlt-original-timestamp";
pub(crate) const ORIGINAL_TIMESTAMP_TYPE: &str = "kafka_dlt-original-timestamp-type";
pub(crate) const ORIGINAL_CONSUMER_GROUP: &str = "kafka_dlt-original-consumer-group";
pub(crate) const EXCEPTION_FQCN: &str = "kafka_dlt-exception-fqcn";
pub(crate) const EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
/// Ours: failed handler calls of the record on its own (4-byte big-endian int; 0 for a record
/// that was too old to be handled).
pub(crate) const ATTEMPTS: &str = "kafka-observer-attempts";
/// Ours, on the copy of an undecodable batch: the last offset of its range (8-byte big-endian).
pub(crate) const ORIGINAL_LAST_OFFSET: &str = "kafka-observer-original-last-offset";

/// Raw bytes of an undecodable batch larger than this are left out of its copy (a broker's
/// default `max.message.bytes` is 1 MiB; a copy it refuses would block the partition).
pub(crate) const RAW_COPY_LIMIT: usize = 900 << 10;

/// How long one write may take before it counts as failed (and is retried).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Between failed writes of the same copy: 1 s, doubling, at most 30 s, forever.
pub(crate) const WRITE_BACKOFF: crate::retry::Backoff = crate::retry::Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(30),
    retries: u32::MAX,
};

fn text(name: &str, v: &str) -> (Bytes, Option<Bytes>) {
    (
        Bytes::copy_from_slice(name.as_bytes()),
        Some(Bytes::copy_from_slice(v.as_bytes())),
    )
}

fn binary(name: &str, v: &[u8]) -> (Bytes, Option<Bytes>) {
    (
        Bytes::copy_from_slice(name.as_bytes()),
        Some(Bytes::copy_from_slice(v)),
    )
}

/// The copy of a record (pure). A record without a timestamp (-1) is written at `now_ms`, as
/// the Java producer stamps a record without one; its original-timestamp header stays -1.
pub(crate) fn record_copy(
    m: &Message,
    group: &str,
    why: &Reason,
    attempts: u32,
    now_ms: i64,
) -> OutRecord {
    let mut headers = m.headers.clone();
    headers.extend([
        text(ORIGINAL_TOPIC, &m.topic),
        binary(ORIGINAL_PARTITION, &m.partition.to_be_bytes()),
        binary(ORIGINAL_OFFSET, &m.offset.to_be_bytes()),
        binary(ORIGINAL_TIMESTAMP, &m.timestamp_ms.to_be_bytes()),
        text(
            ORIGINAL_TIMESTAMP_TYPE,
            if m.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            },
        ),
        text(ORIGINAL_CONSUMER_GROUP, group),
        text(EXCEPTION_FQCN, why.kind),
        text(
            EXCEPTION_MESSAGE,
            &format!(
                "{} (record {}-{}@{})",
                why.message, m.topic, m.partition, m.offset
            ),
        ),
        binary(ATTEMPTS, &attempts.to_be_bytes()),
    ]);
    OutRecord {
        key: m.key.clone(),
        value: m.value.clone(),
        headers,
        timestamp: if m.timestamp_ms >= 0 {
            m.timestamp_ms
        } else {
            now_ms
        },
    }
}

/// The copy of a batch that could not be decoded (pure): no key, the raw batch as its value
/// when it arrived whole and is at most [`RAW_COPY_LIMIT`] bytes (else null), written at `now`.
pub(crate) fn broken_copy(
    tp: &TopicPartition,
    b: &Broken,
    group: &str,
    why: &Reason,
    attempts: u32,
    now_ms: i64,
) -> OutRecord {
    let raw = b.raw.clone().filter(|r| r.len() <= RAW_COPY_LIMIT);
    let value_note = match (&b.raw, &raw) {
        (_, Some(r)) => format!("the value is the batch as fetched ({} bytes)", r.len()),
        (Some(r), None) => format!(
            "the batch as fetched ({} bytes) is too large to copy",
            r.len()
        ),
        (None, None) => "the batch did not arrive whole; no bytes to copy".into(),
    };
    let headers = vec![
        text(ORIGINAL_TOPIC, &tp.topic),
        binary(ORIGINAL_PARTITION, &tp.partition.to_be_bytes()),
        binary(ORIGINAL_OFFSET, &b.first.to_be_bytes()),
        binary(ORIGINAL_LAST_OFFSET, &b.last.to_be_bytes()),
        text(ORIGINAL_CONSUMER_GROUP, group),
        text(EXCEPTION_FQCN, why.kind),
        text(
            EXCEPTION_MESSAGE,
            &format!(
                "{} (records {tp}@{}..={}; {value_note})",
                why.message, b.first, b.last
            ),
        ),
        binary(ATTEMPTS, &attempts.to_be_bytes()),
    ];
    OutRecord {
        key: None,
        value: raw,
        headers,
        timestamp: now_ms,
    }
}

/// The dead-letter partition: the original's number when the topic has it (as Spring does),
/// else by key as the Java client's partitioner, else the original's modulo the count.
pub(crate) fn partition_for(original: i32, key: Option<&[u8]>, partitions: i32) -> i32 {
    let n = partitions.max(1);
    if (0..n).contains(&original) {
        return original;
    }
    match key {
        Some(k) => for_key(k, n),
        None => original.rem_euclid(n),
    }
}

/// Where dead-letter copies are written.
pub(crate) struct DeadLetter {
    target: Target,
    topic: String,
    group: String,
}

enum Target {
    Kafka {
        cluster: Arc<Cluster>,
        /// Started at the first write (most consumers never write one).
        producer: Option<Producer>,
    },
    /// Unit tests of the dispatcher: a scripted topic.
    #[cfg(test)]
    Script(Script),
}

/// A scripted dead-letter topic for unit tests: gets (original partition, copy).
#[cfg(test)]
pub(crate) type Script =
    Box<dyn FnMut(&TopicPartition, &OutRecord) -> Result<(), WriteError> + Send>;

/// Why one write of a dead-letter copy failed (it is retried: see [`DeadLetter::deliver`]).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// No metadata for the dead-letter topic.
    #[error(transparent)]
    Metadata(WireError),
    /// The metadata carries an error for the topic (not authorized, say).
    #[error("topic '{topic}': {code}")]
    Topic { topic: String, code: ErrorCode },
    /// The topic has no partitions in the metadata: it does not exist (yet).
    #[error("topic '{0}' does not exist")]
    NoTopic(String),
    /// The producer could not start, or the send failed.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// The producer did not answer in time (it is started afresh).
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The broker refused the batch.
    #[error("{tp}: {error}")]
    Lost { tp: TopicPartition, error: String },
    #[error("the producer did not start")]
    NotStarted,
    #[error("the producer reported nothing written")]
    NothingWritten,
}

/// Where a copy landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Landed {
    pub partition: i32,
    /// `None` when the broker answered that it already had the batch (a retried write).
    pub offset: Option<i64>,
}

impl DeadLetter {
    pub(crate) fn new(cluster: Arc<Cluster>, topic: &str, group: &str) -> DeadLetter {
        DeadLetter {
            target: Target::Kafka {
                cluster,
                producer: None,
            },
            topic: topic.to_string(),
            group: group.to_string(),
        }
    }

    #[cfg(test)]
    pub(crate) fn scripted(topic: &str, group: &str, script: Script) -> DeadLetter {
        DeadLetter {
            target: Target::Script(script),
            topic: topic.to_string(),
            group: group.to_string(),
        }
    }

    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    /// Writes `copy` (of the offsets `range` of `from`) until the broker acknowledged it: a
    /// failed write is logged and retried with back-off, committing what was handled before it,
    /// for as long as the generation lasts. `Err(leave)`: the generation ended first (stop,
    /// rebalance) and the copy is not known to be written — the record stays unhandled.
    pub(crate) async fn deliver<C: Control>(
        &mut self,
        from: &TopicPartition,
        copy: &OutRecord,
        (first, last): (i64, i64),
        ctl: &mut C,
    ) -> Result<Result<Landed, C::Leave>, ConsumerError> {
        let mut tries = 0u32;
        loop {
            tries = tries.saturating_add(1);
            let e = match self.write(from, copy).await {
                Ok(l) => return Ok(Ok(l)),
                Err(e) => e,
            };
            let delay = WRITE_BACKOFF
                .delay(tries, crate::retry::jitter_unit())
                .unwrap_or(WRITE_BACKOFF.max);
            tracing::warn!(partition = %from, topic = %from.topic, first, last, dead_letter_topic = %self.topic, attempt = tries, error = %e, ?delay, "dead-letter write failed; nothing after this record is committed; retrying");
            if let Some(leave) = ctl.commit().await? {
                return Ok(Err(leave));
            }
            if let Some(leave) = ctl.pause(delay).await {
                return Ok(Err(leave));
            }
        }
    }

    /// Writes one copy and waits for the broker's acknowledgement (acks=all). One attempt.
    pub(crate) async fn write(
        &mut self,
        from: &TopicPartition,
        copy: &OutRecord,
    ) -> Result<Landed, WriteError> {
        let (cluster, producer) = match &mut self.target {
            #[cfg(test)]
            Target::Script(f) => {
                return f(from, copy).map(|()| Landed {
                    partition: from.partition,
                    offset: None,
                })
            }
            Target::Kafka { cluster, producer } => (cluster, producer),
        };
        let topics = std::slice::from_ref(&self.topic);
        let md = cluster
            .metadata_for(topics)
            .await
            .map_err(WriteError::Metadata)?;
        let count = match md.topics.get(&self.topic) {
            Some(t) if t.error_code == 0 && !t.partitions.is_empty() => t.partitions.len() as i32,
            Some(t) if t.error_code != 0 => {
                // Refresh next time: the topic may be created or the ACL fixed meanwhile.
                let _ = cluster.refresh_metadata(Some(topics)).await;
                return Err(WriteError::Topic {
                    topic: self.topic.clone(),
                    code: ErrorCode(t.error_code),
                });
            }
            _ => {
                let _ = cluster.refresh_metadata(Some(topics)).await;
                return Err(WriteError::NoTopic(self.topic.clone()));
            }
        };
        if producer.is_none() {
            let mut cfg = ProducerConfig::new(Compression::None, WRITE_TIMEOUT);
            cfg.linger = Duration::ZERO;
            cfg.pipeline.delivery_timeout = WRITE_TIMEOUT;
            let p = Producer::start(cluster.clone(), cfg).await?;
            *producer = Some(p);
        }
        let Some(p) = producer.as_ref() else {
            return Err(WriteError::NotStarted);
        };
        let partition = partition_for(from.partition, copy.key.as_deref(), count);
        let tp = TopicPartition::new(self.topic.as_str(), partition);
        let sent = async {
            p.send(vec![(tp.clone(), copy.clone())]).await?;
            p.flush().await
        };
        let report = match tokio::time::timeout(WRITE_TIMEOUT + Duration::from_secs(5), sent).await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                *producer = None;
                return Err(e.into());
            }
            Err(_) => {
                // What the old producer still holds may or may not be written: start afresh.
                *producer = None;
                return Err(WriteError::Timeout(WRITE_TIMEOUT + Duration::from_secs(5)));
            }
        };
        if let Some(lost) = report.lost.first() {
            return Err(WriteError::Lost {
                tp: lost.tp.clone(),
                error: lost.error.clone(),
            });
        }
        match report.written.get(&tp) {
            Some(w) if w.records > 0 => Ok(Landed {
                partition,
                offset: w.offsets.map(|(first, _)| first),
            }),
            _ => Err(WriteError::NothingWritten),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a OutRecord, name: &str) -> &'a [u8] {
        let all: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| &n[..] == name.as_bytes())
            .collect();
        assert_eq!(all.len(), 1, "{name}: {:?}", r.headers);
        all[0].1.as_deref().unwrap()
    }

    fn reason() -> Reason {
        Reason {
            kind: "kafka-observer.ExecStatus",
            message: "--exec: the command failed with exit status 3 (failed 3 times)".into(),
        }
    }

    #[test]
    fn a_record_copy_keeps_the_original_and_adds_springs_headers() {
        let m = Message {
            topic: "payments".into(),
            partition: 2,
            offset: 0x0102_0304_0506,
            timestamp_ms: 1_700_000_000_123,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k\xff")),
            value: None,
            headers: vec![
                (Bytes::from_static(b"\xfe"), Some(Bytes::from_static(b"a"))),
                (Bytes::from_static(b"trace"), None),
                (Bytes::from_static(b"\xfe"), Some(Bytes::from_static(b"b"))),
            ],
        };
        let c = record_copy(&m, "g1", &reason(), 3, 5);
        assert_eq!((c.key.clone(), c.value.clone()), (m.key.clone(), None));
        assert_eq!(c.timestamp, m.timestamp_ms);
        assert_eq!(
            c.headers[..3],
            m.headers[..],
            "original headers first, in order"
        );
        assert_eq!(header(&c, ORIGINAL_TOPIC), b"payments");
        assert_eq!(header(&c, ORIGINAL_PARTITION), [0, 0, 0, 2]);
        assert_eq!(header(&c, ORIGINAL_OFFSET), [0, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            header(&c, ORIGINAL_TIMESTAMP),
            1_700_000_000_123i64.to_be_bytes()
        );
        assert_eq!(header(&c, ORIGINAL_TIMESTAMP_TYPE), b"CreateTime");
        assert_eq!(header(&c, ORIGINAL_CONSUMER_GROUP), b"g1");
        assert_eq!(header(&c, EXCEPTION_FQCN), b"kafka-observer.ExecStatus");
        let msg = String::from_utf8(header(&c, EXCEPTION_MESSAGE).to_vec()).unwrap();
        assert!(msg.contains("exit status 3"), "{msg}");
        assert!(msg.contains("payments-2@1108152157446"), "{msg}");
        assert_eq!(header(&c, ATTEMPTS), [0, 0, 0, 3]);
        let lat = record_copy(
            &Message {
                log_append_time: true,
                ..m
            },
            "g1",
            &reason(),
            0,
            5,
        );
        assert_eq!(header(&lat, ORIGINAL_TIMESTAMP_TYPE), b"LogAppendTime");
        let none = record_copy(
            &Message {
                timestamp_ms: -1,
                ..Message::default()
            },
            "g1",
            &reason(),
            1,
            5,
        );
        assert_eq!(none.timestamp, 5);
        assert_eq!(header(&none, ORIGINAL_TIMESTAMP), (-1i64).to_be_bytes());
    }

    #[test]
    fn a_broken_batch_copy_carries_its_range_and_its_raw_bytes_when_they_fit() {
        let tp = TopicPartition::new("t", 1);
        let mut b = Broken {
            first: 7,
            last: 9,
            error: "CRC mismatch".into(),
            raw: Some(Bytes::from_static(b"raw batch")),
        };
        let why = Reason {
            kind: "kafka-observer.UndecodableBatch",
            message: "offsets 7..=9 cannot be decoded: CRC mismatch".into(),
        };
        let c = broken_copy(&tp, &b, "g", &why, 2, 42);
        assert_eq!(c.key, None);
        assert_eq!(c.value.as_deref(), Some(&b"raw batch"[..]));
        assert_eq!(c.timestamp, 42);
        assert_eq!(header(&c, ORIGINAL_OFFSET), 7i64.to_be_bytes());
        assert_eq!(header(&c, ORIGINAL_LAST_OFFSET), 9i64.to_be_bytes());
        assert_eq!(header(&c, ORIGINAL_PARTITION), 1i32.to_be_bytes());
        assert_eq!(
            header(&c, EXCEPTION_FQCN),
            b"kafka-observer.UndecodableBatch"
        );
        b.raw = Some(Bytes::from(vec![0u8; RAW_COPY_LIMIT + 1]));
        let big = broken_copy(&tp, &b, "g", &why, 2, 42);
        assert_eq!(big.value, None);
        let msg = String::from_utf8(header(&big, EXCEPTION_MESSAGE).to_vec()).unwrap();
        assert!(msg.contains("too large to copy"), "{msg}");
        b.raw = None;
        let none = broken_copy(&tp, &b, "g", &why, 2, 42);
        assert_eq!(none.value, None);
    }

    #[test]
    fn write_errors_say_what_failed_as_the_log_lines_did() {
        let cases = [
            (
                WriteError::Topic {
                    topic: "t.DLT".into(),
                    code: ErrorCode(29),
                },
                "topic 't.DLT': TOPIC_AUTHORIZATION_FAILED",
            ),
            (
                WriteError::NoTopic("t.DLT".into()),
                "topic 't.DLT' does not exist",
            ),
            (
                WriteError::Timeout(WRITE_TIMEOUT + Duration::from_secs(5)),
                "no answer within 35 s",
            ),
            (
                WriteError::Lost {
                    tp: TopicPartition::new("t.DLT", 1),
                    error: "NOT_ENOUGH_REPLICAS".into(),
                },
                "t.DLT-1: NOT_ENOUGH_REPLICAS",
            ),
            (WriteError::NotStarted, "the producer did not start"),
            (
                WriteError::NothingWritten,
                "the producer reported nothing written",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn partition_table() {
        assert_eq!(partition_for(2, None, 3), 2);
        assert_eq!(partition_for(2, Some(b"k"), 3), 2);
        assert_eq!(partition_for(5, None, 3), 2);
        assert_eq!(partition_for(5, Some(b"k"), 3), for_key(b"k", 3));
        assert_eq!(partition_for(0, None, 0), 0);
    }
}
