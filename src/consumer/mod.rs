//! The consumer role: group membership, fetching, handling records, committing, idle exit.

pub mod assignor;
pub mod dispatch;
pub mod failure;
pub mod fetcher;
pub mod group;
pub mod handler;
pub mod message;
pub mod progress;
pub mod run;

/// The span around everything one consumer process logs: its job (`CE_JOB`, set by Code Engine
/// and by the local launcher) and its group, so the lines of two consumers reading the same
/// topic for different groups can be told apart. At error level so that it is on whatever the
/// log filter: a warning without its job would be half a message.
pub fn span(job: Option<&str>, group: &str) -> tracing::Span {
    match job {
        Some(job) => tracing::error_span!("consumer", job = %job, group = %group),
        None => tracing::error_span!("consumer", group = %group),
    }
}
