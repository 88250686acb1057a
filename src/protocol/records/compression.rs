//! The five codecs of record batches, both ways, with the framing Kafka's Java client writes.
//!
//! Decompression never trusts the input: output is capped (`cap`), snappy's claimed block size
//! is checked before anything is reserved, and a truncated lz4 frame is an error rather than
//! silently short output. Compression writes what every Kafka reader accepts: gzip members,
//! snappy-java's xerial stream framing (what the Java producer and librdkafka write), an lz4
//! frame with independent 64 KiB blocks and no checksums (KafkaLZ4BlockInputStream reads it),
//! and one zstd frame.

use std::io::{Read, Write};

use bytes::Bytes;

use super::{Compression, RecordsErrorKind};

/// snappy-java's stream framing, which Kafka producers write.
pub(super) const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
/// Magic + version + compatible version.
const XERIAL_HEADER: usize = 16;
/// snappy-java's default block size.
const XERIAL_BLOCK: usize = 32 << 10;

fn be4(b: &[u8]) -> [u8; 4] {
    b[..4].try_into().expect("length checked")
}

/// Decompresses `payload`, failing once the output would exceed `cap` bytes; `limit` is what
/// the error reports (the configured maximum, of which `cap` may be the unused rest).
pub(super) fn decompress(
    codec: Compression,
    payload: &[u8],
    cap: usize,
    limit: usize,
) -> Result<Bytes, RecordsErrorKind> {
    let fail = |message: String| RecordsErrorKind::Decompress { codec, message };
    let mut out = Vec::new();
    let take = (cap as u64).saturating_add(1);
    match codec {
        Compression::None => out.extend_from_slice(payload),
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(payload)
                .take(take)
                .read_to_end(&mut out)
                .map_err(|e| fail(e.to_string()))?;
        }
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(|e| fail(e.to_string()))?;
            dec.take(take)
                .read_to_end(&mut out)
                .map_err(|e| fail(e.to_string()))?;
        }
        Compression::Lz4 => {
            let mut dec = lz4::Decoder::new(payload).map_err(|e| fail(e.to_string()))?;
            (&mut dec)
                .take(take)
                .read_to_end(&mut out)
                .map_err(|e| fail(e.to_string()))?;
            if out.len() <= cap {
                dec.finish()
                    .1
                    .map_err(|_| fail("truncated lz4 frame".into()))?;
            }
        }
        Compression::Snappy => {
            if !snappy(payload, cap, &mut out).map_err(fail)? {
                return Err(RecordsErrorKind::DecompressedTooLarge { limit });
            }
        }
    }
    if out.len() > cap {
        return Err(RecordsErrorKind::DecompressedTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

/// Kafka's snappy: xerial framing (`XERIAL_MAGIC`, two i32 versions, then blocks of
/// `[i32 length][raw snappy]`), or one raw snappy block without the magic (what snappy-java
/// also accepts). Each block's claimed size is checked against the cap before allocating.
/// `Ok(false)`: the output would exceed `cap`.
fn snappy(payload: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<bool, String> {
    if !payload.starts_with(XERIAL_MAGIC) {
        return snappy_block(payload, cap, out);
    }
    if payload.len() < XERIAL_HEADER {
        return Err("truncated xerial snappy header".into());
    }
    let mut rest = &payload[XERIAL_HEADER..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("truncated xerial snappy block length".into());
        }
        let len = u32::from_be_bytes(be4(rest)) as usize;
        rest = &rest[4..];
        if len > rest.len() {
            return Err(format!(
                "xerial snappy block of {len} bytes, only {} left",
                rest.len()
            ));
        }
        if !snappy_block(&rest[..len], cap, out)? {
            return Ok(false);
        }
        rest = &rest[len..];
    }
    Ok(true)
}

/// One raw snappy block appended to `out`; `Ok(false)` when its claimed size exceeds `cap`
/// (checked before allocating anything).
fn snappy_block(block: &[u8], cap: usize, out: &mut Vec<u8>) -> Result<bool, String> {
    let claimed = snap::raw::decompress_len(block).map_err(|e| e.to_string())?;
    let start = out.len();
    if claimed > cap.saturating_sub(start) {
        return Ok(false);
    }
    out.resize(start + claimed, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| e.to_string())?;
    out.truncate(start + n);
    Ok(true)
}

/// Compresses the records section of a batch with `codec` (`None` returns it as is).
pub(crate) fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("{codec} compression failed: {e}");
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2),
                flate2::Compression::default(),
            );
            e.write_all(data).map_err(io)?;
            e.finish().map_err(io)
        }
        Compression::Snappy => {
            let mut out = Vec::with_capacity(data.len() / 2 + XERIAL_HEADER);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK)];
            for chunk in data.chunks(XERIAL_BLOCK) {
                let n = enc
                    .compress(chunk, &mut block)
                    .map_err(|e| format!("snappy compression failed: {e}"))?;
                out.extend_from_slice(&(n as u32).to_be_bytes());
                out.extend_from_slice(&block[..n]);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::with_capacity(data.len() / 2))
                .map_err(io)?;
            e.write_all(data).map_err(io)?;
            let (out, done) = e.finish();
            done.map_err(io)?;
            Ok(out)
        }
        Compression::Zstd => zstd::bulk::compress(data, 3).map_err(io),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_respects_the_cap() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(codec, &data).unwrap();
            if codec != Compression::None {
                assert!(packed.len() < data.len() / 2, "{codec}: {}", packed.len());
            }
            let back = decompress(codec, &packed, data.len(), data.len()).unwrap();
            assert_eq!(&back[..], &data[..], "{codec}");
            let e = decompress(codec, &packed, data.len() - 1, 7).unwrap_err();
            assert_eq!(
                e,
                RecordsErrorKind::DecompressedTooLarge { limit: 7 },
                "{codec}"
            );
            // Empty input is a valid (empty) payload for every codec.
            let empty = compress(codec, &[]).unwrap();
            assert!(
                decompress(codec, &empty, 10, 10).unwrap().is_empty(),
                "{codec}"
            );
        }
    }

    #[test]
    fn snappy_is_xerial_framed_in_32_kib_blocks() {
        let data = vec![7u8; 70_000];
        let packed = compress(Compression::Snappy, &data).unwrap();
        assert!(packed.starts_with(XERIAL_MAGIC));
        let mut rest = &packed[XERIAL_HEADER..];
        let mut blocks = 0;
        while !rest.is_empty() {
            let len = u32::from_be_bytes(be4(rest)) as usize;
            rest = &rest[4 + len..];
            blocks += 1;
        }
        assert_eq!(blocks, 3);
    }
}
