//! Stuck lag: partitions whose group does not move although consumers were started for it.
//!
//! A consumer that crashes on a poison record, or a handler that always fails, would otherwise
//! be woken every cycle forever (the level trigger sees lag, starts a run, the run dies). Such a
//! partition is reported once, and the job's wake-ups back off exponentially until its
//! committed offset moves again. Time is passed in, so the whole thing is a pure state machine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::offsets::TopicPartition;

/// Settings of stuck detection.
#[derive(Debug, Clone, Copy)]
pub struct StuckPolicy {
    /// Cycles with lag, instances active and an unchanged commit before a partition is stuck.
    pub cycles: u32,
    /// First wake-up delay once a job is stuck; doubles per wake-up.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for StuckPolicy {
    fn default() -> Self {
        StuckPolicy {
            cycles: 120,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Track {
    committed: Option<i64>,
    still: u32,
    stuck: bool,
}

#[derive(Debug, Clone, Default)]
struct Gate {
    wakes: u32,
    next: Option<Instant>,
}

/// A change worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StuckEvent {
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

/// Per-partition memory of commits, per-job wake-up gates.
#[derive(Debug, Default)]
pub struct StuckTracker {
    policy: StuckPolicy,
    parts: BTreeMap<String, BTreeMap<TopicPartition, Track>>,
    gates: BTreeMap<String, Gate>,
}

impl StuckTracker {
    pub fn new(policy: StuckPolicy) -> Self {
        StuckTracker {
            policy,
            ..StuckTracker::default()
        }
    }

    /// Records one cycle's view of a partition. `working` is true when the job had instances
    /// active (or started some) this cycle; `lag` None means unknown (no change recorded).
    pub fn observe(
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

    pub fn is_stuck(&self, group: &str, tp: &TopicPartition) -> bool {
        self.parts
            .get(group)
            .and_then(|p| p.get(tp))
            .is_some_and(|t| t.stuck)
    }

    /// Whether `job` may be woken now. `stuck` says whether all its lagging partitions are
    /// stuck; a job with any moving partition is never held back (and its gate resets).
    pub fn may_wake(&mut self, job: &str, stuck: bool, now: Instant) -> bool {
        let gate = self.gates.entry(job.to_string()).or_default();
        if !stuck {
            *gate = Gate::default();
            return true;
        }
        gate.next.is_none_or(|n| now >= n)
    }

    /// Records a wake-up of a stuck job: the next one waits twice as long.
    pub fn woke(&mut self, job: &str, stuck: bool, now: Instant) {
        if !stuck {
            return;
        }
        let gate = self.gates.entry(job.to_string()).or_default();
        let factor = 1u32.checked_shl(gate.wakes).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .backoff
            .saturating_mul(factor)
            .min(self.policy.max_backoff);
        gate.wakes = gate.wakes.saturating_add(1);
        gate.next = Some(now + delay);
    }

    /// Seconds until the job may be woken again (0 when not held back).
    pub fn held_for(&self, job: &str, now: Instant) -> Duration {
        self.gates
            .get(job)
            .and_then(|g| g.next)
            .map_or(Duration::ZERO, |n| n.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> StuckPolicy {
        StuckPolicy {
            cycles: 3,
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(25),
        }
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

    #[test]
    fn stuck_jobs_back_off_exponentially_up_to_the_cap() {
        let mut s = StuckTracker::new(policy());
        let t0 = Instant::now();
        let secs = |n| t0 + Duration::from_secs(n);
        assert!(s.may_wake("j", true, t0));
        s.woke("j", true, t0); // next at +10
        assert!(!s.may_wake("j", true, secs(9)));
        assert!(s.may_wake("j", true, secs(10)));
        s.woke("j", true, secs(10)); // next at +20 → 30
        assert!(!s.may_wake("j", true, secs(29)));
        assert!(s.may_wake("j", true, secs(30)));
        s.woke("j", true, secs(30)); // 40 capped at 25 → 55
        assert_eq!(s.held_for("j", secs(30)), Duration::from_secs(25));
        // A job that moves again is released at once and starts over.
        assert!(s.may_wake("j", false, secs(31)));
        assert!(s.may_wake("j", true, secs(31)));
    }
}
