//! The dispatcher against a scripted handler and a recording session: which records reach the
//! handler, in which calls, and where the position ends up, for each policy.

use std::sync::{Arc, Mutex};

use super::*;
use crate::consumer::fetcher::{Broken, Chunk};
use crate::consumer::handler::{Handler, HandlerError};

#[derive(Default)]
struct Session {
    progress: Progress,
    pauses: Vec<Duration>,
    commits: usize,
}

impl Control for Session {
    type Leave = ();
    fn progress(&mut self) -> &mut Progress {
        &mut self.progress
    }
    async fn between_batches(&mut self) -> Result<Option<()>, ConsumerError> {
        Ok(None)
    }
    async fn commit(&mut self) -> Result<Option<()>, ConsumerError> {
        self.commits += 1;
        Ok(None)
    }
    async fn pause(&mut self, delay: Duration) -> Option<()> {
        self.pauses.push(delay);
        None
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn msg(offset: i64) -> Message {
    Message {
        topic: "t".into(),
        offset,
        timestamp_ms: now_ms(),
        ..Message::default()
    }
}

fn chunk(offsets: std::ops::Range<i64>) -> Chunk {
    Chunk {
        tp: tp(),
        first_offset: offsets.start,
        messages: offsets.clone().map(msg).collect(),
        next_offset: offsets.end,
        reset: false,
        broken: None,
    }
}

type Calls = Arc<Mutex<Vec<Vec<i64>>>>;

/// A handler that fails every call containing a `bad` offset (like `--exec`: it cannot say
/// which), or, when `exact`, stops at the first bad one (like `--sink`); `heal_after` calls
/// that contain a bad record, it succeeds from then on.
fn handler(bad: &'static [i64], exact: bool, heal_after: Option<usize>) -> (Handler, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let mut failures = 0usize;
    let h = Handler::scripted(Box::new(move |batch: &[Message]| {
        let offsets: Vec<i64> = batch.iter().map(|m| m.offset).collect();
        seen.lock().unwrap().push(offsets.clone());
        let first_bad = offsets.iter().position(|o| bad.contains(o));
        match (first_bad, heal_after) {
            (None, _) => Ok(()),
            (Some(_), Some(n)) if failures >= n => Ok(()),
            (Some(i), _) => {
                failures += 1;
                Err(Failure {
                    handled: if exact { i } else { 0 },
                    exact: exact || batch.len() == 1,
                    error: HandlerError::ExecStatus("exit status 1".into()),
                })
            }
        }
    }));
    (h, calls)
}

fn run(d: &mut Dispatcher, c: Chunk, s: &mut Session) -> Next<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(d.handle(c, s)).unwrap()
}

fn session(start: i64) -> Session {
    let mut s = Session::default();
    s.progress.start(tp(), start, true);
    s
}

/// Offsets handed to the handler in successful calls.
fn handled_once(calls: &Calls, bad: &[i64]) -> Vec<i64> {
    let mut v: Vec<i64> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| !c.iter().any(|o| bad.contains(o)))
        .flatten()
        .copied()
        .collect();
    v.sort();
    v
}

#[test]
fn default_policy_retries_the_same_records_and_never_passes_them() {
    let (h, calls) = handler(&[3], false, Some(2));
    let mut d = Dispatcher::new(h, FailurePolicy::default(), 100);
    let mut s = session(0);
    assert_eq!(run(&mut d, chunk(0..6), &mut s), Next::Continue);
    // The whole batch three times (two failures, then it healed): never split, never skipped.
    assert_eq!(calls.lock().unwrap().len(), 3);
    assert!(calls.lock().unwrap().iter().all(|c| c.len() == 6));
    assert_eq!(s.pauses.len(), 2);
    assert!(s.pauses[1] > s.pauses[0] / 2, "{:?}", s.pauses);
    assert_eq!(s.progress.position(&tp()), Some(6));
    assert_eq!(d.stats().retried.get("t"), Some(&12));
}

