//! LeaveGroup (key 13), versions 0..=5 (flexible from 4). v3+ answers per member (batch leave
//! of static members, KIP-345).

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupResponse {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    pub error_code: i16,
    /// Per-member results, v3+; empty before.
    pub members: Vec<LeaveGroupMember>,
}

impl Response for LeaveGroupResponse {
    const NAME: &'static str = "LeaveGroup";
    const API_KEY: i16 = super::api::LEAVE_GROUP;
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
        let members = if version >= 3 {
            r.flex_array("members", flex, |r| {
                let m = LeaveGroupMember {
                    member_id: r.flex_string("member_id", flex)?,
                    group_instance_id: r.flex_nullable_string("group_instance_id", flex)?,
                    error_code: r.i16("error_code")?,
                };
                r.tagged_fields(flex)?;
                Ok(m)
            })?
        } else {
            Vec::new()
        };
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{assert_count_bomb, assert_string_bomb, encode, exercise};
    use kafka_protocol::messages::leave_group_response::MemberResponse;
    use kafka_protocol::messages::LeaveGroupResponse as KpResponse;
    use kafka_protocol::protocol::StrBytes;

    fn sample(v: i16) -> KpResponse {
        let mut m = KpResponse::default().with_error_code(16);
        if v >= 1 {
            m = m.with_throttle_time_ms(5);
        }
        if v >= 3 {
            m = m.with_members(vec![
                MemberResponse::default()
                    .with_member_id(StrBytes::from_static_str("m-1"))
                    .with_group_instance_id(None),
                MemberResponse::default()
                    .with_member_id(StrBytes::from_static_str(""))
                    .with_group_instance_id(Some(StrBytes::from_static_str("pod-2")))
                    .with_error_code(82),
            ]);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 0..=5 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: LeaveGroupResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            assert_eq!(ours.error_code, 16);
            assert_eq!(ours.members.len(), theirs.members.len());
            for (o, t) in ours.members.iter().zip(&theirs.members) {
                assert_eq!(o.member_id, t.member_id.as_str());
                assert_eq!(
                    o.group_instance_id.as_deref(),
                    t.group_instance_id.as_deref()
                );
                assert_eq!(o.error_code, t.error_code);
            }
            assert_eq!(ours.members.len(), if v >= 3 { 2 } else { 0 });
            exercise::<LeaveGroupResponse>(v, &body, 13);
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<LeaveGroupResponse>(3, &[0; 6]);
        assert_count_bomb::<LeaveGroupResponse>(5, &[0; 6]);
        // members[0].member_id length.
        assert_string_bomb::<LeaveGroupResponse>(4, &[0, 0, 0, 0, 0, 0, 2]);
        assert_string_bomb::<LeaveGroupResponse>(3, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    }
}
