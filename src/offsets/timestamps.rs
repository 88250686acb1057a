//! Lag in time, exactly: the age of the first record a consumer of the group would read next.
//!
//! Exporters that interpolate (offset, time) samples (kafka-lag-exporter, klag) are off by
//! orders of magnitude on bursty or trickle topics. The exact answer is one small Fetch away:
//! the record at the group's start position ([`Policy::start`]: its commit, or where its reset
//! policy starts without one), and under read_committed the first *visible* record from there
//! (control batches and aborted records are skipped, as the consumer skips them). Its timestamp
//! is the producer's (CreateTime) or the broker's (LogAppendTime: the batch's max timestamp), as
//! the batch attributes say; the time lag is `now − timestamp`, 0 when nothing waits.
//!
//! Cost is bounded because what a Fetch at an offset shows never changes (below the last stable
//! offset, a record, a marker or an aborted transaction is settled): each answer is cached as a
//! [`Peek`] keyed by (partition, offset), so a partition is looked at again only when a start
//! moved (a commit, the log start) — one Fetch per leader per round, [`PEEK_BYTES`] per
//! partition. The decisions (which offset, what a cached answer means, the age) are pure; the
//! async part only fills the cache.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::fetch::{fetch, FetchOptions};
use super::{Ends, TopicPartition};
use crate::cluster::{Cluster, Lane};
use crate::lag::group::Commit;
use crate::lag::Policy;
use crate::protocol::fetch::FetchPartition;
use crate::protocol::records::{decode_batches, visible_records, DEFAULT_MAX_DECOMPRESSED};

/// Bytes asked per partition: a small batch fits. A larger first batch comes back whole when the
/// partition is alone in its request (KIP-74), which is how a cut-short answer is asked again.
pub(crate) const PEEK_BYTES: i32 = 4 * 1024;

/// Fetch rounds per call of [`look`]: a chain of skipped batches (markers, aborted
/// transactions) longer than this is followed on the next cycle.
pub(crate) const MAX_ROUNDS: usize = 3;

/// Steps [`Peeks::resolve`] follows through cached skips.
const MAX_STEPS: usize = 64;

/// Partitions asked alone (cut-short answers) per round and leader.
const MAX_ALONE: usize = 8;

/// A look that failed (an error for the partition, or the whole Fetch) is not repeated for this
/// long: a topic the observer may not read costs one Fetch per half minute, not one per cycle.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where the record whose age is the time lag is to be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// The offsets or the commit could not be read.
    Unknown,
    /// Nothing waits: time lag 0.
    Nothing,
    /// The first visible record in `[from, end)`.
    From { from: i64, end: i64 },
}

/// Which record counts for a group on one partition (pure): from [`Policy::start`] to
/// [`Policy::end`]; `nothing_to_read` is the observer's gap verdict for a commit.
pub(crate) fn wanted(
    policy: &Policy,
    ends: Option<&Ends>,
    commit: Commit,
    nothing_to_read: bool,
) -> Want {
    let Some(e) = ends else {
        return Want::Unknown;
    };
    let committed = match commit {
        Commit::Unknown => return Want::Unknown,
        Commit::None => None,
        Commit::At(_) if nothing_to_read => return Want::Nothing,
        Commit::At(c) => Some(c),
    };
    let (from, end) = (policy.start(e, committed), policy.end(e));
    if from >= end {
        Want::Nothing
    } else {
        Want::From { from, end }
    }
}

/// What a Fetch at an offset showed: a fact about the log that does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peek {
    /// The first visible record at or after the offset is at `offset`, stamped `timestamp` (ms).
    Record { offset: i64, timestamp: i64 },
    /// Nothing visible before `next` (markers, aborted records): look on from there.
    Skip { next: i64 },
}

