//! The reconcile loop. Every cycle reads as four words: **snapshot** (ends and commits, one
//! round trip) → **plan** (pure: `lag::reconcile`; each consumer group as a whole, then its
//! jobs) → **act** (orders to the launcher's own
//! tasks, never awaited) → **export** (metrics, health).
//!
//! Level-triggered: each cycle compares the instances a job should have with those it has, so
//! a backlog present at start, a lost wake-up or a consumer that died with work left are all
//! served by the next cycle. IBM Cloud is off this path: a cycle only reads the reports of
//! orders that finished (at its start; a report does not wake a cycle of its own: a job with
//! work is on the fast tick anyway) and sends new ones, so an outage of IAM or Code Engine leaves lag,
//! metrics and the long poll running, and shows in `/healthz`.

mod act;
mod ages;
pub(crate) mod error;
mod export;
mod gaps;
pub(crate) mod http;
pub(crate) mod metrics;
pub(crate) mod snapshot;
mod wake_up;
pub(crate) mod watch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::config::kafkadata::{Job, Kafkadata};
use crate::lag::cover::Shared;
use crate::lag::group::{group_lag, GroupLag};
use crate::lag::reconcile::{JobInput, Order, Reconciler, Settings};
use crate::lag::stuck::StuckPolicy;
use crate::lag::wake::Reason;
use crate::lag::Policy;
use crate::launch::agent::Agent;
use crate::launch::Launcher;
use crate::protocol::api::FETCH;
use error::CycleError;
use http::Health;
use metrics::Metrics;
use snapshot::Topology;

/// Settings of the loop.
#[derive(Debug, Clone)]
pub(crate) struct ObserverConfig {
    pub kafkadata: Kafkadata,
    pub policy: Policy,
    pub ticker: Duration,
    pub max_instances: Option<u32>,
    pub stuck: StuckPolicy,
    /// Plan jobs that share a consumer group together (false: each alone; a benchmark knob).
    pub group_plan: bool,
    pub metadata_refresh: Duration,
    /// How long a freshly created run may be missing from a count (Code Engine lists new runs
    /// a moment late; local children are counted exactly).
    pub launch_grace: Duration,
    /// Long-poll Fetch on idle partitions: wake at the first record instead of the next tick.
    pub long_poll: bool,
    /// Cycle period while every partition is idle and watched by the long poll.
    pub idle_ticker: Duration,
    /// Shortest time between two counts of a lagging job's instances (ListJobRuns).
    pub launcher_refresh: Duration,
    /// First crash-loop back-off of a job's wake-ups; doubles per sign up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline of one launcher order (a count, a start, or both).
    pub launcher_deadline: Duration,
    /// Launcher calls failing or unanswered for longer than this make `/healthz` 503.
    pub launcher_health: Duration,
}

/// The observer: owns the loop's state.
pub(crate) struct Observer {
    cfg: ObserverConfig,
    jobs: Vec<Job>,
    groups: Vec<(String, Vec<String>)>,
    /// Per group (as `groups`): its jobs and which of them read which topic.
    shared: Vec<Shared>,
    /// Per job: the position of its group in `groups`.
    job_group: Vec<usize>,
    /// When records that wait under a job's `max_wait` are due: the next cycle runs then.
    next_wake: Option<tokio::time::Instant>,
    cluster: Arc<Cluster>,
    agent: Agent,
    reconciler: Reconciler,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    topology: Topology,
    watcher: Option<watch::Watcher>,
    /// Every partition is idle and watched: the long poll replaces the fast tick.
    all_idle: bool,
    /// Group names shared by the per-partition series.
    group_names: Vec<Arc<str>>,
    gaps: gaps::Gaps,
    ages: ages::Ages,
    /// The broker side's failures: since when, how many cycles, the last error logged.
    broker: act::Outage,
    /// The launcher side's failures and hangs.
    launcher: act::LauncherState,
}

impl Observer {
    pub(crate) fn new(
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
        let jobs = cfg.kafkadata.jobs();
        let settings = Settings {
            cap: cfg.max_instances,
            refresh: cfg.launcher_refresh,
            launch_grace: cfg.launch_grace,
            first_backoff: cfg.backoff,
            max_backoff: cfg.max_backoff,
            working_window: (cfg.ticker * 3).max(Duration::from_secs(5)),
            stuck: cfg.stuck,
            group_plan: cfg.group_plan,
        };
        let groups = cfg.kafkadata.groups();
        let shared = shared_groups(&groups, &jobs);
        // Each job's group, from the groups' job lists (one pass, not a search per job: 20k
        // jobs in 20k groups would be 400 M name comparisons at start).
        let mut job_group = vec![usize::MAX; jobs.len()];
        for (g, s) in shared.iter().enumerate() {
            for &j in &s.jobs {
                if let Some(slot) = job_group.get_mut(j) {
                    *slot = g;
                }
            }
        }
        Observer {
            job_group,
            next_wake: None,
            group_names,
            shared,
            gaps: gaps::Gaps::default(),
            ages: ages::Ages::default(),
            reconciler: Reconciler::new(settings, jobs.len()),
            agent: Agent::new(launcher, jobs.clone(), cfg.launcher_deadline),
            launcher: act::LauncherState::new(jobs.len()),
            jobs,
            groups,
            topology: Topology::new(&cfg.kafkadata, cfg.metadata_refresh),
            cfg,
            cluster,
            metrics,
            health,
            broker: act::Outage::default(),
            all_idle: false,
            watcher,
        }
    }

    /// Cycles until `shutdown` resolves, then stops local children.
    pub(crate) async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
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
            // A record waiting under `max_wait` is looked at again the moment it is due.
            let until = match self.next_wake {
                Some(w) => (started + period).min(w),
                None => started + period,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = woken => tracing::debug!("woken by the long poll"),
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down");
        self.agent.launcher().shutdown().await;
    }

