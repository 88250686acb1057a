//! One broker connection: TCP/TLS, SASL, framing, correlation ids, version negotiation.
//!
//! Knows nothing of topics or groups; `cluster` decides which broker to ask.
pub mod connection;
mod error;
pub mod frame;
pub mod kafka_error;
mod link;
pub mod sasl;
pub mod tls;
mod transport;
pub mod versions;

pub use connection::{ConnectOptions, Connection, SaslConfig};
pub use error::WireError;

/// The protocol name of an API key, for messages.
pub fn api_name(key: i16) -> &'static str {
    match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        15 => "DescribeGroups",
        16 => "ListGroups",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        36 => "SaslAuthenticate",
        _ => "Kafka API",
    }
}
