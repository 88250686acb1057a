//! The decisions of the consumer's loop, pure: inputs in, decision out, time passed in.
//!
//! `run.rs` only moves data: it takes a snapshot (the stop flag, the rebalance signal, the
//! clock, the answer of a join, a commit or an offsets request), asks one of these what it
//! means, and acts on the answer (logs, commits, joins again, leaves). Keeping them here, away
//! from the sockets and tasks, is what lets each rule be read in one place and tested with a
//! table: when to give up joining, how fast to join again, where a partition starts, what a
//! commit's answer or a raised signal means, what a member keeps for its next join.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::Exit;
use crate::consumer::assignor::is_cooperative;
use crate::consumer::error::ConsumerError;
use crate::consumer::group::GroupError;
use crate::consumer::progress::Progress;
use crate::consumer::rebalance::Change;
use crate::lag::Policy;
use crate::offsets::{Ends, GroupOffsets, OffsetsError, TopicPartition};

/// Joins in a row that a rebalance may overtake before the member starts pausing between them.
pub(super) const IMMEDIATE_REJOINS: u32 = 5;

/// When the consumer counts as idle: `timeout` after it last handled records (or joined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Idle {
    since: Instant,
    timeout: Duration,
}

impl Idle {
    /// Idle `timeout` from `now` on, unless [`Idle::reset`] first.
    pub(super) fn new(now: Instant, timeout: Duration) -> Idle {
        Idle {
            since: now,
            timeout,
        }
    }

    /// Something happened at `now` (records handled, a join): the wait starts again.
    pub(super) fn reset(&mut self, now: Instant) {
        self.since = now;
    }

    /// When the consumer is idle if nothing happens before.
    pub(super) fn deadline(&self) -> Instant {
        self.since + self.timeout
    }

    /// Whether it is idle at `now`.
    pub(super) fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) >= self.timeout
    }

    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// What the loop does before each join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Turn {
    Join,
    Exit(Exit),
    /// Idle without ever getting into the group: a failure, not idleness (Code Engine restarts
    /// the run).
    GiveUp,
}

/// Before a join: a stop wins, then the idle deadline, which is an exit once the member got
/// into its group and a failure before.
pub(super) fn before_join(stopped: bool, idle: bool, joined: bool) -> Turn {
    match (stopped, idle, joined) {
        (true, _, _) => Turn::Exit(Exit::Signal),
        (false, true, true) => Turn::Exit(Exit::Idle),
        (false, true, false) => Turn::GiveUp,
        (false, false, _) => Turn::Join,
    }
}

/// When to join again after a failed join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejoin {
    /// A fatal answer: the consumer fails.
    Never,
    Now,
    After(Duration),
}

/// The pace of joining again after the `attempt`th failed join in a row (from 1). A rebalance
/// that overtook the join (SyncGroup: REBALANCE_IN_PROGRESS) is answered by joining again at
/// once — each JoinGroup waits for the group, so this cannot spin — up to
/// [`IMMEDIATE_REJOINS`] times; transient failures, and rebalances that keep coming, wait
/// 200 ms per attempt, at most 2 s.
pub(super) fn rejoin(e: &GroupError, attempt: u32) -> Rejoin {
    match e {
        GroupError::Fatal(_) => Rejoin::Never,
        GroupError::Rebalance(_) | GroupError::Lost(_) if attempt <= IMMEDIATE_REJOINS => {
            Rejoin::Now
        }
        _ => Rejoin::After(Duration::from_millis(200 * u64::from(attempt.min(10)))),
    }
}

/// What a new assignment asks of the member before its generation starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Assigned {
    pub(super) change: Change,
    /// Partitions whose positions are forgotten: the revoked (let go) and the added (they start
    /// from the group's commits).
    pub(super) forget: Vec<TopicPartition>,
    /// KIP-429's second phase: the revoked partitions go to their new owners only once this
    /// member rejoins without them, so it joins again before handling anything.
    pub(super) rejoin_first: bool,
}

/// The member held `held` from `held_generation`; generation `generation` under `protocol`
/// assigned it `assigned`.
pub(super) fn assigned(
    held: &BTreeSet<TopicPartition>,
    held_generation: i32,
    generation: i32,
    protocol: &str,
    assigned: &[TopicPartition],
) -> Assigned {
    let change = Change::of(held, held_generation, generation, assigned);
    let forget = change
        .revoked
        .iter()
        .chain(&change.added)
        .cloned()
        .collect();
    let rejoin_first = is_cooperative(protocol) && !change.revoked.is_empty();
    Assigned {
        change,
        forget,
        rejoin_first,
    }
}

/// What the member keeps for its next join once a generation ended in a rejoin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Its partitions and their positions (cooperative-sticky: they stay through the join).
    Held,
    /// Nothing: the eager protocols give everything up before the join, and a member the group
    /// left behind cannot know whose its partitions are by now.
    Nothing,
}

