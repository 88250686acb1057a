//! OffsetFetch (key 9), versions 1..=9 (flexible from 6). v8+ is the multi-group form; v1–7
//! is normalised into one [`OffsetFetchGroup`] with an empty `group_id`. (v10 identifies
//! topics by id only and is not supported.)

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchPartition {
    pub partition_index: i32,
    /// -1 when the group has no committed offset for the partition.
    pub committed_offset: i64,
    /// -1 before v5 or when unknown.
    pub committed_leader_epoch: i32,
    pub metadata: Option<String>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchTopic {
    pub name: String,
    pub partitions: Vec<OffsetFetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchGroup {
    /// The group (v8+); empty for v1–7 (the caller knows which group it asked for).
    pub group_id: String,
    /// Group-level error: v8+ per group, v2–7 the top-level error code, 0 for v1.
    pub error_code: i16,
    pub topics: Vec<OffsetFetchTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchResponse {
    /// 0 before v3.
    pub throttle_time_ms: i32,
    pub groups: Vec<OffsetFetchGroup>,
}

fn partition(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<OffsetFetchPartition> {
    let partition_index = r.i32("partition_index")?;
    let committed_offset = r.i64("committed_offset")?;
    let committed_leader_epoch = if version >= 5 {
        r.i32("committed_leader_epoch")?
    } else {
        -1
    };
    let metadata = r.flex_nullable_string("metadata", flex)?;
    let error_code = r.i16("error_code")?;
    r.tagged_fields(flex)?;
    Ok(OffsetFetchPartition {
        partition_index,
        committed_offset,
        committed_leader_epoch,
        metadata,
        error_code,
    })
}

fn topics(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<Vec<OffsetFetchTopic>> {
    r.flex_array("topics", flex, |r| {
        let name = r.flex_string("name", flex)?;
        let partitions = r.flex_array("partitions", flex, |r| partition(r, version, flex))?;
        r.tagged_fields(flex)?;
        Ok(OffsetFetchTopic { name, partitions })
    })
}

impl Response for OffsetFetchResponse {
    const NAME: &'static str = "OffsetFetch";
    const API_KEY: i16 = super::api::OFFSET_FETCH;
    const VERSIONS: (i16, i16) = (1, 9);
    const FIRST_FLEXIBLE: i16 = 6;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let groups = if version >= 8 {
            r.flex_array("groups", flex, |r| {
                let group_id = r.compact_string("group_id")?;
                let topics = topics(r, version, flex)?;
                let error_code = r.i16("error_code")?;
                r.tagged_fields(flex)?;
                Ok(OffsetFetchGroup {
                    group_id,
                    error_code,
                    topics,
                })
            })?
        } else {
            let topics = topics(r, version, flex)?;
            let error_code = if version >= 2 {
                r.i16("error_code")?
            } else {
                0
            };
            vec![OffsetFetchGroup {
                group_id: String::new(),
                error_code,
                topics,
            }]
        };
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{assert_count_bomb, assert_string_bomb, encode, exercise};
    use kafka_protocol::messages::offset_fetch_response as kp;
    use kafka_protocol::messages::{GroupId, OffsetFetchResponse as KpResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    /// (partition, offset, leader epoch, metadata, error) rows for topic `t`.
    fn rows(t: i32) -> Vec<(i32, i64, i32, Option<&'static str>, i16)> {
        vec![
            (0, 100 + i64::from(t), 4, Some("meta"), 0),
            (1, -1, -1, None, 0),
            (2, 7, 2, Some(""), if t == 1 { 3 } else { 0 }),
        ]
    }

    fn legacy(version: i16) -> KpResponse {
        let topic = |t: i32, name: &'static str| {
            kp::OffsetFetchResponseTopic::default()
                .with_name(TopicName(s(name)))
                .with_partitions(
                    rows(t)
                        .into_iter()
                        .map(|(p, o, e, m, err)| {
                            let mut x = kp::OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_metadata(m.map(s))
                                .with_error_code(err);
                            if version >= 5 {
                                x = x.with_committed_leader_epoch(e);
                            }
                            x
                        })
                        .collect(),
                )
        };
        let mut m =
            KpResponse::default().with_topics(vec![topic(0, "orders"), topic(1, "payments")]);
        if version >= 2 {
            m = m.with_error_code(16);
        }
        if version >= 3 {
            m = m.with_throttle_time_ms(8);
        }
        m
    }

    fn multi() -> KpResponse {
        let topic = |t: i32, name: &'static str| {
            kp::OffsetFetchResponseTopics::default()
                .with_name(TopicName(s(name)))
                .with_partitions(
                    rows(t)
                        .into_iter()
                        .map(|(p, o, e, m, err)| {
                            kp::OffsetFetchResponsePartitions::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                                .with_committed_leader_epoch(e)
                                .with_metadata(m.map(s))
                                .with_error_code(err)
                        })
                        .collect(),
                )
        };
        KpResponse::default()
            .with_throttle_time_ms(8)
            .with_groups(vec![
                kp::OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(s("g1")))
                    .with_topics(vec![topic(0, "orders"), topic(1, "payments")]),
                kp::OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(s("g2")))
                    .with_error_code(30),
            ])
    }

    #[test]
    fn round_trip_every_version() {
        for v in 1..=9 {
            let theirs = if v >= 8 { multi() } else { legacy(v) };
            let body = encode(&theirs, v);
            let ours: OffsetFetchResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            if v >= 8 {
                assert_eq!(ours.groups.len(), 2);
                for (og, tg) in ours.groups.iter().zip(&theirs.groups) {
                    assert_eq!(og.group_id, tg.group_id.0.as_str());
                    assert_eq!(og.error_code, tg.error_code);
                    assert_eq!(og.topics.len(), tg.topics.len());
                    for (ot, tt) in og.topics.iter().zip(&tg.topics) {
                        assert_eq!(ot.name, tt.name.0.as_str());
                        assert_eq!(ot.partitions.len(), tt.partitions.len());
                        for (op, tp) in ot.partitions.iter().zip(&tt.partitions) {
                            assert_eq!(op.partition_index, tp.partition_index);
                            assert_eq!(op.committed_offset, tp.committed_offset);
                            assert_eq!(op.committed_leader_epoch, tp.committed_leader_epoch);
                            assert_eq!(op.metadata.as_deref(), tp.metadata.as_deref());
                            assert_eq!(op.error_code, tp.error_code);
                        }
                    }
                }
            } else {
                let [g] = &ours.groups[..] else {
                    panic!("one group")
                };
                assert_eq!(g.group_id, "");
                assert_eq!(g.error_code, theirs.error_code);
                assert_eq!(g.topics.len(), 2);
                for (ot, tt) in g.topics.iter().zip(&theirs.topics) {
                    assert_eq!(ot.name, tt.name.0.as_str());
                    assert_eq!(ot.partitions.len(), tt.partitions.len());
                    for (op, tp) in ot.partitions.iter().zip(&tt.partitions) {
                        assert_eq!(op.partition_index, tp.partition_index);
                        assert_eq!(op.committed_offset, tp.committed_offset);
                        assert_eq!(op.committed_leader_epoch, tp.committed_leader_epoch);
                        assert_eq!(op.metadata.as_deref(), tp.metadata.as_deref());
                        assert_eq!(op.error_code, tp.error_code);
                    }
                }
                assert_eq!(
                    g.topics[0].partitions[0].committed_leader_epoch,
                    if v >= 5 { 4 } else { -1 }
                );
            }
            exercise::<OffsetFetchResponse>(v, &body, 9);
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<OffsetFetchResponse>(1, &[]);
        assert_count_bomb::<OffsetFetchResponse>(3, &[0; 4]);
        assert_count_bomb::<OffsetFetchResponse>(7, &[0; 4]);
        assert_count_bomb::<OffsetFetchResponse>(8, &[0; 4]);
        // v8: groups[0].topics after group id "g".
        assert_count_bomb::<OffsetFetchResponse>(9, &[0, 0, 0, 0, 2, 2, b'g']);
        // v8: groups[0].group_id length.
        assert_string_bomb::<OffsetFetchResponse>(8, &[0, 0, 0, 0, 2]);
    }
}