/// What one fetched partition says about `from` (pure). `None` when it cannot tell: an error,
/// no complete batch (cut short: ask again alone), a batch that does not decode.
pub(crate) fn peek(p: &FetchPartition, from: i64, read_committed: bool) -> Option<Peek> {
    if p.error_code != 0 {
        return None;
    }
    let batches = decode_batches(p.records.as_ref()?, DEFAULT_MAX_DECOMPRESSED).ok()?;
    let aborted = p.aborted_transactions.as_deref().unwrap_or(&[]);
    let v = visible_records(batches, from, aborted, read_committed);
    match v.records.first() {
        Some(r) => Some(Peek::Record {
            offset: r.offset,
            timestamp: r.timestamp,
        }),
        None if v.next_offset > from => Some(Peek::Skip {
            next: v.next_offset,
        }),
        None => None,
    }
}

/// What the cache says about a [`Want::From`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// No visible record before the end: nothing waits.
    Nothing,
    /// The first waiting record's timestamp (ms).
    At(i64),
    /// Unknown until the offset is looked at.
    Need(i64),
}

/// Cached [`Peek`]s, per partition by offset.
#[derive(Debug, Default)]
pub(crate) struct Peeks {
    by_tp: HashMap<TopicPartition, BTreeMap<i64, Peek>>,
    /// Looks that failed, and when: not repeated before [`RETRY_AFTER`].
    failed: HashMap<(TopicPartition, i64), Instant>,
}

impl Peeks {
    /// Follows the cache from `from` towards `end` (pure).
    pub(crate) fn resolve(&self, tp: &TopicPartition, from: i64, end: i64) -> Resolved {
        let known = self.by_tp.get(tp);
        let mut at = from;
        for _ in 0..MAX_STEPS {
            if at >= end {
                return Resolved::Nothing;
            }
            match known.and_then(|k| k.get(&at)) {
                None => return Resolved::Need(at),
                Some(Peek::Record { offset, .. }) if *offset >= end => return Resolved::Nothing,
                // A record without a timestamp (-1, message format v0) has no age.
                Some(Peek::Record { timestamp, .. }) if *timestamp < 0 => return Resolved::Nothing,
                Some(Peek::Record { timestamp, .. }) => return Resolved::At(*timestamp),
                Some(Peek::Skip { next }) => at = (*next).max(at + 1),
            }
        }
        Resolved::Need(at)
    }

    pub(crate) fn insert(&mut self, tp: TopicPartition, from: i64, p: Peek) {
        self.by_tp.entry(tp).or_default().insert(from, p);
    }

    /// Keeps only what `wants` can still reach: partitions asked about, offsets at or above the
    /// lowest start asked (commits move forward; one that moves back is looked at again).
    pub(crate) fn retain(&mut self, wants: &[(TopicPartition, i64, i64)]) {
        let mut lowest: HashMap<&TopicPartition, i64> = HashMap::new();
        for (tp, from, _) in wants {
            let l = lowest.entry(tp).or_insert(*from);
            *l = (*l).min(*from);
        }
        self.failed
            .retain(|(tp, _), t| lowest.contains_key(tp) && t.elapsed() < RETRY_AFTER);
        self.by_tp.retain(|tp, k| match lowest.get(tp) {
            Some(l) => {
                k.retain(|o, _| o >= l);
                !k.is_empty()
            }
            None => false,
        });
    }

    #[cfg(test)]
    /// Cached answers (for tests and the cost of a cycle).
    pub(crate) fn len(&self) -> usize {
        self.by_tp.values().map(BTreeMap::len).sum()
    }
}

/// The time lag of `want` at `now_ms` (pure): `None` when unknown, 0 when nothing waits, never
/// negative (a producer's clock ahead of ours).
pub(crate) fn time_lag_ms(
    peeks: &Peeks,
    tp: &TopicPartition,
    want: Want,
    now_ms: i64,
) -> Option<i64> {
    match want {
        Want::Unknown => None,
        Want::Nothing => Some(0),
        Want::From { from, end } => match peeks.resolve(tp, from, end) {
            Resolved::Nothing => Some(0),
            Resolved::At(ts) => Some(now_ms.saturating_sub(ts).max(0)),
            Resolved::Need(_) => None,
        },
    }
}

/// Requests of one round: per leader, the partitions batched in one Fetch (one offset each)
/// and those asked alone (pure).
type Round = BTreeMap<i32, (BTreeMap<TopicPartition, i64>, Vec<(TopicPartition, i64)>)>;

