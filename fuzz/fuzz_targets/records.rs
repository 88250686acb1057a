//! The record batch decoder (CRC, varints, headers, all four codecs with their output caps) and
//! the read_committed filter on top of it, as a consumer runs them on a fetched partition.
//!
//! Input: one flag byte (bit 0: read_committed), then a partition's `records` blob.
#![no_main]

use bytes::Bytes;
use kafka_observer::protocol::fetch::AbortedTransaction;
use kafka_observer::protocol::records::{visible_records, BatchIter};
use libfuzzer_sys::fuzz_target;

/// A small decompression budget, so that compression bombs hit the cap quickly.
const MAX_DECOMPRESSED: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, blob)) = data.split_first() else {
        return;
    };
    let records = Bytes::copy_from_slice(blob);
    let mut iter = BatchIter::new(&records, MAX_DECOMPRESSED);
    let mut batches = Vec::new();
    for b in iter.by_ref() {
        match b {
            Ok(b) => batches.push(b),
            Err(_) => break,
        }
    }
    assert!(iter.truncated_tail() <= records.len());
    let aborted: Vec<AbortedTransaction> = batches
        .iter()
        .filter(|b| b.is_transactional)
        .map(|b| AbortedTransaction {
            producer_id: b.producer_id,
            first_offset: b.base_offset,
        })
        .collect();
    let fetch_offset = batches.first().map(|b| b.base_offset).unwrap_or(0);
    let v = visible_records(batches, fetch_offset, &aborted, flags & 1 == 1);
    assert!(v.next_offset >= fetch_offset);
});
