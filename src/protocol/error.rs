//! Kafka error codes: their names as people know them (`NOT_LEADER_OR_FOLLOWER`), and one table
//! that says how this client reacts to each (franz-go's `kerr` idea: classify once, not per
//! response).
//!
//! The names come from kafka-protocol's table, rewritten in the upper-snake form that the Java
//! tools and the Kafka documentation print, so that a message can be searched for. Codes that
//! the table does not list are retriable exactly when the protocol marks them so.

use kafka_protocol::error::ResponseError;

/// How the client reacts to an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Code 0: no error.
    None,
    /// The cached leader or coordinator is stale: refresh the route, then ask again.
    StaleRoute,
    /// A transient condition on the broker: ask again later, on the same route.
    Retriable,
    /// Not authorised: no retry helps until an operator changes an ACL.
    Denied,
    /// Anything else: final for this request.
    Fatal,
}

/// Error codes this client reacts to by name.
pub(crate) mod code {
    pub(crate) const NONE: i16 = 0;
    pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
    pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub(crate) const NOT_COORDINATOR: i16 = 16;
    pub(crate) const ILLEGAL_GENERATION: i16 = 22;
    pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
    pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub(crate) const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub(crate) const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    pub(crate) const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
    #[cfg(test)]
    pub(crate) const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub(crate) const GROUP_ID_NOT_FOUND: i16 = 69;
    pub(crate) const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub(crate) const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    pub(crate) const FENCED_LEADER_EPOCH: i16 = 74;
    pub(crate) const UNKNOWN_LEADER_EPOCH: i16 = 75;
    #[cfg(test)]
    pub(crate) const OFFSET_NOT_AVAILABLE: i16 = 78;
    pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
    pub(crate) const FENCED_INSTANCE_ID: i16 = 82;
    pub(crate) const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// The classification table: every code whose reaction differs from "retriable when the
/// protocol says so, else final".
const TABLE: &[(i16, Class)] = &[
    (code::NONE, Class::None),
    // The answer came from a broker that no longer leads or coordinates (or does not yet):
    // the route is refreshed (Metadata, FindCoordinator) before asking again.
    (code::UNKNOWN_TOPIC_OR_PARTITION, Class::StaleRoute),
    (code::LEADER_NOT_AVAILABLE, Class::StaleRoute),
    (code::NOT_LEADER_OR_FOLLOWER, Class::StaleRoute),
    (code::COORDINATOR_LOAD_IN_PROGRESS, Class::StaleRoute),
    (code::COORDINATOR_NOT_AVAILABLE, Class::StaleRoute),
    (code::NOT_COORDINATOR, Class::StaleRoute),
    (code::FENCED_LEADER_EPOCH, Class::StaleRoute),
    (code::UNKNOWN_LEADER_EPOCH, Class::StaleRoute),
    (code::UNKNOWN_TOPIC_ID, Class::StaleRoute),
    (code::TOPIC_AUTHORIZATION_FAILED, Class::Denied),
    (code::GROUP_AUTHORIZATION_FAILED, Class::Denied),
    (code::CLUSTER_AUTHORIZATION_FAILED, Class::Denied),
];

/// How the client reacts to `code`.
pub(crate) fn class(code: i16) -> Class {
    match TABLE.iter().find(|(c, _)| *c == code) {
        Some((_, class)) => *class,
        None if ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable()) => {
            Class::Retriable
        }
        None => Class::Fatal,
    }
}

/// Whether asking again (after refreshing the route, for [`Class::StaleRoute`]) may succeed.
pub(crate) fn is_retriable(code: i16) -> bool {
    matches!(class(code), Class::StaleRoute | Class::Retriable)
}

/// Whether the cached leader or coordinator is stale after this answer.
pub(crate) fn is_stale_route(code: i16) -> bool {
    class(code) == Class::StaleRoute
}

