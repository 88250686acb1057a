//! OffsetCommit (key 8), versions 2..=9 (flexible from 8): per-partition result of committing
//! a consumer group's offsets. (v10+ identifies topics by id and is not supported.)

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitPartition {
    pub partition_index: i32,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitTopic {
    pub name: String,
    pub partitions: Vec<OffsetCommitPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitResponse {
    /// 0 before v3.
    pub throttle_time_ms: i32,
    pub topics: Vec<OffsetCommitTopic>,
}

impl Response for OffsetCommitResponse {
    const NAME: &'static str = "OffsetCommit";
    const API_KEY: i16 = super::api::OFFSET_COMMIT;
    const VERSIONS: (i16, i16) = (2, 9);
    const FIRST_FLEXIBLE: i16 = 8;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 3 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let topics = r.flex_array("topics", flex, |r| {
            let name = r.flex_string("name", flex)?;
            let partitions = r.flex_array("partitions", flex, |r| {
                let p = OffsetCommitPartition {
                    partition_index: r.i32("partition_index")?,
                    error_code: r.i16("error_code")?,
                };
                r.tagged_fields(flex)?;
                Ok(p)
            })?;
            r.tagged_fields(flex)?;
            Ok(OffsetCommitTopic { name, partitions })
        })?;
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{assert_count_bomb, assert_string_bomb, encode, exercise};
    use kafka_protocol::messages::offset_commit_response as kp;
    use kafka_protocol::messages::{OffsetCommitResponse as KpResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(v: i16) -> KpResponse {
        let topic = |name: &'static str, n: i32| {
            kp::OffsetCommitResponseTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_partitions(
                    (0..n)
                        .map(|i| {
                            kp::OffsetCommitResponsePartition::default()
                                .with_partition_index(i)
                                .with_error_code(if i == 2 { 22 } else { 0 })
                        })
                        .collect(),
                )
        };
        let mut m = KpResponse::default().with_topics(vec![
            topic("orders", 3),
            topic("payments", 1),
            topic("empty", 0),
        ]);
        if v >= 3 {
            m = m.with_throttle_time_ms(17);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 2..=9 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: OffsetCommitResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            assert_eq!(ours.topics.len(), 3);
            for (o, t) in ours.topics.iter().zip(&theirs.topics) {
                assert_eq!(o.name, t.name.0.as_str());
                assert_eq!(o.partitions.len(), t.partitions.len());
                for (op, tp) in o.partitions.iter().zip(&t.partitions) {
                    assert_eq!(op.partition_index, tp.partition_index);
                    assert_eq!(op.error_code, tp.error_code);
                }
            }
            assert_eq!(ours.topics[0].partitions[2].error_code, 22);
            exercise::<OffsetCommitResponse>(v, &body, 8);
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<OffsetCommitResponse>(2, &[]);
        assert_count_bomb::<OffsetCommitResponse>(3, &[0; 4]);
        assert_count_bomb::<OffsetCommitResponse>(8, &[0; 4]);
        // topics[0].partitions after name "x".
        assert_count_bomb::<OffsetCommitResponse>(9, &[0, 0, 0, 0, 2, 2, b'x']);
        assert_count_bomb::<OffsetCommitResponse>(7, &[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b'x']);
        assert_string_bomb::<OffsetCommitResponse>(4, &[0, 0, 0, 0, 0, 0, 0, 1]);
        // v1 and v10 are not supported.
        assert!(decode_body::<OffsetCommitResponse>(&[0, 0, 0, 0], 1).is_err());
        assert!(decode_body::<OffsetCommitResponse>(&[0, 0, 0, 0, 1, 0], 10).is_err());
    }
}
