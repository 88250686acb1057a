//! Sealed batches on their way to the broker: sequence numbers, what may be in flight, and what
//! each answer means. Pure (time passed in); `sender.rs` moves bytes.
//!
//! The idempotent producer's contract with the broker: per partition, batches carry
//! consecutive sequence numbers under one producer id and epoch; the broker writes a batch only
//! if it continues the sequence, and answers a batch it already wrote (a retry after a lost
//! answer) as a duplicate instead of writing it twice. So:
//! - a batch keeps its sequence numbers through every retry, and batches of a partition go out
//!   in sequence order, at most `max_in_flight` (≤ 5, what the broker remembers) at a time;
//! - after a failure the partition goes "careful": one batch in flight until the first
//!   unacknowledged one is written, so the order on the wire is the sequence order again;
//! - an out-of-order answer while an earlier batch is pending is a consequence, not a fault;
//! - a batch that fails for good (too large, refused, past the delivery timeout) leaves a gap:
//!   once nothing of the partition is in flight, the batches after it are re-stamped to close
//!   it, so they are still written;
//! - when the broker no longer knows the producer id, the producer gets a new one and every
//!   pending batch is re-stamped from sequence 0 (the only path that may write a batch twice:
//!   one whose answer was lost before the broker forgot us).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::accumulator::Full;
use super::reaction::{reaction, Reaction};
use crate::offsets::TopicPartition;
use crate::protocol::error::error_name;
use crate::protocol::records::encode::{restamp, ProducerStamp};
use crate::protocol::records::Compression;
use crate::retry::Backoff;

/// The producer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub producer_id: i64,
    pub epoch: i16,
}

/// How batches travel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub compression: Compression,
    pub max_in_flight: usize,
    pub backoff: Backoff,
    pub delivery_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    InFlight,
    /// Written at this base offset (-1: a duplicate, offset unknown).
    Done(i64),
}

#[derive(Debug)]
struct Batch {
    id: u64,
    base_sequence: i32,
    count: i32,
    bytes: Bytes,
    first_ticket: u64,
    deadline: Instant,
    state: State,
    attempts: u32,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Part {
    /// Batches not yet reported, in sequence order.
    batches: VecDeque<Batch>,
    next_sequence: i32,
    /// The sequence after the last batch reported written: what the broker expects after it.
    acked: i32,
    /// No send before this (back-off after a failure).
    retry_at: Option<Instant>,
    /// One in flight until the front is written.
    careful: bool,
    /// A batch failed for good: re-stamp the ones after it once nothing is in flight.
    gap: bool,
}

impl Part {
    fn in_flight(&self) -> usize {
        self.batches
            .iter()
            .filter(|b| b.state == State::InFlight)
            .count()
    }
}

/// A batch written: where, how many records, and which tickets they had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub tp: TopicPartition,
    /// -1 when the broker answered a retry as a duplicate (written earlier, offset not told).
    pub base_offset: i64,
    pub records: u32,
    pub first_ticket: u64,
}

/// A batch that will not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lost {
    pub tp: TopicPartition,
    pub records: u32,
    pub first_ticket: u64,
    pub error: String,
}

/// One batch of a request, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The partition's answer in the Produce response.
    Partition {
        error_code: i16,
        base_offset: i64,
        message: Option<String>,
    },
    /// No answer: the request failed as a whole (connection, timeout); it may have been written.
    Transport(String),
}

/// What the sender must do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Effect {
    pub refresh_metadata: bool,
}

/// A batch to put in a request.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub tp: TopicPartition,
    pub id: u64,
    pub bytes: Bytes,
}

/// Every partition's batches.
#[derive(Debug)]
pub(crate) struct Pipeline {
    parts: BTreeMap<TopicPartition, Part>,
    identity: Identity,
    settings: Settings,
    next_id: u64,
    /// A new producer id is needed before anything more is sent.
    reset_needed: bool,
    written: Vec<Written>,
    lost: Vec<Lost>,
    buffered: usize,
}

impl Pipeline {
    pub(crate) fn new(identity: Identity, settings: Settings) -> Self {
        Pipeline {
            parts: BTreeMap::new(),
            identity,
            settings,
            next_id: 0,
            reset_needed: false,
            written: Vec::new(),
            lost: Vec::new(),
            buffered: 0,
        }
    }

    /// Bytes of batches not yet written or lost.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Nothing left to send or to wait for.
    pub(crate) fn is_idle(&self) -> bool {
        self.parts.values().all(|p| p.batches.is_empty())
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.parts.values().map(Part::in_flight).sum()
    }

