//! Fetch (key 1), versions 4..=17 (flexible from 12; v13+ names topics by id only).
//!
//! `records` is handed out as a zero-copy slice of the response frame when decoded with
//! [`super::decode_body_bytes`]: a Fetch frame is usually the biggest thing the consumer holds,
//! and copying it per partition would double the peak memory. Record batches inside are decoded
//! separately by [`super::records`] (which also enforces the decompression cap).
//!
//! Tagged fields: per partition `current_leader` (tag 1) is decoded (it says where to go after
//! NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH, KIP-951); `diverging_epoch` (0) and
//! `snapshot_id` (2) concern followers and KRaft replicas and are skipped. At the top level
//! `node_endpoints` (tag 0, v16+) is decoded. A known tagged field must fill exactly the size
//! its header declares.

use bytes::Bytes;

use super::reader::{DecodeError, DecodeErrorKind, DecodeResult, Reader};
use super::Response;

/// A producer's aborted transaction overlapping the fetched range (read_committed fetches):
/// the producer's transactional records from `first_offset` up to its next ABORT marker are
/// aborted. Consumed by [`super::records::visible_records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// Leader hint sent with NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH (v12+ tagged field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CurrentLeader {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

/// A broker endpoint for the leaders named in `current_leader` (v16+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchNodeEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchPartition {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// -1 when unknown.
    pub last_stable_offset: i64,
    /// -1 before v5.
    pub log_start_offset: i64,
    /// None when the fetch was read_uncommitted (or nothing was aborted, some brokers send null).
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// -1 before v11 or when the leader should be used.
    pub preferred_read_replica: i32,
    /// Present (v12+) only when the broker sent the tagged field.
    pub current_leader: Option<CurrentLeader>,
    /// The raw record batches; the last one may be truncated (KIP-74).
    pub records: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopic {
    /// Topic name; empty for v13+ (topics are identified by `topic_id`).
    pub name: String,
    /// Topic id (v13+); all zeros before.
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    pub throttle_time_ms: i32,
    /// Top-level error (v7+, e.g. FETCH_SESSION_ID_NOT_FOUND); 0 before.
    pub error_code: i16,
    /// Fetch session id (v7+); 0 when not in a session or before v7.
    pub session_id: i32,
    pub responses: Vec<FetchTopic>,
    /// v16+: endpoints of the leaders named in partitions' `current_leader`.
    pub node_endpoints: Vec<FetchNodeEndpoint>,
}

