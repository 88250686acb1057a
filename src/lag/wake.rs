//! When to wake a job: its wake-up policy (kafkadata `min_lag`, `max_wait`,
//! `records_per_instance`, `max_instances`) applied to its partitions' offset and time lag.
//!
//! Waking every lagging partition at once is the most expensive way to serve a trickle topic:
//! one container start and an idle timeout per burst. KEDA has an activation threshold, Lambda a
//! batching window; this combines both, and the window is exact because the time lag is
//! (`offsets::timestamps`). The decision is a pure function of the policy and the lags; the
//! observer feeds its result to the group plan (partitions that do not count are left out of
//! the needs, the instance limit lowers the job's share) and schedules one wake-up for the
//! moment the oldest waiting record turns `max_wait` old — no polling.

use std::time::Duration;

use crate::config::kafkadata::WakePolicy;

/// One partition as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    /// Records left; `None` when unknown this cycle.
    pub lag: Option<i64>,
    /// Age of the first of them (ms); `None` when unknown.
    pub age_ms: Option<i64>,
}

/// Why a job wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    /// A partition has at least `min_lag` records (or any, without a policy).
    Lag,
    /// Fewer, but the oldest has waited `max_wait`.
    Age,
}

impl Reason {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Reason::Lag => "lag",
            Reason::Age => "age",
        }
    }
}

/// What the policy says for one job this cycle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Decision {
    /// Per partition (in the order given): it counts as lagging for the job.
    pub counts: Vec<bool>,
    /// At most this many instances (`records_per_instance`, `max_instances`); `None`: no limit
    /// beyond the partitions that count and the global `--max-instances`.
    pub cap: Option<u32>,
    /// Why the job has work, if it has.
    pub reason: Option<Reason>,
    /// When a partition that waits now will have waited `max_wait`: look again then.
    pub wake_in: Option<Duration>,
}

