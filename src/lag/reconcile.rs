//! Every decision of the observer's cycle, as one pure state machine: (lag of each group and
//! job, what the launcher last said, each job's own state, now) → what to ask the launcher.
//!
//! **A group is planned as a whole** ([`Reconciler::plan_group`], first in a cycle): jobs that
//! share a consumer group compete for its partitions, so the instances each should have come
//! from one cover of the group's lagging partitions by the jobs' topic sets (`cover`), with the
//! running instances of every job of the group counted first. Each job's plan then tops up to
//! its share ([`JobInput::desired`]).
//!
//! **The launcher's view is a cache.** Counting a job's instances costs a Code Engine call, so
//! it is refreshed only where the count can change a decision: for a job that lags, at most
//! once per `refresh` period. Instances this observer started count at once (their array
//! size), so a job believed idle whose lag appears is started in the same cycle, without a
//! count first; only a job never counted (an observer that just started, whose predecessor
//! may have left runs behind) is counted before its first start. An idle system asks nothing.
//!
//! **Crash loops back off from the first sign.** A count that shows instances ended while the
//! job's commits did not move since its consumers were started means they died without doing
//! anything: the job's wake-ups wait `first_backoff`, doubling at each further sign up to
//! `max_backoff`; any commit progress resets it. Healing stays level-triggered: a job whose
//! consumers died with lag left is started again, never sooner than its back-off allows.
//!
//! **Failed launcher calls** are asked again after a delay that doubles from one second up to
//! the refresh period, so an IBM Cloud outage costs at most one order per job per period, and a
//! recovered cloud is used again within one.
//!
//! The stuck detector (`stuck`) rides along in the group's plan: it looks at each (group,
//! partition) once per cycle, however many jobs read it, and reports a partition whose commit
//! stands still while consumers of any job that reads it run, naming every such job.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use super::cover::{self, Member, Shared};
use super::group::GroupLag;
use super::stuck::{StuckEvent, StuckPolicy, StuckTracker};
use crate::offsets::TopicPartition;

/// Instance counts of one job as the launcher reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Count {
    /// Requested, pending or running.
    pub active: u32,
    /// Ended (succeeded, failed or unknown), over every run the launcher still lists.
    pub ended: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
}

/// What the launcher is asked to do for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Count the job's instances.
    Count,
    /// Start this many instances as one run.
    Start(u32),
    /// Count, then start what is missing up to `desired` (see [`top_up`]).
    CountThenStart { desired: u32 },
}

/// Instances to start for `desired` when `active` run.
pub(crate) fn top_up(desired: u32, active: u32) -> u32 {
    desired.saturating_sub(active)
}

/// What one order did, as the launcher reports it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Done {
    pub job: usize,
    /// When the order was sent.
    pub at: Instant,
    /// The count taken, if the order counted and that succeeded.
    pub count: Option<Count>,
    /// Instances started.
    pub started: u32,
    /// The order (or part of it) failed.
    pub failed: bool,
}

/// Settings of the plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Most instances per job.
    pub cap: Option<u32>,
    /// Shortest time between two counts of a job.
    pub refresh: Duration,
    /// How long a started run may be missing from a count (the API lists new runs late).
    pub launch_grace: Duration,
    /// First crash-loop delay; doubles per sign.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// A job started within this long counts as working for the stuck detector even if its
    /// instances are gone already.
    pub working_window: Duration,
    pub stuck: StuckPolicy,
    /// Plan each consumer group as a whole (the product); false plans each job alone, the
    /// behaviour before, kept only as a benchmark knob (`group_scaleout`).
    pub group_plan: bool,
}

/// One job's lag this cycle and its share of the group's plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobInput<'a> {
    pub lag: &'a GroupLag,
    /// Instances the job should have: its share in [`GroupPlan::desired`].
    pub desired: u32,
}

/// A change in a group worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupEvent {
    /// A partition's commit stood still for many cycles although consumers of a job that
    /// reads it ran; `jobs`: every job of the group that reads it (indices).
    Stuck {
        tp: TopicPartition,
        committed: Option<i64>,
        lag: i64,
        jobs: Vec<usize>,
    },
    /// A stuck partition moves again.
    Moving {
        tp: TopicPartition,
        jobs: Vec<usize>,
    },
}

/// What the group's plan says this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupPlan {
    /// Instances each job of the group should have, by position in [`Shared::jobs`].
    pub desired: Vec<u32>,
    pub events: Vec<GroupEvent>,
}

/// A change worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Instances ended without the commits moving: wake-ups wait `delay`.
    CrashLoop {
        ended: u64,
        failed: u64,
        delay: Duration,
    },
    /// Commits moved: the back-off is over.
    Progress,
}

