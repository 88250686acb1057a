//! The consumer role: group membership, fetching, handling records, committing, idle exit.

pub(crate) mod assignor;
pub(crate) mod dead_letter;
pub(crate) mod dispatch;
pub(crate) mod error;
pub(crate) mod failure;
pub(crate) mod fetcher;
pub(crate) mod group;
pub(crate) mod handler;
pub(crate) mod heartbeat;
pub(crate) mod message;
pub(crate) mod progress;
pub(crate) mod rebalance;
pub(crate) mod run;

/// The span around everything one consumer process logs: its job (`CE_JOB`), its group, and
/// the job run and array index of this instance (`CE_JOBRUN`, `JOB_INDEX`; set by Code Engine
/// and by the local launcher), so the lines of two consumers reading the same topic for
/// different groups, or of two instances of one group, can be told apart. At error level so
/// that it is on whatever the log filter: a warning without its job would be half a message.
/// Fields that are not set are left out.
pub(crate) fn span(
    job: Option<&str>,
    group: &str,
    run: Option<&str>,
    index: Option<&str>,
) -> tracing::Span {
    use tracing::field::{display, Empty};
    // Recorded one by one, in this order, which is the order a log line shows them in.
    let span = tracing::error_span!(
        "consumer",
        job = Empty,
        group = Empty,
        run = Empty,
        index = Empty
    );
    let fields = [
        ("job", job),
        ("group", Some(group)),
        ("run", run),
        ("index", index),
    ];
    for (field, value) in fields {
        if let Some(v) = value {
            span.record(field, display(v));
        }
    }
    span
}
