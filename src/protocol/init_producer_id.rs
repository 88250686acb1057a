//! InitProducerId (key 22), versions 0..=5 (flexible from 2): the idempotent producer's
//! identity. Without a transactional id any broker answers; the producer id and epoch then go
//! into every batch, and the broker drops a batch whose sequence numbers it has already written,
//! so a retry after a lost answer never writes a record twice.

use kafka_protocol::messages::InitProducerIdRequest;

use super::reader::{DecodeResult, Reader};
use super::Response;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitProducerIdResponse {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

impl Response for InitProducerIdResponse {
    const NAME: &'static str = "InitProducerId";
    const API_KEY: i16 = 22;
    const VERSIONS: (i16, i16) = (0, 5);
    const FIRST_FLEXIBLE: i16 = 2;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let out = Self {
            throttle_time_ms: r.i32("throttle_time_ms")?,
            error_code: r.i16("error_code")?,
            producer_id: r.i64("producer_id")?,
            producer_epoch: r.i16("producer_epoch")?,
        };
        r.tagged_fields(flex)?;
        Ok(out)
    }
}

/// A new idempotent (not transactional) producer identity.
pub fn request() -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_body;
    use crate::protocol::testutil::{encode, exercise};
    use kafka_protocol::messages::InitProducerIdResponse as Kp;
    use kafka_protocol::messages::ProducerId;

    #[test]
    fn round_trip_every_version() {
        for v in 0..=5 {
            let theirs = Kp::default()
                .with_throttle_time_ms(3)
                .with_error_code(0)
                .with_producer_id(ProducerId(77_000_000_001))
                .with_producer_epoch(4);
            let body = encode(&theirs, v);
            let ours: InitProducerIdResponse = decode_body(&body, v).unwrap();
            assert_eq!(
                ours,
                InitProducerIdResponse {
                    throttle_time_ms: 3,
                    error_code: 0,
                    producer_id: 77_000_000_001,
                    producer_epoch: 4,
                }
            );
            exercise::<InitProducerIdResponse>(v, &body, 4);
        }
    }

    #[test]
    fn the_request_encodes_at_every_version() {
        for v in 0..=5 {
            encode(&request(), v);
        }
    }
}
