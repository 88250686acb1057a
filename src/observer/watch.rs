//! Event-driven detection: a long-poll Fetch per leader broker over every idle partition, held
//! at the partition's end, so the first record after a quiet period wakes the observer at once
//! instead of at the next tick.
//!
//! Only idle partitions are watched (every group has caught up). A partition with lag is
//! already being served and is left to the timed cycle, which keeps a record storm from turning
//! into a storm of cycles: the first record wakes a cycle, that cycle sees lag, and the
//! partition leaves the watch until its groups catch up again.
//!
//! The long poll also replaces ListOffsets for what it watches: a held Fetch only returns
//! early when its partitions move, so between answers their last known ends are the current
//! ones, and a cycle reads them from [`Watcher::split_known`] instead of asking the broker. With a
//! KIP-227 fetch session per leader, re-arming after a wake-up sends only the partitions that
//! moved and the broker answers only for partitions that changed.
//!
//! One fetch per leader is in flight at a time. After a wake-up the task waits for the cycle it
//! caused to hand over the new set (bounded, in case that cycle fails), so the common path never
//! interrupts a held fetch. A set that grows while a fetch is held (a group caught up) cannot
//! wait for it — the newcomers would go unwatched for up to the whole wait — and a broker
//! answers a connection's requests in order, so the task drops the held fetch together with its
//! connection and re-arms on a new one (the fetch session restarts with a full request).
//!
//! Topics the observer may not read (TOPIC_AUTHORIZATION_FAILED — Fetch needs READ where
//! ListOffsets needs only DESCRIBE) fall back to timed cycles with one log line, and are tried
//! again after [`RETRY_DENIED`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cluster::{Cluster, Lane};
use crate::lag::Policy;
use crate::offsets::fetch::{fetch_in_session, FetchOptions, FetchSession};
use crate::offsets::{Ends, TopicPartition};
use crate::protocol::error::{code, error_name, is_stale_route};
use crate::protocol::fetch::FetchPartition;

/// What a long-poll answer for one partition means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing a cycle needs to see; the (possibly refreshed) ends stay valid while watched.
    Quiet(Ends),
    /// Records (or a new end) are there: wake a cycle, and ask ListOffsets for this partition.
    Moved(Ends),
    /// The position is outside the log (truncated or deleted records): a cycle must look.
    OutOfRange,
    /// Fetch is not allowed on this topic.
    Denied,
    /// The leader moved or the partition is gone: the watch must be rebuilt from metadata.
    Stale,
    /// Any other error: leave the partition to the timed cycle.
    Failed(i16),
}

/// Reads one partition of a long-poll answer held at `pos` (pure). `before` are its last known
/// ends; an answer may leave out the log start (before Fetch v5) or the last stable offset.
pub(crate) fn outcome(policy: &Policy, pos: i64, before: Ends, p: &FetchPartition) -> Outcome {
    match p.error_code {
        code::NONE => {
            let hw = p.high_watermark;
            let ends = Ends {
                log_start: if p.log_start_offset >= 0 {
                    p.log_start_offset
                } else {
                    before.log_start
                },
                high_watermark: hw,
                last_stable: if p.last_stable_offset >= 0 {
                    p.last_stable_offset
                } else {
                    hw
                },
            };
            let end = policy.end(&ends);
            let data = p.records.as_ref().is_some_and(|r| !r.is_empty());
            if data || end != pos {
                Outcome::Moved(ends)
            } else {
                Outcome::Quiet(ends)
            }
        }
        code::OFFSET_OUT_OF_RANGE => Outcome::OutOfRange,
        code::TOPIC_AUTHORIZATION_FAILED => Outcome::Denied,
        c if is_stale_route(c) => Outcome::Stale,
        c => Outcome::Failed(c),
    }
}

/// Ends of watched partitions, with the leader whose task watches them.
type Armed = Arc<Mutex<HashMap<TopicPartition, (i32, Ends)>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every leader task shares.
#[derive(Clone)]
struct Shared {
    cluster: Arc<Cluster>,
    /// Which end of the log the watch is held at.
    policy: Policy,
    opts: FetchOptions,
    notify: Arc<Notify>,
    /// Topics Fetch was refused on, and when: tried again after [`RETRY_DENIED`], so a READ
    /// granted later brings the long poll back without a restart.
    denied: Arc<Mutex<BTreeMap<String, Instant>>>,
    /// Topics already reported (one log line per topic, not one per retry).
    warned: Arc<Mutex<BTreeSet<String>>>,
    armed: Armed,
}

