use super::*;
use crate::protocol::testutil::Rng;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression as KpCompression, Record as KpRecord, TimestampType};
use std::io::Write;

const CODECS: [(KpCompression, Compression); 5] = [
    (KpCompression::None, Compression::None),
    (KpCompression::Gzip, Compression::Gzip),
    (KpCompression::Snappy, Compression::Snappy),
    (KpCompression::Lz4, Compression::Lz4),
    (KpCompression::Zstd, Compression::Zstd),
];

type Headers = Vec<(&'static str, Option<&'static [u8]>)>;

fn kp_record(
    base: i64,
    offset: i64,
    key: Option<&'static [u8]>,
    value: Option<&'static [u8]>,
    headers: Headers,
) -> KpRecord {
    let mut h = IndexMap::new();
    for (k, v) in headers {
        h.insert(StrBytes::from_static_str(k), v.map(Bytes::from_static));
    }
    KpRecord {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 5,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // Pitfall 2: keep offset - sequence constant so the encoder makes one batch.
        sequence: -1 + (offset - base) as i32,
        timestamp: 1_700_000_000_000 + offset * 7,
        key: key.map(Bytes::from_static),
        value: value.map(Bytes::from_static),
        headers: h,
    }
}

fn encode(records: &[KpRecord], compression: KpCompression) -> Vec<u8> {
    crate::protocol::testutil::encode_batch(records, compression)
}

/// Three batches at offsets 0..=2, 3..=3, 4..=5 with a mix of null/empty keys, values, headers.
fn sample_batches() -> Vec<Vec<KpRecord>> {
    vec![
        vec![
            kp_record(0, 0, Some(b"k0"), Some(b"v0"), vec![]),
            kp_record(
                0,
                1,
                None,
                Some(b"value one"),
                vec![("h", Some(b"x")), ("h", None)],
            ),
            kp_record(0, 2, Some(b""), None, vec![("trace-id", Some(b"abc"))]),
        ],
        vec![kp_record(3, 3, None, None, vec![])],
        vec![
            kp_record(4, 4, Some(b"k4"), Some(&[0u8; 300]), vec![("a", Some(b""))]),
            kp_record(4, 5, Some(b"k5"), Some(b"v5"), vec![]),
        ],
    ]
}

fn blob(batches: &[Vec<KpRecord>], c: KpCompression) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut ends = Vec::new();
    for b in batches {
        out.extend(encode(b, c));
        ends.push(out.len());
    }
    (out, ends)
}

fn assert_same(ours: &Record, theirs: &KpRecord) {
    assert_eq!(ours.offset, theirs.offset);
    assert_eq!(ours.timestamp, theirs.timestamp);
    assert_eq!(ours.key, theirs.key);
    assert_eq!(ours.value, theirs.value);
    let th: Vec<(Bytes, Option<Bytes>)> = theirs
        .headers
        .iter()
        .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), v.clone()))
        .collect();
    assert_eq!(ours.headers, th);
}

#[test]
fn round_trip_all_codecs() {
    for (kc, ours_c) in CODECS {
        let batches = sample_batches();
        let (raw, _) = blob(&batches, kc);
        let data = Bytes::from(raw);
        let decoded = decode_batches(&data, DEFAULT_MAX_DECOMPRESSED).unwrap();
        assert_eq!(decoded.len(), 3, "{ours_c}");
        for (b, kb) in decoded.iter().zip(&batches) {
            assert_eq!(b.compression, ours_c);
            assert_eq!(b.base_offset, kb[0].offset);
            assert_eq!(b.last_offset, kb.last().unwrap().offset);
            assert_eq!(b.next_offset(), kb.last().unwrap().offset + 1);
            assert_eq!(b.partition_leader_epoch, 5);
            assert_eq!(b.producer_id, NO_PRODUCER_ID);
            assert_eq!(b.base_sequence, -1);
            assert!(!b.is_transactional && !b.is_control && !b.log_append_time);
            assert_eq!(b.control, None);
            assert_eq!(b.records.len(), kb.len());
            for (r, kr) in b.records.iter().zip(kb) {
                assert_same(r, kr);
            }
        }
        if ours_c == Compression::None {
            // Zero-copy: values are slices of the fetched blob.
            let v = decoded[2].records[0].value.as_ref().unwrap();
            let base = data.as_ptr() as usize;
            assert!(v.as_ptr() as usize >= base && (v.as_ptr() as usize) < base + data.len());
        }
    }
}

