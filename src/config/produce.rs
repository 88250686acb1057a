//! The settings of `produce`: the topic (`--topic` / `KAFKA_TOPIC`), how the input splits into
//! records (`--delimiter`, `--key-delimiter`, with their escapes), the headers added to every
//! record, the partition, the codec and the batch knobs.
//!
//! Checked here, before any connection opens, so a typo is one exit 2 naming the flag. Whether
//! the topic exists and the partition is in range needs the cluster, so the caller checks those;
//! reading the input and running the producer stay with the caller too, which owns those types.
//! The codec is the record layer's [`Compression`] (`protocol` is below `config`).

use std::time::Duration;

use super::env::Env;
use super::settings::{flag, invalid, number, parsed, required};
use super::ConfigError;
use crate::protocol::records::Compression;

/// `produce`'s flags as given (only `--topic` has a variable).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProduceFlags {
    pub topic: Option<String>,
    pub delimiter: Option<String>,
    pub key_delimiter: Option<String>,
    pub headers: Vec<String>,
    pub partition: Option<String>,
    pub compression: Option<String>,
    pub batch_bytes: Option<String>,
    pub linger_ms: Option<String>,
    pub max_record_bytes: Option<String>,
}

/// The codec `--compression` names (ASCII case ignored).
fn codec(v: &str) -> Result<Compression, String> {
    Compression::from_name(v)
        .ok_or_else(|| format!("expected none, gzip, snappy, lz4 or zstd, got '{v}'"))
}

/// `produce`'s settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProduceSettings {
    /// One topic name, trimmed.
    pub topic: String,
    /// What separates records (a newline by default).
    pub delimiter: Vec<u8>,
    /// What separates a record's key from its value, if records have keys.
    pub key_delimiter: Option<Vec<u8>>,
    /// `(name, value)` added to every record, in the order given.
    pub headers: Vec<(String, String)>,
    /// Every record to this partition; `None`: by key, or sticky without one.
    pub partition: Option<i32>,
    pub compression: Compression,
    /// Uncompressed bytes per batch.
    pub batch_bytes: usize,
    /// How long a batch waits for more records.
    pub linger: Duration,
    /// The largest record accepted from the input.
    pub max_record: usize,
}

/// Flags first (the topic also from `KAFKA_TOPIC`), then the defaults; every problem names
/// its flag or variable.
pub(crate) fn resolve(env: &dyn Env, f: &ProduceFlags) -> Result<ProduceSettings, ConfigError> {
    let topic = required(env, &f.topic, "--topic", "KAFKA_TOPIC", "the topic")?;
    if topic.value.trim().is_empty() || topic.value.contains(',') {
        return Err(invalid(
            &topic.origin,
            format!("expected one topic name, got '{}'", topic.value),
        ));
    }
    let delimiter = match &f.delimiter {
        Some(d) => unescape(d).map_err(|m| invalid("--delimiter", m))?,
        None => b"\n".to_vec(),
    };
    let key_delimiter = match &f.key_delimiter {
        Some(d) => Some(unescape(d).map_err(|m| invalid("--key-delimiter", m))?),
        None => None,
    };
    let headers = f
        .headers
        .iter()
        .map(|h| header(h).map_err(|m| invalid("-H", m)))
        .collect::<Result<Vec<_>, _>>()?;
    let partition = parsed(flag(&f.partition, "--partition"), None, |v| {
        v.parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .map(Some)
            .ok_or_else(|| format!("expected a partition number (0 or more), got '{v}'"))
    })?;
    let compression = parsed(
        flag(&f.compression, "--compression"),
        Compression::None,
        codec,
    )?;
    let batch_bytes = parsed(
        flag(&f.batch_bytes, "--batch-bytes"),
        512 << 10,
        number(1, 64 << 20),
    )?;
    let linger = parsed(flag(&f.linger_ms, "--linger-ms"), 5, number(0, 60_000))?;
    let max_record = parsed(
        flag(&f.max_record_bytes, "--max-record-bytes"),
        1 << 20,
        number(1, 256 << 20),
    )?;
    Ok(ProduceSettings {
        topic: topic.value.trim().to_string(),
        delimiter,
        key_delimiter,
        headers,
        partition,
        compression,
        batch_bytes: batch_bytes as usize,
        linger: Duration::from_millis(linger),
        max_record: max_record as usize,
    })
}

