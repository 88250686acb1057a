//! Time lag of every group, each cycle: which waiting records count (pure, in
//! `offsets::timestamps`), one look for those not seen before, their ages. The cache lives here
//! between cycles, so a partition whose group's commit and log start stay put costs nothing.

use std::collections::{BTreeSet, HashSet};

use super::snapshot::Snapshot;
use crate::cluster::Cluster;
use crate::consumer::handler::log::now_ms;
use crate::lag::group::{commit_of, GroupLag};
use crate::lag::Policy;
use crate::offsets::timestamps::{self, time_lag_ms, wanted, Peeks, Want};
use crate::offsets::TopicPartition;

/// The timestamps seen so far (see `offsets::timestamps::Peeks`).
#[derive(Debug, Default)]
pub(super) struct Ages {
    peeks: Peeks,
}

impl Ages {
    /// Time lag (ms) of each partition of each group, in the order of `group_lags`; `None` when
    /// unknown this cycle.
    pub(super) async fn time_lags(
        &mut self,
        cluster: &Cluster,
        policy: &Policy,
        groups: &[(String, Vec<String>)],
        snap: &Snapshot,
        group_lags: &[GroupLag],
        nothing_to_read: &HashSet<(TopicPartition, i64)>,
    ) -> Vec<Vec<Option<i64>>> {
        let wants: Vec<Vec<Want>> = groups
            .iter()
            .zip(group_lags)
            .map(|((group, _), lag)| {
                let committed = snap.committed.get(group);
                lag.partitions
                    .iter()
                    .map(|p| {
                        let e = snap.ends.get(&p.tp).and_then(|e| e.as_ref().ok());
                        let nothing = p
                            .committed
                            .is_some_and(|c| nothing_to_read.contains(&(p.tp.clone(), c)));
                        wanted(policy, e, commit_of(committed, &p.tp), nothing)
                    })
                    .collect()
            })
            .collect();
        let look: Vec<(TopicPartition, i64, i64)> = group_lags
            .iter()
            .zip(&wants)
            .flat_map(|(lag, ws)| lag.partitions.iter().zip(ws))
            .filter_map(|(p, w)| match w {
                Want::From { from, end } => Some((p.tp.clone(), *from, *end)),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        timestamps::look(cluster, &mut self.peeks, &look, policy.read_committed()).await;
        let now = now_ms();
        group_lags
            .iter()
            .zip(wants)
            .map(|(lag, ws)| {
                lag.partitions
                    .iter()
                    .zip(ws)
                    .map(|(p, w)| time_lag_ms(&self.peeks, &p.tp, w, now))
                    .collect()
            })
            .collect()
    }
}
