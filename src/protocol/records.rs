//! Record batches (message format v2) from a Fetch response, decoded without trusting the wire.
//!
//! Why not kafka-protocol's `RecordBatchDecoder`: it reserves `record_count` records and
//! `IndexMap::with_capacity(header_count)` straight from the wire (a 61-byte batch with a valid
//! CRC and `record_count = i32::MAX` aborts the process), decompresses without an output limit
//! (a few KiB of zstd become gigabytes), and fails on the truncated last batch that Fetch
//! responses legitimately end with (KIP-74). Here:
//! - every count is checked against the bytes actually left before anything is reserved;
//! - decompressed output is capped by the caller (`max_decompressed`, a budget shared by all
//!   batches of one `records` blob, so many small bombs cannot add up either);
//! - a last batch cut short ends the iteration quietly; everything else malformed is an error;
//! - uncompressed keys, values and header values are zero-copy slices of the fetched frame
//!   (compressed ones are slices of the batch's decompressed buffer);
//! - header names are bytes, as on the wire: Kafka does not require them to be UTF-8 (librdkafka
//!   and franz-go write any bytes), and one such record must never fail a whole fetch;
//! - offsets are checked: a batch whose offsets would overflow `i64` (so that "the next offset"
//!   or a commit past it could not be represented) is an error, never a wrap-around.
//!
//! A batch that cannot be decoded is reported with the offsets it claims to cover
//! ([`RecordsError::claimed_last_offset`]) and its raw bytes ([`RecordsError::raw`]), so the
//! consumer can treat it as a failed offset range (retry, dead-letter, skip) instead of failing
//! the partition. Encoding lives in [`encode`], the codecs in [`compression`].
//!
//! [`visible_records`] is the consumer's read_committed filter, a pure function of the batches
//! and the partition's aborted-transaction list (Java's `CompletedFetch` algorithm).

pub(crate) mod compression;
pub mod encode;

use std::collections::HashSet;
use std::fmt;

use bytes::Bytes;

use compression::decompress;

use super::fetch::AbortedTransaction;
use super::reader::{prealloc_len, DecodeError, DecodeErrorKind, DecodeResult, Reader};

/// Default for `max_decompressed`: 64 MiB per fetched partition.
pub(crate) const DEFAULT_MAX_DECOMPRESSED: usize = 64 << 20;

/// Producer id of batches written by a non-idempotent producer.
pub(crate) const NO_PRODUCER_ID: i64 = -1;

/// Bytes before `batch_length` is counted (base_offset + batch_length).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Bytes up to and including the magic byte.
const HEADER_UP_TO_MAGIC: usize = 17;
/// The whole v2 batch header.
pub(crate) const BATCH_HEADER: usize = 61;
/// Start of the CRC-covered part (attributes).
const CRC_START: usize = 21;
/// The highest offset a record may have: the offset after it must still be an `i64`.
pub(crate) const MAX_OFFSET: i64 = i64::MAX - 1;

/// Compression codec of a batch (attributes bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Every codec, in attribute order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec named `name` (`none`, `gzip`, `snappy`, `lz4`, `zstd`; ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.to_string().eq_ignore_ascii_case(name.trim()))
    }

    fn from_attributes(attributes: i16) -> Option<Self> {
        Some(match attributes & 0x7 {
            0 => Self::None,
            1 => Self::Gzip,
            2 => Self::Snappy,
            3 => Self::Lz4,
            4 => Self::Zstd,
            _ => return None,
        })
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        })
    }
}

/// What a control batch marks (the type in its control record's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// Type 0: the producer's open transaction was aborted.
    Abort,
    /// Type 1: the producer's open transaction was committed.
    Commit,
    /// Any other type (e.g. KRaft/leader-change records); never returned to users.
    Other(i16),
}

/// One record, with its absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub offset: i64,
    /// Creation time, or the broker's append time when the batch says LogAppendTime.
    pub timestamp: i64,
    /// `timestamp` is the broker's append time (its batch says LogAppendTime).
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Headers in wire order: (name, value). Names may repeat and need not be UTF-8.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// One decoded record batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    pub base_offset: i64,
    /// `base_offset + last_offset_delta`: kept even when compaction removed the last records.
    pub last_offset: i64,
    pub partition_leader_epoch: i32,
    /// [`NO_PRODUCER_ID`] when not written by an idempotent/transactional producer.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub compression: Compression,
    /// Timestamps are the broker's append time (attributes bit 3).
    pub log_append_time: bool,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub is_transactional: bool,
    pub is_control: bool,
    /// For a control batch: the marker type of its first record (None if it has no records).
    pub control: Option<ControlType>,
    pub records: Vec<Record>,
}

