//! A bounds-checked cursor over one response body.
//!
//! Every length and count read from the wire is compared with the bytes actually left *before*
//! anything is copied or reserved, so a hostile peer can make a decode fail but can never make it
//! allocate more memory than the frame it already sent (kafka-protocol's decoders trust counts and
//! `Vec::with_capacity(n)` aborts the whole process on an absurd `n`).

use std::fmt;

use bytes::Bytes;

/// What went wrong, independent of where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The body ended in the middle of a fixed-size value.
    #[error("need {needed} bytes, only {remaining} remaining")]
    NotEnoughBytes { needed: usize, remaining: usize },
    /// A length or count (`what`) is larger than what is left of the body.
    #[error("{what} {value} exceeds {remaining} remaining bytes")]
    LengthExceedsRemaining {
        what: &'static str,
        value: u64,
        remaining: usize,
    },
    /// A negative length/count other than the null marker, or null where the field is not nullable.
    #[error("invalid {what} {value}")]
    InvalidLength { what: &'static str, value: i64 },
    /// A string is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// The body continues after the last field of the message.
    #[error("{count} trailing bytes")]
    TrailingBytes { count: usize },
    /// A varint uses more bytes, or more bits, than its type allows.
    #[error("malformed varint (more than {max_bytes} bytes or overflow)")]
    BadVarint { max_bytes: usize },
    /// The caller asked for a version this decoder does not know.
    #[error("version not supported (decoder knows {min}..={max})")]
    UnsupportedVersion { min: i16, max: i16 },
}

/// A decode failure, with the API, version and field path where it happened, e.g.
/// `Metadata v12: topics[3].partitions: count 2147483647 exceeds 9 remaining bytes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", prefix(.api, *.version, .path))]
pub struct DecodeError {
    /// API name ("Metadata"), empty when the error did not go through [`super::decode_body`].
    pub api: &'static str,
    /// Version being decoded (meaningful only when `api` is set).
    pub version: i16,
    /// Field path inside the message, e.g. `topics[3].partitions`; empty for the message itself.
    pub path: String,
    pub kind: DecodeErrorKind,
}

fn prefix(api: &str, version: i16, path: &str) -> String {
    let mut s = String::new();
    if !api.is_empty() {
        s.push_str(&format!("{api} v{version}: "));
    }
    if !path.is_empty() {
        s.push_str(path);
        s.push_str(": ");
    }
    s
}

impl DecodeError {
    /// An error at field `field` (may be empty) with no API attached yet.
    pub fn new(field: &str, kind: DecodeErrorKind) -> Self {
        Self {
            api: "",
            version: 0,
            path: field.to_owned(),
            kind,
        }
    }

    /// Prefixes the path with an enclosing segment (`topics[3]`).
    pub fn within(mut self, segment: impl fmt::Display) -> Self {
        self.path = if self.path.is_empty() {
            segment.to_string()
        } else {
            format!("{segment}.{}", self.path)
        };
        self
    }

    /// Attaches the API name and version (done by [`super::decode_body`]).
    pub fn in_api(mut self, api: &'static str, version: i16) -> Self {
        self.api = api;
        self.version = version;
        self
    }
}

/// Result of every decoding step.
pub(crate) type DecodeResult<T> = Result<T, DecodeError>;

/// Upper bound, in bytes, of what an array decode reserves up front. Beyond it the `Vec` grows as
/// elements actually decode, so memory stays proportional to the bytes consumed.
const MAX_PREALLOC_BYTES: usize = 64 * 1024;

/// How many elements to reserve for an array of `count` elements of `T` when `remaining` bytes
/// are left (every element takes at least one byte on the wire).
pub(crate) fn prealloc_len<T>(count: usize, remaining: usize) -> usize {
    let per = std::mem::size_of::<T>().max(1);
    count.min(remaining).min(MAX_PREALLOC_BYTES / per)
}

