//! The failure policy: what the consumer does with records its handler fails on.
//!
//! Why a policy at all: with plain block-and-retry one record that always fails stops its
//! partition for good, and the observer keeps paying for consumers that fail on it. The systems
//! users already trust answer that the same way (AWS Lambda's Kafka event source, Knative's
//! KafkaSource, Spring Kafka): bounded attempts, a maximum record age, splitting a failing batch
//! to find the records that fail, and a dead-letter topic. This file is only the decisions —
//! pure functions of the failure and the settings, table-tested; `dispatch.rs` carries them out.
//!
//! - Default (no `--max-attempts`, no dead-letter topic, no `--on-exhausted skip`): today's
//!   at-least-once behaviour, unchanged — the failing records are retried with back-off forever
//!   and nothing after them is committed. Nothing is ever skipped without an explicit opt-in.
//! - With an exhausted action (a dead-letter topic, or `--on-exhausted skip`): a failing batch
//!   of several records is split in halves (bisect; or, when the handler names the failing
//!   record, that record is isolated), so only records that fail *on their own* count attempts;
//!   such a record is retried with back-off until `max_attempts` failures or `max_record_age`,
//!   then dead-lettered or skipped. Records older than `max_record_age` skip the handler.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::offsets::TopicPartition;
use crate::retry::Backoff;

/// Attempts when a dead-letter topic is set and `--max-attempts` is not (as AWS Lambda does).
pub(crate) const DEFAULT_ATTEMPTS_WITH_DEAD_LETTER: u32 = 10;

/// Where a record goes once its attempts are exhausted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Exhausted {
    /// Nowhere: retry forever, commit nothing past it (the default).
    #[default]
    Block,
    /// Log it, count it, commit past it (`--on-exhausted skip`).
    Skip,
    /// Produce a copy to this topic, then commit past it (`--dead-letter-topic`).
    DeadLetter(String),
}

/// The failure settings of one consumer.
#[derive(Debug, Clone)]
pub(crate) struct FailurePolicy {
    /// Failures of one record on its own before it is exhausted; `None` = unlimited.
    pub max_attempts: Option<u32>,
    /// Records older than this go straight to the exhausted path.
    pub max_record_age: Option<Duration>,
    pub exhausted: Exhausted,
    /// Back-off between retries of the same records.
    pub backoff: Backoff,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            max_attempts: None,
            max_record_age: None,
            exhausted: Exhausted::Block,
            backoff: RETRY_BACKOFF,
        }
    }
}

/// 0.5 s, doubling, at most 30 s (with jitter in the upper half of each step), unbounded.
pub(crate) const RETRY_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(500),
    max: Duration::from_secs(30),
    retries: u32::MAX,
};

/// Why the settings do not make sense together (the caller names the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PolicyError {
    /// `--max-attempts` or `--max-record-age` without anywhere for exhausted records to go.
    NowhereToGo(&'static str),
    /// `--max-attempts 0`.
    ZeroAttempts,
}

impl FailurePolicy {
    /// The policy for these settings: `max_attempts` defaults to unlimited, or to
    /// [`DEFAULT_ATTEMPTS_WITH_DEAD_LETTER`] with a dead-letter topic.
    pub(crate) fn new(
        max_attempts: Option<u32>,
        max_record_age: Option<Duration>,
        exhausted: Exhausted,
    ) -> Result<FailurePolicy, PolicyError> {
        if max_attempts == Some(0) {
            return Err(PolicyError::ZeroAttempts);
        }
        if exhausted == Exhausted::Block {
            if max_attempts.is_some() {
                return Err(PolicyError::NowhereToGo("--max-attempts"));
            }
            if max_record_age.is_some() {
                return Err(PolicyError::NowhereToGo("--max-record-age"));
            }
        }
        let max_attempts = match (&exhausted, max_attempts) {
            (Exhausted::DeadLetter(_), None) => Some(DEFAULT_ATTEMPTS_WITH_DEAD_LETTER),
            (_, n) => n,
        };
        Ok(FailurePolicy {
            max_attempts,
            max_record_age,
            exhausted,
            backoff: RETRY_BACKOFF,
        })
    }

    /// Whether failing records can ever leave the partition's way (bisect, exhaust).
    pub(crate) fn can_exhaust(&self) -> bool {
        self.exhausted != Exhausted::Block
    }

    /// Whether a record with this age goes straight to the exhausted path.
    pub(crate) fn too_old(&self, age: Option<Duration>) -> bool {
        matches!((self.max_record_age, age), (Some(max), Some(age)) if age > max)
    }

