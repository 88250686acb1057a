//! One Fetch to one leader for many partitions at given offsets: the primitive under both the
//! consumer (records) and the observer's long poll (wake-ups and log ends).
//!
//! Fetch v13+ names topics by id, older versions by name; the caller never sees the difference.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{
    FetchPartition as ReqPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::cluster::{Cluster, Lane};
use crate::protocol::error::{code, error_name};
use crate::protocol::fetch::{FetchPartition, FetchResponse};
use crate::wire::WireError;

/// How to fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// How long the broker may hold the request when no data is there (the long poll).
    pub max_wait: Duration,
    /// Bytes per partition; the broker still returns one whole batch if it is larger (KIP-74).
    pub partition_max_bytes: i32,
    pub max_bytes: i32,
    pub read_committed: bool,
    /// The connection lane: fetches never share a connection with short requests, which the
    /// broker would answer only after the fetch.
    pub lane: Lane,
}

/// Why a whole Fetch failed.
#[derive(Debug, Clone)]
pub enum FetchFailure {
    Wire(WireError),
    /// A top-level error code in the answer.
    Broker(String),
    /// The broker refused the fetch session (FETCH_SESSION_ID_NOT_FOUND,
    /// INVALID_FETCH_SESSION_EPOCH).
    Session(i16),
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::Wire(e) => e.fmt(f),
            FetchFailure::Broker(m) => f.write_str(m),
            FetchFailure::Session(c) => write!(f, "Fetch session refused: {}", error_name(*c)),
        }
    }
}

/// A KIP-227 fetch session with one broker. After one full request the broker remembers the
/// partitions and their positions: each later request names only the partitions that moved,
/// were added or are to be forgotten, and each answer carries only the partitions that changed
/// (records, a new high watermark or log start, an error). For the observer's long poll over
/// 10,000 partitions that turns a request and an answer of hundreds of kilobytes per wake-up into
/// a few dozen bytes, on both sides of the wire.
///
/// Anything unexpected — an answer lost to a timeout, FETCH_SESSION_ID_NOT_FOUND after the
/// broker evicted us, INVALID_FETCH_SESSION_EPOCH — falls back to a full request, which also
/// closes the old session on the broker.
#[derive(Debug, Default)]
pub struct FetchSession {
    /// The broker's id for the session; 0 until it gave one (or when it declined).
    id: i32,
    /// Epoch of the next request; 0 = full request.
    epoch: i32,
    /// What the broker holds for us: partition → position.
    held: BTreeMap<TopicPartition, i64>,
}

/// What one Fetch request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub session_id: i32,
    /// 0: full request opening a session; -1: full request without one.
    pub epoch: i32,
    /// Partitions (and positions) written into the request.
    pub send: Vec<(TopicPartition, i64)>,
    /// Partitions the session should drop.
    pub forget: Vec<TopicPartition>,
}

impl Delta {
    /// A classic full request outside any session.
    pub fn sessionless(positions: &BTreeMap<TopicPartition, i64>) -> Delta {
        Delta {
            session_id: 0,
            epoch: -1,
            send: positions.iter().map(|(tp, o)| (tp.clone(), *o)).collect(),
            forget: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.epoch <= 0
    }
}

impl FetchSession {
    /// The request that brings the broker's view to `positions` (pure).
    pub fn delta(&self, positions: &BTreeMap<TopicPartition, i64>) -> Delta {
        if self.epoch == 0 {
            return Delta {
                session_id: self.id,
                epoch: 0,
                send: positions.iter().map(|(tp, o)| (tp.clone(), *o)).collect(),
                forget: Vec::new(),
            };
        }
        Delta {
            session_id: self.id,
            epoch: self.epoch,
            send: positions
                .iter()
                .filter(|(tp, o)| self.held.get(*tp) != Some(*o))
                .map(|(tp, o)| (tp.clone(), *o))
                .collect(),
            forget: self
                .held
                .keys()
                .filter(|tp| !positions.contains_key(*tp))
                .cloned()
                .collect(),
        }
    }

    /// The broker answered the request made by `delta` for `positions`.
    pub fn answered(&mut self, delta: &Delta, positions: BTreeMap<TopicPartition, i64>, id: i32) {
        if delta.full() {
            // A broker that declined (id 0: its session cache is full, or Fetch < v7) is asked
            // again with the next full request.
            self.id = id;
            self.epoch = if id == 0 { 0 } else { 1 };
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        // Kept even without a session: callers read the positions back.
        self.held = positions;
    }

    /// The next request is a full one (it also closes the old session on the broker).
    pub fn reset(&mut self) {
        self.epoch = 0;
        self.held.clear();
    }

    /// Where the last answered request left `tp`.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.held.get(tp).copied()
    }

    /// True while the broker holds a session for us.
    pub fn is_open(&self) -> bool {
        self.epoch > 0
    }

