//! ApiVersions (key 18). The broker answers a version it does not support with a **v0** body
//! carrying error 35 (UNSUPPORTED_VERSION), so [`decode_api_versions`] falls back to v0 the
//! way the Java client does. The response header is always v0, even for flexible versions.

use super::reader::{DecodeResult, Reader};
use super::{decode_body, DecodeError, Response};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersion {
    pub api_key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsResponse {
    pub error_code: i16,
    pub api_keys: Vec<ApiVersion>,
    /// 0 before v1.
    pub throttle_time_ms: i32,
}

impl ApiVersionsResponse {
    /// The advertised range for `api_key`, if any.
    pub fn range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.api_keys
            .iter()
            .find(|k| k.api_key == api_key)
            .map(|k| (k.min_version, k.max_version))
    }
}

impl Response for ApiVersionsResponse {
    const NAME: &'static str = "ApiVersions";
    const API_KEY: i16 = super::api::API_VERSIONS;
    /// v4 has v3's layout (tested); not enabled because a 3.x broker would answer a v4
    /// request with the v0 fallback and cost a round trip.
    const VERSIONS: (i16, i16) = (0, 3);
    const FIRST_FLEXIBLE: i16 = 3;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let error_code = r.i16("error_code")?;
        let api_keys = r.flex_array("api_keys", flex, |r| {
            let k = ApiVersion {
                api_key: r.i16("api_key")?,
                min_version: r.i16("min_version")?,
                max_version: r.i16("max_version")?,
            };
            r.tagged_fields(flex)?;
            Ok(k)
        })?;
        let throttle_time_ms = if version >= 1 {
            r.i32("throttle_time_ms")?
        } else {
            0
        };
        // supported_features, finalized_features_epoch, finalized_features, zk_migration_ready
        // are tagged fields: skipped.
        r.tagged_fields(flex)?;
        Ok(Self {
            error_code,
            api_keys,
            throttle_time_ms,
        })
    }
}

/// Decodes an ApiVersions body for a request sent at `version`. When the broker did not support
/// that version it answers in v0 format with error 35; this detects that (and, like the Java
/// client, retries as v0 whenever the requested version does not parse).
pub fn decode_api_versions(body: &[u8], version: i16) -> Result<ApiVersionsResponse, DecodeError> {
    let looks_v0 = body.len() >= 2
        && i16::from_be_bytes([body[0], body[1]]) == super::error::code::UNSUPPORTED_VERSION;
    if version != 0 && looks_v0 {
        if let Ok(resp) = decode_body::<ApiVersionsResponse>(body, 0) {
            return Ok(resp);
        }
    }
    match decode_body::<ApiVersionsResponse>(body, version) {
        Ok(resp) => Ok(resp),
        Err(e) if version != 0 => decode_body::<ApiVersionsResponse>(body, 0).map_err(|_| e),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{assert_count_bomb, decode_unchecked, encode, exercise};
    use kafka_protocol::messages::api_versions_response as kp;
    use kafka_protocol::messages::ApiVersionsResponse as KpResponse;
    use kafka_protocol::protocol::StrBytes;

    fn sample(version: i16) -> KpResponse {
        let mut m = KpResponse::default().with_error_code(0).with_api_keys(vec![
            kp::ApiVersion::default()
                .with_api_key(3)
                .with_min_version(0)
                .with_max_version(13),
            kp::ApiVersion::default()
                .with_api_key(18)
                .with_min_version(0)
                .with_max_version(4),
        ]);
        if version >= 1 {
            m = m.with_throttle_time_ms(17);
        }
        if version >= 3 {
            m = m
                .with_supported_features(vec![kp::SupportedFeatureKey::default()
                    .with_name(StrBytes::from_static_str("metadata.version"))
                    .with_min_version(1)
                    .with_max_version(27)])
                .with_finalized_features_epoch(42)
                .with_zk_migration_ready(true);
        }
        m
    }

    #[test]
    fn round_trip_every_version() {
        for v in 0..=4 {
            let theirs = sample(v);
            let body = encode(&theirs, v);
            let ours: ApiVersionsResponse = if v <= 3 {
                decode_body(&body, v).unwrap()
            } else {
                decode_unchecked(&body, v)
            };
            assert_eq!(ours.error_code, theirs.error_code);
            assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms, "v{v}");
            assert_eq!(ours.api_keys.len(), 2);
            for (o, t) in ours.api_keys.iter().zip(&theirs.api_keys) {
                assert_eq!(
                    (o.api_key, o.min_version, o.max_version),
                    (t.api_key, t.min_version, t.max_version)
                );
            }
            assert_eq!(ours.range(18), Some((0, 4)));
            if v <= 3 {
                assert_eq!(decode_api_versions(&body, v).unwrap(), ours);
                exercise::<ApiVersionsResponse>(v, &body, 18);
            }
        }
    }

    #[test]
    fn falls_back_to_v0_on_unsupported_version() {
        let theirs = KpResponse::default()
            .with_error_code(crate::protocol::error::code::UNSUPPORTED_VERSION)
            .with_api_keys(vec![kp::ApiVersion::default()
                .with_api_key(18)
                .with_max_version(3)]);
        let body = encode(&theirs, 0);
        assert!(decode_body::<ApiVersionsResponse>(&body, 3).is_err());
        let ours = decode_api_versions(&body, 3).unwrap();
        assert_eq!(
            ours.error_code,
            crate::protocol::error::code::UNSUPPORTED_VERSION
        );
        assert_eq!(ours.range(18), Some((0, 3)));
        // Garbage stays an error, reported for the requested version.
        let e = decode_api_versions(&[0, 0, 1], 3).unwrap_err();
        assert_eq!(e.version, 3);
    }

    #[test]
    fn hostile_counts() {
        assert_count_bomb::<ApiVersionsResponse>(0, &[0, 0]);
        assert_count_bomb::<ApiVersionsResponse>(3, &[0, 0]);
        let e = decode_api_versions(&[0, 35, 0x7f, 0xff, 0xff, 0xff, 0, 0], 3).unwrap_err();
        assert!(e.to_string().starts_with("ApiVersions v3: "), "{e}");
    }
}
