//! One look at the cluster per cycle: partitions of the watched topics, their ends, and the
//! committed offsets of every group — ends and commits requested together so they describe the
//! same moment as closely as the protocol allows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::watch::Watcher;
use crate::cluster::Cluster;
use crate::config::kafkadata::Kafkadata;
use crate::offsets::{
    fetch_committed, fetch_ends, Ends, GroupOffsets, GroupQuery, OffsetsError, TopicPartition,
};
use crate::wire::WireError;

/// Everything a cycle decides from.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub ends: BTreeMap<TopicPartition, Result<Ends, OffsetsError>>,
    pub committed: BTreeMap<String, Result<GroupOffsets, OffsetsError>>,
}

/// Keeps the partition lists of the watched topics fresh: Metadata is the truth, the mapping's
/// `partitions` is only checked against it.
pub(crate) struct Topology {
    topics: Vec<String>,
    declared: BTreeMap<String, u32>,
    partitions: BTreeMap<String, Vec<i32>>,
    refresh_every: Duration,
    last: Option<Instant>,
    warned: BTreeSet<(String, usize)>,
}

impl Topology {
    pub(crate) fn new(data: &Kafkadata, refresh_every: Duration) -> Self {
        Topology {
            topics: data.topics.iter().map(|t| t.name.clone()).collect(),
            declared: data
                .topics
                .iter()
                .filter_map(|t| t.partitions.map(|p| (t.name.clone(), p)))
                .collect(),
            partitions: BTreeMap::new(),
            refresh_every,
            last: None,
            warned: BTreeSet::new(),
        }
    }

    /// Refreshes when due (or when nothing is known yet). Fails only when no partition at all is
    /// known; a failed refresh keeps the last good lists.
    pub(crate) async fn update(&mut self, cluster: &Cluster) -> Result<(), WireError> {
        let due = self.last.is_none_or(|t| t.elapsed() >= self.refresh_every)
            || self.partitions.len() < self.topics.len();
        if !due {
            return Ok(());
        }
        match cluster.refresh_metadata(Some(&self.topics)).await {
            Ok(md) => {
                self.last = Some(Instant::now());
                for topic in &self.topics {
                    let Some(tm) = md.topics.get(topic).filter(|t| t.error_code == 0) else {
                        if self.warned.insert((topic.clone(), usize::MAX)) {
                            tracing::warn!(%topic, "topic not found in the cluster; it is watched as soon as it exists");
                        }
                        continue;
                    };
                    let parts: Vec<i32> = tm.partitions.keys().copied().collect();
                    if let Some(d) = self.declared.get(topic) {
                        if *d as usize != parts.len()
                            && self.warned.insert((topic.clone(), parts.len()))
                        {
                            tracing::warn!(%topic, declared = d, actual = parts.len(),
                                "kafkadata declares a different partition count; using the cluster's");
                        }
                    }
                    if let Some(old) = self.partitions.get(topic) {
                        if old.len() != parts.len() {
                            tracing::info!(%topic, from = old.len(), to = parts.len(), "partition count changed");
                        }
                    }
                    self.partitions.insert(topic.clone(), parts);
                }
                Ok(())
            }
            Err(e) if self.partitions.is_empty() => Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "metadata refresh failed; keeping the last partition lists");
                Ok(())
            }
        }
    }

    pub(crate) fn partitions(&self) -> &BTreeMap<String, Vec<i32>> {
        &self.partitions
    }
}

/// Ends of every watched partition and commits of every group, in one round trip each.
/// Partitions held by the long poll (see `watch`) take their ends from there.
pub(crate) async fn take(
    cluster: &Cluster,
    partitions: &BTreeMap<String, Vec<i32>>,
    groups: &[(String, Vec<String>)],
    watcher: Option<&Watcher>,
) -> Snapshot {
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .flat_map(|(t, ps)| {
            let t: std::sync::Arc<str> = t.as_str().into();
            ps.iter().map(move |p| TopicPartition::new(t.clone(), *p))
        })
        .collect();
    let (known, ask) = match watcher {
        Some(w) => w.split_known(tps),
        None => (Vec::new(), tps),
    };
    let queries: Vec<GroupQuery> = groups
        .iter()
        .map(|(g, topics)| GroupQuery {
            group: g.clone(),
            topics: Some(topics.clone()),
        })
        .collect();
    let (mut ends, committed) = tokio::join!(
        fetch_ends(cluster, &ask),
        fetch_committed(cluster, &queries)
    );
    ends.extend(known.into_iter().map(|(tp, e)| (tp, Ok(e))));
    Snapshot {
        partitions: partitions.clone(),
        ends,
        committed,
    }
}