/// What to do for one job this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobPlan {
    /// Instances the job should have: its share of its group's plan.
    pub desired: u32,
    /// Instances believed active (the cached view).
    pub active: u32,
    /// The order for the launcher, if any.
    pub order: Option<Order>,
    /// The current crash-loop delay (zero when none).
    pub backoff: Duration,
    /// Lagging, but held back by the crash-loop back-off.
    pub held: bool,
    pub events: Vec<Event>,
}

/// A run this observer started that the last count may not include.
#[derive(Debug, Clone, Copy)]
struct Started {
    at: Instant,
    instances: u32,
}

/// The launcher's view of one job, as cached here.
#[derive(Debug, Clone, Default)]
struct View {
    /// When the last count was asked for, and how many instances it found active.
    counted: Option<(Instant, u32)>,
    /// Runs started since a moment the last count certainly covers. They count on top of it:
    /// an upper bound, so the cache may start too few for a moment, never too many.
    /// The last count's ended total, to see what ended since.
    ended: Option<(u64, u64)>,
    /// Instances ended (and failed) that may be a crash, since the last look, and the job's
    /// commits when the count that saw them was asked for.
    unseen: (u64, u64),
    unseen_commits: Option<u64>,
    /// The order out: the job's commits when it was sent, and whether they had not moved
    /// since the last start (only then can instances that ended be a crash).
    sent: Option<(Option<u64>, bool)>,
    started: Vec<Started>,
    /// An order is out.
    busy: bool,
    /// Failed orders in a row, and when the next may go out.
    failures: u32,
    retry_at: Option<Instant>,
}

impl View {
    fn active(&self) -> u32 {
        let counted = self.counted.map_or(0, |(_, a)| a);
        self.started
            .iter()
            .fold(counted, |n, s| n.saturating_add(s.instances))
    }
}

#[derive(Debug, Clone, Copy)]
struct Gate {
    delay: Duration,
    until: Instant,
}

/// One job's memory between cycles.
#[derive(Debug, Clone, Default)]
struct JobState {
    view: View,
    /// The job's commits (a fingerprint) when its consumers were last started.
    commits_at_start: Option<u64>,
    /// The job's commits as of the last cycle that knew them all.
    commits: Option<u64>,
    gate: Option<Gate>,
    last_start: Option<Instant>,
}

/// The plan's state for every job; see the module docs.
#[derive(Debug)]
pub(crate) struct Reconciler {
    settings: Settings,
    jobs: Vec<JobState>,
    stuck: StuckTracker,
}

impl Reconciler {
    pub(crate) fn new(settings: Settings, jobs: usize) -> Self {
        Reconciler {
            settings,
            jobs: vec![JobState::default(); jobs],
            stuck: StuckTracker::new(settings.stuck),
        }
    }

    /// Takes in what an order did.
    pub(crate) fn apply(&mut self, done: &Done, now: Instant) {
        let settings = self.settings;
        let Some(job) = self.jobs.get_mut(done.job) else {
            return;
        };
        let v = &mut job.view;
        v.busy = false;
        let sent = v.sent.take();
        if let Some(c) = done.count {
            if let (Some((ended, failed)), Some((commits, true))) = (v.ended, sent) {
                if c.ended > ended {
                    v.unseen.0 += c.ended - ended;
                    v.unseen.1 += c.failed.saturating_sub(failed);
                    v.unseen_commits = commits;
                }
            }
            v.ended = Some((c.ended, c.failed));
            v.counted = Some((done.at, c.active));
            // A run started `launch_grace` before the count was asked for is in it.
            v.started
                .retain(|s| done.at.saturating_duration_since(s.at) < settings.launch_grace);
        }
        if done.started > 0 {
            v.started.push(Started {
                at: now,
                instances: done.started,
            });
            job.last_start = Some(now);
        }
        if done.failed {
            v.failures = v.failures.saturating_add(1);
            let delay = Duration::from_secs(1)
                .saturating_mul(1u32.checked_shl(v.failures - 1).unwrap_or(u32::MAX))
                .min(settings.refresh.max(Duration::from_secs(1)));
            v.retry_at = Some(now + delay);
        } else {
            v.failures = 0;
            v.retry_at = None;
        }
    }

