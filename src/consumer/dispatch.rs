//! Handing fetched records to the handler, and carrying out the failure policy.
//!
//! The fetch loop owns ordering and commits; this file owns what happens between "a chunk of
//! records arrived" and "these offsets are done". A chunk is cut into batches of at most
//! `batch_size` records; each batch goes to the handler; a failure goes to
//! [`FailurePolicy::decide`] (pure, in `failure.rs`) and its decision is carried out here:
//! retry after a back-off, split the batch in halves (bisect), isolate the record the handler
//! named, or — once a record is exhausted — dead-letter or skip it. Work is a stack of index
//! ranges processed first-half-first, so the handled position only ever moves forward over
//! contiguous offsets: at-least-once is preserved whatever the policy.
//!
//! A batch the decoder refused arrives as [`Broken`] after the chunk's records; it is one
//! failed unit: retried by fetching it again, or exhausted like a record.

use std::ops::Range;
use std::time::Duration;

use super::dead_letter::{self, DeadLetter};
use super::error::ConsumerError;
use super::failure::{Attempts, Decision, Exhausted, Failed, FailurePolicy, FailureStats};
use super::fetcher::{Broken, Chunk};
use super::handler::{log::now_ms, Failure, Handler};
use super::message::Message;
use super::progress::Progress;
use crate::offsets::TopicPartition;

/// What the session does after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next<L> {
    /// Take the next chunk.
    Continue,
    /// The generation ends (stop, rebalance), with the session's reason.
    Leave(L),
    /// Fetch again from the handled positions (a broken batch is to be retried).
    Refetch,
}

/// What the dispatcher needs from the session around it: the positions, and the waits that
/// must give way to a stop or a rebalance.
#[allow(async_fn_in_trait)] // crate-internal; implemented once, by the session in run.rs
pub(crate) trait Control {
    /// How the session says "the generation ends".
    type Leave;
    fn progress(&mut self) -> &mut Progress;
    /// Between batches: a stop or rebalance ends the chunk; commits happen on their interval.
    async fn between_batches(&mut self) -> Result<Option<Self::Leave>, ConsumerError>;
    /// Commits what was handled now.
    async fn commit(&mut self) -> Result<Option<Self::Leave>, ConsumerError>;
    /// Waits `delay` unless the generation ends first.
    async fn pause(&mut self, delay: Duration) -> Option<Self::Leave>;
}

/// The handler plus everything the failure policy remembers between chunks.
pub(crate) struct Dispatcher {
    handler: Handler,
    policy: FailurePolicy,
    batch_size: usize,
    attempts: Attempts,
    stats: FailureStats,
    /// Where exhausted records go with `--dead-letter-topic`.
    dead_letter: Option<DeadLetter>,
}

type Step<L> = Result<Option<Next<L>>, ConsumerError>;

impl Dispatcher {
    pub(crate) fn new(handler: Handler, policy: FailurePolicy, batch_size: usize) -> Self {
        Dispatcher {
            handler,
            policy,
            batch_size: batch_size.max(1),
            attempts: Attempts::default(),
            stats: FailureStats::default(),
            dead_letter: None,
        }
    }

    /// Where the dead-letter copies go (required by a `DeadLetter` policy).
    pub(crate) fn with_dead_letter(mut self, d: DeadLetter) -> Self {
        self.dead_letter = Some(d);
        self
    }

    pub(crate) fn stats(&self) -> &FailureStats {
        &self.stats
    }

