//! Committed offsets of many groups: one OffsetFetch per coordinator.
//!
//! Brokers from Kafka 3.0 accept several groups in one OffsetFetch (v8+); older ones get one
//! request per group, still sent together. Every committed partition of a group is asked for
//! (`topics = null`), so the caller never needs partition lists to learn where a group stands.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::cluster::{is_stale_route, Cluster};
use crate::protocol::offset_fetch::{OffsetFetchGroup, OffsetFetchResponse};
use crate::wire::kafka_error::error_name;

/// Which group to ask about, optionally limited to some topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupQuery {
    pub group: String,
    /// Only these topics; `None` for every topic the group committed on.
    pub topics: Option<Vec<String>>,
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub metadata: Option<String>,
}

/// Where one group stands: committed partitions, and partitions the coordinator refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOffsets {
    pub committed: BTreeMap<TopicPartition, Committed>,
    pub errors: BTreeMap<TopicPartition, String>,
}

type GroupAnswer = Result<GroupOffsets, (String, bool)>;

/// Committed offsets of each group in `queries`; a group whose coordinator could not answer maps
/// to an error saying why.
pub async fn fetch_committed(
    cluster: &Cluster,
    queries: &[GroupQuery],
) -> BTreeMap<String, Result<GroupOffsets, String>> {
    let mut out: BTreeMap<String, Result<GroupOffsets, String>> = BTreeMap::new();
    let mut todo: Vec<String> = queries.iter().map(|q| q.group.clone()).collect();
    todo.sort();
    todo.dedup();
    let mut attempt = 0;
    while !todo.is_empty() {
        let coords = cluster.coordinators(&todo).await;
        let mut by_coord: HashMap<i32, Vec<String>> = HashMap::new();
        for g in todo.drain(..) {
            match coords.get(&g) {
                Some(Ok(node)) => by_coord.entry(*node).or_default().push(g),
                Some(Err(e)) => {
                    out.insert(g, Err(e.clone()));
                }
                None => {
                    out.insert(g, Err("no coordinator found".into()));
                }
            }
        }
        let asks = by_coord
            .into_iter()
            .map(|(node, groups)| async move { offset_fetch(cluster, node, &groups).await });
        let mut retry = Vec::new();
        for answers in join_all(asks).await {
            for (g, answer) in answers {
                match answer {
                    Ok(offsets) => {
                        out.insert(g, Ok(offsets));
                    }
                    Err((msg, retriable)) => {
                        if retriable {
                            cluster.forget_coordinator(&g);
                            retry.push(g.clone());
                        }
                        out.insert(g, Err(msg));
                    }
                }
            }
        }
        attempt += 1;
        if retry.is_empty() {
            break;
        }
        let Some(delay) = cluster.backoff().delay_random(attempt) else {
            break;
        };
        tokio::time::sleep(delay).await;
        todo = retry;
    }
    // Apply topic filters.
    for q in queries {
        if let (Some(topics), Some(Ok(offsets))) = (&q.topics, out.get_mut(&q.group)) {
            offsets
                .committed
                .retain(|tp, _| topics.iter().any(|t| **t == *tp.topic));
            offsets
                .errors
                .retain(|tp, _| topics.iter().any(|t| **t == *tp.topic));
        }
    }
    out
}

/// OffsetFetch for `groups`, all coordinated by `node`.
async fn offset_fetch(
    cluster: &Cluster,
    node: i32,
    groups: &[String],
) -> Vec<(String, GroupAnswer)> {
    let conn = match cluster.broker(node).await {
        Ok(c) => c,
        Err(e) => {
            return groups
                .iter()
                .map(|g| (g.clone(), Err((e.to_string(), !e.is_fatal()))))
                .collect()
        }
    };
    let multi = matches!(
        conn.version::<OffsetFetchRequest, OffsetFetchResponse>(),
        Ok(v) if v >= 8
    );
    let gid = |g: &String| GroupId(StrBytes::from_string(g.clone()));
    if multi {
        let req_groups: Vec<OffsetFetchRequestGroup> = groups
            .iter()
            .map(|g| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(gid(g))
                    .with_topics(None)
            })
            .collect();
        let resp: Result<OffsetFetchResponse, _> = cluster
            .call(&conn, |_| {
                OffsetFetchRequest::default()
                    .with_groups(req_groups)
                    .with_require_stable(false)
            })
            .await;
        match resp {
            Ok(r) => {
                let mut by_id: HashMap<String, OffsetFetchGroup> = r
                    .groups
                    .into_iter()
                    .map(|g| (g.group_id.clone(), g))
                    .collect();
                groups
                    .iter()
                    .map(|g| {
                        let a = match by_id.remove(g) {
                            Some(fg) => group_answer(g, fg, conn.addr()),
                            None => Err((
                                format!("group '{g}' missing from the OffsetFetch answer"),
                                true,
                            )),
                        };
                        (g.clone(), a)
                    })
                    .collect()
            }
            Err(e) => groups
                .iter()
                .map(|g| (g.clone(), Err((e.to_string(), !e.is_fatal()))))
                .collect(),
        }
    } else {
        let asks = groups.iter().map(|g| {
            let conn = conn.clone();
            async move {
                let resp: Result<OffsetFetchResponse, _> = cluster
                    .call(&conn, |v| {
                        let req = OffsetFetchRequest::default()
                            .with_group_id(gid(g))
                            .with_topics(None);
                        if v >= 7 {
                            req.with_require_stable(false)
                        } else {
                            req
                        }
                    })
                    .await;
                let a = match resp {
                    Ok(r) => match r.groups.into_iter().next() {
                        Some(fg) => group_answer(g, fg, conn.addr()),
                        None => Err(("empty OffsetFetch answer".to_string(), true)),
                    },
                    Err(e) => Err((e.to_string(), !e.is_fatal())),
                };
                (g.clone(), a)
            }
        });
        join_all(asks).await
    }
}

fn group_answer(group: &str, fg: OffsetFetchGroup, addr: &str) -> GroupAnswer {
    if fg.error_code != 0 {
        return Err((
            format!(
                "OffsetFetch for group '{group}' at {addr}: {}",
                error_name(fg.error_code)
            ),
            is_stale_route(fg.error_code),
        ));
    }
    let mut offsets = GroupOffsets::default();
    for t in fg.topics {
        let name: std::sync::Arc<str> = t.name.into();
        for p in t.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            if p.error_code != 0 {
                offsets.errors.insert(tp, error_name(p.error_code));
            } else if p.committed_offset >= 0 {
                offsets.committed.insert(
                    tp,
                    Committed {
                        offset: p.committed_offset,
                        metadata: p.metadata,
                    },
                );
            }
        }
    }
    Ok(offsets)
}
