//! Committed offsets of many groups: one OffsetFetch per coordinator.
//!
//! Brokers from Kafka 3.0 accept several groups in one OffsetFetch (v8+); older ones get one
//! request per group, still sent together. Every committed partition of a group is asked for
//! (`topics = null`), so the caller never needs partition lists to learn where a group stands.
//!
//! As in `ends`: the requests and the reading of answers are pure and table-tested; the glue
//! sends; [`crate::retry::retry_each`] asks again for the groups whose coordinator moved.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{GroupId, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;

use super::{OffsetsError, TopicPartition};
use crate::cluster::Cluster;
use crate::protocol::error::{code, ErrorCode};
use crate::protocol::offset_fetch::{OffsetFetchGroup, OffsetFetchResponse};
use crate::retry::{retry_each, Retriable};

/// Which group to ask about, optionally limited to some topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupQuery {
    pub group: String,
    /// Only these topics; `None` for every topic the group committed on.
    pub topics: Option<Vec<String>>,
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Committed {
    pub offset: i64,
    pub metadata: Option<String>,
}

/// Where one group stands: committed partitions, and partitions the coordinator refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupOffsets {
    pub committed: BTreeMap<TopicPartition, Committed>,
    pub errors: BTreeMap<TopicPartition, ErrorCode>,
}

type GroupAnswer = Result<GroupOffsets, OffsetsError>;

/// Committed offsets of each group in `queries`; a group whose coordinator could not answer maps
/// to an error saying why.
pub(crate) async fn fetch_committed(
    cluster: &Cluster,
    queries: &[GroupQuery],
) -> BTreeMap<String, GroupAnswer> {
    let mut todo: Vec<String> = queries.iter().map(|q| q.group.clone()).collect();
    todo.sort();
    todo.dedup();
    let mut out = retry_each(&cluster.backoff(), "OffsetFetch", todo, |groups, _| {
        round(cluster, groups)
    })
    .await;
    for q in queries {
        if let (Some(topics), Some(Ok(offsets))) = (&q.topics, out.get_mut(&q.group)) {
            only_topics(offsets, topics);
        }
    }
    out
}

/// One round: find the coordinators, ask each for its groups. A group whose coordinator
/// answered as if it no longer were one is forgotten, so the next round looks it up again.
async fn round(cluster: &Cluster, groups: Vec<String>) -> Vec<(String, GroupAnswer)> {
    let mut coords = cluster.coordinators(&groups).await;
    let mut by_coord: HashMap<i32, Vec<String>> = HashMap::new();
    let mut out = Vec::new();
    for g in groups {
        match coords.remove(&g) {
            Some(Ok(node)) => by_coord.entry(node).or_default().push(g),
            Some(Err(e)) => out.push((g, Err(OffsetsError::Coordinator(e)))),
            None => out.push((g, Err(OffsetsError::NoCoordinator))),
        }
    }
    let asks = by_coord
        .iter()
        .map(|(node, groups)| offset_fetch(cluster, *node, groups));
    for answers in join_all(asks).await {
        for (g, answer) in answers {
            if answer.as_ref().err().is_some_and(Retriable::is_retriable) {
                cluster.forget_coordinator(&g);
            }
            out.push((g, answer));
        }
    }
    out
}

/// Keeps only `topics` of `offsets` (pure).
fn only_topics(offsets: &mut GroupOffsets, topics: &[String]) {
    let wanted = |tp: &TopicPartition| topics.iter().any(|t| **t == *tp.topic);
    offsets.committed.retain(|tp, _| wanted(tp));
    offsets.errors.retain(|tp, _| wanted(tp));
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

/// One OffsetFetch (v8+) for all of `groups`, every committed partition of each (pure).
fn request_groups(groups: &[String]) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_groups(
            groups
                .iter()
                .map(|g| {
                    OffsetFetchRequestGroup::default()
                        .with_group_id(group_id(g))
                        .with_topics(None)
                })
                .collect(),
        )
        .with_require_stable(false)
}