impl Batch {
    /// The offset right after this batch: where the next fetch continues. Never overflows: the
    /// decoder refuses batches whose last offset is beyond [`MAX_OFFSET`].
    pub fn next_offset(&self) -> i64 {
        self.last_offset.saturating_add(1)
    }
}

/// Why a batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsErrorKind {
    #[error("invalid batch length {length}")]
    BatchLength { length: i32 },
    #[error("unsupported message format v{magic} (only v2 record batches are supported)")]
    UnsupportedMagic { magic: i8 },
    #[error("CRC mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Crc { stored: u32, computed: u32 },
    #[error("unknown compression codec {codec}")]
    UnknownCompression { codec: i16 },
    #[error("record count {count} does not fit in {available} bytes of records")]
    RecordCount { count: i32, available: usize },
    #[error("decompressed records exceed the limit of {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    #[error("{codec} decompression failed: {message}")]
    Decompress { codec: Compression, message: String },
    #[error("record {index}: {error}")]
    Record {
        index: usize,
        error: Box<DecodeError>,
    },
    #[error("{count} bytes after the last record")]
    TrailingBytes { count: usize },
    #[error("offsets out of range (base offset {base_offset}, last offset delta {delta}): the offset after the batch must fit in a signed 64-bit number")]
    OffsetOverflow { base_offset: i64, delta: i32 },
}

/// A batch decode failure: where (byte position in the records blob, base offset), what, and
/// what the batch claims to cover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record batch at byte {position} (base offset {base_offset}): {kind}")]
pub struct RecordsError {
    pub position: usize,
    pub base_offset: i64,
    pub kind: RecordsErrorKind,
    /// `base_offset + last_offset_delta` as the header says, when that is a usable offset
    /// (not before the base, not past [`MAX_OFFSET`]). Untrusted when the CRC failed.
    pub claimed_last_offset: Option<i64>,
    /// The whole batch as fetched, when its length field was sane and it arrived complete
    /// (a dead-letter copy keeps it, so nothing is lost).
    pub raw: Option<Bytes>,
}

/// Iterates the batches of one partition's `records` blob. Ends quietly at a truncated last
/// batch ([`BatchIter::truncated_tail`] then says how many bytes were left), at a batch that
/// would fit the decompression limit on its own but not in what earlier batches of the blob left
/// of it ([`BatchIter::stopped_early`]: fetch again from there), and after the first error
/// (which it yields once).
#[derive(Debug)]
pub struct BatchIter<'a> {
    data: &'a Bytes,
    pos: usize,
    limit: usize,
    budget: usize,
    done: bool,
    stopped_early: bool,
}

impl<'a> BatchIter<'a> {
    /// `max_decompressed` bounds the total decompressed bytes over all batches of `records`.
    pub fn new(records: &'a Bytes, max_decompressed: usize) -> Self {
        Self {
            data: records,
            pos: 0,
            limit: max_decompressed,
            budget: max_decompressed,
            done: false,
            stopped_early: false,
        }
    }

    /// The iteration ended before a batch that needs a fresh decompression budget (a new fetch
    /// starting at it); that batch is neither decoded nor an error.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }

    /// Bytes not consumed: after the iteration ended without error, the size of the truncated
    /// last batch (0 when the blob ended exactly at a batch boundary).
    pub fn truncated_tail(&self) -> usize {
        self.data.len() - self.pos
    }