    /// The plan of a consumer group for this cycle, before its jobs' plans: the instances each
    /// of its jobs should have (the cover of its lagging partitions, running instances of every
    /// job of the group counted first) and the stuck detector's one look at each of its
    /// partitions. `lag` is the group's over every topic of its jobs.
    pub(crate) fn plan_group(
        &mut self,
        shared: &Shared,
        group: &str,
        lag: &GroupLag,
        now: Instant,
    ) -> GroupPlan {
        let settings = self.settings;
        let state = |j: &usize| self.jobs.get(*j);
        let members: Vec<Member> = shared
            .jobs
            .iter()
            .map(|j| match state(j) {
                Some(s) => Member {
                    active: s.view.active(),
                    cap: settings.cap,
                    may_start: s.gate.is_none_or(|g| now >= g.until),
                },
                None => Member {
                    active: 0,
                    cap: Some(0),
                    may_start: false,
                },
            })
            .collect();
        let needs = cover::needs(lag);
        let desired = if settings.group_plan {
            cover::cover(shared, &needs, &members)
        } else {
            let caps: Vec<Option<u32>> = members.iter().map(|m| m.cap).collect();
            cover::per_job(shared, &needs, &caps)
        };

        // A partition counts as worked on when a job that reads it has instances (or started
        // some lately); it is looked at once, however many jobs read it.
        let working: Vec<bool> = shared
            .jobs
            .iter()
            .map(|j| {
                state(j).is_some_and(|s| {
                    s.view.active() > 0
                        || s.last_start.is_some_and(|t| {
                            now.saturating_duration_since(t) < settings.working_window
                        })
                })
            })
            .collect();
        let mut events = Vec::new();
        for p in &lag.partitions {
            let readers = shared.readers(&p.tp.topic);
            let busy = readers.iter().any(|&j| working.get(j) == Some(&true));
            let jobs = || readers.iter().map(|&j| shared.jobs[j]).collect();
            match self.stuck.observe(group, &p.tp, p.committed, p.lag, busy) {
                Some(StuckEvent::Stuck {
                    tp, committed, lag, ..
                }) => events.push(GroupEvent::Stuck {
                    tp,
                    committed,
                    lag,
                    jobs: jobs(),
                }),
                Some(StuckEvent::Moving { tp, .. }) => {
                    events.push(GroupEvent::Moving { tp, jobs: jobs() })
                }
                None => {}
            }
        }
        GroupPlan { desired, events }
    }

    /// The plan of job number `job` for this cycle, remembering what it needs. (One job at a
    /// time: the caller computes each job's lag just before, so a thousand jobs' partition
    /// lists never exist at once.)
    pub(crate) fn plan(&mut self, job: usize, input: &JobInput<'_>, now: Instant) -> JobPlan {
        let settings = self.settings;
        match self.jobs.get_mut(job) {
            Some(state) => plan_job(&settings, input, state, now),
            None => JobPlan {
                desired: 0,
                active: 0,
                order: None,
                backoff: Duration::ZERO,
                held: false,
                events: Vec::new(),
            },
        }
    }

    /// Whether the stuck detector holds `tp` of `group` stuck.
    pub(crate) fn is_stuck(&self, group: &str, tp: &TopicPartition) -> bool {
        self.stuck.is_stuck(group, tp)
    }
}

/// A fingerprint of the job's commits; `None` when any partition's lag is unknown.
fn commits_of(lag: &GroupLag) -> Option<u64> {
    let mut h = DefaultHasher::new();
    for p in &lag.partitions {
        p.lag?;
        (&p.tp, p.committed).hash(&mut h);
    }
    Some(h.finish())
}

