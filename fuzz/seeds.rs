//! Writes the fuzzers' seed corpora: valid frames built with kafka-protocol's own encoders, so
//! that fuzzing starts from what a real broker or member sends and mutates from there.
//!
//! `cargo run --example fuzz-seeds -- DIR` writes `DIR/responses/`, `DIR/records/` and
//! `DIR/consumer_protocol/` in the input formats of the targets in `fuzz/fuzz_targets/`
//! (responses: API key and version as i16 BE, then the body; records: a flag byte, then the
//! batches; consumer_protocol: a selector byte, then the bytes).

use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_observer::protocol::consumer_protocol::{Assignment, Subscription, TopicPartitions};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Writes one seed; the name says what it is.
fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// Every version in `versions` at which `msg` encodes, as a responses seed.
fn response<T: Encodable>(dir: &Path, key: i16, versions: (i16, i16), what: &str, msg: &T) -> u32 {
    let mut n = 0;
    for v in versions.0..=versions.1 {
        let mut body = BytesMut::new();
        if msg.encode(&mut body, v).is_err() {
            continue; // a field this version lacks
        }
        let mut seed = key.to_be_bytes().to_vec();
        seed.extend_from_slice(&v.to_be_bytes());
        seed.extend_from_slice(&body);
        write(dir, &format!("{what}-v{v}"), &seed);
        n += 1;
    }
    n
}

