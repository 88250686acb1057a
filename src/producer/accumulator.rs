//! Records waiting for a batch: one open batch per partition, sealed when full or when it has
//! waited `linger`.
//!
//! Pure bookkeeping (time is passed in): records are encoded into the open batch the moment
//! they arrive (`BatchBuilder`), so what waits is bytes, and sealing hands the builder to the
//! pipeline, which stamps sequence numbers and compresses.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::offsets::TopicPartition;
use crate::protocol::records::encode::{BatchBuilder, HeaderRef};

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// (name, value) in order; names may repeat and need not be UTF-8.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// Creation time, ms since the Unix epoch.
    pub timestamp: i64,
}

impl OutRecord {
    fn header_refs(&self) -> Vec<HeaderRef<'_>> {
        self.headers
            .iter()
            .map(|(k, v)| (&k[..], v.as_deref()))
            .collect()
    }
}

/// An open batch and when it was opened.
#[derive(Debug)]
struct Open {
    builder: BatchBuilder,
    opened: Instant,
    /// Tickets (producer-wide record numbers) of its records: `first..first + count`.
    first_ticket: u64,
}

/// A batch ready to be stamped and sent.
#[derive(Debug)]
pub(crate) struct Full {
    pub tp: TopicPartition,
    pub builder: BatchBuilder,
    pub first_ticket: u64,
}

/// Open batches by partition.
#[derive(Debug)]
pub(crate) struct Accumulator {
    open: BTreeMap<TopicPartition, Open>,
    batch_bytes: usize,
    linger: Duration,
    next_ticket: u64,
    /// Bytes of all open batches.
    buffered: usize,
}

impl Accumulator {
    pub(crate) fn new(batch_bytes: usize, linger: Duration) -> Self {
        Accumulator {
            open: BTreeMap::new(),
            batch_bytes: batch_bytes.max(1),
            linger,
            next_ticket: 0,
            buffered: 0,
        }
    }

    /// Bytes waiting in open batches.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Appends `r` to `tp`'s open batch and returns the batches this sealed: a record that would
    /// overflow a non-empty batch seals it first; a batch that reached the size is sealed at
    /// once (so a record larger than a whole batch gets a batch of its own).
    pub(crate) fn append(&mut self, tp: &TopicPartition, r: &OutRecord, now: Instant) -> Vec<Full> {
        let mut sealed = Vec::new();
        let headers = r.header_refs();
        let key = r.key.as_deref();
        let value = r.value.as_deref();
        if let Some(open) = self.open.get(tp) {
            let cost = open.builder.cost(r.timestamp, key, value, &headers);
            if open.builder.records_len() + cost > self.batch_bytes {
                sealed.extend(self.seal(tp));
            }
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let open = self.open.entry(tp.clone()).or_insert_with(|| Open {
            builder: BatchBuilder::new(),
            opened: now,
            first_ticket: ticket,
        });
        let before = open.builder.records_len();
        open.builder.push(r.timestamp, key, value, &headers);
        self.buffered += open.builder.records_len() - before;
        if open.builder.records_len() >= self.batch_bytes {
            sealed.extend(self.seal(tp));
        }
        sealed
    }

    fn seal(&mut self, tp: &TopicPartition) -> Option<Full> {
        let open = self.open.remove(tp)?;
        self.buffered -= open.builder.records_len();
        Some(Full {
            tp: tp.clone(),
            builder: open.builder,
            first_ticket: open.first_ticket,
        })
    }

    /// Batches that have waited `linger` by `now`.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<Full> {
        let due: Vec<TopicPartition> = self
            .open
            .iter()
            .filter(|(_, o)| now >= o.opened + self.linger)
            .map(|(tp, _)| tp.clone())
            .collect();
        due.iter().filter_map(|tp| self.seal(tp)).collect()
    }

    /// Every open batch (a flush).
    pub(crate) fn drain(&mut self) -> Vec<Full> {
        let all: Vec<TopicPartition> = self.open.keys().cloned().collect();
        all.iter().filter_map(|tp| self.seal(tp)).collect()
    }

    /// When the oldest open batch is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.open.values().map(|o| o.opened + self.linger).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(len: usize) -> OutRecord {
        OutRecord {
            value: Some(Bytes::from(vec![b'x'; len])),
            timestamp: 1_700_000_000_000,
            ..OutRecord::default()
        }
    }

    #[test]
    fn batches_seal_when_full_or_due() {
        let t0 = Instant::now();
        let a0 = TopicPartition::new("a", 0);
        let a1 = TopicPartition::new("a", 1);
        let mut acc = Accumulator::new(1000, Duration::from_millis(5));
        // ~110 bytes per record: the 10th would overflow, so 9 fit.
        let mut sealed = Vec::new();
        for _ in 0..9 {
            sealed.extend(acc.append(&a0, &rec(100), t0));
        }
        assert!(sealed.is_empty());
        let s = acc.append(&a0, &rec(100), t0);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].builder.count(), s[0].first_ticket), (9, 0));
        assert!(acc.buffered() > 0 && acc.buffered() < 200);
        // A record larger than a batch: sealed on its own at once.
        let s = acc.append(&a1, &rec(5000), t0);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].builder.count(), s[0].first_ticket), (1, 10));
        // Linger.
        assert!(acc.due(t0 + Duration::from_millis(4)).is_empty());
        assert_eq!(acc.next_due(), Some(t0 + Duration::from_millis(5)));
        let s = acc.due(t0 + Duration::from_millis(5));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].first_ticket, 9);
        assert!(acc.is_empty());
        assert_eq!(acc.buffered(), 0);
        // Flush.
        acc.append(&a0, &rec(1), t0);
        acc.append(&a1, &rec(1), t0);
        assert_eq!(acc.drain().len(), 2);
        assert_eq!(acc.next_due(), None);
    }
}
