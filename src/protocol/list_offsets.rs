//! ListOffsets (key 2), versions 1..=10 (flexible from 6).

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsPartition {
    pub partition_index: i32,
    pub error_code: i16,
    /// -1 when the request asked for latest/earliest.
    pub timestamp: i64,
    pub offset: i64,
    /// -1 before v4.
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsTopic {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsResponse {
    /// 0 before v2.
    pub throttle_time_ms: i32,
    pub topics: Vec<ListOffsetsTopic>,
}

impl Response for ListOffsetsResponse {
    const NAME: &'static str = "ListOffsets";
    const API_KEY: i16 = super::api::LIST_OFFSETS;
    const VERSIONS: (i16, i16) = (1, 10);
    const FIRST_FLEXIBLE: i16 = 6;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 2 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let topics = r.flex_array("topics", flex, |r| {
            let name = r.flex_string("name", flex)?;
            let partitions = r.flex_array("partitions", flex, |r| {
                let p = ListOffsetsPartition {
                    partition_index: r.i32("partition_index")?,
                    error_code: r.i16("error_code")?,
                    timestamp: r.i64("timestamp")?,
                    offset: r.i64("offset")?,
                    leader_epoch: if version >= 4 {
                        r.i32("leader_epoch")?
                    } else {
                        -1
                    },
                };
                r.tagged_fields(flex)?;
                Ok(p)
            })?;
            r.tagged_fields(flex)?;
            Ok(ListOffsetsTopic { name, partitions })
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
    use kafka_protocol::messages::list_offsets_response as kp;
    use kafka_protocol::messages::{ListOffsetsResponse as KpResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn sample(version: i16) -> KpResponse {
        let part = |i: i32| {
            let mut p = kp::ListOffsetsPartitionResponse::default()
                .with_partition_index(i)
                .with_error_code(if i == 1 { 6 } else { 0 })
                .with_timestamp(-1)
                .with_offset(1_000_000_000_000 + i64::from(i));
            if version >= 4 {
                p = p.with_leader_epoch(3 + i);
            }
            p
        };
        let topic = |name: &'static str, n: i32| {
            kp::ListOffsetsTopicResponse::default()
                .with_name(TopicName(StrBytes::from_static_str(name)))
                .with_partitions((0..n).map(part).collect())
        };
        let mut m =
            KpResponse::default().with_topics(vec![topic("orders", 2), topic("payments", 3)]);
        if version >= 2 {
            m = m.with_throttle_time_ms(9);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 1..=10 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: ListOffsetsResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            assert_eq!(ours.topics.len(), 2);
            for (o, t) in ours.topics.iter().zip(&theirs.topics) {
                assert_eq!(o.name, t.name.0.as_str());
                assert_eq!(o.partitions.len(), t.partitions.len());
                for (op, tp) in o.partitions.iter().zip(&t.partitions) {
                    assert_eq!(op.partition_index, tp.partition_index);
                    assert_eq!(op.error_code, tp.error_code);
                    assert_eq!(op.timestamp, tp.timestamp);
                    assert_eq!(op.offset, tp.offset);
                    assert_eq!(op.leader_epoch, tp.leader_epoch);
                }
            }
            assert_eq!(
                ours.topics[1].partitions[2].leader_epoch,
                if v >= 4 { 5 } else { -1 }
            );
            exercise::<ListOffsetsResponse>(v, &body, 2);
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<ListOffsetsResponse>(1, &[]);
        assert_count_bomb::<ListOffsetsResponse>(2, &[0; 4]);
        assert_count_bomb::<ListOffsetsResponse>(10, &[0; 4]);
        // topics[0].partitions
        assert_count_bomb::<ListOffsetsResponse>(10, &[0, 0, 0, 0, 2, 2, b'x']);
        assert_string_bomb::<ListOffsetsResponse>(5, &[0, 0, 0, 0, 0, 0, 0, 1]);
    }
}