/// A delimiter as typed: `\n`, `\t`, `\r`, `\0`, `\\` and `\xHH` are escapes, anything else is
/// itself. Empty is an error.
fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match b.get(i + 1) {
            Some(b'n') => (b'\n', 2),
            Some(b't') => (b'\t', 2),
            Some(b'r') => (b'\r', 2),
            Some(b'0') => (0, 2),
            Some(b'\\') => (b'\\', 2),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    // Two hex digits: from_str_radix alone would take "+1" for 0x01.
                    Ok(v) if hex.len() == 2 && hex.bytes().all(|c| c.is_ascii_hexdigit()) => (v, 4),
                    _ => return Err(format!("'\\x' needs two hex digits in '{text}'")),
                }
            }
            _ => {
                return Err(format!(
                    "unknown escape in '{text}': use \\n, \\t, \\r, \\0, \\\\ or \\xHH"
                ))
            }
        };
        out.push(byte);
        i += used;
    }
    if out.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(out)
}

/// `-H name=value`: split at the first `=`; the name must not be empty, the value may.
fn header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got '{text}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::VarTable;

    fn some(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn flags() -> ProduceFlags {
        ProduceFlags {
            topic: some("t"),
            ..ProduceFlags::default()
        }
    }

    #[test]
    fn defaults() {
        let s = resolve(&VarTable::default(), &flags()).unwrap();
        assert_eq!(
            s,
            ProduceSettings {
                topic: "t".into(),
                delimiter: b"\n".to_vec(),
                key_delimiter: None,
                headers: vec![],
                partition: None,
                compression: Compression::None,
                batch_bytes: 512 << 10,
                linger: Duration::from_millis(5),
                max_record: 1 << 20,
            }
        );
    }

    #[test]
    fn every_flag_is_read() {
        let f = ProduceFlags {
            topic: some(" orders "),
            delimiter: some("\\x1e"),
            key_delimiter: some("::"),
            headers: vec!["trace=abc=d".into(), "empty=".into()],
            partition: some(" 3 "),
            compression: some("ZSTD"),
            batch_bytes: some("1024"),
            linger_ms: some("0"),
            max_record_bytes: some("256"),
        };
        let s = resolve(&VarTable::default(), &f).unwrap();
        assert_eq!(s.topic, "orders");
        assert_eq!(s.delimiter, [0x1e]);
        assert_eq!(s.key_delimiter.as_deref(), Some(&b"::"[..]));
        assert_eq!(
            s.headers,
            [
                ("trace".to_string(), "abc=d".to_string()),
                ("empty".into(), String::new())
            ]
        );
        assert_eq!(s.partition, Some(3));
        assert_eq!(s.compression, Compression::Zstd);
        assert_eq!(
            (s.batch_bytes, s.linger, s.max_record),
            (1024, Duration::ZERO, 256)
        );
    }

    #[test]
    fn topic_flag_beats_variable() {
        let env = VarTable::new(&[("KAFKA_TOPIC", "from-env")]);
        assert_eq!(resolve(&env, &flags()).unwrap().topic, "t");
        let s = resolve(&env, &ProduceFlags::default()).unwrap();
        assert_eq!(s.topic, "from-env");
    }

    #[test]
    fn every_codec_by_name() {
        for (c, name) in [
            (Compression::None, "none"),
            (Compression::Gzip, "gzip"),
            (Compression::Snappy, "snappy"),
            (Compression::Lz4, "lz4"),
            (Compression::Zstd, "zstd"),
        ] {
            assert_eq!(codec(name), Ok(c));
            assert_eq!(codec(&name.to_ascii_uppercase()), Ok(c));
        }
    }

    /// Variables, flags, and the exact message.
    type Refusal = (
        &'static [(&'static str, &'static str)],
        fn(&mut ProduceFlags),
        &'static str,
    );

    #[test]
    fn refusals_name_what_to_change() {
        let cases: &[Refusal] = &[
            (
                &[],
                |f| f.topic = None,
                "The setting --topic is invalid: the topic is required: pass --topic or set KAFKA_TOPIC.",
            ),
            (
                &[("KAFKA_TOPIC", "a,b")],
                |f| f.topic = None,
                "The setting KAFKA_TOPIC is invalid: expected one topic name, got 'a,b'.",
            ),
            (
                &[],
                |f| f.topic = some(" "),
                "The setting --topic is invalid: expected one topic name, got ' '.",
            ),
            (
                &[],
                |f| f.delimiter = some(""),
                "The setting --delimiter is invalid: must not be empty.",
            ),
            (
                &[],
                |f| f.delimiter = some("a\\q"),
                "The setting --delimiter is invalid: unknown escape in 'a\\q': use \\n, \\t, \\r, \\0, \\\\ or \\xHH.",
            ),
            (
                &[],
                |f| f.key_delimiter = some("\\xZZ"),
                "The setting --key-delimiter is invalid: '\\x' needs two hex digits in '\\xZZ'.",
            ),
            (
                &[],
                |f| f.key_delimiter = some("\\x1"),
                "The setting --key-delimiter is invalid: '\\x' needs two hex digits in '\\x1'.",
            ),
            (
                &[],
                |f| f.key_delimiter = some("\\x+1"),
                "The setting --key-delimiter is invalid: '\\x' needs two hex digits in '\\x+1'.",
            ),
            (
                &[],
                |f| f.headers = vec!["a=1".into(), "novalue".into()],
                "The setting -H is invalid: expected NAME=VALUE, got 'novalue'.",
            ),
            (
                &[],
                |f| f.headers = vec!["=v".into()],
                "The setting -H is invalid: expected NAME=VALUE, got '=v'.",
            ),
            (
                &[],
                |f| f.partition = some("-1"),
                "The setting --partition is invalid: expected a partition number (0 or more), got '-1'.",
            ),
            (
                &[],
                |f| f.compression = some("brotli"),
                "The setting --compression is invalid: expected none, gzip, snappy, lz4 or zstd, got 'brotli'.",
            ),
            (
                &[],
                |f| f.batch_bytes = some("0"),
                "The setting --batch-bytes is invalid: expected a whole number from 1 to 67108864, got '0'.",
            ),
            (
                &[],
                |f| f.linger_ms = some("soon"),
                "The setting --linger-ms is invalid: expected a whole number from 0 to 60000, got 'soon'.",
            ),
            (
                &[],
                |f| f.max_record_bytes = some("268435457"),
                "The setting --max-record-bytes is invalid: expected a whole number from 1 to 268435456, got '268435457'.",
            ),
        ];
        for (vars, edit, want) in cases {
            let mut f = flags();
            edit(&mut f);
            let e = resolve(&VarTable::new(vars), &f).unwrap_err();
            assert_eq!(e.to_string(), *want, "{vars:?} {f:?}");
        }
    }

    #[test]
    fn unescape_table() {
        let ok: &[(&str, &[u8])] = &[
            ("\\n", b"\n"),
            ("\\t|\\0", b"\t|\0"),
            ("\\r\\n", b"\r\n"),
            ("\\x1e", &[0x1e]),
            ("\\xFF", &[0xff]),
            ("::", b"::"),
            ("\\\\", b"\\"),
        ];
        for (text, want) in ok {
            assert_eq!(unescape(text).as_deref(), Ok(*want), "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("\\q", "unknown escape"),
            ("a\\", "unknown escape"),
            ("\\x1", "two hex digits"),
            ("\\xzz", "two hex digits"),
        ];
        for (text, want) in bad {
            assert!(unescape(text).unwrap_err().contains(want), "{text}");
        }
    }
}
