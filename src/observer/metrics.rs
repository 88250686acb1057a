//! Prometheus metrics of the observer, named like the exporters Kafka operators already know
//! (kafka-lag-exporter's `kafka_consumergroup_*` and `kafka_partition_*`), plus the observer's
//! own `kafka_observer_*` for jobs, cycles and broker load.
//!
//! Per-partition series are kept as plain rows of the last cycle ([`PartitionSeries`]) and
//! written out at scrape time: a `Family` would hold a label set and an atomic per series, tens
//! of thousands of allocations at 10,000 partitions, rebuilt every cycle. Rows are replaced as a
//! whole each cycle, so a partition or group that leaves the mapping leaves the output instead
//! of freezing at its last value. The text output is the usual one (`partition="3"`).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, LabelSetEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::offsets::Ends;

struct GroupPartitionLabels<'a> {
    group: &'a str,
    topic: &'a str,
    partition: i32,
}

impl EncodeLabelSet for GroupPartitionLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("group", self.group).encode(encoder.encode_label())?;
        ("topic", self.topic).encode(encoder.encode_label())?;
        ("partition", self.partition).encode(encoder.encode_label())
    }
}

struct TopicPartitionLabels<'a> {
    topic: &'a str,
    partition: i32,
}

impl EncodeLabelSet for TopicPartitionLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        ("topic", self.topic).encode(encoder.encode_label())?;
        ("partition", self.partition).encode(encoder.encode_label())
    }
}

/// Ends of one partition, as of the last cycle.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRow {
    pub topic: Arc<str>,
    pub partition: i32,
    pub ends: Ends,
}

/// One group in one partition, as of the last cycle.
#[derive(Debug, Clone)]
pub(crate) struct GroupRow {
    pub group: Arc<str>,
    pub topic: Arc<str>,
    pub partition: i32,
    pub lag: Option<i64>,
    pub committed: Option<i64>,
    pub stuck: bool,
    /// Age of the first record the group would read next, ms (see `offsets::timestamps`).
    pub time_lag_ms: Option<i64>,
}

type Rows = Arc<(Vec<PartitionRow>, Vec<GroupRow>)>;

/// The per-partition series (see the module docs). A scrape takes the current rows and lets
/// go of the lock at once: a slow client never holds up a cycle.
#[derive(Debug, Default)]
pub(crate) struct PartitionSeries(Mutex<Rows>);

impl PartitionSeries {
    /// Replaces every row.
    pub(crate) fn set(&self, partitions: Vec<PartitionRow>, groups: Vec<GroupRow>) {
        let old = std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()),
            Arc::new((partitions, groups)),
        );
        drop(old);
    }
}

type Help = (&'static str, &'static str);
type EndsSeries = (Help, fn(&Ends) -> i64);
type GroupSeries = (Help, fn(&GroupRow) -> Option<i64>);

const LATEST: Help = (
    "kafka_partition_latest_offset",
    "High watermark of a partition",
);
const STABLE: Help = (
    "kafka_partition_last_stable_offset",
    "Last stable offset of a partition (read_committed end)",
);
const EARLIEST: Help = (
    "kafka_partition_earliest_offset",
    "Log start offset of a partition",
);
const LAG: Help = (
    "kafka_consumergroup_group_lag",
    "Records the group still has to read in a partition (to the last stable offset unless configured otherwise)",
);
const OFFSET: Help = (
    "kafka_consumergroup_group_offset",
    "Committed offset of the group in a partition",
);
const LAG_SECONDS: Help = (
    "kafka_consumergroup_group_lag_seconds",
    "Age of the first record the group would read next in a partition, exactly (its timestamp against now); 0 when nothing waits",
);
const STUCK: Help = (
    "kafka_observer_partition_stuck",
    "1 when the group's commit has not moved for many cycles although consumers were active",
);

