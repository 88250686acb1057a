//! The reconcile loop: every cycle, one snapshot → lag per job → start what is missing.
//!
//! Level-triggered (see `lag::decide`): each cycle compares the instances a job should have
//! with those it has, so a backlog present at start, a lost wake-up or a consumer that died with
//! work left are all served by the next cycle. The loop only moves data; every decision is a
//! pure function in `lag`.

pub mod http;
pub mod metrics;
pub mod snapshot;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::cluster::Cluster;
use crate::config::kafkadata::{Job, Kafkadata};
use crate::lag::decide::decide;
use crate::lag::group::{group_lag, GroupLag};
use crate::lag::stuck::{StuckEvent, StuckPolicy, StuckTracker};
use crate::lag::Policy;
use crate::launch::Launcher;
use crate::offsets::visible::{self, Gap, MAX_GAP};
use crate::protocol::api::{api_name, FETCH};
use http::Health;
use metrics::Metrics;
use snapshot::Topology;

/// Settings of the loop.
#[derive(Debug, Clone)]
pub struct ObserverConfig {
    pub kafkadata: Kafkadata,
    pub policy: Policy,
    pub ticker: Duration,
    pub max_instances: Option<u32>,
    pub stuck: StuckPolicy,
    pub metadata_refresh: Duration,
    /// How long a freshly created run counts as active even if the launcher does not list it yet.
    pub launch_grace: Duration,
    /// Long-poll Fetch on idle partitions: wake at the first record instead of the next tick.
    pub long_poll: bool,
    /// Cycle period while every partition is idle and watched by the long poll.
    pub idle_ticker: Duration,
}

/// The observer: owns the loop's state.
pub struct Observer {
    cfg: ObserverConfig,
    jobs: Vec<Job>,
    groups: Vec<(String, Vec<String>)>,
    cluster: Arc<Cluster>,
    launcher: Launcher,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    topology: Topology,
    stuck: StuckTracker,
    /// Instances started per job and when, for the launch grace.
    recent: BTreeMap<String, Vec<(Instant, u32)>>,
    /// Last launch per job: a job launched moments ago counts as working even if its instances
    /// already died (a consumer that crashes at once must still be seen as stuck).
    last_launch: BTreeMap<String, Instant>,
    last_error: Option<(String, Instant)>,
    watcher: Option<watch::Watcher>,
    /// Every partition is idle and watched: the long poll replaces the fast tick.
    all_idle: bool,
    /// Group names shared by the per-partition series.
    group_names: Vec<Arc<str>>,
    /// Small gaps between a commit and the end, and whether a consumer would see anything there.
    gap_verdicts: HashMap<Gap, bool>,
}

/// What one cycle did, for tests and logs.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub launched: Vec<(String, u32)>,
    pub requests: u64,
}

impl Observer {
    pub fn new(
        cfg: ObserverConfig,
        cluster: Arc<Cluster>,
        launcher: Launcher,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        let watcher = cfg
            .long_poll
            .then(|| watch::Watcher::new(cluster.clone(), cfg.policy, cfg.idle_ticker));
        let group_names = cfg
            .kafkadata
            .groups()
            .iter()
            .map(|(g, _)| g.as_str().into())
            .collect();
        Observer {
            group_names,
            gap_verdicts: HashMap::new(),
            jobs: cfg.kafkadata.jobs(),
            groups: cfg.kafkadata.groups(),
            topology: Topology::new(&cfg.kafkadata, cfg.metadata_refresh),
            stuck: StuckTracker::new(cfg.stuck),
            cfg,
            cluster,
            launcher,
            metrics,
            health,
            recent: BTreeMap::new(),
            last_launch: BTreeMap::new(),
            last_error: None,
            all_idle: false,
            watcher,
        }
    }