    fn next_batch(&mut self) -> Result<Option<Batch>, RecordsError> {
        let rest = &self.data[self.pos..];
        if rest.len() < HEADER_UP_TO_MAGIC {
            return Ok(None);
        }
        let base_offset = i64::from_be_bytes(be(rest, 0));
        let length = i32::from_be_bytes(be(rest, 8));
        let magic = rest[16] as i8;
        let min_length = if magic == 2 {
            BATCH_HEADER - LOG_OVERHEAD
        } else {
            1
        };
        let total = usize::try_from(length)
            .ok()
            .filter(|l| *l >= min_length)
            .and_then(|l| l.checked_add(LOG_OVERHEAD));
        let raw = total
            .filter(|t| *t <= rest.len())
            .map(|t| self.data.slice(self.pos..self.pos + t));
        let claimed_last_offset = if magic == 2 && rest.len() >= 27 {
            let delta = i32::from_be_bytes(be(rest, 23));
            base_offset
                .checked_add(i64::from(delta.max(0)))
                .filter(|o| *o <= MAX_OFFSET)
        } else if (0..=MAX_OFFSET).contains(&base_offset) {
            // v0/v1: the offset field is the (last inner) record's own offset.
            Some(base_offset)
        } else {
            None
        };
        let err = |kind| RecordsError {
            position: self.pos,
            base_offset,
            kind,
            claimed_last_offset,
            raw: raw.clone(),
        };
        if magic != 2 {
            return Err(err(RecordsErrorKind::UnsupportedMagic { magic }));
        }
        if total.is_none() {
            return Err(err(RecordsErrorKind::BatchLength { length }));
        }
        let Some(batch) = raw.clone() else {
            return Ok(None); // KIP-74: the broker cut the last batch short.
        };
        let budget_before = self.budget;
        match decode_batch(&batch, base_offset, self.limit, &mut self.budget) {
            Ok(b) => {
                self.pos += batch.len();
                Ok(Some(b))
            }
            Err(RecordsErrorKind::DecompressedTooLarge { .. }) if budget_before < self.limit => {
                // Earlier batches used part of the budget: a fetch starting here gets all of it.
                self.budget = budget_before;
                self.stopped_early = true;
                Ok(None)
            }
            Err(kind) => {
                self.budget = budget_before;
                Err(err(kind))
            }
        }
    }
}

impl Iterator for BatchIter<'_> {
    type Item = Result<Batch, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let out = self.next_batch().transpose();
        if !matches!(out, Some(Ok(_))) {
            self.done = true;
        }
        out
    }
}

/// Decodes every complete batch of `records`; a truncated last batch is dropped silently.
/// `max_decompressed` bounds the total decompressed size (see [`DEFAULT_MAX_DECOMPRESSED`]).
pub(crate) fn decode_batches(
    records: &Bytes,
    max_decompressed: usize,
) -> Result<Vec<Batch>, RecordsError> {
    BatchIter::new(records, max_decompressed).collect()
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N].try_into().expect("header bounds checked")
}

/// Decodes one complete batch (`batch.len() >= BATCH_HEADER`, length field already checked).
fn decode_batch(
    batch: &Bytes,
    base_offset: i64,
    limit: usize,
    budget: &mut usize,
) -> Result<Batch, RecordsErrorKind> {
    let stored = u32::from_be_bytes(be(batch, 17));
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if stored != computed {
        return Err(RecordsErrorKind::Crc { stored, computed });
    }
    let attributes = i16::from_be_bytes(be(batch, 21));
    let compression =
        Compression::from_attributes(attributes).ok_or(RecordsErrorKind::UnknownCompression {
            codec: attributes & 0x7,
        })?;
    let last_offset_delta = i32::from_be_bytes(be(batch, 23));
    let last_offset = base_offset
        .checked_add(i64::from(last_offset_delta))
        .filter(|o| last_offset_delta >= 0 && base_offset >= 0 && *o <= MAX_OFFSET)
        .ok_or(RecordsErrorKind::OffsetOverflow {
            base_offset,
            delta: last_offset_delta,
        })?;
    let mut out = Batch {
        base_offset,
        last_offset,
        partition_leader_epoch: i32::from_be_bytes(be(batch, 12)),
        producer_id: i64::from_be_bytes(be(batch, 43)),
        producer_epoch: i16::from_be_bytes(be(batch, 51)),
        base_sequence: i32::from_be_bytes(be(batch, 53)),
        compression,
        log_append_time: attributes & (1 << 3) != 0,
        base_timestamp: i64::from_be_bytes(be(batch, 27)),
        max_timestamp: i64::from_be_bytes(be(batch, 35)),
        is_transactional: attributes & (1 << 4) != 0,
        is_control: attributes & (1 << 5) != 0,
        control: None,
        records: Vec::new(),
    };
    let count = i32::from_be_bytes(be(batch, 57));
    let payload = batch.slice(BATCH_HEADER..);
    if count < 0 || (compression == Compression::None && count as usize > payload.len()) {
        return Err(RecordsErrorKind::RecordCount {
            count,
            available: payload.len(),
        });
    }
    let data = match compression {
        Compression::None => payload,
        codec => {
            let d = decompress(codec, &payload, *budget, limit)?;
            *budget -= d.len();
            d
        }
    };
    // A record takes at least one byte (7 in practice): more records than bytes is a lie.
    if count as usize > data.len() {
        return Err(RecordsErrorKind::RecordCount {
            count,
            available: data.len(),
        });
    }
    out.records = decode_records(&data, count as usize, &out)?;
    if out.is_control {
        if let Some(first) = out.records.first() {
            out.control = Some(control_type(first.key.as_deref()).map_err(|error| {
                RecordsErrorKind::Record {
                    index: 0,
                    error: Box::new(error.within("control key")),
                }
            })?);
        }
    }
    Ok(out)
}