    /// What to do after a handler call failed (pure; `unit` in [0, 1) is the jitter).
    pub(crate) fn decide(&self, f: &Failed, unit: f64) -> Decision {
        let retry = || Decision::Retry {
            delay: self
                .backoff
                .delay(f.attempts.max(1), unit)
                .unwrap_or(self.backoff.max),
        };
        if !self.can_exhaust() {
            return retry();
        }
        if f.records > 1 {
            return if f.first_is_the_failure {
                Decision::Isolate
            } else {
                Decision::Split
            };
        }
        if self.too_old(f.age) || self.max_attempts.is_some_and(|max| f.attempts >= max) {
            return Decision::Exhausted;
        }
        retry()
    }
}

/// One failed handler call, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed {
    /// Records in the failed call, from the first one not handled.
    pub records: usize,
    /// The handler said which record failed: the first of them (`--sink` posts one by one).
    pub first_is_the_failure: bool,
    /// Failed calls so far for exactly these records, this one included.
    pub attempts: u32,
    /// Age of the (single) record, when it has a timestamp.
    pub age: Option<Duration>,
}

/// What the dispatcher does next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Wait, then call the handler with the same records again.
    Retry { delay: Duration },
    /// Handle the first half, then the second (each may fail and split again).
    Split,
    /// Handle the first record alone, then the rest.
    Isolate,
    /// The record is done failing: dead-letter it or skip it.
    Exhausted,
}

/// Failed attempts per (partition, first offset) of what is being retried. Entries leave when
/// the partition's handled position passes them, so the map holds at most a few per partition.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    failed: BTreeMap<(TopicPartition, i64), u32>,
}