/// After a generation that ended in a rejoin, by the signal's reason (`pending`) and whether
/// the group's protocol is cooperative. A fatal reason fails the consumer.
pub(super) fn after_generation(
    pending: Option<GroupError>,
    cooperative: bool,
) -> Result<Keep, ConsumerError> {
    match pending {
        Some(e @ GroupError::Fatal(_)) => Err(ConsumerError::Group(e)),
        Some(GroupError::Lost(_)) => Ok(Keep::Nothing),
        _ if !cooperative => Ok(Keep::Nothing),
        _ => Ok(Keep::Held),
    }
}

/// The partitions of `assigned` without a position in `progress`: they start from the group's
/// commits (the rest go on from where they are).
pub(super) fn fresh(assigned: &[TopicPartition], progress: &Progress) -> Vec<TopicPartition> {
    assigned
        .iter()
        .filter(|tp| progress.position(tp).is_none())
        .cloned()
        .collect()
}

/// Where fresh partitions start, from the group's commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Starts {
    /// Committed: from the commit.
    pub(super) committed: Vec<(TopicPartition, i64)>,
    /// Not committed: by the reset policy, once their log ends are known ([`by_policy`]).
    pub(super) missing: Vec<TopicPartition>,
}

/// Reads the answer about the group's commits (`answer`: what `fetch_committed` said for the
/// group) for the partitions `fresh`. No answer is an error: starting by policy instead could
/// skip records the group never handled.
pub(super) fn from_commits(
    fresh: &[TopicPartition],
    answer: Option<&Result<GroupOffsets, OffsetsError>>,
) -> Result<Starts, ConsumerError> {
    let offsets = match answer {
        Some(Ok(o)) => o,
        Some(Err(e)) => return Err(ConsumerError::Committed(Box::new(e.clone()))),
        None => return Err(ConsumerError::NoCommitted),
    };
    let mut s = Starts::default();
    for tp in fresh {
        match offsets.committed.get(tp) {
            Some(c) => s.committed.push((tp.clone(), c.offset)),
            None => s.missing.push(tp.clone()),
        }
    }
    Ok(s)
}

/// Where `tp`, which has no commit, starts: `policy` over its log ends (`ends`: what
/// `fetch_ends` said for it).
pub(super) fn by_policy(
    tp: &TopicPartition,
    ends: Option<&Result<Ends, OffsetsError>>,
    policy: Policy,
) -> Result<i64, ConsumerError> {
    match ends {
        Some(Ok(e)) => Ok(policy.start(e, None)),
        Some(Err(e)) => Err(ConsumerError::Ends {
            tp: tp.clone(),
            source: Box::new(e.clone()),
        }),
        None => Err(ConsumerError::NoEnds(tp.clone())),
    }
}

/// What a raised signal means while the generation runs: a fatal reason fails the consumer;
/// any other ends the generation, and the member joins again (the reason is for the log).
pub(super) fn on_signal(why: GroupError) -> Result<GroupError, ConsumerError> {
    match why {
        e @ GroupError::Fatal(_) => Err(ConsumerError::Group(e)),
        e => Ok(e),
    }
}

/// What a look between two handler calls means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Between {
    /// Go on with the next handler call.
    Go,
    /// The commit interval passed: commit, and go on unless the answer ends the generation.
    Commit,
    /// Told to stop.
    Stop,
    /// The signal was raised (the reason, for the log): end the generation and join again.
    Rejoin(GroupError),
}

/// Between handler calls: a stop wins, then a raised signal ([`on_signal`]: fatal fails),
/// then the commit interval (`since_commit`: the time since the last commit).
pub(super) fn between_batches(
    stopped: bool,
    pending: Option<GroupError>,
    since_commit: Duration,
    commit_interval: Duration,
) -> Result<Between, ConsumerError> {
    if stopped {
        return Ok(Between::Stop);
    }
    if let Some(why) = pending {
        return on_signal(why).map(Between::Rejoin);
    }
    if since_commit >= commit_interval {
        return Ok(Between::Commit);
    }
    Ok(Between::Go)
}

/// What the answer to a commit means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Commit {
    /// Committed.
    Done,
    /// Refused because the group is rebalancing or moved on: raise the signal with the reason
    /// and end the generation.
    Rejoin(GroupError),
    /// A transient failure: the next interval commits again (what was handled stays to commit).
    Later(GroupError),
}

/// Reads a commit's answer; a fatal one fails the consumer.
pub(super) fn commit_answer(answer: Result<(), GroupError>) -> Result<Commit, ConsumerError> {
    match answer {
        Ok(()) => Ok(Commit::Done),
        Err(e @ (GroupError::Rebalance(_) | GroupError::Lost(_))) => Ok(Commit::Rejoin(e)),
        Err(e @ GroupError::Retry(_)) => Ok(Commit::Later(e)),
        Err(e @ GroupError::Fatal(_)) => Err(ConsumerError::Group(e)),
    }
}

#[cfg(test)]
mod tests;