/// One OffsetFetch (v1–7) for `group` at version `v` (pure).
fn request_group(group: &str, v: i16) -> OffsetFetchRequest {
    let req = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    if v >= 7 {
        req.with_require_stable(false)
    } else {
        req
    }
}

/// Per asked group, its offsets in a multi-group answer (pure).
fn answers(resp: OffsetFetchResponse, groups: &[String], addr: &str) -> Vec<(String, GroupAnswer)> {
    let mut by_id: HashMap<String, OffsetFetchGroup> = resp
        .groups
        .into_iter()
        .map(|g| (g.group_id.clone(), g))
        .collect();
    groups
        .iter()
        .map(|g| {
            let a = match by_id.remove(g) {
                Some(fg) => group_answer(g, fg, addr),
                None => Err(OffsetsError::MissingGroup(g.clone())),
            };
            (g.clone(), a)
        })
        .collect()
}

/// Where `group` stands according to one group of an answer (pure). Partitions without a
/// commit (offset -1) are left out; refused partitions are kept apart with their error.
fn group_answer(group: &str, fg: OffsetFetchGroup, addr: &str) -> GroupAnswer {
    if fg.error_code != code::NONE {
        return Err(OffsetsError::Group {
            group: group.to_string(),
            addr: addr.to_string(),
            code: ErrorCode(fg.error_code),
        });
    }
    let mut offsets = GroupOffsets::default();
    for t in fg.topics {
        let name: std::sync::Arc<str> = t.name.into();
        for p in t.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            if p.error_code != code::NONE {
                offsets.errors.insert(tp, ErrorCode(p.error_code));
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

/// OffsetFetch for `groups`, all coordinated by `node`.
async fn offset_fetch(
    cluster: &Cluster,
    node: i32,
    groups: &[String],
) -> Vec<(String, GroupAnswer)> {
    let all_failed = |e: OffsetsError| {
        groups
            .iter()
            .map(|g| (g.clone(), Err(e.clone())))
            .collect::<Vec<_>>()
    };
    let conn = match cluster.broker(node).await {
        Ok(c) => c,
        Err(e) => return all_failed(e.into()),
    };
    let multi = matches!(
        conn.version::<OffsetFetchRequest, OffsetFetchResponse>(),
        Ok(v) if v >= 8
    );
    if multi {
        return match cluster.call(&conn, |_| request_groups(groups)).await {
            Ok(r) => answers(r, groups, conn.addr()),
            Err(e) => all_failed(e.into()),
        };
    }
    let asks = groups.iter().map(|g| {
        let conn = conn.clone();
        async move {
            let resp: Result<OffsetFetchResponse, _> =
                cluster.call(&conn, |v| request_group(g, v)).await;
            let a = match resp {
                Ok(r) => match r.groups.into_iter().next() {
                    Some(fg) => group_answer(g, fg, conn.addr()),
                    None => Err(OffsetsError::EmptyAnswer),
                },
                Err(e) => Err(e.into()),
            };
            (g.clone(), a)
        }
    });
    join_all(asks).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::offset_fetch::{OffsetFetchPartition, OffsetFetchTopic};

    fn part(p: i32, offset: i64, error_code: i16) -> OffsetFetchPartition {
        OffsetFetchPartition {
            partition_index: p,
            committed_offset: offset,
            committed_leader_epoch: -1,
            metadata: (offset >= 0).then(|| format!("m{p}")),
            error_code,
        }
    }

    fn group(
        id: &str,
        error_code: i16,
        topics: &[(&str, Vec<OffsetFetchPartition>)],
    ) -> OffsetFetchGroup {
        OffsetFetchGroup {
            group_id: id.into(),
            error_code,
            topics: topics
                .iter()
                .map(|(name, ps)| OffsetFetchTopic {
                    name: name.to_string(),
                    partitions: ps.clone(),
                })
                .collect(),
        }
    }

    /// (committed, refused) of an answer as plain lists, or (message, retriable).
    type Seen = Result<(Vec<(String, i64)>, Vec<(String, String)>), (String, bool)>;

    fn seen(a: GroupAnswer) -> Seen {
        a.map(|o| {
            (
                o.committed
                    .iter()
                    .map(|(tp, c)| (tp.to_string(), c.offset))
                    .collect(),
                o.errors
                    .iter()
                    .map(|(tp, e)| (tp.to_string(), e.to_string()))
                    .collect(),
            )
        })
        .map_err(|e| (e.to_string(), e.is_retriable()))
    }

    #[test]
    fn group_answer_table() {
        let s = |v: &[(&str, i64)]| v.iter().map(|(t, o)| (t.to_string(), *o)).collect();
        let e = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(t, c)| (t.to_string(), c.to_string()))
                .collect()
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, OffsetFetchGroup, Seen)> = vec![
            ("commits, one partition without",
                group("", 0, &[("t", vec![part(0, 5, 0), part(1, -1, 0)]), ("u", vec![part(3, 0, 0)])]),
                Ok((s(&[("t-0", 5), ("u-3", 0)]), vec![]))),
            ("a partition refused (pending transactional commit)",
                group("", 0, &[("t", vec![part(0, 5, 0), part(1, -1, 88)])]),
                Ok((s(&[("t-0", 5)]), e(&[("t-1", "UNSTABLE_OFFSET_COMMIT")])))),
            ("the coordinator moved: retriable",
                group("", code::NOT_COORDINATOR, &[]),
                Err(("OffsetFetch for group 'g' at b:1: NOT_COORDINATOR".into(), true))),
            ("denied: final",
                group("", code::GROUP_AUTHORIZATION_FAILED, &[]),
                Err(("OffsetFetch for group 'g' at b:1: GROUP_AUTHORIZATION_FAILED".into(), false))),
            ("no commits at all", group("", 0, &[]), Ok((vec![], vec![]))),
        ];
        for (name, fg, want) in cases {
            assert_eq!(seen(group_answer("g", fg, "b:1")), want, "{name}");
        }
    }

    #[test]
    fn multi_group_answers_are_matched_by_id() {
        let resp = OffsetFetchResponse {
            throttle_time_ms: 0,
            groups: vec![
                group("b", 0, &[("t", vec![part(0, 7, 0)])]),
                group("a", code::COORDINATOR_LOAD_IN_PROGRESS, &[]),
                group("other", 0, &[("t", vec![part(0, 1, 0)])]),
            ],
        };
        let asked = ["a".to_string(), "b".to_string(), "c".to_string()];
        let got: Vec<(String, Seen)> = answers(resp, &asked, "b:1")
            .into_iter()
            .map(|(g, a)| (g, seen(a)))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "a".into(),
                    Err((
                        "OffsetFetch for group 'a' at b:1: COORDINATOR_LOAD_IN_PROGRESS".into(),
                        true
                    ))
                ),
                ("b".into(), Ok((vec![("t-0".into(), 7)], vec![]))),
                (
                    "c".into(),
                    Err(("group 'c' missing from the OffsetFetch answer".into(), true))
                ),
            ]
        );
    }

    #[test]
    fn topic_filter_keeps_only_the_named_topics() {
        let mut o = group_answer(
            "g",
            group(
                "",
                0,
                &[
                    ("t", vec![part(0, 1, 0), part(1, -1, 88)]),
                    ("u", vec![part(0, 2, 0), part(1, -1, 88)]),
                ],
            ),
            "b:1",
        )
        .unwrap();
        only_topics(&mut o, &["u".to_string()]);
        assert_eq!(
            seen(Ok(o)),
            Ok((
                vec![("u-0".into(), 2)],
                vec![("u-1".into(), "UNSTABLE_OFFSET_COMMIT".into())]
            ))
        );
    }

    #[test]
    fn requests_for_each_version() {
        let groups = ["a".to_string(), "b".to_string()];
        let multi = request_groups(&groups);
        assert_eq!(multi.groups.len(), 2);
        assert!(multi.groups.iter().all(|g| g.topics.is_none()));
        assert!(!multi.require_stable);
        let v6 = request_group("a", 6);
        assert_eq!(v6.group_id.0.as_str(), "a");
        assert!(v6.topics.is_none());
        assert!(!request_group("a", 7).require_stable);
    }
}
