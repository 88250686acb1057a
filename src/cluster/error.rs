//! Why the cluster layer could not route a request, and why a broker's advertised address
//! cannot be used.

use crate::protocol::error::{is_retriable, ErrorCode};
use crate::retry::Retriable;
use crate::wire::WireError;

/// A failed lookup of a route (coordinator) or a failed connection, with whether it may heal.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The connection failed (or authentication, TLS, versions: see [`WireError::is_fatal`]).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// FindCoordinator answered with an error for this group.
    #[error("FindCoordinator for group '{group}': {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Coordinator {
        group: String,
        code: ErrorCode,
        message: Option<String>,
    },
    /// The broker's answer did not mention the group.
    #[error("no coordinator in the answer")]
    NoCoordinator,
}

impl Retriable for ClusterError {
    fn is_retriable(&self) -> bool {
        match self {
            ClusterError::Wire(e) => e.is_retriable(),
            ClusterError::Coordinator { code, .. } => is_retriable(code.0),
            ClusterError::NoCoordinator => false,
        }
    }
}

impl ClusterError {
    /// True when no retry can succeed on any connection (credentials, trust, versions).
    pub fn is_fatal(&self) -> bool {
        matches!(self, ClusterError::Wire(e) if e.is_fatal())
    }
}

/// Why the address a broker advertised cannot be connected to. Kept per broker in
/// [`Metadata::unusable`](super::Metadata::unusable): a request routed to it fails with this
/// reason, and none of them heals before the broker's `advertised.listeners` is fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdvertisedError {
    #[error("broker {node_id} was advertised without a host name: check the broker's advertised.listeners")]
    NoHost { node_id: i32 },
    /// The port is outside 1..=65535 (a cast would connect elsewhere).
    #[error("broker {node_id} was advertised at {host}:{port}, and {port} is not a TCP port (1 to 65535): check the broker's advertised.listeners")]
    NotAPort {
        node_id: i32,
        host: String,
        port: i32,
    },
}