    /// A session at `id` and `epoch` that the broker may no longer know (tests of the reset).
    #[doc(hidden)]
    pub fn resumed(id: i32, epoch: i32) -> Self {
        FetchSession {
            id,
            epoch,
            held: BTreeMap::new(),
        }
    }
}

/// (name, topic id, [(partition, fetch offset)]) of one topic in a Fetch request.
type TopicSpec = (String, [u8; 16], Vec<(i32, i64)>);
/// (name, topic id, \[partition\]) of one topic to forget.
type ForgetSpec = (String, [u8; 16], Vec<i32>);

/// Fetches `positions` from `leader`; per-partition answers (errors included) keyed by partition.
pub async fn fetch(
    cluster: &Cluster,
    leader: i32,
    positions: &BTreeMap<TopicPartition, i64>,
    opts: FetchOptions,
) -> Result<Vec<(TopicPartition, FetchPartition)>, FetchFailure> {
    let delta = Delta::sessionless(positions);
    let (answers, _) = fetch_delta(cluster, leader, positions, &delta, opts).await?;
    Ok(answers)
}

/// Like [`fetch`], inside `session`: only the changes go out, only the changed partitions come
/// back (partitions absent from the answer are as they were). The session keeps `positions`
/// (see [`FetchSession::position`]).
pub async fn fetch_in_session(
    cluster: &Cluster,
    leader: i32,
    positions: BTreeMap<TopicPartition, i64>,
    opts: FetchOptions,
    session: &mut FetchSession,
) -> Result<Vec<(TopicPartition, FetchPartition)>, FetchFailure> {
    for _ in 0..2 {
        let delta = session.delta(&positions);
        match fetch_delta(cluster, leader, &positions, &delta, opts).await {
            Ok((answers, id)) => {
                session.answered(&delta, positions, id);
                return Ok(answers);
            }
            // The broker forgot the session or lost count: start a new one at once.
            Err(FetchFailure::Session(code)) if !delta.full() => {
                tracing::debug!(leader, error = error_name(code), "fetch session reset");
                session.reset();
            }
            Err(e) => {
                // Whether the broker saw the request is unknown: the next one is full.
                session.reset();
                return Err(e);
            }
        }
    }
    Err(FetchFailure::Broker(format!(
        "Fetch to node {leader}: fetch session refused twice"
    )))
}

async fn fetch_delta(
    cluster: &Cluster,
    leader: i32,
    positions: &BTreeMap<TopicPartition, i64>,
    delta: &Delta,
    opts: FetchOptions,
) -> Result<(Vec<(TopicPartition, FetchPartition)>, i32), FetchFailure> {
    let conn = cluster
        .broker_lane(leader, opts.lane)
        .await
        .map_err(FetchFailure::Wire)?;
    let md = cluster.metadata();
    let id_of = |t: &str| md.topics.get(t).map(|m| m.topic_id).unwrap_or_default();
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (tp, off) in &delta.send {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push((tp.partition, *off));
    }
    let spec: Vec<TopicSpec> = by_topic
        .into_iter()
        .map(|(t, ps)| (t.to_string(), id_of(t), ps))
        .collect();
    let mut forget_by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in &delta.forget {
        forget_by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition);
    }
    let forget: Vec<ForgetSpec> = forget_by_topic
        .into_iter()
        .map(|(t, ps)| (t.to_string(), id_of(t), ps))
        .collect();
    // Answers name v13+ topics by id only, and a session answers for every partition it holds.
    let mut names_by_id: BTreeMap<[u8; 16], &str> = BTreeMap::new();
    let mut last = "";
    for tp in positions.keys() {
        if *tp.topic != *last {
            last = &tp.topic;
            names_by_id.insert(id_of(last), last);
        }
    }
    let timeout = opts.max_wait + Duration::from_secs(30);
    let session = (delta.session_id, delta.epoch);
    cluster.stats().count(crate::protocol::api::FETCH);
    let resp: FetchResponse = conn
        .call_with_timeout(move |v| request(spec, forget, session, opts, v), timeout)
        .await
        .map_err(FetchFailure::Wire)?;
    match resp.error_code {
        0 => {}
        c @ (code::FETCH_SESSION_ID_NOT_FOUND | code::INVALID_FETCH_SESSION_EPOCH) => {
            return Err(FetchFailure::Session(c))
        }
        c => {
            return Err(FetchFailure::Broker(format!(
                "Fetch at {}: {}",
                conn.addr(),
                error_name(c)
            )))
        }
    }
    let mut out = Vec::new();
    for t in resp.responses {
        let name: std::sync::Arc<str> = if t.name.is_empty() {
            match names_by_id.get(&t.topic_id) {
                Some(n) => (*n).into(),
                None => continue,
            }
        } else {
            t.name.into()
        };
        for p in t.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            if positions.contains_key(&tp) {
                out.push((tp, p));
            }
        }
    }
    Ok((out, resp.session_id))
}

