//! What the producer does with one partition's answer to a Produce request: one table, in the
//! spirit of `protocol::error::class`, with the codes that only matter to an idempotent
//! producer added.

use crate::protocol::error::{class, Class};

/// Error codes of the idempotent producer.
pub(crate) mod code {
    pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub(crate) const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub(crate) const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub(crate) const PRODUCER_FENCED: i16 = 90;
}

/// The producer's reaction to a partition's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Written (error code 0).
    Written,
    /// Written before: the broker recognised the sequence numbers of a retry.
    Duplicate,
    /// The broker expected other sequence numbers: an earlier batch is missing (it failed or is
    /// still on its way) — or, when nothing earlier is pending, the broker lost our state.
    OutOfOrder,
    /// The broker no longer knows this producer id (its state expired): a new id is needed.
    UnknownProducer,
    /// Ask again after a back-off; `refresh` when the leader may have moved.
    Retry { refresh: bool },
    /// Final for this batch (too large, not authorised, invalid, fenced).
    Fail,
}

impl Reaction {
    /// The batch is sent again (after a back-off).
    pub(crate) fn retries(&self) -> bool {
        matches!(self, Reaction::Retry { .. })
    }
}

pub(crate) fn reaction(error_code: i16) -> Reaction {
    match error_code {
        code::DUPLICATE_SEQUENCE_NUMBER => Reaction::Duplicate,
        code::OUT_OF_ORDER_SEQUENCE_NUMBER => Reaction::OutOfOrder,
        code::UNKNOWN_PRODUCER_ID => Reaction::UnknownProducer,
        code::INVALID_PRODUCER_EPOCH | code::PRODUCER_FENCED => Reaction::Fail,
        c => match class(c) {
            Class::None => Reaction::Written,
            Class::StaleRoute => Reaction::Retry { refresh: true },
            Class::Retriable => Reaction::Retry { refresh: false },
            Class::Denied | Class::Fatal => Reaction::Fail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (c, want) in [
            (0, Reaction::Written),
            (46, Reaction::Duplicate),
            (45, Reaction::OutOfOrder),
            (59, Reaction::UnknownProducer),
            (6, Reaction::Retry { refresh: true }), // NOT_LEADER_OR_FOLLOWER
            (3, Reaction::Retry { refresh: true }), // UNKNOWN_TOPIC_OR_PARTITION
            (19, Reaction::Retry { refresh: false }), // NOT_ENOUGH_REPLICAS
            (20, Reaction::Retry { refresh: false }), // NOT_ENOUGH_REPLICAS_AFTER_APPEND
            (7, Reaction::Retry { refresh: false }), // REQUEST_TIMED_OUT
            (10, Reaction::Fail),                   // MESSAGE_TOO_LARGE
            (29, Reaction::Fail),                   // TOPIC_AUTHORIZATION_FAILED
            (31, Reaction::Fail),                   // CLUSTER_AUTHORIZATION_FAILED
            (32, Reaction::Fail),                   // INVALID_TIMESTAMP
            (87, Reaction::Fail),                   // INVALID_RECORD
            (47, Reaction::Fail),
            (90, Reaction::Fail),
        ] {
            assert_eq!(reaction(c), want, "code {c}");
        }
    }
}
