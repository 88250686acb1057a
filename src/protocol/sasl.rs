//! SaslHandshake (key 17) and SaslAuthenticate (key 36). SaslHandshake never uses the flexible
//! encoding (its header stays v0 too).

use std::fmt;

use bytes::Bytes;

use super::reader::{DecodeResult, Reader};
use super::{Response, NEVER_FLEXIBLE};

/// A SASL mechanism Kafka supports and we implement, by the name Kafka gives it. It lives here,
/// at the bottom, because both `config` (which reads the name a person typed) and `wire` (which
/// runs the exchange) need it and `config` sits below `wire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4616; only safe inside TLS (Event Streams: user `token`, password = API key).
    Plain,
    /// RFC 5802 / 7677 with SHA-256.
    ScramSha256,
    /// RFC 5802 with SHA-512.
    ScramSha512,
    /// RFC 7628 with a bearer token (Event Streams: an IAM access token).
    OAuthBearer,
}

impl Mechanism {
    const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    /// The name Kafka uses in SaslHandshake and `sasl.mechanism`.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism named `v`, in any case, surrounding blanks ignored.
    pub(crate) fn from_name(v: &str) -> Option<Mechanism> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(v.trim()))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    pub error_code: i16,
    /// Mechanisms the broker enables (sent with error 33 UNSUPPORTED_SASL_MECHANISM too).
    pub mechanisms: Vec<String>,
}

impl Response for SaslHandshakeResponse {
    const NAME: &'static str = "SaslHandshake";
    const API_KEY: i16 = super::api::SASL_HANDSHAKE;
    const VERSIONS: (i16, i16) = (0, 1);
    const FIRST_FLEXIBLE: i16 = NEVER_FLEXIBLE;