#[test]
fn compressed_batch_may_hold_more_records_than_compressed_bytes() {
    // The count is checked against the *decompressed* size: 100k minimal records compress
    // to far fewer bytes than records, and must decode.
    let minimal = [12u8, 0, 0, 0, 1, 1, 0]; // len 6, attrs, ts 0, offset 0, null, null, 0 headers
    let plain: Vec<u8> = minimal.iter().copied().cycle().take(7 * 100_000).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zs = zstd::stream::encode_all(&plain[..], 3).unwrap();
    for (attr, payload) in [(1, gz), (4, zs)] {
        assert!(payload.len() < 100_000, "{}", payload.len());
        let b = decode_batches(
            &Bytes::from(raw_batch(attr, -1, 100_000, &payload)),
            1 << 20,
        )
        .unwrap();
        assert_eq!(b[0].records.len(), 100_000);
    }
    // And kafka-protocol's own encoder, many small records in one compressed batch.
    let records: Vec<KpRecord> = (0..2000)
        .map(|o| kp_record(0, o, None, None, vec![]))
        .collect();
    for (kc, _) in &CODECS[1..] {
        let b = decode_batches(
            &Bytes::from(encode(&records, *kc)),
            DEFAULT_MAX_DECOMPRESSED,
        )
        .unwrap();
        assert_eq!(b[0].records.len(), 2000);
        assert_eq!(b[0].records[1999].offset, 1999);
    }
}

#[test]
fn truncated_last_batch_is_not_an_error() {
    for (kc, _) in CODECS {
        let (raw, ends) = blob(&sample_batches(), kc);
        let data = Bytes::from(raw);
        for cut in 0..=data.len() {
            let part = data.slice(..cut);
            let mut it = BatchIter::new(&part, DEFAULT_MAX_DECOMPRESSED);
            let got: Vec<Batch> = it.by_ref().map(|b| b.unwrap()).collect();
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(got.len(), complete, "{kc:?} cut {cut}");
            let consumed = if complete == 0 { 0 } else { ends[complete - 1] };
            assert_eq!(it.truncated_tail(), cut - consumed);
        }
    }
}

fn fix_crc(b: &mut [u8]) {
    let c = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&c.to_be_bytes());
}

