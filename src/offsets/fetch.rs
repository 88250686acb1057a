//! One Fetch to one leader for many partitions at given offsets: the primitive under both the
//! consumer (records) and the observer's long poll (wake-ups and log ends).
//!
//! Fetch v13+ names topics by id, older versions by name; the caller never sees the difference.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition as ReqPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::cluster::Cluster;
use crate::protocol::fetch::{FetchPartition, FetchResponse};
use crate::wire::kafka_error::error_name;
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
    /// The connection lane (see `Cluster::connect_lane`): fetches never share a connection
    /// with short requests, which the broker would answer only after the fetch.
    pub lane: &'static str,
}

/// Why a whole Fetch failed.
#[derive(Debug, Clone)]
pub enum FetchFailure {
    Wire(WireError),
    /// A top-level error code in the answer.
    Broker(String),
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::Wire(e) => e.fmt(f),
            FetchFailure::Broker(m) => f.write_str(m),
        }
    }
}

/// (name, topic id, [(partition, fetch offset)]) of one topic in a Fetch request.
type TopicSpec = (String, [u8; 16], Vec<(i32, i64)>);

/// Fetches `positions` from `leader`; per-partition answers (errors included) keyed by partition.
pub async fn fetch(
    cluster: &Cluster,
    leader: i32,
    positions: &BTreeMap<TopicPartition, i64>,
    opts: FetchOptions,
) -> Result<Vec<(TopicPartition, FetchPartition)>, FetchFailure> {
    let conn = cluster
        .broker_lane(leader, opts.lane)
        .await
        .map_err(FetchFailure::Wire)?;
    let md = cluster.metadata();
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (tp, off) in positions {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push((tp.partition, *off));
    }
    let spec: Vec<TopicSpec> = by_topic
        .iter()
        .map(|(t, ps)| {
            let id = md.topics.get(*t).map(|m| m.topic_id).unwrap_or_default();
            (t.to_string(), id, ps.clone())
        })
        .collect();
    let names_by_id: BTreeMap<[u8; 16], String> =
        spec.iter().map(|(n, id, _)| (*id, n.clone())).collect();
    let timeout = opts.max_wait + Duration::from_secs(30);
    cluster.stats().count(1);
    let resp: FetchResponse = conn
        .call_with_timeout(move |v| request(spec, opts, v), timeout)
        .await
        .map_err(FetchFailure::Wire)?;
    if resp.error_code != 0 {
        return Err(FetchFailure::Broker(format!(
            "Fetch at {}: {}",
            conn.addr(),
            error_name(resp.error_code)
        )));
    }
    let mut out = Vec::new();
    for t in resp.responses {
        let name = if t.name.is_empty() {
            match names_by_id.get(&t.topic_id) {
                Some(n) => n.clone(),
                None => continue,
            }
        } else {
            t.name
        };
        for p in t.partitions {
            let tp = TopicPartition::new(name.clone(), p.partition_index);
            if positions.contains_key(&tp) {
                out.push((tp, p));
            }
        }
    }
    Ok(out)
}

fn request(spec: Vec<TopicSpec>, opts: FetchOptions, v: i16) -> FetchRequest {
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
    if v >= 7 {
        req.with_session_id(0).with_session_epoch(-1)
    } else {
        req
    }
}
