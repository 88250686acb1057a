//! The consumer's main loop: join, resume from the group's commits, fetch and handle, commit,
//! and leave when idle or told to stop.
//!
//! Fetching runs ahead of handling (one task per leader broker, a short bounded queue), so the
//! next records are already here when the handler finishes. Handling and committing stay in
//! this one loop, in order, which is what makes at-least-once easy to see: `Progress` moves only
//! after the handler succeeded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::fetcher::{self, Chunk, FetchConfig, FetchEvent};
use super::group::{GroupConfig, GroupError, Member};
use super::handler::{Handler, HandlerSpec};
use super::progress::Progress;
use crate::cluster::Cluster;
use crate::lag::NoCommit;
use crate::offsets::{fetch_committed, fetch_ends, GroupQuery, TopicPartition};

/// Settings of one consumer instance.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub group: GroupConfig,
    pub handler: HandlerSpec,
    pub reset: NoCommit,
    pub read_committed: bool,
    pub idle_timeout: Duration,
    pub commit_interval: Duration,
    pub heartbeat_interval: Duration,
    pub max_wait: Duration,
    pub partition_max_bytes: i32,
    pub max_decompressed: usize,
    /// Most records per handler call.
    pub batch_size: usize,
}

/// Why the consumer stopped (both are clean exits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Idle,
    Signal,
}

/// How one generation ended.
enum Leave {
    Exit(Exit),
    Rejoin,
}

/// Runs until idle, `shutdown`, or a fatal error.
pub async fn run(
    cluster: Arc<Cluster>,
    cfg: ConsumerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Exit, String> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut handler = Handler::new(&cfg.handler).map_err(|e| e.to_string())?;
    let mut member = Member::new(cluster.clone(), cfg.group.clone());
    let mut idle_since = Instant::now();
    let mut attempt = 0u32;
    let exit = loop {
        if *stop_rx.borrow() {
            break Exit::Signal;
        }
        if idle_since.elapsed() >= cfg.idle_timeout {
            break Exit::Idle;
        }
        let assigned = match member.join().await {
            Ok(a) => {
                attempt = 0;
                // A join can wait for a dead member's session to expire: that is not idleness.
                idle_since = Instant::now();
                a
            }
            Err(GroupError::Fatal(e)) => {
                member.leave().await;
                return Err(e);
            }
            Err(e) => {
                attempt += 1;
                let d = Duration::from_millis(200 * u64::from(attempt.min(10)));
                tracing::info!(group = %member.group(), error = %e, "joining again");
                if sleep_or_stop(d, &stop_rx).await {
                    break Exit::Signal;
                }
                continue;
            }
        };
        tracing::info!(
            group = %member.group(),
            generation = member.generation().generation_id,
            partitions = %assigned.iter().map(|tp| tp.to_string()).collect::<Vec<_>>().join(","),
            "assigned"
        );
        match generation(
            &cluster,
            &cfg,
            &mut member,
            &mut handler,
            &assigned,
            &mut idle_since,
            &stop_rx,
        )
        .await
        {
            Ok(Leave::Rejoin) => continue,
            Ok(Leave::Exit(e)) => break e,
            Err(e) => {
                member.leave().await;
                return Err(e);
            }
        }
    };
    member.leave().await;
    tracing::info!(reason = ?exit, "consumer stopped");
    Ok(exit)
}

async fn sleep_or_stop(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut waiter = stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = waiter.wait_for(|s| *s) => true,
    }
}