fn plan_round(
    needs: &BTreeSet<(TopicPartition, i64)>,
    alone: &BTreeSet<(TopicPartition, i64)>,
    leader: impl Fn(&TopicPartition) -> Option<i32>,
) -> Round {
    let mut round = Round::new();
    for (tp, at) in needs {
        let Some(l) = leader(tp) else { continue };
        let (batched, single) = round.entry(l).or_default();
        if alone.contains(&(tp.clone(), *at)) {
            if single.len() < MAX_ALONE {
                single.push((tp.clone(), *at));
            }
        } else {
            // A Fetch names a partition once: another group's offset waits for the next round.
            batched.entry(tp.clone()).or_insert(*at);
        }
    }
    round
}

/// Fills `peeks` for `wants` ((partition, from, end) of [`Want::From`]s): up to [`MAX_ROUNDS`]
/// rounds of one Fetch per leader (plus one per cut-short partition), then forgets what no want
/// can reach. Failures leave the time lag unknown this cycle; nothing else depends on it.
pub(crate) async fn look(
    cluster: &Cluster,
    peeks: &mut Peeks,
    wants: &[(TopicPartition, i64, i64)],
    read_committed: bool,
) {
    peeks.retain(wants);
    let opts = FetchOptions {
        max_wait: Duration::ZERO,
        partition_max_bytes: PEEK_BYTES,
        max_bytes: PEEK_BYTES.saturating_mul(64),
        read_committed,
        lane: Lane::Peek,
    };
    let mut alone: BTreeSet<(TopicPartition, i64)> = BTreeSet::new();
    for _ in 0..MAX_ROUNDS {
        let needs: BTreeSet<(TopicPartition, i64)> = wants
            .iter()
            .filter_map(|(tp, from, end)| match peeks.resolve(tp, *from, *end) {
                Resolved::Need(at) => Some((tp.clone(), at)),
                _ => None,
            })
            .filter(|k| !peeks.failed.contains_key(k))
            .collect();
        if needs.is_empty() {
            return;
        }
        let md = cluster.metadata();
        let round = plan_round(&needs, &alone, |tp| md.leader(&tp.topic, tp.partition));
        let mut calls = Vec::new();
        for (leader, (batched, single)) in round {
            if !batched.is_empty() {
                calls.push((leader, batched));
            }
            calls.extend(
                single
                    .into_iter()
                    .map(|(tp, at)| (leader, BTreeMap::from([(tp, at)]))),
            );
        }
        if calls.is_empty() {
            return;
        }
        let answers = join_all(
            calls
                .iter()
                .map(|(leader, positions)| fetch(cluster, *leader, positions, opts)),
        )
        .await;
        let mut learned = false;
        for ((leader, positions), answer) in calls.iter().zip(answers) {
            let parts = match answer {
                Ok(parts) => parts,
                Err(e) => {
                    tracing::warn!(leader = *leader, partitions = positions.len(), error = %e, retry_in = ?RETRY_AFTER, "time-lag look failed; those time lags stay unknown until it is asked again");
                    let now = Instant::now();
                    peeks
                        .failed
                        .extend(positions.iter().map(|(tp, at)| ((tp.clone(), *at), now)));
                    continue;
                }
            };
            for (tp, p) in parts {
                let Some(at) = positions.get(&tp).copied() else {
                    continue;
                };
                match peek(&p, at, read_committed) {
                    Some(found) => {
                        peeks.insert(tp, at, found);
                        learned = true;
                    }
                    None if p.error_code == 0 && positions.len() > 1 => {
                        // Cut short behind other partitions: alone, the whole batch comes back.
                        alone.insert((tp, at));
                        learned = true;
                    }
                    None => {
                        tracing::debug!(partition = %tp, offset = at, error = p.error_code, "time-lag look found no complete batch")
                    }
                }
            }
        }
        if !learned {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testutil::{fetch_answer as answer, txn_batch as batch};

    use crate::lag::NoCommit;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn ends(log_start: i64, high_watermark: i64, last_stable: i64) -> Ends {
        Ends {
            log_start,
            high_watermark,
            last_stable,
        }
    }

    #[test]
    fn wanted_follows_the_policy() {
        let e = ends(10, 30, 25);
        let rc = Policy::new(true, NoCommit::Earliest);
        let ru = Policy::new(false, NoCommit::Earliest);
        let latest = Policy::new(true, NoCommit::Latest);
        let from = |from, end| Want::From { from, end };
        type Case<'a> = (&'a str, Policy, Option<Ends>, Commit, bool, Want);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("committed", rc, Some(e), Commit::At(12), false, from(12, 25)),
            ("uncommitted end under read_uncommitted", ru, Some(e), Commit::At(12), false, from(12, 30)),
            ("caught up", rc, Some(e), Commit::At(25), false, Want::Nothing),
            ("only an open transaction left", rc, Some(e), Commit::At(26), false, Want::Nothing),
            ("gap with nothing visible", rc, Some(e), Commit::At(20), true, Want::Nothing),
            ("no commit, earliest", rc, Some(e), Commit::None, false, from(10, 25)),
            ("no commit, latest", latest, Some(e), Commit::None, false, Want::Nothing),
            ("commit below the log start", rc, Some(e), Commit::At(3), false, from(10, 25)),
            ("commit below the log start, latest", latest, Some(e), Commit::At(3), false, Want::Nothing),
            ("commits unreadable", rc, Some(e), Commit::Unknown, false, Want::Unknown),
            ("ends unreadable", rc, None, Commit::At(12), false, Want::Unknown),
            ("empty log", rc, Some(ends(0, 0, 0)), Commit::None, false, Want::Nothing),
        ];
        for (name, policy, e, commit, nothing, want) in cases {
            assert_eq!(
                wanted(policy, e.as_ref(), *commit, *nothing),
                *want,
                "{name}"
            );
        }
    }

    #[test]
    fn resolve_and_time_lag() {
        let mut k = Peeks::default();
        k.insert(tp(0), 5, Peek::Skip { next: 7 });
        k.insert(tp(0), 7, Peek::Skip { next: 9 });
        k.insert(
            tp(0),
            9,
            Peek::Record {
                offset: 10,
                timestamp: 1_000,
            },
        );
        k.insert(
            tp(1),
            0,
            Peek::Record {
                offset: 0,
                timestamp: 5_000,
            },
        );
        k.insert(
            tp(2),
            0,
            Peek::Record {
                offset: 0,
                timestamp: -1,
            },
        );
        type Case<'a> = (&'a str, i32, i64, i64, Resolved, Option<i64>);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("through two skips", 0, 5, 20, Resolved::At(1_000), Some(9_000)),
            ("the record is past the end", 0, 5, 10, Resolved::Nothing, Some(0)),
            ("skips reach the end", 0, 5, 9, Resolved::Nothing, Some(0)),
            ("not looked at yet", 0, 6, 20, Resolved::Need(6), None),
            ("a skip leads to an unknown offset", 1, 0, 3, Resolved::At(5_000), Some(5_000)),
            ("from at the end", 1, 3, 3, Resolved::Nothing, Some(0)),
            ("no timestamp (v0 record): no age", 2, 0, 3, Resolved::Nothing, Some(0)),
            ("unknown partition", 3, 0, 3, Resolved::Need(0), None),
        ];
        for (name, p, from, end, resolved, lag) in cases {
            assert_eq!(k.resolve(&tp(*p), *from, *end), *resolved, "{name}");
            let want = Want::From {
                from: *from,
                end: *end,
            };
            assert_eq!(time_lag_ms(&k, &tp(*p), want, 10_000), *lag, "{name}");
        }
        // A producer clock ahead of ours: 0, not negative.
        assert_eq!(
            time_lag_ms(&k, &tp(1), Want::From { from: 0, end: 3 }, 4_000),
            Some(0)
        );
        assert_eq!(time_lag_ms(&k, &tp(1), Want::Nothing, 4_000), Some(0));
        assert_eq!(time_lag_ms(&k, &tp(1), Want::Unknown, 4_000), None);
    }

    #[test]
    fn retain_keeps_what_wants_reach() {
        let mut k = Peeks::default();
        for o in [1, 5, 9] {
            k.insert(tp(0), o, Peek::Skip { next: o + 1 });
        }
        k.insert(tp(1), 0, Peek::Skip { next: 1 });
        k.retain(&[(tp(0), 7, 20), (tp(0), 5, 20)]);
        assert_eq!(k.resolve(&tp(0), 5, 20), Resolved::Need(6));
        assert_eq!(k.resolve(&tp(0), 1, 20), Resolved::Need(1));
        assert_eq!(k.resolve(&tp(1), 0, 20), Resolved::Need(0));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn rounds_batch_per_leader_and_ask_cut_short_partitions_alone() {
        let needs = BTreeSet::from([(tp(0), 4), (tp(0), 9), (tp(1), 0), (tp(2), 3), (tp(3), 1)]);
        let alone = BTreeSet::from([(tp(2), 3)]);
        let leader = |t: &TopicPartition| (t.partition != 3).then_some(t.partition % 2);
        let r = plan_round(&needs, &alone, leader);
        // Partition 0 is named once (the other offset waits), 2 alone, 3 has no leader.
        assert_eq!(r[&0].0, BTreeMap::from([(tp(0), 4)]));
        assert_eq!(r[&0].1, vec![(tp(2), 3)]);
        assert_eq!(r[&1].0, BTreeMap::from([(tp(1), 0)]));
        assert!(r[&1].1.is_empty());
        assert_eq!(r.len(), 2);
    }

    /// `batch` with the LogAppendTime attribute set and max timestamp `max` (CRC recomputed).
    fn log_append(mut b: Vec<u8>, max: i64) -> Vec<u8> {
        let attributes = i16::from_be_bytes([b[21], b[22]]) | (1 << 3);
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        b[35..43].copy_from_slice(&max.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn peek_finds_the_first_visible_record() {
        // 0-2 plain at 1000.., 3-4 aborted txn of producer 8 at 5000.., ABORT marker at 5, 6-7 a
        // committed txn of producer 9 at 7000.., COMMIT marker at 8, 9 plain at 9000.
        let plain = batch(0, 3, -1, None, 1_000);
        let aborted = batch(3, 2, 8, None, 5_000);
        let abort = batch(5, 1, 8, Some(false), 6_000);
        let committed = batch(6, 2, 9, None, 7_000);
        let commit = batch(8, 1, 9, Some(true), 8_000);
        let last = batch(9, 1, -1, None, 9_000);
        let all = [
            plain.clone(),
            aborted.clone(),
            abort.clone(),
            committed,
            commit.clone(),
            last.clone(),
        ];
        let rec = |offset, timestamp| Some(Peek::Record { offset, timestamp });
        let mut cut = last.clone();
        cut.truncate(30);
        #[rustfmt::skip]
        let cases: &[(&str, FetchPartition, i64, bool, Option<Peek>)] = &[
            ("the record at the commit", answer(&all, &[(8, 3)]), 0, true, rec(0, 1_000)),
            ("mid-batch: the record's own timestamp", answer(&all, &[(8, 3)]), 2, true, rec(2, 1_002)),
            ("aborted records and their marker skipped", answer(&all, &[(8, 3)]), 3, true, rec(6, 7_000)),
            ("…read_uncommitted sees them", answer(&all, &[]), 3, false, rec(3, 5_000)),
            ("a COMMIT marker skipped", answer(&all, &[(8, 3)]), 8, true, rec(9, 9_000)),
            ("only a marker: look on after it", answer(std::slice::from_ref(&commit), &[]), 8, true, Some(Peek::Skip { next: 9 })),
            ("only aborted records", answer(&[aborted, abort], &[(8, 3)]), 3, true, Some(Peek::Skip { next: 6 })),
            ("LogAppendTime: the batch's max timestamp", answer(&[log_append(last, 42_000)], &[]), 9, true, rec(9, 42_000)),
            ("cut short", answer(&[cut], &[]), 9, true, None),
            ("nothing", FetchPartition::default(), 9, true, None),
            ("an error", FetchPartition { error_code: 1, ..answer(&[plain], &[]) }, 0, true, None),
        ];
        for (name, p, from, rc, want) in cases {
            assert_eq!(peek(p, *from, *rc), *want, "{name}");
        }
    }
}
