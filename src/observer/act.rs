//! The loop's dealings with the outside: launcher reports taken in, plan events and outages
//! turned into log lines. Every failure is a line (rate-limited), every recovery one line.

use std::time::{Duration, Instant};

use super::metrics::{self, Metrics};
use crate::config::kafkadata::Job;
use crate::lag::reconcile::{Event, GroupEvent, JobPlan, Order, Reconciler};
use crate::launch::agent::Report;

/// How often a failure that goes on is logged again.
const REPEAT_EVERY: Duration = Duration::from_secs(60);

/// One side's run of failures (the Kafka cluster): the first failure is logged at once, a
/// different or continuing one at most once a minute, the recovery once.
#[derive(Debug, Default)]
pub(super) struct Outage {
    since: Option<(Instant, u64)>,
    logged: Option<(String, Instant)>,
}

impl Outage {
    pub(super) fn failed(&mut self, what: &str, error: &str) {
        let now = Instant::now();
        let (since, n) = self.since.get_or_insert((now, 0));
        *n += 1;
        let repeat = matches!(&self.logged, Some((m, at)) if m == error && now.duration_since(*at) < REPEAT_EVERY);
        if !repeat {
            tracing::error!(
                %error,
                failed_cycles = *n,
                for_s = now.duration_since(*since).as_secs(),
                "{what} unreachable; retrying every cycle"
            );
            self.logged = Some((error.to_string(), now));
        }
    }

    pub(super) fn ok(&mut self, what: &str) {
        if let Some((since, n)) = self.since.take() {
            tracing::info!(
                failed_cycles = n,
                for_s = since.elapsed().as_secs(),
                "{what} reachable again"
            );
        }
        self.logged = None;
    }
}

/// Per job: since when its orders fail, with the last error and when it was logged.
#[derive(Debug, Default, Clone)]
struct JobTrouble {
    since: Option<Instant>,
    error: String,
    logged: Option<Instant>,
}

/// The launcher side: failing orders per job, and whether it is in trouble as a whole.
#[derive(Debug)]
pub(super) struct LauncherState {
    jobs: Vec<JobTrouble>,
    /// Trouble that produced a log line (a failure, a hang past the bound): since when. Its
    /// end is logged once, as the recovery.
    noted: Option<Instant>,
}

impl LauncherState {
    pub(super) fn new(jobs: usize) -> Self {
        LauncherState {
            jobs: vec![JobTrouble::default(); jobs],
            noted: None,
        }
    }

    fn failed(&mut self, job: &Job, i: usize, at: Instant, error: &str) {
        let Some(t) = self.jobs.get_mut(i) else {
            return;
        };
        let now = Instant::now();
        t.since.get_or_insert(at);
        t.error = error.to_string();
        if t.logged
            .is_none_or(|l| now.duration_since(l) >= REPEAT_EVERY)
        {
            t.logged = Some(now);
            tracing::warn!(job = %job.name, %error, "launcher call failed; asked again after a back-off");
        }
    }

    fn succeeded(&mut self, i: usize) {
        if let Some(t) = self.jobs.get_mut(i) {
            *t = JobTrouble::default();
        }
    }

    /// Whether job `i` still wants something of the launcher: a failure of a job that no
    /// longer needs instances is no trouble any more.
    pub(super) fn demand(&mut self, i: usize, wants: bool) {
        if !wants {
            self.succeeded(i);
        }
    }