/// The set a leader task should watch next, handed over without a copy.
#[derive(Default)]
struct Handover {
    next: Mutex<Option<BTreeMap<TopicPartition, Ends>>>,
    ready: Notify,
    /// Fingerprint of the last set handed over: an unchanged set is not sent again. The task
    /// clears it when it drops partitions on its own, so the next set is sent whatever it is.
    sent: AtomicU64,
}

type Mailbox = Arc<Handover>;

struct LeaderTask {
    mailbox: Mailbox,
    /// Resolves when the long poll ended by itself: true when it failed (rest before the next
    /// one), false when the leader moved (rebuild at once).
    handle: JoinHandle<bool>,
}

impl Shared {
    /// Topics still in their fallback period.
    fn denied(&self) -> BTreeSet<String> {
        let mut d = lock(&self.denied);
        d.retain(|_, at| at.elapsed() < RETRY_DENIED);
        d.keys().cloned().collect()
    }
}

/// How long a topic Fetch was refused on stays with the timed cycle before the long poll tries
/// it again.
pub(crate) const RETRY_DENIED: Duration = Duration::from_secs(600);

/// How long a leader whose long poll failed is left to the timed cycle before a new one: a
/// broker that refuses every Fetch must not turn the wake-up signal into a busy loop.
pub(crate) const RETRY_FAILED: Duration = Duration::from_secs(5);

/// Long-poll watchers and the signal they raise.
pub(crate) struct Watcher {
    shared: Shared,
    tasks: BTreeMap<i32, LeaderTask>,
    /// Leaders whose long poll ended, and when it may start again.
    resting: BTreeMap<i32, Instant>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        for t in self.tasks.values() {
            t.handle.abort();
        }
    }
}

impl Watcher {
    pub(crate) fn new(cluster: Arc<Cluster>, policy: Policy, max_wait: Duration) -> Self {
        Watcher {
            shared: Shared {
                cluster,
                policy,
                opts: FetchOptions {
                    max_wait,
                    partition_max_bytes: 1,
                    max_bytes: 1,
                    read_committed: policy.read_committed(),
                    lane: Lane::LongPoll,
                },
                notify: Arc::new(Notify::new()),
                denied: Arc::default(),
                warned: Arc::default(),
                armed: Arc::default(),
            },
            tasks: BTreeMap::new(),
            resting: BTreeMap::new(),
        }
    }

    /// Resolves when a watched partition got data (or changed in a way worth a look).
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.notify.notified()
    }

    /// Topics that fell back to timed cycles.
    pub(crate) fn denied(&self) -> BTreeSet<String> {
        self.shared.denied()
    }

    /// Splits `tps` into those under the long poll, with their current ends (see the module
    /// docs), and the rest.
    pub(crate) fn split_known(
        &self,
        tps: Vec<TopicPartition>,
    ) -> (Vec<(TopicPartition, Ends)>, Vec<TopicPartition>) {
        let armed = lock(&self.shared.armed);
        let mut known = Vec::with_capacity(armed.len().min(tps.len()));
        let mut rest = Vec::new();
        for tp in tps {
            match armed.get(&tp) {
                Some((_, e)) => known.push((tp, *e)),
                None => rest.push(tp),
            }
        }
        (known, rest)
    }

    /// Watches exactly `idle` (partition → its current ends). Returns true when every
    /// partition of `idle` is watched (or will be as soon as its leader's task re-arms).
    pub(crate) fn sync(&mut self, idle: impl Iterator<Item = (TopicPartition, Ends)>) -> bool {
        let md = self.shared.cluster.metadata();
        let denied = self.denied();
        let mut layout: BTreeMap<i32, BTreeMap<TopicPartition, Ends>> = BTreeMap::new();
        let mut complete = true;
        let mut count = 0usize;
        for (tp, ends) in idle {
            count += 1;
            if denied.contains(&*tp.topic) {
                complete = false;
                continue;
            }
            match md.leader(&tp.topic, tp.partition) {
                Some(l) => {
                    layout.entry(l).or_default().insert(tp, ends);
                }
                None => complete = false,
            }
        }
        // Tasks of leaders that no longer lead anything we watch, and tasks that ended.
        let gone: Vec<i32> = self
            .tasks
            .iter()
            .filter(|(l, t)| !layout.contains_key(l) || t.handle.is_finished())
            .map(|(l, _)| *l)
            .collect();
        if !gone.is_empty() {
            for l in &gone {
                if let Some(mut t) = self.tasks.remove(l) {
                    let failed = t.handle.is_finished()
                        && matches!((&mut t.handle).now_or_never(), Some(Ok(true)));
                    if failed {
                        self.resting.insert(*l, Instant::now() + RETRY_FAILED);
                    }
                    t.handle.abort();
                }
            }
            lock(&self.shared.armed).retain(|_, (l, _)| !gone.contains(l));
        }
        let now = Instant::now();
        self.resting.retain(|_, until| *until > now);
        for (leader, want) in layout {
            if self.resting.contains_key(&leader) {
                complete = false;
                continue;
            }
            let task = self.tasks.entry(leader).or_insert_with(|| {
                let mailbox = Mailbox::default();
                let handle =
                    tokio::spawn(watch_leader(self.shared.clone(), leader, mailbox.clone()));
                LeaderTask { mailbox, handle }
            });
            let fingerprint = {
                let mut h = std::hash::DefaultHasher::new();
                want.hash(&mut h);
                h.finish() | 1
            };
            if task.mailbox.sent.swap(fingerprint, Ordering::Relaxed) != fingerprint {
                *lock(&task.mailbox.next) = Some(want);
                task.mailbox.ready.notify_one();
            }
        }
        tracing::debug!(
            leaders = self.tasks.len(),
            partitions = count,
            complete,
            "long-poll watch updated"
        );
        complete
    }
}