fn request(
    spec: Vec<TopicSpec>,
    forget: Vec<ForgetSpec>,
    (session_id, epoch): (i32, i32),
    opts: FetchOptions,
    v: i16,
) -> FetchRequest {
    let topics = spec
        .into_iter()
        .map(|(name, id, parts)| {
            let t = if v >= 13 {
                FetchTopic::default().with_topic_id(uuid::Uuid::from_bytes(id))
            } else {
                FetchTopic::default().with_topic(TopicName(StrBytes::from_string(name)))
            };
            t.with_partitions(
                parts
                    .into_iter()
                    .map(|(p, off)| {
                        ReqPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(off)
                            .with_partition_max_bytes(opts.partition_max_bytes)
                    })
                    .collect(),
            )
        })
        .collect();
    let req = FetchRequest::default()
        .with_max_wait_ms(opts.max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(1)
        .with_max_bytes(opts.max_bytes)
        .with_isolation_level(i8::from(opts.read_committed))
        .with_topics(topics);
    let req = if v < 15 {
        req.with_replica_id(BrokerId(-1))
    } else {
        req
    };
    if v < 7 {
        // No sessions before v7: the broker answers with session id 0, so every request is full.
        return req;
    }
    let forgotten = forget
        .into_iter()
        .map(|(name, id, parts)| {
            let f = if v >= 13 {
                ForgottenTopic::default().with_topic_id(uuid::Uuid::from_bytes(id))
            } else {
                ForgottenTopic::default().with_topic(TopicName(StrBytes::from_string(name)))
            };
            f.with_partitions(parts)
        })
        .collect();
    req.with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_forgotten_topics_data(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(list: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        list.iter()
            .map(|(t, p, o)| (TopicPartition::new(*t, *p), *o))
            .collect()
    }

    fn tps(list: &[(&str, i32)]) -> Vec<TopicPartition> {
        list.iter()
            .map(|(t, p)| TopicPartition::new(*t, *p))
            .collect()
    }

    /// Each step: positions asked, what the request must send and forget, the session id the
    /// broker answers with (None: the request failed), and the epoch the request carried.
    #[test]
    fn session_deltas() {
        type Step<'a> = (
            &'a [(&'a str, i32, i64)],
            &'a [(&'a str, i32)],
            &'a [(&'a str, i32)],
            Option<i32>,
            (i32, i32),
        );
        #[rustfmt::skip]
        let steps: &[Step] = &[
            // Full request opens a session.
            (&[("a", 0, 5), ("a", 1, 7), ("b", 0, 1)], &[("a", 0), ("a", 1), ("b", 0)], &[], Some(42), (0, 0)),
            // Nothing moved: an empty incremental request.
            (&[("a", 0, 5), ("a", 1, 7), ("b", 0, 1)], &[], &[], Some(42), (42, 1)),
            // One moved, one left, one joined.
            (&[("a", 0, 6), ("b", 0, 1), ("c", 3, 0)], &[("a", 0), ("c", 3)], &[("a", 1)], Some(42), (42, 2)),
            // Lost answer: the next request is full again, closing session 42.
            (&[("a", 0, 6)], &[], &[("b", 0), ("c", 3)], None, (42, 3)),
            (&[("a", 0, 6)], &[("a", 0)], &[], Some(43), (42, 0)),
            (&[("a", 0, 6)], &[], &[], Some(43), (43, 1)),
        ];
        let mut s = FetchSession::default();
        for (i, (p, send, forget, answer, ids)) in steps.iter().enumerate() {
            let positions = pos(p);
            let d = s.delta(&positions);
            let sent: Vec<TopicPartition> = d.send.iter().map(|(tp, _)| tp.clone()).collect();
            assert_eq!(sent, tps(send), "step {i}: sent");
            assert_eq!(d.forget, tps(forget), "step {i}: forgotten");
            assert_eq!(
                (d.session_id, d.epoch),
                *ids,
                "step {i}: session id and epoch"
            );
            for (tp, off) in &d.send {
                assert_eq!(positions[tp], *off, "step {i}: {tp} position");
            }
            match answer {
                Some(id) => s.answered(&d, positions.clone(), *id),
                None => s.reset(),
            }
        }
        assert!(s.is_open());
    }

    #[test]
    fn a_broker_that_declines_gets_full_requests() {
        let mut s = FetchSession::default();
        let positions = pos(&[("a", 0, 1)]);
        for _ in 0..3 {
            let d = s.delta(&positions);
            assert_eq!((d.session_id, d.epoch, d.send.len()), (0, 0, 1));
            s.answered(&d, positions.clone(), 0);
            assert!(!s.is_open());
        }
    }

    #[test]
    fn epochs_wrap_to_one() {
        let mut s = FetchSession {
            id: 9,
            epoch: i32::MAX,
            held: BTreeMap::new(),
        };
        let positions = pos(&[("a", 0, 1)]);
        let d = s.delta(&positions);
        assert_eq!(d.epoch, i32::MAX);
        s.answered(&d, positions.clone(), 9);
        assert_eq!(s.delta(&positions).epoch, 1);
    }

    #[test]
    fn sessionless_requests_send_everything() {
        let positions = pos(&[("a", 0, 1), ("b", 2, 3)]);
        let d = Delta::sessionless(&positions);
        assert_eq!((d.session_id, d.epoch, d.send.len()), (0, -1, 2));
        assert!(d.full());
    }
}
