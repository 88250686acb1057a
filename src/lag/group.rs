//! Lag of one group over some topics, partition by partition: what a job (a group and its
//! topics) or a `lag` row is computed from.

use std::collections::{BTreeMap, HashSet};

use super::Policy;
use crate::offsets::{Ends, GroupOffsets, OffsetsError, TopicPartition};

/// Lag of one partition for one group; `None` when its offsets are unknown this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionLag {
    pub tp: TopicPartition,
    pub committed: Option<i64>,
    pub lag: Option<i64>,
}

/// A group's lag over the partitions of some topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupLag {
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// Partitions with work.
    pub(crate) fn lagging(&self) -> u32 {
        self.partitions
            .iter()
            .filter(|p| p.lag.is_some_and(|l| l > 0))
            .count() as u32
    }

    /// Partitions whose offsets could not be read: neither lagging nor idle.
    pub(crate) fn unknown(&self) -> u32 {
        self.partitions.iter().filter(|p| p.lag.is_none()).count() as u32
    }

    pub(crate) fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// What a group's commits say about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// The commits could not be read, or the coordinator refused this partition.
    Unknown,
    /// The group never committed here.
    None,
    At(i64),
}

/// What `group` (its commits as read, if at all) says about `tp`.
pub(crate) fn commit_of(
    group: Option<&Result<GroupOffsets, OffsetsError>>,
    tp: &TopicPartition,
) -> Commit {
    match group {
        Some(Ok(g)) if !g.errors.contains_key(tp) => match g.committed.get(tp) {
            Some(c) => Commit::At(c.offset),
            None => Commit::None,
        },
        _ => Commit::Unknown,
    }
}

/// Lag of one partition: unknown without its ends or its commit; 0 when the commit sits before
/// nothing a consumer would see (`nothing_to_read`); else from [`Policy::start`] to
/// [`Policy::end`]. The observer and the `lag` command both count through here.
pub(crate) fn partition_lag(
    policy: &Policy,
    ends: Option<&Ends>,
    commit: Commit,
    nothing_to_read: bool,
) -> Option<i64> {
    let e = ends?;
    match commit {
        Commit::Unknown => None,
        Commit::None => Some(policy.lag(e, None)),
        Commit::At(_) if nothing_to_read => Some(0),
        Commit::At(c) => Some(policy.lag(e, Some(c))),
    }
}

/// Lag of every partition of `topics` for `group`.
///
/// A partition is unknown when its ends are unknown, when the group's commits could not be
/// read, or when the coordinator refused that partition. A commit in `nothing_to_read`
/// (partition, committed offset) sits below nothing a consumer would see (transaction markers,
/// aborted records: `offsets::visible`): no lag.
pub(crate) fn group_lag(
    topics: &[String],
    partitions: &BTreeMap<String, Vec<i32>>,
    ends: &BTreeMap<TopicPartition, Result<Ends, OffsetsError>>,
    group: Option<&Result<GroupOffsets, OffsetsError>>,
    policy: &Policy,
    nothing_to_read: &HashSet<(TopicPartition, i64)>,
) -> GroupLag {
    let mut out = GroupLag::default();
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
            let commit = commit_of(group, &tp);
            let committed = match commit {
                Commit::At(c) => Some(c),
                _ => None,
            };
            let nothing = committed.is_some_and(|c| nothing_to_read.contains(&(tp.clone(), c)));
            let e = ends.get(&tp).and_then(|e| e.as_ref().ok());
            let lag = partition_lag(policy, e, commit, nothing);
            out.partitions.push(PartitionLag { tp, committed, lag });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::Committed;

    #[test]
    fn partition_lag_table() {
        let p = Policy::default();
        let e = Ends {
            log_start: 2,
            high_watermark: 10,
            last_stable: 9,
        };
        #[rustfmt::skip]
        let cases: &[(Option<&Ends>, Commit, bool, Option<i64>)] = &[
            (Some(&e), Commit::At(4), false, Some(5)),
            (Some(&e), Commit::At(4), true, Some(0)),
            (Some(&e), Commit::None, false, Some(7)),
            (Some(&e), Commit::Unknown, false, None),
            (None, Commit::At(4), false, None),
        ];
        for (ends, commit, nothing, want) in cases {
            assert_eq!(
                partition_lag(&p, *ends, *commit, *nothing),
                *want,
                "{commit:?} {nothing}"
            );
        }
    }

    fn ends(hw: i64) -> Result<Ends, OffsetsError> {
        Ok(Ends {
            log_start: 0,
            high_watermark: hw,
            last_stable: hw,
        })
    }

    #[test]
    fn group_lag_marks_unknown_partitions() {
        let topics = vec!["a".to_string(), "b".to_string()];
        let parts = BTreeMap::from([("a".to_string(), vec![0, 1, 2]), ("b".to_string(), vec![0])]);
        let tp = |t: &str, p| TopicPartition::new(t, p);
        let ends_map = BTreeMap::from([
            (tp("a", 0), ends(10)),
            (tp("a", 1), ends(5)),
            (tp("a", 2), Err(OffsetsError::NoAnswer)),
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
        let lag = group_lag(
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
        let failed = Err(OffsetsError::NoCoordinator);
        let lag = group_lag(
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
            .insert(tp("a", 1), crate::protocol::error::ErrorCode(88));
        let ok = Ok(refused);
        let lag = group_lag(
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
        let lag = group_lag(
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
        let nothing_to_read = HashSet::from([(tp("a", 1), 2)]);
        let lag = group_lag(
            &topics,
            &parts,
            &ends_map,
            Some(&ok),
            &Policy::default(),
            &nothing_to_read,
        );
        let lags: Vec<Option<i64>> = lag.partitions.iter().map(|p| p.lag).collect();
        assert_eq!(lags, [Some(0), Some(0), None, Some(0)]);
        let other = HashSet::from([(tp("a", 1), 1)]);
        let lag = group_lag(
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
