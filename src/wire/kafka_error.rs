//! Kafka error codes as people know them (`NOT_LEADER_OR_FOLLOWER`), and which ones heal.
//!
//! The names come from kafka-protocol's table, rewritten in the upper-snake form that the Java
//! tools and the Kafka documentation print, so that a message can be searched for.

use kafka_protocol::error::ResponseError;

/// The Kafka name of an error code: `NOT_COORDINATOR` for 16, `UNKNOWN_SERVER_ERROR(-1)` style
/// for codes this build does not know.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => upper_snake(&format!("{e:?}")),
    }
}

/// Whether the Kafka protocol marks this error as retriable (the condition may heal by itself).
pub fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
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

/// Error codes this client reacts to by name.
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const OFFSET_NOT_AVAILABLE: i16 = 78;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
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
        }
    }

    #[test]
    fn retriable_follows_the_protocol() {
        assert!(is_retriable(code::NOT_LEADER_OR_FOLLOWER));
        assert!(is_retriable(code::COORDINATOR_LOAD_IN_PROGRESS));
        assert!(!is_retriable(code::TOPIC_AUTHORIZATION_FAILED));
        assert!(!is_retriable(code::NONE));
    }
}
