//! One broker connection: TCP/TLS, SASL, framing, correlation ids, version negotiation.
//!
//! Knows nothing of topics or groups; `cluster` decides which broker to ask.
pub(crate) mod connection;
mod error;
pub(crate) mod frame;
mod link;
pub(crate) mod sasl;
mod transport;
pub(crate) mod versions;

pub use connection::{ConnectOptions, Connection, SaslConfig};
pub use error::WireError;
pub use sasl::{Credentials, Mechanism, Token, TokenFuture, TokenSource};