    /// One cycle with metrics, health and failure logging around it. Returns the cycle's own
    /// broker requests (long-poll Fetches run beside it) when it succeeded.
    pub(crate) async fn cycle_once(&mut self) -> Option<u64> {
        let t = Instant::now();
        let own = |s: &crate::cluster::RequestStats| s.total() - s.get(FETCH);
        let before = own(self.cluster.stats());
        // Launcher reports first: they count even while the broker side fails.
        let reports = self.agent.drain();
        act::apply_reports(
            reports,
            &mut self.reconciler,
            &mut self.launcher,
            &self.metrics,
            &self.jobs,
            Instant::now(),
        );
        let result = self.cycle().await;
        let requests = own(self.cluster.stats()).saturating_sub(before);
        export::cycle(&self.metrics, t.elapsed(), requests, &self.cluster);
        let calls = self.agent.launcher().call_log();
        if let Some(calls) = &calls {
            export::calls(&self.metrics, &calls.counts());
        }
        let trouble = self.launcher.trouble(
            calls.and_then(|c| c.failing_since()),
            self.agent.oldest_out(),
            Instant::now(),
            self.cfg.launcher_health,
        );
        self.health.launcher(trouble);
        match result {
            Ok(()) => {
                self.health.ok();
                self.broker.ok("Kafka cluster");
                Some(requests)
            }
            Err(e) => {
                self.metrics.cycle_failures.inc();
                self.broker.failed("Kafka cluster", &e.to_string());
                self.health.failed(e);
                None
            }
        }
    }

    /// snapshot → plan → act → export.
    async fn cycle(&mut self) -> Result<(), CycleError> {
        // Snapshot.
        self.topology.update(&self.cluster).await?;
        // Ends the long poll already knows need no ListOffsets.
        let snap = snapshot::take(
            &self.cluster,
            self.topology.partitions(),
            &self.groups,
            self.watcher.as_ref(),
        )
        .await;
        if snap.ends.values().all(|e| e.is_err()) {
            if let Some(first) = snap.ends.values().find_map(|e| e.as_ref().err()) {
                return Err(CycleError::Ends(first.clone()));
            }
        }
        let nothing_to_read = self
            .gaps
            .nothing_to_read(&self.cluster, &self.cfg.policy, &self.groups, &snap)
            .await;
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
        let time_lags = self
            .ages
            .time_lags(
                &self.cluster,
                &self.cfg.policy,
                &self.groups,
                &snap,
                &group_lags,
                &nothing_to_read,
            )
            .await;
        // Wake-up policies: partitions that wait read 0 for the plan and the long poll.
        let wake = wake_up::apply(&self.jobs, &self.job_group, &group_lags, &time_lags);
        self.next_wake = wake
            .wake_in
            .map(|d| tokio::time::Instant::now() + d + Duration::from_millis(1));
        let planned: &[GroupLag] = wake.group_lags.as_deref().unwrap_or(&group_lags);
        self.all_idle = self.watch_idle(&snap, planned);

        // Plan each group as a whole: how many instances each of its jobs should have.
        let now = Instant::now();
        let mut desired = vec![0u32; self.jobs.len()];
        for (((group, _), lag), shared) in self.groups.iter().zip(planned).zip(&self.shared) {
            let plan = self.reconciler.plan_group(shared, group, lag, now);
            act::log_group_events(group, &self.jobs, &plan.events);
            for (&j, d) in shared.jobs.iter().zip(plan.desired) {
                if let Some(slot) = desired.get_mut(j) {
                    // A policy's instance limit (records_per_instance, max_instances).
                    *slot = wake.cap(j).map_or(d, |c| d.min(c));
                }
            }
        }

        // Plan and act, one job at a time (a job's lag is computed again where it is used: a
        // thousand jobs' partition lists at once would be the cycle's biggest allocation).
        for (i, job) in self.jobs.iter().enumerate() {
            let lag = wake.job_lag(
                i,
                group_lag(
                    &job.topics,
                    &snap.partitions,
                    &snap.ends,
                    snap.committed.get(&job.consumer_group),
                    &self.cfg.policy,
                    &nothing_to_read,
                ),
            );
            let input = JobInput {
                lag: &lag,
                desired: desired.get(i).copied().unwrap_or(0),
            };
            let plan = self.reconciler.plan(i, &input, now);
            act::log_events(job, &plan);
            if let Some(order) = plan.order {
                if !matches!(order, Order::Count) {
                    let reason = wake.decisions.get(i).and_then(|d| d.reason);
                    export::wakeup(&self.metrics, job, reason.unwrap_or(Reason::Lag));
                }
                self.agent.send(i, order, now);
            }
            self.launcher.demand(i, plan.desired > 0);
            export::job(&self.metrics, job, &plan);
        }

        // Export.
        export::offsets(
            &self.metrics,
            &snap,
            &self.groups,
            &self.group_names,
            &group_lags,
            &time_lags,
            &self.reconciler,
        );
        Ok(())
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
}

/// Each group's jobs (as `groups`), by one pass over the jobs.
fn shared_groups(groups: &[(String, Vec<String>)], jobs: &[Job]) -> Vec<Shared> {
    let index: std::collections::HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, (g, _))| (g.as_str(), i))
        .collect();
    let mut members: Vec<Vec<(usize, &[String])>> = vec![Vec::new(); groups.len()];
    for (i, job) in jobs.iter().enumerate() {
        if let Some(&g) = index.get(job.consumer_group.as_str()) {
            members[g].push((i, job.topics.as_slice()));
        }
    }
    members.into_iter().map(Shared::new).collect()
}
