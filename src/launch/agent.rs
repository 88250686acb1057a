//! The launcher's own tasks: orders from the observer's plan go out here and their outcomes
//! come back on a channel, so a cycle never waits for IBM Cloud. One task per order, each
//! under a deadline; the plan sends at most one order per job at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{LaunchError, Launcher};
use crate::config::kafkadata::Job;
use crate::lag::reconcile::{top_up, Count, Done, Order};

/// What one order did, with the details the observer logs.
#[derive(Debug)]
pub(crate) struct Report {
    pub done: Done,
    pub order: Order,
    /// The run started, if one was.
    pub run: Option<String>,
    pub error: Option<LaunchError>,
    pub took: Duration,
}

/// Sends orders to the launcher and collects their reports.
pub(crate) struct Agent {
    launcher: Arc<Launcher>,
    jobs: Arc<Vec<Job>>,
    deadline: Duration,
    tx: mpsc::UnboundedSender<Report>,
    rx: mpsc::UnboundedReceiver<Report>,
    /// Orders out, per job: since when.
    out: Arc<Mutex<BTreeMap<usize, Instant>>>,
}

impl Agent {
    /// An agent for `jobs` (indexed as in orders); each order gets `deadline`.
    pub(crate) fn new(launcher: Launcher, jobs: Vec<Job>, deadline: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Agent {
            launcher: Arc::new(launcher),
            jobs: Arc::new(jobs),
            deadline,
            tx,
            rx,
            out: Arc::default(),
        }
    }

    pub(crate) fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// Starts `order` for job number `job` (sent at `now`) in a task of its own.
    pub(crate) fn send(&self, job: usize, order: Order, now: Instant) {
        let Some(j) = self.jobs.get(job).cloned() else {
            return;
        };
        lock(&self.out).insert(job, now);
        let (launcher, tx, out) = (self.launcher.clone(), self.tx.clone(), self.out.clone());
        let deadline = self.deadline;
        tokio::spawn(async move {
            let t = Instant::now();
            let (count, started, run, error) =
                match tokio::time::timeout(deadline, execute(&launcher, &j, order)).await {
                    Ok(r) => r,
                    Err(_) => (
                        None,
                        0,
                        None,
                        Some(LaunchError::Deadline {
                            order: describe(order),
                            job: j.name.clone(),
                            deadline,
                        }),
                    ),
                };
            lock(&out).remove(&job);
            let report = Report {
                done: Done {
                    job,
                    at: now,
                    count,
                    started,
                    failed: error.is_some(),
                },
                order,
                run,
                error,
                took: t.elapsed(),
            };
            let _ = tx.send(report);
        });
    }

    /// Every report that arrived since the last call.
    pub(crate) fn drain(&mut self) -> Vec<Report> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }

    /// Since when the oldest order still out has been waiting.
    pub(crate) fn oldest_out(&self) -> Option<Instant> {
        lock(&self.out).values().min().copied()
    }
}

fn describe(order: Order) -> &'static str {
    match order {
        Order::Count => "counting instances",
        Order::Start(_) => "starting instances",
        Order::CountThenStart { .. } => "counting and starting instances",
    }
}

type Outcome = (Option<Count>, u32, Option<String>, Option<LaunchError>);

async fn execute(launcher: &Launcher, job: &Job, order: Order) -> Outcome {
    let (count, k) = match order {
        Order::Count => {
            return match launcher.count(job).await {
                Ok(c) => (Some(c), 0, None, None),
                Err(e) => (None, 0, None, Some(e)),
            }
        }
        Order::Start(k) => (None, k),
        Order::CountThenStart { desired } => match launcher.count(job).await {
            Ok(c) => (Some(c), top_up(desired, c.active)),
            Err(e) => return (None, 0, None, Some(e)),
        },
    };
    if k == 0 {
        return (count, 0, None, None);
    }
    match launcher.launch(job, k).await {
        Ok(run) => (count, k, Some(run), None),
        Err(e) => (count, 0, None, Some(e)),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
