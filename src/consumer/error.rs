//! Why a consumer stopped with an error: what failed, and the error it came from.
//!
//! Each variant names the step that failed (building the handler, reaching the cluster, joining
//! the group, reading where to start, fetching, dead-lettering), so the exit line says what to
//! look at; the error below it is kept as the source. The text of every variant is what the
//! consumer printed before these were types, and `cli/consume.rs` prints it as it is (exit 1).

use super::fetcher::FetchFatal;
use super::group::GroupError;
use super::handler::HandlerError;
use crate::offsets::{OffsetsError, TopicPartition};
use crate::wire::WireError;

/// A consumer failure no retry heals: the process exits 1 with this message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsumerError {
    /// `--exec` or `--sink` cannot be used.
    #[error(transparent)]
    Handler(#[from] HandlerError),
    /// The cluster refused the first metadata request for good (credentials, trust).
    #[error(transparent)]
    Cluster(WireError),
    /// The member never got into its group before the idle timeout ran out; `last` is the
    /// last join failure (none when no join was tried).
    #[error("could not join group '{group}' within the idle timeout: {}", shown(.last))]
    NotJoined {
        group: String,
        #[source]
        last: Option<GroupError>,
    },
    /// The group said no retry can help (authorization, fenced instance, incompatible
    /// protocol): a [`GroupError::Fatal`] from a join, a heartbeat or a commit.
    #[error(transparent)]
    Group(GroupError),
    /// The coordinator could not say where the group stands.
    #[error("cannot read the group's committed offsets: {0}")]
    Committed(#[source] Box<OffsetsError>),
    /// The group was missing from the committed offsets' answer.
    #[error("cannot read the group's committed offsets")]
    NoCommitted,
    /// A partition without a commit has no log ends to start from by policy.
    #[error("cannot read the offsets of {tp}: {source}")]
    Ends {
        tp: TopicPartition,
        source: Box<OffsetsError>,
    },
    /// A partition without a commit was missing from the log ends' answer.
    #[error("cannot read the offsets of {0}")]
    NoEnds(TopicPartition),
    /// A fetcher met what no retry fixes (authorization).
    #[error(transparent)]
    Fetch(#[from] FetchFatal),
    /// The dead-letter policy is on but no writer was set up (a bug).
    #[error("dead-letter topic '{0}': no writer was set up (a bug)")]
    NoDeadLetterWriter(String),
}

fn shown(e: &Option<GroupError>) -> String {
    e.as_ref().map(ToString::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn messages_are_the_ones_printed_before_and_keep_their_source() {
        let tp = TopicPartition::new("t", 3);
        let cases: Vec<(ConsumerError, &str, bool)> = vec![
            (
                ConsumerError::NotJoined {
                    group: "g".into(),
                    last: Some(GroupError::Retry("JoinGroup: COORDINATOR_NOT_AVAILABLE".into())),
                },
                "could not join group 'g' within the idle timeout: JoinGroup: COORDINATOR_NOT_AVAILABLE",
                true,
            ),
            (
                ConsumerError::NotJoined {
                    group: "g".into(),
                    last: None,
                },
                "could not join group 'g' within the idle timeout: ",
                false,
            ),
            (
                ConsumerError::Group(GroupError::Fatal("JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED".into())),
                "JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED",
                false,
            ),
            (
                ConsumerError::Committed(Box::new(OffsetsError::NoCoordinator)),
                "cannot read the group's committed offsets: no coordinator found",
                true,
            ),
            (
                ConsumerError::NoCommitted,
                "cannot read the group's committed offsets",
                false,
            ),
            (
                ConsumerError::Ends {
                    tp: tp.clone(),
                    source: Box::new(OffsetsError::NoLeader(tp.clone())),
                },
                "cannot read the offsets of t-3: t-3: no leader right now",
                true,
            ),
            (ConsumerError::NoEnds(tp), "cannot read the offsets of t-3", false),
            (
                ConsumerError::Fetch(FetchFatal::NotAuthorized("t".into())),
                "not authorized to read topic 't' (TOPIC_AUTHORIZATION_FAILED)",
                false,
            ),
            (
                ConsumerError::NoDeadLetterWriter("t.DLT".into()),
                "dead-letter topic 't.DLT': no writer was set up (a bug)",
                false,
            ),
            (
                ConsumerError::Handler(HandlerError::InvalidExec("empty command".into())),
                "--exec: empty command",
                false,
            ),
        ];
        for (e, want, has_source) in cases {
            assert_eq!(e.to_string(), want);
            assert_eq!(e.source().is_some(), has_source, "{e:?}");
        }
    }
}
