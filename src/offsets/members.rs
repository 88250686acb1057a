//! Who is in each group, and which partitions each member holds: one DescribeGroups per
//! coordinator (the request takes every group that coordinator owns).
//!
//! Only `lag` (the CLI) asks this: a person reading lag wants to know which consumer sits on a
//! lagging partition, as `kafka-consumer-groups --describe` shows. The observer does not need it
//! (lag is a property of offsets, not of members), so it costs the observer nothing.
//!
//! Member assignments are other clients' bytes: they are decoded with the bounded decoder of the
//! consumer protocol, and one that does not decode leaves that member without partitions (and
//! says so) instead of failing the group.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use kafka_protocol::messages::{DescribeGroupsRequest, GroupId};
use kafka_protocol::protocol::StrBytes;

use super::{OffsetsError, TopicPartition};
use crate::cluster::Cluster;
use crate::protocol::consumer_protocol::{Assignment, CONSUMER_PROTOCOL_TYPE};
use crate::protocol::error::{code, ErrorCode};
use crate::protocol::{DescribeGroupsResponse, DescribedGroup};
use crate::retry::{retry_each, Retriable};

/// A group as its coordinator describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupDescription {
    /// `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Dead` (does not exist).
    pub state: String,
    /// `consumer` for consumer groups; empty for groups that only commit offsets.
    pub protocol_type: String,
    /// The assignor the group chose (`range`, `roundrobin`, …); empty when none.
    pub protocol: String,
    /// The coordinator's node id.
    pub coordinator: i32,
    pub members: Vec<Member>,
}

impl GroupDescription {
    /// The group does not exist: Kafka answers DescribeGroups for an unknown group with the
    /// state `Dead` (classic coordinator) or GROUP_ID_NOT_FOUND (newer coordinators).
    pub(crate) fn is_dead(&self) -> bool {
        self.state == "Dead"
    }
}

/// One member of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// Its partitions, sorted; empty while the group rebalances.
    pub assignment: Vec<TopicPartition>,
    /// Why `assignment` is empty although the member sent bytes (undecodable assignment).
    pub assignment_error: Option<String>,
}

type Answer = Result<GroupDescription, OffsetsError>;

/// The description of each of `groups`; a group whose coordinator could not answer maps to an
/// error saying why. A moved coordinator is looked up again (the one retry loop, with the
/// cluster's back-off).
pub(crate) async fn describe_groups(
    cluster: &Cluster,
    groups: &[String],
) -> BTreeMap<String, Answer> {
    let mut todo: Vec<String> = groups.to_vec();
    todo.sort();
    todo.dedup();
    retry_each(&cluster.backoff(), "DescribeGroups", todo, |groups, _| {
        round(cluster, groups)
    })
    .await
}

/// One round: find the coordinators, ask each for its groups; a group whose coordinator answered
/// as if it no longer were one is forgotten, so the next round looks it up again.
async fn round(cluster: &Cluster, groups: Vec<String>) -> Vec<(String, Answer)> {
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
        .into_iter()
        .map(|(node, groups)| describe_at(cluster, node, groups));
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

/// One DescribeGroups for `groups`, all coordinated by `node`.
async fn describe_at(cluster: &Cluster, node: i32, groups: Vec<String>) -> Vec<(String, Answer)> {
    let all_failed = |e: OffsetsError| -> Vec<(String, Answer)> {
        groups.iter().map(|g| (g.clone(), Err(e.clone()))).collect()
    };
    let conn = match cluster.broker(node).await {
        Ok(c) => c,
        Err(e) => return all_failed(e.into()),
    };
    let ids: Vec<GroupId> = groups
        .iter()
        .map(|g| GroupId(StrBytes::from_string(g.clone())))
        .collect();
    let resp: Result<DescribeGroupsResponse, _> = cluster
        .call(&conn, |_| DescribeGroupsRequest::default().with_groups(ids))
        .await;
    match resp {
        Ok(r) => answers(&groups, r, node, conn.addr()),
        Err(e) => all_failed(e.into()),
    }
}

/// The answer for each asked group (pure).
fn answers(
    asked: &[String],
    resp: DescribeGroupsResponse,
    node: i32,
    addr: &str,
) -> Vec<(String, Answer)> {
    let mut by_id: HashMap<String, DescribedGroup> = resp
        .groups
        .into_iter()
        .map(|g| (g.group_id.clone(), g))
        .collect();
    asked
        .iter()
        .map(|g| {
            let a = match by_id.remove(g) {
                Some(d) => describe_answer(d, node, addr),
                None => Err(OffsetsError::MissingDescribed(g.clone())),
            };
            (g.clone(), a)
        })
        .collect()
}

fn describe_answer(g: DescribedGroup, node: i32, addr: &str) -> Answer {
    match g.error_code {
        code::NONE => {}
        // Newer coordinators answer an unknown group this way instead of with `Dead`.
        code::GROUP_ID_NOT_FOUND => {
            return Ok(GroupDescription {
                state: "Dead".into(),
                coordinator: node,
                ..GroupDescription::default()
            })
        }
        e => {
            return Err(OffsetsError::Described {
                group: g.group_id,
                addr: addr.to_string(),
                code: ErrorCode(e),
            })
        }
    }
    let consumer = g.protocol_type == CONSUMER_PROTOCOL_TYPE;
    let mut members: Vec<Member> = g
        .members
        .into_iter()
        .map(|m| {
            let (assignment, assignment_error) = if consumer {
                match Assignment::decode(&m.member_assignment) {
                    Ok(a) => (partitions(a), None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                }
            } else {
                (Vec::new(), None)
            };
            Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                host: m.client_host,
                assignment,
                assignment_error,
            }
        })
        .collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupDescription {
        state: g.group_state,
        protocol_type: g.protocol_type,
        protocol: g.protocol_data,
        coordinator: node,
        members,
    })
}