fn decode_records(
    data: &Bytes,
    count: usize,
    batch: &Batch,
) -> Result<Vec<Record>, RecordsErrorKind> {
    let mut r = Reader::from_bytes(data);
    let mut records = Vec::with_capacity(prealloc_len::<Record>(count, data.len()));
    for index in 0..count {
        let record = record(&mut r, data, batch).map_err(|error| RecordsErrorKind::Record {
            index,
            error: Box::new(error),
        })?;
        records.push(record);
    }
    match r.remaining() {
        0 => Ok(records),
        count => Err(RecordsErrorKind::TrailingBytes { count }),
    }
}

/// A varint length: `-1` is null when `nullable`, other negatives are invalid.
fn var_len(r: &mut Reader<'_>, field: &str, what: &'static str) -> DecodeResult<Option<usize>> {
    match r.varint(field)? {
        -1 => Ok(None),
        n if n < 0 => Err(DecodeError::new(
            field,
            DecodeErrorKind::InvalidLength {
                what,
                value: i64::from(n),
            },
        )),
        n => Ok(Some(n as usize)),
    }
}

/// Takes `len` bytes as a zero-copy slice of `owner` (the bytes `r` reads).
fn slice(r: &mut Reader<'_>, owner: &Bytes, len: usize, field: &str) -> DecodeResult<Bytes> {
    let start = r.position();
    r.skip(len, field)?;
    Ok(owner.slice(start..start + len))
}

fn nullable_var_bytes(
    r: &mut Reader<'_>,
    owner: &Bytes,
    field: &str,
) -> DecodeResult<Option<Bytes>> {
    match var_len(r, field, "length")? {
        None => Ok(None),
        Some(len) => slice(r, owner, len, field).map(Some),
    }
}

fn record(r: &mut Reader<'_>, data: &Bytes, batch: &Batch) -> DecodeResult<Record> {
    let len = var_len(r, "length", "record length")?.ok_or_else(|| {
        DecodeError::new(
            "length",
            DecodeErrorKind::InvalidLength {
                what: "record length",
                value: -1,
            },
        )
    })?;
    // The record is parsed from its own slice, so no field can reach into the next record.
    let body = slice(r, data, len, "length")?;
    let mut rr = Reader::from_bytes(&body);
    let _attributes = rr.i8("attributes")?;
    let timestamp_delta = rr.varlong("timestamp_delta")?;
    let offset_delta = rr.varint("offset_delta")?;
    let key = nullable_var_bytes(&mut rr, &body, "key")?;
    let value = nullable_var_bytes(&mut rr, &body, "value")?;
    let header_count = var_len(&mut rr, "headers", "count")?.unwrap_or(0);
    // Each header takes at least two bytes (key length, value length).
    let need = header_count.saturating_mul(2);
    if need > rr.remaining() {
        return Err(DecodeError::new(
            "headers",
            DecodeErrorKind::LengthExceedsRemaining {
                what: "count",
                value: header_count as u64,
                remaining: rr.remaining(),
            },
        ));
    }
    let mut headers = Vec::with_capacity(prealloc_len::<(Bytes, Option<Bytes>)>(
        header_count,
        rr.remaining(),
    ));
    for i in 0..header_count {
        let header = (|| {
            let key_len = var_len(&mut rr, "key", "length")?.ok_or_else(|| {
                DecodeError::new(
                    "key",
                    DecodeErrorKind::InvalidLength {
                        what: "length",
                        value: -1,
                    },
                )
            })?;
            let key = slice(&mut rr, &body, key_len, "key")?;
            let value = nullable_var_bytes(&mut rr, &body, "value")?;
            Ok((key, value))
        })()
        .map_err(|e: DecodeError| e.within(format_args!("headers[{i}]")))?;
        headers.push(header);
    }
    rr.expect_end()?;
    // Within the batch's range, so no offset can pass the checked `last_offset`.
    let delta = i64::from(offset_delta);
    if delta < 0 || delta > batch.last_offset - batch.base_offset {
        return Err(DecodeError::new(
            "offset_delta",
            DecodeErrorKind::InvalidLength {
                what: "offset delta",
                value: delta,
            },
        ));
    }
    Ok(Record {
        offset: batch.base_offset + delta,
        timestamp: if batch.log_append_time {
            batch.max_timestamp
        } else {
            batch.base_timestamp.wrapping_add(timestamp_delta)
        },
        log_append_time: batch.log_append_time,
        key,
        value,
        headers,
    })
}