/// A hand-built v2 batch (valid CRC) around `payload`.
fn raw_batch(attributes: i16, producer_id: i64, count: i32, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&100i64.to_be_bytes());
    b.extend_from_slice(&((BATCH_HEADER - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&7i32.to_be_bytes()); // leader epoch
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&(count.max(1) - 1).to_be_bytes()); // last offset delta
    b.extend_from_slice(&1000i64.to_be_bytes());
    b.extend_from_slice(&2000i64.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(payload);
    fix_crc(&mut b);
    b
}

fn zigzag(v: i64, out: &mut Vec<u8>) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    while u >= 0x80 {
        out.push((u as u8 & 0x7f) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// A raw record: `fields` after the attributes byte, wrapped with its varint length.
fn raw_record(fields: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(fields);
    let mut out = Vec::new();
    zigzag(body.len() as i64, &mut out);
    out.extend(body);
    out
}

/// ts delta, offset delta, key, value (varint-length, -1 null), then `rest` (headers).
fn fields(offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>, rest: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    zigzag(3, &mut f);
    zigzag(offset_delta, &mut f);
    for x in [key, value] {
        match x {
            None => zigzag(-1, &mut f),
            Some(b) => {
                zigzag(b.len() as i64, &mut f);
                f.extend_from_slice(b);
            }
        }
    }
    f.extend_from_slice(rest);
    f
}

fn err_kind(raw: Vec<u8>) -> RecordsErrorKind {
    decode_batches(&Bytes::from(raw), 1 << 20).unwrap_err().kind
}

#[test]
fn hand_built_batch_decodes() {
    let mut payload = raw_record(&fields(0, Some(b"k"), Some(b"v"), &[0]));
    let mut headers = Vec::new();
    zigzag(2, &mut headers);
    for (k, v) in [(&b"a"[..], Some(&b"1"[..])), (b"b", None)] {
        zigzag(k.len() as i64, &mut headers);
        headers.extend_from_slice(k);
        match v {
            Some(v) => {
                zigzag(v.len() as i64, &mut headers);
                headers.extend_from_slice(v);
            }
            None => zigzag(-1, &mut headers),
        }
    }
    payload.extend(raw_record(&fields(1, None, None, &headers)));
    let b = &decode_batches(&Bytes::from(raw_batch(0, -1, 2, &payload)), 1 << 20).unwrap()[0];
    assert_eq!(b.base_offset, 100);
    assert_eq!(b.last_offset, 101);
    assert_eq!(b.records[0].offset, 100);
    assert_eq!(b.records[0].timestamp, 1003);
    assert_eq!(
        b.records[1].headers,
        vec![
            (Bytes::from_static(b"a"), Some(Bytes::from_static(b"1"))),
            (Bytes::from_static(b"b"), None)
        ]
    );
    // LogAppendTime: every record carries the batch's max timestamp.
    let b = &decode_batches(&Bytes::from(raw_batch(1 << 3, -1, 2, &payload)), 1 << 20).unwrap()[0];
    assert!(b.log_append_time);
    assert!(b.records.iter().all(|r| r.timestamp == 2000));
}

#[test]
fn crc_and_header_corruption() {
    let (raw, ends) = blob(&sample_batches()[..1], KpCompression::None);
    assert_eq!(ends, [raw.len()]);
    for at in CRC_START..raw.len() {
        let mut bad = raw.clone();
        bad[at] ^= 0x40;
        assert!(
            matches!(err_kind(bad), RecordsErrorKind::Crc { .. }),
            "byte {at}"
        );
    }
    // The stored CRC itself.
    let mut bad = raw.clone();
    bad[19] ^= 1;
    assert!(matches!(err_kind(bad), RecordsErrorKind::Crc { .. }));
    // The leader epoch (bytes 12..16) is outside the CRC, by design.
    let mut epoch = raw.clone();
    epoch[12] = 9;
    assert!(decode_batches(&Bytes::from(epoch), 1 << 20).is_ok());
    // Old message formats are refused clearly, even a short one.
    let mut old = raw.clone();
    old[16] = 1;
    let e = decode_batches(&Bytes::from(old), 1 << 20).unwrap_err();
    assert_eq!(e.kind, RecordsErrorKind::UnsupportedMagic { magic: 1 });
    assert!(e.to_string().contains("only v2 record batches"), "{e}");
    assert_eq!(e.position, 0);
    // batch_length too small to hold the header, or negative.
    for len in [0i32, 48, -1, i32::MIN] {
        let mut bad = raw.clone();
        bad[8..12].copy_from_slice(&len.to_be_bytes());
        assert_eq!(err_kind(bad), RecordsErrorKind::BatchLength { length: len });
    }
    // Unknown codec 5 (CRC fixed).
    let mut bad = raw.clone();
    bad[22] |= 5;
    fix_crc(&mut bad);
    assert_eq!(
        err_kind(bad),
        RecordsErrorKind::UnknownCompression { codec: 5 }
    );
    // An error in the second batch: the first is yielded, then the error, then nothing.
    let mut two = raw.clone();
    let mut second = raw.clone();
    second[30] ^= 1;
    two.extend(second);
    let data = Bytes::from(two);
    let mut it = BatchIter::new(&data, 1 << 20);
    assert!(it.next().unwrap().is_ok());
    let e = it.next().unwrap().unwrap_err();
    assert_eq!(e.position, raw.len());
    assert!(it.next().is_none());
}

#[test]
fn lying_record_counts() {
    let one = raw_record(&fields(0, Some(b"k"), Some(b"v"), &[0]));
    let mut two = one.clone();
    two.extend(raw_record(&fields(1, None, None, &[0])));
    for count in [i32::MAX, -1, i32::MIN] {
        assert!(matches!(
            err_kind(raw_batch(0, -1, count, &two)),
            RecordsErrorKind::RecordCount { .. }
        ));
    }
    // More records claimed than present.
    assert!(matches!(
        err_kind(raw_batch(0, -1, 3, &two)),
        RecordsErrorKind::Record { index: 2, .. }
    ));
    // Fewer claimed than present.
    assert_eq!(
        err_kind(raw_batch(0, -1, 1, &two)),
        RecordsErrorKind::TrailingBytes {
            count: two.len() - one.len()
        }
    );
    // Compressed: the count is checked against the decompressed size.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&two).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(
        decode_batches(&Bytes::from(raw_batch(1, -1, 2, &gz)), 1 << 20).unwrap()[0]
            .records
            .len(),
        2
    );
    assert_eq!(
        err_kind(raw_batch(1, -1, i32::MAX, &gz)),
        RecordsErrorKind::RecordCount {
            count: i32::MAX,
            available: two.len()
        }
    );
}

#[test]
fn lying_lengths_inside_records() {
    let check = |fields: Vec<u8>, needle: &str| {
        let e = decode_batches(
            &Bytes::from(raw_batch(0, -1, 1, &raw_record(&fields))),
            1 << 20,
        )
        .unwrap_err();
        assert!(
            matches!(e.kind, RecordsErrorKind::Record { index: 0, .. }),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{e} lacks {needle}");
    };
    let mut huge = Vec::new();
    zigzag(1 << 30, &mut huge);
    check(
        fields(0, None, None, &huge),
        "headers: count 1073741824 exceeds",
    );
    let mut neg = Vec::new();
    zigzag(-5, &mut neg);
    check(fields(0, None, None, &neg), "invalid count -5");
    // Header key length beyond the record / negative / null.
    for (len, needle) in [
        (100i64, "headers[0].key: length 100 exceeds"),
        (-1, "headers[0].key"),
        (-2, "headers[0].key"),
    ] {
        let mut h = Vec::new();
        zigzag(1, &mut h);
        zigzag(len, &mut h);
        h.extend_from_slice(b"xy");
        check(fields(0, None, None, &h), needle);
    }
    // Key length beyond the record, or below -1.
    let mut f = Vec::new();
    zigzag(0, &mut f);
    zigzag(0, &mut f);
    zigzag(1 << 20, &mut f);
    f.extend_from_slice(b"abc");
    check(f, "key: length 1048576 exceeds");
    let mut f = Vec::new();
    zigzag(0, &mut f);
    zigzag(0, &mut f);
    zigzag(-2, &mut f);
    check(f, "key: invalid length -2");
    // Record length covering less than its fields, or negative.
    let mut short = raw_record(&fields(0, Some(b"k"), Some(b"v"), &[0]));
    short[0] -= 2; // zigzag: length - 1
    let mut payload = short.clone();
    payload.push(0);
    let e = decode_batches(&Bytes::from(raw_batch(0, -1, 1, &payload)), 1 << 20).unwrap_err();
    assert!(matches!(e.kind, RecordsErrorKind::Record { .. }), "{e}");
    let e = decode_batches(&Bytes::from(raw_batch(0, -1, 1, &[3, 0, 0, 0])), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("invalid record length -2"), "{e}");
    // Trailing bytes inside a record.
    let e = decode_batches(
        &Bytes::from(raw_batch(
            0,
            -1,
            1,
            &raw_record(&fields(0, None, None, &[0, 9])),
        )),
        1 << 20,
    )
    .unwrap_err();
    assert!(e.to_string().contains("1 trailing bytes"), "{e}");
}

/// `n` MiB of zeros compressed with `codec` (streamed, never held uncompressed).
fn zeros_compressed(codec: Compression, mib: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    match codec {
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            for _ in 0..mib {
                e.write_all(&chunk).unwrap();
            }
            e.finish().unwrap()
        }
        Compression::Zstd => {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
            for _ in 0..mib {
                e.write_all(&chunk).unwrap();
            }
            e.finish().unwrap()
        }
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            for _ in 0..mib {
                e.write_all(&chunk).unwrap();
            }
            let (v, r) = e.finish();
            r.unwrap();
            v
        }
        Compression::Snappy => {
            // xerial framing, 32 KiB blocks.
            let block = snap::raw::Encoder::new()
                .compress_vec(&chunk[..32 << 10])
                .unwrap();
            let mut v = compression::XERIAL_MAGIC.to_vec();
            v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
            for _ in 0..mib * 32 {
                v.extend_from_slice(&(block.len() as u32).to_be_bytes());
                v.extend_from_slice(&block);
            }
            v
        }
        Compression::None => unreachable!(),
    }
}

#[test]
fn compression_bombs_hit_the_cap() {
    for (attr, codec) in [
        (1, Compression::Gzip),
        (2, Compression::Snappy),
        (3, Compression::Lz4),
        (4, Compression::Zstd),
    ] {
        let payload = zeros_compressed(codec, 100);
        let raw = Bytes::from(raw_batch(attr, -1, 1, &payload));
        let started = std::time::Instant::now();
        let e = decode_batches(&raw, 1 << 20).unwrap_err();
        assert_eq!(
            e.kind,
            RecordsErrorKind::DecompressedTooLarge { limit: 1 << 20 },
            "{codec}"
        );
        assert!(
            started.elapsed().as_secs() < 5,
            "{codec} took {:?}",
            started.elapsed()
        );
    }
    // Raw snappy whose header claims ~4 GiB: refused before allocating.
    let mut claim = Vec::new();
    let mut u: u64 = 0xffff_fff0;
    while u >= 0x80 {
        claim.push((u as u8 & 0x7f) | 0x80);
        u >>= 7;
    }
    claim.push(u as u8);
    claim.extend_from_slice(&[0; 8]);
    assert_eq!(
        err_kind(raw_batch(2, -1, 1, &claim)),
        RecordsErrorKind::DecompressedTooLarge { limit: 1 << 20 }
    );
}

#[test]
fn decompression_budget_is_shared_by_the_blob() {
    // Real batches of ~60, ~10 and ~320 decompressed bytes with a 350-byte budget: the
    // first two fit, the third does not.
    let (raw, _) = blob(&sample_batches(), KpCompression::Gzip);
    let data = Bytes::from(raw);
    assert_eq!(
        decode_batches(&data, DEFAULT_MAX_DECOMPRESSED)
            .unwrap()
            .len(),
        3
    );
    // The third would fit a budget of its own: the iteration stops before it (a new fetch
    // starting there decodes it), it is not an error.
    let mut it = BatchIter::new(&data, 350);
    let results: Vec<_> = it.by_ref().collect();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.is_ok()));
    assert!(it.stopped_early());
    assert_eq!(
        it.truncated_tail(),
        data.len() - ends_of(&sample_batches())[1]
    );
    // Alone, it is decoded with the same budget.
    let third = data.slice(ends_of(&sample_batches())[1]..);
    assert_eq!(decode_batches(&third, 350).unwrap().len(), 1);
    // A first batch over the limit on its own is an error.
    let e = decode_batches(&third, 100).unwrap_err();
    assert_eq!(
        e.kind,
        RecordsErrorKind::DecompressedTooLarge { limit: 100 }
    );
}

