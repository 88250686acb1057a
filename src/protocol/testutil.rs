//! Shared test helpers: a tiny PRNG, kafka-protocol encoding, and the hostile-input battery
//! every decoder goes through.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::Encodable;

use super::{decode_body, decode_body_bytes, DecodeErrorKind, Response};

/// Record batches (v2) as a broker stores them, encoded by kafka-protocol.
pub(crate) fn encode_batch(
    records: &[kafka_protocol::records::Record],
    compression: kafka_protocol::records::Compression,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &kafka_protocol::records::RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("test records encode");
    buf.to_vec()
}

/// One batch of `count` plain records from `offset` stamped `ts`, `ts + 1`, … (`producer` ≥ 0:
/// transactional), or a transaction marker (`marker` = Some(commit)), uncompressed.
pub(crate) fn txn_batch(
    offset: i64,
    count: i64,
    producer: i64,
    marker: Option<bool>,
    ts: i64,
) -> Vec<u8> {
    use kafka_protocol::records::{Compression, Record, TimestampType};
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: producer >= 0,
            control: marker.is_some(),
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer,
            producer_epoch: if producer >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: offset + i,
            sequence: if marker.is_some() { -1 } else { i as i32 },
            timestamp: ts + i,
            key: Some(match marker {
                Some(commit) => Bytes::from(vec![0, 0, 0, u8::from(commit)]),
                None => Bytes::from_static(b"k"),
            }),
            value: Some(match marker {
                Some(_) => Bytes::from(vec![0, 0, 0, 0, 0, 0]),
                None => Bytes::from_static(b"v"),
            }),
            headers: kafka_protocol::indexmap::IndexMap::new(),
        })
        .collect();
    encode_batch(&records, Compression::None)
}

/// A Fetch answer for one partition: `batches` back to back, `aborted` as (producer, first offset).
pub(crate) fn fetch_answer(
    batches: &[Vec<u8>],
    aborted: &[(i64, i64)],
) -> super::fetch::FetchPartition {
    super::fetch::FetchPartition {
        records: Some(Bytes::from(batches.concat())),
        aborted_transactions: Some(
            aborted
                .iter()
                .map(|(p, o)| super::fetch::AbortedTransaction {
                    producer_id: *p,
                    first_offset: *o,
                })
                .collect(),
        ),
        ..super::fetch::FetchPartition::default()
    }
}

/// xorshift64*: deterministic, dependency-free.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Encodes `msg` at `version` with kafka-protocol's own encoder.
pub(crate) fn encode<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("kafka-protocol refused to encode v{version}: {e}"));
    buf.to_vec()
}

/// Decodes at any version, bypassing the `VERSIONS` check of `decode_body`: used to prove that
/// the code paths for newer versions (not yet negotiated) already match kafka-protocol.
pub(crate) fn decode_unchecked<R: Response>(body: &[u8], version: i16) -> R {
    let mut r = super::Reader::new(body);
    let out = R::decode(&mut r, version).unwrap_or_else(|e| panic!("{} v{version}: {e}", R::NAME));
    r.expect_end()
        .unwrap_or_else(|e| panic!("{} v{version}: {e}", R::NAME));
    out
}

/// Compact (flexible) count/length that decodes to u32::MAX - 1 elements.
pub(crate) const COMPACT_HUGE: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];
/// Classic count/length i32::MAX.
pub(crate) const CLASSIC_HUGE: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];

/// `prefix` + a huge array count + 9 bytes: must fail on the count, not allocate.
pub(crate) fn assert_count_bomb<R: Response + Debug>(version: i16, prefix: &[u8]) {
    let flexible = version >= R::FIRST_FLEXIBLE;
    let mut body = prefix.to_vec();
    body.extend_from_slice(if flexible {
        &COMPACT_HUGE[..]
    } else {
        &CLASSIC_HUGE[..]
    });
    body.extend_from_slice(&[0; 9]);
    let e = decode_body::<R>(&body, version).unwrap_err();
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::LengthExceedsRemaining {
                what: "count",
                remaining: 9,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("exceeds 9 remaining bytes"), "{e}");
}

/// `prefix` + a string length far beyond the body: must fail on the length.
pub(crate) fn assert_string_bomb<R: Response + Debug>(version: i16, prefix: &[u8]) {
    let flexible = version >= R::FIRST_FLEXIBLE;
    let mut body = prefix.to_vec();
    body.extend_from_slice(if flexible {
        &COMPACT_HUGE[..]
    } else {
        &[0x7f, 0xff][..]
    });
    body.extend_from_slice(b"abc");
    let e = decode_body::<R>(&body, version).unwrap_err();
    assert!(
        matches!(
            e.kind,
            DecodeErrorKind::LengthExceedsRemaining { what: "length", .. }
        ),
        "{e}"
    );
}

/// The hostile battery for one valid encoding of `R` at `version`:
/// truncation at every byte, a trailing byte, a 6-byte varint, huge counts written at every
/// offset, and random mutations. None may panic; the structural ones must fail.
pub(crate) fn exercise<R: Response + Debug>(version: i16, valid: &[u8], seed: u64) {
    let name = R::NAME;
    decode_body::<R>(valid, version).unwrap_or_else(|e| panic!("{e}"));
    decode_body_bytes::<R>(&Bytes::copy_from_slice(valid), version)
        .unwrap_or_else(|e| panic!("{e}"));

    for cut in 0..valid.len() {
        assert!(
            decode_body::<R>(&valid[..cut], version).is_err(),
            "{name} v{version}: truncation at {cut}/{} decoded",
            valid.len()
        );
    }

    let mut longer = valid.to_vec();
    longer.push(0);
    let e = decode_body::<R>(&longer, version).unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::TrailingBytes { count: 1 },
        "{name} v{version}"
    );

    if version >= R::FIRST_FLEXIBLE && valid.last() == Some(&0) {
        // The last byte is an empty top-level tagged-field section: make its count 6 bytes long.
        let mut bad = valid[..valid.len() - 1].to_vec();
        bad.extend_from_slice(&[0xff; 6]);
        let e = decode_body::<R>(&bad, version).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::BadVarint { max_bytes: 5 },
            "{name} v{version}"
        );
    }

    let mut rng = Rng::new(seed ^ ((version as u64) << 32));
    for at in 0..valid.len() {
        for bomb in [
            &CLASSIC_HUGE[..],
            &COMPACT_HUGE[..],
            &[0xff; 6][..],
            &[0xff, 0xff][..],
        ] {
            let mut over = valid.to_vec();
            let end = (at + bomb.len()).min(over.len());
            over[at..end].copy_from_slice(&bomb[..end - at]);
            let _ = decode_body::<R>(&over, version);
            let mut ins = valid.to_vec();
            ins.splice(at..at, bomb.iter().copied());
            let _ = decode_body::<R>(&ins, version);
        }
    }

    for _ in 0..400 {
        let mut m = valid.to_vec();
        for _ in 0..=rng.below(4) {
            let len = m.len().max(1) as u64;
            let at = rng.below(len) as usize;
            match rng.below(5) {
                0 if !m.is_empty() => m[at] = rng.next() as u8,
                1 if !m.is_empty() => m[at] ^= 1 << rng.below(8),
                2 if !m.is_empty() => {
                    m.remove(at);
                }
                3 => m.insert(at.min(m.len()), rng.next() as u8),
                _ => m.truncate(at),
            }
        }
        let _ = decode_body::<R>(&m, version);
        let _ = decode_body_bytes::<R>(&Bytes::from(m), version);
    }
}
