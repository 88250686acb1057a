//! The pipeline's bookkeeping, answer by answer: what goes out, with which sequence numbers,
//! and what is reported.

use super::*;
use crate::producer::accumulator::{Accumulator, OutRecord};
use crate::protocol::records::{decode_batches, DEFAULT_MAX_DECOMPRESSED};

fn settings() -> Settings {
    Settings {
        compression: Compression::None,
        max_in_flight: 3,
        backoff: Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            retries: u32::MAX,
        },
        delivery_timeout: Duration::from_secs(120),
    }
}

const ID: Identity = Identity {
    producer_id: 1000,
    epoch: 0,
};

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// `n` sealed batches of `per` records each for `tp()`.
fn pipeline_with(n: usize, per: usize, now: Instant) -> Pipeline {
    let mut p = Pipeline::new(ID, settings());
    let mut acc = Accumulator::new(1 << 20, Duration::ZERO);
    for _ in 0..n {
        for i in 0..per {
            let r = OutRecord {
                value: Some(Bytes::from(format!("v{i}"))),
                timestamp: 1,
                ..OutRecord::default()
            };
            assert!(acc.append(&tp(), &r, now).is_empty());
        }
        for full in acc.drain() {
            p.push(full, now);
        }
    }
    p
}

/// (producer id, base sequence) written in the batch bytes.
fn stamp(o: &Outgoing) -> (i64, i32) {
    let b = &decode_batches(&o.bytes, DEFAULT_MAX_DECOMPRESSED).unwrap()[0];
    (b.producer_id, b.base_sequence)
}

fn ok(offset: i64) -> Answer {
    Answer::Partition {
        error_code: 0,
        base_offset: offset,
        message: None,
    }
}

fn err(code: i16) -> Answer {
    Answer::Partition {
        error_code: code,
        base_offset: -1,
        message: None,
    }
}

#[test]
fn batches_pipeline_in_sequence_order_up_to_the_limit() {
    let t0 = Instant::now();
    let mut p = pipeline_with(5, 2, t0);
    let mut sent = Vec::new();
    loop {
        let out = p.sendable(t0, |_| true);
        if out.is_empty() {
            break;
        }
        sent.extend(out);
    }
    // Three in flight at most; sequences 0, 2, 4.
    assert_eq!(
        sent.iter().map(stamp).collect::<Vec<_>>(),
        [(1000, 0), (1000, 2), (1000, 4)]
    );
    assert_eq!(p.in_flight(), 3);
    // Answers in order: each frees a slot.
    p.answer(&tp(), sent[0].id, ok(100), t0);
    let more = p.sendable(t0, |_| true);
    assert_eq!(more.iter().map(stamp).collect::<Vec<_>>(), [(1000, 6)]);
    let (written, lost) = p.take_outcomes();
    assert_eq!(written.len(), 1);
    assert_eq!((written[0].base_offset, written[0].records), (100, 2));
    assert!(lost.is_empty());
    // The leader cannot take more: nothing goes.
    assert!(p.sendable(t0, |_| false).is_empty());
}

#[test]
fn a_lost_answer_is_resent_with_the_same_sequence_one_at_a_time() {
    let t0 = Instant::now();
    let mut p = pipeline_with(3, 1, t0);
    let a = p.sendable(t0, |_| true).remove(0);
    let b = p.sendable(t0, |_| true).remove(0);
    let c = p.sendable(t0, |_| true).remove(0);
    // The first request's connection broke; the others are refused as out of order.
    let e = p.answer(&tp(), a.id, Answer::Transport("closed".into()), t0);
    assert!(e.refresh_metadata);
    p.answer(&tp(), b.id, err(45), t0);
    p.answer(&tp(), c.id, err(45), t0);
    assert!(
        !p.reset_needed(),
        "out of order behind a pending batch is not a fault"
    );
    // Back-off first, then one at a time, same sequences.
    assert!(p.sendable(t0, |_| true).is_empty());
    let later = t0 + Duration::from_secs(2);
    let again = p.sendable(later, |_| true);
    assert_eq!(again.iter().map(stamp).collect::<Vec<_>>(), [(1000, 0)]);
    assert!(
        p.sendable(later, |_| true).is_empty(),
        "careful: one in flight"
    );
    // The broker had written it: a duplicate. Then the pipeline opens up again.
    p.answer(&tp(), again[0].id, err(46), later);
    let rest: Vec<_> = (0..2).flat_map(|_| p.sendable(later, |_| true)).collect();
    assert_eq!(
        rest.iter().map(stamp).collect::<Vec<_>>(),
        [(1000, 1), (1000, 2)]
    );
    p.answer(&tp(), rest[0].id, ok(8), later);
    p.answer(&tp(), rest[1].id, ok(9), later);
    let (written, _) = p.take_outcomes();
    let offsets: Vec<i64> = written.iter().map(|w| w.base_offset).collect();
    assert_eq!(offsets, [-1, 8, 9]);
    assert!(p.is_idle());
    assert_eq!(p.buffered(), 0);
}