fn ends_of(batches: &[Vec<KpRecord>]) -> Vec<usize> {
    blob(batches, KpCompression::Gzip).1
}

#[test]
fn corrupted_compressed_payloads_never_panic() {
    let records: Vec<KpRecord> = (0..40)
        .map(|o| {
            kp_record(
                0,
                o,
                Some(b"key"),
                Some(b"some value bytes"),
                vec![("h", Some(b"v"))],
            )
        })
        .collect();
    let mut rng = Rng::new(0xbadc0de);
    for (kc, _) in CODECS {
        let valid = encode(&records, kc);
        for _ in 0..400 {
            let mut m = valid.clone();
            for _ in 0..=rng.below(3) {
                let at = BATCH_HEADER + rng.below((m.len() - BATCH_HEADER) as u64) as usize;
                match rng.below(3) {
                    0 => m[at] = rng.next() as u8,
                    1 => m[at] ^= 1 << rng.below(8),
                    _ => m.truncate(at.max(BATCH_HEADER)),
                }
            }
            let len = (m.len() - LOG_OVERHEAD) as i32;
            m[8..12].copy_from_slice(&len.to_be_bytes());
            fix_crc(&mut m);
            let _ = decode_batches(&Bytes::from(m), 1 << 20);
        }
    }
}

