//! Heartbeat (key 12), versions 0..=4 (flexible from 4): the classic group member's keep-alive.
//! The error code is the whole answer (REBALANCE_IN_PROGRESS means "re-join").

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatResponse {
    /// 0 before v1.
    pub throttle_time_ms: i32,
    pub error_code: i16,
}

impl Response for HeartbeatResponse {
    const NAME: &'static str = "Heartbeat";
    const API_KEY: i16 = super::api::HEARTBEAT;
    const VERSIONS: (i16, i16) = (0, 4);
    const FIRST_FLEXIBLE: i16 = 4;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        let error_code = r.i16("error_code")?;
        r.tagged_fields(flex)?;
        Ok(Self {
            throttle_time_ms,
            error_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{encode, exercise};
    use crate::protocol::{decode_body, DecodeErrorKind};
    use kafka_protocol::messages::HeartbeatResponse as KpResponse;

    #[test]
    fn round_trip_every_version() {
        for v in 0..=4 {
            let mut theirs = KpResponse::default().with_error_code(27);
            if v >= 1 {
                theirs = theirs.with_throttle_time_ms(41);
            }
            let body = encode(&theirs, v);
            let ours: HeartbeatResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
            assert_eq!(ours.error_code, 27);
            exercise::<HeartbeatResponse>(v, &body, 12);
        }
    }

    #[test]
    fn hostile() {
        // v4 with a tagged field whose size runs past the body.
        let e = decode_body::<HeartbeatResponse>(&[0, 0, 0, 0, 0, 0, 1, 0, 0x7f], 4).unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::LengthExceedsRemaining { .. }),
            "{e}"
        );
        // Unknown tagged fields are skipped.
        let ok = decode_body::<HeartbeatResponse>(&[0, 0, 0, 1, 0, 3, 1, 9, 1, 0xaa], 4).unwrap();
        assert_eq!(ok.error_code, 3);
        assert!(decode_body::<HeartbeatResponse>(&[], 5).is_err());
    }
}