fn records(compression: Compression, transactional: bool, control: bool) -> Bytes {
    let recs: Vec<Record> = (0..3)
        .map(|i| Record {
            transactional,
            control,
            partition_leader_epoch: 2,
            delete_horizon: false,
            producer_id: if transactional { 7 } else { -1 },
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: 10 + i,
            sequence: if transactional {
                i as i32
            } else {
                -1 + i as i32
            },
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(if control {
                vec![0, 0, 0, 1]
            } else {
                format!("value-{i}-{}", "x".repeat(40)).into_bytes()
            })),
            headers: [(s("h"), Some(Bytes::from_static(b"v")))]
                .into_iter()
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("records encode");
    buf.freeze()
}

const CODECS: [(Compression, &str); 5] = [
    (Compression::None, "none"),
    (Compression::Gzip, "gzip"),
    (Compression::Snappy, "snappy"),
    (Compression::Lz4, "lz4"),
    (Compression::Zstd, "zstd"),
];

fn responses(dir: &Path) -> u32 {
    let mut n = 0;
    let api = ApiVersionsResponse::default().with_api_keys(vec![
        api_versions_response::ApiVersion::default()
            .with_api_key(3)
            .with_min_version(0)
            .with_max_version(12),
        api_versions_response::ApiVersion::default()
            .with_api_key(1)
            .with_min_version(4)
            .with_max_version(17),
    ]);
    n += response(dir, 18, (0, 3), "api_versions", &api);
    n += response(
        dir,
        17,
        (0, 1),
        "sasl_handshake",
        &SaslHandshakeResponse::default().with_mechanisms(vec![s("PLAIN"), s("SCRAM-SHA-512")]),
    );
    n += response(
        dir,
        36,
        (0, 2),
        "sasl_authenticate",
        &SaslAuthenticateResponse::default()
            .with_auth_bytes(Bytes::from_static(b"r=nonce,s=c2FsdA==,i=4096")),
    );
    let part = |i: i32| {
        metadata_response::MetadataResponsePartition::default()
            .with_partition_index(i)
            .with_leader_id(BrokerId(1))
            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
            .with_isr_nodes(vec![BrokerId(1)])
    };
    let md = |with_epoch: bool| {
        let parts: Vec<_> = (0..2)
            .map(|i| {
                if with_epoch {
                    part(i).with_leader_epoch(3)
                } else {
                    part(i)
                }
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(s("broker-1.example"))
                .with_port(9092)])
            .with_topics(vec![metadata_response::MetadataResponseTopic::default()
                .with_name(Some(TopicName(s("payments"))))
                .with_partitions(parts)])
    };
    n += response(dir, 3, (1, 12), "metadata", &md(false));
    n += response(dir, 3, (7, 12), "metadata-epoch", &md(true));
    n += response(
        dir,
        10,
        (0, 3),
        "find_coordinator",
        &FindCoordinatorResponse::default()
            .with_node_id(BrokerId(1))
            .with_host(s("broker-1"))
            .with_port(9092),
    );
    n += response(
        dir,
        10,
        (4, 4),
        "find_coordinator-batched",
        &FindCoordinatorResponse::default().with_coordinators(vec![
            find_coordinator_response::Coordinator::default()
                .with_key(s("group-a"))
                .with_node_id(BrokerId(1))
                .with_host(s("broker-1"))
                .with_port(9092),
        ]),
    );
    n += response(
        dir,
        2,
        (1, 10),
        "list_offsets",
        &ListOffsetsResponse::default().with_topics(vec![
            list_offsets_response::ListOffsetsTopicResponse::default()
                .with_name(TopicName(s("payments")))
                .with_partitions(vec![
                    list_offsets_response::ListOffsetsPartitionResponse::default()
                        .with_partition_index(0)
                        .with_offset(42)
                        .with_timestamp(-1),
                ]),
        ]),
    );
    n += response(
        dir,
        9,
        (1, 7),
        "offset_fetch",
        &OffsetFetchResponse::default().with_topics(vec![
            offset_fetch_response::OffsetFetchResponseTopic::default()
                .with_name(TopicName(s("payments")))
                .with_partitions(vec![
                    offset_fetch_response::OffsetFetchResponsePartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(40),
                ]),
        ]),
    );
    n += response(
        dir,
        9,
        (8, 9),
        "offset_fetch-groups",
        &OffsetFetchResponse::default().with_groups(vec![
            offset_fetch_response::OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(s("group-a")))
                .with_topics(vec![
                    offset_fetch_response::OffsetFetchResponseTopics::default()
                        .with_name(TopicName(s("payments")))
                        .with_partitions(vec![
                            offset_fetch_response::OffsetFetchResponsePartitions::default()
                                .with_partition_index(0)
                                .with_committed_offset(40),
                        ]),
                ]),
        ]),
    );
    n += response(
        dir,
        8,
        (2, 9),
        "offset_commit",
        &OffsetCommitResponse::default().with_topics(vec![
            offset_commit_response::OffsetCommitResponseTopic::default()
                .with_name(TopicName(s("payments")))
                .with_partitions(vec![
                    offset_commit_response::OffsetCommitResponsePartition::default()
                        .with_partition_index(0),
                ]),
        ]),
    );
    n += response(
        dir,
        16,
        (0, 5),
        "list_groups",
        &ListGroupsResponse::default().with_groups(vec![
            list_groups_response::ListedGroup::default()
                .with_group_id(GroupId(s("group-a")))
                .with_protocol_type(s("consumer")),
        ]),
    );
    let sub = Subscription {
        topics: vec!["payments".into()],
        ..Subscription::default()
    }
    .encode()
    .expect("subscription encodes");
    let assignment = Assignment {
        assigned_partitions: vec![TopicPartitions {
            topic: "payments".into(),
            partitions: vec![0, 1],
        }],
        ..Assignment::default()
    }
    .encode()
    .expect("assignment encodes");
    n += response(
        dir,
        15,
        (0, 5),
        "describe_groups",
        &DescribeGroupsResponse::default().with_groups(vec![
            describe_groups_response::DescribedGroup::default()
                .with_group_id(GroupId(s("group-a")))
                .with_group_state(s("Stable"))
                .with_protocol_type(s("consumer"))
                .with_protocol_data(s("range"))
                .with_members(vec![
                    describe_groups_response::DescribedGroupMember::default()
                        .with_member_id(s("m-1"))
                        .with_client_id(s("c"))
                        .with_client_host(s("/127.0.0.1"))
                        .with_member_metadata(sub.clone())
                        .with_member_assignment(assignment.clone()),
                ]),
        ]),
    );
    n += response(
        dir,
        11,
        (2, 9),
        "join_group",
        &JoinGroupResponse::default()
            .with_generation_id(3)
            .with_protocol_name(Some(s("range")))
            .with_leader(s("m-1"))
            .with_member_id(s("m-1"))
            .with_members(vec![join_group_response::JoinGroupResponseMember::default(
            )
            .with_member_id(s("m-1"))
            .with_metadata(sub.clone())]),
    );
    n += response(
        dir,
        14,
        (0, 5),
        "sync_group",
        &SyncGroupResponse::default().with_assignment(assignment.clone()),
    );
    n += response(dir, 12, (0, 4), "heartbeat", &HeartbeatResponse::default());
    n += response(
        dir,
        13,
        (0, 5),
        "leave_group",
        &LeaveGroupResponse::default(),
    );
    n += response(
        dir,
        0,
        (3, 12),
        "produce",
        &ProduceResponse::default().with_responses(vec![
            produce_response::TopicProduceResponse::default()
                .with_name(TopicName(s("payments")))
                .with_partition_responses(vec![
                    produce_response::PartitionProduceResponse::default()
                        .with_index(0)
                        .with_base_offset(42),
                ]),
        ]),
    );
    n += response(
        dir,
        22,
        (0, 5),
        "init_producer_id",
        &InitProducerIdResponse::default()
            .with_producer_id(ProducerId(7))
            .with_producer_epoch(1),
    );
    for (codec, name) in CODECS {
        let fetched = |with_name: bool| {
            let topic = fetch_response::FetchableTopicResponse::default();
            let topic = if with_name {
                topic.with_topic(TopicName(s("payments")))
            } else {
                topic.with_topic_id(uuid::Uuid::from_u128(7))
            };
            FetchResponse::default().with_responses(vec![topic.with_partitions(vec![
                fetch_response::PartitionData::default()
                    .with_partition_index(0)
                    .with_high_watermark(13)
                    .with_last_stable_offset(13)
                    .with_aborted_transactions(Some(vec![
                        fetch_response::AbortedTransaction::default()
                            .with_producer_id(ProducerId(7))
                            .with_first_offset(10),
                    ]))
                    .with_records(Some(records(codec, name == "gzip", false))),
            ])])
        };
        n += response(dir, 1, (4, 12), &format!("fetch-{name}"), &fetched(true));
        n += response(
            dir,
            1,
            (13, 17),
            &format!("fetch-{name}-id"),
            &fetched(false),
        );
    }
    n
}