fn control_record(offset: i64, pid: i64, kind: i16) -> KpRecord {
    let mut key = vec![0, 0];
    key.extend_from_slice(&kind.to_be_bytes());
    KpRecord {
        transactional: true,
        control: true,
        producer_id: pid,
        producer_epoch: 0,
        sequence: -1,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 3])),
        ..kp_record(offset, offset, None, None, vec![])
    }
}

fn txn_records(pid: i64, offsets: std::ops::RangeInclusive<i64>) -> Vec<KpRecord> {
    let base = *offsets.start();
    offsets
        .map(|o| KpRecord {
            transactional: true,
            producer_id: pid,
            producer_epoch: 0,
            ..kp_record(base, o, None, Some(b"v"), vec![])
        })
        .collect()
}

#[test]
fn control_batches_decode_marker_type() {
    let mut raw = encode(&[control_record(5, 9, 1)], KpCompression::None);
    raw.extend(encode(&[control_record(6, 9, 0)], KpCompression::None));
    raw.extend(encode(&[control_record(7, 9, 4)], KpCompression::None));
    let b = decode_batches(&Bytes::from(raw), 1 << 20).unwrap();
    assert!(b
        .iter()
        .all(|b| b.is_control && b.is_transactional && b.producer_id == 9));
    assert_eq!(
        b.iter().map(|b| b.control).collect::<Vec<_>>(),
        [
            Some(ControlType::Commit),
            Some(ControlType::Abort),
            Some(ControlType::Other(4))
        ]
    );
    // A control key that is too short, null, or of negative version is an error.
    for key in [Some(&[0u8, 0, 0][..]), None, Some(&[0xff, 0xff, 0, 0][..])] {
        let f = fields(0, key, Some(&[0, 0, 0, 0, 0, 0]), &[0]);
        let e = decode_batches(
            &Bytes::from(raw_batch(0x30, 9, 1, &raw_record(&f))),
            1 << 20,
        )
        .unwrap_err();
        assert!(e.to_string().contains("control key"), "{e}");
    }
    // A control batch emptied by compaction has no marker.
    let b = decode_batches(&Bytes::from(raw_batch(0x30, 9, 0, &[])), 1 << 20).unwrap();
    assert_eq!(b[0].control, None);
}

