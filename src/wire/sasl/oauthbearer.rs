//! SASL OAUTHBEARER (RFC 7628) with a bearer token from a [`TokenSource`].
//!
//! The client sends one GS2 message carrying the token. On success Kafka answers with an empty
//! token. On failure the server sends a JSON error challenge (`{"status":"invalid_token",…}`);
//! RFC 7628 §3.2.3 has the client answer with a single `0x01` byte, after which the server fails
//! the exchange (Kafka: a SaslAuthenticate error). The challenge is kept so the final error can
//! say what the server objected to; it never contains the token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use super::{SaslError, Step};
use crate::config::secret::Secret;

/// The RFC 7628 key/value separator.
const KVSEP: u8 = 0x01;
/// Longest piece of a server challenge quoted back in an error.
const QUOTE_LIMIT: usize = 200;

/// A bearer token and when it expires (Unix seconds; `None` when unknown).
pub type Token = (Secret, Option<i64>);

/// A boxed future returned by [`TokenSource::token`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, TokenError>> + Send + 'a>>;

/// Why a [`TokenSource`] has no token. The source's own error (IAM's, in the CLI) is kept as
/// the cause: this layer knows no token service, only that the connection cannot authenticate
/// without one. Neither part may contain a secret.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct TokenError {
    /// Which token could not be had, and from where (for a person: the service, where its
    /// credentials came from).
    pub what: String,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Where OAUTHBEARER tokens come from (the IBM IAM token manager in the CLI). Called for the
/// first authentication of every connection and for every re-authentication, so it should
/// cache. Errors are for a person and must not contain secrets.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A currently valid token.
    fn token(&self) -> TokenFuture<'_>;
}

enum State {
    Start,
    Sent,
    /// The server sent an error challenge; we answered with `0x01`.
    Failed(String),
    Done,
}

pub(super) struct OAuthBearer {
    token: Secret,
    state: State,
}

impl OAuthBearer {
    /// Checks that `token` is an RFC 6750 `b64token` (what Kafka's server accepts, and what
    /// keeps the GS2 message well-formed). The token itself never appears in the error.
    pub(super) fn new(token: &Secret) -> Result<Self, SaslError> {
        let t = token.expose();
        if t.is_empty() {
            return Err(SaslError::InvalidCredentials(
                "the OAUTHBEARER token is empty",
            ));
        }
        let body = t.trim_end_matches('=');
        if body.is_empty()
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            return Err(SaslError::InvalidCredentials(
                "the OAUTHBEARER token contains characters a bearer token cannot have",
            ));
        }
        Ok(OAuthBearer {
            token: token.clone(),
            state: State::Start,
        })
    }

    /// `n,,` GS2 header (no authzid), then `auth=Bearer <token>`, each key/value pair ended by
    /// 0x01 and the message by another 0x01.
    pub(super) fn initial(&mut self) -> Vec<u8> {
        let token = self.token.expose().as_bytes();
        let mut out = Vec::with_capacity(24 + token.len());
        out.extend_from_slice(b"n,,");
        out.push(KVSEP);
        out.extend_from_slice(b"auth=Bearer ");
        out.extend_from_slice(token);
        out.push(KVSEP);
        out.push(KVSEP);
        self.state = State::Sent;
        out
    }

    pub(super) fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match &self.state {
            State::Start => Err(SaslError::OutOfOrder("step() called before initial()")),
            State::Sent if server.is_empty() => {
                self.state = State::Done;
                Ok(Step::Done)
            }
            State::Sent => {
                self.state = State::Failed(quote(server));
                Ok(Step::Send(vec![KVSEP]))
            }
            // The server should have failed the exchange after our 0x01; it did not.
            State::Failed(challenge) => Err(SaslError::TokenRejected(challenge.clone())),
            State::Done => Err(SaslError::OutOfOrder(
                "the OAUTHBEARER exchange is already complete",
            )),
        }
    }

    /// The server's error challenge, if it sent one.
    pub(super) fn failure(&self) -> Option<&str> {
        match &self.state {
            State::Failed(c) => Some(c),
            _ => None,
        }
    }
}

/// A printable, bounded rendering of a server message.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTE_LIMIT)
        .collect();
    if text.chars().count() > QUOTE_LIMIT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";

    #[test]
    fn initial_response_is_rfc7628() {
        let mut c = OAuthBearer::new(&Secret::new(JWT)).unwrap();
        let msg = c.initial();
        assert_eq!(
            msg,
            format!("n,,\x01auth=Bearer {JWT}\x01\x01").into_bytes()
        );
        assert_eq!(c.step(b"").unwrap(), Step::Done);
        assert!(matches!(c.step(b""), Err(SaslError::OutOfOrder(_))));
    }

    #[test]
    fn error_challenge_is_answered_with_kvsep_then_fails() {
        let mut c = OAuthBearer::new(&Secret::new("abc.def")).unwrap();
        assert!(matches!(c.step(b""), Err(SaslError::OutOfOrder(_))));
        let _ = c.initial();
        let challenge = br#"{"status":"invalid_token"}"#;
        assert_eq!(c.step(challenge).unwrap(), Step::Send(vec![0x01]));
        assert_eq!(c.failure(), Some(r#"{"status":"invalid_token"}"#));
        let err = c.step(b"").unwrap_err();
        assert!(err.to_string().contains("invalid_token"), "{err}");
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        for bad in ["", "===", "q z", "tok\x01en", "t\u{e9}", "x,y"] {
            let err = OAuthBearer::new(&Secret::new(bad)).err().expect(bad);
            assert!(matches!(err, SaslError::InvalidCredentials(_)), "{err}");
            if !bad.is_empty() && bad != "===" {
                assert!(!err.to_string().contains(bad), "{err}");
            }
        }
        for good in ["abc", "a-b_c~d+e/f", "abc==", JWT] {
            assert!(OAuthBearer::new(&Secret::new(good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn long_challenges_are_bounded() {
        let mut c = OAuthBearer::new(&Secret::new("abc")).unwrap();
        let _ = c.initial();
        let long = vec![b'x'; 5000];
        let _ = c.step(&long).unwrap();
        assert!(c.failure().unwrap().chars().count() <= QUOTE_LIMIT + 1);
    }
}
