//! At-least-once bookkeeping: what was handled, what was committed, what to commit next.
//!
//! An offset enters `handled` only after the handler succeeded for every record before it, so
//! a commit can never skip an unhandled record; a crash replays at most the uncommitted tail.

use std::collections::BTreeMap;

use crate::offsets::TopicPartition;

/// Handled and committed offsets per partition (offsets are "next to read", as Kafka commits).
#[derive(Debug, Default, Clone)]
pub(crate) struct Progress {
    handled: BTreeMap<TopicPartition, i64>,
    committed: BTreeMap<TopicPartition, i64>,
}

impl Progress {
    /// Starts tracking `tp` at `offset`; `committed` says whether the group already has it.
    pub(crate) fn start(&mut self, tp: TopicPartition, offset: i64, committed: bool) {
        self.handled.insert(tp.clone(), offset);
        if committed {
            self.committed.insert(tp, offset);
        } else {
            self.committed.remove(&tp);
        }
    }

    /// Every record of `tp` below `next` is handled. Never moves backwards.
    pub(crate) fn handled(&mut self, tp: &TopicPartition, next: i64) {
        if let Some(h) = self.handled.get_mut(tp) {
            if next > *h {
                *h = next;
            }
        }
    }

    /// Moves `tp` to `offset` in either direction (an out-of-range reset by policy).
    pub(crate) fn reset_to(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(h) = self.handled.get_mut(tp) {
            *h = offset;
        }
    }

    /// Where `tp` resumes: the first record not yet handled.
    pub(crate) fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.handled.get(tp).copied()
    }

    /// Offsets handled but not yet committed.
    pub(crate) fn to_commit(&self) -> BTreeMap<TopicPartition, i64> {
        self.handled
            .iter()
            .filter(|(tp, h)| self.committed.get(*tp) != Some(*h))
            .map(|(tp, h)| (tp.clone(), *h))
            .collect()
    }

    /// Records a successful commit of `offsets`.
    pub(crate) fn committed(&mut self, offsets: &BTreeMap<TopicPartition, i64>) {
        for (tp, o) in offsets {
            self.committed.insert(tp.clone(), *o);
        }
    }

    /// Partitions tracked (those this member holds).
    #[cfg(test)]
    pub(crate) fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.handled.keys()
    }

    /// Stops tracking `tp` (revoked by a rebalance).
    pub(crate) fn remove(&mut self, tp: &TopicPartition) {
        self.handled.remove(tp);
        self.committed.remove(tp);
    }

    /// Forgets everything (after a rebalance the new assignment starts from the group's commits).
    pub(crate) fn clear(&mut self) {
        self.handled.clear();
        self.committed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_what_was_handled_and_not_yet_committed() {
        let a = TopicPartition::new("t", 0);
        let b = TopicPartition::new("t", 1);
        let mut p = Progress::default();
        p.start(a.clone(), 10, true);
        p.start(b.clone(), 0, false);
        // b has no commit yet: committing its start position pins the reset decision.
        assert_eq!(p.to_commit(), BTreeMap::from([(b.clone(), 0)]));
        p.handled(&a, 15);
        p.handled(&a, 12); // never backwards
        assert_eq!(p.position(&a), Some(15));
        let want = BTreeMap::from([(a.clone(), 15), (b.clone(), 0)]);
        assert_eq!(p.to_commit(), want);
        p.committed(&want);
        assert!(p.to_commit().is_empty());
        p.handled(&b, 3);
        assert_eq!(p.to_commit(), BTreeMap::from([(b.clone(), 3)]));
        // Unknown partitions are ignored (revoked between fetch and handling).
        p.handled(&TopicPartition::new("x", 9), 100);
        assert_eq!(p.position(&TopicPartition::new("x", 9)), None);
        assert_eq!(p.partitions().count(), 2);
        p.remove(&a);
        assert_eq!(p.partitions().collect::<Vec<_>>(), [&b]);
        assert_eq!(p.to_commit(), BTreeMap::from([(b.clone(), 3)]));
        p.clear();
        assert!(p.to_commit().is_empty());
    }
}