// ---- visible_records ---------------------------------------------------------------

fn data(pid: i64, first: i64, last: i64, txn: bool) -> Batch {
    Batch {
        base_offset: first,
        last_offset: last,
        producer_id: pid,
        is_transactional: txn,
        records: (first..=last)
            .map(|o| Record {
                offset: o,
                ..Record::default()
            })
            .collect(),
        ..Batch::default()
    }
}

fn marker(pid: i64, offset: i64, kind: ControlType) -> Batch {
    Batch {
        is_control: true,
        control: Some(kind),
        ..data(pid, offset, offset, true)
    }
}

fn abort(producer_id: i64, first_offset: i64) -> AbortedTransaction {
    AbortedTransaction {
        producer_id,
        first_offset,
    }
}

use ControlType::{Abort as A, Commit as C};

#[test]
fn visible_records_table() {
    struct Case {
        name: &'static str,
        batches: Vec<Batch>,
        fetch: i64,
        aborted: Vec<AbortedTransaction>,
        committed: Vec<i64>,
        uncommitted: Vec<i64>,
        next: i64,
    }
    let cases = vec![
        Case {
            name: "interleaved producers, P1 aborts, P2 commits",
            batches: vec![
                data(1, 0, 1, true),
                data(2, 2, 3, true),
                data(1, 4, 4, true),
                marker(2, 5, C),
                marker(1, 6, A),
                data(-1, 7, 7, false),
            ],
            fetch: 0,
            aborted: vec![abort(1, 0)],
            committed: vec![2, 3, 7],
            uncommitted: vec![0, 1, 2, 3, 4, 7],
            next: 8,
        },
        Case {
            name: "same producer aborts twice around a commit",
            batches: vec![
                data(1, 0, 1, true),
                marker(1, 2, A),
                data(1, 3, 4, true),
                marker(1, 5, C),
                data(1, 6, 6, true),
                marker(1, 7, A),
            ],
            fetch: 0,
            aborted: vec![abort(1, 6), abort(1, 0)], // unsorted on purpose
            committed: vec![3, 4],
            uncommitted: vec![0, 1, 3, 4, 6],
            next: 8,
        },
        Case {
            name: "aborted txn starts later than the first txn of the producer",
            batches: vec![
                data(1, 0, 0, true),
                marker(1, 1, C),
                data(1, 2, 3, true),
                marker(1, 4, A),
                data(1, 5, 5, true),
            ],
            fetch: 0,
            aborted: vec![abort(1, 2)],
            committed: vec![0, 5],
            uncommitted: vec![0, 2, 3, 5],
            next: 6,
        },
        Case {
            name: "two producers both aborted, overlapping",
            batches: vec![
                data(1, 10, 10, true),
                data(2, 11, 11, true),
                data(3, 12, 12, true),
                marker(2, 13, A),
                data(1, 14, 14, true),
                marker(1, 15, A),
                marker(3, 16, C),
            ],
            fetch: 10,
            aborted: vec![abort(2, 11), abort(1, 10)],
            committed: vec![12],
            uncommitted: vec![10, 11, 12, 14],
            next: 17,
        },
        Case {
            name: "non-transactional batch of an aborting producer id is kept",
            batches: vec![data(1, 0, 0, true), data(1, 1, 1, false), marker(1, 2, A)],
            fetch: 0,
            aborted: vec![abort(1, 0)],
            committed: vec![1],
            uncommitted: vec![0, 1],
            next: 3,
        },
        Case {
            name: "activation uses the batch's last offset (Java)",
            batches: vec![data(1, 3, 6, true), marker(1, 7, A)],
            fetch: 3,
            aborted: vec![abort(1, 5)],
            committed: vec![],
            uncommitted: vec![3, 4, 5, 6],
            next: 8,
        },
        Case {
            name: "fetch offset inside the first batch",
            batches: vec![data(-1, 10, 14, false), data(-1, 15, 16, false)],
            fetch: 12,
            aborted: vec![],
            committed: vec![12, 13, 14, 15, 16],
            uncommitted: vec![12, 13, 14, 15, 16],
            next: 17,
        },
        Case {
            name: "only markers: nothing visible, but the position moves past them",
            batches: vec![marker(1, 40, C), marker(2, 41, A)],
            fetch: 40,
            aborted: vec![],
            committed: vec![],
            uncommitted: vec![],
            next: 42,
        },
        Case {
            name: "compaction removed the batch's last records",
            batches: vec![Batch {
                last_offset: 9,
                ..data(-1, 5, 6, false)
            }],
            fetch: 5,
            aborted: vec![],
            committed: vec![5, 6],
            uncommitted: vec![5, 6],
            next: 10,
        },
        Case {
            name: "no batches",
            batches: vec![],
            fetch: 77,
            aborted: vec![abort(1, 0)],
            committed: vec![],
            uncommitted: vec![],
            next: 77,
        },
        Case {
            name: "aborted txn entirely in the future of this fetch",
            batches: vec![data(1, 0, 1, true), marker(1, 2, C)],
            fetch: 0,
            aborted: vec![abort(1, 50)],
            committed: vec![0, 1],
            uncommitted: vec![0, 1],
            next: 3,
        },
    ];
    for c in cases {
        for (rc, want) in [(true, &c.committed), (false, &c.uncommitted)] {
            let v = visible_records(c.batches.clone(), c.fetch, &c.aborted, rc);
            let got: Vec<i64> = v.records.iter().map(|r| r.offset).collect();
            assert_eq!(&got, want, "{} (read_committed={rc})", c.name);
            assert_eq!(v.next_offset, c.next, "{} (read_committed={rc})", c.name);
            if !rc {
                assert_eq!(v.aborted_records, 0);
            }
        }
    }
}

