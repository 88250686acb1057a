//! Response decoders that never trust a count from the wire.
//!
//! Why this exists: kafka-protocol 0.18's decoders call `Vec::with_capacity(n)` with `n` read
//! straight from the wire. A 14-byte hostile Metadata response claiming 2^31 brokers makes the
//! allocator fail and the process *aborts* (SIGABRT, not a panic; nothing can catch it), and no
//! frame-size limit helps because the bomb is tiny. So requests are still *encoded* with
//! kafka-protocol, but every response the project reads is *decoded* here, on top of
//! [`Reader`], which checks every length and count against the bytes actually present before
//! copying or reserving anything. Memory used by a decode is therefore bounded by the size of
//! the frame that was already received. Never hand untrusted bytes to a kafka-protocol decoder.
//!
//! Each decoder parses every field of its versions (even the ones it drops) so that the
//! trailing-bytes check in [`decode_body`] catches a version mismatch instead of silently
//! returning garbage. No I/O here.

pub(crate) mod api;
pub(crate) mod api_versions;
pub mod consumer_protocol;
pub(crate) mod describe_groups;
pub(crate) mod error;
pub mod fetch;
pub(crate) mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub(crate) mod offset_fetch;
pub mod produce;
pub(crate) mod reader;
pub mod records;
pub(crate) mod sasl;
pub mod sync_group;

#[cfg(test)]
pub(crate) mod testutil;

pub use api_versions::{decode_api_versions, ApiVersionsResponse};
pub use describe_groups::DescribeGroupsResponse;
pub(crate) use describe_groups::DescribedGroup;
pub use find_coordinator::FindCoordinatorResponse;
pub use list_groups::ListGroupsResponse;
pub use list_offsets::ListOffsetsResponse;
pub use metadata::MetadataResponse;
pub use offset_fetch::OffsetFetchResponse;
pub use reader::Reader;
pub(crate) use reader::{DecodeError, DecodeErrorKind};
pub use sasl::{SaslAuthenticateResponse, SaslHandshakeResponse};

/// `FIRST_FLEXIBLE` of an API that never uses the flexible encoding.
pub(crate) const NEVER_FLEXIBLE: i16 = i16::MAX;

/// A response body this crate can decode safely.
pub trait Response: Sized {
    /// API name used in error messages ("Metadata").
    const NAME: &'static str;
    /// Kafka API key (same as kafka_protocol's Request::KEY for the matching request).
    const API_KEY: i16;
    /// Inclusive range of versions this decoder understands.
    const VERSIONS: (i16, i16);
    /// First version using the flexible (tagged-field) encoding ([`NEVER_FLEXIBLE`] if none).
    const FIRST_FLEXIBLE: i16;
    /// Decodes the body at `version`. Callers normally go through [`decode_body`], which also
    /// checks the version range and rejects trailing bytes.
    fn decode(r: &mut Reader<'_>, version: i16) -> Result<Self, DecodeError>;
}

fn decode_with<R: Response>(mut r: Reader<'_>, version: i16) -> Result<R, DecodeError> {
    let (min, max) = R::VERSIONS;
    if !(min..=max).contains(&version) {
        return Err(
            DecodeError::new("", DecodeErrorKind::UnsupportedVersion { min, max })
                .in_api(R::NAME, version),
        );
    }
    let out = R::decode(&mut r, version).map_err(|e| e.in_api(R::NAME, version))?;
    r.expect_end().map_err(|e| e.in_api(R::NAME, version))?;
    Ok(out)
}

/// Decodes a whole response BODY (after the response header) and rejects trailing bytes.
/// Byte fields are copied out of `body`.
pub fn decode_body<R: Response>(body: &[u8], version: i16) -> Result<R, DecodeError> {
    decode_with(Reader::new(body), version)
}

/// Like [`decode_body`], but byte fields (`Bytes`) share `body`'s storage instead of copying.
pub fn decode_body_bytes<R: Response>(body: &bytes::Bytes, version: i16) -> Result<R, DecodeError> {
    decode_with(Reader::from_bytes(body), version)
}

/// Response header: correlation id (+ tagged fields when flexible). ApiVersions responses
/// always use header v0 (see `response_header_flexible`, which the tests use).
pub fn decode_response_header(r: &mut Reader<'_>, flexible: bool) -> Result<i32, DecodeError> {
    let correlation_id = r
        .i32("correlation_id")
        .map_err(|e| e.in_api("ResponseHeader", i16::from(flexible)))?;
    r.tagged_fields(flexible)
        .map_err(|e| e.in_api("ResponseHeader", i16::from(flexible)))?;
    Ok(correlation_id)
}

#[cfg(test)]
/// Whether the response header of `R` at `version` is the flexible one (header v1).
/// ApiVersions is the exception: its response header is always v0.
pub(crate) fn response_header_flexible<R: Response>(version: i16) -> bool {
    R::API_KEY != api::API_VERSIONS && version >= R::FIRST_FLEXIBLE
}

#[cfg(test)]
mod tests {
    use super::testutil::Rng;
    use super::*;

    /// Runs `body` through every version of `R`; must never panic.
    fn all_versions<R: Response>(body: &[u8]) {
        for v in R::VERSIONS.0..=R::VERSIONS.1 {
            let _ = decode_body::<R>(body, v);
        }
    }

