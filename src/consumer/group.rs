//! Classic consumer-group membership: JoinGroup, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup.
//!
//! Protocol type "consumer" with the cooperative-sticky, range and round-robin assignors, encoded
//! as the Java client does, so our instances share a group with Java consumers. The leader
//! (whoever the coordinator picks) computes the assignment; every member only follows. Each
//! JoinGroup carries the partitions this member still owns and their generation (subscription
//! v1+ owned partitions, v2+ generation, and the cooperative-sticky user data older Java leaders
//! read), which is what lets the sticky assignor leave them in place.
//!
//! Errors that mean "a rebalance started" become `GroupError::Rebalance` (still a member: commit,
//! rejoin, keep owned partitions under cooperative-sticky); "the group moved on without us"
//! (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID) becomes `GroupError::Lost` (our partitions may already
//! be someone else's: claim nothing when rejoining).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::assignor;
use crate::cluster::Cluster;
use crate::offsets::TopicPartition;
use crate::protocol::consumer_protocol::{Assignment, Subscription, TopicPartitions};
use crate::protocol::error::code::{
    self, FENCED_INSTANCE_ID, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL, MEMBER_ID_REQUIRED,
    REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID,
};
use crate::protocol::error::{error_name, is_retriable};
use crate::protocol::heartbeat::HeartbeatResponse;
use crate::protocol::join_group::JoinGroupResponse;
use crate::protocol::leave_group::LeaveGroupResponse;
use crate::protocol::offset_commit::OffsetCommitResponse;
use crate::protocol::sync_group::SyncGroupResponse;
use crate::wire::{Connection, WireError};

/// How this member takes part in its group.
#[derive(Debug, Clone)]
pub(crate) struct GroupConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// Static membership (KIP-345): survives restarts without a rebalance.
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// Assignors offered, in preference order: "cooperative-sticky", "range", "roundrobin".
    pub assignors: Vec<String>,
}

/// What a member claims to own when it joins: the partitions it kept from `generation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub partitions: Vec<TopicPartition>,
    /// The generation the partitions were assigned in; -1 when the member holds nothing.
    pub generation: i32,
}

impl Default for Claim {
    fn default() -> Self {
        Claim {
            partitions: Vec::new(),
            generation: -1,
        }
    }
}

/// Why a group call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupError {
    /// The group is rebalancing and we are still a member: commit, then join again.
    Rebalance(String),
    /// The group moved on without us (a newer generation, or it forgot our member id): what we
    /// held may already be someone else's. Join again claiming nothing.
    Lost(String),
    /// A transient problem (coordinator moved, connection lost): retry after a pause.
    Retry(String),
    /// No retry can help (authorization, fenced, incompatible protocol).
    Fatal(String),
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::Rebalance(m) => write!(f, "rebalance: {m}"),
            GroupError::Lost(m) => write!(f, "left behind by the group: {m}"),
            GroupError::Retry(m) | GroupError::Fatal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GroupError {}

impl GroupError {
    /// How much it overrides: a fatal error beats losing the membership, which beats a plain
    /// rebalance, which beats a transient failure.
    pub(crate) fn severity(&self) -> u8 {
        match self {
            GroupError::Retry(_) => 0,
            GroupError::Rebalance(_) => 1,
            GroupError::Lost(_) => 2,
            GroupError::Fatal(_) => 3,
        }
    }
}

impl From<WireError> for GroupError {
    fn from(e: WireError) -> Self {
        if e.is_fatal() {
            GroupError::Fatal(e.to_string())
        } else {
            GroupError::Retry(e.to_string())
        }
    }
}

/// The member's identity within one generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Generation {
    pub member_id: String,
    pub generation_id: i32,
    pub protocol: String,
    pub leader: bool,
}

/// One consumer's membership of one group.
pub(crate) struct Member {
    cluster: Arc<Cluster>,
    cfg: GroupConfig,
    gen: Generation,
}

impl Member {
    pub(crate) fn new(cluster: Arc<Cluster>, cfg: GroupConfig) -> Self {
        Member {
            cluster,
            cfg,
            gen: Generation {
                generation_id: -1,
                ..Generation::default()
            },
        }
    }

    /// A member that already joined (for the heartbeat task, which shares the identity).
    pub(crate) fn with_generation(
        cluster: Arc<Cluster>,
        cfg: GroupConfig,
        gen: Generation,
    ) -> Self {
        Member { cluster, cfg, gen }
    }

    pub(crate) fn generation(&self) -> &Generation {
        &self.gen
    }