fn record_seeds(dir: &Path) -> u32 {
    let mut n = 0;
    for (codec, name) in CODECS {
        for (txn, control, what) in [
            (false, false, "plain"),
            (true, false, "txn"),
            (true, true, "control"),
        ] {
            let blob = records(codec, txn, control);
            for flag in [0u8, 1] {
                let mut seed = vec![flag];
                seed.extend_from_slice(&blob);
                write(dir, &format!("{name}-{what}-{flag}"), &seed);
                n += 1;
            }
        }
    }
    // Two batches back to back, the second cut short (a Fetch response may end like that).
    let mut seed = vec![1u8];
    seed.extend_from_slice(&records(Compression::None, true, false));
    let second = records(Compression::Lz4, false, false);
    seed.extend_from_slice(&second[..second.len() / 2]);
    write(dir, "two-truncated", &seed);
    n + 1
}

fn consumer_protocol_seeds(dir: &Path) -> u32 {
    let mut n = 0;
    for v in 0..=3i16 {
        let sub = Subscription {
            topics: vec!["payments".into(), "shipping".into()],
            user_data: Some(Bytes::from_static(b"user")),
            owned_partitions: if v >= 1 {
                vec![TopicPartitions {
                    topic: "payments".into(),
                    partitions: vec![0, 2],
                }]
            } else {
                vec![]
            },
            generation_id: if v >= 2 { 4 } else { -1 },
            rack_id: (v >= 3).then(|| "zone-a".to_string()),
            ..Subscription::default()
        };
        if let Ok(b) = sub.encode_version(v) {
            let mut seed = vec![0u8];
            seed.extend_from_slice(&b);
            write(dir, &format!("subscription-v{v}"), &seed);
            n += 1;
        }
        let a = Assignment {
            assigned_partitions: vec![TopicPartitions {
                topic: "payments".into(),
                partitions: vec![0, 1, 2],
            }],
            user_data: Some(Bytes::from_static(b"user")),
            ..Assignment::default()
        };
        if let Ok(b) = a.encode_version(v) {
            let mut seed = vec![1u8];
            seed.extend_from_slice(&b);
            write(dir, &format!("assignment-v{v}"), &seed);
            n += 1;
        }
    }
    n
}

fn main() {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    type Gen = fn(&Path) -> u32;
    let targets: [(&str, Gen); 3] = [
        ("responses", responses),
        ("records", record_seeds),
        ("consumer_protocol", consumer_protocol_seeds),
    ];
    for (target, generate) in targets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        let n = generate(&dir);
        println!("{target}: {n} seeds in {}", dir.display());
    }
}
