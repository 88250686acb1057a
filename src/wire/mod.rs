//! One broker connection: TCP/TLS, SASL, framing, correlation ids, version negotiation.
//!
//! Knows nothing of topics or groups; `cluster` decides which broker to ask.
pub mod connection;
mod error;
pub(crate) mod frame;
mod link;
pub mod sasl;
mod transport;
pub(crate) mod versions;

pub use connection::{ConnectOptions, Connection, SaslConfig};
pub use error::WireError;
