//! Lag a consumer would see, not lag in offsets. A group whose commit stops just before a
//! transaction marker, or before records of an aborted transaction, has offset lag but nothing
//! to read: a consumer woken for it fetches, finds nothing and goes back to sleep, again and
//! again if it never commits past the gap (the scale-from-zero loop of KEDA #5675). Markers are
//! one offset each, so such gaps are small; for a small gap the observer looks — one Fetch per
//! leader at the committed offsets — and a gap with no visible record before the end is no
//! work. Large gaps are real work and are not checked.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;

use super::fetch::{fetch, FetchOptions};
use super::TopicPartition;
use crate::cluster::{Cluster, Lane};
use crate::protocol::fetch::FetchPartition;
use crate::protocol::records::{decode_batches, visible_records, DEFAULT_MAX_DECOMPRESSED};

/// Gaps up to this many offsets are checked.
pub(crate) const MAX_GAP: i64 = 64;

/// Bytes read per checked partition: a gap of markers and small aborted batches fits.
const PEEK_BYTES: i32 = 64 * 1024;

/// A group's commit `from` below the partition's `end`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Gap {
    pub tp: TopicPartition,
    pub from: i64,
    pub end: i64,
}

/// Whether a fetched partition shows no visible record in `[from, end)` (pure). `false` when it
/// cannot tell: an error, or the answer stops before `end`.
pub(crate) fn nothing_visible(
    p: &FetchPartition,
    from: i64,
    end: i64,
    read_committed: bool,
) -> bool {
    if p.error_code != 0 {
        return false;
    }
    let Some(records) = &p.records else {
        return false;
    };
    let Ok(batches) = decode_batches(records, DEFAULT_MAX_DECOMPRESSED) else {
        return false;
    };
    let aborted = p.aborted_transactions.as_deref().unwrap_or(&[]);
    let v = visible_records(batches, from, aborted, read_committed);
    let first_visible = v.records.first().map(|r| r.offset);
    v.next_offset >= end && first_visible.is_none_or(|o| o >= end)
}

/// The gaps among `gaps` that hold nothing a consumer would see. Failures count as "not empty":
/// at worst a consumer is woken for nothing, never is work missed.
pub(crate) async fn gaps_with_nothing_visible(
    cluster: &Cluster,
    gaps: &[Gap],
    read_committed: bool,
) -> HashSet<Gap> {
    let md = cluster.metadata();
    let mut by_leader: BTreeMap<i32, BTreeMap<TopicPartition, i64>> = BTreeMap::new();
    for g in gaps {
        if let Some(l) = md.leader(&g.tp.topic, g.tp.partition) {
            // One look per partition, from the lowest commit: it covers the others' ranges.
            let from = by_leader
                .entry(l)
                .or_default()
                .entry(g.tp.clone())
                .or_insert(g.from);
            *from = (*from).min(g.from);
        }
    }
    let opts = FetchOptions {
        max_wait: Duration::ZERO,
        partition_max_bytes: PEEK_BYTES,
        max_bytes: PEEK_BYTES.saturating_mul(16),
        read_committed,
        lane: Lane::Peek,
    };
    let looks = join_all(
        by_leader
            .iter()
            .map(|(leader, positions)| fetch(cluster, *leader, positions, opts)),
    )
    .await;
    let mut answers: BTreeMap<TopicPartition, FetchPartition> = BTreeMap::new();
    for look in looks {
        match look {
            Ok(a) => answers.extend(a),
            Err(e) => tracing::debug!(error = %e, "gap check failed; counting those gaps as lag"),
        }
    }
    gaps.iter()
        .filter(|g| {
            answers
                .get(&g.tp)
                .is_some_and(|p| nothing_visible(p, g.from, g.end, read_committed))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::fetch_answer as answer;

    /// One batch: `count` records from `offset`, or a transaction marker (`marker` = Some(commit)).
    fn batch(offset: i64, count: i64, producer: i64, marker: Option<bool>) -> Vec<u8> {
        crate::protocol::testutil::txn_batch(offset, count, producer, marker, 1_700_000_000_000)
    }

    #[test]
    fn gaps_with_nothing_visible() {
        // 0-1 committed transaction of producer 7, its COMMIT marker at 2; 3-4 aborted
        // transaction of producer 8, its ABORT marker at 5; a plain record at 6.
        let committed_txn = batch(0, 2, 7, None);
        let commit = batch(2, 1, 7, Some(true));
        let aborted_txn = batch(3, 2, 8, None);
        let abort = batch(5, 1, 8, Some(false));
        let plain = batch(6, 1, -1, None);
        let all = [
            committed_txn.clone(),
            commit.clone(),
            aborted_txn.clone(),
            abort.clone(),
            plain,
        ];
        let from_2 = [commit.clone(), aborted_txn.clone(), abort.clone()];
        #[rustfmt::skip]
        let cases: &[(&str, FetchPartition, i64, i64, bool, bool)] = &[
            ("commit parked on the COMMIT marker", answer(std::slice::from_ref(&commit), &[]), 2, 3, true, true),
            ("a committed record in the gap", answer(&all, &[]), 1, 3, true, false),
            ("marker and an aborted transaction", answer(&from_2, &[(8, 3)]), 2, 6, true, true),
            ("…which read_uncommitted consumers do see", answer(&from_2, &[]), 2, 6, false, false),
            ("a plain record after them", answer(&all, &[(8, 3)]), 2, 7, true, false),
            ("the answer stops before the end", answer(std::slice::from_ref(&commit), &[]), 2, 5, true, false),
            ("no records at all", FetchPartition::default(), 2, 3, true, false),
            ("an error", FetchPartition { error_code: 6, ..answer(&[commit], &[]) }, 2, 3, true, false),
        ];
        for (name, p, from, end, rc, want) in cases {
            assert_eq!(nothing_visible(p, *from, *end, *rc), *want, "{name}");
        }
    }
}