    pub(crate) fn group(&self) -> &str {
        &self.cfg.group
    }

    async fn coordinator(&self) -> Result<Arc<Connection>, GroupError> {
        let group = self.cfg.group.clone();
        let found = self
            .cluster
            .coordinators(std::slice::from_ref(&group))
            .await;
        match found.get(&group) {
            Some(Ok(node)) => Ok(self.cluster.broker(*node).await?),
            Some(Err(e)) => Err(GroupError::Retry(e.to_string())),
            None => Err(GroupError::Retry("no coordinator".into())),
        }
    }

    /// Maps a group-level error code; `None` = success.
    fn classify(&mut self, what: &str, ec: i16) -> Option<GroupError> {
        let name = error_name(ec);
        match ec {
            0 => None,
            REBALANCE_IN_PROGRESS => Some(GroupError::Rebalance(format!("{what}: {name}"))),
            ILLEGAL_GENERATION => Some(GroupError::Lost(format!("{what}: {name}"))),
            UNKNOWN_MEMBER_ID => {
                self.gen.member_id.clear();
                Some(GroupError::Lost(format!("{what}: {name}")))
            }
            code::NOT_COORDINATOR
            | code::COORDINATOR_NOT_AVAILABLE
            | code::COORDINATOR_LOAD_IN_PROGRESS => {
                self.cluster.forget_coordinator(&self.cfg.group);
                Some(GroupError::Retry(format!("{what}: {name}")))
            }
            FENCED_INSTANCE_ID => Some(GroupError::Fatal(format!(
                "{what}: {name}: another instance uses group.instance.id {:?}",
                self.cfg.instance_id
            ))),
            INCONSISTENT_GROUP_PROTOCOL => Some(GroupError::Fatal(format!(
                "{what}: {name}: the group's other members use a protocol other than \"consumer\" with cooperative-sticky, range or roundrobin"
            ))),
            _ if is_retriable(ec) => {
                Some(GroupError::Retry(format!("{what}: {name}")))
            }
            _ => Some(GroupError::Fatal(format!(
                "{what} for group '{}': {name}",
                self.cfg.group
            ))),
        }
    }

    /// The JoinGroup metadata for `protocol`: the same subscription for every assignor; the
    /// cooperative-sticky one also carries the claim's generation in its user data (an int32,
    /// what Java's `CooperativeStickyAssignor` writes and reads from subscriptions before v2).
    fn subscription(&self, protocol: &str, claim: &Claim) -> Result<bytes::Bytes, GroupError> {
        let mut owned: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &claim.partitions {
            owned.entry(&tp.topic).or_default().push(tp.partition);
        }
        Subscription {
            topics: self.cfg.topics.clone(),
            owned_partitions: owned
                .into_iter()
                .map(|(t, partitions)| TopicPartitions {
                    topic: t.to_string(),
                    partitions,
                })
                .collect(),
            generation_id: claim.generation,
            user_data: assignor::is_cooperative(protocol)
                .then(|| bytes::Bytes::copy_from_slice(&claim.generation.to_be_bytes())),
            ..Subscription::default()
        }
        .encode()
        .map_err(|e| GroupError::Fatal(format!("cannot encode the subscription: {e}")))
    }

