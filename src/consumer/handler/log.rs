//! The default handler: one log line per record, like the sample's consumer.
//!
//! It exists so a fresh deployment shows that records flow before anyone writes a handler, and so
//! the latency column (now − record timestamp) shows how long the wake-up path took. Record
//! contents are untrusted: text is shown with control characters escaped (a value cannot forge
//! extra log lines or terminal sequences), long text is cut, and binary data is shown only by its
//! size.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::consumer::message::Message;

use super::rfc3339;

/// Bytes of a key or value shown before the rest is summarised.
pub(crate) const SHOWN_BYTES: usize = 1024;

/// Logs every record of the batch. Never fails.
pub(crate) fn log_batch(batch: &[Message]) {
    let now = now_ms();
    for m in batch {
        let key = shown(m.key.as_deref(), SHOWN_BYTES);
        let value = shown(m.value.as_deref(), SHOWN_BYTES);
        if m.timestamp_ms >= 0 {
            let time = rfc3339::format_millis(m.timestamp_ms)
                .unwrap_or_else(|| m.timestamp_ms.to_string());
            tracing::info!(
                topic = %m.topic,
                partition = m.partition,
                offset = m.offset,
                key = %key,
                value = %value,
                timestamp = %time,
                latency_ms = now.saturating_sub(m.timestamp_ms),
                "record"
            );
        } else {
            tracing::info!(
                topic = %m.topic,
                partition = m.partition,
                offset = m.offset,
                key = %key,
                value = %value,
                "record (no timestamp)"
            );
        }
    }
}

/// Milliseconds since the Unix epoch, 0 if the clock is before it.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How a key or value appears in a log line:
/// `<null>`, `<empty>`, UTF-8 text (control characters escaped, cut after `limit` bytes with a
/// `…<+N bytes>` marker), or `<N bytes>` for anything that is not UTF-8.
pub(crate) fn shown(bytes: Option<&[u8]>, limit: usize) -> String {
    let Some(bytes) = bytes else {
        return "<null>".to_string();
    };
    if bytes.is_empty() {
        return "<empty>".to_string();
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return format!("<{} bytes>", bytes.len());
    };
    let mut cut = text.len().min(limit);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 16);
    for c in text[..cut].chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut < text.len() {
        let _ = write!(out, "…<+{} bytes>", text.len() - cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_table() {
        let long = "a".repeat(1500);
        let long_shown = format!("{}…<+476 bytes>", "a".repeat(1024));
        // "é" is two bytes: a cut inside it moves back to the character's start.
        let accented = format!("{}é", "a".repeat(1023));
        let accented_shown = format!("{}…<+2 bytes>", "a".repeat(1023));
        let exact = "b".repeat(1024);
        let cases: Vec<(Option<&[u8]>, String)> = vec![
            (None, "<null>".into()),
            (Some(b""), "<empty>".into()),
            (Some(b"hello"), "hello".into()),
            (Some("grüße ✓".as_bytes()), "grüße ✓".into()),
            (Some(b"a\nb\tc\x1b[31m"), "a\\nb\\tc\\u{1b}[31m".into()),
            (Some(b"\xff\xfe\x00"), "<3 bytes>".into()),
            (Some(b"ok\xc3"), "<3 bytes>".into()),
            (Some(long.as_bytes()), long_shown),
            (Some(accented.as_bytes()), accented_shown),
            (Some(exact.as_bytes()), exact.clone()),
        ];
        for (input, want) in cases {
            assert_eq!(shown(input, SHOWN_BYTES), want, "{input:?}");
        }
    }

    #[test]
    fn log_batch_never_fails() {
        log_batch(&[
            Message {
                topic: "t".into(),
                timestamp_ms: -1,
                ..Message::default()
            },
            Message {
                topic: "t".into(),
                offset: 1,
                timestamp_ms: i64::MAX,
                value: Some(bytes::Bytes::from_static(b"\x00\xff")),
                ..Message::default()
            },
        ]);
    }
}
