//! DescribeGroups (key 15), versions 0..=5 (flexible from 5). v6 (Kafka 4.0+) adds a per-group
//! error message; its decoding is implemented and tested but not enabled in `VERSIONS`.

use bytes::Bytes;

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribedGroupMember {
    pub member_id: String,
    /// Static membership id (v4+); None before or when not static.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Raw protocol metadata (for "consumer": the subscription).
    pub member_metadata: Bytes,
    /// Raw assignment (for "consumer": the assigned partitions).
    pub member_assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribedGroup {
    pub error_code: i16,
    /// v6+ only; always None at the enabled versions.
    pub error_message: Option<String>,
    pub group_id: String,
    pub group_state: String,
    pub protocol_type: String,
    pub protocol_data: String,
    pub members: Vec<DescribedGroupMember>,
    /// Bit field (v3+, when requested); i32::MIN when absent.
    pub authorized_operations: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeGroupsResponse {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    pub groups: Vec<DescribedGroup>,
}

impl DescribedGroupMember {
    fn decode(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<Self> {
        let member_id = r.flex_string("member_id", flex)?;
        let group_instance_id = if version >= 4 {
            r.flex_nullable_string("group_instance_id", flex)?
        } else {
            None
        };
        let m = Self {
            member_id,
            group_instance_id,
            client_id: r.flex_string("client_id", flex)?,
            client_host: r.flex_string("client_host", flex)?,
            member_metadata: r.flex_bytes("member_metadata", flex)?,
            member_assignment: r.flex_bytes("member_assignment", flex)?,
        };
        r.tagged_fields(flex)?;
        Ok(m)
    }
}

impl DescribedGroup {
    fn decode(r: &mut Reader<'_>, version: i16, flex: bool) -> DecodeResult<Self> {
        let error_code = r.i16("error_code")?;
        let error_message = if version >= 6 {
            r.compact_nullable_string("error_message")?
        } else {
            None
        };
        let g = Self {
            error_code,
            error_message,
            group_id: r.flex_string("group_id", flex)?,
            group_state: r.flex_string("group_state", flex)?,
            protocol_type: r.flex_string("protocol_type", flex)?,
            protocol_data: r.flex_string("protocol_data", flex)?,
            members: r.flex_array("members", flex, |r| {
                DescribedGroupMember::decode(r, version, flex)
            })?,
            authorized_operations: if version >= 3 {
                r.i32("authorized_operations")?
            } else {
                i32::MIN
            },
        };
        r.tagged_fields(flex)?;
        Ok(g)
    }
}

impl Response for DescribeGroupsResponse {
    const NAME: &'static str = "DescribeGroups";
    const API_KEY: i16 = super::api::DESCRIBE_GROUPS;
    const VERSIONS: (i16, i16) = (0, 5);
    const FIRST_FLEXIBLE: i16 = 5;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let groups = r.flex_array("groups", flex, |r| DescribedGroup::decode(r, version, flex))?;
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
    use crate::protocol::testutil::{
        assert_count_bomb, assert_string_bomb, decode_unchecked, encode, exercise, CLASSIC_HUGE,
    };
    use crate::protocol::{decode_body, decode_body_bytes, DecodeErrorKind};
    use kafka_protocol::messages::describe_groups_response as kp;
    use kafka_protocol::messages::{DescribeGroupsResponse as KpResponse, GroupId};
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn sample(version: i16) -> KpResponse {
        let member = |id: &'static str, instance: Option<&'static str>| {
            let mut m = kp::DescribedGroupMember::default()
                .with_member_id(s(id))
                .with_client_id(s("rdkafka"))
                .with_client_host(s("/10.0.0.7"))
                .with_member_metadata(Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 6]))
                .with_member_assignment(Bytes::from_static(b""));
            if version >= 4 {
                m = m.with_group_instance_id(instance.map(s));
            }
            m
        };
        let group = |id: &'static str, err: i16, members| {
            let mut g = kp::DescribedGroup::default()
                .with_error_code(err)
                .with_group_id(GroupId(s(id)))
                .with_group_state(s("Stable"))
                .with_protocol_type(s("consumer"))
                .with_protocol_data(s("range"))
                .with_members(members);
            if version >= 3 {
                g = g.with_authorized_operations(0x0123);
            }
            if version >= 6 && err != 0 {
                g = g.with_error_message(Some(s("not authorized")));
            }
            g
        };
        let mut m = KpResponse::default().with_groups(vec![
            group(
                "billing",
                0,
                vec![member("m-1", None), member("m-2", Some("pod-2"))],
            ),
            group("secret", 30, vec![]),
        ]);
        if version >= 1 {
            m = m.with_throttle_time_ms(12);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 0..=6 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: DescribeGroupsResponse = if v <= 5 {
                decode_body(&body, v).unwrap()
            } else {
                decode_unchecked(&body, v)
            };
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            assert_eq!(ours.groups.len(), 2);
            for (o, t) in ours.groups.iter().zip(&theirs.groups) {
                assert_eq!(o.error_code, t.error_code);
                assert_eq!(o.error_message.as_deref(), t.error_message.as_deref());
                assert_eq!(o.group_id, t.group_id.0.as_str());
                assert_eq!(o.group_state, t.group_state.as_str());
                assert_eq!(o.protocol_type, t.protocol_type.as_str());
                assert_eq!(o.protocol_data, t.protocol_data.as_str());
                assert_eq!(o.authorized_operations, t.authorized_operations);
                assert_eq!(o.members.len(), t.members.len());
                for (om, tm) in o.members.iter().zip(&t.members) {
                    assert_eq!(om.member_id, tm.member_id.as_str());
                    assert_eq!(
                        om.group_instance_id.as_deref(),
                        tm.group_instance_id.as_deref()
                    );
                    assert_eq!(om.client_id, tm.client_id.as_str());
                    assert_eq!(om.client_host, tm.client_host.as_str());
                    assert_eq!(om.member_metadata, tm.member_metadata);
                    assert_eq!(om.member_assignment, tm.member_assignment);
                }
            }
            assert_eq!(
                ours.groups[0].members[1].group_instance_id.is_some(),
                v >= 4
            );
            assert_eq!(ours.groups[1].error_message.is_some(), v >= 6);
            if v <= 5 {
                let shared = Bytes::from(body.clone());
                assert_eq!(
                    decode_body_bytes::<DescribeGroupsResponse>(&shared, v).unwrap(),
                    ours
                );
                exercise::<DescribeGroupsResponse>(v, &body, 15);
            }
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<DescribeGroupsResponse>(0, &[]);
        assert_count_bomb::<DescribeGroupsResponse>(1, &[0; 4]);
        assert_count_bomb::<DescribeGroupsResponse>(5, &[0; 4]);
        // v0: groups[0].group_id length.
        assert_string_bomb::<DescribeGroupsResponse>(0, &[0, 0, 0, 1, 0, 0]);
        // v0: groups[0].members[0].member_metadata length i32::MAX.
        let mut body = vec![0, 0, 0, 1, 0, 0];
        for _ in 0..4 {
            body.extend_from_slice(&[0, 0]); // empty group_id, state, protocol type/data
        }
        body.extend_from_slice(&[0, 0, 0, 1]); // one member
        for _ in 0..3 {
            body.extend_from_slice(&[0, 0]); // member_id, client_id, client_host
        }
        body.extend_from_slice(&CLASSIC_HUGE);
        body.extend_from_slice(&[0; 8]);
        let e = decode_body::<DescribeGroupsResponse>(&body, 0).unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthExceedsRemaining { what: "length", .. }
        ));
        assert_eq!(
            e.to_string(),
            "DescribeGroups v0: groups[0].members[0].member_metadata: length 2147483647 exceeds 8 remaining bytes"
        );
    }
}
