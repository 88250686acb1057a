//! The consumer's main loop: join, resume from the group's commits, fetch and handle, commit,
//! and leave when idle or told to stop.
//!
//! Fetching runs ahead of handling (one task per leader broker, a short bounded queue), so the
//! next records are already here when the handler finishes. Handling and committing stay in
//! this one loop, in order, which is what makes at-least-once easy to see: `Progress` moves only
//! after the handler succeeded (or the failure policy resolved a record: `dispatch.rs`).
//!
//! Rebalances are honoured at once: the heartbeat task, a refused commit or the fetch path
//! raises one [`Signal`] that stays raised, the loop sees it before the next handler call,
//! commits what was handled and rejoins. One handler call in flight is the only thing a rejoin
//! waits for (so the bound is `--handler-timeout`, and the rebalance timeout is set above it).
//! Under cooperative-sticky the member keeps its partitions and their positions across the join
//! and drops only what was revoked; under the eager assignors it gives everything up first.
//!
//! What the loop decides — when to give up joining and how fast to join again, where a fresh
//! partition starts, what a commit's answer or a raised signal means, when it is idle — is in
//! [`decide`] (pure, table-tested); this file takes the snapshot, asks, and acts.

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeSet;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::assignor::is_cooperative;
use super::dead_letter::DeadLetter;
use super::dispatch::{Control, Dispatcher, Next};
use super::error::ConsumerError;
use super::failure::{Exhausted, FailurePolicy, FailureStats};
use super::fetcher::{self, FetchConfig, FetchEvent};
use super::group::{Claim, GroupConfig, GroupError, Member};
use super::handler::{Handler, HandlerSpec};
use super::heartbeat;
use super::progress::Progress;
use super::rebalance::Signal;
use crate::cluster::Cluster;
use crate::lag::{NoCommit, Policy};
use crate::offsets::{fetch_committed, fetch_ends, GroupQuery, TopicPartition};

/// Settings of one consumer instance.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerConfig {
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
    /// What happens to records the handler fails on.
    pub failure: FailurePolicy,
}

mod decide;

use decide::{Between, Commit, Idle, Keep, Rejoin, Turn};

/// Why the consumer stopped (both are clean exits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Idle,
    Signal,
}

/// How one generation ended.
enum Leave {
    Exit(Exit),
    Rejoin,
}

