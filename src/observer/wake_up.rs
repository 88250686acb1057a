//! The jobs' wake-up policies (`lag::wake`) applied to one cycle's lags: which partitions count
//! for the group plan, how many instances each job may have, why a job wakes, and when the
//! next look is due for records that wait. The reconcile state machine sees only its usual
//! input — a lag in which waiting partitions read 0 — and a per-job limit on its share.

use std::collections::HashSet;
use std::time::Duration;

use crate::config::kafkadata::Job;
use crate::lag::group::GroupLag;
use crate::lag::wake::{decide, Decision, Waiting};
use crate::offsets::TopicPartition;

/// What the policies said this cycle.
#[derive(Debug, Default)]
pub(super) struct Applied {
    /// Per job (as the observer's list).
    pub decisions: Vec<Decision>,
    /// Per job: the partitions that count for it.
    counted: Vec<HashSet<TopicPartition>>,
    /// Per group: its lag with waiting partitions at 0; `None` when no job has a policy (the
    /// lag as it is).
    pub group_lags: Option<Vec<GroupLag>>,
    /// The earliest moment a waiting record turns `max_wait` old, from now.
    pub wake_in: Option<Duration>,
}

impl Applied {
    /// `lag` (job `job`'s own) with the partitions that do not count for it at 0 (pure).
    pub(super) fn job_lag(&self, job: usize, mut lag: GroupLag) -> GroupLag {
        if let Some(counted) = self.counted.get(job) {
            for p in &mut lag.partitions {
                if p.lag.is_some_and(|l| l > 0) && !counted.contains(&p.tp) {
                    p.lag = Some(0);
                }
            }
        }
        lag
    }

    /// The instance limit of job `job`, if its policy sets one.
    pub(super) fn cap(&self, job: usize) -> Option<u32> {
        self.decisions.get(job).and_then(|d| d.cap)
    }
}

/// Applies every job's policy (pure). `job_group[j]`: the position of job j's group in
/// `group_lags`; `time_lags` as `group_lags`, partition by partition.
pub(super) fn apply(
    jobs: &[Job],
    job_group: &[usize],
    group_lags: &[GroupLag],
    time_lags: &[Vec<Option<i64>>],
) -> Applied {
    let mut out = Applied::default();
    if jobs.iter().all(|j| j.wake.wakes_as_default()) {
        return out;
    }
    let mut counted_by_group: Vec<HashSet<TopicPartition>> = vec![HashSet::new(); group_lags.len()];
    for (j, job) in jobs.iter().enumerate() {
        let g = job_group.get(j).copied().unwrap_or(usize::MAX);
        let (Some(lag), ages) = (group_lags.get(g), time_lags.get(g)) else {
            out.decisions.push(Decision::default());
            out.counted.push(HashSet::new());
            continue;
        };
        let mine: Vec<(usize, &TopicPartition)> = lag
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| job.topics.iter().any(|t| **t == *p.tp.topic))
            .map(|(i, p)| (i, &p.tp))
            .collect();
        let parts: Vec<Waiting> = mine
            .iter()
            .map(|(i, _)| Waiting {
                lag: lag.partitions[*i].lag,
                age_ms: ages.and_then(|a| a.get(*i).copied().flatten()),
            })
            .collect();
        let d = decide(&job.wake, &parts);
        let counted: HashSet<TopicPartition> = mine
            .iter()
            .zip(&d.counts)
            .filter(|(_, c)| **c)
            .map(|((_, tp), _)| (*tp).clone())
            .collect();
        counted_by_group[g].extend(counted.iter().cloned());
        if let Some(w) = d.wake_in {
            out.wake_in = Some(out.wake_in.map_or(w, |x| x.min(w)));
        }
        out.decisions.push(d);
        out.counted.push(counted);
    }
    out.group_lags = Some(
        group_lags
            .iter()
            .zip(&counted_by_group)
            .map(|(lag, counted)| {
                let mut lag = lag.clone();
                for p in &mut lag.partitions {
                    if p.lag.is_some_and(|l| l > 0) && !counted.contains(&p.tp) {
                        p.lag = Some(0);
                    }
                }
                lag
            })
            .collect(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kafkadata::WakePolicy;
    use crate::lag::group::PartitionLag;

    fn job(name: &str, topics: &[&str], wake: WakePolicy) -> Job {
        Job {
            name: name.into(),
            consumer_group: "g".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            wake,
        }
    }

    #[test]
    fn waiting_partitions_read_zero_for_the_plan_and_schedule_a_look() {
        let lag = GroupLag {
            partitions: [("a", 0, 5), ("a", 1, 500), ("b", 0, 3)]
                .iter()
                .map(|(t, p, l)| PartitionLag {
                    tp: TopicPartition::new(*t, *p),
                    committed: Some(0),
                    lag: Some(*l),
                })
                .collect(),
        };
        let ages = vec![vec![Some(10_000), Some(1_000), Some(2_000)]];
        let batching = WakePolicy {
            min_lag: Some(100),
            max_wait: Some(Duration::from_secs(60)),
            ..WakePolicy::default()
        };
        // Job 0 reads a (policy), job 1 reads b (none): b-0 counts for the group through job 1.
        let jobs = [
            job("x", &["a"], batching),
            job("y", &["b"], WakePolicy::default()),
        ];
        let a = apply(&jobs, &[0, 0], std::slice::from_ref(&lag), &ages);
        let planned: Vec<Option<i64>> = a.group_lags.as_ref().unwrap()[0]
            .partitions
            .iter()
            .map(|p| p.lag)
            .collect();
        assert_eq!(planned, [Some(0), Some(500), Some(3)]);
        assert_eq!(a.wake_in, Some(Duration::from_secs(50)));
        // Job x's own lag (topic a): the young partition below min_lag reads 0.
        let mut own = lag.clone();
        own.partitions.retain(|p| &*p.tp.topic == "a");
        let own: Vec<Option<i64>> = a.job_lag(0, own).partitions.iter().map(|p| p.lag).collect();
        assert_eq!(own, [Some(0), Some(500)]);
        assert_eq!(a.decisions[0].reason, Some(crate::lag::wake::Reason::Lag));

        // Without any policy nothing is touched.
        let plain = [job("y", &["a", "b"], WakePolicy::default())];
        let a = apply(&plain, &[0], std::slice::from_ref(&lag), &ages);
        assert!(a.group_lags.is_none() && a.wake_in.is_none() && a.cap(0).is_none());
        assert_eq!(a.job_lag(0, lag.clone()), lag);
    }
}
