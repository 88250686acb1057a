//! The metadata cache: brokers, topics, partition leaders.
//!
//! Answers are merged rather than replaced, because a refresh usually covers only the topics that
//! needed it; a full refresh (all topics) also forgets topics that no longer exist.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

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
}

impl Metadata {
    /// This cache updated with `resp`. `full` means `resp` lists every topic of the cluster.
    pub fn merged(&self, resp: MetadataResponse, full: bool) -> Metadata {
        let mut next = self.clone();
        if full {
            next.topics.clear();
        }
        if !resp.brokers.is_empty() {
            next.brokers = resp
                .brokers
                .into_iter()
                .map(|b| {
                    (
                        b.node_id,
                        BrokerAddr {
                            host: b.host,
                            port: b.port as u16,
                        },
                    )
                })
                .collect();
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
            next.brokers.entry(id).or_insert(BrokerAddr {
                host,
                port: port as u16,
            });
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
pub fn request(topics: Option<&[String]>, version: i16) -> MetadataRequest {
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