    fn every_decoder(body: &[u8]) {
        all_versions::<ApiVersionsResponse>(body);
        all_versions::<SaslHandshakeResponse>(body);
        all_versions::<SaslAuthenticateResponse>(body);
        all_versions::<MetadataResponse>(body);
        all_versions::<FindCoordinatorResponse>(body);
        all_versions::<ListOffsetsResponse>(body);
        all_versions::<OffsetFetchResponse>(body);
        all_versions::<ListGroupsResponse>(body);
        all_versions::<DescribeGroupsResponse>(body);
        all_versions::<produce::ProduceResponse>(body);
        all_versions::<init_producer_id::InitProducerIdResponse>(body);
        let _ = decode_api_versions(body, 3);
        let _ = decode_response_header(&mut Reader::new(body), true);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng::new(0x5eed_1234_abcd_ef01);
        for _ in 0..20_000 {
            let len = rng.below(64) as usize;
            let mut body = vec![0u8; len];
            for b in &mut body {
                // Bias towards small values and 0xff so counts, nulls and varints get exercised.
                *b = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => rng.below(4) as u8,
                    _ => rng.next() as u8,
                };
            }
            every_decoder(&body);
        }
    }

    #[test]
    fn header_plain_and_flexible() {
        let mut r = Reader::new(&[0, 0, 0, 7]);
        assert_eq!(decode_response_header(&mut r, false).unwrap(), 7);
        assert_eq!(r.remaining(), 0);
        // correlation id, 1 tagged field (tag 5, 2 bytes), then the body starts.
        let buf = [0, 0, 1, 0, 1, 5, 2, 0xaa, 0xbb, 0x42];
        let mut r = Reader::new(&buf);
        assert_eq!(decode_response_header(&mut r, true).unwrap(), 256);
        assert_eq!(r.remaining(), 1);
        let mut r = Reader::new(&[0, 0, 1]);
        let e = decode_response_header(&mut r, false).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::NotEnoughBytes { .. }));
    }

    #[test]
    fn header_flexibility_rules() {
        assert!(!response_header_flexible::<ApiVersionsResponse>(3));
        assert!(!response_header_flexible::<SaslHandshakeResponse>(1));
        assert!(response_header_flexible::<SaslAuthenticateResponse>(2));
        assert!(!response_header_flexible::<MetadataResponse>(8));
        assert!(response_header_flexible::<MetadataResponse>(9));
    }

    #[test]
    fn header_versions_match_kafka_protocol() {
        use kafka_protocol::messages as m;
        use kafka_protocol::protocol::HeaderVersion;
        fn check<R: Response, K: HeaderVersion>() {
            for v in R::VERSIONS.0..=R::VERSIONS.1 {
                let expected = K::header_version(v) == 1;
                assert_eq!(
                    response_header_flexible::<R>(v),
                    expected,
                    "{} v{v}",
                    R::NAME
                );
            }
        }
        check::<ApiVersionsResponse, m::ApiVersionsResponse>();
        check::<SaslHandshakeResponse, m::SaslHandshakeResponse>();
        check::<SaslAuthenticateResponse, m::SaslAuthenticateResponse>();
        check::<MetadataResponse, m::MetadataResponse>();
        check::<FindCoordinatorResponse, m::FindCoordinatorResponse>();
        check::<ListOffsetsResponse, m::ListOffsetsResponse>();
        check::<OffsetFetchResponse, m::OffsetFetchResponse>();
        check::<ListGroupsResponse, m::ListGroupsResponse>();
        check::<DescribeGroupsResponse, m::DescribeGroupsResponse>();
        check::<produce::ProduceResponse, m::ProduceResponse>();
        check::<init_producer_id::InitProducerIdResponse, m::InitProducerIdResponse>();
    }

    #[test]
    fn api_keys_match_kafka_protocol() {
        use kafka_protocol::messages as m;
        use kafka_protocol::protocol::Request;
        assert_eq!(ApiVersionsResponse::API_KEY, m::ApiVersionsRequest::KEY);
        assert_eq!(SaslHandshakeResponse::API_KEY, m::SaslHandshakeRequest::KEY);
        assert_eq!(
            SaslAuthenticateResponse::API_KEY,
            m::SaslAuthenticateRequest::KEY
        );
        assert_eq!(MetadataResponse::API_KEY, m::MetadataRequest::KEY);
        assert_eq!(
            FindCoordinatorResponse::API_KEY,
            m::FindCoordinatorRequest::KEY
        );
        assert_eq!(ListOffsetsResponse::API_KEY, m::ListOffsetsRequest::KEY);
        assert_eq!(OffsetFetchResponse::API_KEY, m::OffsetFetchRequest::KEY);
        assert_eq!(ListGroupsResponse::API_KEY, m::ListGroupsRequest::KEY);
        assert_eq!(
            DescribeGroupsResponse::API_KEY,
            m::DescribeGroupsRequest::KEY
        );
        assert_eq!(produce::ProduceResponse::API_KEY, m::ProduceRequest::KEY);
        assert_eq!(
            init_producer_id::InitProducerIdResponse::API_KEY,
            m::InitProducerIdRequest::KEY
        );
    }

    #[test]
    fn unsupported_version_is_an_error() {
        let e = decode_body::<MetadataResponse>(&[], 0).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::UnsupportedVersion { .. }));
        let e = decode_body::<MetadataResponse>(&[], 99).unwrap_err();
        assert!(e.to_string().starts_with("Metadata v99: "), "{e}");
    }
}
