//! Prometheus metrics of the observer, named like the exporters Kafka operators already know
//! (kafka-lag-exporter's `kafka_consumergroup_*` and `kafka_partition_*`), plus the observer's
//! own `kafka_observer_*` for jobs, cycles and broker load.
//!
//! Per-partition families are rebuilt every cycle, so a partition or group that disappears from
//! the mapping disappears from the output instead of freezing at its last value.
//!
//! Per-partition label sets hold shared names (`Arc<str>`, interned by [`Names`]) and the
//! partition as an integer: tens of thousands of label sets then cost no string allocations of
//! their own. The text output is the same (`partition="3"`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupPartition {
    pub group: Arc<str>,
    pub topic: Arc<str>,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicPartitionLabels {
    pub topic: Arc<str>,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    pub job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub api: String,
}

/// Every metric the observer exports.
pub struct Metrics {
    registry: Registry,
    pub lag: Family<GroupPartition, Gauge>,
    pub committed: Family<GroupPartition, Gauge>,
    pub stuck: Family<GroupPartition, Gauge>,
    pub group_lag: Family<GroupLabel, Gauge>,
    pub latest: Family<TopicPartitionLabels, Gauge>,
    pub stable: Family<TopicPartitionLabels, Gauge>,
    pub earliest: Family<TopicPartitionLabels, Gauge>,
    pub unknown: Family<GroupLabel, Gauge>,
    pub desired: Family<JobLabel, Gauge>,
    pub active: Family<JobLabel, Gauge>,
    pub jobruns_created: Family<JobLabel, Counter>,
    pub instances_started: Family<JobLabel, Counter>,
    pub launcher_errors: Family<JobLabel, Counter>,
    pub cycle_seconds: Histogram,
    pub cycles: Counter,
    pub cycle_failures: Counter,
    pub requests_per_cycle: Gauge,
    pub requests: Family<ApiLabel, Counter>,
    /// Size of the last `/metrics` body: the next one is allocated at once, not by doubling.
    last_len: AtomicUsize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            lag: Family::default(),
            committed: Family::default(),
            stuck: Family::default(),
            group_lag: Family::default(),
            latest: Family::default(),
            stable: Family::default(),
            earliest: Family::default(),
            unknown: Family::default(),
            desired: Family::default(),
            active: Family::default(),
            jobruns_created: Family::default(),
            instances_started: Family::default(),
            launcher_errors: Family::default(),
            cycle_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            cycles: Counter::default(),
            cycle_failures: Counter::default(),
            requests_per_cycle: Gauge::default(),
            requests: Family::default(),
            last_len: AtomicUsize::new(0),
        };
        let mut r = Registry::default();
        r.register(
            "kafka_consumergroup_group_lag",
            "Records the group still has to read in a partition (to the last stable offset unless configured otherwise)",
            m.lag.clone(),
        );
        r.register(
            "kafka_consumergroup_group_offset",
            "Committed offset of the group in a partition",
            m.committed.clone(),
        );
        r.register(
            "kafka_consumergroup_group_sum_lag",
            "Sum of the group's known partition lags",
            m.group_lag.clone(),
        );
        r.register(
            "kafka_partition_latest_offset",
            "High watermark of a partition",
            m.latest.clone(),
        );
        r.register(
            "kafka_partition_last_stable_offset",
            "Last stable offset of a partition (read_committed end)",
            m.stable.clone(),
        );
        r.register(
            "kafka_partition_earliest_offset",
            "Log start offset of a partition",
            m.earliest.clone(),
        );
        r.register(
            "kafka_observer_partition_stuck",
            "1 when the group's commit has not moved for many cycles although consumers were active",
            m.stuck.clone(),
        );
        r.register(
            "kafka_observer_group_unknown_partitions",
            "Partitions of the group whose offsets could not be read in the last cycle",
            m.unknown.clone(),
        );
        r.register(
            "kafka_observer_job_desired_instances",
            "Instances the job should have: one per lagging partition",
            m.desired.clone(),
        );
        r.register(
            "kafka_observer_job_active_instances",
            "Instances of the job requested, pending or running",
            m.active.clone(),
        );
        r.register(
            "kafka_observer_jobruns_created",
            "Job runs created",
            m.jobruns_created.clone(),
        );
        r.register(
            "kafka_observer_instances_started",
            "Consumer instances started (sum of job run array sizes)",
            m.instances_started.clone(),
        );
        r.register(
            "kafka_observer_launcher_errors",
            "Failed calls to the launcher (Code Engine API errors)",
            m.launcher_errors.clone(),
        );
        r.register(
            "kafka_observer_cycle_duration_seconds",
            "Time of one observe-decide-launch cycle",
            m.cycle_seconds.clone(),
        );
        r.register("kafka_observer_cycles", "Cycles run", m.cycles.clone());
        r.register(
            "kafka_observer_cycle_failures",
            "Cycles that could not take a snapshot",
            m.cycle_failures.clone(),
        );
        r.register(
            "kafka_observer_broker_requests_per_cycle",
            "Kafka requests the last cycle sent (long-poll Fetches excluded: see kafka_observer_broker_requests_total)",
            m.requests_per_cycle.clone(),
        );
        r.register(
            "kafka_observer_broker_requests",
            "Kafka requests sent, per API",
            m.requests.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Forgets every per-partition and per-group value before a cycle sets them anew.
    pub fn clear_partitions(&self) {
        self.lag.clear();
        self.committed.clear();
        self.stuck.clear();
        self.group_lag.clear();
        self.latest.clear();
        self.stable.clear();
        self.earliest.clear();
        self.unknown.clear();
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let hint = self.last_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(hint + hint / 8);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }
}

pub fn gp(group: &Arc<str>, topic: &Arc<str>, partition: i32) -> GroupPartition {
    GroupPartition {
        group: group.clone(),
        topic: topic.clone(),
        partition,
    }
}

pub fn tpl(topic: &Arc<str>, partition: i32) -> TopicPartitionLabels {
    TopicPartitionLabels {
        topic: topic.clone(),
        partition,
    }
}

/// Interned topic and group names for label sets: one allocation per name, not per series.
#[derive(Debug, Default)]
pub struct Names(HashSet<Arc<str>>);

impl Names {
    pub fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.0.insert(n.clone());
        n
    }

    /// Drops names no label set uses any more (only this table holds them).
    pub fn prune(&mut self) {
        self.0.retain(|n| Arc::strong_count(n) > 1);
    }
}

pub fn job(name: &str) -> JobLabel {
    JobLabel {
        job: name.to_string(),
    }
}
