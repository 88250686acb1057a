//! The "consumer" embedded protocol of the classic group protocol: what Java's KafkaConsumer
//! (and librdkafka) put in JoinGroup metadata (a *subscription*) and SyncGroup assignments.
//!
//! Both are a 2-byte version followed by a classic (non-flexible) body. Encoding goes through
//! kafka-protocol's encoders (trusted input: our own values). Decoding reads other members'
//! bytes — untrusted — so it uses the bounded [`Reader`], and follows Java's
//! `ConsumerProtocol.deserialize*`: a version above the newest known (3) is read as 3 (newer
//! versions only append fields), a negative version is an error, and bytes after the known
//! fields are ignored.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    consumer_protocol_assignment as kpa, consumer_protocol_subscription as kps,
    ConsumerProtocolAssignment as KpAssignment, ConsumerProtocolSubscription as KpSubscription,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::reader::{DecodeError, DecodeErrorKind, DecodeResult, Reader};

/// `protocol_type` of consumer groups in JoinGroup/SyncGroup.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Newest subscription version understood and written (what Java 3.x/4.x consumers write).
pub(crate) const SUBSCRIPTION_VERSION: i16 = 3;
/// Newest assignment version understood and written.
pub(crate) const ASSIGNMENT_VERSION: i16 = 3;

/// A topic and some of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// A member's subscription (JoinGroup `protocols[].metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Version found on the wire when decoded (may exceed [`SUBSCRIPTION_VERSION`]).
    pub version: i16,
    pub topics: Vec<String>,
    pub user_data: Option<Bytes>,
    /// Partitions the member owned in the previous generation (v1+; cooperative rebalancing).
    pub owned_partitions: Vec<TopicPartitions>,
    /// Generation of `owned_partitions` (v2+); -1 when unknown.
    pub generation_id: i32,
    /// The member's rack (v3+), for rack-aware assignment.
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            version: SUBSCRIPTION_VERSION,
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// A member's assignment (SyncGroup request from the leader / response to every member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Version found on the wire when decoded.
    pub version: i16,
    pub assigned_partitions: Vec<TopicPartitions>,
    pub user_data: Option<Bytes>,
}

impl Default for Assignment {
    fn default() -> Self {
        Self {
            version: ASSIGNMENT_VERSION,
            assigned_partitions: Vec::new(),
            user_data: None,
        }
    }
}

/// Encoding failed (only for absurd inputs, e.g. a string longer than 32767 bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {what} v{version}: {message}")]
pub struct EncodeError {
    pub what: &'static str,
    pub version: i16,
    pub message: String,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn encode_with<T: Encodable>(
    what: &'static str,
    msg: &T,
    version: i16,
) -> Result<Bytes, EncodeError> {
    let err = |message: String| EncodeError {
        what,
        version,
        message,
    };
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    msg.encode(&mut buf, version)
        .map_err(|e| err(e.to_string()))?;
    Ok(buf.freeze())
}

/// Reads the version prefix and clamps it like Java does.
fn read_version(r: &mut Reader<'_>, newest: i16) -> DecodeResult<(i16, i16)> {
    let wire = r.i16("version")?;
    if wire < 0 {
        return Err(DecodeError::new(
            "version",
            DecodeErrorKind::UnsupportedVersion {
                min: 0,
                max: newest,
            },
        ));
    }
    Ok((wire, wire.min(newest)))
}

fn topic_partitions(r: &mut Reader<'_>) -> DecodeResult<TopicPartitions> {
    let topic = r.string("topic")?;
    let n = r.array_count("partitions")?.unwrap_or(0);
    let partitions = r.read_array("partitions", n, |r| r.i32(""))?;
    Ok(TopicPartitions { topic, partitions })
}

fn topic_partitions_array(r: &mut Reader<'_>, field: &str) -> DecodeResult<Vec<TopicPartitions>> {
    let n = r.array_count(field)?.unwrap_or(0);
    r.read_array(field, n, topic_partitions)
}

impl Subscription {
    const NAME: &'static str = "ConsumerProtocolSubscription";

    /// Encodes at [`SUBSCRIPTION_VERSION`].
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        self.encode_version(SUBSCRIPTION_VERSION)
    }

    /// Encodes at `version` (0..=3); fields the version lacks are left out (as Java does).
    pub fn encode_version(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut m = KpSubscription::default()
            .with_topics(self.topics.iter().map(|t| sb(t)).collect())
            .with_user_data(self.user_data.clone());
        if version >= 1 {
            m = m.with_owned_partitions(
                self.owned_partitions
                    .iter()
                    .map(|tp| {
                        kps::TopicPartition::default()
                            .with_topic(TopicName(sb(&tp.topic)))
                            .with_partitions(tp.partitions.clone())
                    })
                    .collect(),
            );
        }
        if version >= 2 {
            m = m.with_generation_id(self.generation_id);
        }
        if version >= 3 {
            m = m.with_rack_id(self.rack_id.as_deref().map(sb));
        }
        encode_with(Self::NAME, &m, version)
    }