#[test]
fn a_batch_refused_for_good_is_reported_and_the_ones_after_it_close_the_gap() {
    let t0 = Instant::now();
    let mut p = pipeline_with(3, 2, t0);
    let sent: Vec<_> = (0..3).flat_map(|_| p.sendable(t0, |_| true)).collect();
    p.answer(&tp(), sent[0].id, ok(10), t0);
    p.answer(&tp(), sent[1].id, err(10), t0); // MESSAGE_TOO_LARGE
                                              // The third is still in flight: nothing is re-stamped yet.
    assert!(p.sendable(t0, |_| true).is_empty());
    p.answer(&tp(), sent[2].id, err(45), t0);
    let again = p.sendable(t0, |_| true);
    assert_eq!(again.iter().map(stamp).collect::<Vec<_>>(), [(1000, 2)]);
    p.answer(&tp(), again[0].id, ok(12), t0);
    let (written, lost) = p.take_outcomes();
    assert_eq!(
        written.iter().map(|w| w.base_offset).collect::<Vec<_>>(),
        [10, 12]
    );
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].records, 2);
    assert!(
        lost[0].error.contains("MESSAGE_TOO_LARGE"),
        "{}",
        lost[0].error
    );
    // New batches continue the closed sequence.
    let mut acc = Accumulator::new(1 << 20, Duration::ZERO);
    acc.append(&tp(), &OutRecord::default(), t0);
    p.push(acc.drain().remove(0), t0);
    assert_eq!(
        p.sendable(t0, |_| true)
            .iter()
            .map(stamp)
            .collect::<Vec<_>>(),
        [(1000, 4)]
    );
}

#[test]
fn an_unknown_producer_id_gets_a_new_identity_and_fresh_sequences() {
    let t0 = Instant::now();
    let mut p = pipeline_with(2, 3, t0);
    let a = p.sendable(t0, |_| true).remove(0);
    let b = p.sendable(t0, |_| true).remove(0);
    p.answer(&tp(), a.id, err(59), t0);
    assert!(p.reset_needed());
    assert!(
        p.sendable(t0, |_| true).is_empty(),
        "nothing goes out meanwhile"
    );
    p.answer(&tp(), b.id, err(45), t0);
    assert_eq!(p.in_flight(), 0);
    p.reset(Identity {
        producer_id: 2000,
        epoch: 0,
    });
    let again: Vec<_> = (0..2).flat_map(|_| p.sendable(t0, |_| true)).collect();
    assert_eq!(again.iter().map(stamp).collect::<Vec<_>>(), [(2000, 0)]);
    p.answer(&tp(), again[0].id, ok(0), t0);
    let next = p.sendable(t0, |_| true);
    assert_eq!(next.iter().map(stamp).collect::<Vec<_>>(), [(2000, 3)]);
}

#[test]
fn retries_end_at_the_delivery_timeout() {
    let t0 = Instant::now();
    let mut p = pipeline_with(1, 1, t0);
    let a = p.sendable(t0, |_| true).remove(0);
    p.answer(&tp(), a.id, err(19), t0); // NOT_ENOUGH_REPLICAS
    assert!(p.next_wake().unwrap() <= t0 + Duration::from_secs(1));
    let after = t0 + Duration::from_secs(121);
    assert!(p.sendable(after, |_| true).is_empty());
    let (written, lost) = p.take_outcomes();
    assert!(written.is_empty());
    assert!(
        lost[0].error.contains("delivery timeout of 120 s"),
        "{}",
        lost[0].error
    );
    assert!(
        lost[0].error.contains("NOT_ENOUGH_REPLICAS"),
        "{}",
        lost[0].error
    );
    assert!(p.is_idle());
}

#[test]
fn sequences_wrap_like_the_broker() {
    assert_eq!(next_sequence(5, 3), 8);
    assert_eq!(next_sequence(i32::MAX, 1), 0);
    assert_eq!(next_sequence(i32::MAX - 1, 3), 1);
}
