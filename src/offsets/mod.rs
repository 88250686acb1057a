//! Batched offset snapshots: where each partition's log starts and ends, and where each group is.
//!
//! Requests are grouped by destination — one ListOffsets per leader broker per kind, one
//! OffsetFetch per coordinator — so a snapshot's cost grows with brokers, not with partitions or
//! groups. Errors are per partition or per group ([`OffsetsError`]): one bad broker leaves the
//! rest of the snapshot intact, and an unknown value is reported as unknown, never as zero.

mod committed;
mod ends;
mod error;
pub(crate) mod fetch;
mod groups;
mod members;
pub(crate) mod timestamps;
pub(crate) mod visible;

use std::fmt;
use std::sync::Arc;

pub(crate) use committed::fetch_committed;
#[cfg(test)]
pub(crate) use committed::Committed;
pub(crate) use committed::{GroupOffsets, GroupQuery};
pub(crate) use ends::{fetch_ends, Ends};
pub(crate) use error::OffsetsError;
pub use fetch::{fetch, fetch_in_session, FetchOptions, FetchSession};
pub(crate) use groups::list_groups;
pub(crate) use members::{describe_groups, GroupDescription, Member};

/// A partition of a topic. The name is shared: tens of thousands of partitions of a thousand
/// topics, copied between snapshots, lag and the long poll, cost one allocation per topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
