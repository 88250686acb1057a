//! FindCoordinator (key 10), versions 0..=4 (flexible from 3). v4+ batches keys; v0–3 answer
//! for the single key asked and are normalised into one [`Coordinator`] with an empty `key`.
//! v5 and v6 have v4's layout (they add the TRANSACTION_ABORTABLE error and the share key type):
//! decoding them is tested, but they are not enabled in `VERSIONS`.

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Coordinator {
    /// The key asked for (v4+); empty for v0–3.
    pub key: String,
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub error_code: i16,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorResponse {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    pub coordinators: Vec<Coordinator>,
}

impl Response for FindCoordinatorResponse {
    const NAME: &'static str = "FindCoordinator";
    const API_KEY: i16 = super::api::FIND_COORDINATOR;
    const VERSIONS: (i16, i16) = (0, 4);
    const FIRST_FLEXIBLE: i16 = 3;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let coordinators = if version >= 4 {
            r.flex_array("coordinators", flex, |r| {
                let c = Coordinator {
                    key: r.compact_string("key")?,
                    node_id: r.i32("node_id")?,
                    host: r.compact_string("host")?,
                    port: r.i32("port")?,
                    error_code: r.i16("error_code")?,
                    error_message: r.compact_nullable_string("error_message")?,
                };
                r.tagged_fields(flex)?;
                Ok(c)
            })?
        } else {
            let error_code = r.i16("error_code")?;
            let error_message = if version >= 1 {
                r.flex_nullable_string("error_message", flex)?
            } else {
                None
            };
            vec![Coordinator {
                key: String::new(),
                error_code,
                error_message,
                node_id: r.i32("node_id")?,
                host: r.flex_string("host", flex)?,
                port: r.i32("port")?,
            }]
        };
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            coordinators,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{
        assert_count_bomb, assert_string_bomb, decode_unchecked, encode, exercise,
    };
    use kafka_protocol::messages::find_coordinator_response as kp;
    use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse as KpResponse};
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn samples(version: i16) -> Vec<KpResponse> {
        if version >= 4 {
            vec![KpResponse::default()
                .with_throttle_time_ms(3)
                .with_coordinators(vec![
                    kp::Coordinator::default()
                        .with_key(s("group-a"))
                        .with_node_id(BrokerId(2))
                        .with_host(s("b2"))
                        .with_port(9092)
                        .with_error_message(None),
                    kp::Coordinator::default()
                        .with_key(s("group-b"))
                        .with_node_id(BrokerId(-1))
                        .with_error_code(15)
                        .with_error_message(Some(s("not available"))),
                ])]
        } else {
            [None, Some("coordinator loading")]
                .into_iter()
                .map(|msg| {
                    let mut m = KpResponse::default()
                        .with_error_code(if msg.is_some() { 14 } else { 0 })
                        .with_node_id(BrokerId(7))
                        .with_host(s("b7.example"))
                        .with_port(9094);
                    if version >= 1 {
                        m = m.with_throttle_time_ms(5).with_error_message(msg.map(s));
                    }
                    m
                })
                .collect()
        }
    }

    #[test]
    fn round_trip_every_version() {
        for v in 0..=6 {
            for theirs in samples(v) {
                let body = encode(&theirs, v);
                let ours: FindCoordinatorResponse = if v <= 4 {
                    decode_body(&body, v).unwrap()
                } else {
                    decode_unchecked(&body, v)
                };
                assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
                if v >= 4 {
                    assert_eq!(ours.coordinators.len(), theirs.coordinators.len());
                    for (o, t) in ours.coordinators.iter().zip(&theirs.coordinators) {
                        assert_eq!(o.key, t.key.as_str());
                        assert_eq!(o.node_id, t.node_id.0);
                        assert_eq!(o.host, t.host.as_str());
                        assert_eq!(o.port, t.port);
                        assert_eq!(o.error_code, t.error_code);
                        assert_eq!(o.error_message.as_deref(), t.error_message.as_deref());
                    }
                } else {
                    let [c] = &ours.coordinators[..] else {
                        panic!("one coordinator")
                    };
                    assert_eq!(c.key, "");
                    assert_eq!(c.node_id, theirs.node_id.0);
                    assert_eq!(c.host, theirs.host.as_str());
                    assert_eq!(c.port, theirs.port);
                    assert_eq!(c.error_code, theirs.error_code);
                    let expected = if v >= 1 {
                        theirs.error_message.as_deref()
                    } else {
                        None
                    };
                    assert_eq!(c.error_message.as_deref(), expected);
                }
                if v <= 4 {
                    exercise::<FindCoordinatorResponse>(v, &body, 10);
                }
            }
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<FindCoordinatorResponse>(4, &[0; 4]);
        assert!(decode_body::<FindCoordinatorResponse>(&[0; 64], 6).is_err());
        // v0: error_code, node_id, host length.
        assert_string_bomb::<FindCoordinatorResponse>(0, &[0; 6]);
        // v3: throttle, error_code, error_message length.
        assert_string_bomb::<FindCoordinatorResponse>(3, &[0; 6]);
        // v4: coordinators[0].key length.
        assert_string_bomb::<FindCoordinatorResponse>(4, &[0, 0, 0, 0, 2]);
    }
}
