//! How many consumer instances a job should have, and how many to start now.
//!
//! Level-triggered: the answer depends only on the current lag and the instances running now,
//! never on what changed since the last look, so a missed event, an observer restart or a
//! consumer that died with work left all heal on the next cycle.

use std::collections::{BTreeMap, HashSet};

use super::Policy;
use crate::offsets::{Ends, GroupOffsets, TopicPartition};

/// Lag of one partition for one job; `None` when its offsets are unknown this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub tp: TopicPartition,
    pub committed: Option<i64>,
    pub lag: Option<i64>,
}

/// A job's view of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobLag {
    pub partitions: Vec<PartitionLag>,
}

impl JobLag {
    /// Partitions with work.
    pub fn lagging(&self) -> u32 {
        self.partitions
            .iter()
            .filter(|p| p.lag.is_some_and(|l| l > 0))
            .count() as u32
    }

    /// Partitions whose offsets could not be read: neither lagging nor idle.
    pub fn unknown(&self) -> u32 {
        self.partitions.iter().filter(|p| p.lag.is_none()).count() as u32
    }

    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// Lag of every partition of `topics` for `group`.
///
/// A partition is unknown when its ends are unknown, when the group's commits could not be
/// read, or when the coordinator refused that partition. A commit in `empty` (partition,
/// committed offset) sits below nothing a consumer would see (`offsets::visible`): no lag.
pub fn job_lag(
    topics: &[String],
    partitions: &BTreeMap<String, Vec<i32>>,
    ends: &BTreeMap<TopicPartition, Result<Ends, String>>,
    group: Option<&Result<GroupOffsets, String>>,
    policy: &Policy,
    empty: &HashSet<(TopicPartition, i64)>,
) -> JobLag {
    let mut out = JobLag::default();
    for topic in topics {
        let Some(ps) = partitions.get(topic) else {
            continue;
        };
        let topic: std::sync::Arc<str> = match ps
            .first()
            .and_then(|p| ends.get_key_value(&TopicPartition::new(topic.as_str(), *p)))
        {
            // Share the snapshot's name rather than allocate one per group.
            Some((tp, _)) => tp.topic.clone(),
            None => topic.as_str().into(),
        };
        for p in ps {
            let tp = TopicPartition::new(topic.clone(), *p);
            let (committed, commits_known) = match group {
                Some(Ok(g)) if !g.errors.contains_key(&tp) => {
                    (g.committed.get(&tp).map(|c| c.offset), true)
                }
                _ => (None, false),
            };
            let lag = match (ends.get(&tp), commits_known) {
                (Some(Ok(_)), true)
                    if committed.is_some_and(|c| empty.contains(&(tp.clone(), c))) =>
                {
                    Some(0)
                }
                (Some(Ok(e)), true) => Some(policy.lag(e, committed)),
                _ => None,
            };
            out.partitions.push(PartitionLag { tp, committed, lag });
        }
    }
    out
}

/// What to do for one job this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Instances the job should have: one per lagging partition, capped.
    pub desired: u32,
    /// New instances to start now.
    pub launch: u32,
}

/// `lagging` partitions, `active` instances, an optional cap; `gate_open` is false while
/// wake-ups of a stuck job are backing off.
pub fn decide(lagging: u32, active: u32, cap: Option<u32>, gate_open: bool) -> Decision {
    let desired = cap.map_or(lagging, |c| lagging.min(c));
    let launch = if gate_open {
        desired.saturating_sub(active)
    } else {
        0
    };
    Decision { desired, launch }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::Committed;

    #[test]
    fn decide_table() {
        // (lagging, active, cap, gate, desired, launch)
        let cases = [
            (0, 0, None, true, 0, 0),
            (2, 0, None, true, 2, 2),
            (2, 2, None, true, 2, 0),
            (3, 1, None, true, 3, 2),
            (1, 3, None, true, 1, 0),
            (4, 0, Some(2), true, 2, 2),
            (4, 1, Some(2), true, 2, 1),
            (4, 0, Some(0), true, 0, 0),
            (2, 0, None, false, 2, 0),
        ];
        for (lagging, active, cap, gate, desired, launch) in cases {
            assert_eq!(
                decide(lagging, active, cap, gate),
                Decision { desired, launch },
                "lagging {lagging} active {active} cap {cap:?} gate {gate}"
            );
        }
    }

    fn ends(hw: i64) -> Result<Ends, String> {
        Ok(Ends {
            log_start: 0,
            high_watermark: hw,
            last_stable: hw,
        })
    }

    #[test]
    fn job_lag_marks_unknown_partitions() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let parts = BTreeMap::from([("a".to_string(), vec![0, 1, 2]), ("b".to_string(), vec![0])]);
        let tp = |t: &str, p| TopicPartition::new(t, p);
        let ends_map = BTreeMap::from([
            (tp("a", 0), ends(10)),
            (tp("a", 1), ends(5)),
            (tp("a", 2), Err("broker down".to_string())),
            (tp("b", 0), ends(0)),
        ]);
        let mut g = GroupOffsets::default();
        g.committed.insert(
            tp("a", 0),
            Committed {
                offset: 10,
                metadata: None,
            },
        );
        g.committed.insert(
            tp("a", 1),
            Committed {
                offset: 2,
                metadata: None,
            },
        );
        let clean = g.clone();
        let ok = Ok(g.clone());
        let lag = job_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&ok),
            &Policy::default(),
            &HashSet::new(),
        );
        let lags: Vec<Option<i64>> = lag.partitions.iter().map(|p| p.lag).collect();
        assert_eq!(lags, [Some(0), Some(3), None, Some(0)]);
        assert_eq!((lag.lagging(), lag.unknown(), lag.total_lag()), (1, 1, 3));

        // The group's commits unknown: every partition unknown, nothing lagging.
        let failed = Err("coordinator down".to_string());
        let lag = job_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&failed),
            &Policy::default(),
            &HashSet::new(),
        );
        assert_eq!((lag.lagging(), lag.unknown()), (0, 4));

        // A partition the coordinator refused is unknown, the rest are fine.
        let mut refused = g;
        refused
            .errors
            .insert(tp("a", 1), "UNSTABLE_OFFSET_COMMIT".into());
        let ok = Ok(refused);
        let lag = job_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&ok),
            &Policy::default(),
            &HashSet::new(),
        );
        let lags: Vec<Option<i64>> = lag.partitions.iter().map(|p| p.lag).collect();
        assert_eq!(lags, [Some(0), None, None, Some(0)]);

        // No commit at all: earliest → everything in the log is work.
        let none = Ok(GroupOffsets::default());
        let lag = job_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&none),
            &Policy::default(),
            &HashSet::new(),
        );
        let lags: Vec<Option<i64>> = lag.partitions.iter().map(|p| p.lag).collect();
        assert_eq!(lags, [Some(10), Some(5), None, Some(0)]);

        // A commit below nothing visible (markers, aborted records) is no work; another
        // commit on the same partition still is.
        let ok = Ok(clean);
        let empty = HashSet::from([(tp("a", 1), 2)]);
        let lag = job_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&ok),
            &Policy::default(),
            &empty,
        );
        let lags: Vec<Option<i64>> = lag.partitions.iter().map(|p| p.lag).collect();
        assert_eq!(lags, [Some(0), Some(0), None, Some(0)]);
        let other = HashSet::from([(tp("a", 1), 1)]);
        let lag = job_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&ok),
            &Policy::default(),
            &other,
        );
        assert_eq!(lag.partitions[1].lag, Some(3));
    }
}
