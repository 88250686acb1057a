//! Fetching: one task per leader broker, each with one Fetch request in flight for all of its
//! partitions, feeding decoded records to the handler loop through a short bounded queue.
//!
//! The queue is the only coupling: a fetcher runs ahead of handling by at most its capacity, and
//! on a rebalance or re-route the tasks are dropped and restarted from the handled positions, so
//! nothing fetched-but-unhandled is ever mistaken for progress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::message::Message;
use super::progress::Progress;
use crate::cluster::{Cluster, Lane};
use crate::lag::{NoCommit, Policy};
use crate::offsets::fetch::{fetch, FetchFailure, FetchOptions};
use crate::offsets::{fetch_ends, TopicPartition};
use crate::protocol::error::{code, error_name, is_stale_route};
use crate::protocol::records;

/// How fetchers fetch.
#[derive(Debug, Clone)]
pub(crate) struct FetchConfig {
    pub reset: NoCommit,
    pub read_committed: bool,
    pub max_wait: Duration,
    pub partition_max_bytes: i32,
    pub max_decompressed: usize,
}

/// Records of one partition from one fetch, in offset order.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub tp: TopicPartition,
    /// The offset this fetch started at.
    pub first_offset: i64,
    pub messages: Vec<Message>,
    /// Where the next fetch starts: past the last record and any skipped control or aborted
    /// batches; committing it is safe once every message here is handled.
    pub next_offset: i64,
    /// An out-of-range reset: the position jumps to `next_offset`.
    pub reset: bool,
    /// A batch after `messages` that could not be decoded: its offsets are one failed unit for
    /// the failure policy (`next_offset` is past it).
    pub broken: Option<Broken>,
}

/// A record batch the decoder refused (CRC mismatch, corrupt compression, …), as a failed range
/// of offsets. It never fails the partition: the failure policy decides (fetch it again, dead-
/// letter its raw bytes, or skip it).
#[derive(Debug, Clone)]
pub(crate) struct Broken {
    /// First offset of the range not yet handled (at or after the fetch position).
    pub first: i64,
    /// Last offset the batch claims (≥ `first`; from an unverified header when the CRC failed).
    pub last: i64,
    /// What the decoder said, for logs and the dead-letter copy.
    pub error: String,
    /// The batch as fetched, when it arrived whole.
    pub raw: Option<Bytes>,
}

/// What a fetcher reports.
#[derive(Debug)]
pub(crate) enum FetchEvent {
    Chunk(Chunk),
    /// Leadership moved or metadata is stale: refresh and restart the fetchers.
    Reroute(String),
    /// Nothing can fix this (authorization).
    Fatal(FetchFatal),
}

/// What no retry of a fetch fixes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchFatal {
    /// The broker answered TOPIC_AUTHORIZATION_FAILED for a partition of the topic.
    #[error("not authorized to read topic '{0}' (TOPIC_AUTHORIZATION_FAILED)")]
    NotAuthorized(String),
}

/// One task per leader of `assigned`, starting at the handled positions.
pub(crate) async fn spawn_all(
    cluster: &Arc<Cluster>,
    progress: &Progress,
    assigned: &[TopicPartition],
    cfg: &FetchConfig,
    tx: &mpsc::Sender<FetchEvent>,
) -> Vec<JoinHandle<()>> {
    if assigned.is_empty() {
        return Vec::new();
    }
    let topics: Vec<String> = {
        let mut t: Vec<String> = assigned.iter().map(|tp| tp.topic.to_string()).collect();
        t.sort();
        t.dedup();
        t
    };
    let md = match cluster.metadata_for(&topics).await {
        Ok(md) => md,
        Err(e) => {
            let _ = tx.send(FetchEvent::Reroute(e.to_string())).await;
            return Vec::new();
        }
    };
    let mut by_leader: BTreeMap<i32, BTreeMap<TopicPartition, i64>> = BTreeMap::new();
    for tp in assigned {
        let Some(pos) = progress.position(tp) else {
            continue;
        };
        match md.leader(&tp.topic, tp.partition) {
            Some(l) => {
                by_leader.entry(l).or_default().insert(tp.clone(), pos);
            }
            None => {
                let tx = tx.clone();
                let msg = format!("{tp} has no leader right now");
                return vec![tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = tx.send(FetchEvent::Reroute(msg)).await;
                })];
            }
        }
    }
    by_leader
        .into_iter()
        .map(|(leader, positions)| {
            tokio::spawn(
                fetch_loop(cluster.clone(), leader, positions, cfg.clone(), tx.clone())
                    .in_current_span(),
            )
        })
        .collect()
}