/// The long poll of one leader: fetch, read the answer, wake the observer when something moved.
/// Returns when the watcher must rebuild it: true after a failure, false after a leader move.
async fn watch_leader(s: Shared, leader: i32, mailbox: Mailbox) -> bool {
    let policy = s.policy;
    let end_of = |e: &Ends| policy.end(e);
    let mut session = FetchSession::default();
    let mut ends: BTreeMap<TopicPartition, Ends> = BTreeMap::new();
    let mut await_handover = false;
    let disarm = |tps: &mut dyn Iterator<Item = &TopicPartition>| {
        let mut a = lock(&s.armed);
        for tp in tps {
            if a.get(tp).is_some_and(|(l, _)| *l == leader) {
                a.remove(tp);
            }
        }
    };
    loop {
        if await_handover || ends.is_empty() {
            // After a wake-up, the cycle it causes hands over the new set. Bounded: a cycle
            // that fails must not leave the rest unwatched.
            let bound = if ends.is_empty() {
                Duration::MAX
            } else {
                s.opts.max_wait
            };
            let _ = tokio::time::timeout(bound, mailbox.ready.notified()).await;
            await_handover = false;
        }
        let handed = lock(&mailbox.next).take();
        if let Some(mut next) = handed {
            let denied = s.denied();
            next.retain(|tp, _| !denied.contains(&*tp.topic));
            let dropped: Vec<TopicPartition> = ends
                .keys()
                .filter(|tp| !next.contains_key(*tp))
                .cloned()
                .collect();
            disarm(&mut dropped.iter());
            ends = next;
        }
        if ends.is_empty() {
            continue;
        }
        let positions: BTreeMap<TopicPartition, i64> =
            ends.iter().map(|(tp, e)| (tp.clone(), end_of(e))).collect();
        {
            let mut a = lock(&s.armed);
            for (tp, e) in &ends {
                a.insert(tp.clone(), (leader, *e));
            }
        }
        let answers = {
            let fetch = fetch_in_session(&s.cluster, leader, positions, s.opts, &mut session);
            tokio::pin!(fetch);
            loop {
                tokio::select! {
                    r = &mut fetch => break Some(r),
                    _ = mailbox.ready.notified() => {
                        // Re-arm now only if the new set watches something the held fetch does
                        // not; a shrinking set waits for the answer.
                        let grows = lock(&mailbox.next).as_ref().is_some_and(|next| {
                            next.iter().any(|(tp, e)| ends.get(tp).map(end_of) != Some(end_of(e)))
                        });
                        if grows {
                            break None;
                        }
                    }
                }
            }
        };
        let Some(answers) = answers else {
            tracing::debug!(leader, "long poll re-armed for a grown set");
            session.reset();
            s.cluster.drop_lane(leader, s.opts.lane);
            continue;
        };
        let answers = match answers {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(leader, error = %e, "long poll failed; timed cycles cover until it is rebuilt");
                disarm(&mut ends.keys());
                s.notify.notify_one();
                return true;
            }
        };
        let mut woke = false;
        for (tp, p) in answers {
            let (Some(pos), Some(before)) = (session.position(&tp), ends.get(&tp).copied()) else {
                continue;
            };
            match outcome(&policy, pos, before, &p) {
                Outcome::Quiet(e) => {
                    ends.insert(tp.clone(), e);
                    lock(&s.armed).insert(tp, (leader, e));
                }
                Outcome::Moved(e) => {
                    woke = true;
                    ends.insert(tp.clone(), e);
                    disarm(&mut std::iter::once(&tp));
                }
                o @ (Outcome::OutOfRange | Outcome::Failed(_)) => {
                    mailbox.sent.store(0, Ordering::Relaxed);
                    if let Outcome::Failed(c) = o {
                        tracing::debug!(partition = %tp, error = error_name(c), "long poll: partition left to timed cycles");
                    }
                    woke = true;
                    ends.remove(&tp);
                    disarm(&mut std::iter::once(&tp));
                }
                Outcome::Denied => {
                    let topic = tp.topic.clone();
                    lock(&s.denied).insert(topic.to_string(), Instant::now());
                    if lock(&s.warned).insert(topic.to_string()) {
                        tracing::warn!(%topic, "not authorised to Fetch this topic (the observer needs READ for event-driven wake-ups); using timed cycles for it");
                    }
                    let gone: Vec<TopicPartition> =
                        ends.keys().filter(|t| t.topic == topic).cloned().collect();
                    for t in &gone {
                        ends.remove(t);
                    }
                    disarm(&mut gone.iter());
                    woke = true;
                }
                Outcome::Stale => {
                    tracing::debug!(leader, partition = %tp, "long poll: leader moved; rebuilt at the next cycle");
                    disarm(&mut ends.keys());
                    s.notify.notify_one();
                    return false;
                }
            }
        }
        if woke {
            s.notify.notify_one();
            await_handover = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::NoCommit;
    use bytes::Bytes;

    fn part(error: i16, hw: i64, lso: i64, start: i64, records: usize) -> FetchPartition {
        FetchPartition {
            error_code: error,
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: start,
            records: (records > 0).then(|| Bytes::from(vec![0u8; records])),
            ..FetchPartition::default()
        }
    }

    fn ends(start: i64, hw: i64, lso: i64) -> Ends {
        Ends {
            log_start: start,
            high_watermark: hw,
            last_stable: lso,
        }
    }

    #[tokio::test]
    async fn a_denied_topic_is_tried_again_after_the_retry_period() {
        let cluster = Arc::new(Cluster::new(Vec::new(), Default::default()));
        let w = Watcher::new(
            cluster,
            Policy::new(false, NoCommit::Earliest),
            Duration::from_secs(1),
        );
        let now = Instant::now();
        {
            let mut d = lock(&w.shared.denied);
            d.insert("recent".into(), now);
            if let Some(old) = now.checked_sub(RETRY_DENIED + Duration::from_secs(1)) {
                d.insert("granted-since".into(), old);
            }
        }
        assert_eq!(w.denied(), BTreeSet::from(["recent".to_string()]));
        assert!(!lock(&w.shared.denied).contains_key("granted-since"));
    }

    #[test]
    fn outcomes() {
        let before = ends(0, 10, 10);
        #[rustfmt::skip]
        let cases: &[(&str, bool, i64, FetchPartition, Outcome)] = &[
            ("held to the timeout, nothing new", false, 10, part(0, 10, 10, 0, 0), Outcome::Quiet(ends(0, 10, 10))),
            ("retention moved the log start", false, 10, part(0, 10, 10, 4, 0), Outcome::Quiet(ends(4, 10, 10))),
            ("a record", false, 10, part(0, 11, 11, 0, 70), Outcome::Moved(ends(0, 11, 11))),
            ("a new end without bytes (KIP-74 limit on a later partition)", false, 10, part(0, 12, 12, 0, 0), Outcome::Moved(ends(0, 12, 12))),
            ("read_committed: an open transaction moves only the high watermark", true, 10, part(0, 12, 10, 0, 0), Outcome::Quiet(ends(0, 12, 10))),
            ("read_committed: the commit moves the last stable offset", true, 10, part(0, 13, 13, 0, 0), Outcome::Moved(ends(0, 13, 13))),
            ("read_uncommitted: an open transaction is data", false, 10, part(0, 12, 10, 0, 0), Outcome::Moved(ends(0, 12, 10))),
            ("Fetch < v5: log start unknown, kept", false, 10, part(0, 10, 10, -1, 0), Outcome::Quiet(ends(0, 10, 10))),
            ("last stable unknown: the high watermark", false, 10, part(0, 10, -1, 0, 0), Outcome::Quiet(ends(0, 10, 10))),
            ("deleted records", false, 10, part(1, -1, -1, -1, 0), Outcome::OutOfRange),
            ("no READ on the topic", false, 10, part(29, -1, -1, -1, 0), Outcome::Denied),
            ("leader moved", false, 10, part(6, -1, -1, -1, 0), Outcome::Stale),
            ("topic recreated", false, 10, part(100, -1, -1, -1, 0), Outcome::Stale),
            ("storage error", false, 10, part(56, -1, -1, -1, 0), Outcome::Failed(56)),
        ];
        for (name, rc, pos, p, want) in cases {
            let policy = Policy::new(*rc, NoCommit::Earliest);
            assert_eq!(outcome(&policy, *pos, before, p), *want, "{name}");
        }
    }
}