    /// The launcher's trouble for `/healthz` (which applies `bound`): since when its calls
    /// fail (`calls_failing`: the HTTP attempts; or a job's orders) or an order has been out,
    /// and what. Logs a line when an order has hung past `bound`, and one line when the
    /// trouble that produced lines is over.
    pub(super) fn trouble(
        &mut self,
        calls_failing: Option<(Instant, String)>,
        oldest_out: Option<Instant>,
        now: Instant,
        bound: Duration,
    ) -> Option<(Instant, String)> {
        let failing = self
            .jobs
            .iter()
            .filter_map(|t| t.since.map(|s| (s, t.error.clone())))
            .chain(calls_failing)
            .min_by_key(|(s, _)| *s)
            .map(|(s, e)| (s, format!("calls failing: {e}")));
        let hung = oldest_out
            .filter(|s| now.saturating_duration_since(*s) > bound)
            .map(|s| (s, "a call has not answered".to_string()));
        if let Some((since, _)) = &failing {
            self.noted.get_or_insert(*since);
        }
        if let (Some((since, what)), None) = (&hung, self.noted) {
            tracing::warn!(
                for_s = now.saturating_duration_since(*since).as_secs(),
                "launcher: {what}; /healthz reports it"
            );
            self.noted = Some(*since);
        }
        if failing.is_none() && hung.is_none() {
            if let Some(since) = self.noted.take() {
                tracing::info!(
                    for_s = now.saturating_duration_since(since).as_secs(),
                    "launcher recovered: its calls succeed again"
                );
            }
        }
        match (failing, hung) {
            (Some(f), Some(h)) => Some(if h.0 < f.0 { h } else { f }),
            (f, h) => f.or(h),
        }
    }
}

/// Takes in the launcher's reports: into the plan's state, the metrics and the log.
pub(super) fn apply_reports(
    reports: Vec<Report>,
    reconciler: &mut Reconciler,
    state: &mut LauncherState,
    m: &Metrics,
    jobs: &[Job],
    now: Instant,
) {
    for r in reports {
        reconciler.apply(&r.done, now);
        let Some(job) = jobs.get(r.done.job) else {
            continue;
        };
        let label = metrics::job(&job.name);
        if let Some(c) = r.done.count {
            tracing::debug!(job = %job.name, active = c.active, ended = c.ended, failed = c.failed, took_ms = r.took.as_millis() as u64, "counted instances");
        }
        if let Some(run) = &r.run {
            tracing::info!(job = %job.name, instances = r.done.started, %run, took_ms = r.took.as_millis() as u64, "woke consumers");
            m.jobruns_created.get_or_create(&label).inc();
            m.instances_started
                .get_or_create(&label)
                .inc_by(u64::from(r.done.started));
        }
        match &r.error {
            Some(e) => {
                m.launcher_errors.get_or_create(&label).inc();
                state.failed(job, r.done.job, r.done.at, &e.to_string());
            }
            None => state.succeeded(r.done.job),
        }
        if matches!(r.order, Order::CountThenStart { .. }) && r.done.started == 0 {
            tracing::debug!(job = %job.name, "counted: enough instances run already");
        }
    }
}

/// The plan's events as log lines.
pub(super) fn log_events(job: &Job, plan: &JobPlan) {
    for e in &plan.events {
        match e {
            Event::CrashLoop {
                ended,
                failed,
                delay,
            } => tracing::warn!(
                job = %job.name,
                ended,
                failed,
                backoff_s = delay.as_secs(),
                "consumers ended without committing (crash loop?); wake-ups back off"
            ),
            Event::Progress => {
                tracing::info!(job = %job.name, "commits move again; back-off reset")
            }
        }
    }
    if plan.held && plan.desired > plan.active {
        tracing::debug!(job = %job.name, backoff_s = plan.backoff.as_secs(), "wake-up held back by the crash-loop back-off");
    }
}

/// A group's events as log lines, naming the group and every job they affect.
pub(super) fn log_group_events(group: &str, jobs: &[Job], events: &[GroupEvent]) {
    let names = |list: &[usize]| {
        list.iter()
            .filter_map(|&j| jobs.get(j).map(|j| j.name.as_str()))
            .collect::<Vec<_>>()
            .join(",")
    };
    for e in events {
        match e {
            GroupEvent::Stuck {
                tp,
                committed,
                lag,
                jobs: affected,
            } => tracing::warn!(
                group, partition = %tp, ?committed, lag, jobs = %names(affected),
                "lag is stuck: the committed offset has not moved although consumers were running"
            ),
            GroupEvent::Moving { tp, jobs: affected } => tracing::info!(
                group, partition = %tp, jobs = %names(affected),
                "stuck partition is moving again"
            ),
        }
    }
}
