//! SASL mechanisms as pure state machines.
//!
//! Kafka carries SASL tokens inside SaslAuthenticate requests, so the mechanism logic never
//! touches a socket: it turns server bytes into client bytes. Keeping it I/O-free means the
//! cryptography is tested against RFC vectors and hostile server messages with plain unit
//! tests, and the connection code only shuttles opaque tokens. Errors describe what the broker
//! did wrong; they never contain the password.

mod oauthbearer;
mod plain;
mod scram;

use std::fmt;

use crate::config::secret::Secret;

pub use crate::protocol::sasl::Mechanism;
pub use oauthbearer::Token;
pub(crate) use oauthbearer::TokenError;
pub use oauthbearer::{TokenFuture, TokenSource};

/// User name and password for SASL. `Debug` redacts the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// SASL user name (Event Streams: `token`).
    pub username: String,
    /// Password or API key.
    pub password: Secret,
}

/// What the client does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send these bytes to the broker (in a SaslAuthenticate request) and feed its reply to
    /// [`SaslClient::step`].
    Send(Vec<u8>),
    /// Authentication finished successfully on the client's side.
    Done,
}

/// Why a SASL exchange failed. Messages never include the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// The credentials cannot be encoded for this mechanism.
    #[error("invalid SASL credentials: {0}")]
    InvalidCredentials(&'static str),
    /// The operating system's random source failed.
    #[error("could not generate a random SCRAM nonce: {0}")]
    Random(String),
    /// The broker answered with a SCRAM `e=` error.
    #[error("the broker rejected SCRAM authentication: {0}")]
    Rejected(String),
    /// The broker answered OAUTHBEARER with an error challenge.
    #[error("the broker rejected the OAUTHBEARER token: {0}")]
    TokenRejected(String),
    /// OAUTHBEARER was asked for with no token (use [`SaslClient::oauth_bearer`]).
    #[error("OAUTHBEARER needs a token source")]
    NoToken,
    /// The broker's message does not follow RFC 5802.
    #[error("malformed SCRAM message from the broker: {0}")]
    Malformed(String),
    /// The broker's nonce does not extend ours (a replay or a broken server).
    #[error(
        "the broker's SCRAM nonce does not start with the client nonce, or adds nothing to it"
    )]
    NonceMismatch,
    /// The iteration count is too small to be safe or too large to be reasonable.
    #[error("the broker asked for {got} SCRAM iterations; only {min} to {max} are accepted")]
    Iterations {
        /// What the broker sent.
        got: u64,
        /// Smallest accepted (RFC 7677 / Kafka minimum).
        min: u32,
        /// Largest accepted (caps CPU a hostile broker can make us burn).
        max: u32,
    },
    /// The broker could not prove it knows the password.
    #[error("server signature mismatch: the broker could not prove it knows the password")]
    ServerSignatureMismatch,
    /// The caller drove the state machine in the wrong order.
    #[error("SASL exchange used out of order: {0}")]
    OutOfOrder(&'static str),
}

enum Inner {
    Plain(plain::Plain),
    Scram(scram::Scram),
    OAuthBearer(oauthbearer::OAuthBearer),
}

/// A client-side SASL exchange: [`initial`](Self::initial), then [`step`](Self::step) with
/// each server message until [`Step::Done`].
pub(crate) struct SaslClient {
    mechanism: Mechanism,
    inner: Inner,
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Intermediate SCRAM keys are password-equivalent: show only the mechanism.
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// Prepares an exchange; SCRAM draws its nonce from the OS random source here.
    /// OAUTHBEARER takes no password: use [`oauth_bearer`](Self::oauth_bearer).
    pub(crate) fn new(mechanism: Mechanism, creds: &Credentials) -> Result<Self, SaslError> {
        let nonce = match mechanism {
            Mechanism::Plain | Mechanism::OAuthBearer => String::new(),
            _ => scram::random_nonce()?,
        };
        Self::with_nonce(mechanism, creds, &nonce)
    }

    /// An OAUTHBEARER exchange presenting `token`.
    pub(crate) fn oauth_bearer(token: &Secret) -> Result<Self, SaslError> {
        Ok(SaslClient {
            mechanism: Mechanism::OAuthBearer,
            inner: Inner::OAuthBearer(oauthbearer::OAuthBearer::new(token)?),
        })
    }

