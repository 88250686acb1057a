//! The metadata cache: brokers, topics, partition leaders.
//!
//! Answers are merged rather than replaced, because a refresh usually covers only the topics that
//! needed it; a full refresh (all topics) also forgets topics that no longer exist.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::AdvertisedError;
use crate::config::brokers::BrokerAddr;
use crate::protocol::metadata::MetadataResponse;

/// What the cluster said about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    pub leader: i32,
    pub leader_epoch: i32,
    pub error_code: i16,
}

/// What the cluster said about one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicMeta {
    pub error_code: i16,
    pub topic_id: [u8; 16],
    pub is_internal: bool,
    pub partitions: BTreeMap<i32, PartitionMeta>,
}

/// A snapshot of cluster metadata.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub brokers: HashMap<i32, BrokerAddr>,
    pub topics: BTreeMap<String, TopicMeta>,
    pub cluster_id: Option<String>,
    /// Brokers the cluster named with an address no connection can use, and why: a request
    /// routed to one fails with that reason instead of going to a truncated port.
    pub unusable: HashMap<i32, AdvertisedError>,
}

/// The address a broker advertised, if it is one: a port from the wire is an `i32` and only
/// 1..=65535 is a TCP port (a cast would turn 112877 into 47341 and connect elsewhere).
pub(super) fn broker_addr(
    node_id: i32,
    host: &str,
    port: i32,
) -> Result<BrokerAddr, AdvertisedError> {
    if host.is_empty() {
        return Err(AdvertisedError::NoHost { node_id });
    }
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(BrokerAddr {
            host: host.to_string(),
            port: p,
        }),
        _ => Err(AdvertisedError::NotAPort {
            node_id,
            host: host.to_string(),
            port,
        }),
    }
}

impl Metadata {
    /// This cache updated with `resp`. `full` means `resp` lists every topic of the cluster.
    pub fn merged(&self, resp: MetadataResponse, full: bool) -> Metadata {
        let mut next = self.clone();
        if full {
            next.topics.clear();
        }
        if !resp.brokers.is_empty() {
            next.brokers.clear();
            next.unusable.clear();
            for b in resp.brokers {
                match broker_addr(b.node_id, &b.host, b.port) {
                    Ok(addr) => {
                        next.brokers.insert(b.node_id, addr);
                    }
                    Err(why) => {
                        tracing::warn!("{why}; requests for it fail until it is fixed");
                        next.unusable.insert(b.node_id, why);
                    }
                }
            }
        }
        if resp.cluster_id.is_some() {
            next.cluster_id = resp.cluster_id;
        }
        for t in resp.topics {
            let Some(name) = t.name else { continue };
            let meta = TopicMeta {
                error_code: t.error_code,
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        (
                            p.partition_index,
                            PartitionMeta {
                                leader: p.leader_id,
                                leader_epoch: p.leader_epoch,
                                error_code: p.error_code,
                            },
                        )
                    })
                    .collect(),
            };
            next.topics.insert(name, meta);
        }
        next
    }

    /// This cache with extra brokers learned elsewhere (FindCoordinator answers).
    pub fn with_brokers(&self, brokers: Vec<(i32, String, i32)>) -> Metadata {
        let mut next = self.clone();
        for (id, host, port) in brokers {
            if next.brokers.contains_key(&id) {
                continue;
            }
            match broker_addr(id, &host, port) {
                Ok(addr) => {
                    next.brokers.insert(id, addr);
                }
                Err(why) => {
                    next.unusable.entry(id).or_insert(why);
                }
            }
        }
        next
    }

    /// The leader of a partition, if known and healthy.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics
            .get(topic)
            .and_then(|t| t.partitions.get(&partition))
            .filter(|p| p.leader >= 0)
            .map(|p| p.leader)
    }
}

/// A Metadata request for `topics`, or for every topic when `None`.
pub(super) fn request(topics: Option<&[String]>, version: i16) -> MetadataRequest {
    let list = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
            })
            .collect()
    });
    let req = MetadataRequest::default().with_topics(list);
    if version >= 4 {
        req.with_allow_auto_topic_creation(false)
    } else {
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::metadata::MetadataBroker;

    #[test]
    fn advertised_ports_are_checked_not_truncated() {
        let cases: &[(i32, &str, Option<u16>, &str)] = &[
            (9092, "b1", Some(9092), ""),
            (1, "b1", Some(1), ""),
            (65535, "b1", Some(65535), ""),
            (65536, "b1", None, "65536 is not a TCP port"),
            (112_877, "b1", None, "112877 is not a TCP port"),
            (0, "b1", None, "0 is not a TCP port"),
            (-1, "b1", None, "-1 is not a TCP port"),
            (i32::MIN, "b1", None, "not a TCP port"),
            (9092, "", None, "without a host name"),
        ];
        for (port, host, want, msg) in cases {
            match (broker_addr(7, host, *port), want) {
                (Ok(a), Some(p)) => assert_eq!(a.port, *p),
                (Err(e), None) => {
                    let e = e.to_string();
                    assert!(e.contains(msg) && e.contains("broker 7"), "{port}: {e}")
                }
                (got, _) => panic!("{port}: {got:?}"),
            }
        }
    }

    #[test]
    fn an_unusable_broker_is_remembered_with_its_reason() {
        let resp = MetadataResponse {
            brokers: vec![
                MetadataBroker {
                    node_id: 1,
                    host: "b1".into(),
                    port: 112_877,
                    ..MetadataBroker::default()
                },
                MetadataBroker {
                    node_id: 2,
                    host: "b2".into(),
                    port: 9092,
                    ..MetadataBroker::default()
                },
            ],
            ..MetadataResponse::default()
        };
        let md = Metadata::default().merged(resp, true);
        assert!(!md.brokers.contains_key(&1));
        assert_eq!(md.brokers[&2].port, 9092);
        assert!(md.unusable[&1].to_string().contains("112877"));
        let md = md.with_brokers(vec![(3, "b3".into(), 70_000), (4, "b4".into(), 9094)]);
        assert!(md.unusable[&3].to_string().contains("70000"));
        assert_eq!(md.brokers[&4].port, 9094);
    }
}