fn plan_job(
    settings: &Settings,
    input: &JobInput<'_>,
    job: &mut JobState,
    now: Instant,
) -> JobPlan {
    let mut events = Vec::new();
    let lagging = input.lag.lagging();
    let desired = input.desired;
    let active = job.view.active();

    // Progress resets the back-off.
    let commits = commits_of(input.lag);
    if let Some(c) = commits {
        if job.commits.is_some_and(|old| old != c) && job.gate.take().is_some() {
            events.push(Event::Progress);
        }
        job.commits = Some(c);
    }

    // Instances that ended without a commit moving since they were started: a crash loop.
    // Judged only when the commits are known; caught up, it is no crash.
    let (ended, failed) = match commits {
        Some(_) => std::mem::take(&mut job.view.unseen),
        None => (0, 0),
    };
    if ended > 0 && lagging > 0 && commits == job.view.unseen_commits {
        let delay = match job.gate {
            None => settings.first_backoff,
            Some(g) => g.delay.saturating_mul(2),
        }
        .min(settings.max_backoff);
        job.gate = Some(Gate {
            delay,
            until: now + delay,
        });
        events.push(Event::CrashLoop {
            ended,
            failed,
            delay,
        });
    }

    let open = job.gate.is_none_or(|g| now >= g.until);
    let may_ask = !job.view.busy && job.view.retry_at.is_none_or(|t| now >= t);
    let due = job
        .view
        .counted
        .is_none_or(|(at, _)| now.saturating_duration_since(at) >= settings.refresh);
    let order = if lagging == 0 || !open || !may_ask {
        None
    } else if desired == 0 && active == 0 && job.view.counted.is_some() {
        // Its group's lag is served by other jobs' instances: a count could change nothing.
        None
    } else if job.view.counted.is_none() && desired == 0 {
        // Never counted (a predecessor may have left runs): its instances count for the group.
        Some(Order::Count)
    } else if job.view.counted.is_none() {
        Some(Order::CountThenStart { desired })
    } else if active < desired {
        Some(Order::Start(top_up(desired, active)))
    } else if due && commits.is_some() && commits != job.commits_at_start {
        // The commits moved since the last start: instances that ended since were no crash,
        // so the count may top up at once (one order, no cycle in between: a job that went
        // idle and lags again is woken in milliseconds once the refresh is due).
        Some(Order::CountThenStart { desired })
    } else if due {
        Some(Order::Count)
    } else {
        None
    };
    if order.is_some() {
        job.view.sent = Some((
            commits,
            commits.is_some() && commits == job.commits_at_start,
        ));
    }
    match order {
        Some(Order::Start(_) | Order::CountThenStart { .. }) => {
            job.commits_at_start = commits;
            job.view.busy = true;
        }
        Some(Order::Count) => job.view.busy = true,
        None => {}
    }
    JobPlan {
        desired,
        active,
        order,
        backoff: job.gate.map_or(Duration::ZERO, |g| g.delay),
        held: lagging > 0 && !open,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::group::PartitionLag;

    fn settings() -> Settings {
        Settings {
            cap: None,
            refresh: Duration::from_secs(10),
            launch_grace: Duration::from_secs(5),
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            working_window: Duration::from_secs(5),
            stuck: StuckPolicy { cycles: 1000 },
            group_plan: true,
        }
    }

    /// A job over partitions 0.. with these (committed, lag).
    fn lag(parts: &[(Option<i64>, Option<i64>)]) -> GroupLag {
        GroupLag {
            partitions: parts
                .iter()
                .enumerate()
                .map(|(i, (committed, lag))| PartitionLag {
                    tp: TopicPartition::new("t", i as i32),
                    committed: *committed,
                    lag: *lag,
                })
                .collect(),
        }
    }

    /// One step of a scenario: at second `t`, either the launcher reports (`Done` for job 0 at
    /// that time) or a cycle runs on this lag and must produce this order.
    enum Step {
        Cycle(u64, GroupLag, Option<Order>),
        Reported(u64, Option<Count>, u32, bool),
    }

    /// Runs a scenario for one job; returns every cycle's plan.
    fn run(settings: Settings, steps: Vec<Step>) -> Vec<JobPlan> {
        run_all(settings, steps).0
    }

    /// Like [`run`], with the group's events too.
    fn run_all(settings: Settings, steps: Vec<Step>) -> (Vec<JobPlan>, Vec<GroupEvent>) {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s * 1000 / 10);
        let mut r = Reconciler::new(settings, 1);
        let topics = ["t".to_string()];
        let shared = Shared::new([(0, &topics[..])]);
        let mut plans = Vec::new();
        let mut group_events = Vec::new();
        let mut sent = t0;
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Step::Cycle(t, lag, want) => {
                    let g = r.plan_group(&shared, "g", &lag, at(t));
                    group_events.extend(g.events);
                    let input = JobInput {
                        lag: &lag,
                        desired: g.desired[0],
                    };
                    let p = r.plan(0, &input, at(t));
                    assert_eq!(p.order, want, "step {i} at {}s: {p:?}", t as f64 / 10.0);
                    if p.order.is_some() {
                        sent = at(t);
                    }
                    plans.push(p);
                }
                Step::Reported(t, count, started, failed) => r.apply(
                    &Done {
                        job: 0,
                        at: sent,
                        count,
                        started,
                        failed,
                    },
                    at(t),
                ),
            }
        }
        (plans, group_events)
    }

    use Step::{Cycle, Reported};

    fn count(active: u32, ended: u64, failed: u64) -> Option<Count> {
        Some(Count {
            active,
            ended,
            failed,
        })
    }

    // Times below are in tenths of a second.

    #[test]
    fn an_idle_system_asks_nothing() {
        let idle = || lag(&[(Some(5), Some(0)), (None, Some(0))]);
        let steps = (0..1000).map(|t| Cycle(t * 5, idle(), None)).collect();
        for p in run(settings(), steps) {
            assert_eq!((p.desired, p.active, p.backoff), (0, 0, Duration::ZERO));
        }
    }

    #[test]
    fn a_backlog_at_start_is_counted_then_started_in_the_first_cycle() {
        let two = || lag(&[(Some(1), Some(4)), (None, Some(2)), (Some(0), Some(0))]);
        let plans = run(
            settings(),
            vec![
                Cycle(0, two(), Some(Order::CountThenStart { desired: 2 })),
                // Nothing more while the order is out.
                Cycle(1, two(), None),
                Reported(2, count(0, 7, 7), 2, false),
                // Started instances count at once: no count, no start until the refresh.
                Cycle(3, two(), None),
                Cycle(99, two(), None),
                Cycle(100, two(), Some(Order::Count)),
            ],
        );
        assert_eq!(plans[2].active, 2);
        // Old ended runs of a predecessor are a baseline, not a crash.
        assert!(plans.iter().all(|p| p.events.is_empty()), "{plans:?}");
    }

    #[test]
    fn new_lag_on_a_job_believed_idle_is_started_at_once() {
        let one = || lag(&[(Some(3), Some(1)), (Some(3), Some(0))]);
        let both = || lag(&[(Some(3), Some(1)), (Some(3), Some(2))]);
        let idle = || lag(&[(Some(4), Some(0)), (Some(5), Some(0))]);
        let again = || lag(&[(Some(4), Some(1)), (Some(5), Some(0))]);
        let plans = run(
            settings(),
            vec![
                Cycle(0, one(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(0, 0, 0), 1, false),
                // Lag spreads to a second partition: one more at once, counted or not.
                Cycle(2, both(), Some(Order::Start(1))),
                Reported(3, None, 1, false),
                Cycle(4, both(), None),
                // Caught up: nothing, not even a count (idle jobs cost nothing).
                Cycle(10, idle(), None),
                Cycle(500, idle(), None),
                Cycle(600, idle(), None),
                // Lag again, long after: the count is stale but believed 2 active; the
                // refresh is due, so count first.
                // The commits moved since they were started, so ended instances are no crash:
                // count and top up in one order.
                Cycle(700, again(), Some(Order::CountThenStart { desired: 1 })),
                Reported(701, count(0, 2, 0), 1, false),
                Cycle(702, again(), None),
            ],
        );
        // The two that ended are no crash: no back-off.
        assert!(plans.iter().all(|p| p.events.is_empty()), "{plans:?}");
    }

    #[test]
    fn instances_that_end_without_commits_back_off_from_the_first_sign() {
        let stuck = || lag(&[(Some(3), Some(5))]);
        let moved = || lag(&[(Some(4), Some(4))]);
        let plans = run(
            settings(),
            vec![
                Cycle(0, stuck(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(0, 0, 0), 1, false),
                Cycle(2, stuck(), None),
                Cycle(101, stuck(), Some(Order::Count)),
                // It ended, the commit did not move: back off 10 s from now.
                Reported(102, count(0, 1, 1), 0, false),
                Cycle(103, stuck(), None),
                Cycle(202, stuck(), None),
                // The gate opens: start again (the count says none active).
                Cycle(203, stuck(), Some(Order::Start(1))),
                Reported(204, None, 1, false),
                Cycle(304, stuck(), Some(Order::Count)),
                Reported(305, count(0, 2, 1), 0, false),
                // Second sign: 20 s.
                Cycle(306, stuck(), None),
                Cycle(505, stuck(), None),
                Cycle(506, stuck(), Some(Order::Start(1))),
                Reported(507, None, 1, false),
                // The new consumer commits: the back-off is over (and the count is due).
                Cycle(508, moved(), Some(Order::CountThenStart { desired: 1 })),
            ],
        );
        let events: Vec<&Event> = plans.iter().flat_map(|p| &p.events).collect();
        assert_eq!(
            events,
            vec![
                &Event::CrashLoop {
                    ended: 1,
                    failed: 1,
                    delay: Duration::from_secs(10)
                },
                &Event::CrashLoop {
                    ended: 1,
                    failed: 0,
                    delay: Duration::from_secs(20)
                },
                &Event::Progress,
            ]
        );
        assert!(plans[4].held && plans[4].backoff == Duration::from_secs(10));
        assert_eq!(plans.last().unwrap().backoff, Duration::ZERO);
    }

    #[test]
    fn the_back_off_doubles_up_to_its_cap() {
        let stuck = || lag(&[(None, Some(5))]);
        let mut steps = vec![
            Cycle(0, stuck(), Some(Order::CountThenStart { desired: 1 })),
            Reported(0, count(0, 0, 0), 1, false),
        ];
        let mut t = 0;
        let mut ended = 0;
        for delay in [10, 20, 40, 60, 60] {
            t += 100;
            steps.push(Cycle(t, stuck(), Some(Order::Count)));
            ended += 1;
            steps.push(Reported(t, count(0, ended, ended), 0, false));
            steps.push(Cycle(t, stuck(), None));
            t += delay * 10;
            steps.push(Cycle(t, stuck(), Some(Order::Start(1))));
            steps.push(Reported(t, None, 1, false));
        }
        let plans = run(settings(), steps);
        let delays: Vec<u64> = plans
            .iter()
            .flat_map(|p| &p.events)
            .filter_map(|e| match e {
                Event::CrashLoop { delay, .. } => Some(delay.as_secs()),
                _ => None,
            })
            .collect();
        assert_eq!(delays, [10, 20, 40, 60, 60]);
    }

    #[test]
    fn consumers_that_ended_after_progress_are_started_again_at_once() {
        let before = || lag(&[(Some(3), Some(5))]);
        let after = || lag(&[(Some(6), Some(2))]);
        let plans = run(
            settings(),
            vec![
                Cycle(0, before(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(0, 0, 0), 1, false),
                Cycle(50, after(), None),
                Cycle(100, after(), Some(Order::CountThenStart { desired: 1 })),
                Reported(101, count(0, 1, 0), 1, false),
                Cycle(102, after(), None),
            ],
        );
        assert!(plans.iter().all(|p| p.backoff.is_zero()));
    }

    #[test]
    fn a_crash_is_judged_only_when_the_commits_are_known() {
        let known = || lag(&[(Some(3), Some(5))]);
        let unknown = || lag(&[(None, None)]);
        let plans = run(
            settings(),
            vec![
                Cycle(0, known(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(0, 0, 0), 1, false),
                Cycle(100, known(), Some(Order::Count)),
                Reported(101, count(0, 1, 1), 0, false),
                // The coordinator is down this cycle: nothing is decided.
                Cycle(102, unknown(), None),
                // Known again: the commit did not move.
                Cycle(103, known(), None),
            ],
        );
        assert!(plans[2].events.is_empty(), "{plans:?}");
        assert_eq!(
            plans[3].events,
            vec![Event::CrashLoop {
                ended: 1,
                failed: 1,
                delay: Duration::from_secs(10)
            }]
        );
    }

    #[test]
    fn never_more_instances_than_lagging_partitions_or_the_cap() {
        let three = || lag(&[(Some(0), Some(1)), (Some(0), Some(1)), (Some(0), Some(1))]);
        let one = || lag(&[(Some(0), Some(1)), (Some(1), Some(0)), (Some(1), Some(0))]);
        let capped = Settings {
            cap: Some(2),
            ..settings()
        };
        run(
            capped,
            vec![
                Cycle(0, three(), Some(Order::CountThenStart { desired: 2 })),
                Reported(1, count(1, 0, 0), 1, false),
                Cycle(2, three(), None),
                Cycle(3, one(), None),
            ],
        );
        // Counted 3 running although one partition lags: nothing more, ever.
        run(
            settings(),
            vec![
                Cycle(0, one(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(3, 0, 0), 0, false),
                Cycle(2, three(), None),
            ],
        );
    }

    #[test]
    fn a_run_an_early_count_may_miss_still_counts_until_a_later_count() {
        let one = || lag(&[(Some(0), Some(1)), (Some(0), Some(0))]);
        let two = || lag(&[(Some(0), Some(1)), (Some(0), Some(1))]);
        let plans = run(
            settings(),
            vec![
                Cycle(0, one(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(0, 0, 0), 1, false),
                Cycle(99, two(), Some(Order::Start(1))),
                Reported(99, None, 1, false),
                Cycle(100, two(), Some(Order::Count)),
                // A count 0.1 s after the second run started lists only the first.
                Reported(101, count(1, 0, 0), 0, false),
                Cycle(102, two(), None),
                // Beyond the grace, still believed: that count may not have seen it.
                Cycle(160, two(), None),
                Cycle(200, two(), Some(Order::Count)),
                Reported(201, count(2, 0, 0), 0, false),
                Cycle(202, two(), None),
            ],
        );
        assert_eq!(
            plans.iter().map(|p| p.active).collect::<Vec<_>>(),
            [0, 1, 2, 2, 2, 2, 2]
        );
    }

    #[test]
    fn failed_orders_are_asked_again_after_a_doubling_delay_capped_at_the_refresh() {
        let one = || lag(&[(Some(0), Some(1))]);
        let o = Some(Order::CountThenStart { desired: 1 });
        run(
            settings(),
            vec![
                Cycle(0, one(), o),
                Reported(0, None, 0, true),
                Cycle(9, one(), None),
                Cycle(10, one(), o), // 1 s
                Reported(10, None, 0, true),
                Cycle(29, one(), None),
                Cycle(30, one(), o), // 2 s
                Reported(30, None, 0, true),
                Cycle(70, one(), o), // 4 s
                Reported(70, None, 0, true),
                Cycle(150, one(), o), // 8 s
                Reported(150, None, 0, true),
                Cycle(249, one(), None),
                Cycle(250, one(), o), // 10 s, the refresh period
                Reported(250, None, 0, true),
                Cycle(350, one(), o),
                Reported(351, count(0, 0, 0), 1, false),
                Cycle(352, one(), None),
            ],
        );
    }

    #[test]
    fn stuck_partitions_are_reported_while_consumers_run() {
        let s = Settings {
            stuck: StuckPolicy { cycles: 3 },
            ..settings()
        };
        let stuck = || lag(&[(Some(3), Some(5))]);
        let moved = || lag(&[(Some(8), Some(0))]);
        let (_, events) = run_all(
            s,
            vec![
                Cycle(0, stuck(), Some(Order::CountThenStart { desired: 1 })),
                Reported(1, count(0, 0, 0), 1, false),
                Cycle(2, stuck(), None),
                Cycle(3, stuck(), None),
                Cycle(4, stuck(), None),
                Cycle(5, stuck(), None),
                Cycle(6, moved(), None),
            ],
        );
        assert_eq!(
            events,
            vec![
                GroupEvent::Stuck {
                    tp: TopicPartition::new("t", 0),
                    committed: Some(3),
                    lag: 5,
                    jobs: vec![0],
                },
                GroupEvent::Moving {
                    tp: TopicPartition::new("t", 0),
                    jobs: vec![0],
                },
            ]
        );
    }

    /// The mapping of issue 12: group `chain` read by job 0 on t1, job 1 on t1–t2, job 2 on
    /// t1–t3; one partition each. Returns the jobs' topics.
    fn chain() -> Vec<Vec<String>> {
        (1..=3)
            .map(|n| (1..=n).map(|t| format!("t{t}")).collect())
            .collect()
    }

    /// The group's lag over t1..t3 (one partition each) with these (committed, lag).
    fn chain_lag(parts: [(Option<i64>, Option<i64>); 3]) -> GroupLag {
        GroupLag {
            partitions: parts
                .iter()
                .enumerate()
                .map(|(i, (committed, lag))| PartitionLag {
                    tp: TopicPartition::new(format!("t{}", i + 1), 0),
                    committed: *committed,
                    lag: *lag,
                })
                .collect(),
        }
    }

    /// A job's view of the group's lag: its topics only.
    fn of_job(lag: &GroupLag, topics: &[String]) -> GroupLag {
        GroupLag {
            partitions: lag
                .partitions
                .iter()
                .filter(|p| topics.iter().any(|t| **t == *p.tp.topic))
                .cloned()
                .collect(),
        }
    }

    /// One cycle of the whole group: the group's plan, then each job's.
    fn group_cycle(
        r: &mut Reconciler,
        shared: &Shared,
        topics: &[Vec<String>],
        lag: &GroupLag,
        now: Instant,
    ) -> (GroupPlan, Vec<JobPlan>) {
        let g = r.plan_group(shared, "chain", lag, now);
        let plans = (0..topics.len())
            .map(|j| {
                let own = of_job(lag, &topics[j]);
                let input = JobInput {
                    lag: &own,
                    desired: g.desired[j],
                };
                r.plan(j, &input, now)
            })
            .collect();
        (g, plans)
    }

    #[test]
    fn jobs_sharing_a_group_wake_one_instance_per_lagging_partition_in_all() {
        let topics = chain();
        let shared = Shared::new(topics.iter().enumerate().map(|(i, t)| (i, t.as_slice())));
        let mut r = Reconciler::new(settings(), 3);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let orders = |p: &[JobPlan]| p.iter().map(|p| p.order).collect::<Vec<_>>();
        // One record on each topic: 3 instances, one per job (per-job plans started 1 + 2 + 3).
        let one_each = chain_lag([(Some(0), Some(1)); 3]);
        let (g, plans) = group_cycle(&mut r, &shared, &topics, &one_each, at(0));
        assert_eq!(g.desired, [1, 1, 1]);
        let start = |d| Some(Order::CountThenStart { desired: d });
        assert_eq!(orders(&plans), [start(1), start(1), start(1)]);
        for j in 0..3 {
            let done = Done {
                job: j,
                at: at(0),
                count: Some(Count::default()),
                started: 1,
                failed: false,
            };
            r.apply(&done, at(10));
        }
        // Later cycles: nothing more while they run.
        let (g, plans) = group_cycle(&mut r, &shared, &topics, &one_each, at(20));
        assert_eq!((g.desired, orders(&plans)), (vec![1, 1, 1], vec![None; 3]));

        // Topics 2 and 3 caught up, topic 1 lags on: the three running members are enough,
        // and the plan counts one of them (the narrowest job's) for it.
        let t1_only = chain_lag([(Some(0), Some(5)), (Some(1), Some(0)), (Some(1), Some(0))]);
        let (g, plans) = group_cycle(&mut r, &shared, &topics, &t1_only, at(30));
        assert_eq!(g.desired, [1, 0, 0]);
        assert_eq!(orders(&plans), [None; 3]);
    }

    #[test]
    fn a_job_whose_share_is_nothing_asks_the_launcher_nothing() {
        let topics = chain();
        let shared = Shared::new(topics.iter().enumerate().map(|(i, t)| (i, t.as_slice())));
        let mut r = Reconciler::new(settings(), 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Topic 1 lags: job 0 gets the instance; jobs 1 and 2 read topic 1 too, so they lag,
        // and are counted once (a predecessor may have left runs), then never again.
        let t1 = chain_lag([(Some(0), Some(1)), (Some(0), Some(0)), (Some(0), Some(0))]);
        let (g, plans) = group_cycle(&mut r, &shared, &topics, &t1, at(0));
        assert_eq!(g.desired, [1, 0, 0]);
        assert_eq!(
            plans.iter().map(|p| p.order).collect::<Vec<_>>(),
            [
                Some(Order::CountThenStart { desired: 1 }),
                Some(Order::Count),
                Some(Order::Count)
            ]
        );
        for (j, started) in [(0, 1), (1, 0), (2, 0)] {
            let done = Done {
                job: j,
                at: at(0),
                count: Some(Count::default()),
                started,
                failed: false,
            };
            r.apply(&done, at(0));
        }
        for s in [1, 11, 30, 100] {
            let (_, plans) = group_cycle(&mut r, &shared, &topics, &t1, at(s));
            assert_eq!(plans[1].order, None, "at {s} s");
            assert_eq!(plans[2].order, None, "at {s} s");
        }
    }

    #[test]
    fn a_partition_read_by_three_jobs_is_stuck_after_the_configured_cycles_naming_them_all() {
        let topics = chain();
        let shared = Shared::new(topics.iter().enumerate().map(|(i, t)| (i, t.as_slice())));
        let s = Settings {
            stuck: StuckPolicy { cycles: 4 },
            ..settings()
        };
        let mut r = Reconciler::new(s, 3);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let lag = chain_lag([(Some(3), Some(5)), (Some(1), Some(0)), (Some(1), Some(0))]);
        let mut stuck_at = None;
        for cycle in 0..10u64 {
            let (g, plans) = group_cycle(&mut r, &shared, &topics, &lag, at(cycle * 100));
            for (j, p) in plans.iter().enumerate() {
                if p.order.is_some() {
                    let done = Done {
                        job: j,
                        at: at(cycle * 100),
                        count: Some(Count::default()),
                        started: g.desired[j],
                        failed: false,
                    };
                    r.apply(&done, at(cycle * 100));
                }
            }
            if !g.events.is_empty() {
                assert_eq!(
                    g.events,
                    [GroupEvent::Stuck {
                        tp: TopicPartition::new("t1", 0),
                        committed: Some(3),
                        lag: 5,
                        jobs: vec![0, 1, 2],
                    }]
                );
                assert!(stuck_at.is_none(), "reported twice");
                stuck_at = Some(cycle);
            }
        }
        // First sight is a move; then 4 working cycles (one count per cycle, not per job).
        assert_eq!(stuck_at, Some(4));
        assert!(r.is_stuck("chain", &TopicPartition::new("t1", 0)));
        let moved = chain_lag([(Some(8), Some(0)), (Some(1), Some(0)), (Some(1), Some(0))]);
        let (g, _) = group_cycle(&mut r, &shared, &topics, &moved, at(2000));
        assert_eq!(
            g.events,
            [GroupEvent::Moving {
                tp: TopicPartition::new("t1", 0),
                jobs: vec![0, 1, 2],
            }]
        );
    }
}