impl Attempts {
    /// Counts one more failure of the records starting at `offset`; returns the total.
    pub(crate) fn failed(&mut self, tp: &TopicPartition, offset: i64) -> u32 {
        let n = self.failed.entry((tp.clone(), offset)).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// Failures so far of the records starting at `offset`.
    pub(crate) fn get(&self, tp: &TopicPartition, offset: i64) -> u32 {
        self.failed.get(&(tp.clone(), offset)).copied().unwrap_or(0)
    }

    /// Everything of `tp` before `next` is resolved (handled, dead-lettered or skipped).
    pub(crate) fn resolved(&mut self, tp: &TopicPartition, next: i64) {
        self.failed.retain(|(t, o), _| t != tp || *o >= next);
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Counters of the failure path, by topic: what a consumer reports in its log (one line per
/// event, and a summary when it stops).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct FailureStats {
    pub handled: BTreeMap<String, u64>,
    pub retried: BTreeMap<String, u64>,
    pub dead_lettered: BTreeMap<String, u64>,
    pub skipped: BTreeMap<String, u64>,
}

impl FailureStats {
    pub(crate) fn add(map: &mut BTreeMap<String, u64>, topic: &str, n: u64) {
        if n == 0 {
            return;
        }
        match map.get_mut(topic) {
            Some(v) => *v = v.saturating_add(n),
            None => {
                map.insert(topic.to_string(), n);
            }
        }
    }

    /// `topic=count,…` for a log field; `-` when empty.
    pub(crate) fn by_topic(map: &BTreeMap<String, u64>) -> String {
        if map.is_empty() {
            return "-".into();
        }
        map.iter()
            .map(|(t, n)| format!("{t}={n}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub(crate) fn total(map: &BTreeMap<String, u64>) -> u64 {
        map.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dlt() -> Exhausted {
        Exhausted::DeadLetter("t.DLT".into())
    }

    #[test]
    fn settings_table() {
        type Case = (
            Option<u32>,
            Option<u64>,
            Exhausted,
            Result<Option<u32>, PolicyError>,
        );
        let cases: Vec<Case> = vec![
            (None, None, Exhausted::Block, Ok(None)),
            (None, None, dlt(), Ok(Some(10))),
            (Some(3), None, dlt(), Ok(Some(3))),
            (None, None, Exhausted::Skip, Ok(None)),
            (Some(1), Some(60), Exhausted::Skip, Ok(Some(1))),
            (
                Some(3),
                None,
                Exhausted::Block,
                Err(PolicyError::NowhereToGo("--max-attempts")),
            ),
            (
                None,
                Some(60),
                Exhausted::Block,
                Err(PolicyError::NowhereToGo("--max-record-age")),
            ),
            (Some(0), None, dlt(), Err(PolicyError::ZeroAttempts)),
        ];
        for (attempts, age, exhausted, want) in cases {
            let got = FailurePolicy::new(attempts, age.map(Duration::from_secs), exhausted.clone())
                .map(|p| p.max_attempts);
            assert_eq!(got, want, "{attempts:?} {age:?} {exhausted:?}");
        }
    }

    fn failed(records: usize, exact: bool, attempts: u32, age: u64) -> Failed {
        Failed {
            records,
            first_is_the_failure: exact,
            attempts,
            age: Some(Duration::from_secs(age)),
        }
    }

    #[test]
    fn decision_table() {
        let block = FailurePolicy::default();
        let three = FailurePolicy::new(Some(3), Some(Duration::from_secs(3600)), dlt()).unwrap();
        let skip = FailurePolicy::new(None, None, Exhausted::Skip).unwrap();
        let ms = |d: Decision| match d {
            Decision::Retry { delay } => Some(delay.as_millis()),
            _ => None,
        };
        // Default: the same records again, with back-off, forever; never split.
        assert_eq!(ms(block.decide(&failed(500, false, 1, 0), 1.0)), Some(500));
        assert_eq!(ms(block.decide(&failed(500, false, 2, 0), 1.0)), Some(1000));
        assert_eq!(
            ms(block.decide(&failed(1, false, 1_000, 9e9 as u64), 1.0)),
            Some(30_000)
        );
        assert_eq!(ms(block.decide(&failed(1, false, 7, 0), 0.0)), Some(15_000));
        // A policy: split, isolate, then retry a lone record up to its limit.
        assert_eq!(three.decide(&failed(2, false, 1, 0), 0.5), Decision::Split);
        assert_eq!(
            three.decide(&failed(40, true, 1, 0), 0.5),
            Decision::Isolate
        );
        assert_eq!(ms(three.decide(&failed(1, false, 1, 0), 1.0)), Some(500));
        assert_eq!(ms(three.decide(&failed(1, true, 2, 0), 1.0)), Some(1000));
        assert_eq!(
            three.decide(&failed(1, false, 3, 0), 0.5),
            Decision::Exhausted
        );
        assert_eq!(
            three.decide(&failed(1, false, 1, 3601), 0.5),
            Decision::Exhausted
        );
        // No timestamp: age never exhausts.
        let no_ts = Failed {
            age: None,
            ..failed(1, false, 1, 0)
        };
        assert!(matches!(three.decide(&no_ts, 0.5), Decision::Retry { .. }));
        // Skip without a limit: a lone record is retried forever, but batches still split.
        assert_eq!(skip.decide(&failed(9, false, 1, 0), 0.5), Decision::Split);
        assert!(matches!(
            skip.decide(&failed(1, false, 99, 0), 0.5),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn too_old_table() {
        let p = FailurePolicy::new(None, Some(Duration::from_secs(60)), Exhausted::Skip).unwrap();
        assert!(!p.too_old(None));
        assert!(!p.too_old(Some(Duration::from_secs(60))));
        assert!(p.too_old(Some(Duration::from_secs(61))));
        assert!(!FailurePolicy::default().too_old(Some(Duration::MAX)));
    }

    #[test]
    fn attempts_are_per_records_and_forgotten_once_passed() {
        let a = TopicPartition::new("t", 0);
        let b = TopicPartition::new("t", 1);
        let mut at = Attempts::default();
        assert_eq!(at.failed(&a, 5), 1);
        assert_eq!(at.failed(&a, 5), 2);
        assert_eq!(at.failed(&a, 9), 1);
        assert_eq!(at.failed(&b, 5), 1);
        assert_eq!(at.get(&a, 5), 2);
        at.resolved(&a, 6);
        assert_eq!((at.get(&a, 5), at.get(&a, 9), at.get(&b, 5)), (0, 1, 1));
        at.resolved(&a, 10);
        at.resolved(&b, 100);
        assert!(at.is_empty());
    }

    #[test]
    fn stats_by_topic() {
        let mut s = FailureStats::default();
        FailureStats::add(&mut s.retried, "b", 2);
        FailureStats::add(&mut s.retried, "a", 1);
        FailureStats::add(&mut s.retried, "b", 3);
        FailureStats::add(&mut s.skipped, "a", 0);
        assert_eq!(FailureStats::by_topic(&s.retried), "a=1,b=5");
        assert_eq!(FailureStats::by_topic(&s.skipped), "-");
        assert_eq!(FailureStats::total(&s.retried), 6);
    }
}