/// A cursor over a response body. Never panics, never allocates more than the bytes present.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// When the body is a `Bytes`, byte fields are zero-copy slices of it.
    owner: Option<&'a Bytes>,
}

impl<'a> Reader<'a> {
    /// Reads from a borrowed slice; byte fields are copied out.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            owner: None,
        }
    }

    /// Reads from a `Bytes`; byte fields share its storage (no copy).
    pub fn from_bytes(buf: &'a Bytes) -> Self {
        Self {
            buf: buf.as_ref(),
            pos: 0,
            owner: Some(buf),
        }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails with `TrailingBytes` unless everything was consumed.
    pub fn expect_end(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::new(
                "",
                DecodeErrorKind::TrailingBytes { count },
            )),
        }
    }

    fn take(&mut self, n: usize, field: &str) -> DecodeResult<&'a [u8]> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::NotEnoughBytes {
                    needed: n,
                    remaining,
                },
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array_n<const N: usize>(&mut self, field: &str) -> DecodeResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Takes a length-prefixed payload after checking the length against what is left.
    fn take_len(&mut self, len: usize, field: &str) -> DecodeResult<&'a [u8]> {
        let remaining = self.remaining();
        if len > remaining {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::LengthExceedsRemaining {
                    what: "length",
                    value: len as u64,
                    remaining,
                },
            ));
        }
        self.take(len, field)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, field: &str) -> DecodeResult<()> {
        self.take_len(n, field).map(|_| ())
    }

    pub fn i8(&mut self, field: &str) -> DecodeResult<i8> {
        Ok(i8::from_be_bytes(self.array_n(field)?))
    }
    pub fn u8(&mut self, field: &str) -> DecodeResult<u8> {
        Ok(u8::from_be_bytes(self.array_n(field)?))
    }
    pub fn i16(&mut self, field: &str) -> DecodeResult<i16> {
        Ok(i16::from_be_bytes(self.array_n(field)?))
    }
    pub fn u16(&mut self, field: &str) -> DecodeResult<u16> {
        Ok(u16::from_be_bytes(self.array_n(field)?))
    }
    pub fn i32(&mut self, field: &str) -> DecodeResult<i32> {
        Ok(i32::from_be_bytes(self.array_n(field)?))
    }
    pub fn u32(&mut self, field: &str) -> DecodeResult<u32> {
        Ok(u32::from_be_bytes(self.array_n(field)?))
    }
    pub fn i64(&mut self, field: &str) -> DecodeResult<i64> {
        Ok(i64::from_be_bytes(self.array_n(field)?))
    }
    /// Kafka booleans: any non-zero byte is true (as the Java client reads them).
    pub fn bool(&mut self, field: &str) -> DecodeResult<bool> {
        Ok(self.u8(field)? != 0)
    }
    /// A 16-byte UUID, as raw bytes.
    pub fn uuid(&mut self, field: &str) -> DecodeResult<[u8; 16]> {
        self.array_n(field)
    }

    /// Unsigned varint, at most 5 bytes and 32 bits.
    pub fn uvarint(&mut self, field: &str) -> DecodeResult<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let b = self.u8(field)?;
            if i == 4 && b > 0x0f {
                break;
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(
            field,
            DecodeErrorKind::BadVarint { max_bytes: 5 },
        ))
    }

    /// Unsigned varlong, at most 10 bytes and 64 bits.
    pub fn uvarlong(&mut self, field: &str) -> DecodeResult<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.u8(field)?;
            if i == 9 && b > 0x01 {
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(
            field,
            DecodeErrorKind::BadVarint { max_bytes: 10 },
        ))
    }

    /// Zigzag-encoded signed varint (record fields).
    pub fn varint(&mut self, field: &str) -> DecodeResult<i32> {
        let v = self.uvarint(field)?;
        Ok((v >> 1) as i32 ^ -((v & 1) as i32))
    }

    /// Zigzag-encoded signed varlong (record fields).
    pub fn varlong(&mut self, field: &str) -> DecodeResult<i64> {
        let v = self.uvarlong(field)?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    // ---- lengths -------------------------------------------------------------------------

    /// Classic nullable length (i16 for strings, i32 for bytes/arrays): -1 is null.
    fn classic_len(raw: i64, field: &str, what: &'static str) -> DecodeResult<Option<usize>> {
        match raw {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::new(
                field,
                DecodeErrorKind::InvalidLength { what, value: n },
            )),
            n => Ok(Some(n as usize)),
        }
    }

    /// Compact nullable length: unsigned varint N+1, 0 is null.
    fn compact_len(&mut self, field: &str) -> DecodeResult<Option<usize>> {
        Ok(match self.uvarint(field)? {
            0 => None,
            n => Some((n - 1) as usize),
        })
    }

    fn non_null<T>(v: Option<T>, field: &str, what: &'static str) -> DecodeResult<T> {
        v.ok_or_else(|| DecodeError::new(field, DecodeErrorKind::InvalidLength { what, value: -1 }))
    }

    fn utf8(raw: &[u8], field: &str) -> DecodeResult<String> {
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::new(field, DecodeErrorKind::InvalidUtf8))
    }

    /// Takes `len` checked bytes as `Bytes`: a slice of the owner when there is one.
    fn take_bytes(&mut self, len: usize, field: &str) -> DecodeResult<Bytes> {
        let start = self.pos;
        let raw = self.take_len(len, field)?;
        Ok(match self.owner {
            Some(owner) => owner.slice(start..start + len),
            None => Bytes::copy_from_slice(raw),
        })
    }

    // ---- strings -------------------------------------------------------------------------

    /// Classic nullable string (i16 length, -1 = null).
    pub fn nullable_string(&mut self, field: &str) -> DecodeResult<Option<String>> {
        let raw = i64::from(self.i16(field)?);
        match Self::classic_len(raw, field, "string length")? {
            None => Ok(None),
            Some(len) => Self::utf8(self.take_len(len, field)?, field).map(Some),
        }
    }
    /// Classic string; null is an error.
    pub fn string(&mut self, field: &str) -> DecodeResult<String> {
        let v = self.nullable_string(field)?;
        Self::non_null(v, field, "string length")
    }
    /// Compact nullable string (uvarint length+1, 0 = null).
    pub fn compact_nullable_string(&mut self, field: &str) -> DecodeResult<Option<String>> {
        match self.compact_len(field)? {
            None => Ok(None),
            Some(len) => Self::utf8(self.take_len(len, field)?, field).map(Some),
        }
    }
    /// Compact string; null is an error.
    pub fn compact_string(&mut self, field: &str) -> DecodeResult<String> {
        let v = self.compact_nullable_string(field)?;
        Self::non_null(v, field, "string length")
    }
    /// Compact when `flexible`, classic otherwise.
    pub fn flex_string(&mut self, field: &str, flexible: bool) -> DecodeResult<String> {
        if flexible {
            self.compact_string(field)
        } else {
            self.string(field)
        }
    }
    /// Compact when `flexible`, classic otherwise.
    pub fn flex_nullable_string(
        &mut self,
        field: &str,
        flexible: bool,
    ) -> DecodeResult<Option<String>> {
        if flexible {
            self.compact_nullable_string(field)
        } else {
            self.nullable_string(field)
        }
    }

    // ---- bytes ---------------------------------------------------------------------------

    /// Classic nullable bytes (i32 length, -1 = null).
    pub fn nullable_bytes(&mut self, field: &str) -> DecodeResult<Option<Bytes>> {
        let raw = i64::from(self.i32(field)?);
        match Self::classic_len(raw, field, "bytes length")? {
            None => Ok(None),
            Some(len) => self.take_bytes(len, field).map(Some),
        }
    }
    /// Classic bytes; null is an error.
    pub fn bytes(&mut self, field: &str) -> DecodeResult<Bytes> {
        let v = self.nullable_bytes(field)?;
        Self::non_null(v, field, "bytes length")
    }
    /// Compact nullable bytes (uvarint length+1, 0 = null).
    pub fn compact_nullable_bytes(&mut self, field: &str) -> DecodeResult<Option<Bytes>> {
        match self.compact_len(field)? {
            None => Ok(None),
            Some(len) => self.take_bytes(len, field).map(Some),
        }
    }
    /// Compact bytes; null is an error.
    pub fn compact_bytes(&mut self, field: &str) -> DecodeResult<Bytes> {
        let v = self.compact_nullable_bytes(field)?;
        Self::non_null(v, field, "bytes length")
    }
    /// Compact when `flexible`, classic otherwise.
    pub fn flex_bytes(&mut self, field: &str, flexible: bool) -> DecodeResult<Bytes> {
        if flexible {
            self.compact_bytes(field)
        } else {
            self.bytes(field)
        }
    }
    /// Compact when `flexible`, classic otherwise.
    pub fn flex_nullable_bytes(
        &mut self,
        field: &str,
        flexible: bool,
    ) -> DecodeResult<Option<Bytes>> {
        if flexible {
            self.compact_nullable_bytes(field)
        } else {
            self.nullable_bytes(field)
        }
    }

    // ---- arrays --------------------------------------------------------------------------

    /// Classic array count (i32, -1 = null). Not yet checked against the remaining bytes.
    pub fn array_count(&mut self, field: &str) -> DecodeResult<Option<usize>> {
        let raw = i64::from(self.i32(field)?);
        Self::classic_len(raw, field, "count")
    }
    /// Compact array count (uvarint count+1, 0 = null). Not yet checked against the remaining bytes.
    pub fn compact_array_count(&mut self, field: &str) -> DecodeResult<Option<usize>> {
        self.compact_len(field)
    }

    /// Decodes `count` elements with `elem`. Rejects a count larger than the bytes left (each
    /// element of a Kafka array takes at least one byte) before reserving anything, and reserves
    /// at most `min(count, remaining)` elements (also capped at 64 KiB of element storage).
    /// Errors from an element get `field[i]` prefixed to their path.
    pub fn read_array<T, F>(
        &mut self,
        field: &str,
        count: usize,
        mut elem: F,
    ) -> DecodeResult<Vec<T>>
    where
        F: FnMut(&mut Reader<'a>) -> DecodeResult<T>,
    {
        let remaining = self.remaining();
        if count > remaining {
            return Err(DecodeError::new(
                field,
                DecodeErrorKind::LengthExceedsRemaining {
                    what: "count",
                    value: count as u64,
                    remaining,
                },
            ));
        }
        let mut out = Vec::with_capacity(prealloc_len::<T>(count, remaining));
        for i in 0..count {
            out.push(elem(self).map_err(|e| e.within(format_args!("{field}[{i}]")))?);
        }
        Ok(out)
    }

    /// A nullable array, compact when `flexible`.
    pub fn flex_nullable_array<T, F>(
        &mut self,
        field: &str,
        flexible: bool,
        elem: F,
    ) -> DecodeResult<Option<Vec<T>>>
    where
        F: FnMut(&mut Reader<'a>) -> DecodeResult<T>,
    {
        let count = if flexible {
            self.compact_array_count(field)?
        } else {
            self.array_count(field)?
        };
        match count {
            None => Ok(None),
            Some(n) => self.read_array(field, n, elem).map(Some),
        }
    }

    /// A non-nullable array, compact when `flexible`; null is an error.
    pub fn flex_array<T, F>(&mut self, field: &str, flexible: bool, elem: F) -> DecodeResult<Vec<T>>
    where
        F: FnMut(&mut Reader<'a>) -> DecodeResult<T>,
    {
        let v = self.flex_nullable_array(field, flexible, elem)?;
        Self::non_null(v, field, "count")
    }

    // ---- tagged fields -------------------------------------------------------------------

    /// Skips a tagged-field section: a count, then (tag, size, `size` bytes) each.
    pub fn skip_tagged_fields(&mut self, field: &str) -> DecodeResult<()> {
        let count = self.uvarint(field)?;
        // Each field takes at least two bytes, so a loop over a bogus count ends at the
        // first short read; nothing is allocated.
        for _ in 0..count {
            self.uvarint(field)?;
            let size = self.uvarint(field)?;
            self.skip(size as usize, field)?;
        }
        Ok(())
    }

    /// Skips the tagged-field section when `flexible` (the usual end of a struct).
    pub fn tagged_fields(&mut self, flexible: bool) -> DecodeResult<()> {
        if flexible {
            self.skip_tagged_fields("tagged_fields")
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind<T: fmt::Debug>(r: DecodeResult<T>) -> DecodeErrorKind {
        r.unwrap_err().kind
    }

    #[test]
    fn fixed_width_big_endian() {
        let buf = [0xff, 0x12, 0x34, 0, 0, 0, 5, 1, 0x80, 0, 0, 0, 0, 0, 0, 1];
        let mut r = Reader::new(&buf);
        assert_eq!(r.i8("a").unwrap(), -1);
        assert_eq!(r.u16("b").unwrap(), 0x1234);
        assert_eq!(r.i32("c").unwrap(), 5);
        assert!(r.bool("d").unwrap());
        assert_eq!(r.i64("e").unwrap(), i64::MIN + 1);
        assert_eq!(r.remaining(), 0);
        assert_eq!(
            kind(r.i16("f")),
            DecodeErrorKind::NotEnoughBytes {
                needed: 2,
                remaining: 0
            }
        );
        let mut r = Reader::new(&[0; 15]);
        assert!(r.uuid("id").is_err());
        assert_eq!(r.position(), 0);
    }

    #[test]
    fn varints() {
        let mut r = Reader::new(&[0x96, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x03, 0x04]);
        assert_eq!(r.uvarint("").unwrap(), 150);
        assert_eq!(r.uvarint("").unwrap(), u32::MAX);
        assert_eq!(r.varint("").unwrap(), -2);
        assert_eq!(r.varint("").unwrap(), 2);
        // 6 continuation bytes, and a 5th byte with bits beyond 32.
        assert_eq!(
            kind(Reader::new(&[0xff; 6]).uvarint("")),
            DecodeErrorKind::BadVarint { max_bytes: 5 }
        );
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x10])
            .uvarint("")
            .is_err());
        assert!(matches!(
            kind(Reader::new(&[0x80]).uvarint("")),
            DecodeErrorKind::NotEnoughBytes { .. }
        ));
        let mut long = [0xffu8; 10];
        long[9] = 0x01;
        assert_eq!(Reader::new(&long).uvarlong("").unwrap(), u64::MAX);
        assert_eq!(Reader::new(&long).varlong("").unwrap(), i64::MIN);
        long[9] = 0x02;
        assert!(Reader::new(&long).uvarlong("").is_err());
        assert!(Reader::new(&[0xff; 11]).uvarlong("").is_err());
    }

    #[test]
    fn strings_and_bytes() {
        let mut r = Reader::new(&[0, 2, b'h', b'i', 0xff, 0xff, 3, b'y', b'o', 0]);
        assert_eq!(r.string("s").unwrap(), "hi");
        assert_eq!(r.nullable_string("n").unwrap(), None);
        assert_eq!(r.compact_string("c").unwrap(), "yo");
        assert_eq!(r.compact_nullable_string("cn").unwrap(), None);
        let e = Reader::new(&[0xff, 0xff]).string("host").unwrap_err();
        assert_eq!(e.to_string(), "host: invalid string length -1");
        assert!(matches!(
            kind(Reader::new(&[0xff, 0xfe]).nullable_string("")),
            DecodeErrorKind::InvalidLength { value: -2, .. }
        ));
        assert_eq!(
            kind(Reader::new(&[0, 5, b'a']).string("")),
            DecodeErrorKind::LengthExceedsRemaining {
                what: "length",
                value: 5,
                remaining: 1
            }
        );
        assert_eq!(
            kind(Reader::new(&[2, 0xff]).compact_string("")),
            DecodeErrorKind::InvalidUtf8
        );

        let owner = Bytes::from_static(&[0, 0, 0, 2, 7, 8, 0, 2, 9]);
        let mut r = Reader::from_bytes(&owner);
        assert_eq!(r.bytes("b").unwrap(), Bytes::from_static(&[7, 8]));
        assert_eq!(r.compact_nullable_bytes("cb").unwrap(), None);
        assert_eq!(r.compact_bytes("cb").unwrap(), Bytes::from_static(&[9]));
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).bytes("").is_err());
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff])
                .nullable_bytes("")
                .unwrap(),
            None
        );
    }

    #[test]
    fn arrays_check_count_before_reserving() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let n = r.array_count("xs").unwrap().unwrap();
        let e = r.read_array("xs", n, |r| r.u8("")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "xs: count 2147483647 exceeds 2 remaining bytes"
        );
        let mut r = Reader::new(&[3, 0, 0, 0]);
        let v = r.flex_array("xs", true, |r| r.i16("")).unwrap_err();
        assert_eq!(v.path, "xs[1]");
        let mut r = Reader::new(&[0]);
        assert_eq!(
            r.flex_nullable_array("xs", true, |r| r.u8("")).unwrap(),
            None
        );
        assert!(Reader::new(&[0])
            .flex_array("xs", true, |r| r.u8(""))
            .is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xfe])
            .flex_array("xs", false, |r| r.u8(""))
            .is_err());
        let mut r = Reader::new(&[0, 0, 0, 2, 0, 1, 0, 2]);
        assert_eq!(r.flex_array("xs", false, |r| r.i16("")).unwrap(), [1, 2]);
    }

    #[test]
    fn prealloc_is_bounded() {
        assert_eq!(prealloc_len::<u8>(usize::MAX, 10), 10);
        assert_eq!(prealloc_len::<u8>(3, 10), 3);
        // A 1 GiB frame of 1-byte elements does not reserve 1 GiB of 256-byte structs.
        assert_eq!(prealloc_len::<[u8; 256]>(1 << 30, 1 << 30), 256);
        assert_eq!(prealloc_len::<()>(5, 5), 5);
    }

    #[test]
    fn tagged_fields() {
        // two fields: tag 0 size 1, tag 3 size 2; then one byte of body.
        let mut r = Reader::new(&[2, 0, 1, 0xaa, 3, 2, 0xbb, 0xcc, 0x42]);
        r.skip_tagged_fields("t").unwrap();
        assert_eq!(r.remaining(), 1);
        // size beyond the body.
        let e = Reader::new(&[1, 0, 0x7f, 0])
            .skip_tagged_fields("t")
            .unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthExceedsRemaining { .. }
        ));
        // huge count, few bytes: fails fast on the first missing field.
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0])
            .skip_tagged_fields("t")
            .is_err());
        assert!(Reader::new(&[]).tagged_fields(false).is_ok());
        assert!(Reader::new(&[]).tagged_fields(true).is_err());
    }

    #[test]
    fn error_display() {
        let e = DecodeError::new("partitions", DecodeErrorKind::InvalidUtf8)
            .within("topics[3]")
            .in_api("Metadata", 12);
        assert_eq!(
            e.to_string(),
            "Metadata v12: topics[3].partitions: invalid UTF-8"
        );
        let e = Reader::new(&[1])
            .expect_end()
            .unwrap_err()
            .in_api("ListGroups", 3);
        assert_eq!(e.to_string(), "ListGroups v3: 1 trailing bytes");
    }
}