/// The Kafka name of an error code: `NOT_COORDINATOR` for 16, `UNKNOWN_ERROR_CODE_32000` for
/// codes this build does not know.
pub(crate) fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => upper_snake(&format!("{e:?}")),
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// A Kafka error code as a value: prints its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub i16);

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&error_name(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_java_spelling() {
        for (c, name) in [
            (0, "NONE"),
            (3, "UNKNOWN_TOPIC_OR_PARTITION"),
            (6, "NOT_LEADER_OR_FOLLOWER"),
            (16, "NOT_COORDINATOR"),
            (58, "SASL_AUTHENTICATION_FAILED"),
            (-1, "UNKNOWN_SERVER_ERROR"),
            (32000, "UNKNOWN_ERROR_CODE_32000"),
        ] {
            assert_eq!(error_name(c), name, "code {c}");
            assert_eq!(ErrorCode(c).to_string(), name);
        }
    }

    #[test]
    fn every_named_constant_has_its_kafka_name() {
        for (c, name) in [
            (code::OFFSET_OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE"),
            (code::ILLEGAL_GENERATION, "ILLEGAL_GENERATION"),
            (
                code::INCONSISTENT_GROUP_PROTOCOL,
                "INCONSISTENT_GROUP_PROTOCOL",
            ),
            (code::UNKNOWN_MEMBER_ID, "UNKNOWN_MEMBER_ID"),
            (code::REBALANCE_IN_PROGRESS, "REBALANCE_IN_PROGRESS"),
            (code::GROUP_ID_NOT_FOUND, "GROUP_ID_NOT_FOUND"),
            (
                code::FETCH_SESSION_ID_NOT_FOUND,
                "FETCH_SESSION_ID_NOT_FOUND",
            ),
            (
                code::INVALID_FETCH_SESSION_EPOCH,
                "INVALID_FETCH_SESSION_EPOCH",
            ),
            (code::OFFSET_NOT_AVAILABLE, "OFFSET_NOT_AVAILABLE"),
            (code::MEMBER_ID_REQUIRED, "MEMBER_ID_REQUIRED"),
            (code::FENCED_INSTANCE_ID, "FENCED_INSTANCE_ID"),
            (code::UNKNOWN_TOPIC_ID, "UNKNOWN_TOPIC_ID"),
            (code::UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION"),
            (
                code::CLUSTER_AUTHORIZATION_FAILED,
                "CLUSTER_AUTHORIZATION_FAILED",
            ),
        ] {
            assert_eq!(error_name(c), name, "code {c}");
        }
    }

    #[test]
    fn classification_table() {
        for (c, want) in [
            (code::NONE, Class::None),
            (code::NOT_LEADER_OR_FOLLOWER, Class::StaleRoute),
            (code::NOT_COORDINATOR, Class::StaleRoute),
            (code::UNKNOWN_TOPIC_ID, Class::StaleRoute),
            (7, Class::Retriable),  // REQUEST_TIMED_OUT
            (13, Class::Retriable), // NETWORK_EXCEPTION
            (code::TOPIC_AUTHORIZATION_FAILED, Class::Denied),
            (code::OFFSET_OUT_OF_RANGE, Class::Fatal),
            (code::SASL_AUTHENTICATION_FAILED, Class::Fatal),
            (-1, Class::Fatal),
            (32000, Class::Fatal),
        ] {
            assert_eq!(class(c), want, "code {c}");
        }
        assert!(is_retriable(code::COORDINATOR_LOAD_IN_PROGRESS));
        assert!(!is_retriable(code::TOPIC_AUTHORIZATION_FAILED));
        assert!(!is_retriable(code::NONE));
        assert!(is_stale_route(code::FENCED_LEADER_EPOCH));
        assert!(!is_stale_route(7));
    }

    /// A stale route is always something the protocol itself calls retriable, and a denial
    /// never is: the table refines the protocol's flag, it never contradicts it.
    #[test]
    fn the_table_agrees_with_the_protocol() {
        for (c, class) in TABLE {
            let protocol = ResponseError::try_from_code(*c).is_some_and(|e| e.is_retriable());
            match class {
                Class::StaleRoute => assert!(protocol, "code {c}"),
                Class::Denied | Class::None => assert!(!protocol, "code {c}"),
                _ => {}
            }
        }
    }
}
