//! Turning `produce`'s input into records, the way `kcat -P` does: records separated by a
//! delimiter (a newline unless `--delimiter` says otherwise), an optional key delimiter that
//! splits each record into key and value. The delimiters (their escapes) and the `-H` headers
//! are read and checked in [`crate::config::produce`]; this is only the splitting.
//!
//! Pure and zero-copy: input is read into one buffer and records are slices of it. A record is
//! bounded (`max_record`): a file without delimiters cannot grow the buffer forever.

use bytes::{Bytes, BytesMut};
use memchr::memmem::Finder;

/// Splits a byte stream at a delimiter.
pub(super) struct Splitter {
    finder: Finder<'static>,
    delim_len: usize,
    buf: BytesMut,
    /// Bytes of `buf` already searched without finding a delimiter.
    scanned: usize,
    max_record: usize,
    /// Records returned so far (for error messages: "record 7").
    count: u64,
}

/// A record longer than the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooLong {
    /// 1-based number of the record in the input.
    pub record: u64,
    pub limit: usize,
}

impl Splitter {
    pub(super) fn new(delimiter: &[u8], max_record: usize) -> Self {
        Splitter {
            finder: Finder::new(delimiter).into_owned(),
            delim_len: delimiter.len(),
            buf: BytesMut::with_capacity(1 << 20),
            scanned: 0,
            max_record,
            count: 0,
        }
    }

    /// The buffer to read more input into (at least `reserve` bytes of room).
    pub(super) fn buffer(&mut self, reserve: usize) -> &mut BytesMut {
        self.buf.reserve(reserve);
        &mut self.buf
    }

    /// The next complete record, if the buffer holds one.
    pub(super) fn next_record(&mut self) -> Result<Option<Bytes>, TooLong> {
        let from = self
            .scanned
            .saturating_sub(self.delim_len.saturating_sub(1));
        match self.finder.find(&self.buf[from..]) {
            Some(i) => {
                let end = from + i;
                if end > self.max_record {
                    return Err(self.too_long());
                }
                let record = self.buf.split_to(end).freeze();
                let _ = self.buf.split_to(self.delim_len);
                self.scanned = 0;
                self.count += 1;
                Ok(Some(record))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max_record + self.delim_len {
                    return Err(self.too_long());
                }
                Ok(None)
            }
        }
    }

    /// At the end of the input: the last record when it had no delimiter after it.
    pub(super) fn finish(&mut self) -> Result<Option<Bytes>, TooLong> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.buf.len() > self.max_record {
            return Err(self.too_long());
        }
        self.count += 1;
        self.scanned = 0;
        Ok(Some(self.buf.split().freeze()))
    }

    fn too_long(&self) -> TooLong {
        TooLong {
            record: self.count + 1,
            limit: self.max_record,
        }
    }
}

/// Key and value of one input record: split at the first `key_delimiter` when there is one
/// (no delimiter in the record: no key, the whole record is the value, as kcat does).
pub(super) fn key_value(
    record: Bytes,
    key_delimiter: Option<&Finder<'_>>,
    len: usize,
) -> (Option<Bytes>, Bytes) {
    let Some(f) = key_delimiter else {
        return (None, record);
    };
    match f.find(&record) {
        Some(i) => (Some(record.slice(..i)), record.slice(i + len..)),
        None => (None, record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(input: &[&[u8]], delim: &[u8], max: usize) -> Result<Vec<Bytes>, TooLong> {
        let mut s = Splitter::new(delim, max);
        let mut out = Vec::new();
        for chunk in input {
            s.buffer(chunk.len()).extend_from_slice(chunk);
            while let Some(r) = s.next_record()? {
                out.push(r);
            }
        }
        out.extend(s.finish()?);
        Ok(out)
    }

    #[test]
    fn splitting_table() {
        let b = |v: &[&str]| {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect::<Vec<_>>()
        };
        type Case<'a> = (&'a [&'a [u8]], &'a [u8], Vec<Bytes>);
        let cases: Vec<Case> = vec![
            (&[b"a\nb\n"], b"\n", b(&["a", "b"])),
            (&[b"a\nb"], b"\n", b(&["a", "b"])),
            (&[b"a\n\nb\n"], b"\n", b(&["a", "", "b"])),
            (&[b""], b"\n", b(&[])),
            (&[b"a", b"bc\nd", b"e\n"], b"\n", b(&["abc", "de"])),
            // A two-byte delimiter split across reads.
            (
                &[b"one|", b"|two||thr", b"ee"],
                b"||",
                b(&["one", "two", "three"]),
            ),
            (&[b"x\0y\0"], b"\0", b(&["x", "y"])),
        ];
        for (input, delim, want) in cases {
            assert_eq!(split_all(input, delim, 100).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn records_are_bounded() {
        assert_eq!(
            split_all(&[b"ok\n0123456789x\n"], b"\n", 10).unwrap_err(),
            TooLong {
                record: 2,
                limit: 10
            }
        );
        // No delimiter at all: stops growing past the limit.
        let big = vec![b'z'; 50];
        assert_eq!(
            split_all(&[&big, &big], b"\n", 10).unwrap_err(),
            TooLong {
                record: 1,
                limit: 10
            }
        );
        assert_eq!(split_all(&[b"0123456789"], b"\n", 10).unwrap().len(), 1);
    }

    #[test]
    fn key_value_table() {
        let f = Finder::new(b"::");
        let kv = |s: &'static str| key_value(Bytes::from_static(s.as_bytes()), Some(&f), 2);
        assert_eq!(
            kv("k::v"),
            (Some(Bytes::from_static(b"k")), Bytes::from_static(b"v"))
        );
        assert_eq!(
            kv("k::v::w"),
            (Some(Bytes::from_static(b"k")), Bytes::from_static(b"v::w"))
        );
        assert_eq!(kv("::v"), (Some(Bytes::new()), Bytes::from_static(b"v")));
        assert_eq!(kv("no key"), (None, Bytes::from_static(b"no key")));
        assert_eq!(key_value(Bytes::from_static(b"a::b"), None, 0).0, None);
    }
}