    /// Joins (or rejoins) the group claiming `claim`, and returns this member's partitions.
    pub(crate) async fn join(&mut self, claim: &Claim) -> Result<Vec<TopicPartition>, GroupError> {
        let conn = self.coordinator().await?;
        let mut protocols: Vec<JoinGroupRequestProtocol> = Vec::new();
        for name in &self.cfg.assignors {
            protocols.push(
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_metadata(self.subscription(name, claim)?),
            );
        }
        let wait = self.cfg.rebalance_timeout + Duration::from_secs(10);
        // KIP-394: the first JoinGroup may answer MEMBER_ID_REQUIRED with our id; ask again.
        // A member id the group forgot (UNKNOWN_MEMBER_ID) is dropped and we ask again at once.
        let mut resp: JoinGroupResponse;
        let mut tries = 0;
        loop {
            tries += 1;
            let protocols = protocols.clone();
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.cfg.group.clone())))
                .with_session_timeout_ms(self.cfg.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(self.cfg.rebalance_timeout.as_millis() as i32)
                .with_member_id(StrBytes::from_string(self.gen.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(protocols);
            let instance = self.cfg.instance_id.clone();
            self.cluster.stats().count(11);
            resp = conn
                .call_with_timeout(
                    move |v| {
                        if v >= 5 {
                            req.with_group_instance_id(instance.map(StrBytes::from_string))
                        } else {
                            req
                        }
                    },
                    wait,
                )
                .await?;
            if resp.error_code == MEMBER_ID_REQUIRED && tries < 3 {
                self.gen.member_id = resp.member_id.clone();
                continue;
            }
            if resp.error_code == UNKNOWN_MEMBER_ID && !self.gen.member_id.is_empty() && tries < 3 {
                self.gen.member_id.clear();
                continue;
            }
            break;
        }
        if let Some(e) = self.classify("JoinGroup", resp.error_code) {
            return Err(e);
        }
        self.gen = Generation {
            member_id: resp.member_id.clone(),
            generation_id: resp.generation_id,
            protocol: resp.protocol_name.clone().unwrap_or_default(),
            leader: resp.leader == resp.member_id,
        };
        let assignments = if self.gen.leader && !resp.skip_assignment {
            self.assign(&resp).await?
        } else {
            Vec::new()
        };
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.cfg.group.clone())))
            .with_generation_id(self.gen.generation_id)
            .with_member_id(StrBytes::from_string(self.gen.member_id.clone()))
            .with_assignments(assignments);
        let instance = self.cfg.instance_id.clone();
        let protocol = self.gen.protocol.clone();
        self.cluster.stats().count(14);
        let sync: SyncGroupResponse = conn
            .call_with_timeout(
                move |v| {
                    let mut req = req;
                    if v >= 3 {
                        req = req.with_group_instance_id(instance.map(StrBytes::from_string));
                    }
                    if v >= 5 {
                        req = req
                            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                            .with_protocol_name(Some(StrBytes::from_string(protocol)));
                    }
                    req
                },
                wait,
            )
            .await?;
        if let Some(e) = self.classify("SyncGroup", sync.error_code) {
            return Err(e);
        }
        if sync.assignment.is_empty() {
            return Ok(Vec::new());
        }
        let assigned = Assignment::decode(&sync.assignment).map_err(|e| {
            GroupError::Fatal(format!(
                "SyncGroup: malformed assignment from the leader: {e}"
            ))
        })?;
        Ok(assigned
            .assigned_partitions
            .into_iter()
            .flat_map(|tps| {
                let topic = tps.topic;
                tps.partitions
                    .into_iter()
                    .map(move |p| TopicPartition::new(topic.clone(), p))
            })
            .collect())
    }

    /// The leader's work: decode every member's subscription and assign partitions.
    async fn assign(
        &self,
        resp: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, GroupError> {
        let mut subs: Vec<assignor::Member> = Vec::new();
        for m in &resp.members {
            let sub = Subscription::decode(&m.metadata).map_err(|e| {
                GroupError::Fatal(format!(
                    "member {} sent a malformed subscription: {e}",
                    m.member_id
                ))
            })?;
            subs.push(assignor::Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                generation: claim_generation(&self.gen.protocol, &sub),
                owned: sub
                    .owned_partitions
                    .iter()
                    .flat_map(|tps| tps.partitions.iter().map(|p| (tps.topic.clone(), *p)))
                    .collect(),
                topics: sub.topics,
            });
        }
        let all: Vec<String> = subs
            .iter()
            .flat_map(|m| m.topics.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let md = self.cluster.refresh_metadata(Some(&all)).await?;
        let counts: BTreeMap<String, i32> = all
            .iter()
            .filter_map(|t| {
                md.topics
                    .get(t)
                    .filter(|m| m.error_code == 0)
                    .map(|m| (t.clone(), m.partitions.len() as i32))
            })
            .collect();
        let plan = assignor::assign(&self.gen.protocol, &subs, &counts)
            .map_err(|e| GroupError::Fatal(e.to_string()))?;
        let assigned: usize = plan
            .values()
            .flat_map(|tps| tps.iter().map(|(_, ps)| ps.len()))
            .sum();
        let withheld = counts
            .values()
            .map(|n| (*n).max(0) as usize)
            .sum::<usize>()
            .saturating_sub(assigned);
        tracing::info!(group = %self.cfg.group, members = subs.len(), protocol = %self.gen.protocol, assigned, withheld, "leader assigned partitions");
        subs.iter()
            .map(|m| {
                let member = &m.member_id;
                let parts = plan.get(member).cloned().unwrap_or_default();
                let blob = Assignment {
                    assigned_partitions: parts
                        .into_iter()
                        .map(|(topic, partitions)| TopicPartitions { topic, partitions })
                        .collect(),
                    ..Assignment::default()
                }
                .encode()
                .map_err(|e| GroupError::Fatal(format!("cannot encode an assignment: {e}")))?;
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(member.clone()))
                    .with_assignment(blob))
            })
            .collect()
    }

    /// One heartbeat; `Rebalance` or `Lost` means join again.
    pub(crate) async fn heartbeat(&mut self) -> Result<(), GroupError> {
        let conn = self.coordinator().await?;
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.cfg.group.clone())))
            .with_generation_id(self.gen.generation_id)
            .with_member_id(StrBytes::from_string(self.gen.member_id.clone()));
        let instance = self.cfg.instance_id.clone();
        let resp: HeartbeatResponse = self
            .cluster
            .call(&conn, move |v| {
                if v >= 3 {
                    req.with_group_instance_id(instance.map(StrBytes::from_string))
                } else {
                    req
                }
            })
            .await?;
        match self.classify("Heartbeat", resp.error_code) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Commits `offsets` for the current generation.
    pub(crate) async fn commit(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), GroupError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, o) in offsets {
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*o),
            );
        }
        let topics: Vec<OffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(ps)
            })
            .collect();
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.cfg.group.clone())))
            .with_generation_id_or_member_epoch(self.gen.generation_id)
            .with_member_id(StrBytes::from_string(self.gen.member_id.clone()))
            .with_topics(topics);
        let instance = self.cfg.instance_id.clone();
        let resp: OffsetCommitResponse = self
            .cluster
            .call(&conn, move |v| {
                if v >= 7 {
                    req.with_group_instance_id(instance.map(StrBytes::from_string))
                } else {
                    req
                }
            })
            .await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if let Some(e) = self.classify("OffsetCommit", p.error_code) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Leaves the group so its partitions move to others at once (best effort).
    pub(crate) async fn leave(&mut self) {
        if self.gen.member_id.is_empty() {
            return;
        }
        let Ok(conn) = self.coordinator().await else {
            return;
        };
        let member_id = self.gen.member_id.clone();
        let instance = self.cfg.instance_id.clone();
        let group = self.cfg.group.clone();
        let resp: Result<LeaveGroupResponse, _> = self
            .cluster
            .call(&conn, move |v| {
                let req = LeaveGroupRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group)));
                if v >= 3 {
                    req.with_members(vec![MemberIdentity::default()
                        .with_member_id(StrBytes::from_string(member_id))
                        .with_group_instance_id(instance.map(StrBytes::from_string))])
                } else {
                    req.with_member_id(StrBytes::from_string(member_id))
                }
            })
            .await;
        match resp {
            Ok(r) if r.error_code == 0 => tracing::info!(group = %self.cfg.group, "left the group"),
            Ok(r) => {
                tracing::warn!(group = %self.cfg.group, error = %error_name(r.error_code), "LeaveGroup failed")
            }
            Err(e) => tracing::warn!(group = %self.cfg.group, error = %e, "LeaveGroup failed"),
        }
        self.gen.member_id.clear();
    }
}