/// One generation: from assignment to rebalance, idle exit or stop.
async fn generation(
    cluster: &Arc<Cluster>,
    cfg: &ConsumerConfig,
    member: &mut Member,
    handler: &mut Handler,
    assigned: &[TopicPartition],
    idle_since: &mut Instant,
    stop_rx: &watch::Receiver<bool>,
) -> Result<Leave, String> {
    let mut progress = Progress::default();
    resume(cluster, cfg, member.group(), assigned, &mut progress).await?;

    // Heartbeats on their own task, so a slow handler never costs the membership.
    let (rebalance_tx, mut rebalance_rx) = watch::channel::<Option<GroupError>>(None);
    let hb = spawn_heartbeats(
        cluster.clone(),
        cfg.group.clone(),
        member.generation().clone(),
        cfg.heartbeat_interval,
        rebalance_tx,
    );
    let _hb_guard = AbortOnDrop(vec![hb]);

    let (tx, mut rx) = mpsc::channel::<FetchEvent>(4);
    let fetch_cfg = FetchConfig {
        reset: cfg.reset,
        read_committed: cfg.read_committed,
        max_wait: cfg.max_wait,
        partition_max_bytes: cfg.partition_max_bytes,
        max_decompressed: cfg.max_decompressed,
    };
    let mut fetchers =
        AbortOnDrop(fetcher::spawn_all(cluster, &progress, assigned, &fetch_cfg, &tx).await);
    let mut commit_tick = tokio::time::interval(cfg.commit_interval);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = stop_rx.clone();
    let mut last_commit = Instant::now();
    let leave = loop {
        let idle_at = *idle_since + cfg.idle_timeout;
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break Leave::Exit(Exit::Signal),
            _ = rebalance_rx.changed() => {
                let why = rebalance_rx.borrow().clone();
                match why {
                    Some(GroupError::Fatal(e)) => return Err(e),
                    Some(e) => {
                        tracing::info!(group = %member.group(), reason = %e, "rebalance");
                        break Leave::Rejoin;
                    }
                    None => {}
                }
            }
            _ = tokio::time::sleep_until(idle_at) => {
                tracing::info!(group = %member.group(), idle_secs = cfg.idle_timeout.as_secs(), "idle: no records");
                break Leave::Exit(Exit::Idle);
            }
            _ = commit_tick.tick() => {
                last_commit = Instant::now();
                if let Some(leave) = commit(member, &mut progress).await? {
                    break leave;
                }
            }
            ev = rx.recv() => match ev {
                Some(FetchEvent::Chunk(chunk)) => {
                    if !chunk.messages.is_empty() {
                        *idle_since = Instant::now();
                    }
                    let had_records = !chunk.messages.is_empty();
                    if let Some(leave) = handle(handler, member, &mut progress, chunk, cfg.batch_size, (&mut last_commit, cfg.commit_interval), stop_rx, &mut rebalance_rx).await? {
                        break leave;
                    }
                    if had_records {
                        // Idle counts from the end of the last handled batch, not its arrival.
                        *idle_since = Instant::now();
                    }
                }
                Some(FetchEvent::Reroute(why)) => {
                    tracing::info!(%why, "partition leadership moved; re-routing fetches");
                    drop(fetchers);
                    let _ = cluster.refresh_metadata(Some(&cfg.group.topics)).await;
                    while rx.try_recv().is_ok() {}
                    fetchers = AbortOnDrop(fetcher::spawn_all(cluster, &progress, assigned, &fetch_cfg, &tx).await);
                }
                Some(FetchEvent::Fatal(e)) => return Err(e),
                None => {}
            },
        }
    };
    drop(fetchers);
    // Whatever happens next, what was handled is committed first.
    if let Err(e) = member.commit(&progress.to_commit()).await {
        tracing::warn!(group = %member.group(), error = %e, "final commit of this generation failed; the uncommitted tail will be handled again");
    }
    Ok(leave)
}

