//! Why an offset could not be read, and whether asking again may help.
//!
//! Each variant says where the failure came from (which topic, partition, group, broker), so
//! a person reading a `lag` row or a log line knows what to look at; [`Retriable`] says which
//! of them the one retry loop asks again. Route errors (the leader or coordinator moved) heal
//! after a refresh; a missing partition or a denied group do not.

use super::TopicPartition;
use crate::cluster::ClusterError;
use crate::protocol::error::{is_stale_route, ErrorCode};
use crate::retry::Retriable;
use crate::wire::WireError;

/// A per-partition or per-group failure of an offsets request.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum OffsetsError {
    /// The request or its connection failed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// No metadata to route by (after the metadata request's own retries).
    #[error(transparent)]
    Metadata(WireError),
    /// No coordinator for the group (after FindCoordinator's own retries).
    #[error(transparent)]
    Coordinator(ClusterError),
    #[error("no coordinator found")]
    NoCoordinator,
    #[error("topic '{0}' is not in the metadata")]
    NotInMetadata(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The metadata carries an error for the topic.
    #[error("topic '{topic}': {code}")]
    Topic { topic: String, code: ErrorCode },
    #[error("partition {partition} does not exist (topic '{topic}' has {count} partitions)")]
    NoSuchPartition {
        topic: String,
        partition: i32,
        count: usize,
    },
    #[error("{0}: no leader right now")]
    NoLeader(TopicPartition),
    /// The broker answered with an error for this partition.
    #[error("{api} {tp} at {addr}: {code}")]
    Partition {
        api: &'static str,
        tp: TopicPartition,
        addr: String,
        code: ErrorCode,
    },
    #[error("ListOffsets {0}: no offset in the answer")]
    NoOffset(TopicPartition),
    #[error("{tp}: missing from the {api} answer")]
    MissingPartition {
        api: &'static str,
        tp: TopicPartition,
    },
    /// The coordinator answered with an error for the whole group.
    #[error("OffsetFetch for group '{group}' at {addr}: {code}")]
    Group {
        group: String,
        addr: String,
        code: ErrorCode,
    },
    #[error("group '{0}' missing from the OffsetFetch answer")]
    MissingGroup(String),
    /// The coordinator answered DescribeGroups with an error for the group.
    #[error("DescribeGroups for group '{group}' at {addr}: {code}")]
    Described {
        group: String,
        addr: String,
        code: ErrorCode,
    },
    #[error("group '{0}' missing from the DescribeGroups answer")]
    MissingDescribed(String),
    #[error("empty OffsetFetch answer")]
    EmptyAnswer,
    /// A broker-wide error (ListGroups).
    #[error("{api} at {addr}: {code}")]
    Broker {
        api: &'static str,
        addr: String,
        code: ErrorCode,
    },
    #[error("no answer for this partition")]
    NoAnswer,
}

impl Retriable for OffsetsError {
    fn is_retriable(&self) -> bool {
        use OffsetsError::*;
        match self {
            Wire(e) => e.is_retriable(),
            Topic { code, .. }
            | Partition { code, .. }
            | Group { code, .. }
            | Described { code, .. } => is_stale_route(code.0),
            NotInMetadata(_)
            | UnknownTopic(_)
            | NoLeader(_)
            | NoOffset(_)
            | MissingPartition { .. }
            | MissingGroup(_)
            | MissingDescribed(_)
            | EmptyAnswer => true,
            // Metadata and Coordinator were retried by the cluster layer already.
            Metadata(_)
            | Coordinator(_)
            | NoCoordinator
            | NoSuchPartition { .. }
            | Broker { .. }
            | NoAnswer => false,
        }
    }
}
