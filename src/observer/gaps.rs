//! Which commits sit before nothing a consumer would see (see `offsets::visible`), remembered
//! between cycles: the records of a gap never change, so a verdict holds until the commit or
//! the end moves, and each small gap is looked at once.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::snapshot::Snapshot;
use crate::cluster::Cluster;
use crate::lag::Policy;
use crate::offsets::visible::{self, Gap, MAX_GAP};
use crate::offsets::TopicPartition;

/// Gap verdicts: true when nothing visible lies between the commit and the end.
#[derive(Debug, Default)]
pub(super) struct Gaps {
    verdicts: HashMap<Gap, bool>,
}

impl Gaps {
    /// Commits of `groups` in `snap` that sit before nothing visible: (partition, commit).
    /// Small gaps only; new ones are looked at with one Fetch per leader.
    pub(super) async fn nothing_to_read(
        &mut self,
        cluster: &Cluster,
        policy: &Policy,
        groups: &[(String, Vec<String>)],
        snap: &Snapshot,
    ) -> HashSet<(TopicPartition, i64)> {
        let gaps = small_gaps(policy, groups, snap);
        self.verdicts.retain(|g, _| gaps.contains(g));
        let new: Vec<Gap> = gaps
            .iter()
            .filter(|g| !self.verdicts.contains_key(*g))
            .cloned()
            .collect();
        if !new.is_empty() {
            let nothing =
                visible::gaps_with_nothing_visible(cluster, &new, policy.read_committed()).await;
            for g in new {
                let e = nothing.contains(&g);
                if e {
                    tracing::debug!(partition = %g.tp, from = g.from, end = g.end, "nothing visible between commit and end (transaction markers, aborted records): no lag");
                }
                self.verdicts.insert(g, e);
            }
        }
        self.verdicts
            .iter()
            .filter(|(_, e)| **e)
            .map(|(g, _)| (g.tp.clone(), g.from))
            .collect()
    }
}

/// Every commit of `groups` at most [`MAX_GAP`] below the end (pure).
fn small_gaps(policy: &Policy, groups: &[(String, Vec<String>)], snap: &Snapshot) -> BTreeSet<Gap> {
    let mut gaps = BTreeSet::new();
    for (group, _) in groups {
        let Some(Ok(offsets)) = snap.committed.get(group) else {
            continue;
        };
        for (tp, c) in &offsets.committed {
            let Some(Ok(e)) = snap.ends.get(tp) else {
                continue;
            };
            let end = policy.end(e);
            if c.offset >= e.log_start && c.offset < end && end - c.offset <= MAX_GAP {
                gaps.insert(Gap {
                    tp: tp.clone(),
                    from: c.offset,
                    end,
                });
            }
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::{Committed, Ends, GroupOffsets};
    use std::collections::BTreeMap;

    #[test]
    fn only_small_gaps_inside_the_log_are_checked() {
        let tp = |p| TopicPartition::new("t", p);
        let ends = |s, e| {
            Ok(Ends {
                log_start: s,
                high_watermark: e,
                last_stable: e,
            })
        };
        let mut g = GroupOffsets::default();
        for (p, c) in [(0, 5), (1, 10), (2, 1), (3, 0), (4, 3)] {
            g.committed.insert(
                tp(p),
                Committed {
                    offset: c,
                    metadata: None,
                },
            );
        }
        let snap = Snapshot {
            partitions: BTreeMap::new(),
            ends: BTreeMap::from([
                (tp(0), ends(0, 7)),           // gap of 2: checked
                (tp(1), ends(0, 10)),          // caught up
                (tp(2), ends(0, 1000)),        // a large gap is real work
                (tp(3), ends(5, 9)),           // below the log start: not a gap
                (tp(4), ends(0, 3 + MAX_GAP)), // exactly the limit
            ]),
            committed: BTreeMap::from([("g".to_string(), Ok(g))]),
        };
        let groups = vec![("g".to_string(), vec!["t".to_string()])];
        let got: Vec<(i32, i64, i64)> = small_gaps(&Policy::default(), &groups, &snap)
            .into_iter()
            .map(|g| (g.tp.partition, g.from, g.end))
            .collect();
        assert_eq!(got, vec![(0, 5, 7), (4, 3, 3 + MAX_GAP)]);
    }
}