async fn fetch_loop(
    cluster: Arc<Cluster>,
    leader: i32,
    mut positions: BTreeMap<TopicPartition, i64>,
    cfg: FetchConfig,
    tx: mpsc::Sender<FetchEvent>,
) {
    let mut failures = 0u32;
    loop {
        match fetch_once(&cluster, leader, &positions, &cfg).await {
            Ok(outcome) => {
                failures = 0;
                for (tp, result) in outcome {
                    match result {
                        PartitionOutcome::Chunk(chunk) => {
                            positions.insert(tp, chunk.next_offset);
                            if tx.send(FetchEvent::Chunk(chunk)).await.is_err() {
                                return;
                            }
                        }
                        PartitionOutcome::Nothing => {}
                        PartitionOutcome::Reset(offset) => {
                            positions.insert(tp.clone(), offset);
                            let chunk = Chunk {
                                tp,
                                first_offset: offset,
                                messages: Vec::new(),
                                next_offset: offset,
                                reset: true,
                                broken: None,
                            };
                            if tx.send(FetchEvent::Chunk(chunk)).await.is_err() {
                                return;
                            }
                        }
                        PartitionOutcome::Reroute(why) => {
                            let _ = tx.send(FetchEvent::Reroute(why)).await;
                            return;
                        }
                        PartitionOutcome::Fatal(why) => {
                            let _ = tx.send(FetchEvent::Fatal(why)).await;
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(leader, error = %e, failures, "fetch failed");
                if failures >= 3 {
                    let _ = tx.send(FetchEvent::Reroute(e.to_string())).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
            }
        }
    }
}

enum PartitionOutcome {
    Chunk(Chunk),
    Nothing,
    Reset(i64),
    Reroute(String),
    Fatal(FetchFatal),
}

/// One Fetch to `leader` for `positions`.
async fn fetch_once(
    cluster: &Cluster,
    leader: i32,
    positions: &BTreeMap<TopicPartition, i64>,
    cfg: &FetchConfig,
) -> Result<Vec<(TopicPartition, PartitionOutcome)>, FetchFailure> {
    let opts = FetchOptions {
        max_wait: cfg.max_wait,
        partition_max_bytes: cfg.partition_max_bytes,
        max_bytes: 50 * 1024 * 1024,
        read_committed: cfg.read_committed,
        lane: Lane::Fetch,
    };
    let answers = fetch(cluster, leader, positions, opts).await?;
    let mut out = Vec::new();
    for (tp, p) in answers {
        let first = positions[&tp];
        let outcome = partition_outcome(cluster, cfg, &tp, first, p).await;
        out.push((tp, outcome));
    }
    Ok(out)
}

async fn partition_outcome(
    cluster: &Cluster,
    cfg: &FetchConfig,
    tp: &TopicPartition,
    first: i64,
    p: crate::protocol::fetch::FetchPartition,
) -> PartitionOutcome {
    match p.error_code {
        0 => {}
        code::OFFSET_OUT_OF_RANGE => {
            let ends = fetch_ends(cluster, std::slice::from_ref(tp)).await;
            return match ends.get(tp) {
                Some(Ok(e)) => {
                    let to = Policy::new(cfg.read_committed, cfg.reset).start(e, None);
                    tracing::warn!(partition = %tp, from = first, to, policy = ?cfg.reset, "offset out of range; reset");
                    PartitionOutcome::Reset(to)
                }
                _ => PartitionOutcome::Reroute(format!(
                    "{tp}: offset out of range and the log ends are unknown"
                )),
            };
        }
        code::TOPIC_AUTHORIZATION_FAILED => {
            return PartitionOutcome::Fatal(FetchFatal::NotAuthorized(tp.topic.to_string()))
        }
        ec if is_stale_route(ec) => {
            return PartitionOutcome::Reroute(format!("{tp}: {}", error_name(ec)))
        }
        ec => {
            tracing::warn!(partition = %tp, error = %error_name(ec), "fetch error; retrying");
            return PartitionOutcome::Nothing;
        }
    }
    let Some(bytes) = p.records.filter(|b| !b.is_empty()) else {
        return PartitionOutcome::Nothing;
    };
    match decode(
        &bytes,
        p.aborted_transactions.as_deref().unwrap_or(&[]),
        cfg,
        tp,
        first,
    ) {
        Some(chunk) => PartitionOutcome::Chunk(chunk),
        None => PartitionOutcome::Nothing,
    }
}

/// The chunk of one partition's fetched records: every batch up to the first one that cannot
/// be decoded, which becomes [`Chunk::broken`]. `None` when nothing moved.
fn decode(
    bytes: &Bytes,
    aborted: &[crate::protocol::fetch::AbortedTransaction],
    cfg: &FetchConfig,
    tp: &TopicPartition,
    first: i64,
) -> Option<Chunk> {
    let mut batches = Vec::new();
    let mut failure = None;
    for b in records::BatchIter::new(bytes, cfg.max_decompressed) {
        match b {
            Ok(b) => batches.push(b),
            Err(e) => failure = Some(e),
        }
    }
    let visible = records::visible_records(batches, first, aborted, cfg.read_committed);
    let broken = failure.map(|e| broken_range(e, visible.next_offset));
    let next = match &broken {
        Some(b) => b.last.saturating_add(1),
        None => visible.next_offset,
    };
    let messages: Vec<Message> = visible
        .records
        .into_iter()
        .filter(|r| r.offset >= first)
        .map(|r| Message {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp,
            log_append_time: r.log_append_time,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect();
    if messages.is_empty() && broken.is_none() && next <= first {
        return None;
    }
    Some(Chunk {
        tp: tp.clone(),
        first_offset: first,
        messages,
        next_offset: next.max(first),
        reset: false,
        broken,
    })
}

/// The offsets a refused batch stands for: from where decoding got to (never before the
/// batch's own base offset) to the last offset its header claims.
pub(crate) fn broken_range(e: records::RecordsError, decoded_up_to: i64) -> Broken {
    let first = e.base_offset.max(decoded_up_to).min(records::MAX_OFFSET);
    let last = e.claimed_last_offset.unwrap_or(first).max(first);
    Broken {
        first,
        last,
        error: e.to_string(),
        raw: e.raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::encode::{BatchBuilder, ProducerStamp};
    use crate::protocol::records::Compression;

    fn cfg() -> FetchConfig {
        FetchConfig {
            reset: NoCommit::Earliest,
            read_committed: true,
            max_wait: Duration::from_millis(1),
            partition_max_bytes: 1 << 20,
            max_decompressed: 1 << 20,
        }
    }

    /// A batch of `n` records at `base`, as a broker would serve it.
    fn batch(base: i64, n: i64, header_key: &[u8]) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        for i in 0..n {
            let v = format!("v{}", base + i);
            b.push(
                1_700_000_000_000,
                Some(b"k"),
                Some(v.as_bytes()),
                &[(header_key, Some(b"x"))],
            );
        }
        let mut raw = b
            .finish(Compression::None, ProducerStamp::NONE)
            .unwrap()
            .to_vec();
        raw[..8].copy_from_slice(&base.to_be_bytes());
        raw
    }

    #[test]
    fn a_corrupt_batch_is_a_failed_range_after_the_good_records() {
        let tp = TopicPartition::new("t", 0);
        let mut blob = batch(10, 3, b"\xff\x00not-utf8");
        let mut bad = batch(13, 4, b"h");
        bad[70] ^= 0xff; // inside the CRC-covered records
        blob.extend(&bad);
        blob.extend(batch(17, 2, b"h"));
        let chunk = decode(&Bytes::from(blob), &[], &cfg(), &tp, 11).unwrap();
        // Offset 10 was before the fetch position; 11 and 12 decoded, with their odd header.
        let offsets: Vec<i64> = chunk.messages.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [11, 12]);
        assert_eq!(&chunk.messages[0].headers[0].0[..], b"\xff\x00not-utf8");
        let broken = chunk.broken.unwrap();
        assert_eq!((broken.first, broken.last), (13, 16));
        assert!(broken.error.contains("CRC mismatch"), "{}", broken.error);
        assert_eq!(broken.raw.as_deref(), Some(&bad[..]));
        // The next fetch starts after the broken batch: the good one behind it comes next.
        assert_eq!(chunk.next_offset, 17);
    }

    #[test]
    fn a_corrupt_first_batch_still_moves_the_position() {
        let tp = TopicPartition::new("t", 0);
        let mut bad = batch(0, 5, b"h");
        bad[8..12].copy_from_slice(&7i32.to_be_bytes()); // impossible batch length
        let chunk = decode(&Bytes::from(bad), &[], &cfg(), &tp, 2).unwrap();
        assert!(chunk.messages.is_empty());
        let broken = chunk.broken.unwrap();
        // The length is unusable: the range is what the header still claims, from the position.
        assert_eq!((broken.first, broken.last), (2, 4));
        assert!(broken.raw.is_none());
        assert_eq!(chunk.next_offset, 5);
    }

    #[test]
    fn offsets_at_the_end_of_i64_are_refused_not_wrapped() {
        let tp = TopicPartition::new("t", 0);
        let mut b = batch(0, 2, b"h");
        b[..8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
        let mut crc_fixed = b.clone();
        let crc = crc32c::crc32c(&crc_fixed[21..]);
        crc_fixed[17..21].copy_from_slice(&crc.to_be_bytes());
        let chunk = decode(&Bytes::from(crc_fixed), &[], &cfg(), &tp, 0).unwrap();
        let broken = chunk.broken.unwrap();
        assert!(
            broken.error.contains("offsets out of range"),
            "{}",
            broken.error
        );
        // The range cannot extend past the last representable offset; nothing wraps.
        assert_eq!(broken.first, i64::MAX - 1);
        assert_eq!(chunk.next_offset, i64::MAX);
    }
}
