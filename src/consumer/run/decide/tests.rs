//! Tables for the consumer loop's decisions.

use std::collections::BTreeMap;

use super::*;
use crate::lag::NoCommit;
use crate::offsets::Committed;

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn tps(list: &[i32]) -> Vec<TopicPartition> {
    list.iter().map(|p| tp(*p)).collect()
}

fn rebalance() -> GroupError {
    GroupError::Rebalance("Heartbeat: REBALANCE_IN_PROGRESS".into())
}

fn lost() -> GroupError {
    GroupError::Lost("OffsetCommit: ILLEGAL_GENERATION".into())
}

fn retry() -> GroupError {
    GroupError::Retry("OffsetCommit: NOT_COORDINATOR".into())
}

fn fatal() -> GroupError {
    GroupError::Fatal("JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED".into())
}

/// A decision or the consumer's error message, for tables.
fn shown<T: std::fmt::Debug>(r: Result<T, ConsumerError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn idle_counts_from_the_last_reset() {
    let t0 = Instant::now();
    let s = Duration::from_secs(1);
    let mut idle = Idle::new(t0, 10 * s);
    assert_eq!(idle.deadline(), t0 + 10 * s);
    assert_eq!(idle.timeout(), 10 * s);
    // (now, expired)
    let cases = [
        (t0, false),
        (t0 + 9 * s, false),
        (t0 + 10 * s, true),
        (t0 + 11 * s, true),
    ];
    for (now, want) in cases {
        assert_eq!(idle.expired(now), want, "{:?} after", now - t0);
    }
    idle.reset(t0 + 5 * s);
    assert!(!idle.expired(t0 + 14 * s));
    assert!(idle.expired(t0 + 15 * s));
    assert_eq!(idle.deadline(), t0 + 15 * s);
    // A clock read before the reset (another task's) is not idle.
    assert!(!idle.expired(t0));
    // A zero timeout is idle at once.
    assert!(Idle::new(t0, Duration::ZERO).expired(t0));
}

#[test]
fn before_join_table() {
    // (stopped, idle, joined before) → turn
    let cases = [
        (false, false, false, Turn::Join),
        (false, false, true, Turn::Join),
        (false, true, true, Turn::Exit(Exit::Idle)),
        (false, true, false, Turn::GiveUp),
        (true, false, false, Turn::Exit(Exit::Signal)),
        (true, true, false, Turn::Exit(Exit::Signal)),
        (true, true, true, Turn::Exit(Exit::Signal)),
    ];
    for (stopped, idle, joined, want) in cases {
        assert_eq!(
            before_join(stopped, idle, joined),
            want,
            "stopped {stopped}, idle {idle}, joined {joined}"
        );
    }
}

#[test]
fn rejoin_pacing_table() {
    let ms = Duration::from_millis;
    // (failure, attempt in a row) → pace
    let cases = [
        (rebalance(), 1, Rejoin::Now),
        (lost(), 1, Rejoin::Now),
        (rebalance(), IMMEDIATE_REJOINS, Rejoin::Now),
        (lost(), IMMEDIATE_REJOINS, Rejoin::Now),
        // Rebalances that keep coming back off like transient failures.
        (rebalance(), IMMEDIATE_REJOINS + 1, Rejoin::After(ms(1200))),
        (lost(), 9, Rejoin::After(ms(1800))),
        (retry(), 1, Rejoin::After(ms(200))),
        (retry(), 2, Rejoin::After(ms(400))),
        (retry(), 10, Rejoin::After(ms(2000))),
        (retry(), 11, Rejoin::After(ms(2000))),
        (retry(), u32::MAX, Rejoin::After(ms(2000))),
        (fatal(), 1, Rejoin::Never),
        (fatal(), 100, Rejoin::Never),
    ];
    for (e, attempt, want) in cases {
        assert_eq!(rejoin(&e, attempt), want, "{e:?}, attempt {attempt}");
    }
}

#[test]
fn assignment_table() {
    use crate::consumer::assignor::{COOPERATIVE_STICKY, RANGE};
    // (held, held generation, generation, protocol, assigned, forget, rejoin first)
    type Case<'a> = (&'a [i32], i32, i32, &'a str, &'a [i32], &'a [i32], bool);
    let cases: &[Case] = &[
        // First assignment: everything starts from the commits.
        (&[], -1, 1, COOPERATIVE_STICKY, &[0, 1], &[0, 1], false),
        (&[], -1, 1, RANGE, &[0, 1], &[0, 1], false),
        // Kept across a cooperative join: positions stay.
        (&[0, 1], 4, 5, COOPERATIVE_STICKY, &[0, 1], &[], false),
        // Revoked under cooperative-sticky: the second phase first.
        (&[0, 1, 2], 4, 5, COOPERATIVE_STICKY, &[1], &[0, 2], true),
        // Revoked under an eager protocol: no second phase (it held nothing at the join).
        (&[0, 1, 2], 4, 5, RANGE, &[1], &[0, 2], false),
        // Added only: no second phase.
        (&[1], 5, 6, COOPERATIVE_STICKY, &[1, 2], &[2], false),
        // A generation missed: nothing kept from memory, the revoked one let go.
        (&[0, 1], 4, 7, COOPERATIVE_STICKY, &[1, 2], &[0, 1, 2], true),
    ];
    for (held, hg, g, protocol, now, forget, first) in cases {
        let held_set: BTreeSet<TopicPartition> = tps(held).into_iter().collect();
        let a = assigned(&held_set, *hg, *g, protocol, &tps(now));
        assert_eq!(a.change, Change::of(&held_set, *hg, *g, &tps(now)));
        let mut got = a.forget.clone();
        got.sort();
        assert_eq!(
            (got, a.rejoin_first),
            (tps(forget), *first),
            "held {held:?} from {hg}, generation {g} ({protocol}) assigned {now:?}"
        );
    }
}

#[test]
fn after_generation_table() {
    // (signal's reason, cooperative) → what the next join claims
    let cases = [
        (None, true, "Held"),
        (None, false, "Nothing"),
        (Some(rebalance()), true, "Held"),
        (Some(rebalance()), false, "Nothing"),
        (Some(retry()), true, "Held"),
        (Some(lost()), true, "Nothing"),
        (Some(lost()), false, "Nothing"),
        (
            Some(fatal()),
            true,
            "error: JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED",
        ),
        (
            Some(fatal()),
            false,
            "error: JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED",
        ),
    ];
    for (pending, cooperative, want) in cases {
        let what = format!("{pending:?}, cooperative {cooperative}");
        assert_eq!(
            shown(after_generation(pending, cooperative)),
            want,
            "{what}"
        );
    }
}

#[test]
fn fresh_partitions_are_those_without_a_position() {
    let mut p = Progress::default();
    assert_eq!(fresh(&tps(&[0, 1]), &p), tps(&[0, 1]));
    p.start(tp(1), 7, true);
    assert_eq!(fresh(&tps(&[0, 1, 2]), &p), tps(&[0, 2]));
    assert_eq!(fresh(&tps(&[1]), &p), tps(&[]));
    assert_eq!(fresh(&[], &p), tps(&[]));
}

/// What `fetch_committed` says for a group, and `fetch_ends` for a partition.
type CommitsAnswer = Result<GroupOffsets, OffsetsError>;
type EndsAnswer = Result<Ends, OffsetsError>;

fn offsets(committed: &[(i32, i64)]) -> GroupOffsets {
    GroupOffsets {
        committed: committed
            .iter()
            .map(|(p, o)| {
                (
                    tp(*p),
                    Committed {
                        offset: *o,
                        metadata: None,
                    },
                )
            })
            .collect(),
        errors: BTreeMap::new(),
    }
}

#[test]
fn starts_from_commits_table() {
    let o = offsets(&[(0, 5), (2, 0)]);
    let committed_all = offsets(&[(0, 5), (1, 9), (2, 0)]);
    let none = offsets(&[]);
    let failed: Result<GroupOffsets, OffsetsError> = Err(OffsetsError::NoCoordinator);
    let (ok, all, empty) = (Ok(o), Ok(committed_all), Ok(none));
    // (fresh, the group's answer) → starts
    let cases: Vec<(&[i32], Option<&CommitsAnswer>, String)> = vec![
        (
            &[0, 1, 2],
            Some(&ok),
            format!(
                "{:?}",
                Starts {
                    committed: vec![(tp(0), 5), (tp(2), 0)],
                    missing: tps(&[1]),
                }
            ),
        ),
        (
            &[0, 1, 2],
            Some(&all),
            format!(
                "{:?}",
                Starts {
                    committed: vec![(tp(0), 5), (tp(1), 9), (tp(2), 0)],
                    missing: vec![],
                }
            ),
        ),
        (
            &[3],
            Some(&empty),
            format!(
                "{:?}",
                Starts {
                    committed: vec![],
                    missing: tps(&[3]),
                }
            ),
        ),
        (
            &[0],
            Some(&failed),
            "error: cannot read the group's committed offsets: no coordinator found".into(),
        ),
        (
            &[0],
            None,
            "error: cannot read the group's committed offsets".into(),
        ),
    ];
    for (fresh, answer, want) in cases {
        assert_eq!(
            shown(from_commits(&tps(fresh), answer)),
            want,
            "{fresh:?} {answer:?}"
        );
    }
}

#[test]
fn starts_by_policy_table() {
    let ends = Ends {
        log_start: 10,
        high_watermark: 50,
        last_stable: 40,
    };
    let ok: Result<Ends, OffsetsError> = Ok(ends);
    let failed: Result<Ends, OffsetsError> = Err(OffsetsError::NoLeader(tp(1)));
    // (read_committed, reset, the ends' answer) → start
    let cases: Vec<(bool, NoCommit, Option<&EndsAnswer>, &str)> = vec![
        (true, NoCommit::Earliest, Some(&ok), "10"),
        (false, NoCommit::Earliest, Some(&ok), "10"),
        (true, NoCommit::Latest, Some(&ok), "40"),
        (false, NoCommit::Latest, Some(&ok), "50"),
        (
            true,
            NoCommit::Earliest,
            Some(&failed),
            "error: cannot read the offsets of t-1: t-1: no leader right now",
        ),
        (
            true,
            NoCommit::Latest,
            None,
            "error: cannot read the offsets of t-1",
        ),
    ];
    for (read_committed, reset, answer, want) in cases {
        let policy = Policy::new(read_committed, reset);
        assert_eq!(
            shown(by_policy(&tp(1), answer, policy)),
            want,
            "{read_committed} {reset:?} {answer:?}"
        );
    }
}

#[test]
fn signal_table() {
    let cases = [
        (
            rebalance(),
            "Rebalance(\"Heartbeat: REBALANCE_IN_PROGRESS\")",
        ),
        (lost(), "Lost(\"OffsetCommit: ILLEGAL_GENERATION\")"),
        (
            fatal(),
            "error: JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED",
        ),
    ];
    for (why, want) in cases {
        assert_eq!(shown(on_signal(why)), want);
    }
}

#[test]
fn between_batches_table() {
    let s = Duration::from_secs(1);
    let interval = 5 * s;
    // (stopped, signal's reason, time since the last commit) → what to do
    let cases = [
        (false, None, s, "Go"),
        (false, None, 5 * s, "Commit"),
        (false, None, 60 * s, "Commit"),
        (
            false,
            Some(rebalance()),
            s,
            "Rejoin(Rebalance(\"Heartbeat: REBALANCE_IN_PROGRESS\"))",
        ),
        // A raised signal wins over a due commit (the final commit follows the rejoin).
        (
            false,
            Some(lost()),
            60 * s,
            "Rejoin(Lost(\"OffsetCommit: ILLEGAL_GENERATION\"))",
        ),
        (
            false,
            Some(fatal()),
            s,
            "error: JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED",
        ),
        // A stop wins over everything.
        (true, None, 60 * s, "Stop"),
        (true, Some(fatal()), s, "Stop"),
    ];
    for (stopped, pending, since, want) in cases {
        let what = format!("stopped {stopped}, {pending:?}, {since:?} since the commit");
        assert_eq!(
            shown(between_batches(stopped, pending, since, interval)),
            want,
            "{what}"
        );
    }
}

#[test]
fn commit_answer_table() {
    let cases = [
        (Ok(()), "Done"),
        (
            Err(rebalance()),
            "Rejoin(Rebalance(\"Heartbeat: REBALANCE_IN_PROGRESS\"))",
        ),
        (
            Err(lost()),
            "Rejoin(Lost(\"OffsetCommit: ILLEGAL_GENERATION\"))",
        ),
        (
            Err(retry()),
            "Later(Retry(\"OffsetCommit: NOT_COORDINATOR\"))",
        ),
        (
            Err(fatal()),
            "error: JoinGroup for group 'g': GROUP_AUTHORIZATION_FAILED",
        ),
    ];
    for (answer, want) in cases {
        let what = format!("{answer:?}");
        assert_eq!(shown(commit_answer(answer)), want, "{what}");
    }
}
