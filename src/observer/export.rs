//! The last word of a cycle: what it saw and decided, as metrics.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::{self, Metrics};
use super::snapshot::Snapshot;
use crate::cluster::Cluster;
use crate::config::kafkadata::Job;
use crate::http_client::CallCounts;
use crate::lag::group::GroupLag;
use crate::lag::reconcile::{JobPlan, Reconciler};
use crate::protocol::api::api_name;
use prometheus_client::metrics::counter::Counter;

/// Raises `c` to `n` (counters copied from elsewhere never go back).
fn catch_up(c: &Counter, n: u64) {
    let seen = c.get();
    if n > seen {
        c.inc_by(n - seen);
    }
}

/// The cycle itself: its count, time and broker requests.
pub(super) fn cycle(m: &Metrics, took: Duration, requests: u64, cluster: &Cluster) {
    m.cycles.inc();
    m.cycle_seconds.observe(took.as_secs_f64());
    m.requests_per_cycle.set(requests as i64);
    for (key, n) in cluster.stats().snapshot() {
        let label = metrics::ApiLabel {
            api: api_name(key).to_string(),
        };
        catch_up(&m.requests.get_or_create(&label), n);
    }
}

/// IBM Cloud requests and failures so far.
pub(super) fn calls(m: &Metrics, counts: &CallCounts) {
    for (call, n) in &counts.requests {
        let label = metrics::CallLabel {
            call: call.to_string(),
        };
        catch_up(&m.launcher_requests.get_or_create(&label), *n);
    }
    for ((call, class), n) in &counts.failures {
        let label = metrics::CallClassLabel {
            call: call.to_string(),
            class: class.to_string(),
        };
        catch_up(&m.launcher_failures.get_or_create(&label), *n);
    }
}

/// One job's plan.
pub(super) fn job(m: &Metrics, job: &Job, plan: &JobPlan) {
    let label = metrics::job(&job.name);
    m.desired.get_or_create(&label).set(i64::from(plan.desired));
    m.active.get_or_create(&label).set(i64::from(plan.active));
    m.backoff
        .get_or_create(&label)
        .set(plan.backoff.as_secs() as i64);
}

/// A start order for `job`, and why (`lag::wake`).
pub(super) fn wakeup(m: &Metrics, job: &Job, reason: crate::lag::wake::Reason) {
    let label = metrics::WakeLabel {
        job: job.name.clone(),
        reason: reason.label().to_string(),
    };
    m.wakeups.get_or_create(&label).inc();
}

/// Offsets and lag per group and partition, as of this snapshot.
pub(super) fn offsets(
    m: &Metrics,
    snap: &Snapshot,
    groups: &[(String, Vec<String>)],
    group_names: &[Arc<str>],
    group_lags: &[GroupLag],
    time_lags: &[Vec<Option<i64>>],
    reconciler: &Reconciler,
) {
    let parts: Vec<metrics::PartitionRow> = snap
        .ends
        .iter()
        .filter_map(|(tp, e)| {
            let ends = *e.as_ref().ok()?;
            Some(metrics::PartitionRow {
                topic: tp.topic.clone(),
                partition: tp.partition,
                ends,
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(group_lags.iter().map(|l| l.partitions.len()).sum());
    m.clear_groups();
    let no_ages = Vec::new();
    for (i, (((group, _), name), lag)) in groups.iter().zip(group_names).zip(group_lags).enumerate()
    {
        let ages = time_lags.get(i).unwrap_or(&no_ages);
        for (j, p) in lag.partitions.iter().enumerate() {
            rows.push(metrics::GroupRow {
                group: name.clone(),
                topic: p.tp.topic.clone(),
                partition: p.tp.partition,
                lag: p.lag,
                committed: p.committed,
                stuck: reconciler.is_stuck(group, &p.tp),
                time_lag_ms: ages.get(j).copied().flatten(),
            });
        }
        let g = metrics::GroupLabel {
            group: group.clone(),
        };
        m.group_lag.get_or_create(&g).set(lag.total_lag());
        m.unknown.get_or_create(&g).set(lag.unknown() as i64);
        if let Some(max) = ages.iter().flatten().max() {
            m.group_max_lag_seconds
                .get_or_create(&g)
                .set(*max as f64 / 1000.0);
        }
    }
    m.partitions.set(parts, rows);
}
