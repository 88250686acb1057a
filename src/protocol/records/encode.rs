//! Record batches (message format v2) for Produce requests, written by us.
//!
//! Why not kafka-protocol's `RecordBatchEncoder`: its records keep headers in an `IndexMap`
//! keyed by `StrBytes`, so it cannot write a header name twice, nor a header name that is not
//! UTF-8 — and a dead-letter copy must carry the original headers exactly as they were. It also
//! splits batches whenever `offset - sequence` changes (research: pitfall 2). Here a record is
//! encoded into the batch buffer the moment it is appended (so an open batch is just bytes and
//! a few numbers), and [`BatchBuilder::finish`] compresses, writes the 61-byte header and the
//! CRC-32C. The producer's identity (id, epoch, base sequence) can be re-stamped later without
//! re-encoding ([`restamp`]), for a resend under a new producer id.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::compress;
use super::{Compression, BATCH_HEADER, CRC_START, LOG_OVERHEAD};

/// Who wrote a batch: the idempotent producer's identity and the batch's first sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerStamp {
    /// A batch of a producer without idempotence.
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// One header as written: a name (any bytes; Kafka allows repeats) and a nullable value.
pub type HeaderRef<'a> = (&'a [u8], Option<&'a [u8]>);

/// An open batch: records appended in order, encoded at once.
#[derive(Debug)]
pub struct BatchBuilder {
    records: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// Bytes of a zig-zag varint.
pub(crate) fn varint_len(v: i64) -> usize {
    let mut u = zigzag(v);
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends a zig-zag varint (Kafka's record-level varint and varlong).
pub(crate) fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut u = zigzag(v);
    while u >= 0x80 {
        buf.put_u8((u as u8 & 0x7f) | 0x80);
        u >>= 7;
    }
    buf.put_u8(u as u8);
}

fn field_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_field(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

/// The encoded size of one record (length prefix included), as [`BatchBuilder::push`] writes
/// it at position `offset_delta` with `timestamp_delta`.
pub(crate) fn record_len(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[HeaderRef<'_>],
) -> usize {
    let body = body_len(offset_delta, timestamp_delta, key, value, headers);
    varint_len(body as i64) + body
}

fn body_len(
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[HeaderRef<'_>],
) -> usize {
    1 + varint_len(timestamp_delta)
        + varint_len(i64::from(offset_delta))
        + field_len(key)
        + field_len(value)
        + varint_len(headers.len() as i64)
        + headers
            .iter()
            .map(|(k, v)| field_len(Some(k)) + field_len(*v))
            .sum::<usize>()
}

impl BatchBuilder {
    pub fn new() -> Self {
        BatchBuilder {
            records: BytesMut::new(),
            count: 0,
            base_timestamp: 0,
            max_timestamp: -1,
        }
    }

    /// Records appended so far.
    pub fn count(&self) -> i32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed bytes of the records so far (the batch header not included).
    pub fn records_len(&self) -> usize {
        self.records.len()
    }

    /// What [`push`](Self::push) would add for this record, in bytes.
    pub fn cost(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        record_len(self.count, ts_delta, key, value, headers)
    }

    /// Appends one record (creation time `timestamp`, ms since the epoch).
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[HeaderRef<'_>],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        let body = body_len(self.count, ts_delta, key, value, headers);
        self.records.reserve(varint_len(body as i64) + body);
        put_varint(&mut self.records, body as i64);
        self.records.put_i8(0); // record attributes: unused
        put_varint(&mut self.records, ts_delta);
        put_varint(&mut self.records, i64::from(self.count));
        put_field(&mut self.records, key);
        put_field(&mut self.records, value);
        put_varint(&mut self.records, headers.len() as i64);
        for (k, v) in headers {
            put_field(&mut self.records, Some(k));
            put_field(&mut self.records, *v);
        }
        self.count += 1;
    }

    /// The finished batch (base offset 0: the broker assigns offsets).
    pub fn finish(self, compression: Compression, stamp: ProducerStamp) -> Result<Bytes, String> {
        let payload = match compression {
            Compression::None => self.records.freeze(),
            codec => Bytes::from(compress(codec, &self.records)?),
        };
        let mut b = BytesMut::with_capacity(BATCH_HEADER + payload.len());
        b.put_i64(0); // base offset
        b.put_i32((BATCH_HEADER - LOG_OVERHEAD + payload.len()) as i32);
        b.put_i32(-1); // partition leader epoch: set by the broker
        b.put_i8(2); // magic
        b.put_u32(0); // CRC, below
        b.put_i16(attributes(compression));
        b.put_i32((self.count - 1).max(0)); // last offset delta
        b.put_i64(self.base_timestamp);
        b.put_i64(self.max_timestamp.max(self.base_timestamp));
        b.put_i64(stamp.producer_id);
        b.put_i16(stamp.producer_epoch);
        b.put_i32(stamp.base_sequence);
        b.put_i32(self.count);
        b.put_slice(&payload);
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(b.freeze())
    }
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Batch attributes: the codec in bits 0–2; create time, not transactional, not control.
fn attributes(c: Compression) -> i16 {
    match c {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Rewrites the producer id, epoch and base sequence of an encoded batch and fixes its CRC.
/// `batch` must be a batch from [`BatchBuilder::finish`].
pub(crate) fn restamp(batch: &Bytes, stamp: ProducerStamp) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    b[43..51].copy_from_slice(&stamp.producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&stamp.producer_epoch.to_be_bytes());
    b[53..57].copy_from_slice(&stamp.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::super::{decode_batches, DEFAULT_MAX_DECOMPRESSED};
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn varint_table() {
        for (v, bytes) in [
            (0i64, &[0u8][..]),
            (-1, &[1]),
            (1, &[2]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (
                i64::MAX,
                &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            assert_eq!(&b[..], bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len(), "{v}");
        }
    }

    fn sample() -> BatchBuilder {
        let mut b = BatchBuilder::new();
        b.push(1_700_000_000_000, Some(b"k0"), Some(b"v0"), &[]);
        b.push(
            1_700_000_000_005,
            None,
            Some(&[0u8; 300]),
            &[
                (b"h", Some(b"x")),
                (b"h", None),
                (b"\xff\xfe", Some(b"\x00")),
            ],
        );
        b.push(1_699_999_999_990, Some(b""), None, &[(b"trace", Some(b""))]);
        b
    }

    #[test]
    fn our_decoder_reads_every_field_back_for_every_codec() {
        let stamp = ProducerStamp {
            producer_id: 4242,
            producer_epoch: 3,
            base_sequence: 17,
        };
        for codec in CODECS {
            let b = sample();
            let cost_of_next = b.cost(1_700_000_000_001, Some(b"k"), None, &[]);
            assert_eq!(cost_of_next, record_len(3, 1, Some(b"k"), None, &[]));
            let raw = b.finish(codec, stamp).unwrap();
            let batches = decode_batches(&raw, DEFAULT_MAX_DECOMPRESSED).unwrap();
            assert_eq!(batches.len(), 1, "{codec}");
            let d = &batches[0];
            assert_eq!(d.compression, codec);
            assert_eq!((d.base_offset, d.last_offset), (0, 2));
            assert_eq!(
                (d.producer_id, d.producer_epoch, d.base_sequence),
                (4242, 3, 17)
            );
            assert_eq!(d.base_timestamp, 1_700_000_000_000);
            assert_eq!(d.max_timestamp, 1_700_000_000_005);
            let r = &d.records;
            assert_eq!(r.len(), 3);
            assert_eq!(r[0].key.as_deref(), Some(&b"k0"[..]));
            assert_eq!(r[1].timestamp, 1_700_000_000_005);
            assert_eq!(r[2].timestamp, 1_699_999_999_990);
            assert_eq!(r[1].key, None);
            assert_eq!(r[1].value.as_deref(), Some(&[0u8; 300][..]));
            let names: Vec<&[u8]> = r[1].headers.iter().map(|(k, _)| &k[..]).collect();
            assert_eq!(names, [&b"h"[..], b"h", b"\xff\xfe"]);
            assert_eq!(r[1].headers[1].1, None);
            assert_eq!(r[2].key.as_deref(), Some(&b""[..]));
            assert_eq!(r[2].value, None);
        }
    }

    #[test]
    fn kafka_protocol_reads_our_batches() {
        for codec in CODECS {
            let mut b = BatchBuilder::new();
            for i in 0..50 {
                let v = format!("value-{i}");
                b.push(
                    1000 + i,
                    Some(b"key"),
                    Some(v.as_bytes()),
                    &[(b"n", Some(b"1"))],
                );
            }
            let mut raw = b.finish(codec, ProducerStamp::NONE).unwrap();
            let set = RecordBatchDecoder::decode(&mut raw).unwrap();
            assert_eq!(set.records.len(), 50, "{codec}");
            for (i, r) in set.records.iter().enumerate() {
                assert_eq!(r.offset, i as i64);
                assert_eq!(r.timestamp, 1000 + i as i64);
                assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
                assert_eq!(r.headers.len(), 1);
            }
        }
    }

    #[test]
    fn restamp_changes_identity_and_keeps_the_crc_valid() {
        let raw = sample()
            .finish(Compression::Lz4, ProducerStamp::NONE)
            .unwrap();
        let new = ProducerStamp {
            producer_id: 9,
            producer_epoch: 0,
            base_sequence: 100,
        };
        let again = restamp(&raw, new);
        let d = &decode_batches(&again, DEFAULT_MAX_DECOMPRESSED).unwrap()[0];
        assert_eq!(
            (d.producer_id, d.producer_epoch, d.base_sequence),
            (9, 0, 100)
        );
        assert_eq!(d.records.len(), 3);
    }

    #[test]
    fn an_empty_builder_is_empty() {
        let b = BatchBuilder::default();
        assert!(b.is_empty());
        assert_eq!(b.records_len(), 0);
    }
}