#[test]
fn read_committed_end_to_end_with_encoded_batches() {
    // P7 writes 0..=1 then aborts (2); P8 writes 3..=4 then commits (5); plain record at 6.
    let mut raw = Vec::new();
    for (records, codec) in [
        (txn_records(7, 0..=1), KpCompression::Zstd),
        (vec![control_record(2, 7, 0)], KpCompression::None),
        (txn_records(8, 3..=4), KpCompression::Lz4),
        (vec![control_record(5, 8, 1)], KpCompression::None),
        (
            vec![kp_record(6, 6, None, Some(b"plain"), vec![])],
            KpCompression::Snappy,
        ),
    ] {
        raw.extend(encode(&records, codec));
    }
    let batches = decode_batches(&Bytes::from(raw), 1 << 20).unwrap();
    assert_eq!(batches.len(), 5);
    assert!(batches[0].is_transactional && batches[0].producer_id == 7);
    let v = visible_records(batches.clone(), 0, &[abort(7, 0)], true);
    assert_eq!(
        v.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [3, 4, 6]
    );
    assert_eq!(v.next_offset, 7);
    assert_eq!(v.aborted_records, 2);
    let v = visible_records(batches, 0, &[abort(7, 0)], false);
    assert_eq!(
        v.records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 3, 4, 6]
    );
}

