//! JoinGroup (key 11), versions 2..=9 (flexible from 6): the classic group protocol's join.
//! The leader's response carries every member's subscription metadata (for protocol type
//! "consumer": a ConsumerProtocolSubscription, see [`super::consumer_protocol`]).

use bytes::Bytes;

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupMember {
    pub member_id: String,
    /// Static membership id (v5+); None before or when not static.
    pub group_instance_id: Option<String>,
    /// The member's protocol metadata (shares the frame with `decode_body_bytes`).
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub generation_id: i32,
    /// v7+; None before.
    pub protocol_type: Option<String>,
    /// The chosen protocol (assignor). Nullable only from v7 (on errors).
    pub protocol_name: Option<String>,
    pub leader: String,
    /// v9+: the leader must not compute an assignment (a server-side assignor did). False before.
    pub skip_assignment: bool,
    /// This member's id (assigned by the coordinator; MEMBER_ID_REQUIRED hands it out on v4+).
    pub member_id: String,
    /// Non-empty only in the leader's response.
    pub members: Vec<JoinGroupMember>,
}

impl Response for JoinGroupResponse {
    const NAME: &'static str = "JoinGroup";
    const API_KEY: i16 = super::api::JOIN_GROUP;
    const VERSIONS: (i16, i16) = (2, 9);
    const FIRST_FLEXIBLE: i16 = 6;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = r.i32("throttle_time_ms")?;
        let error_code = r.i16("error_code")?;
        let generation_id = r.i32("generation_id")?;
        let protocol_type = if version >= 7 {
            r.compact_nullable_string("protocol_type")?
        } else {
            None
        };
        let protocol_name = if version >= 7 {
            r.compact_nullable_string("protocol_name")?
        } else {
            Some(r.flex_string("protocol_name", flex)?)
        };
        let leader = r.flex_string("leader", flex)?;
        let skip_assignment = if version >= 9 {
            r.bool("skip_assignment")?
        } else {
            false
        };
        let member_id = r.flex_string("member_id", flex)?;
        let members = r.flex_array("members", flex, |r| {
            let member_id = r.flex_string("member_id", flex)?;
            let group_instance_id = if version >= 5 {
                r.flex_nullable_string("group_instance_id", flex)?
            } else {
                None
            };
            let metadata = r.flex_bytes("metadata", flex)?;
            r.tagged_fields(flex)?;
            Ok(JoinGroupMember {
                member_id,
                group_instance_id,
                metadata,
            })
        })?;
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            generation_id,
            protocol_type,
            protocol_name,
            leader,
            skip_assignment,
            member_id,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{assert_count_bomb, assert_string_bomb, encode, exercise};
    use crate::protocol::{decode_body, decode_body_bytes};
    use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
    use kafka_protocol::messages::JoinGroupResponse as KpResponse;
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn sample(v: i16, leader: bool) -> KpResponse {
        let member = |id: &'static str, instance: Option<&'static str>, meta: &'static [u8]| {
            let mut m = JoinGroupResponseMember::default()
                .with_member_id(s(id))
                .with_metadata(Bytes::from_static(meta));
            if v >= 5 {
                m = m.with_group_instance_id(instance.map(s));
            }
            m
        };
        let mut m = KpResponse::default()
            .with_throttle_time_ms(2)
            .with_error_code(0)
            .with_generation_id(7)
            .with_protocol_name(Some(s("range")))
            .with_leader(s("m-1"))
            .with_member_id(s(if leader { "m-1" } else { "m-2" }));
        if leader {
            m = m.with_members(vec![
                member(
                    "m-1",
                    None,
                    &[0, 3, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff],
                ),
                member("m-2", Some("pod-2"), b""),
            ]);
        }
        if v >= 7 {
            m = m.with_protocol_type(Some(s("consumer")));
        }
        if v >= 9 {
            m = m.with_skip_assignment(leader);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 2..=9 {
            for leader in [true, false] {
                let theirs = sample(v, leader);
                let body = encode(&theirs, v);
                let ours: JoinGroupResponse = decode_body(&body, v).unwrap();
                assert_eq!(ours.throttle_time_ms, 2);
                assert_eq!(ours.error_code, theirs.error_code);
                assert_eq!(ours.generation_id, 7);
                assert_eq!(
                    ours.protocol_type.as_deref(),
                    theirs.protocol_type.as_deref()
                );
                assert_eq!(ours.protocol_name.as_deref(), Some("range"));
                assert_eq!(ours.leader, "m-1");
                assert_eq!(ours.skip_assignment, theirs.skip_assignment);
                assert_eq!(ours.member_id, theirs.member_id.as_str());
                assert_eq!(ours.members.len(), theirs.members.len());
                for (o, t) in ours.members.iter().zip(&theirs.members) {
                    assert_eq!(o.member_id, t.member_id.as_str());
                    assert_eq!(
                        o.group_instance_id.as_deref(),
                        t.group_instance_id.as_deref()
                    );
                    assert_eq!(o.metadata, t.metadata);
                }
                if leader {
                    assert_eq!(ours.members[1].group_instance_id.is_some(), v >= 5);
                }
                assert_eq!(ours.skip_assignment, v >= 9 && leader);
                let shared = Bytes::from(body.clone());
                assert_eq!(
                    decode_body_bytes::<JoinGroupResponse>(&shared, v).unwrap(),
                    ours
                );
                exercise::<JoinGroupResponse>(v, &body, 11);
            }
        }
    }

    #[test]
    fn error_response_with_null_protocol() {
        // v7+: a failed join carries null protocol type/name.
        let theirs = KpResponse::default()
            .with_error_code(79)
            .with_generation_id(-1)
            .with_protocol_name(None)
            .with_member_id(s("m-9"));
        for v in 7..=9 {
            let ours: JoinGroupResponse = decode_body(&encode(&theirs, v), v).unwrap();
            assert_eq!(ours.error_code, 79);
            assert_eq!(ours.protocol_name, None);
            assert_eq!(ours.protocol_type, None);
            assert_eq!(ours.member_id, "m-9");
        }
        // Before v7 a null protocol name is invalid.
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(decode_body::<JoinGroupResponse>(&body, 5).is_err());
    }

    #[test]
    fn hostile() {
        // v2: throttle, error, generation, protocol "", leader "", member "" then members.
        assert_count_bomb::<JoinGroupResponse>(
            2,
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        // v9 adds protocol_type (null) and skip_assignment.
        assert_count_bomb::<JoinGroupResponse>(9, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
        assert_string_bomb::<JoinGroupResponse>(6, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // members[0].metadata length i32::MAX (v5).
        let mut body = vec![0u8; 10];
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // protocol, leader, member_id
        body.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0xff, 0xff]); // one member, id "", instance null
        body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 1]);
        let e = decode_body::<JoinGroupResponse>(&body, 5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "JoinGroup v5: members[0].metadata: length 2147483647 exceeds 1 remaining bytes"
        );
    }
}