#[test]
fn bisect_isolates_the_failing_records_and_only_they_are_skipped() {
    let bad: &[i64] = &[5, 6, 13];
    let (h, calls) = handler(bad, false, None);
    let policy = FailurePolicy::new(Some(3), None, Exhausted::Skip).unwrap();
    let mut d = Dispatcher::new(h, policy, 16);
    let mut s = session(0);
    assert_eq!(run(&mut d, chunk(0..20), &mut s), Next::Continue);
    assert_eq!(s.progress.position(&tp()), Some(20));
    // Every good record in exactly one successful call; the bad ones alone, 3 times each.
    let good: Vec<i64> = (0..20).filter(|o| !bad.contains(o)).collect();
    assert_eq!(handled_once(&calls, bad), good);
    for b in bad {
        let alone = calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c[..] == [*b])
            .count();
        assert_eq!(alone, 3, "offset {b}: {:?}", calls.lock().unwrap());
    }
    assert_eq!(d.stats().skipped.get("t"), Some(&3));
    assert_eq!(d.stats().handled.get("t"), Some(&17));
    // Two retries (with back-off) per bad record; splits do not wait.
    assert_eq!(s.pauses.len(), 6);
}

#[test]
fn a_handler_that_names_the_failing_record_isolates_it_at_once() {
    let (h, calls) = handler(&[4], true, None);
    let policy = FailurePolicy::new(Some(2), None, Exhausted::Skip).unwrap();
    let mut d = Dispatcher::new(h, policy, 100);
    let mut s = session(0);
    run(&mut d, chunk(0..10), &mut s);
    assert_eq!(
        *calls.lock().unwrap(),
        vec![
            (0..10).collect::<Vec<_>>(),
            vec![4],
            (5..10).collect::<Vec<_>>()
        ]
    );
    // The first call's failure was record 4's own: two attempts, then skipped.
    assert_eq!(d.stats().skipped.get("t"), Some(&1));
    assert_eq!(s.progress.position(&tp()), Some(10));
}

#[test]
fn records_past_their_age_skip_the_handler() {
    let (h, calls) = handler(&[], false, None);
    let policy = FailurePolicy::new(None, Some(Duration::from_secs(60)), Exhausted::Skip).unwrap();
    let mut d = Dispatcher::new(h, policy, 100);
    let mut s = session(0);
    let mut c = chunk(0..5);
    c.messages[2].timestamp_ms = now_ms() - 3_600_000;
    c.messages[4].timestamp_ms = -1; // no timestamp: no age
    run(&mut d, c, &mut s);
    assert_eq!(*calls.lock().unwrap(), vec![vec![0, 1], vec![3, 4]]);
    assert_eq!(d.stats().skipped.get("t"), Some(&1));
    assert_eq!(s.progress.position(&tp()), Some(5));
}

#[test]
fn a_broken_batch_is_fetched_again_or_exhausted_as_one_unit() {
    let broken = || {
        let mut c = chunk(0..2);
        c.broken = Some(Broken {
            first: 2,
            last: 6,
            error: "CRC mismatch".into(),
            raw: None,
        });
        c.next_offset = 7;
        c
    };
    // Default: the records before it are handled, then fetch again; the position stays.
    let (h, _) = handler(&[], false, None);
    let mut d = Dispatcher::new(h, FailurePolicy::default(), 100);
    let mut s = session(0);
    assert_eq!(run(&mut d, broken(), &mut s), Next::Refetch);
    assert_eq!(run(&mut d, broken(), &mut s), Next::Refetch);
    assert_eq!(s.progress.position(&tp()), Some(2));
    assert_eq!(s.pauses.len(), 2);
    // Skip after two fetches: the whole range is passed, once.
    let (h, calls) = handler(&[], false, None);
    let policy = FailurePolicy::new(Some(2), None, Exhausted::Skip).unwrap();
    let mut d = Dispatcher::new(h, policy, 100);
    let mut s = session(0);
    assert_eq!(run(&mut d, broken(), &mut s), Next::Refetch);
    assert_eq!(run(&mut d, broken(), &mut s), Next::Continue);
    assert_eq!(s.progress.position(&tp()), Some(7));
    assert_eq!(d.stats().skipped.get("t"), Some(&1));
    // The records before it went to the handler once, not again on the re-fetch.
    assert_eq!(*calls.lock().unwrap(), vec![vec![0, 1]]);
}

#[test]
fn an_overlap_is_skipped_and_a_chunk_from_the_future_dropped() {
    let (h, calls) = handler(&[], false, None);
    let mut d = Dispatcher::new(h, FailurePolicy::default(), 2);
    let mut s = session(3);
    run(&mut d, chunk(0..7), &mut s);
    assert_eq!(*calls.lock().unwrap(), vec![vec![3, 4], vec![5, 6]]);
    run(&mut d, chunk(9..12), &mut s);
    assert_eq!(calls.lock().unwrap().len(), 2);
    assert_eq!(s.progress.position(&tp()), Some(7));
}