/// Runs until idle, `shutdown`, or a fatal error.
pub(crate) async fn run(
    cluster: Arc<Cluster>,
    cfg: ConsumerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Exit, ConsumerError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let handler = Handler::new(&cfg.handler)?;
    let mut dispatcher = Dispatcher::new(handler, cfg.failure.clone(), cfg.batch_size);
    if let Exhausted::DeadLetter(topic) = &cfg.failure.exhausted {
        dispatcher =
            dispatcher.with_dead_letter(DeadLetter::new(cluster.clone(), topic, &cfg.group.group));
    }
    if cfg.failure.can_exhaust() {
        let p = &cfg.failure;
        tracing::info!(
            max_attempts = %p.max_attempts.map_or("unlimited".to_string(), |n| n.to_string()),
            max_record_age_secs = %p.max_record_age.map_or("-".to_string(), |d| d.as_secs().to_string()),
            on_exhausted = %match &p.exhausted {
                Exhausted::DeadLetter(t) => format!("dead-letter topic {t}"),
                Exhausted::Skip => "skip".to_string(),
                Exhausted::Block => "block".to_string(),
            },
            "failure policy"
        );
    }
    // Wrong credentials or an untrusted certificate will not heal: say so now, exit 1.
    if let Err(e) = cluster.refresh_metadata(Some(&cfg.group.topics)).await {
        if e.is_fatal() {
            return Err(ConsumerError::Cluster(e));
        }
        tracing::warn!(error = %e, "cluster not reachable yet; retrying");
    }
    let mut member = Member::new(cluster.clone(), cfg.group.clone());
    // What this member holds across generations (cooperative-sticky keeps it through a join),
    // the generation it was assigned in (-1: nothing held), and the positions handled so far.
    let mut owned: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut held_generation = -1;
    let mut progress = Progress::default();
    let mut idle = Idle::new(Instant::now(), cfg.idle_timeout);
    let mut attempt = 0u32;
    let mut joined = false;
    let mut last_error: Option<GroupError> = None;
    let exit = loop {
        match decide::before_join(*stop_rx.borrow(), idle.expired(Instant::now()), joined) {
            Turn::Join => {}
            Turn::Exit(e) => break e,
            Turn::GiveUp => {
                return Err(ConsumerError::NotJoined {
                    group: cfg.group.group.clone(),
                    last: last_error,
                })
            }
        }
        let claim = Claim {
            partitions: owned.iter().cloned().collect(),
            generation: held_generation,
        };
        let assigned = match member.join(&claim).await {
            Ok(a) => {
                attempt = 0;
                joined = true;
                // A join can wait for a dead member's session to expire: that is not idleness.
                idle.reset(Instant::now());
                a
            }
            Err(e) => {
                let delay = match decide::rejoin(&e, attempt + 1) {
                    Rejoin::Never => {
                        member.leave().await;
                        return Err(ConsumerError::Group(e));
                    }
                    Rejoin::Now => None,
                    Rejoin::After(d) => Some(d),
                };
                attempt += 1;
                if delay.is_none() {
                    tracing::info!(group = %member.group(), error = %e, "joining again at once");
                } else {
                    tracing::info!(group = %member.group(), error = %e, "joining again");
                }
                last_error = Some(e);
                if let Some(d) = delay {
                    if sleep_or_stop(d, &stop_rx).await {
                        break Exit::Signal;
                    }
                }
                continue;
            }
        };
        let gen = member.generation().clone();
        let plan = decide::assigned(
            &owned,
            held_generation,
            gen.generation_id,
            &gen.protocol,
            &assigned,
        );
        let change = &plan.change;
        let list = |tps: &[TopicPartition]| {
            tps.iter()
                .map(|tp| tp.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        tracing::info!(
            group = %member.group(),
            generation = gen.generation_id,
            partitions = %list(&assigned),
            protocol = %gen.protocol,
            added = %list(&change.added),
            revoked = %list(&change.revoked),
            "assigned"
        );
        // What was handled but not committed (a failed final commit) is committed now, in the
        // new generation, before anything revoked is let go.
        let pending = progress.to_commit();
        if !pending.is_empty() && member.commit(&pending).await.is_ok() {
            progress.committed(&pending);
        }
        for tp in &plan.forget {
            progress.remove(tp);
        }
        owned = assigned.iter().cloned().collect();
        held_generation = gen.generation_id;
        if plan.rejoin_first {
            // KIP-429's second phase: the revoked partitions go to their new owners only once
            // this member rejoins without them.
            continue;
        }
        let signal = Signal::default();
        let left = generation(
            &cluster,
            &cfg,
            &mut member,
            &mut dispatcher,
            &assigned,
            &mut progress,
            &mut idle,
            &stop_rx,
            &signal,
        )
        .await;
        match left {
            Ok(Leave::Rejoin) => {}
            Ok(Leave::Exit(e)) => break e,
            Err(e) => {
                member.leave().await;
                report(dispatcher.stats(), "consumer failed");
                return Err(e);
            }
        }
        match decide::after_generation(signal.pending(), is_cooperative(&gen.protocol)) {
            Ok(Keep::Held) => {}
            Ok(Keep::Nothing) => {
                progress.clear();
                owned.clear();
                held_generation = -1;
            }
            Err(e) => {
                member.leave().await;
                return Err(e);
            }
        }
    };
    member.leave().await;
    report(dispatcher.stats(), &format!("consumer stopped ({exit:?})"));
    Ok(exit)
}

/// The consumer's counters, one line when it stops: what a job run did, by topic (the consumer
/// has no metrics endpoint — it lives for minutes — so its log is where they go).
fn report(s: &FailureStats, what: &str) {
    tracing::info!(
        handled = %FailureStats::by_topic(&s.handled),
        retried = %FailureStats::by_topic(&s.retried),
        dead_lettered = %FailureStats::by_topic(&s.dead_lettered),
        skipped = %FailureStats::by_topic(&s.skipped),
        "{what}"
    );
}

async fn sleep_or_stop(d: Duration, stop: &watch::Receiver<bool>) -> bool {
    let mut waiter = stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = waiter.wait_for(|s| *s) => true,
    }
}

/// One generation's state: what the handler loop reads and moves.
struct Session<'a> {
    member: &'a mut Member,
    progress: &'a mut Progress,
    stop: watch::Receiver<bool>,
    rebalance: Signal,
    last_commit: Instant,
    commit_interval: Duration,
}

