//! One Kafka record as the handlers see it.
//!
//! The fetch loop decodes record batches into this plain, owned shape so handlers never depend on
//! the wire format or on `kafka-protocol` types: a handler can be tested with a literal, and the
//! decoder can change without touching what a user's `--exec` command or `--sink` endpoint sees.
//! Key, value and header values stay `Bytes` (cheap slices of the fetched batch); `None` is a
//! Kafka null, which is different from an empty byte string.

use bytes::Bytes;

/// One record of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the Unix epoch (create or log-append time); negative when the record
    /// carries none (Kafka uses -1).
    pub timestamp_ms: i64,
    /// The timestamp is the broker's append time (LogAppendTime), not the producer's.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// (name, value) in record order; names may repeat and need not be UTF-8, as Kafka allows.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

impl Message {
    /// The value of the last header called `name` (ASCII case-insensitive), if any.
    ///
    /// Last, because producers that append a header to override an earlier one expect that.
    pub(crate) fn header(&self, name: &str) -> Option<&Option<Bytes>> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_last_and_case_insensitive() {
        let m = Message {
            headers: vec![
                (
                    Bytes::from_static(b"Content-Type"),
                    Some(Bytes::from_static(b"a")),
                ),
                (Bytes::from_static(b"x"), None),
                (Bytes::from_static(b"\xff"), Some(Bytes::from_static(b"c"))),
                (
                    Bytes::from_static(b"content-type"),
                    Some(Bytes::from_static(b"b")),
                ),
            ],
            ..Message::default()
        };
        assert_eq!(
            m.header("CONTENT-TYPE"),
            Some(&Some(Bytes::from_static(b"b")))
        );
        assert_eq!(m.header("x"), Some(&None));
        assert_eq!(m.header("y"), None);
        assert_eq!(m.header("\u{ff}"), None);
    }
}