    /// Cycles until `shutdown` resolves, then stops local children.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let started = tokio::time::Instant::now();
            self.cycle_once().await;
            let period = if self.all_idle {
                self.cfg.idle_ticker
            } else {
                self.cfg.ticker
            };
            let woken = async {
                match &self.watcher {
                    Some(w) => w.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep_until(started + period) => {}
                _ = woken => tracing::debug!("woken by the long poll"),
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down");
        self.launcher.shutdown().await;
    }

    /// One cycle with metrics, health and error logging around it.
    pub async fn cycle_once(&mut self) -> Option<CycleReport> {
        let t = Instant::now();
        // The cycle's own requests; long-poll Fetches run beside the cycle and are counted
        // per API in kafka_observer_broker_requests_total{api="Fetch"}.
        let own = |s: &crate::cluster::RequestStats| s.total() - s.get(FETCH);
        let before = own(self.cluster.stats());
        let result = self.cycle().await;
        let requests = own(self.cluster.stats()).saturating_sub(before);
        self.metrics.cycles.inc();
        self.metrics
            .cycle_seconds
            .observe(t.elapsed().as_secs_f64());
        self.metrics.requests_per_cycle.set(requests as i64);
        for (key, n) in self.cluster.stats().snapshot() {
            let c = self.metrics.requests.get_or_create(&metrics::ApiLabel {
                api: api_name(key).to_string(),
            });
            let seen = c.get();
            if n > seen {
                c.inc_by(n - seen);
            }
        }
        match result {
            Ok(mut report) => {
                self.health.ok();
                self.last_error = None;
                report.requests = requests;
                Some(report)
            }
            Err(e) => {
                self.metrics.cycle_failures.inc();
                self.health.failed(e.clone());
                // Once per distinct error, then once a minute: a broker outage must not flood logs.
                let repeat = matches!(&self.last_error, Some((m, at)) if *m == e && at.elapsed() < Duration::from_secs(60));
                if !repeat {
                    tracing::error!(error = %e, "cycle failed");
                    self.last_error = Some((e, Instant::now()));
                }
                None
            }
        }
    }

    async fn cycle(&mut self) -> Result<CycleReport, String> {
        self.topology.update(&self.cluster).await?;
        // Ends the long poll already knows need no ListOffsets.
        let snap = snapshot::take(
            &self.cluster,
            self.topology.partitions(),
            &self.groups,
            self.watcher.as_ref(),
        )
        .await;
        if !snap.ends.is_empty() && snap.ends.values().all(|e| e.is_err()) {
            let first = snap.ends.values().find_map(|e| e.as_ref().err());
            return Err(first.map(ToString::to_string).unwrap_or_default());
        }
        let nothing_to_read = self.nothing_to_read(&snap).await;
        // Lag per group, once: both the exported offsets and the long poll need it.
        let group_lags: Vec<GroupLag> = self
            .groups
            .iter()
            .map(|(group, topics)| {
                group_lag(
                    topics,
                    &snap.partitions,
                    &snap.ends,
                    snap.committed.get(group),
                    &self.cfg.policy,
                    &nothing_to_read,
                )
            })
            .collect();
        self.all_idle = self.watch_idle(&snap, &group_lags);

        // Lag per job (pure; computed again, one job at a time, where it is used: a thousand
        // jobs' partition lists at once would be the cycle's biggest allocation), then active
        // instances of the jobs that have work.
        let (snap_ref, policy, nothing_ref) = (&snap, &self.cfg.policy, &nothing_to_read);
        let lag_of = |j: &Job| {
            group_lag(
                &j.topics,
                &snap_ref.partitions,
                &snap_ref.ends,
                snap_ref.committed.get(&j.consumer_group),
                policy,
                nothing_ref,
            )
        };
        let busy: Vec<usize> = (0..self.jobs.len())
            .filter(|i| lag_of(&self.jobs[*i]).lagging() > 0)
            .collect();
        let launcher = &self.launcher;
        let mut actives: Vec<Option<Result<u32, _>>> = (0..self.jobs.len()).map(|_| None).collect();
        let counted = join_all(busy.iter().map(|i| launcher.active(&self.jobs[*i]))).await;
        for (i, n) in busy.iter().zip(counted) {
            actives[*i] = Some(n);
        }

        // Decide (pure), remembering stuck partitions.
        let now = Instant::now();
        let mut plan: Vec<(usize, u32)> = Vec::new();
        for (i, job) in self.jobs.iter().enumerate() {
            let lag = &lag_of(job);
            let label = metrics::job(&job.name);
            let listed = match actives[i].take().unwrap_or(Ok(0)) {
                Ok(n) => n,
                Err(e) => {
                    self.metrics.launcher_errors.get_or_create(&label).inc();
                    tracing::warn!(job = %job.name, error = %e, "cannot count active instances; not launching this cycle");
                    self.metrics
                        .desired
                        .get_or_create(&label)
                        .set(lag.lagging() as i64);
                    continue;
                }
            };
            let grace = self.cfg.launch_grace;
            let recent = self.recent.entry(job.name.clone()).or_default();
            recent.retain(|(at, _)| now.duration_since(*at) < grace);
            let active = listed.max(recent.iter().map(|(_, k)| *k).sum());
            let window = (self.cfg.ticker * 3).max(Duration::from_secs(5));
            let working = active > 0
                || self
                    .last_launch
                    .get(&job.name)
                    .is_some_and(|t| now.duration_since(*t) < window);
            let mut all_stuck = lag.lagging() > 0;
            for p in &lag.partitions {
                match self
                    .stuck
                    .observe(&job.consumer_group, &p.tp, p.committed, p.lag, working)
                {
                    Some(StuckEvent::Stuck {
                        group,
                        tp,
                        committed,
                        lag,
                    }) => tracing::warn!(
                        job = %job.name, %group, partition = %tp, ?committed, lag,
                        "lag is stuck: the committed offset has not moved although consumers were running; wake-ups back off"
                    ),
                    Some(StuckEvent::Moving { group, tp }) => {
                        tracing::info!(job = %job.name, %group, partition = %tp, "stuck partition is moving again")
                    }
                    None => {}
                }
                if p.lag.is_some_and(|l| l > 0) && !self.stuck.is_stuck(&job.consumer_group, &p.tp)
                {
                    all_stuck = false;
                }
            }
            let gate = self.stuck.may_wake(&job.name, all_stuck, now);
            let d = decide(lag.lagging(), active, self.cfg.max_instances, gate);
            self.metrics
                .desired
                .get_or_create(&label)
                .set(d.desired as i64);
            self.metrics.active.get_or_create(&label).set(active as i64);
            if d.launch > 0 {
                plan.push((i, d.launch));
                self.stuck.woke(&job.name, all_stuck, now);
            } else if !gate && lag.lagging() > active {
                tracing::debug!(job = %job.name, held_for = ?self.stuck.held_for(&job.name, now), "stuck job: wake-up held back");
            }
        }
        self.export_offsets(&snap, &group_lags);
        drop(group_lags);

        // Act: one job run per job, jobs in parallel.
        let (jobs, launcher) = (&self.jobs, &self.launcher);
        let results = join_all(plan.iter().map(|(i, k)| {
            let job = &jobs[*i];
            async move { (job, *k, launcher.launch(job, *k).await) }
        }))
        .await;
        let mut report = CycleReport::default();
        for (job, k, result) in results {
            let label = metrics::job(&job.name);
            match result {
                Ok(run) => {
                    tracing::info!(job = %job.name, instances = k, run = %run, "woke consumers");
                    self.metrics.jobruns_created.get_or_create(&label).inc();
                    self.metrics
                        .instances_started
                        .get_or_create(&label)
                        .inc_by(k as u64);
                    self.recent
                        .entry(job.name.clone())
                        .or_default()
                        .push((now, k));
                    self.last_launch.insert(job.name.clone(), now);
                    report.launched.push((job.name.clone(), k));
                }
                Err(e) => {
                    self.metrics.launcher_errors.get_or_create(&label).inc();
                    tracing::warn!(job = %job.name, instances = k, error = %e, "launch failed; retrying next cycle");
                }
            }
        }
        Ok(report)
    }

    /// Commits that sit below nothing a consumer would see (see `offsets::visible`). Small gaps
    /// only, each looked at once: the records of a gap never change, so a verdict holds until
    /// the commit or the end moves.
    async fn nothing_to_read(
        &mut self,
        snap: &snapshot::Snapshot,
    ) -> HashSet<(crate::offsets::TopicPartition, i64)> {
        let mut gaps: BTreeSet<Gap> = BTreeSet::new();
        for (group, _) in &self.groups {
            let Some(Ok(offsets)) = snap.committed.get(group) else {
                continue;
            };
            for (tp, c) in &offsets.committed {
                let Some(Ok(e)) = snap.ends.get(tp) else {
                    continue;
                };
                let end = self.cfg.policy.end(e);
                if c.offset >= e.log_start && c.offset < end && end - c.offset <= MAX_GAP {
                    gaps.insert(Gap {
                        tp: tp.clone(),
                        from: c.offset,
                        end,
                    });
                }
            }
        }
        self.gap_verdicts.retain(|g, _| gaps.contains(g));
        let new: Vec<Gap> = gaps
            .iter()
            .filter(|g| !self.gap_verdicts.contains_key(*g))
            .cloned()
            .collect();
        if !new.is_empty() {
            let read_committed = self.cfg.policy.read_committed();
            let empty =
                visible::gaps_with_nothing_visible(&self.cluster, &new, read_committed).await;
            for g in new {
                let e = empty.contains(&g);
                if e {
                    tracing::debug!(partition = %g.tp, from = g.from, end = g.end, "nothing visible between commit and end (transaction markers, aborted records): no lag");
                }
                self.gap_verdicts.insert(g, e);
            }
        }
        self.gap_verdicts
            .iter()
            .filter(|(_, e)| **e)
            .map(|(g, _)| (g.tp.clone(), g.from))
            .collect()
    }

    /// Hands the idle partitions (every group caught up) to the long poll; true when that is
    /// every watched partition, so the slow idle tick may replace the fast one.
    fn watch_idle(&mut self, snap: &snapshot::Snapshot, group_lags: &[GroupLag]) -> bool {
        let Some(w) = &mut self.watcher else {
            return false;
        };
        // Partitions some group still has to read (few, usually) stay with the timed cycle.
        let busy: std::collections::HashSet<&crate::offsets::TopicPartition> = group_lags
            .iter()
            .flat_map(|l| &l.partitions)
            .filter(|p| p.lag != Some(0))
            .map(|p| &p.tp)
            .collect();
        let idle = snap.ends.iter().filter_map(|(tp, e)| match e {
            Ok(e) if !busy.contains(tp) => Some((tp.clone(), *e)),
            _ => None,
        });
        let complete = w.sync(idle);
        // Every partition idle: none busy, none unreadable.
        complete
            && busy.is_empty()
            && !snap.ends.is_empty()
            && snap.ends.values().all(Result::is_ok)
    }

    /// Offsets and lag per group and partition, as of this snapshot.
    fn export_offsets(&self, snap: &snapshot::Snapshot, group_lags: &[GroupLag]) {
        let m = &self.metrics;
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
        for (((group, _), name), lag) in self.groups.iter().zip(&self.group_names).zip(group_lags) {
            for p in &lag.partitions {
                rows.push(metrics::GroupRow {
                    group: name.clone(),
                    topic: p.tp.topic.clone(),
                    partition: p.tp.partition,
                    lag: p.lag,
                    committed: p.committed,
                    stuck: self.stuck.is_stuck(group, &p.tp),
                });
            }
            let g = metrics::GroupLabel {
                group: group.clone(),
            };
            m.group_lag.get_or_create(&g).set(lag.total_lag());
            m.unknown.get_or_create(&g).set(lag.unknown() as i64);
        }
        m.partitions.set(parts, rows);
    }
}