impl Collector for PartitionSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (parts, groups) = &*rows;
        let ends: [EndsSeries; 3] = [
            (LATEST, |e| e.high_watermark),
            (STABLE, |e| e.last_stable),
            (EARLIEST, |e| e.log_start),
        ];
        for ((name, help), value) in ends {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for r in parts {
                let l = TopicPartitionLabels {
                    topic: &r.topic,
                    partition: r.partition,
                };
                m.encode_family(&l)?.encode_gauge(&value(&r.ends))?;
            }
        }
        let per_group: [GroupSeries; 3] = [
            (LAG, |r| r.lag),
            (OFFSET, |r| r.committed),
            (STUCK, |r| Some(i64::from(r.stuck))),
        ];
        for ((name, help), value) in per_group {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for r in groups {
                if let Some(v) = value(r) {
                    let l = GroupPartitionLabels {
                        group: &r.group,
                        topic: &r.topic,
                        partition: r.partition,
                    };
                    m.encode_family(&l)?.encode_gauge(&v)?;
                }
            }
        }
        let (name, help) = LAG_SECONDS;
        let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for r in groups {
            if let Some(ms) = r.time_lag_ms {
                let l = GroupPartitionLabels {
                    group: &r.group,
                    topic: &r.topic,
                    partition: r.partition,
                };
                m.encode_family(&l)?.encode_gauge(&(ms as f64 / 1000.0))?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabel {
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobLabel {
    pub job: String,
}

/// A job and why it was woken: `lag` (records, `min_lag`) or `age` (`max_wait`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct WakeLabel {
    pub job: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ApiLabel {
    pub api: String,
}

/// An IBM Cloud call: `iam`, `list`, `create`, `get`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallLabel {
    pub call: String,
}

/// An IBM Cloud call and the status class of its failure (`429`, `4xx`, `5xx`, `timeout`,
/// `connect`, `broken`, `too_large`, `body`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallClassLabel {
    pub call: String,
    pub class: String,
}

/// Every metric the observer exports.
pub(crate) struct Metrics {
    registry: Registry,
    pub partitions: Arc<PartitionSeries>,
    pub group_lag: Family<GroupLabel, Gauge>,
    pub group_max_lag_seconds: Family<GroupLabel, Gauge<f64, AtomicU64>>,
    pub unknown: Family<GroupLabel, Gauge>,
    pub desired: Family<JobLabel, Gauge>,
    pub active: Family<JobLabel, Gauge>,
    pub jobruns_created: Family<JobLabel, Counter>,
    pub wakeups: Family<WakeLabel, Counter>,
    pub instances_started: Family<JobLabel, Counter>,
    pub launcher_errors: Family<JobLabel, Counter>,
    pub backoff: Family<JobLabel, Gauge>,
    pub launcher_requests: Family<CallLabel, Counter>,
    pub launcher_failures: Family<CallClassLabel, Counter>,
    pub cycle_seconds: Histogram,
    pub cycles: Counter,
    pub cycle_failures: Counter,
    pub requests_per_cycle: Gauge,
    pub requests: Family<ApiLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            partitions: Arc::default(),
            group_lag: Family::default(),
            group_max_lag_seconds: Family::default(),
            unknown: Family::default(),
            desired: Family::default(),
            active: Family::default(),
            jobruns_created: Family::default(),
            wakeups: Family::default(),
            instances_started: Family::default(),
            launcher_errors: Family::default(),
            backoff: Family::default(),
            launcher_requests: Family::default(),
            launcher_failures: Family::default(),
            cycle_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            cycles: Counter::default(),
            cycle_failures: Counter::default(),
            requests_per_cycle: Gauge::default(),
            requests: Family::default(),
        };
        let mut r = Registry::default();
        r.register_collector(Box::new(m.partitions.clone()));
        r.register(
            "kafka_consumergroup_group_sum_lag",
            "Sum of the group's known partition lags",
            m.group_lag.clone(),
        );
        r.register(
            "kafka_consumergroup_group_max_lag_seconds",
            "Largest time lag over the group's partitions (kafka_consumergroup_group_lag_seconds)",
            m.group_max_lag_seconds.clone(),
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
            "Instances of the job requested, pending or running, as the launcher last counted them plus those started since",
            m.active.clone(),
        );
        r.register(
            "kafka_observer_jobruns_created",
            "Job runs created",
            m.jobruns_created.clone(),
        );
        r.register(
            "kafka_observer_wakeups",
            "Start orders per job and why: reason=\"lag\" (records, from min_lag), \"age\" (the oldest waited max_wait)",
            m.wakeups.clone(),
        );
        r.register(
            "kafka_observer_instances_started",
            "Consumer instances started (sum of job run array sizes)",
            m.instances_started.clone(),
        );
        r.register(
            "kafka_observer_launcher_errors",
            "Launcher orders (count, start) that failed after their retries, per job",
            m.launcher_errors.clone(),
        );
        r.register(
            "kafka_observer_job_backoff_seconds",
            "Current crash-loop back-off of the job's wake-ups (0: none)",
            m.backoff.clone(),
        );
        r.register(
            "kafka_observer_launcher_requests",
            "IBM Cloud requests sent, per call (iam, list, create, get)",
            m.launcher_requests.clone(),
        );
        r.register(
            "kafka_observer_launcher_failures",
            "Failed IBM Cloud attempts (each retry counts), per call and status class",
            m.launcher_failures.clone(),
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

    /// Forgets every per-group value before a cycle sets them anew.
    pub(crate) fn clear_groups(&self) {
        self.group_lag.clear();
        self.group_max_lag_seconds.clear();
        self.unknown.clear();
    }

    /// Writes the OpenMetrics text to `out` (which may stop it with an error).
    pub(crate) fn encode_to(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        prometheus_client::encoding::text::encode(out, &self.registry)
    }
}

pub(crate) fn job(name: &str) -> JobLabel {
    JobLabel {
        job: name.to_string(),
    }
}