    /// Handles one chunk. Records already handled (a re-fetched overlap) are skipped; a chunk
    /// that starts past the handled position, or of a partition no longer ours, is dropped
    /// (skipping records is worse than fetching again).
    pub(crate) async fn handle<C: Control>(
        &mut self,
        chunk: Chunk,
        ctl: &mut C,
    ) -> Result<Next<C::Leave>, ConsumerError> {
        if chunk.reset {
            ctl.progress().reset_to(&chunk.tp, chunk.next_offset);
            return Ok(Next::Continue);
        }
        let Some(pos) = ctl.progress().position(&chunk.tp) else {
            return Ok(Next::Continue);
        };
        if chunk.first_offset > pos {
            tracing::warn!(partition = %chunk.tp, position = pos, chunk_start = chunk.first_offset, "dropping a chunk that starts past the handled position");
            return Ok(Next::Continue);
        }
        let skip = chunk.messages.iter().take_while(|m| m.offset < pos).count();
        let records = &chunk.messages[skip..];
        let mut start = 0;
        while start < records.len() {
            let end = (start + self.batch_size).min(records.len());
            if let Some(next) = self.batch(&chunk.tp, &records[start..end], ctl).await? {
                return Ok(next);
            }
            start = end;
            if start < records.len() || chunk.broken.is_some() {
                if let Some(leave) = ctl.between_batches().await? {
                    return Ok(Next::Leave(leave));
                }
            }
        }
        if let Some(broken) = &chunk.broken {
            let pos = ctl.progress().position(&chunk.tp).unwrap_or(pos);
            if broken.last >= pos {
                if let Some(next) = self.broken(&chunk.tp, broken, ctl).await? {
                    return Ok(next);
                }
            }
        }
        ctl.progress().handled(&chunk.tp, chunk.next_offset);
        self.attempts.resolved(&chunk.tp, chunk.next_offset);
        Ok(Next::Continue)
    }