    /// Topics with batches pending.
    pub(crate) fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, p)| !p.batches.is_empty())
            .map(|(tp, _)| tp.topic.to_string())
            .collect();
        t.dedup();
        t
    }

    pub(crate) fn reset_needed(&self) -> bool {
        self.reset_needed
    }

    /// Stamps and encodes a sealed batch (compression happens here).
    pub(crate) fn push(&mut self, full: Full, now: Instant) {
        let part = self.parts.entry(full.tp.clone()).or_default();
        let count = full.builder.count();
        let stamp = ProducerStamp {
            producer_id: self.identity.producer_id,
            producer_epoch: self.identity.epoch,
            base_sequence: part.next_sequence,
        };
        match full.builder.finish(self.settings.compression, stamp) {
            Ok(bytes) => {
                part.next_sequence = next_sequence(part.next_sequence, count);
                self.buffered += bytes.len();
                part.batches.push_back(Batch {
                    id: self.next_id,
                    base_sequence: stamp.base_sequence,
                    count,
                    bytes,
                    first_ticket: full.first_ticket,
                    deadline: now + self.settings.delivery_timeout,
                    state: State::Ready,
                    attempts: 0,
                    last_error: None,
                });
                self.next_id += 1;
            }
            Err(e) => self.lost.push(Lost {
                tp: full.tp,
                records: count.max(0) as u32,
                first_ticket: full.first_ticket,
                error: e,
            }),
        }
    }

    /// At most one batch per partition that may go out now (`allow` says whether the
    /// partition's leader can take one more request); each is marked in flight.
    pub(crate) fn sendable(
        &mut self,
        now: Instant,
        mut allow: impl FnMut(&TopicPartition) -> bool,
    ) -> Vec<Outgoing> {
        self.expire(now);
        if self.reset_needed {
            return Vec::new();
        }
        let max = self.settings.max_in_flight.max(1);
        let mut out = Vec::new();
        for (tp, part) in &mut self.parts {
            if part.gap || part.retry_at.is_some_and(|t| now < t) {
                continue;
            }
            let in_flight = part.in_flight();
            if in_flight >= if part.careful { 1 } else { max } {
                continue;
            }
            let Some(b) = part.batches.iter_mut().find(|b| b.state == State::Ready) else {
                continue;
            };
            if !allow(tp) {
                continue;
            }
            b.state = State::InFlight;
            out.push(Outgoing {
                tp: tp.clone(),
                id: b.id,
                bytes: b.bytes.clone(),
            });
        }
        out
    }

    /// The earliest moment something may change without an answer: a back-off or a delivery
    /// deadline.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.parts
            .values()
            .flat_map(|p| {
                p.retry_at.into_iter().chain(
                    p.batches
                        .iter()
                        .filter(|b| b.state == State::Ready)
                        .map(|b| b.deadline),
                )
            })
            .min()
    }

    /// The answer for batch `id` of `tp`.
    pub(crate) fn answer(
        &mut self,
        tp: &TopicPartition,
        id: u64,
        answer: Answer,
        now: Instant,
    ) -> Effect {
        let backoff = self.settings.backoff;
        let Some(part) = self.parts.get_mut(tp) else {
            return Effect::default();
        };
        let Some(i) = part.batches.iter().position(|b| b.id == id) else {
            return Effect::default();
        };
        let (error_code, base_offset, message) = match answer {
            Answer::Partition {
                error_code,
                base_offset,
                message,
            } => (error_code, base_offset, message),
            Answer::Transport(e) => {
                retry(part, i, e, now, &backoff);
                return Effect {
                    refresh_metadata: true,
                };
            }
        };
        let why = || match &message {
            Some(m) => format!("{} ({m})", error_name(error_code)),
            None => error_name(error_code),
        };
        let mut effect = Effect::default();
        match reaction(error_code) {
            Reaction::Written => part.batches[i].state = State::Done(base_offset),
            Reaction::Duplicate => part.batches[i].state = State::Done(-1),
            Reaction::Retry { refresh } => {
                retry(part, i, why(), now, &backoff);
                effect.refresh_metadata = refresh;
            }
            Reaction::OutOfOrder => {
                let earlier_pending = part
                    .batches
                    .iter()
                    .take(i)
                    .any(|b| !matches!(b.state, State::Done(_)));
                if earlier_pending || part.gap {
                    // It will be written after the batch before it: no attempt counted.
                    part.batches[i].state = State::Ready;
                    part.careful = true;
                } else {
                    part.batches[i].state = State::Ready;
                    part.batches[i].last_error = Some(why());
                    self.reset_needed = true;
                }
            }
            Reaction::UnknownProducer => {
                part.batches[i].state = State::Ready;
                part.batches[i].last_error = Some(why());
                self.reset_needed = true;
            }
            Reaction::Fail => {
                let b = part.batches.remove(i).expect("index found above");
                self.buffered -= b.bytes.len();
                part.gap = true;
                part.careful = true;
                self.lost.push(Lost {
                    tp: tp.clone(),
                    records: b.count.max(0) as u32,
                    first_ticket: b.first_ticket,
                    error: why(),
                });
            }
        }
        self.settle(tp);
        effect
    }

    /// Reports written batches from the front, and closes a gap once nothing is in flight.
    fn settle(&mut self, tp: &TopicPartition) {
        let Some(part) = self.parts.get_mut(tp) else {
            return;
        };
        while let Some(State::Done(offset)) = part.batches.front().map(|b| b.state) {
            let b = part.batches.pop_front().expect("front exists");
            self.buffered -= b.bytes.len();
            part.acked = next_sequence(b.base_sequence, b.count);
            part.careful = false;
            part.retry_at = None;
            self.written.push(Written {
                tp: tp.clone(),
                base_offset: offset,
                records: b.count.max(0) as u32,
                first_ticket: b.first_ticket,
            });
        }
        if part.gap && part.in_flight() == 0 {
            // Re-stamp so the sequence has no hole: walking from what the broker expects after
            // the last written batch, every batch must continue the one before it. Batches
            // before the failed one already do; the ones after it move down.
            part.next_sequence = restamp_from(part, self.identity, part.acked);
            part.gap = false;
        }
    }

    /// Ready batches past their delivery deadline fail for good.
    fn expire(&mut self, now: Instant) {
        let timeout = self.settings.delivery_timeout;
        let mut touched = Vec::new();
        for (tp, part) in &mut self.parts {
            let mut i = 0;
            while i < part.batches.len() {
                let b = &part.batches[i];
                if b.state == State::Ready && now >= b.deadline {
                    let b = part.batches.remove(i).expect("index in range");
                    self.buffered -= b.bytes.len();
                    part.gap = true;
                    part.careful = true;
                    self.lost.push(Lost {
                        tp: tp.clone(),
                        records: b.count.max(0) as u32,
                        first_ticket: b.first_ticket,
                        error: format!(
                            "not acknowledged within the delivery timeout of {} s ({} attempts; last error: {})",
                            timeout.as_secs(),
                            b.attempts,
                            b.last_error.as_deref().unwrap_or("none")
                        ),
                    });
                    touched.push(tp.clone());
                } else {
                    i += 1;
                }
            }
        }
        for tp in touched {
            self.settle(&tp);
        }
    }

    /// A new producer identity: once nothing is in flight, every pending batch is re-stamped
    /// from sequence 0 of each partition.
    pub(crate) fn reset(&mut self, identity: Identity) {
        self.identity = identity;
        self.reset_needed = false;
        for (tp, part) in self.parts.iter_mut() {
            // Written under the old identity (a duplicate behind a pending batch): report them
            // now, they take no sequence numbers of the new one.
            let mut pending = VecDeque::new();
            for b in part.batches.drain(..) {
                match b.state {
                    State::Done(offset) => {
                        self.buffered -= b.bytes.len();
                        self.written.push(Written {
                            tp: tp.clone(),
                            base_offset: offset,
                            records: b.count.max(0) as u32,
                            first_ticket: b.first_ticket,
                        });
                    }
                    _ => pending.push_back(b),
                }
            }
            part.batches = pending;
            for b in part.batches.iter_mut() {
                b.state = State::Ready;
                b.base_sequence = -1; // forces the re-stamp below
            }
            part.next_sequence = restamp_from(part, identity, 0);
            part.acked = 0;
            part.careful = true;
            part.gap = false;
        }
    }

    /// Batches written and lost since the last call.
    pub(crate) fn take_outcomes(&mut self) -> (Vec<Written>, Vec<Lost>) {
        (
            std::mem::take(&mut self.written),
            std::mem::take(&mut self.lost),
        )
    }
}

