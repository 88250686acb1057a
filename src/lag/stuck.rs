//! Stuck lag: partitions whose group does not move although consumers run for it.
//!
//! A consumer that hangs on a record, or a handler that always fails and retries, keeps its
//! partition's commit where it is while the job looks busy. Such a partition is reported once
//! (log line, `kafka_observer_partition_stuck`) and again when it moves. Consumers that end
//! without committing are the other half, handled by the crash-loop back-off of
//! `reconcile`. A pure state machine: cycles are counted, nothing is read from a clock.

use std::collections::BTreeMap;

use crate::offsets::TopicPartition;

/// Settings of stuck detection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StuckPolicy {
    /// Cycles with lag, instances active and an unchanged commit before a partition is stuck.
    pub cycles: u32,
}

impl Default for StuckPolicy {
    fn default() -> Self {
        StuckPolicy { cycles: 120 }
    }
}

#[derive(Debug, Clone, Default)]
struct Track {
    committed: Option<i64>,
    still: u32,
    stuck: bool,
}

/// A change worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StuckEvent {
    Stuck {
        group: String,
        tp: TopicPartition,
        committed: Option<i64>,
        lag: i64,
    },
    Moving {
        group: String,
        tp: TopicPartition,
    },
}

/// Per-partition memory of commits.
#[derive(Debug, Default)]
pub(crate) struct StuckTracker {
    policy: StuckPolicy,
    parts: BTreeMap<String, BTreeMap<TopicPartition, Track>>,
}

impl StuckTracker {
    pub(crate) fn new(policy: StuckPolicy) -> Self {
        StuckTracker {
            policy,
            ..StuckTracker::default()
        }
    }

    /// Records one cycle's view of a partition of `group`: once per cycle, however many jobs
    /// read it (`reconcile` looks at each group once). `working` is true when a job of the
    /// group that reads the partition had instances active (or started some) lately; `lag`
    /// None means unknown (no change recorded).
    pub(crate) fn observe(
        &mut self,
        group: &str,
        tp: &TopicPartition,
        committed: Option<i64>,
        lag: Option<i64>,
        working: bool,
    ) -> Option<StuckEvent> {
        let lag = lag?;
        if lag == 0 {
            // Caught up: nothing to remember (most partitions, most of the time).
            let was_stuck = self
                .parts
                .get_mut(group)
                .and_then(|p| p.remove(tp))
                .is_some_and(|t| t.stuck);
            return was_stuck.then(|| StuckEvent::Moving {
                group: group.into(),
                tp: tp.clone(),
            });
        }
        let parts = match self.parts.get_mut(group) {
            Some(p) => p,
            None => self.parts.entry(group.to_string()).or_default(),
        };
        let t = match parts.get_mut(tp) {
            Some(t) => t,
            None => parts.entry(tp.clone()).or_default(),
        };
        let moved = t.committed != committed;
        t.committed = committed;
        if moved {
            t.still = 0;
            if t.stuck {
                t.stuck = false;
                return Some(StuckEvent::Moving {
                    group: group.into(),
                    tp: tp.clone(),
                });
            }
            return None;
        }
        if working {
            t.still = t.still.saturating_add(1);
        }
        if !t.stuck && t.still >= self.policy.cycles {
            t.stuck = true;
            return Some(StuckEvent::Stuck {
                group: group.into(),
                tp: tp.clone(),
                committed,
                lag,
            });
        }
        None
    }

    pub(crate) fn is_stuck(&self, group: &str, tp: &TopicPartition) -> bool {
        self.parts
            .get(group)
            .and_then(|p| p.get(tp))
            .is_some_and(|t| t.stuck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> StuckPolicy {
        StuckPolicy { cycles: 3 }
    }

    #[test]
    fn a_partition_becomes_stuck_only_while_working_and_recovers_when_it_moves() {
        let mut s = StuckTracker::new(policy());
        let tp = TopicPartition::new("t", 0);
        // (committed, lag, working, expected event kind: 0 none, 1 stuck, 2 moving)
        let steps: &[(Option<i64>, Option<i64>, bool, u8)] = &[
            (Some(5), Some(3), true, 0),  // first sight: counts as a move
            (Some(5), Some(3), false, 0), // idle cycles don't count
            (Some(5), Some(3), true, 0),  // 1
            (Some(5), None, true, 0),     // unknown: no change
            (Some(5), Some(3), true, 0),  // 2
            (Some(5), Some(4), true, 1),  // 3 → stuck
            (Some(5), Some(4), true, 0),  // reported once
            (Some(6), Some(3), true, 2),  // moved
            (Some(6), Some(3), true, 0),
        ];
        for (i, (c, lag, working, want)) in steps.iter().enumerate() {
            let ev = s.observe("g", &tp, *c, *lag, *working);
            let kind = match ev {
                None => 0,
                Some(StuckEvent::Stuck { .. }) => 1,
                Some(StuckEvent::Moving { .. }) => 2,
            };
            assert_eq!(kind, *want, "step {i}: {ev:?}");
        }
        assert!(!s.is_stuck("g", &tp));
    }

    #[test]
    fn lag_zero_is_never_stuck() {
        let mut s = StuckTracker::new(policy());
        let tp = TopicPartition::new("t", 0);
        for _ in 0..10 {
            assert_eq!(s.observe("g", &tp, Some(5), Some(0), true), None);
        }
    }
}