    /// One batch, with the failure policy. `Some` ends the chunk early.
    async fn batch<C: Control>(
        &mut self,
        tp: &TopicPartition,
        batch: &[Message],
        ctl: &mut C,
    ) -> Step<C::Leave> {
        let mut work: Vec<Range<usize>> = Vec::new();
        work.push(0..batch.len());
        while let Some(r) = work.pop() {
            if r.is_empty() {
                continue;
            }
            // Records past their age skip the handler; the ones before them go first.
            if self.policy.max_record_age.is_some() {
                let now = now_ms();
                if let Some(i) = r
                    .clone()
                    .find(|&i| self.policy.too_old(age(&batch[i], now)))
                {
                    if i > r.start {
                        work.push(i..r.end);
                        work.push(r.start..i);
                    } else {
                        let m = &batch[i];
                        let why = Reason::too_old(age(m, now).unwrap_or_default());
                        if let Some(next) = self.exhaust(tp, m, 0, &why, ctl).await? {
                            return Ok(Some(next));
                        }
                        work.push(i + 1..r.end);
                    }
                    continue;
                }
            }
            let part = &batch[r.clone()];
            let failure = match self.handler.handle(part).await {
                Ok(()) => {
                    self.done(tp, part, ctl);
                    if !work.is_empty() {
                        if let Some(leave) = ctl.between_batches().await? {
                            return Ok(Some(Next::Leave(leave)));
                        }
                    }
                    continue;
                }
                Err(f) => f,
            };
            let done = failure.handled.min(part.len());
            if done > 0 {
                self.done(tp, &part[..done], ctl);
            }
            let rest = r.start + done..r.end;
            if let Some(next) = self
                .failed(tp, batch, rest, &failure, &mut work, ctl)
                .await?
            {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// `records` were handled.
    fn done<C: Control>(&mut self, tp: &TopicPartition, records: &[Message], ctl: &mut C) {
        let Some(last) = records.last() else { return };
        let next = last.offset.saturating_add(1);
        ctl.progress().handled(tp, next);
        self.attempts.resolved(tp, next);
        FailureStats::add(&mut self.stats.handled, &tp.topic, records.len() as u64);
    }

    /// The handler failed on `batch[rest]`: decide and carry it out (pushing what remains).
    async fn failed<C: Control>(
        &mut self,
        tp: &TopicPartition,
        batch: &[Message],
        rest: Range<usize>,
        failure: &Failure,
        work: &mut Vec<Range<usize>>,
        ctl: &mut C,
    ) -> Step<C::Leave> {
        let first = &batch[rest.start];
        // A failure counts against a record only when it is certainly that record's: it was
        // alone, or the handler named it. A failed batch is split first (or, by default,
        // retried as a whole, which counts for its back-off).
        let attempts = if rest.len() == 1 || failure.exact || !self.policy.can_exhaust() {
            self.attempts.failed(tp, first.offset)
        } else {
            self.attempts.get(tp, first.offset).saturating_add(1)
        };
        let f = Failed {
            records: rest.len(),
            first_is_the_failure: failure.exact,
            attempts,
            age: age(first, now_ms()),
        };
        match self.policy.decide(&f, crate::retry::jitter_unit()) {
            Decision::Retry { delay } => {
                FailureStats::add(&mut self.stats.retried, &tp.topic, rest.len() as u64);
                let attempts_left = self
                    .policy
                    .max_attempts
                    .map(|m| m.saturating_sub(attempts).to_string())
                    .unwrap_or_else(|| "unlimited".into());
                tracing::warn!(partition = %tp, offset = first.offset, records = rest.len(), attempt = attempts, attempts_left = %attempts_left, error = %failure.error, ?delay, "handler failed; nothing after this record is committed; retrying");
                work.push(rest);
                if let Some(leave) = ctl.commit().await? {
                    return Ok(Some(Next::Leave(leave)));
                }
                if let Some(leave) = ctl.pause(delay).await {
                    return Ok(Some(Next::Leave(leave)));
                }
            }
            Decision::Split => {
                let mid = rest.start + rest.len() / 2;
                tracing::info!(partition = %tp, offset = first.offset, records = rest.len(), error = %failure.error, "handler failed on a batch; splitting it in halves to find the failing records");
                work.push(mid..rest.end);
                work.push(rest.start..mid);
            }
            Decision::Isolate => {
                work.push(rest.start + 1..rest.end);
                work.push(rest.start..rest.start + 1);
            }
            Decision::Exhausted => {
                let why = Reason::handler(&failure.error, attempts);
                if let Some(next) = self.exhaust(tp, first, attempts, &why, ctl).await? {
                    work.clear();
                    return Ok(Some(next));
                }
                work.push(rest.start + 1..rest.end);
            }
        }
        Ok(None)
    }

    /// A batch that cannot be decoded: fetch it again, or exhaust it like a record.
    async fn broken<C: Control>(
        &mut self,
        tp: &TopicPartition,
        b: &Broken,
        ctl: &mut C,
    ) -> Step<C::Leave> {
        let attempts = self.attempts.failed(tp, b.first);
        let f = Failed {
            records: 1,
            first_is_the_failure: true,
            attempts,
            age: None,
        };
        match self.policy.decide(&f, crate::retry::jitter_unit()) {
            Decision::Exhausted => {
                let why = Reason::undecodable(b, attempts);
                let unit = Unit::Broken(b);
                if let Some(next) = self.exhaust_unit(tp, unit, attempts, &why, ctl).await? {
                    return Ok(Some(next));
                }
                Ok(None)
            }
            Decision::Retry { delay } => {
                FailureStats::add(&mut self.stats.retried, &tp.topic, 1);
                tracing::warn!(partition = %tp, first = b.first, last = b.last, attempt = attempts, error = %b.error, ?delay, "a record batch cannot be decoded; nothing after it is committed; fetching it again");
                if let Some(leave) = ctl.commit().await? {
                    return Ok(Some(Next::Leave(leave)));
                }
                if let Some(leave) = ctl.pause(delay).await {
                    return Ok(Some(Next::Leave(leave)));
                }
                Ok(Some(Next::Refetch))
            }
            // One unit: never split.
            Decision::Split | Decision::Isolate => Ok(Some(Next::Refetch)),
        }
    }

    async fn exhaust<C: Control>(
        &mut self,
        tp: &TopicPartition,
        m: &Message,
        attempts: u32,
        why: &Reason,
        ctl: &mut C,
    ) -> Step<C::Leave> {
        self.exhaust_unit(tp, Unit::Record(m), attempts, why, ctl)
            .await
    }

    /// The unit is done failing: dead-letter it (until the write is acknowledged) or skip it;
    /// then the position moves past it and is committed at once.
    async fn exhaust_unit<C: Control>(
        &mut self,
        tp: &TopicPartition,
        unit: Unit<'_>,
        attempts: u32,
        why: &Reason,
        ctl: &mut C,
    ) -> Step<C::Leave> {
        let (first, last) = unit.range();
        match &self.policy.exhausted {
            Exhausted::Block => {
                // `decide` never exhausts without somewhere to go; stay safe regardless.
                return Ok(Some(Next::Refetch));
            }
            Exhausted::Skip => {
                FailureStats::add(&mut self.stats.skipped, &tp.topic, 1);
                tracing::warn!(partition = %tp, topic = %tp.topic, first, last, attempts, reason = %why.message, skipped = FailureStats::total(&self.stats.skipped), "record skipped (--on-exhausted skip): committing past it");
            }
            Exhausted::DeadLetter(topic) => {
                let Some(dl) = self.dead_letter.as_mut() else {
                    return Err(ConsumerError::NoDeadLetterWriter(topic.clone()));
                };
                let copy = match unit {
                    Unit::Record(m) => {
                        dead_letter::record_copy(m, dl.group(), why, attempts, now_ms())
                    }
                    Unit::Broken(b) => {
                        dead_letter::broken_copy(tp, b, dl.group(), why, attempts, now_ms())
                    }
                };
                let landed = match dl.deliver(tp, &copy, (first, last), ctl).await? {
                    Ok(l) => l,
                    Err(leave) => return Ok(Some(Next::Leave(leave))),
                };
                FailureStats::add(&mut self.stats.dead_lettered, &tp.topic, 1);
                let at = landed
                    .offset
                    .map(|o| format!("{topic}-{}@{o}", landed.partition))
                    .unwrap_or_else(|| format!("{topic}-{}", landed.partition));
                tracing::warn!(partition = %tp, topic = %tp.topic, first, last, attempts, reason = %why.message, dead_letter = %at, dead_lettered = FailureStats::total(&self.stats.dead_lettered), "record dead-lettered: written to the dead-letter topic, committing past it");
            }
        }
        let next = last.saturating_add(1);
        ctl.progress().handled(tp, next);
        self.attempts.resolved(tp, next);
        if let Some(leave) = ctl.commit().await? {
            return Ok(Some(Next::Leave(leave)));
        }
        Ok(None)
    }
}

/// What is exhausted: a record, or a batch that could not be decoded.
#[derive(Clone, Copy)]
enum Unit<'a> {
    Record(&'a Message),
    Broken(&'a Broken),
}

impl Unit<'_> {
    fn range(&self) -> (i64, i64) {
        match self {
            Unit::Record(m) => (m.offset, m.offset),
            Unit::Broken(b) => (b.first, b.last),
        }
    }
}

/// How old a record is at `now_ms`; `None` without a timestamp.
fn age(m: &Message, now_ms: i64) -> Option<Duration> {
    (m.timestamp_ms >= 0)
        .then(|| Duration::from_millis(now_ms.saturating_sub(m.timestamp_ms).max(0) as u64))
}

/// Why a unit is exhausted, for the log and the dead-letter copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reason {
    /// Stable name of the failure kind (`kafka_dlt-exception-fqcn`).
    pub kind: &'static str,
    /// What happened, for people (`kafka_dlt-exception-message`).
    pub message: String,
}

impl Reason {
    pub(crate) fn handler(error: &super::handler::HandlerError, attempts: u32) -> Reason {
        Reason {
            kind: error.kind_name(),
            message: format!("{error} (failed {attempts} times)"),
        }
    }

    pub(crate) fn too_old(age: Duration) -> Reason {
        Reason {
            kind: "kafka-observer.RecordTooOld",
            message: format!(
                "the record is {} s old, older than --max-record-age",
                age.as_secs()
            ),
        }
    }

    pub(crate) fn undecodable(b: &Broken, attempts: u32) -> Reason {
        Reason {
            kind: "kafka-observer.UndecodableBatch",
            message: format!(
                "offsets {}..={} cannot be decoded: {} (fetched {attempts} times)",
                b.first, b.last, b.error
            ),
        }
    }
}

#[cfg(test)]
mod tests;
