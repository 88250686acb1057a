//! Why a cycle failed, and why `/healthz` answers 503.
//!
//! A cycle fails only when it has nothing to decide from: no partition list at all, or no end
//! of any partition. Either keeps the last decisions in place and shows in `/healthz` and in
//! one log line per outage; the launcher's own trouble is reported beside it.

use std::time::Duration;

use crate::offsets::OffsetsError;
use crate::wire::WireError;

/// What kept a cycle from deciding anything.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CycleError {
    /// No partition of any watched topic is known yet, and Metadata failed (after its
    /// retries).
    #[error(transparent)]
    Metadata(#[from] WireError),
    /// The end of every watched partition failed to be read: the first failure, in partition
    /// order (they usually share one cause, a broker that is down).
    #[error(transparent)]
    Ends(OffsetsError),
}

/// Why the observer is unhealthy: the `/healthz` body (with a newline).
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Unhealthy {
    #[error("last cycle failed: {0}")]
    CycleFailed(CycleError),
    /// The launcher's calls have failed or hung for longer than the bound.
    #[error("launcher: {what} for {:.0} s", .lasting.as_secs_f64())]
    Launcher { what: String, lasting: Duration },
    #[error("no cycle has completed yet")]
    NoCycleYet,
    /// The last completed cycle is older than the bound (a hung loop).
    #[error("no cycle completed for {:.0} s", .0.as_secs_f64())]
    Stale(Duration),
}
