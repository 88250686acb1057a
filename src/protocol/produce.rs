//! Produce (key 0), versions 3..=12 (flexible from 9), and the request that carries our batches.
//!
//! v3 is the first version with record batches (message format v2) and a transactional id, and
//! Kafka 4.x refuses anything older (it advertises 0 but rejects 0–2: research, the broker).
//! v13 names topics by id; nothing here needs it, so the range stops at 12, which every broker
//! from 2.x to 4.x speaks. The request is built with kafka-protocol around batch bytes we
//! encoded ourselves (`records::encode`); acks are always -1 (all in-sync replicas), which the
//! idempotent producer requires.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::reader::{DecodeResult, Reader};
use super::Response;

/// One partition's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducePartition {
    pub index: i32,
    pub error_code: i16,
    /// Offset of the first record of the batch written (-1 on error).
    pub base_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    /// -1 before v5.
    pub log_start_offset: i64,
    /// v8+: the records the broker refused, by index in the batch.
    pub record_errors: Vec<(i32, Option<String>)>,
    /// v8+.
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    pub topics: Vec<ProduceTopic>,
    pub throttle_time_ms: i32,
}

impl Response for ProduceResponse {
    const NAME: &'static str = "Produce";
    const API_KEY: i16 = 0;
    const VERSIONS: (i16, i16) = (3, 12);
    const FIRST_FLEXIBLE: i16 = 9;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let topics = r.flex_array("responses", flex, |r| {
            let name = r.flex_string("name", flex)?;
            let partitions = r.flex_array("partition_responses", flex, |r| {
                let index = r.i32("index")?;
                let error_code = r.i16("error_code")?;
                let base_offset = r.i64("base_offset")?;
                let log_append_time_ms = r.i64("log_append_time_ms")?;
                let log_start_offset = if version >= 5 {
                    r.i64("log_start_offset")?
                } else {
                    -1
                };
                let (record_errors, error_message) = if version >= 8 {
                    let errors = r.flex_array("record_errors", flex, |r| {
                        let i = r.i32("batch_index")?;
                        let m = r.flex_nullable_string("batch_index_error_message", flex)?;
                        r.tagged_fields(flex)?;
                        Ok((i, m))
                    })?;
                    (errors, r.flex_nullable_string("error_message", flex)?)
                } else {
                    (Vec::new(), None)
                };
                // v10+ may carry the new leader as tagged field 0: metadata tells us as well.
                r.tagged_fields(flex)?;
                Ok(ProducePartition {
                    index,
                    error_code,
                    base_offset,
                    log_append_time_ms,
                    log_start_offset,
                    record_errors,
                    error_message,
                })
            })?;
            r.tagged_fields(flex)?;
            Ok(ProduceTopic { name, partitions })
        })?;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        r.tagged_fields(flex)?;
        Ok(Self {
            topics,
            throttle_time_ms,
        })
    }
}

/// A Produce request with acks=all: one batch per (topic, partition), in the order given.
pub fn request(batches: &[(&str, i32, Bytes)], timeout_ms: i32) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, batch) in batches {
        let data = PartitionProduceData::default()
            .with_index(*partition)
            .with_records(Some(batch.clone()));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{assert_count_bomb, encode, exercise};
    use kafka_protocol::messages::produce_response as kp;
    use kafka_protocol::messages::ProduceResponse as KpResponse;
    use kafka_protocol::protocol::{Decodable, Encodable};

    fn sample(version: i16, endpoints: bool) -> KpResponse {
        let part = |i: i32| {
            let mut p = kp::PartitionProduceResponse::default()
                .with_index(i)
                .with_error_code(if i == 1 { 6 } else { 0 })
                .with_base_offset(if i == 1 { -1 } else { 1_000_000 + i64::from(i) })
                .with_log_append_time_ms(-1);
            if version >= 5 {
                p = p.with_log_start_offset(7);
            }
            if version >= 8 {
                p = p
                    .with_record_errors(vec![kp::BatchIndexAndErrorMessage::default()
                        .with_batch_index(3)
                        .with_batch_index_error_message(Some(StrBytes::from_static_str("bad")))])
                    .with_error_message(Some(StrBytes::from_static_str("why")));
            }
            if version >= 10 {
                p = p.with_current_leader(
                    kp::LeaderIdAndEpoch::default()
                        .with_leader_id(kafka_protocol::messages::BrokerId(2))
                        .with_leader_epoch(9),
                );
            }
            p
        };
        let topic = |name: &'static str, n: i32| {
            kp::TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_partition_responses((0..n).map(part).collect())
        };
        let mut m = KpResponse::default()
            .with_responses(vec![topic("orders", 2), topic("payments", 3)])
            .with_throttle_time_ms(11);
        if version >= 10 && endpoints {
            m = m.with_node_endpoints(vec![kp::NodeEndpoint::default()
                .with_node_id(kafka_protocol::messages::BrokerId(2))
                .with_host(StrBytes::from_static_str("b2"))
                .with_port(9092)]);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 3..=12 {
            // Top-level tagged node endpoints (v10+) are skipped, like any tagged field.
            let with_endpoints = encode(&sample(v, true), v);
            let ours: ProduceResponse = decode_body(&with_endpoints, v).unwrap();
            assert_eq!(ours, decode_body(&encode(&sample(v, false), v), v).unwrap());
            let body = encode(&sample(v, false), v);
            assert_eq!(ours.throttle_time_ms, 11);
            assert_eq!(ours.topics.len(), 2);
            assert_eq!(ours.topics[1].name, "payments");
            let p = &ours.topics[1].partitions;
            assert_eq!(p.len(), 3);
            assert_eq!(
                (p[0].index, p[0].error_code, p[0].base_offset),
                (0, 0, 1_000_000)
            );
            assert_eq!((p[1].error_code, p[1].base_offset), (6, -1));
            assert_eq!(p[2].log_start_offset, if v >= 5 { 7 } else { -1 });
            if v >= 8 {
                assert_eq!(p[0].record_errors, vec![(3, Some("bad".to_string()))]);
                assert_eq!(p[0].error_message.as_deref(), Some("why"));
            }
            exercise::<ProduceResponse>(v, &body, 3);
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<ProduceResponse>(3, &[]);
        assert_count_bomb::<ProduceResponse>(12, &[]);
        // responses[0].partition_responses
        assert_count_bomb::<ProduceResponse>(12, &[2, 2, b'x']);
    }

    #[test]
    fn the_request_groups_partitions_by_topic_and_asks_for_all_acks() {
        let b = |n: u8| Bytes::from(vec![n; 4]);
        let req = request(&[("a", 0, b(1)), ("b", 2, b(2)), ("a", 1, b(3))], 25_000);
        assert_eq!(req.acks, -1);
        assert_eq!(req.timeout_ms, 25_000);
        assert_eq!(req.transactional_id, None);
        assert_eq!(req.topic_data.len(), 2);
        let a = &req.topic_data[0];
        assert_eq!(a.name.0.as_str(), "a");
        let parts: Vec<(i32, Option<Bytes>)> = a
            .partition_data
            .iter()
            .map(|p| (p.index, p.records.clone()))
            .collect();
        assert_eq!(parts, vec![(0, Some(b(1))), (1, Some(b(3)))]);
        // It encodes and decodes at the oldest and newest version we use.
        for v in [3, 12] {
            let mut buf = bytes::BytesMut::new();
            req.encode(&mut buf, v).unwrap();
            let back = ProduceRequest::decode(&mut buf.freeze(), v).unwrap();
            assert_eq!(back.topic_data.len(), 2, "v{v}");
        }
    }
}