#[test]
fn exhausted_records_are_dead_lettered_and_passed_only_once_the_write_succeeded() {
    use crate::consumer::dead_letter::{self, DeadLetter, WriteError};
    let bad: &[i64] = &[2, 5];
    let (h, calls) = handler(bad, false, None);
    let written: Arc<Mutex<Vec<(i32, crate::producer::OutRecord)>>> = Arc::default();
    let seen = written.clone();
    let mut refusals = 2;
    let dl = DeadLetter::scripted(
        "t.DLT",
        "g",
        Box::new(move |from, copy| {
            if refusals > 0 {
                refusals -= 1;
                return Err(WriteError::Lost {
                    tp: TopicPartition::new("t.DLT", from.partition),
                    error: "NOT_ENOUGH_REPLICAS".into(),
                });
            }
            seen.lock().unwrap().push((from.partition, copy.clone()));
            Ok(())
        }),
    );
    let policy = FailurePolicy::new(Some(2), None, Exhausted::DeadLetter("t.DLT".into())).unwrap();
    let mut d = Dispatcher::new(h, policy, 100).with_dead_letter(dl);
    let mut s = session(0);
    assert_eq!(run(&mut d, chunk(0..8), &mut s), Next::Continue);
    assert_eq!(s.progress.position(&tp()), Some(8));
    let good: Vec<i64> = (0..8).filter(|o| !bad.contains(o)).collect();
    assert_eq!(handled_once(&calls, bad), good);
    // Each bad record once in the dead-letter topic, in order, with its offset.
    let w = written.lock().unwrap();
    let offsets: Vec<i64> = w
        .iter()
        .map(|(_, c)| {
            let h = c
                .headers
                .iter()
                .find(|(n, _)| &n[..] == dead_letter::ORIGINAL_OFFSET.as_bytes())
                .unwrap();
            i64::from_be_bytes(h.1.as_deref().unwrap().try_into().unwrap())
        })
        .collect();
    assert_eq!(offsets, [2, 5]);
    assert_eq!(d.stats().dead_lettered.get("t"), Some(&2));
    assert_eq!(d.stats().skipped.get("t"), None);
    // One retry of each bad record (2 attempts), plus two failed writes: all with back-off.
    assert_eq!(s.pauses.len(), 4, "{:?}", s.pauses);
}

#[test]
fn a_dead_letter_write_that_keeps_failing_never_passes_the_record() {
    use crate::consumer::dead_letter::{DeadLetter, WriteError};
    use crate::protocol::error::ErrorCode;

    /// A session that ends the generation at the third pause.
    #[derive(Default)]
    struct Leaving(Session);
    impl Control for Leaving {
        type Leave = ();
        fn progress(&mut self) -> &mut Progress {
            &mut self.0.progress
        }
        async fn between_batches(&mut self) -> Result<Option<()>, ConsumerError> {
            Ok(None)
        }
        async fn commit(&mut self) -> Result<Option<()>, ConsumerError> {
            Ok(None)
        }
        async fn pause(&mut self, delay: Duration) -> Option<()> {
            self.0.pauses.push(delay);
            (self.0.pauses.len() >= 3).then_some(())
        }
    }
    let (h, _) = handler(&[1], false, None);
    let dl = DeadLetter::scripted(
        "t.DLT",
        "g",
        Box::new(|_, _| {
            Err(WriteError::Topic {
                topic: "t.DLT".into(),
                code: ErrorCode(crate::protocol::error::code::TOPIC_AUTHORIZATION_FAILED),
            })
        }),
    );
    let policy = FailurePolicy::new(Some(1), None, Exhausted::DeadLetter("t.DLT".into())).unwrap();
    let mut d = Dispatcher::new(h, policy, 100).with_dead_letter(dl);
    let mut s = Leaving::default();
    s.0.progress.start(tp(), 0, true);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        rt.block_on(d.handle(chunk(0..4), &mut s)).unwrap(),
        Next::Leave(())
    );
    assert_eq!(s.0.progress.position(&tp()), Some(1));
    assert_eq!(d.stats().dead_lettered.get("t"), None);
    assert!(s.0.pauses[1] > s.0.pauses[0] / 2, "{:?}", s.0.pauses);
}
