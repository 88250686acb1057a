//! SyncGroup (key 14), versions 0..=5 (flexible from 4): the coordinator hands each member the
//! assignment the leader computed. For protocol type "consumer" the bytes are a
//! ConsumerProtocolAssignment (see [`super::consumer_protocol`]).

use bytes::Bytes;

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupResponse {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    pub error_code: i16,
    /// v5+; None before.
    pub protocol_type: Option<String>,
    /// v5+; None before.
    pub protocol_name: Option<String>,
    /// This member's assignment (shares the frame's storage with `decode_body_bytes`).
    pub assignment: Bytes,
}

impl Response for SyncGroupResponse {
    const NAME: &'static str = "SyncGroup";
    const API_KEY: i16 = super::api::SYNC_GROUP;
    const VERSIONS: (i16, i16) = (0, 5);
    const FIRST_FLEXIBLE: i16 = 4;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = r.i16("error_code")?;
        let (protocol_type, protocol_name) = if version >= 5 {
            (
                r.compact_nullable_string("protocol_type")?,
                r.compact_nullable_string("protocol_name")?,
            )
        } else {
            (None, None)
        };
        let assignment = r.flex_bytes("assignment", flex)?;
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            protocol_type,
            protocol_name,
            assignment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{assert_string_bomb, encode, exercise};
    use crate::protocol::{decode_body, decode_body_bytes};
    use kafka_protocol::messages::SyncGroupResponse as KpResponse;
    use kafka_protocol::protocol::StrBytes;

    fn sample(v: i16, assignment: &'static [u8]) -> KpResponse {
        let mut m = KpResponse::default()
            .with_error_code(if assignment.is_empty() { 25 } else { 0 })
            .with_assignment(Bytes::from_static(assignment));
        if v >= 1 {
            m = m.with_throttle_time_ms(3);
        }
        if v >= 5 {
            m = m
                .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                .with_protocol_name(if assignment.is_empty() {
                    None
                } else {
                    Some(StrBytes::from_static_str("range"))
                });
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 0..=5 {
            for assignment in [&b""[..], &[0, 3, 0, 0, 0, 1, 0, 1, b't'][..]] {
                let theirs = sample(v, assignment);
                let body = encode(&theirs, v);
                let ours: SyncGroupResponse = decode_body(&body, v).unwrap();
                assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
                assert_eq!(ours.error_code, theirs.error_code);
                assert_eq!(
                    ours.protocol_type.as_deref(),
                    theirs.protocol_type.as_deref()
                );
                assert_eq!(
                    ours.protocol_name.as_deref(),
                    theirs.protocol_name.as_deref()
                );
                assert_eq!(ours.assignment, theirs.assignment);
                if v >= 5 {
                    assert_eq!(ours.protocol_type.as_deref(), Some("consumer"));
                }
                exercise::<SyncGroupResponse>(v, &body, 14);
                // Zero-copy: the assignment points into the frame.
                let shared = Bytes::from(body.clone());
                let z = decode_body_bytes::<SyncGroupResponse>(&shared, v).unwrap();
                if !z.assignment.is_empty() {
                    let start = shared.as_ptr() as usize;
                    let p = z.assignment.as_ptr() as usize;
                    assert!(p >= start && p < start + shared.len());
                }
            }
        }
    }

    #[test]
    fn hostile() {
        // v0 assignment length i32::MAX.
        let e =
            decode_body::<SyncGroupResponse>(&[0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2], 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SyncGroup v0: assignment: length 2147483647 exceeds 2 remaining bytes"
        );
        // v0 null assignment is invalid.
        assert!(decode_body::<SyncGroupResponse>(&[0, 0, 0xff, 0xff, 0xff, 0xff], 0).is_err());
        // v5 protocol_type length bomb.
        assert_string_bomb::<SyncGroupResponse>(5, &[0, 0, 0, 0, 0, 0]);
    }
}
