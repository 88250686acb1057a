//! How a member learns that its generation is over, and what it keeps across a rebalance.
//!
//! [`Signal`] is a level, not an edge: whoever learns first (the heartbeat task, a refused
//! commit, the fetch path) raises it, and it stays raised for the rest of the generation, so a
//! reader that looks late, or after the raising task has ended, still sees it. (A watch channel
//! owned by the heartbeat task lost it: the task exits after reporting, the channel closes, and
//! `has_changed()` then reads as "no news".) The handling loop checks it between handler calls,
//! so the only thing that can delay a rejoin is one handler call in flight.
//!
//! [`Change`] is the pure part of a new assignment: what the member keeps (with its handled
//! positions), what it must start from the group's commits, and what it lost. Positions survive
//! only from the generation just before: a member that missed a generation cannot know what
//! others did with its partitions meanwhile.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

use super::group::GroupError;
use crate::offsets::TopicPartition;

/// The reason the current generation ends, once known. Cheap to clone; every clone is the same
/// signal.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    tx: Arc<watch::Sender<Option<GroupError>>>,
}

impl Default for Signal {
    fn default() -> Self {
        Signal {
            tx: Arc::new(watch::channel(None).0),
        }
    }
}

impl Signal {
    /// Raises the signal; a more severe reason replaces a milder one (fatal > lost > rebalance),
    /// a milder one never replaces what is there.
    pub(crate) fn raise(&self, why: GroupError) {
        self.tx.send_if_modified(|cur| {
            if cur.as_ref().is_none_or(|c| why.severity() > c.severity()) {
                *cur = Some(why);
                true
            } else {
                false
            }
        });
    }

    /// The reason, if the generation is over.
    pub(crate) fn pending(&self) -> Option<GroupError> {
        self.tx.borrow().clone()
    }

    /// Waits until the signal is raised (at once if it already is).
    pub(crate) async fn raised(&self) -> GroupError {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let why = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        why.unwrap_or_else(|| GroupError::Rebalance("the rebalance signal closed".into()))
    }
}

/// What a new assignment means for a member that held `held` from generation `held_generation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Change {
    /// Held before and assigned again: handling goes on from the positions in memory.
    pub kept: Vec<TopicPartition>,
    /// To start from the group's commits.
    pub added: Vec<TopicPartition>,
    /// Held before, not assigned now: dropped (its records were committed before the join).
    pub revoked: Vec<TopicPartition>,
}

impl Change {
    /// Compares what was held with what generation `generation` assigned.
    pub(crate) fn of(
        held: &BTreeSet<TopicPartition>,
        held_generation: i32,
        generation: i32,
        assigned: &[TopicPartition],
    ) -> Change {
        let assigned: BTreeSet<&TopicPartition> = assigned.iter().collect();
        let consecutive = held_generation >= 0 && generation == held_generation.wrapping_add(1);
        let mut c = Change::default();
        for tp in held {
            if !assigned.contains(tp) {
                c.revoked.push(tp.clone());
            }
        }
        for tp in assigned {
            if consecutive && held.contains(tp) {
                c.kept.push(tp.clone());
            } else {
                c.added.push(tp.clone());
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[i32]) -> Vec<TopicPartition> {
        list.iter().map(|p| TopicPartition::new("t", *p)).collect()
    }

    #[test]
    fn change_table() {
        // (held, held generation, new generation, assigned, kept, added, revoked)
        type Case<'a> = (
            &'a [i32],
            i32,
            i32,
            &'a [i32],
            &'a [i32],
            &'a [i32],
            &'a [i32],
        );
        let cases: &[Case] = &[
            (&[], -1, 1, &[0, 1], &[], &[0, 1], &[]),
            (&[0, 1], 4, 5, &[0, 1], &[0, 1], &[], &[]),
            (&[0, 1, 2], 4, 5, &[1], &[1], &[], &[0, 2]),
            (&[1], 5, 6, &[1, 2], &[1], &[2], &[]),
            // A generation was missed: keep nothing from memory, drop what is gone.
            (&[0, 1], 4, 7, &[1, 2], &[], &[1, 2], &[0]),
            (&[0], -1, 0, &[0], &[], &[0], &[]),
        ];
        for (held, hg, g, assigned, kept, added, revoked) in cases {
            let held: BTreeSet<TopicPartition> = tps(held).into_iter().collect();
            let c = Change::of(&held, *hg, *g, &tps(assigned));
            assert_eq!(
                c,
                Change {
                    kept: tps(kept),
                    added: tps(added),
                    revoked: tps(revoked),
                },
                "held {held:?} from {hg}, generation {g}, assigned {assigned:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_signal_outlives_its_raiser_and_keeps_the_most_severe_reason() {
        let s = Signal::default();
        assert!(s.pending().is_none());
        let raiser = s.clone();
        tokio::spawn(async move {
            raiser.raise(GroupError::Rebalance("heartbeat".into()));
            // The raiser ends here; its clone is dropped.
        })
        .await
        .unwrap();
        // Seen late, and more than once.
        assert!(matches!(s.pending(), Some(GroupError::Rebalance(_))));
        assert!(matches!(s.raised().await, GroupError::Rebalance(_)));
        s.raise(GroupError::Retry("milder".into()));
        assert!(matches!(s.pending(), Some(GroupError::Rebalance(_))));
        s.raise(GroupError::Lost("commit".into()));
        s.raise(GroupError::Rebalance("again".into()));
        assert!(matches!(s.pending(), Some(GroupError::Lost(_))));
        s.raise(GroupError::Fatal("auth".into()));
        assert!(matches!(s.raised().await, GroupError::Fatal(_)));
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_another_task_raises() {
        let s = Signal::default();
        let w = s.clone();
        let waiter = tokio::spawn(async move { w.raised().await });
        tokio::task::yield_now().await;
        s.raise(GroupError::Rebalance("x".into()));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(got, GroupError::Rebalance(_)));
    }
}
