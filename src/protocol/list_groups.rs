//! ListGroups (key 16), versions 0..=5 (flexible from 3).

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedGroup {
    pub group_id: String,
    /// "consumer" for classic consumer groups; empty for simple/offset-only groups.
    pub protocol_type: String,
    /// v4+ ("Stable", "Empty", ...); None before.
    pub group_state: Option<String>,
    /// v5+ ("classic", "consumer", "share", ...); None before.
    pub group_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsResponse {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub groups: Vec<ListedGroup>,
}

impl Response for ListGroupsResponse {
    const NAME: &'static str = "ListGroups";
    const API_KEY: i16 = super::api::LIST_GROUPS;
    const VERSIONS: (i16, i16) = (0, 5);
    const FIRST_FLEXIBLE: i16 = 3;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = r.i16("error_code")?;
        let groups = r.flex_array("groups", flex, |r| {
            let g = ListedGroup {
                group_id: r.flex_string("group_id", flex)?,
                protocol_type: r.flex_string("protocol_type", flex)?,
                group_state: if version >= 4 {
                    Some(r.compact_string("group_state")?)
                } else {
                    None
                },
                group_type: if version >= 5 {
                    Some(r.compact_string("group_type")?)
                } else {
                    None
                },
            };
            r.tagged_fields(flex)?;
            Ok(g)
        })?;
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{assert_count_bomb, assert_string_bomb, encode, exercise};
    use kafka_protocol::messages::list_groups_response as kp;
    use kafka_protocol::messages::{GroupId, ListGroupsResponse as KpResponse};
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn sample(version: i16) -> KpResponse {
        let group =
            |id: &'static str, proto: &'static str, state: &'static str, ty: &'static str| {
                let mut g = kp::ListedGroup::default()
                    .with_group_id(GroupId(s(id)))
                    .with_protocol_type(s(proto));
                if version >= 4 {
                    g = g.with_group_state(s(state));
                }
                if version >= 5 {
                    g = g.with_group_type(s(ty));
                }
                g
            };
        let mut m = KpResponse::default().with_groups(vec![
            group("billing", "consumer", "Stable", "classic"),
            group("offsets-only", "", "Empty", "consumer"),
        ]);
        if version >= 1 {
            m = m.with_throttle_time_ms(4);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 0..=5 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: ListGroupsResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            assert_eq!(ours.error_code, theirs.error_code);
            assert_eq!(ours.groups.len(), 2);
            for (o, t) in ours.groups.iter().zip(&theirs.groups) {
                assert_eq!(o.group_id, t.group_id.0.as_str());
                assert_eq!(o.protocol_type, t.protocol_type.as_str());
                assert_eq!(
                    o.group_state.as_deref(),
                    (v >= 4).then(|| t.group_state.as_str())
                );
                assert_eq!(
                    o.group_type.as_deref(),
                    (v >= 5).then(|| t.group_type.as_str())
                );
            }
            exercise::<ListGroupsResponse>(v, &body, 16);
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<ListGroupsResponse>(0, &[0, 0]);
        assert_count_bomb::<ListGroupsResponse>(1, &[0; 6]);
        assert_count_bomb::<ListGroupsResponse>(5, &[0; 6]);
        assert_string_bomb::<ListGroupsResponse>(2, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_string_bomb::<ListGroupsResponse>(4, &[0, 0, 0, 0, 0, 0, 2]);
    }
}