    fn decode(r: &mut Reader<'_>, _version: i16) -> DecodeResult<Self> {
        let error_code = r.i16("error_code")?;
        let mechanisms = r.flex_array("mechanisms", false, |r| r.string(""))?;
        Ok(Self {
            error_code,
            mechanisms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub auth_bytes: Bytes,
    /// 0 before v1 (and when the broker does not expire sessions).
    pub session_lifetime_ms: i64,
}

impl Response for SaslAuthenticateResponse {
    const NAME: &'static str = "SaslAuthenticate";
    const API_KEY: i16 = super::api::SASL_AUTHENTICATE;
    const VERSIONS: (i16, i16) = (0, 2);
    const FIRST_FLEXIBLE: i16 = 2;

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flex = version >= Self::FIRST_FLEXIBLE;
        let error_code = r.i16("error_code")?;
        let error_message = r.flex_nullable_string("error_message", flex)?;
        let auth_bytes = r.flex_bytes("auth_bytes", flex)?;
        let session_lifetime_ms = if version >= 1 {
            r.i64("session_lifetime_ms")?
        } else {
            0
        };
        r.tagged_fields(flex)?;
        Ok(Self {
            error_code,
            error_message,
            auth_bytes,
            session_lifetime_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mechanism_names() {
        use super::Mechanism;
        let cases = [
            ("PLAIN", Some(Mechanism::Plain)),
            ("plain", Some(Mechanism::Plain)),
            ("SCRAM-SHA-256", Some(Mechanism::ScramSha256)),
            ("scram-sha-256", Some(Mechanism::ScramSha256)),
            (" Scram-Sha-512 ", Some(Mechanism::ScramSha512)),
            ("OAUTHBEARER", Some(Mechanism::OAuthBearer)),
            ("oauthbearer", Some(Mechanism::OAuthBearer)),
            ("", None),
            ("GSSAPI", None),
            ("OAUTH", None),
            ("SCRAM-SHA-1", None),
            ("SCRAM_SHA_256", None),
        ];
        for (text, want) in cases {
            assert_eq!(Mechanism::from_name(text), want, "{text}");
        }
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
    }

    use super::*;
    use crate::protocol::testutil::{
        assert_count_bomb, assert_string_bomb, encode, exercise, CLASSIC_HUGE,
    };
    use crate::protocol::{decode_body, decode_body_bytes, DecodeErrorKind};
    use kafka_protocol::messages::{
        SaslAuthenticateResponse as KpAuth, SaslHandshakeResponse as KpHandshake,
    };
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn handshake_round_trip_every_version() {
        for v in 0..=1 {
            let theirs = KpHandshake::default()
                .with_error_code(33)
                .with_mechanisms(vec![
                    StrBytes::from_static_str("PLAIN"),
                    StrBytes::from_static_str("SCRAM-SHA-512"),
                ]);
            let body = encode(&theirs, v);
            let ours: SaslHandshakeResponse = decode_body(&body, v).unwrap();
            assert_eq!(ours.error_code, 33);
            assert_eq!(ours.mechanisms, ["PLAIN", "SCRAM-SHA-512"]);
            exercise::<SaslHandshakeResponse>(v, &body, 17);
        }
    }

    #[test]
    fn authenticate_round_trip_every_version() {
        for v in 0..=2 {
            for (msg, lifetime) in [(None, 0i64), (Some("bad password"), 3_600_000)] {
                let mut theirs = KpAuth::default()
                    .with_error_code(if msg.is_some() { 58 } else { 0 })
                    .with_error_message(msg.map(StrBytes::from_static_str))
                    .with_auth_bytes(Bytes::from_static(b"v=server-signature"));
                if v >= 1 {
                    theirs = theirs.with_session_lifetime_ms(lifetime);
                }
                let body = encode(&theirs, v);
                let ours: SaslAuthenticateResponse = decode_body(&body, v).unwrap();
                assert_eq!(ours.error_code, theirs.error_code);
                assert_eq!(ours.error_message.as_deref(), msg);
                assert_eq!(ours.auth_bytes, theirs.auth_bytes);
                assert_eq!(ours.session_lifetime_ms, theirs.session_lifetime_ms);
                let shared = Bytes::from(body.clone());
                let zero_copy: SaslAuthenticateResponse = decode_body_bytes(&shared, v).unwrap();
                assert_eq!(zero_copy, ours);
                exercise::<SaslAuthenticateResponse>(v, &body, 36);
            }
        }
    }

    #[test]
    fn hostile() {
        assert_count_bomb::<SaslHandshakeResponse>(0, &[0, 0]);
        assert_count_bomb::<SaslHandshakeResponse>(1, &[0, 0]);
        // mechanisms[0] string length beyond the body.
        assert_string_bomb::<SaslHandshakeResponse>(1, &[0, 0, 0, 0, 0, 1]);
        assert_string_bomb::<SaslAuthenticateResponse>(0, &[0, 0]);
        assert_string_bomb::<SaslAuthenticateResponse>(2, &[0, 0]);
        // auth_bytes length i32::MAX.
        let mut body = vec![0, 0, 0xff, 0xff];
        body.extend_from_slice(&CLASSIC_HUGE);
        let e = decode_body::<SaslAuthenticateResponse>(&body, 0).unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::LengthExceedsRemaining { .. }),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("SaslAuthenticate v0: auth_bytes: "),
            "{e}"
        );
        // null auth_bytes is not allowed.
        let e =
            decode_body::<SaslAuthenticateResponse>(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0)
                .unwrap_err();
        assert!(
            matches!(e.kind, DecodeErrorKind::InvalidLength { value: -1, .. }),
            "{e}"
        );
        // invalid UTF-8 in the error message.
        let e = decode_body::<SaslAuthenticateResponse>(&[0, 0, 0, 1, 0xc3, 0, 0, 0, 0], 0)
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidUtf8);
        // 6-byte varint as the compact error message length.
        let e =
            decode_body::<SaslAuthenticateResponse>(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 2)
                .unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::BadVarint { .. }), "{e}");
    }
}