/// One generation: from assignment to rebalance, idle exit or stop. `assigned` is everything
/// this member holds now; those without a position in `progress` start from the group's commits
/// (the rest go on from where they are).
#[allow(clippy::too_many_arguments)]
async fn generation(
    cluster: &Arc<Cluster>,
    cfg: &ConsumerConfig,
    member: &mut Member,
    dispatcher: &mut Dispatcher,
    assigned: &[TopicPartition],
    progress: &mut Progress,
    idle: &mut Idle,
    stop_rx: &watch::Receiver<bool>,
    signal: &Signal,
) -> Result<Leave, ConsumerError> {
    let fresh = decide::fresh(assigned, progress);
    resume(cluster, cfg, member.group(), &fresh, progress).await?;

    let hb = heartbeat::spawn(
        cluster.clone(),
        cfg.group.clone(),
        member.generation().clone(),
        cfg.heartbeat_interval,
        signal.clone(),
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
        AbortOnDrop(fetcher::spawn_all(cluster, progress, assigned, &fetch_cfg, &tx).await);
    let mut commit_tick = tokio::time::interval(cfg.commit_interval);
    commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = stop_rx.clone();
    let mut s = Session {
        member,
        progress,
        stop: stop_rx.clone(),
        rebalance: signal.clone(),
        last_commit: Instant::now(),
        commit_interval: cfg.commit_interval,
    };
    let leave = loop {
        let idle_at = idle.deadline();
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break Leave::Exit(Exit::Signal),
            why = signal.raised() => {
                let why = decide::on_signal(why)?;
                tracing::info!(group = %s.member.group(), reason = %why, "rebalance");
                break Leave::Rejoin;
            }
            _ = tokio::time::sleep_until(idle_at) => {
                tracing::info!(group = %s.member.group(), idle_secs = idle.timeout().as_secs(), "idle: no records");
                break Leave::Exit(Exit::Idle);
            }
            _ = commit_tick.tick() => {
                if let Some(leave) = s.commit().await? {
                    break leave;
                }
            }
            ev = rx.recv() => match ev {
                Some(FetchEvent::Chunk(chunk)) => {
                    let had_records = !chunk.messages.is_empty();
                    if had_records {
                        idle.reset(Instant::now());
                    }
                    match dispatcher.handle(chunk, &mut s).await? {
                        Next::Continue => {}
                        Next::Leave(leave) => break leave,
                        Next::Refetch => {
                            drop(fetchers);
                            while rx.try_recv().is_ok() {}
                            fetchers = AbortOnDrop(fetcher::spawn_all(cluster, s.progress, assigned, &fetch_cfg, &tx).await);
                        }
                    }
                    if had_records {
                        // Idle counts from the end of the last handled batch, not its arrival.
                        idle.reset(Instant::now());
                    }
                }
                Some(FetchEvent::Reroute(why)) => {
                    tracing::info!(%why, "partition leadership moved; re-routing fetches");
                    drop(fetchers);
                    let _ = cluster.refresh_metadata(Some(&cfg.group.topics)).await;
                    while rx.try_recv().is_ok() {}
                    fetchers = AbortOnDrop(fetcher::spawn_all(cluster, s.progress, assigned, &fetch_cfg, &tx).await);
                }
                Some(FetchEvent::Fatal(e)) => return Err(ConsumerError::Fetch(e)),
                None => {}
            },
        }
    };
    drop(fetchers);
    // Whatever happens next, what was handled is committed first (during a rebalance the
    // coordinator still accepts commits of the generation that is ending).
    let offsets = s.progress.to_commit();
    match s.member.commit(&offsets).await {
        Ok(()) => s.progress.committed(&offsets),
        Err(e) => {
            tracing::warn!(group = %s.member.group(), error = %e, "final commit of this generation failed; the uncommitted tail will be handled again");
        }
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
) -> Result<(), ConsumerError> {
    if assigned.is_empty() {
        return Ok(());
    }
    let q = GroupQuery {
        group: group.to_string(),
        topics: Some(cfg.group.topics.clone()),
    };
    let committed = fetch_committed(cluster, std::slice::from_ref(&q)).await;
    let starts = decide::from_commits(assigned, committed.get(group))?;
    for (tp, offset) in starts.committed {
        progress.start(tp, offset, true);
    }
    if starts.missing.is_empty() {
        return Ok(());
    }
    let ends = fetch_ends(cluster, &starts.missing).await;
    let policy = Policy::new(cfg.read_committed, cfg.reset);
    for tp in starts.missing {
        let start = decide::by_policy(&tp, ends.get(&tp), policy)?;
        tracing::info!(partition = %tp, offset = start, policy = ?cfg.reset, "no committed offset; starting by policy");
        progress.start(tp, start, false);
    }
    Ok(())
}

impl Control for Session<'_> {
    type Leave = Leave;

    fn progress(&mut self) -> &mut Progress {
        self.progress
    }

    async fn between_batches(&mut self) -> Result<Option<Leave>, ConsumerError> {
        Session::between_batches(self).await
    }

    async fn commit(&mut self) -> Result<Option<Leave>, ConsumerError> {
        Session::commit(self).await
    }

    async fn pause(&mut self, delay: Duration) -> Option<Leave> {
        Session::pause(self, delay).await
    }
}

