//! Lag: how many records a group still has to read. Pure functions of a snapshot.
//!
//! The formulas differ from the peers on purpose (see shared/research/lag-semantics.md): the end
//! is the last stable offset for read_committed consumers, so transaction markers and open
//! transactions don't count as work; a group without a commit starts at the log start, not at 0,
//! so retention-deleted records are never counted; lag is never negative.
//!
//! [`Policy`] is the one place that says which end of the log counts and where a consumer
//! starts: the consumer's start position, the observer's lag and long poll and the `lag`
//! command all ask it, so they cannot disagree on the same offsets.

pub(crate) mod cover;
pub(crate) mod group;
pub(crate) mod reconcile;
pub(crate) mod stuck;
pub(crate) mod wake;

use crate::offsets::Ends;

/// Which end of the log a consumer reads up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum EndKind {
    /// read_committed: up to the last stable offset (the default of our consumer).
    #[default]
    LastStable,
    /// read_uncommitted: up to the high watermark.
    HighWatermark,
}

/// Where a consumer without a usable commit starts (Kafka's auto.offset.reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum NoCommit {
    /// From the log start: everything still in the log is work.
    #[default]
    Earliest,
    /// From the end: nothing is work until new records arrive.
    Latest,
}

/// The log-position policy: which end a consumer reads up to, where it starts without a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Policy {
    pub end: EndKind,
    pub no_commit: NoCommit,
}

impl Policy {
    /// The policy of a consumer reading `read_committed` (else read_uncommitted) that starts
    /// by `no_commit` without a commit.
    pub(crate) fn new(read_committed: bool, no_commit: NoCommit) -> Policy {
        Policy {
            end: if read_committed {
                EndKind::LastStable
            } else {
                EndKind::HighWatermark
            },
            no_commit,
        }
    }

    /// Whether fetches under this policy use the read_committed isolation level.
    pub(crate) fn read_committed(&self) -> bool {
        self.end == EndKind::LastStable
    }

    /// The end offset this policy reads up to.
    pub(crate) fn end(&self, ends: &Ends) -> i64 {
        match self.end {
            EndKind::LastStable => ends.last_stable,
            EndKind::HighWatermark => ends.high_watermark,
        }
    }

    /// Where a consumer reads from: its commit, unless it has none or retention overtook it
    /// (a commit below the log start); then the log start or the end, by `no_commit`.
    pub(crate) fn start(&self, ends: &Ends, committed: Option<i64>) -> i64 {
        match committed {
            Some(c) if c >= ends.log_start => c,
            _ => match self.no_commit {
                NoCommit::Earliest => ends.log_start,
                NoCommit::Latest => self.end(ends),
            },
        }
    }

    /// Records left to read in one partition: from [`Policy::start`] to [`Policy::end`].
    pub(crate) fn lag(&self, ends: &Ends, committed: Option<i64>) -> i64 {
        (self.end(ends) - self.start(ends, committed)).max(0)
    }
}

/// Totals over the partitions of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Summary {
    pub total_lag: i64,
    pub lagging_partitions: usize,
    pub partitions: usize,
    /// Partitions whose offsets could not be read this time.
    pub unknown_partitions: usize,
}

impl Summary {
    /// Sums `lags` (None = unknown partition).
    pub(crate) fn of(lags: impl IntoIterator<Item = Option<i64>>) -> Summary {
        let mut s = Summary::default();
        for lag in lags {
            s.partitions += 1;
            match lag {
                Some(l) => {
                    s.total_lag += l;
                    if l > 0 {
                        s.lagging_partitions += 1;
                    }
                }
                None => s.unknown_partitions += 1,
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(log_start: i64, high_watermark: i64, last_stable: i64) -> Ends {
        Ends {
            log_start,
            high_watermark,
            last_stable,
        }
    }

    #[test]
    fn lag_table() {
        let lso = Policy::default();
        let hw = Policy {
            end: EndKind::HighWatermark,
            ..Policy::default()
        };
        let latest = Policy {
            no_commit: NoCommit::Latest,
            ..Policy::default()
        };
        let cases: &[(&str, Policy, Ends, Option<i64>, i64)] = &[
            ("caught up", lso, ends(0, 10, 10), Some(10), 0),
            ("behind", lso, ends(0, 10, 10), Some(4), 6),
            (
                "open transaction is not work yet",
                lso,
                ends(0, 10, 7),
                Some(7),
                0,
            ),
            (
                "open transaction counts against HW",
                hw,
                ends(0, 10, 7),
                Some(7),
                3,
            ),
            (
                "commit past LSO clamps to 0",
                lso,
                ends(0, 10, 7),
                Some(9),
                0,
            ),
            (
                "no commit, earliest, after retention",
                lso,
                ends(100, 150, 150),
                None,
                50,
            ),
            ("no commit, latest", latest, ends(100, 150, 150), None, 0),
            (
                "commit overtaken by retention",
                lso,
                ends(100, 150, 150),
                Some(20),
                50,
            ),
            (
                "commit overtaken by retention, latest",
                latest,
                ends(100, 150, 150),
                Some(20),
                0,
            ),
            ("empty log", lso, ends(0, 0, 0), None, 0),
            (
                "commit beyond HW (truncated log)",
                hw,
                ends(0, 5, 5),
                Some(8),
                0,
            ),
        ];
        for (name, policy, e, committed, want) in cases {
            assert_eq!(policy.lag(e, *committed), *want, "{name}");
        }
    }

    #[test]
    fn start_table() {
        let e = ends(100, 150, 140);
        #[rustfmt::skip]
        let cases: &[(bool, NoCommit, Option<i64>, i64)] = &[
            (true, NoCommit::Earliest, Some(120), 120),
            (true, NoCommit::Earliest, None, 100),
            (true, NoCommit::Latest, None, 140),
            (false, NoCommit::Latest, None, 150),
            // overtaken by retention: as if there were no commit
            (true, NoCommit::Earliest, Some(20), 100),
            (false, NoCommit::Latest, Some(20), 150),
            // a commit past the end is where the consumer is, whatever the end says
            (true, NoCommit::Earliest, Some(145), 145),
        ];
        for (rc, reset, committed, want) in cases {
            let p = Policy::new(*rc, *reset);
            assert_eq!(p.read_committed(), *rc);
            assert_eq!(
                p.start(&e, *committed),
                *want,
                "{rc} {reset:?} {committed:?}"
            );
        }
        assert_eq!(Policy::default(), Policy::new(true, NoCommit::Earliest));
    }

    #[test]
    fn summary_table() {
        let cases: &[(&[Option<i64>], Summary)] = &[
            (&[], Summary::default()),
            (
                &[Some(0), Some(5), None, Some(2)],
                Summary {
                    total_lag: 7,
                    lagging_partitions: 2,
                    partitions: 4,
                    unknown_partitions: 1,
                },
            ),
        ];
        for (lags, want) in cases {
            assert_eq!(Summary::of(lags.iter().copied()), *want);
        }
    }
}