/// Parses a control record key: version i16 (≥ 0), type i16 (more bytes may follow).
fn control_type(key: Option<&[u8]>) -> DecodeResult<ControlType> {
    let key = key.unwrap_or_default();
    let mut r = Reader::new(key);
    let version = r.i16("version")?;
    if version < 0 {
        return Err(DecodeError::new(
            "version",
            DecodeErrorKind::InvalidLength {
                what: "control record version",
                value: i64::from(version),
            },
        ));
    }
    Ok(match r.i16("type")? {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        other => ControlType::Other(other),
    })
}

/// What a consumer should see from one fetched partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Visible {
    /// Records to hand to the application, in offset order.
    pub records: Vec<Record>,
    /// Where the next fetch starts: after the last complete batch (control, aborted and
    /// compacted-away offsets included), never before the fetch offset.
    pub next_offset: i64,
    /// Records dropped because their transaction was aborted (read_committed only).
    pub aborted_records: usize,
}

/// The records a consumer returns from one partition's fetched batches, following Java's
/// `CompletedFetch`:
/// - records before `fetch_offset` are dropped (a batch can start before the fetch offset);
/// - control batches are never returned;
/// - with `read_committed`, for every batch that has a producer id: aborted transactions whose
///   `first_offset <= batch.last_offset` activate their producer; an ABORT marker of the
///   producer deactivates it; a transactional batch of an active producer is skipped.
///
/// `aborted` is the partition's `aborted_transactions` from the Fetch response (any order).
pub fn visible_records(
    batches: impl IntoIterator<Item = Batch>,
    fetch_offset: i64,
    aborted: &[AbortedTransaction],
    read_committed: bool,
) -> Visible {
    let mut pending: Vec<AbortedTransaction> = aborted.to_vec();
    pending.sort_by_key(|t| t.first_offset);
    let mut pending = pending.into_iter().peekable();
    let mut active: HashSet<i64> = HashSet::new();
    let mut out = Visible {
        next_offset: fetch_offset,
        ..Visible::default()
    };
    for batch in batches {
        out.next_offset = out.next_offset.max(batch.next_offset());
        if read_committed && batch.producer_id != NO_PRODUCER_ID {
            while let Some(t) = pending.next_if(|t| t.first_offset <= batch.last_offset) {
                active.insert(t.producer_id);
            }
            if batch.is_control && batch.control == Some(ControlType::Abort) {
                active.remove(&batch.producer_id);
            } else if batch.is_transactional && active.contains(&batch.producer_id) {
                out.aborted_records += batch
                    .records
                    .iter()
                    .filter(|r| r.offset >= fetch_offset)
                    .count();
                continue;
            }
        }
        if batch.is_control {
            continue;
        }
        out.records.extend(
            batch
                .records
                .into_iter()
                .filter(|r| r.offset >= fetch_offset),
        );
    }
    out
}

#[cfg(test)]
mod tests;