/// The generation of a member's claims: the subscription's own field (v2+); before v2 the
/// cooperative-sticky user data holds it as an int32 (what Java writes); else unknown (-1).
fn claim_generation(protocol: &str, sub: &Subscription) -> i32 {
    if sub.version >= 2 {
        return sub.generation_id;
    }
    match &sub.user_data {
        Some(d) if assignor::is_cooperative(protocol) && d.len() >= 4 => {
            i32::from_be_bytes([d[0], d[1], d[2], d[3]])
        }
        _ => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_generation_from_the_field_or_the_user_data() {
        let sub = |version, generation_id, user_data: Option<&'static [u8]>| Subscription {
            version,
            generation_id,
            user_data: user_data.map(bytes::Bytes::from_static),
            ..Subscription::default()
        };
        let cs = assignor::COOPERATIVE_STICKY;
        assert_eq!(claim_generation(cs, &sub(3, 7, Some(&[0, 0, 0, 9]))), 7);
        assert_eq!(claim_generation(cs, &sub(1, -1, Some(&[0, 0, 1, 2]))), 258);
        assert_eq!(claim_generation(cs, &sub(1, -1, Some(&[0, 1]))), -1);
        assert_eq!(claim_generation(cs, &sub(0, -1, None)), -1);
        assert_eq!(
            claim_generation("range", &sub(1, -1, Some(&[0, 0, 1, 2]))),
            -1
        );
    }
}