impl Session<'_> {
    /// Between batches of a long chunk: honour stop and rebalance, keep committing.
    async fn between_batches(&mut self) -> Result<Option<Leave>, ConsumerError> {
        let look = decide::between_batches(
            *self.stop.borrow(),
            self.rebalance.pending(),
            Instant::now().saturating_duration_since(self.last_commit),
            self.commit_interval,
        )?;
        match look {
            Between::Go => Ok(None),
            Between::Commit => self.commit().await,
            Between::Stop => Ok(Some(Leave::Exit(Exit::Signal))),
            Between::Rejoin(why) => {
                tracing::info!(group = %self.member.group(), reason = %why, "rebalance: stopping after this handler call");
                Ok(Some(Leave::Rejoin))
            }
        }
    }

    /// Waits `delay` unless told to stop or rebalance first.
    async fn pause(&mut self, delay: Duration) -> Option<Leave> {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => None,
            _ = stop.wait_for(|s| *s) => Some(Leave::Exit(Exit::Signal)),
            _ = self.rebalance.raised() => Some(Leave::Rejoin),
        }
    }

    /// Commits what was handled; a rebalance answer ends the generation.
    async fn commit(&mut self) -> Result<Option<Leave>, ConsumerError> {
        self.last_commit = Instant::now();
        let offsets = self.progress.to_commit();
        if offsets.is_empty() {
            return Ok(None);
        }
        let answer = self.member.commit(&offsets).await;
        match decide::commit_answer(answer)? {
            Commit::Done => {
                self.progress.committed(&offsets);
                Ok(None)
            }
            Commit::Rejoin(why) => {
                tracing::info!(error = %why, "commit refused: rebalancing");
                self.rebalance.raise(why);
                Ok(Some(Leave::Rejoin))
            }
            Commit::Later(e) => {
                tracing::warn!(error = %e, "commit failed; retrying at the next interval");
                Ok(None)
            }
        }
    }
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