    /// Decodes a member's subscription (untrusted bytes). `user_data` shares `buf`'s storage.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::from_bytes(buf);
        let (wire, v) =
            read_version(&mut r, SUBSCRIPTION_VERSION).map_err(|e| e.in_api(Self::NAME, 0))?;
        Self::decode_body(&mut r, wire, v).map_err(|e| e.in_api(Self::NAME, wire))
    }

    fn decode_body(r: &mut Reader<'_>, wire: i16, v: i16) -> DecodeResult<Self> {
        let n = r.array_count("topics")?.unwrap_or(0);
        let topics = r.read_array("topics", n, |r| r.string(""))?;
        let user_data = r.nullable_bytes("user_data")?;
        let owned_partitions = if v >= 1 {
            topic_partitions_array(r, "owned_partitions")?
        } else {
            Vec::new()
        };
        let generation_id = if v >= 2 { r.i32("generation_id")? } else { -1 };
        let rack_id = if v >= 3 {
            r.nullable_string("rack_id")?
        } else {
            None
        };
        Ok(Self {
            version: wire,
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

impl Assignment {
    const NAME: &'static str = "ConsumerProtocolAssignment";

    /// Encodes at [`ASSIGNMENT_VERSION`].
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        self.encode_version(ASSIGNMENT_VERSION)
    }

    /// Encodes at `version` (0..=3; the body is the same in all of them).
    pub fn encode_version(&self, version: i16) -> Result<Bytes, EncodeError> {
        let m = KpAssignment::default()
            .with_assigned_partitions(
                self.assigned_partitions
                    .iter()
                    .map(|tp| {
                        kpa::TopicPartition::default()
                            .with_topic(TopicName(sb(&tp.topic)))
                            .with_partitions(tp.partitions.clone())
                    })
                    .collect(),
            )
            .with_user_data(self.user_data.clone());
        encode_with(Self::NAME, &m, version)
    }

    /// Decodes an assignment (untrusted bytes). Empty input is an empty assignment: that is
    /// what the coordinator hands a member the leader assigned nothing to.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        if buf.is_empty() {
            return Ok(Self::default());
        }
        let mut r = Reader::from_bytes(buf);
        let (wire, _) =
            read_version(&mut r, ASSIGNMENT_VERSION).map_err(|e| e.in_api(Self::NAME, 0))?;
        Self::decode_body(&mut r, wire).map_err(|e| e.in_api(Self::NAME, wire))
    }

    fn decode_body(r: &mut Reader<'_>, wire: i16) -> DecodeResult<Self> {
        Ok(Self {
            version: wire,
            assigned_partitions: topic_partitions_array(r, "assigned_partitions")?,
            user_data: r.nullable_bytes("user_data")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::Rng;

    fn tp(topic: &str, partitions: &[i32]) -> TopicPartitions {
        TopicPartitions {
            topic: topic.to_owned(),
            partitions: partitions.to_vec(),
        }
    }

    fn full_subscription() -> Subscription {
        Subscription {
            version: 3,
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"\x01\x02")),
            owned_partitions: vec![tp("orders", &[0, 2]), tp("payments", &[])],
            generation_id: 41,
            rack_id: Some("zone-a".into()),
        }
    }

    /// What a version keeps of [`full_subscription`].
    fn at_version(v: i16) -> Subscription {
        let mut s = full_subscription();
        s.version = v;
        if v < 1 {
            s.owned_partitions.clear();
        }
        if v < 2 {
            s.generation_id = -1;
        }
        if v < 3 {
            s.rack_id = None;
        }
        s
    }

    /// Every strict prefix must fail; flipping in huge counts must never panic.
    fn hostile_battery<T: std::fmt::Debug>(valid: &Bytes, decode: fn(&Bytes) -> DecodeResult<T>) {
        for cut in 1..valid.len() {
            assert!(
                decode(&valid.slice(..cut)).is_err(),
                "prefix {cut}/{} decoded",
                valid.len()
            );
        }
        for at in 0..valid.len() {
            for bomb in [&[0x7f, 0xff, 0xff, 0xff][..], &[0xff, 0xfe][..]] {
                let mut m = valid.to_vec();
                let end = (at + bomb.len()).min(m.len());
                m[at..end].copy_from_slice(&bomb[..end - at]);
                let _ = decode(&Bytes::from(m));
            }
        }
        let mut rng = Rng::new(valid.len() as u64);
        for _ in 0..300 {
            let mut m = valid.to_vec();
            let at = rng.below(m.len() as u64) as usize;
            m[at] = rng.next() as u8;
            if rng.below(2) == 0 {
                m.truncate(rng.below(m.len() as u64 + 1) as usize);
            }
            let _ = decode(&Bytes::from(m));
        }
    }

    #[test]
    fn subscription_round_trip_every_version() {
        for v in 0..=3 {
            let bytes = full_subscription().encode_version(v).unwrap();
            assert_eq!(&bytes[..2], &v.to_be_bytes());
            let back = Subscription::decode(&bytes).unwrap();
            assert_eq!(back, at_version(v), "v{v}");
            hostile_battery(&bytes, Subscription::decode);
        }
        assert_eq!(full_subscription().encode().unwrap()[..2], [0, 3]);
    }

    #[test]
    fn subscription_golden_v0() {
        // Hand-written: version 0, topics ["t"], user_data null.
        let b = Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]);
        let s = Subscription::decode(&b).unwrap();
        assert_eq!(s.version, 0);
        assert_eq!(s.topics, ["t"]);
        assert_eq!(s.user_data, None);
        assert_eq!(s.generation_id, -1);
        let mine = Subscription {
            version: 0,
            topics: vec!["t".into()],
            ..Default::default()
        };
        assert_eq!(mine.encode_version(0).unwrap(), b);
    }

    #[test]
    fn newer_versions_read_known_prefix() {
        // v7 from a future client: v3 fields then more bytes we do not know.
        let mut b = full_subscription().encode_version(3).unwrap().to_vec();
        b[..2].copy_from_slice(&7i16.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 5, 1, 2, 3]);
        let s = Subscription::decode(&Bytes::from(b)).unwrap();
        assert_eq!(s.version, 7);
        assert_eq!(s.rack_id.as_deref(), Some("zone-a"));
        assert_eq!(s.owned_partitions, full_subscription().owned_partitions);

        let mut a = Assignment {
            version: 3,
            assigned_partitions: vec![tp("t", &[1])],
            user_data: None,
        }
        .encode()
        .unwrap()
        .to_vec();
        a[..2].copy_from_slice(&[0x7f, 0xff]);
        a.push(9);
        let back = Assignment::decode(&Bytes::from(a)).unwrap();
        assert_eq!(back.version, i16::MAX);
        assert_eq!(back.assigned_partitions, [tp("t", &[1])]);
    }

    #[test]
    fn negative_version_is_an_error() {
        let e = Subscription::decode(&Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0])).unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::UnsupportedVersion { .. }),
            "{e}"
        );
        assert!(Assignment::decode(&Bytes::from_static(&[0x80, 0])).is_err());
    }

    #[test]
    fn assignment_round_trip_every_version() {
        let a = Assignment {
            version: 0,
            assigned_partitions: vec![tp("orders", &[0, 1, 2]), tp("payments", &[5])],
            user_data: Some(Bytes::from_static(b"sticky")),
        };
        for v in 0..=3 {
            let bytes = a.encode_version(v).unwrap();
            let back = Assignment::decode(&bytes).unwrap();
            assert_eq!(
                back,
                Assignment {
                    version: v,
                    ..a.clone()
                }
            );
            // user_data is a slice of the input, not a copy.
            let ud = back.user_data.unwrap();
            let base = bytes.as_ptr() as usize;
            assert!((ud.as_ptr() as usize) >= base && (ud.as_ptr() as usize) < base + bytes.len());
            hostile_battery(&bytes, Assignment::decode);
        }
        assert_eq!(
            Assignment::decode(&Bytes::new()).unwrap(),
            Assignment::default()
        );
    }

    #[test]
    fn count_bombs_fail_without_allocating() {
        // Subscription v0 with topics count i32::MAX.
        let b = Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let e = Subscription::decode(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConsumerProtocolSubscription v0: topics: count 2147483647 exceeds 2 remaining bytes"
        );
        // Assignment: one topic "t" claiming i32::MAX partitions.
        let b = Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff, 0]);
        let e = Assignment::decode(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ConsumerProtocolAssignment v1: assigned_partitions[0].partitions: count 2147483647 exceeds 1 remaining bytes"
        );
        // Null arrays decode as empty (Java's readers accept them too).
        let b = Bytes::from_static(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(Subscription::decode(&b).unwrap().topics.is_empty());
    }

    #[test]
    fn encoding_absurd_strings_is_an_error() {
        let s = Subscription {
            topics: vec!["x".repeat(40_000)],
            ..Default::default()
        };
        let e = s.encode().unwrap_err();
        assert_eq!(e.version, 3);
        assert!(e
            .to_string()
            .starts_with("cannot encode ConsumerProtocolSubscription v3"));
    }
}