/// The decision for a job whose partitions are `parts` (pure).
///
/// - a partition counts from `min_lag` records (1 without the key; never by count alone when
///   only `max_wait` is set: that is a pure batching window);
/// - below that, it counts once its oldest record is `max_wait` old — or when its age is
///   unknown, so a failed look can cost a start but never a promised latency;
/// - instances: ceil(records of the partitions that count / `records_per_instance`), never more
///   than those partitions, nor `max_instances`.
pub(crate) fn decide(policy: &WakePolicy, parts: &[Waiting]) -> Decision {
    let threshold = match (policy.min_lag, policy.max_wait) {
        (Some(n), _) => n.min(i64::MAX as u64) as i64,
        (None, Some(_)) => i64::MAX,
        (None, None) => 1,
    };
    let mut d = Decision {
        counts: Vec::with_capacity(parts.len()),
        ..Decision::default()
    };
    let (mut by_lag, mut by_age) = (false, false);
    let (mut counted, mut records) = (0u64, 0u64);
    for p in parts {
        let lag = p.lag.unwrap_or(0);
        let counts = if lag <= 0 {
            false
        } else if lag >= threshold {
            by_lag = true;
            true
        } else if let Some(wait) = policy.max_wait {
            let wait_ms = wait.as_millis().min(i64::MAX as u128) as i64;
            match p.age_ms {
                Some(age) if age < wait_ms => {
                    let left = Duration::from_millis((wait_ms - age) as u64);
                    d.wake_in = Some(d.wake_in.map_or(left, |w| w.min(left)));
                    false
                }
                _ => {
                    by_age = true;
                    true
                }
            }
        } else {
            false
        };
        if counts {
            counted += 1;
            records = records.saturating_add(lag as u64);
        }
        d.counts.push(counts);
    }
    d.reason = if by_lag {
        Some(Reason::Lag)
    } else if by_age {
        Some(Reason::Age)
    } else {
        None
    };
    let per_records = policy
        .records_per_instance
        .map(|n| records.div_ceil(n).min(counted));
    d.cap = match (per_records, policy.max_instances) {
        (Some(a), Some(b)) => Some(a.min(u64::from(b))),
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(u64::from(b)),
        (None, None) => None,
    }
    .map(|c| c.min(u64::from(u32::MAX)) as u32);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lag: i64, age_s: Option<i64>) -> Waiting {
        Waiting {
            lag: Some(lag),
            age_ms: age_s.map(|s| s * 1000),
        }
    }

    fn policy(
        min_lag: Option<u64>,
        max_wait_s: Option<u64>,
        rpi: Option<u64>,
        max: Option<u32>,
    ) -> WakePolicy {
        WakePolicy {
            min_lag,
            max_wait: max_wait_s.map(Duration::from_secs),
            records_per_instance: rpi,
            max_instances: max,
            idle_timeout: None,
        }
    }

    #[test]
    fn who_counts_and_why() {
        let none = WakePolicy::default();
        let batch = policy(Some(100), Some(60), None, None);
        let window = policy(None, Some(30), None, None);
        let activation = policy(Some(10), None, None, None);
        let unknown = Waiting {
            lag: None,
            age_ms: None,
        };
        type Case<'a> = (
            &'a str,
            WakePolicy,
            Vec<Waiting>,
            Vec<bool>,
            Option<Reason>,
            Option<u64>,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("no policy: every lagging partition, at once", none, vec![p(1, Some(0)), p(0, None), unknown], vec![true, false, false], Some(Reason::Lag), None),
            ("below min_lag, young: wait", batch, vec![p(5, Some(10))], vec![false], None, Some(50)),
            ("below min_lag, max_wait old: age", batch, vec![p(5, Some(60))], vec![true], Some(Reason::Age), None),
            ("min_lag records: at once", batch, vec![p(100, Some(0)), p(3, Some(20))], vec![true, false], Some(Reason::Lag), Some(40)),
            ("age unknown: counts (a failed look never costs latency)", batch, vec![p(5, None)], vec![true], Some(Reason::Age), None),
            ("the earliest expiry is the wake-up", batch, vec![p(5, Some(10)), p(5, Some(45))], vec![false, false], None, Some(15)),
            ("max_wait alone is a batching window", window, vec![p(1_000_000, Some(29)), p(1, Some(31))], vec![false, true], Some(Reason::Age), Some(1)),
            ("min_lag alone: activation, no age", activation, vec![p(9, Some(9_999)), p(10, Some(0))], vec![false, true], Some(Reason::Lag), None),
            ("lag beats age as the reason", batch, vec![p(5, Some(99)), p(200, Some(1))], vec![true, true], Some(Reason::Lag), None),
            ("nothing waits", batch, vec![p(0, None), unknown], vec![false, false], None, None),
        ];
        for (name, pol, parts, counts, reason, wake_s) in cases {
            let d = decide(&pol, &parts);
            assert_eq!(d.counts, counts, "{name}");
            assert_eq!(d.reason, reason, "{name}");
            assert_eq!(d.wake_in, wake_s.map(Duration::from_secs), "{name}");
        }
    }

    #[test]
    fn instances_follow_records_per_instance_capped() {
        type Case<'a> = (&'a str, Option<u64>, Option<u32>, &'a [i64], Option<u32>);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("no keys: no cap (one per lagging partition)", None, None, &[5, 5, 5], None),
            ("ceil(lag / N)", Some(100), None, &[150, 100, 1], Some(3)),
            ("ceil rounds up", Some(100), None, &[101], Some(1)),
            ("never more than partitions that count", Some(1), None, &[500, 500], Some(2)),
            ("fewer when records are few", Some(1000), None, &[300, 300, 300], Some(1)),
            ("max_instances caps it", Some(10), Some(2), &[50, 50, 50], Some(2)),
            ("max_instances alone", None, Some(4), &[1, 1, 1, 1, 1, 1], Some(4)),
            ("nothing lags: 0", Some(10), Some(4), &[0, 0], Some(0)),
        ];
        for (name, rpi, max, lags, cap) in cases {
            let parts: Vec<Waiting> = lags.iter().map(|l| p(*l, Some(0))).collect();
            let d = decide(&policy(None, None, *rpi, *max), &parts);
            assert_eq!(d.cap, *cap, "{name}");
        }
        // Only the partitions that count add records.
        let d = decide(
            &policy(Some(100), Some(60), Some(100), None),
            &[p(250, Some(0)), p(99, Some(1))],
        );
        assert_eq!((d.counts.clone(), d.cap), (vec![true, false], Some(1)));
    }
}