#[test]
fn header_names_are_bytes_and_every_record_decodes() {
    // librdkafka and franz-go can write a header name that is not UTF-8; Java reads it (with
    // replacement characters). It must decode with its exact bytes, between ordinary records.
    let mut h = Vec::new();
    zigzag(3, &mut h);
    for (k, v) in [
        (&b"\xff\xfe"[..], Some(&b"bin"[..])),
        (b"ok", None),
        (b"\xff\xfe", Some(b"again")),
    ] {
        zigzag(k.len() as i64, &mut h);
        h.extend_from_slice(k);
        match v {
            Some(v) => {
                zigzag(v.len() as i64, &mut h);
                h.extend_from_slice(v);
            }
            None => zigzag(-1, &mut h),
        }
    }
    let mut payload = raw_record(&fields(0, Some(b"a"), Some(b"1"), &[0]));
    payload.extend(raw_record(&fields(1, Some(b"b"), Some(b"2"), &h)));
    payload.extend(raw_record(&fields(2, Some(b"c"), Some(b"3"), &[0])));
    let b = &decode_batches(&Bytes::from(raw_batch(0, -1, 3, &payload)), 1 << 20).unwrap()[0];
    assert_eq!(b.records.len(), 3);
    let names: Vec<&[u8]> = b.records[1].headers.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(names, [&b"\xff\xfe"[..], b"ok", b"\xff\xfe"]);
    assert_eq!(b.records[1].headers[2].1.as_deref(), Some(&b"again"[..]));
}

#[test]
fn offsets_are_checked_never_wrapped() {
    let one = raw_record(&fields(0, None, None, &[0]));
    // base + last_offset_delta beyond the last usable offset.
    let mut near_end = raw_batch(0, -1, 2, &{
        let mut p = one.clone();
        p.extend(raw_record(&fields(1, None, None, &[0])));
        p
    });
    near_end[..8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
    let e = decode_batches(&Bytes::from(near_end), 1 << 20).unwrap_err();
    assert_eq!(
        e.kind,
        RecordsErrorKind::OffsetOverflow {
            base_offset: i64::MAX - 1,
            delta: 1
        }
    );
    assert_eq!(e.claimed_last_offset, None);
    // A single record at the last usable offset is fine: the offset after it is i64::MAX.
    let mut last = raw_batch(0, -1, 1, &one);
    last[..8].copy_from_slice(&MAX_OFFSET.to_be_bytes());
    let b = &decode_batches(&Bytes::from(last), 1 << 20).unwrap()[0];
    assert_eq!(b.records[0].offset, MAX_OFFSET);
    assert_eq!(b.next_offset(), i64::MAX);
    // Negative base offsets and deltas are refused.
    let mut neg = raw_batch(0, -1, 1, &one);
    neg[..8].copy_from_slice(&(-5i64).to_be_bytes());
    assert!(matches!(
        err_kind(neg),
        RecordsErrorKind::OffsetOverflow { .. }
    ));
    // A record whose offset delta lies outside its batch.
    let e = err_kind(raw_batch(
        0,
        -1,
        1,
        &raw_record(&fields(3, None, None, &[0])),
    ));
    assert!(e.to_string().contains("invalid offset delta 3"), "{e}");
}

#[test]
fn a_failed_batch_says_what_it_covers() {
    let mut payload = raw_record(&fields(0, None, None, &[0]));
    payload.extend(raw_record(&fields(1, None, None, &[0])));
    let mut bad = raw_batch(0, -1, 2, &payload);
    let n = bad.len();
    bad[n - 1] ^= 1; // CRC mismatch
    let e = decode_batches(&Bytes::from(bad.clone()), 1 << 20).unwrap_err();
    assert!(matches!(e.kind, RecordsErrorKind::Crc { .. }));
    assert_eq!((e.base_offset, e.claimed_last_offset), (100, Some(101)));
    assert_eq!(e.raw.as_deref(), Some(&bad[..]));
}