/// Sequence numbers wrap at `i32::MAX` (the broker does the same).
fn next_sequence(seq: i32, count: i32) -> i32 {
    ((i64::from(seq) + i64::from(count.max(0))) % (i64::from(i32::MAX) + 1)) as i32
}

/// Gives `part`'s batches consecutive sequence numbers from `seq` under `identity`, re-encoding
/// only those whose number changes; returns the sequence after them.
fn restamp_from(part: &mut Part, identity: Identity, mut seq: i32) -> i32 {
    for b in part.batches.iter_mut() {
        if b.base_sequence != seq {
            b.bytes = restamp(
                &b.bytes,
                ProducerStamp {
                    producer_id: identity.producer_id,
                    producer_epoch: identity.epoch,
                    base_sequence: seq,
                },
            );
            b.base_sequence = seq;
        }
        seq = next_sequence(seq, b.count);
    }
    seq
}

fn retry(part: &mut Part, i: usize, error: String, now: Instant, backoff: &Backoff) {
    let b = &mut part.batches[i];
    b.state = State::Ready;
    b.attempts = b.attempts.saturating_add(1);
    b.last_error = Some(error);
    let delay = backoff.delay_random(b.attempts).unwrap_or(backoff.max);
    part.retry_at = Some(now + delay);
    part.careful = true;
}

#[cfg(test)]
mod tests;