fn partitions(a: Assignment) -> Vec<TopicPartition> {
    let mut out: Vec<TopicPartition> = a
        .assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let topic: std::sync::Arc<str> = t.topic.into();
            t.partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::consumer_protocol::TopicPartitions;
    use crate::protocol::describe_groups::DescribedGroupMember;
    use bytes::Bytes;

    fn member(id: &str, assignment: Bytes) -> DescribedGroupMember {
        DescribedGroupMember {
            member_id: id.into(),
            group_instance_id: None,
            client_id: format!("client-{id}"),
            client_host: "/127.0.0.1".into(),
            member_metadata: Bytes::new(),
            member_assignment: assignment,
        }
    }

    fn assignment(parts: &[(&str, &[i32])]) -> Bytes {
        Assignment {
            assigned_partitions: parts
                .iter()
                .map(|(t, p)| TopicPartitions {
                    topic: t.to_string(),
                    partitions: p.to_vec(),
                })
                .collect(),
            ..Assignment::default()
        }
        .encode()
        .unwrap()
    }

    fn group(
        id: &str,
        error_code: i16,
        state: &str,
        members: Vec<DescribedGroupMember>,
    ) -> DescribedGroup {
        DescribedGroup {
            error_code,
            group_id: id.into(),
            group_state: state.into(),
            protocol_type: "consumer".into(),
            protocol_data: "range".into(),
            members,
            ..DescribedGroup::default()
        }
    }

    #[test]
    fn answers_table() {
        let resp = DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![
                group(
                    "stable",
                    0,
                    "Stable",
                    vec![
                        member("m-2", assignment(&[("t", &[2, 0]), ("u", &[1])])),
                        member("m-1", assignment(&[("t", &[1])])),
                        // Rebalancing: no assignment yet.
                        member("m-3", Bytes::new()),
                        // Garbage from another client: the member stays, without partitions.
                        member("m-4", Bytes::from_static(&[0, 0, 0, 0, 0, 9])),
                    ],
                ),
                group("dead", 0, "Dead", vec![]),
                group("unknown", code::GROUP_ID_NOT_FOUND, "", vec![]),
                group("moved", code::NOT_COORDINATOR, "", vec![]),
                group("denied", code::GROUP_AUTHORIZATION_FAILED, "", vec![]),
            ],
        };
        let asked: Vec<String> = ["stable", "dead", "unknown", "moved", "denied", "absent"]
            .map(String::from)
            .to_vec();
        let got: BTreeMap<String, Answer> =
            answers(&asked, resp, 7, "b:9092").into_iter().collect();

        let stable = got["stable"].as_ref().unwrap();
        assert_eq!(
            (stable.state.as_str(), stable.protocol.as_str()),
            ("Stable", "range")
        );
        assert_eq!(stable.coordinator, 7);
        let ids: Vec<&str> = stable
            .members
            .iter()
            .map(|m| m.member_id.as_str())
            .collect();
        assert_eq!(ids, ["m-1", "m-2", "m-3", "m-4"]);
        let tp = |t: &str, p| TopicPartition::new(t, p);
        assert_eq!(stable.members[0].assignment, [tp("t", 1)]);
        assert_eq!(
            stable.members[1].assignment,
            [tp("t", 0), tp("t", 2), tp("u", 1)]
        );
        assert_eq!(stable.members[1].client_id, "client-m-2");
        assert_eq!(stable.members[1].host, "/127.0.0.1");
        assert!(stable.members[2].assignment.is_empty());
        assert_eq!(stable.members[2].assignment_error, None);
        assert!(stable.members[3].assignment.is_empty());
        assert!(stable.members[3].assignment_error.is_some());

        assert!(got["dead"].as_ref().unwrap().is_dead());
        assert!(got["unknown"].as_ref().unwrap().is_dead());
        let e = got["moved"].as_ref().unwrap_err();
        assert!(
            e.is_retriable() && e.to_string().contains("NOT_COORDINATOR"),
            "{e}"
        );
        let e = got["denied"].as_ref().unwrap_err();
        assert!(!e.is_retriable(), "{e}");
        assert_eq!(
            e.to_string(),
            "DescribeGroups for group 'denied' at b:9092: GROUP_AUTHORIZATION_FAILED"
        );
        assert!(got["absent"].as_ref().unwrap_err().is_retriable());
    }

    #[test]
    fn only_consumer_groups_have_assignments_decoded() {
        let mut g = group(
            "connect",
            0,
            "Stable",
            vec![member("w-1", assignment(&[("t", &[0])]))],
        );
        g.protocol_type = "connect".into();
        let d = describe_answer(g, 1, "b:1").unwrap();
        assert!(d.members[0].assignment.is_empty());
        assert_eq!(d.members[0].assignment_error, None);
    }
}
