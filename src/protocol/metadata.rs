//! Metadata (key 3), versions 1..=12 (flexible from 9). v13 (Kafka 4.0+) only adds a top-level
//! error code; its decoding is implemented and tested but not enabled in `VERSIONS`.

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataBroker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataPartition {
    pub error_code: i16,
    pub partition_index: i32,
    pub leader_id: i32,
    /// -1 before v7.
    pub leader_epoch: i32,
    pub replica_nodes: Vec<i32>,
    pub isr_nodes: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataTopic {
    pub error_code: i16,
    /// Null only when the request asked by topic id (v12+) and the id is unknown.
    pub name: Option<String>,
    /// All zero before v10.
    pub topic_id: [u8; 16],
    pub is_internal: bool,
    pub partitions: Vec<MetadataPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataResponse {
    /// 0 before v3.
    pub throttle_time_ms: i32,
    pub brokers: Vec<MetadataBroker>,
    /// None before v2.
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub topics: Vec<MetadataTopic>,
    /// Top-level error, v13+ only (e.g. REBOOTSTRAP_REQUIRED); always 0 at the enabled versions.
    pub error_code: i16,
}

fn node_ids(r: &mut Reader<'_>, field: &str, flex: bool) -> DecodeResult<Vec<i32>> {
    r.flex_array(field, flex, |r| r.i32(""))
}

impl MetadataBroker {
    fn decode(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<Self> {
        let node_id = r.i32("node_id")?;
        let host = r.flex_string("host", flex)?;
        let port = r.i32("port")?;
        let rack = if version >= 1 {
            r.flex_nullable_string("rack", flex)?
        } else {
            None
        };
        r.tagged_fields(flex)?;
        Ok(Self {
            node_id,
            host,
            port,
            rack,
        })
    }
}

impl MetadataPartition {
    fn decode(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<Self> {
        let error_code = r.i16("error_code")?;
        let partition_index = r.i32("partition_index")?;
        let leader_id = r.i32("leader_id")?;
        let leader_epoch = if version >= 7 {
            r.i32("leader_epoch")?
        } else {
            -1
        };
        let replica_nodes = node_ids(r, "replica_nodes", flex)?;
        let isr_nodes = node_ids(r, "isr_nodes", flex)?;
        if version >= 5 {
            r.flex_array("offline_replicas", flex, |r| r.i32("").map(drop))?;
        }
        r.tagged_fields(flex)?;
        Ok(Self {
            error_code,
            partition_index,
            leader_id,
            leader_epoch,
            replica_nodes,
            isr_nodes,
        })
    }
}

impl MetadataTopic {
    fn decode(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<Self> {
        let error_code = r.i16("error_code")?;
        let name = r.flex_nullable_string("name", flex)?;
        let topic_id = if version >= 10 {
            r.uuid("topic_id")?
        } else {
            [0; 16]
        };
        let is_internal = version >= 1 && r.bool("is_internal")?;
        let partitions = r.flex_array("partitions", flex, |r| {
            MetadataPartition::decode(r, version, flex)
        })?;
        if version >= 8 {
            r.i32("topic_authorized_operations")?;
        }
        r.tagged_fields(flex)?;
        Ok(Self {
            error_code,
            name,
            topic_id,
            is_internal,
            partitions,
        })
    }
}

impl Response for MetadataResponse {
    const NAME: &'static str = "Metadata";
    const API_KEY: i16 = super::api::METADATA;
    const VERSIONS: (i16, i16) = (1, 12);
    const FIRST_FLEXIBLE: i16 = 9;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let brokers = r.flex_array("brokers", flex, |r| {
            MetadataBroker::decode(r, version, flex)
        })?;
        let cluster_id = if version >= 2 {
            r.flex_nullable_string("cluster_id", flex)?
        } else {
            None
        };
        let controller_id = if version >= 1 {
            r.i32("controller_id")?
        } else {
            -1
        };
        let topics = r.flex_array("topics", flex, |r| MetadataTopic::decode(r, version, flex))?;
        if (8..=10).contains(&version) {
            r.i32("cluster_authorized_operations")?;
        }
        let error_code = if version >= 13 {
            r.i16("error_code")?
        } else {
            0
        };
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            brokers,
            cluster_id,
            controller_id,
            topics,
            error_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{
        assert_count_bomb, assert_string_bomb, decode_unchecked, encode, exercise,
    };
    use crate::protocol::{decode_body, DecodeErrorKind};
    use kafka_protocol::messages::metadata_response as kp;
    use kafka_protocol::messages::{BrokerId, MetadataResponse as KpResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn partition(version: i16, index: i32, leader: i32) -> kp::MetadataResponsePartition {
        let mut p = kp::MetadataResponsePartition::default()
            .with_error_code(if index == 1 { 9 } else { 0 })
            .with_partition_index(index)
            .with_leader_id(BrokerId(leader))
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2), BrokerId(3)])
            .with_isr_nodes(vec![BrokerId(leader)]);
        if version >= 7 {
            p = p.with_leader_epoch(5 + index);
        }
        if version >= 5 {
            p = p.with_offline_replicas(vec![BrokerId(3)]);
        }
        p
    }

    /// A topic whose id is 01 02 .. 10 (the uuid crate is not a dependency of ours, so the id
    /// comes from kafka-protocol decoding a valid encoding).
    fn topic_with_id() -> kp::MetadataResponseTopic {
        let t = kp::MetadataResponseTopic::default().with_name(Some(TopicName(s("x"))));
        let mut b = encode(&t, 10);
        for i in 0..16 {
            b[4 + i] = i as u8 + 1;
        }
        kp::MetadataResponseTopic::decode(&mut bytes::Bytes::from(b), 10).unwrap()
    }

    fn sample(version: i16) -> KpResponse {
        let topic_id = topic_with_id().topic_id;
        let mut topics = Vec::new();
        for (i, name) in [
            (0, Some("orders")),
            (1, Some("__consumer_offsets")),
            (2, None),
        ] {
            if name.is_none() && version < 12 {
                continue;
            }
            let mut t = kp::MetadataResponseTopic::default()
                .with_error_code(if name.is_none() { 100 } else { 0 })
                .with_name(name.map(|n| TopicName(s(n))))
                .with_partitions(if i == 2 {
                    vec![]
                } else {
                    vec![partition(version, 0, 1), partition(version, 1, 2)]
                });
            if version >= 1 {
                t = t.with_is_internal(i == 1);
            }
            if version >= 10 && i == 0 {
                t = t.with_topic_id(topic_id);
            }
            if version >= 8 {
                t = t.with_topic_authorized_operations(0x0ff8);
            }
            topics.push(t);
        }
        let mut brokers = vec![
            kp::MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(s("b1.example"))
                .with_port(9092),
            kp::MetadataResponseBroker::default()
                .with_node_id(BrokerId(2))
                .with_host(s("b2.example"))
                .with_port(9093),
        ];
        if version >= 1 {
            brokers[1].rack = Some(s("rack-b"));
        }
        let mut m = KpResponse::default()
            .with_brokers(brokers)
            .with_topics(topics);
        if version >= 1 {
            m = m.with_controller_id(BrokerId(2));
        }
        if version >= 2 {
            m = m.with_cluster_id(Some(s("cluster-xyz")));
        }
        if version >= 3 {
            m = m.with_throttle_time_ms(11);
        }
        if (8..=10).contains(&version) {
            m = m.with_cluster_authorized_operations(0x0ff0);
        }
        if version >= 13 {
            m = m.with_error_code(74);
        }
        m
    }

    fn compare(ours: &MetadataResponse, theirs: &KpResponse, v: i16) {
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
        assert_eq!(ours.cluster_id.as_deref(), theirs.cluster_id.as_deref());
        assert_eq!(ours.controller_id, theirs.controller_id.0);
        assert_eq!(ours.error_code, theirs.error_code);
        assert_eq!(ours.brokers.len(), theirs.brokers.len());
        for (o, t) in ours.brokers.iter().zip(&theirs.brokers) {
            assert_eq!(o.node_id, t.node_id.0);
            assert_eq!(o.host, t.host.as_str());
            assert_eq!(o.port, t.port);
            assert_eq!(o.rack.as_deref(), t.rack.as_deref());
        }
        assert_eq!(ours.topics.len(), theirs.topics.len(), "v{v}");
        for (o, t) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(o.error_code, t.error_code);
            assert_eq!(o.name.as_deref(), t.name.as_ref().map(|n| n.0.as_str()));
            assert_eq!(&o.topic_id, t.topic_id.as_bytes());
            assert_eq!(o.is_internal, t.is_internal);
            assert_eq!(o.partitions.len(), t.partitions.len());
            for (op, tp) in o.partitions.iter().zip(&t.partitions) {
                assert_eq!(op.error_code, tp.error_code);
                assert_eq!(op.partition_index, tp.partition_index);
                assert_eq!(op.leader_id, tp.leader_id.0);
                assert_eq!(op.leader_epoch, tp.leader_epoch);
                assert_eq!(
                    op.replica_nodes,
                    tp.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>()
                );
                assert_eq!(
                    op.isr_nodes,
                    tp.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn round_trip_every_version() {
        for v in 1..=13 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: MetadataResponse = if v <= 12 {
                decode_body(&body, v).unwrap()
            } else {
                decode_unchecked(&body, v)
            };
            compare(&ours, &theirs, v);
            assert_eq!(
                ours.topics[0].partitions[1].leader_epoch,
                if v >= 7 { 6 } else { -1 }
            );
            assert_eq!(ours.topics[0].topic_id[0], if v >= 10 { 1 } else { 0 });
            if v <= 12 {
                exercise::<MetadataResponse>(v, &body, 3);
            }
        }
    }

    /// kafka-protocol's own decoder, fed only our valid encodings (never hostile bytes: those
    /// can abort the process), agrees with the sample: the fixtures are sound.
    #[test]
    fn kafka_protocol_decodes_the_fixtures() {
        for v in 1..=13 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let back = KpResponse::decode(&mut bytes::Bytes::from(body), v).unwrap();
            assert_eq!(back, theirs, "v{v}");
        }
    }

    #[test]
    fn hostile_counts_and_lengths() {
        // v1: brokers count first.
        assert_count_bomb::<MetadataResponse>(1, &[]);
        // v3..8: throttle, then brokers.
        assert_count_bomb::<MetadataResponse>(3, &[0; 4]);
        // v12: throttle, compact brokers.
        assert_count_bomb::<MetadataResponse>(12, &[0; 4]);
        // v12: broker[0] host length.
        assert_string_bomb::<MetadataResponse>(12, &[0, 0, 0, 0, 2, 0, 0, 0, 1]);
        // The example from the pitfall: 14 bytes claiming 2^31-1 brokers.
        let bomb = [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0];
        let e = decode_body::<MetadataResponse>(&bomb, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Metadata v3: brokers: count 2147483647 exceeds 6 remaining bytes"
        );
    }

    #[test]
    fn error_path_names_the_nested_field() {
        // v12: no brokers, null cluster id, controller 1, one topic whose partitions count is huge.
        let mut body = vec![0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2];
        body.extend_from_slice(&[0, 0, 2, b'a']); // error_code, name "a"
        body.extend_from_slice(&[0; 16]); // topic_id
        body.push(0); // is_internal
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]); // partitions: count 2147483646
        body.extend_from_slice(&[0; 9]);
        let e = decode_body::<MetadataResponse>(&body, 12).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Metadata v12: topics[0].partitions: count 2147483646 exceeds 9 remaining bytes"
        );
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthExceedsRemaining { what: "count", .. }
        ));
    }
}