    /// Like [`new`](Self::new) with a fixed SCRAM client nonce (test vectors).
    pub(crate) fn with_nonce(
        mechanism: Mechanism,
        creds: &Credentials,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let inner = match mechanism {
            Mechanism::Plain => Inner::Plain(plain::Plain::new(creds)?),
            Mechanism::ScramSha256 => {
                Inner::Scram(scram::Scram::new(scram::Hash::Sha256, creds, nonce)?)
            }
            Mechanism::ScramSha512 => {
                Inner::Scram(scram::Scram::new(scram::Hash::Sha512, creds, nonce)?)
            }
            Mechanism::OAuthBearer => return Err(SaslError::NoToken),
        };
        Ok(SaslClient { mechanism, inner })
    }

    #[cfg(test)]
    /// The mechanism this exchange runs.
    pub(crate) fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The first client message (sent in the first SaslAuthenticate request).
    pub(crate) fn initial(&mut self) -> Vec<u8> {
        match &mut self.inner {
            Inner::Plain(p) => p.initial(),
            Inner::Scram(s) => s.initial(),
            Inner::OAuthBearer(o) => o.initial(),
        }
    }

    /// Consumes the broker's reply and returns the next message to send, or [`Step::Done`].
    pub(crate) fn step(&mut self, server: &[u8]) -> Result<Step, SaslError> {
        match &mut self.inner {
            Inner::Plain(p) => p.step(server),
            Inner::Scram(s) => s.step(server),
            Inner::OAuthBearer(o) => o.step(server),
        }
    }

    /// What the server objected to, when it sent an error challenge before failing the
    /// exchange (OAUTHBEARER); never contains the token.
    pub(crate) fn server_failure(&self) -> Option<&str> {
        match &self.inner {
            Inner::OAuthBearer(o) => o.failure(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn creds(user: &str, pass: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: Secret::new(pass),
        }
    }

    #[test]
    fn plain_exchange() {
        let mut c = SaslClient::new(Mechanism::Plain, &creds("token", "api-key-123")).unwrap();
        assert_eq!(c.mechanism(), Mechanism::Plain);
        assert_eq!(c.initial(), b"\0token\0api-key-123".to_vec());
        assert_eq!(c.step(b"").unwrap(), Step::Done);
        assert!(matches!(c.step(b""), Err(SaslError::OutOfOrder(_))));
    }

    #[test]
    fn plain_rejects_nul_and_out_of_order() {
        for (u, p) in [("a\0b", "pw"), ("user", "p\0w"), ("", "pw")] {
            let err = SaslClient::new(Mechanism::Plain, &creds(u, p)).unwrap_err();
            assert!(matches!(err, SaslError::InvalidCredentials(_)), "{err}");
            assert!(!err.to_string().contains("p\0w"));
        }
        let mut c = SaslClient::new(Mechanism::Plain, &creds("u", "p")).unwrap();
        assert!(matches!(c.step(b""), Err(SaslError::OutOfOrder(_))));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let password = "very-secret-password";
        for m in [
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
        ] {
            let mut c = SaslClient::new(m, &creds("user", password)).unwrap();
            let _ = c.initial();
            let text = format!("{c:?} {:?}", creds("user", password));
            assert!(!text.contains(password), "{text}");
        }
    }

    #[test]
    fn oauth_bearer_needs_a_token_and_hides_it() {
        let err = SaslClient::new(Mechanism::OAuthBearer, &creds("token", "key")).unwrap_err();
        assert_eq!(err, SaslError::NoToken);
        let token = Secret::new("secret.jwt.token");
        let mut c = SaslClient::oauth_bearer(&token).unwrap();
        assert_eq!(c.mechanism(), Mechanism::OAuthBearer);
        assert!(c.initial().starts_with(b"n,,\x01auth=Bearer "));
        assert!(!format!("{c:?}").contains("secret.jwt.token"));
        assert_eq!(c.server_failure(), None);
    }

    #[test]
    fn scram_nonces_are_random() {
        let c = creds("user", "pw");
        let a = SaslClient::new(Mechanism::ScramSha256, &c)
            .unwrap()
            .initial();
        let b = SaslClient::new(Mechanism::ScramSha256, &c)
            .unwrap()
            .initial();
        assert_ne!(a, b);
        assert!(a.starts_with(b"n,,n=user,r="));
    }
}
