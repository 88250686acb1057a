//! SASL PLAIN (RFC 4616): one message, no proof from the server.
//!
//! It exists because Event Streams' service credentials (user `token`, API key as password)
//! use it; the password crosses the wire in clear, so it is only ever sent inside TLS.

use super::{Credentials, SaslError, Step};
use crate::config::secret::Secret;

enum State {
    Start,
    Sent,
    Done,
}

pub(super) struct Plain {
    username: String,
    password: Secret,
    state: State,
}

impl Plain {
    pub(super) fn new(creds: &Credentials) -> Result<Self, SaslError> {
        if creds.username.is_empty() {
            return Err(SaslError::InvalidCredentials("the user name is empty"));
        }
        if creds.username.contains('\0') {
            return Err(SaslError::InvalidCredentials(
                "the user name contains a NUL character, which PLAIN cannot carry",
            ));
        }
        if creds.password.expose().contains('\0') {
            return Err(SaslError::InvalidCredentials(
                "the password contains a NUL character, which PLAIN cannot carry",
            ));
        }
        Ok(Plain {
            username: creds.username.clone(),
            password: creds.password.clone(),
            state: State::Start,
        })
    }

    /// `authzid NUL authcid NUL passwd` with an empty authzid.
    pub(super) fn initial(&mut self) -> Vec<u8> {
        let pass = self.password.expose().as_bytes();
        let mut out = Vec::with_capacity(2 + self.username.len() + pass.len());
        out.push(0);
        out.extend_from_slice(self.username.as_bytes());
        out.push(0);
        out.extend_from_slice(pass);
        self.state = State::Sent;
        out
    }

    /// Kafka answers PLAIN with an empty token; failure arrives as a Kafka error code instead,
    /// so any reply means success here.
    pub(super) fn step(&mut self, _server: &[u8]) -> Result<Step, SaslError> {
        match self.state {
            State::Start => Err(SaslError::OutOfOrder("step() called before initial()")),
            State::Sent => {
                self.state = State::Done;
                Ok(Step::Done)
            }
            State::Done => Err(SaslError::OutOfOrder(
                "the PLAIN exchange is already complete",
            )),
        }
    }
}
