//! The producer: records to partition leaders, idempotent, acks=all — for `kafka-observer
//! produce` and for the consumer's dead-letter topic.
//!
//! Why our own: the consumer must copy a record to a dead-letter topic with its headers exactly
//! as they were (repeated and non-UTF-8 names), and confirm the write before committing past
//! it; the workstation needs `kcat -P` without librdkafka. One Produce request per leader
//! carries the next batch of each of its partitions; an idempotent producer identity
//! (InitProducerId) makes every retry safe — the broker drops a batch it already has — so a
//! lost answer or a moved leader never writes a record twice. Routing, connections, SASL and TLS
//! are the cluster's, as for every other request.
//!
//! Layout: `accumulator` (open batches), `pipeline` (sequence numbers, in-flight, answers),
//! `reaction` (the error table), `partitioner` (keys → partitions) are pure; `sender` is the
//! one task that moves data between them and the brokers.

pub(crate) mod accumulator;
pub(crate) mod partitioner;
pub(crate) mod pipeline;
pub(crate) mod reaction;
mod sender;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub(crate) use accumulator::OutRecord;
pub(crate) use pipeline::{Lost, Settings, Written};
pub(crate) use sender::InitError;

use crate::cluster::Cluster;
use crate::offsets::TopicPartition;
use crate::protocol::records::Compression;

/// How the producer batches and retries.
#[derive(Debug, Clone)]
pub(crate) struct ProducerConfig {
    /// Uncompressed bytes per batch before it is sealed.
    pub batch_bytes: usize,
    /// How long a batch waits for more records.
    pub linger: Duration,
    /// Bytes buffered (open, sealed, in flight) before `send` waits.
    pub buffer_bytes: usize,
    /// How long the broker may wait for the in-sync replicas (`timeout_ms` of Produce).
    pub broker_timeout_ms: i32,
    pub pipeline: Settings,
}

impl ProducerConfig {
    /// Defaults: 512 KiB batches, 5 ms linger, 32 MiB buffer, 5 requests in flight per broker,
    /// 120 s delivery timeout (as Java's `delivery.timeout.ms`).
    pub(crate) fn new(compression: Compression, request_timeout: Duration) -> Self {
        ProducerConfig {
            batch_bytes: 512 << 10,
            linger: Duration::from_millis(5),
            buffer_bytes: 32 << 20,
            broker_timeout_ms: broker_timeout(request_timeout),
            pipeline: Settings {
                compression,
                max_in_flight: 5,
                backoff: sender::BATCH_BACKOFF,
                delivery_timeout: Duration::from_secs(120),
            },
        }
    }
}

/// The broker's wait for replicas stays well inside our wait for its answer.
fn broker_timeout(request_timeout: Duration) -> i32 {
    let ms = request_timeout.as_millis().saturating_sub(5_000).max(1_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// What a partition received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionWritten {
    /// First and last offset written (`None` when every batch was answered as a duplicate of
    /// an earlier write, whose offsets the broker does not repeat).
    pub offsets: Option<(i64, i64)>,
    pub records: u64,
}

/// What a flush saw since the previous one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub written: BTreeMap<TopicPartition, PartitionWritten>,
    pub lost: Vec<Lost>,
}

impl Report {
    fn add_written(&mut self, w: &Written) {
        let e = self
            .written
            .entry(w.tp.clone())
            .or_insert(PartitionWritten {
                offsets: None,
                records: 0,
            });
        e.records += u64::from(w.records);
        if w.base_offset >= 0 && w.records > 0 {
            let last = w.base_offset.saturating_add(i64::from(w.records) - 1);
            e.offsets = Some(match e.offsets {
                None => (w.base_offset, last),
                Some((f, l)) => (f.min(w.base_offset), l.max(last)),
            });
        }
    }

    pub(crate) fn records_lost(&self) -> u64 {
        self.lost.iter().map(|l| u64::from(l.records)).sum()
    }
}

/// Why the producer cannot work at all.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ProduceError {
    #[error("cannot get a producer id: {0}")]
    Init(#[from] InitError),
    #[error("the producer stopped")]
    Stopped,
}

/// A running producer. Dropping it lets the task finish what was sent, then stop.
pub(crate) struct Producer {
    tx: mpsc::Sender<sender::Command>,
}

impl Producer {
    /// Gets a producer identity (InitProducerId) and starts the task.
    pub(crate) async fn start(
        cluster: Arc<Cluster>,
        cfg: ProducerConfig,
    ) -> Result<Producer, ProduceError> {
        let identity = sender::init_producer_id(&cluster).await?;
        tracing::debug!(
            producer_id = identity.producer_id,
            epoch = identity.epoch,
            "producer started"
        );
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(sender::Sender::new(cluster, cfg, identity).run(rx));
        Ok(Producer { tx })
    }

    /// Queues records (waits while the buffer is full).
    pub(crate) async fn send(
        &self,
        records: Vec<(TopicPartition, OutRecord)>,
    ) -> Result<(), ProduceError> {
        sender::send(&self.tx, sender::Command::Send(records)).await
    }

    /// Waits until everything queued so far is written or lost; what happened since the last
    /// flush.
    pub(crate) async fn flush(&self) -> Result<Report, ProduceError> {
        let (tx, rx) = oneshot::channel();
        sender::send(&self.tx, sender::Command::Flush(tx)).await?;
        rx.await.map_err(|_| ProduceError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_timeout_table() {
        assert_eq!(broker_timeout(Duration::from_secs(30)), 25_000);
        assert_eq!(broker_timeout(Duration::from_secs(2)), 1_000);
        assert_eq!(
            broker_timeout(Duration::from_secs(u64::MAX / 1000)),
            i32::MAX
        );
    }

    #[test]
    fn the_report_keeps_first_and_last_offsets() {
        let tp = TopicPartition::new("t", 0);
        let mut r = Report::default();
        for (base, n) in [(10, 5), (15, 5), (-1, 3)] {
            r.add_written(&Written {
                tp: tp.clone(),
                base_offset: base,
                records: n,
                first_ticket: 0,
            });
        }
        assert_eq!(
            r.written[&tp],
            PartitionWritten {
                offsets: Some((10, 19)),
                records: 13
            }
        );
    }
}