/// Reads a tagged-field section, handing each field to `known` with a reader positioned at its
/// value. `known` returns false for tags it does not decode (they are skipped). A decoded field
/// must consume exactly its declared size.
fn tagged_section<'a, F>(r: &mut Reader<'a>, mut known: F) -> DecodeResult<()>
where
    F: FnMut(u32, &mut Reader<'a>) -> DecodeResult<bool>,
{
    let count = r.uvarint("tagged_fields")?;
    for _ in 0..count {
        let tag = r.uvarint("tagged_fields")?;
        let size = r.uvarint("tagged_fields")? as usize;
        let mut value = r.clone();
        r.skip(size, "tagged_fields")?;
        let start = value.position();
        if known(tag, &mut value)? && value.position() - start != size {
            return Err(DecodeError::new(
                "tagged_fields",
                DecodeErrorKind::InvalidLength {
                    what: "tagged field size",
                    value: size as i64,
                },
            ));
        }
    }
    Ok(())
}

fn partition(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<FetchPartition> {
    let partition_index = r.i32("partition_index")?;
    let error_code = r.i16("error_code")?;
    let high_watermark = r.i64("high_watermark")?;
    let last_stable_offset = r.i64("last_stable_offset")?;
    let log_start_offset = if version >= 5 {
        r.i64("log_start_offset")?
    } else {
        -1
    };
    let aborted_transactions = r.flex_nullable_array("aborted_transactions", flex, |r| {
        let t = AbortedTransaction {
            producer_id: r.i64("producer_id")?,
            first_offset: r.i64("first_offset")?,
        };
        r.tagged_fields(flex)?;
        Ok(t)
    })?;
    let preferred_read_replica = if version >= 11 {
        r.i32("preferred_read_replica")?
    } else {
        -1
    };
    let records = r.flex_nullable_bytes("records", flex)?;
    let mut current_leader = None;
    if flex {
        tagged_section(r, |tag, r| {
            if tag != 1 {
                return Ok(false);
            }
            let leader = CurrentLeader {
                leader_id: r.i32("current_leader.leader_id")?,
                leader_epoch: r.i32("current_leader.leader_epoch")?,
            };
            r.skip_tagged_fields("current_leader.tagged_fields")?;
            current_leader = Some(leader);
            Ok(true)
        })?;
    }
    Ok(FetchPartition {
        partition_index,
        error_code,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        aborted_transactions,
        preferred_read_replica,
        current_leader,
        records,
    })
}

fn node_endpoint(r: &mut Reader<'_>) -> DecodeResult<FetchNodeEndpoint> {
    let e = FetchNodeEndpoint {
        node_id: r.i32("node_id")?,
        host: r.compact_string("host")?,
        port: r.i32("port")?,
        rack: r.compact_nullable_string("rack")?,
    };
    r.skip_tagged_fields("tagged_fields")?;
    Ok(e)
}

impl Response for FetchResponse {
    const NAME: &'static str = "Fetch";
    const API_KEY: i16 = super::api::FETCH;
    const VERSIONS: (i16, i16) = (4, 17);
    const FIRST_FLEXIBLE: i16 = 12;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let (error_code, session_id) = if version >= 7 {
            (r.i16("error_code")?, r.i32("session_id")?)
        } else {
            (0, 0)
        };
        let responses = r.flex_array("responses", flex, |r| {
            let name = if version <= 12 {
                r.flex_string("topic", flex)?
            } else {
                String::new()
            };
            let topic_id = if version >= 13 {
                r.uuid("topic_id")?
            } else {
                [0; 16]
            };
            let partitions = r.flex_array("partitions", flex, |r| partition(r, version, flex))?;
            r.tagged_fields(flex)?;
            Ok(FetchTopic {
                name,
                topic_id,
                partitions,
            })
        })?;
        let mut node_endpoints = Vec::new();
        if flex {
            tagged_section(r, |tag, r| {
                if tag != 0 || version < 16 {
                    return Ok(false);
                }
                node_endpoints = r.compact_array_count("node_endpoints").and_then(|n| {
                    let n = n.unwrap_or(0);
                    r.read_array("node_endpoints", n, node_endpoint)
                })?;
                Ok(true)
            })?;
        }
        Ok(Self {
            throttle_time_ms,
            error_code,
            session_id,
            responses,
            node_endpoints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{
        assert_count_bomb, assert_string_bomb, decode_unchecked, encode, exercise,
    };
    use crate::protocol::{decode_body, decode_body_bytes};
    use kafka_protocol::messages::fetch_response as kp;
    use kafka_protocol::messages::{BrokerId, FetchResponse as KpResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    const ID: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

    /// A v13 topic with id [`ID`], obtained by letting kafka-protocol decode trusted bytes
    /// (the uuid crate is not a dependency of ours).
    fn topic_with_id() -> kp::FetchableTopicResponse {
        let mut b = ID.to_vec();
        b.extend_from_slice(&[1, 0]); // no partitions, no tagged fields
        kp::FetchableTopicResponse::decode(&mut Bytes::from(b), 13).unwrap()
    }

    fn sample(v: i16) -> KpResponse {
        let part = |i: i32| {
            let mut p = kp::PartitionData::default()
                .with_partition_index(i)
                .with_error_code(if i == 1 { 6 } else { 0 })
                .with_high_watermark(1000 + i64::from(i))
                .with_last_stable_offset(990)
                .with_aborted_transactions(match i {
                    0 => None,
                    1 => Some(vec![]),
                    _ => Some(vec![
                        kp::AbortedTransaction::default()
                            .with_producer_id(7.into())
                            .with_first_offset(10),
                        kp::AbortedTransaction::default()
                            .with_producer_id(8.into())
                            .with_first_offset(12),
                    ]),
                })
                .with_records(match i {
                    0 => Some(Bytes::from_static(b"batch bytes here")),
                    1 => None,
                    _ => Some(Bytes::new()),
                });
            if v >= 5 {
                p = p.with_log_start_offset(3);
            }
            if v >= 11 {
                p = p.with_preferred_read_replica(BrokerId(if i == 2 { 2 } else { -1 }));
            }
            if v >= 12 && i == 1 {
                p = p
                    .with_current_leader(
                        kp::LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(3))
                            .with_leader_epoch(9),
                    )
                    .with_diverging_epoch(
                        kp::EpochEndOffset::default()
                            .with_epoch(4)
                            .with_end_offset(77),
                    )
                    .with_snapshot_id(kp::SnapshotId::default().with_end_offset(5).with_epoch(1));
            }
            p
        };
        let topic = |name: &'static str, parts: Vec<kp::PartitionData>| {
            let t = if v >= 13 {
                topic_with_id()
            } else {
                kp::FetchableTopicResponse::default().with_topic(TopicName(s(name)))
            };
            t.with_partitions(parts)
        };
        let mut m = KpResponse::default()
            .with_throttle_time_ms(4)
            .with_responses(vec![
                topic("orders", vec![part(0), part(1), part(2)]),
                topic("empty", vec![]),
            ]);
        if v >= 7 {
            m = m.with_error_code(0).with_session_id(123);
        }
        if v >= 16 {
            m = m.with_node_endpoints(vec![
                kp::NodeEndpoint::default()
                    .with_node_id(BrokerId(3))
                    .with_host(s("broker-3"))
                    .with_port(9093)
                    .with_rack(Some(s("zone-a"))),
                kp::NodeEndpoint::default()
                    .with_node_id(BrokerId(4))
                    .with_host(s("broker-4"))
                    .with_port(9094),
            ]);
        }
        m
    }

    fn check(ours: &FetchResponse, theirs: &KpResponse, v: i16) {
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
        assert_eq!(ours.error_code, theirs.error_code);
        assert_eq!(ours.session_id, theirs.session_id);
        assert_eq!(ours.responses.len(), theirs.responses.len());
        for (o, t) in ours.responses.iter().zip(&theirs.responses) {
            assert_eq!(o.name, t.topic.0.as_str());
            assert_eq!(&o.topic_id, t.topic_id.as_bytes());
            assert_eq!(o.partitions.len(), t.partitions.len());
            for (op, tp) in o.partitions.iter().zip(&t.partitions) {
                assert_eq!(op.partition_index, tp.partition_index);
                assert_eq!(op.error_code, tp.error_code);
                assert_eq!(op.high_watermark, tp.high_watermark);
                assert_eq!(op.last_stable_offset, tp.last_stable_offset);
                assert_eq!(op.log_start_offset, tp.log_start_offset);
                assert_eq!(op.preferred_read_replica, tp.preferred_read_replica.0);
                assert_eq!(op.records, tp.records);
                let ta: Option<Vec<_>> = tp.aborted_transactions.as_ref().map(|v| {
                    v.iter()
                        .map(|a| AbortedTransaction {
                            producer_id: a.producer_id.0,
                            first_offset: a.first_offset,
                        })
                        .collect()
                });
                assert_eq!(op.aborted_transactions, ta);
                let tl = (tp.current_leader != kp::LeaderIdAndEpoch::default()).then_some(
                    CurrentLeader {
                        leader_id: tp.current_leader.leader_id.0,
                        leader_epoch: tp.current_leader.leader_epoch,
                    },
                );
                assert_eq!(op.current_leader, tl);
            }
        }
        assert_eq!(ours.node_endpoints.len(), theirs.node_endpoints.len());
        for (o, t) in ours.node_endpoints.iter().zip(&theirs.node_endpoints) {
            assert_eq!(o.node_id, t.node_id.0);
            assert_eq!(o.host, t.host.as_str());
            assert_eq!(o.port, t.port);
            assert_eq!(o.rack.as_deref(), t.rack.as_deref());
        }
        let p1 = &ours.responses[0].partitions[1];
        assert_eq!(
            p1.current_leader,
            (v >= 12).then_some(CurrentLeader {
                leader_id: 3,
                leader_epoch: 9
            })
        );
        assert_eq!(ours.node_endpoints.len(), if v >= 16 { 2 } else { 0 });
        if v >= 13 {
            assert_eq!(ours.responses[0].topic_id, ID);
            assert_eq!(ours.responses[0].name, "");
        } else {
            assert_eq!(ours.responses[0].name, "orders");
        }
    }

    #[test]
    fn round_trip_every_version() {
        for v in 4..=17 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: FetchResponse = decode_body(&body, v).unwrap();
            check(&ours, &theirs, v);

            // Zero-copy: records point into the frame.
            let shared = Bytes::from(body.clone());
            let z = decode_body_bytes::<FetchResponse>(&shared, v).unwrap();
            assert_eq!(z, ours);
            let rec = z.responses[0].partitions[0].records.as_ref().unwrap();
            let base = shared.as_ptr() as usize;
            let p = rec.as_ptr() as usize;
            assert!(p >= base && p + rec.len() <= base + shared.len());

            exercise::<FetchResponse>(v, &body, 1);
        }
    }

    #[test]
    fn v18_layout_matches_v17() {
        // Not enabled, but the same wire layout: proves the decoder is ready when negotiated.
        let theirs = sample(17);
        let ours: FetchResponse = decode_unchecked(&encode(&theirs, 18), 18);
        check(&ours, &theirs, 18);
    }

    #[test]
    fn tagged_field_size_must_match() {
        // v12: one topic "t", one partition, then a current_leader tag that claims 9 bytes but
        // holds the usual 9 (leader, epoch, empty tags) + 1 spare byte → size mismatch.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // throttle, error, session
        body.extend_from_slice(&[2, 2, b't', 2]); // one topic "t", one partition
        body.extend_from_slice(&[0; 4 + 2 + 8 + 8 + 8]); // index, error, hw, lso, log start
        body.extend_from_slice(&[0]); // aborted null
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // preferred replica
        body.extend_from_slice(&[0]); // records null
        let good_tail = [1u8, 1, 9, 0, 0, 0, 3, 0, 0, 0, 9, 0];
        let mut good = body.clone();
        good.extend_from_slice(&good_tail);
        good.extend_from_slice(&[0, 0]); // topic tags, top-level tags
        let ok = decode_body::<FetchResponse>(&good, 12).unwrap();
        assert_eq!(
            ok.responses[0].partitions[0].current_leader,
            Some(CurrentLeader {
                leader_id: 3,
                leader_epoch: 9
            })
        );
        let mut bad = body.clone();
        bad.extend_from_slice(&[1, 1, 10, 0, 0, 0, 3, 0, 0, 0, 9, 0, 0xee]);
        bad.extend_from_slice(&[0, 0]);
        let e = decode_body::<FetchResponse>(&bad, 12).unwrap_err();
        assert!(e.to_string().contains("tagged field size 10"), "{e}");
        // Claims fewer bytes than the struct needs.
        let mut short = body.clone();
        short.extend_from_slice(&[1, 1, 4, 0, 0, 0, 3, 0, 0, 0, 9, 0]);
        short.extend_from_slice(&[0, 0]);
        assert!(decode_body::<FetchResponse>(&short, 12).is_err());
        // Unknown tags (and tag 0 = diverging epoch) are skipped.
        let mut unknown = body;
        unknown.extend_from_slice(&[2, 0, 3, 0xaa, 0xbb, 0xcc, 7, 0]);
        unknown.extend_from_slice(&[0, 0]);
        let ok = decode_body::<FetchResponse>(&unknown, 12).unwrap();
        assert_eq!(ok.responses[0].partitions[0].current_leader, None);
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<FetchResponse>(4, &[0; 4]);
        assert_count_bomb::<FetchResponse>(7, &[0; 10]);
        assert_count_bomb::<FetchResponse>(12, &[0; 10]);
        // topics[0].partitions
        assert_count_bomb::<FetchResponse>(12, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, b't']);
        assert_count_bomb::<FetchResponse>(
            13,
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                16,
            ],
        );
        assert_string_bomb::<FetchResponse>(6, &[0, 0, 0, 0, 0, 0, 0, 1]);
        // records length i32::MAX (v4): throttle, one topic "t", one partition.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1];
        body.extend_from_slice(&[0; 4 + 2 + 8 + 8]);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // aborted: null
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let e = decode_body::<FetchResponse>(&body, 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Fetch v4: responses[0].partitions[0].records: length 2147483647 exceeds 2 remaining bytes"
        );
        // node_endpoints count bomb inside its tagged field (v16).
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]; // no topics
        body.extend_from_slice(&[1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let e = decode_body::<FetchResponse>(&body, 16).unwrap_err();
        assert!(
            matches!(
                e.kind,
                DecodeErrorKind::LengthExceedsRemaining { what: "count", .. }
            ),
            "{e}"
        );
    }

    /// The consumer-path decoders added with Fetch: random bytes never panic, and header
    /// flexibility and API keys agree with kafka-protocol.
    #[test]
    fn consumer_decoders_random_bytes_and_headers() {
        use crate::protocol::testutil::Rng;
        use crate::protocol::{
            heartbeat::HeartbeatResponse, join_group::JoinGroupResponse,
            leave_group::LeaveGroupResponse, offset_commit::OffsetCommitResponse,
            response_header_flexible, sync_group::SyncGroupResponse,
        };
        use kafka_protocol::messages as m;
        use kafka_protocol::protocol::{HeaderVersion, Request};

        fn all<R: Response>(body: &[u8]) {
            for v in R::VERSIONS.0..=R::VERSIONS.1 {
                let _ = decode_body::<R>(body, v);
            }
        }
        let mut rng = Rng::new(0xfe7c_4a11);
        for _ in 0..20_000 {
            let len = rng.below(96) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => rng.below(4) as u8,
                    _ => rng.next() as u8,
                })
                .collect();
            all::<FetchResponse>(&body);
            all::<OffsetCommitResponse>(&body);
            all::<JoinGroupResponse>(&body);
            all::<SyncGroupResponse>(&body);
            all::<HeartbeatResponse>(&body);
            all::<LeaveGroupResponse>(&body);
        }

        fn check<R: Response, K: HeaderVersion, Q: Request>() {
            assert_eq!(R::API_KEY, Q::KEY, "{}", R::NAME);
            for v in R::VERSIONS.0..=R::VERSIONS.1 {
                assert_eq!(
                    response_header_flexible::<R>(v),
                    K::header_version(v) == 1,
                    "{} v{v}",
                    R::NAME
                );
            }
        }
        check::<FetchResponse, m::FetchResponse, m::FetchRequest>();
        check::<OffsetCommitResponse, m::OffsetCommitResponse, m::OffsetCommitRequest>();
        check::<JoinGroupResponse, m::JoinGroupResponse, m::JoinGroupRequest>();
        check::<SyncGroupResponse, m::SyncGroupResponse, m::SyncGroupRequest>();
        check::<HeartbeatResponse, m::HeartbeatResponse, m::HeartbeatRequest>();
        check::<LeaveGroupResponse, m::LeaveGroupResponse, m::LeaveGroupRequest>();
    }
}