/// Starting positions: the group's commits, else the reset policy.
async fn resume(
    cluster: &Cluster,
    cfg: &ConsumerConfig,
    group: &str,
    assigned: &[TopicPartition],
    progress: &mut Progress,
) -> Result<(), String> {
    if assigned.is_empty() {
        return Ok(());
    }
    let q = GroupQuery {
        group: group.to_string(),
        topics: Some(cfg.group.topics.clone()),
    };
    let committed = fetch_committed(cluster, std::slice::from_ref(&q)).await;
    let offsets = match committed.get(group) {
        Some(Ok(o)) => o.clone(),
        Some(Err(e)) => return Err(format!("cannot read the group's committed offsets: {e}")),
        None => return Err("cannot read the group's committed offsets".into()),
    };
    let mut missing = Vec::new();
    for tp in assigned {
        match offsets.committed.get(tp) {
            Some(c) => progress.start(tp.clone(), c.offset, true),
            None => missing.push(tp.clone()),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let ends = fetch_ends(cluster, &missing).await;
    for tp in missing {
        let e = match ends.get(&tp) {
            Some(Ok(e)) => *e,
            Some(Err(e)) => return Err(format!("cannot read the offsets of {tp}: {e}")),
            None => return Err(format!("cannot read the offsets of {tp}")),
        };
        let start = match cfg.reset {
            NoCommit::Earliest => e.log_start,
            NoCommit::Latest if cfg.read_committed => e.last_stable,
            NoCommit::Latest => e.high_watermark,
        };
        tracing::info!(partition = %tp, offset = start, policy = ?cfg.reset, "no committed offset; starting by policy");
        progress.start(tp, start, false);
    }
    Ok(())
}

/// Hands one chunk to the handler, retrying failures with backoff; nothing past a failure is
/// marked handled. Returns `Some` when the generation must end.
async fn handle(
    handler: &mut Handler,
    member: &mut Member,
    progress: &mut Progress,
    chunk: Chunk,
    batch_size: usize,
    (last_commit, commit_interval): (&mut Instant, Duration),
    stop_rx: &watch::Receiver<bool>,
    rebalance_rx: &mut watch::Receiver<Option<GroupError>>,
) -> Result<Option<Leave>, String> {
    if chunk.reset {
        progress.reset_to(&chunk.tp, chunk.next_offset);
        return Ok(None);
    }
    // Not ours any more, or (never expected) a chunk past what was handled: skipping records
    // is worse than fetching again, so such a chunk is dropped.
    let Some(pos) = progress.position(&chunk.tp) else {
        return Ok(None);
    };
    if chunk.first_offset > pos {
        tracing::warn!(partition = %chunk.tp, position = pos, chunk_start = chunk.first_offset, "dropping a chunk that starts past the handled position");
        return Ok(None);
    }
    let mut rest: &[super::message::Message] = &chunk.messages;
    // Records already handled (a re-fetched overlap) are skipped.
    let skip = rest.iter().take_while(|m| m.offset < pos).count();
    rest = &rest[skip..];
    let mut attempt = 0u32;
    while !rest.is_empty() {
        let batch = &rest[..rest.len().min(batch_size.max(1))];
        match handler.handle(batch).await {
            Ok(()) => {
                progress.handled(&chunk.tp, batch[batch.len() - 1].offset + 1);
                rest = &rest[batch.len()..];
                attempt = 0;
                if rest.is_empty() {
                    break;
                }
                // Between batches of a long chunk: honour stop and rebalance, keep committing.
                if *stop_rx.borrow() {
                    return Ok(Some(Leave::Exit(Exit::Signal)));
                }
                if rebalance_rx.has_changed().unwrap_or(false) && rebalance_rx.borrow().is_some() {
                    return Ok(Some(Leave::Rejoin));
                }
                if last_commit.elapsed() >= commit_interval {
                    *last_commit = Instant::now();
                    if let Some(leave) = commit(member, progress).await? {
                        return Ok(Some(leave));
                    }
                }
            }
            Err(f) => {
                let done = f.handled.min(batch.len());
                if done > 0 {
                    progress.handled(&chunk.tp, rest[done - 1].offset + 1);
                    rest = &rest[done..];
                }
                attempt += 1;
                let delay = Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)))
                    .min(Duration::from_secs(30));
                tracing::warn!(partition = %chunk.tp, offset = rest.first().map(|m| m.offset), error = %f.error, ?delay, "handler failed; nothing after this record is committed; retrying");
                if let Some(leave) = commit(member, progress).await? {
                    return Ok(Some(leave));
                }
                let mut stop = stop_rx.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(Some(Leave::Exit(Exit::Signal))),
                    _ = rebalance_rx.changed() => {
                        if rebalance_rx.borrow().is_some() {
                            return Ok(Some(Leave::Rejoin));
                        }
                    }
                }
            }
        }
    }
    progress.handled(&chunk.tp, chunk.next_offset);
    Ok(None)
}

/// Commits what was handled; a rebalance answer ends the generation.
async fn commit(member: &mut Member, progress: &mut Progress) -> Result<Option<Leave>, String> {
    let offsets = progress.to_commit();
    if offsets.is_empty() {
        return Ok(None);
    }
    match member.commit(&offsets).await {
        Ok(()) => {
            progress.committed(&offsets);
            Ok(None)
        }
        Err(GroupError::Rebalance(e)) => {
            tracing::info!(error = %e, "commit refused: rebalancing");
            Ok(Some(Leave::Rejoin))
        }
        Err(GroupError::Retry(e)) => {
            tracing::warn!(error = %e, "commit failed; retrying at the next interval");
            Ok(None)
        }
        Err(GroupError::Fatal(e)) => Err(e),
    }
}

fn spawn_heartbeats(
    cluster: Arc<Cluster>,
    group: GroupConfig,
    gen: super::group::Generation,
    every: Duration,
    tx: watch::Sender<Option<GroupError>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut m = Member::with_generation(cluster, group, gen);
        let mut failures = 0u32;
        loop {
            tokio::time::sleep(every).await;
            match m.heartbeat().await {
                Ok(()) => failures = 0,
                Err(GroupError::Retry(e)) => {
                    failures += 1;
                    tracing::debug!(error = %e, failures, "heartbeat failed");
                    if failures >= 10 {
                        let _ = tx.send(Some(GroupError::Rebalance(e)));
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Some(e));
                    return;
                }
            }
        }
    })
}

/// Aborts tasks when dropped: fetchers and heartbeats never outlive their generation.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
