//! Errors of one broker connection.
//!
//! Every variant carries the broker address so that a person reading the message knows which
//! machine to look at. Secrets never enter these values: SASL errors carry the user name and the
//! mechanism, never the password.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::protocol::DecodeError;

/// What went wrong talking to one broker.
#[derive(Debug, Clone, Error)]
pub enum WireError {
    #[error("cannot connect to {addr}: {cause}")]
    Connect { addr: String, cause: String },

    #[error("TLS handshake with {addr} failed: {cause}")]
    Tls { addr: String, cause: String },

    #[error("no answer from {addr} within {timeout:?} ({what})")]
    Timeout {
        addr: String,
        what: &'static str,
        timeout: Duration,
    },

    /// The connection is unusable: closed by the peer, broken, or poisoned by garbage.
    #[error("connection to {addr} is closed: {reason}")]
    Closed { addr: String, reason: Arc<str> },

    #[error("{addr} sent a frame of {size} bytes, more than the limit of {max} bytes (raise --max-frame-bytes if this broker is genuine)")]
    FrameTooLarge { addr: String, size: i64, max: usize },

    #[error("{addr} sent a malformed {api} response: {source}")]
    Decode {
        addr: String,
        api: &'static str,
        #[source]
        source: Box<DecodeError>,
    },

    #[error("{addr} supports {api} versions {theirs_min}..={theirs_max}, this client {ours_min}..={ours_max}: no common version (is the broker older than Kafka 2.x?)")]
    NoCommonVersion {
        addr: String,
        api: &'static str,
        ours_min: i16,
        ours_max: i16,
        theirs_min: i16,
        theirs_max: i16,
    },

    #[error("{addr} does not support the {api} API")]
    Unsupported { addr: String, api: &'static str },

    #[error("cannot encode {api} request: {cause}")]
    Encode { api: &'static str, cause: String },

    #[error("{addr} does not offer SASL mechanism {mechanism}; it offers: {offered}")]
    SaslMechanism {
        addr: String,
        mechanism: String,
        offered: String,
    },

    #[error("authentication failed for user '{user}' with {mechanism} at {addr}: {message}")]
    AuthFailed {
        addr: String,
        user: String,
        mechanism: String,
        message: String,
    },

    #[error("SASL {mechanism} with {addr}: {cause}")]
    Sasl {
        addr: String,
        mechanism: String,
        cause: String,
    },

    #[error("{addr} answered {api} with error {code} ({name})")]
    Broker {
        addr: String,
        api: &'static str,
        code: i16,
        name: String,
    },
}

impl WireError {
    /// True when the error is about the connection itself (a new connection may succeed),
    /// false when retrying on any connection would fail the same way.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            WireError::Connect { .. } | WireError::Closed { .. } | WireError::Timeout { .. }
        )
    }

    /// True when no retry can succeed: wrong credentials, untrusted certificate, version gaps.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            WireError::Tls { .. }
                | WireError::AuthFailed { .. }
                | WireError::SaslMechanism { .. }
                | WireError::NoCommonVersion { .. }
                | WireError::Sasl { .. }
        )
    }
}

impl crate::retry::Retriable for WireError {
    /// A new connection (or the next attempt on this one) may succeed unless the error is fatal.
    fn is_retriable(&self) -> bool {
        !self.is_fatal()
    }
}
