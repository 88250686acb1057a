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

use super::message::Message;
use super::progress::Progress;
use crate::cluster::{Cluster, Lane};
use crate::lag::{NoCommit, Policy};
use crate::offsets::fetch::{fetch, FetchOptions};
use crate::offsets::{fetch_ends, TopicPartition};
use crate::protocol::error::{code, error_name, is_stale_route};
use crate::protocol::records;

/// How fetchers fetch.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    pub reset: NoCommit,
    pub read_committed: bool,
    pub max_wait: Duration,
    pub partition_max_bytes: i32,
    pub max_decompressed: usize,
}

/// Records of one partition from one fetch, in offset order.
#[derive(Debug)]
pub struct Chunk {
    pub tp: TopicPartition,
    /// The offset this fetch started at.
    pub first_offset: i64,
    pub messages: Vec<Message>,
    /// Where the next fetch starts: past the last record and any skipped control or aborted
    /// batches; committing it is safe once every message here is handled.
    pub next_offset: i64,
    /// An out-of-range reset: the position jumps to `next_offset`.
    pub reset: bool,
}

/// What a fetcher reports.
#[derive(Debug)]
pub enum FetchEvent {
    Chunk(Chunk),
    /// Leadership moved or metadata is stale: refresh and restart the fetchers.
    Reroute(String),
    /// Nothing can fix this (authorization, corrupt data that cannot be skipped safely).
    Fatal(String),
}

/// One task per leader of `assigned`, starting at the handled positions.
pub async fn spawn_all(
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
            tokio::spawn(fetch_loop(
                cluster.clone(),
                leader,
                positions,
                cfg.clone(),
                tx.clone(),
            ))
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
                    let _ = tx.send(FetchEvent::Reroute(e)).await;
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
    Fatal(String),
}

/// One Fetch to `leader` for `positions`.
async fn fetch_once(
    cluster: &Cluster,
    leader: i32,
    positions: &BTreeMap<TopicPartition, i64>,
    cfg: &FetchConfig,
) -> Result<Vec<(TopicPartition, PartitionOutcome)>, String> {
    let opts = FetchOptions {
        max_wait: cfg.max_wait,
        partition_max_bytes: cfg.partition_max_bytes,
        max_bytes: 50 * 1024 * 1024,
        read_committed: cfg.read_committed,
        lane: Lane::Fetch,
    };
    let answers = fetch(cluster, leader, positions, opts)
        .await
        .map_err(|e| e.to_string())?;
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
            return PartitionOutcome::Fatal(format!(
                "not authorized to read topic '{}' (TOPIC_AUTHORIZATION_FAILED)",
                tp.topic
            ))
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
        Ok(Some(chunk)) => PartitionOutcome::Chunk(chunk),
        Ok(None) => PartitionOutcome::Nothing,
        Err(e) => PartitionOutcome::Fatal(format!("{tp} at offset {first}: {e}")),
    }
}

fn decode(
    bytes: &Bytes,
    aborted: &[crate::protocol::fetch::AbortedTransaction],
    cfg: &FetchConfig,
    tp: &TopicPartition,
    first: i64,
) -> Result<Option<Chunk>, String> {
    let batches =
        records::decode_batches(bytes, cfg.max_decompressed).map_err(|e| e.to_string())?;
    let visible = records::visible_records(batches, first, aborted, cfg.read_committed);
    let next = visible.next_offset;
    let messages: Vec<Message> = visible
        .records
        .into_iter()
        .filter(|r| r.offset >= first)
        .map(|r| Message {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            offset: r.offset,
            timestamp_ms: r.timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect();
    if messages.is_empty() && next <= first {
        return Ok(None);
    }
    Ok(Some(Chunk {
        tp: tp.clone(),
        first_offset: first,
        messages,
        next_offset: next.max(first),
        reset: false,
    }))
}
