//! The local launcher: consumer instances as child processes of the observer.
//!
//! It stands in for Code Engine on a laptop (`./run.sh local`) and in end-to-end tests, with
//! the same contract: a "job run" of k instances is k processes of `kafka-observer consume`,
//! each told its `JOB_INDEX`/`JOB_ARRAY_SIZE` as Code Engine would, and an instance is active
//! while its process lives.
//!
//! Children never outlive the observer. Each starts through this binary's hidden `run-child`
//! step ([`exec_child`]), which asks the kernel for SIGTERM when the observer dies
//! (`PR_SET_PDEATHSIG`, kept across the `exec` of the consumer) and checks that the observer
//! is still its parent before it becomes the consumer — so even `kill -9` of the observer stops
//! its consumers, the way an orderly shutdown does (they commit and leave the group). Doing
//! this between fork and exec would need `unsafe` (`pre_exec`), which this crate forbids. Each
//! child leads its own process group, so a shutdown signal reaches whatever it started too;
//! signals are sent with `kill(2)`, not by running `kill`. Run names carry a random tag chosen
//! at start, so a restarted observer never reuses a name (with static membership the name is
//! the `group.instance.id`).
//!
//! An exited child is reaped as it exits, not at its job's next count: a job that went idle
//! may not be counted again for hours, and its finished consumers would stay zombies until
//! then. One task per launcher wakes on `SIGCHLD` and reaps every job's exited children,
//! counting each as it goes, so counts stay exact whoever reaps first.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::LaunchError;
use crate::config::kafkadata::Job;

/// The hidden subcommand through which children start (see the module docs).
pub(crate) const RUN_CHILD: &str = "run-child";

/// Starts and counts local consumer processes.
pub(crate) struct LocalLauncher {
    exe: PathBuf,
    args: Vec<String>,
    /// Variables every child gets (broker settings, idle timeout, log level).
    env: Vec<(String, String)>,
    /// This program, whose `run-child` step starts each child.
    starter: PathBuf,
    /// Random per observer start: part of every run name.
    tag: String,
    children: Arc<Mutex<Children>>,
    /// Reaps exited children as they exit; started with the first launch (it needs the
    /// runtime), stopped when the launcher is dropped.
    reaper: Mutex<Option<JoinHandle<()>>>,
    runs: Mutex<u64>,
}

/// Live children per job, and per job the children that exited: (all, failed).
#[derive(Default)]
struct Children {
    live: BTreeMap<String, Vec<Child>>,
    ended: BTreeMap<String, (u64, u64)>,
}

impl Children {
    /// Reaps `job`'s exited children, counting them; returns its live count and what ended.
    fn reap(&mut self, job: &str) -> (u32, (u64, u64)) {
        let e = self.ended.entry(job.to_string()).or_default();
        let Some(list) = self.live.get_mut(job) else {
            return (0, *e);
        };
        list.retain_mut(|c| match c.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                e.0 += 1;
                e.1 += u64::from(!status.success());
                false
            }
            Err(_) => {
                e.0 += 1;
                false
            }
        });
        (list.len() as u32, *e)
    }

    /// Reaps the exited children of every job.
    fn reap_all(&mut self) {
        let jobs: Vec<String> = self.live.keys().cloned().collect();
        for job in jobs {
            self.reap(&job);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often the reaper looks when `SIGCHLD` cannot be listened to (it always can on Linux
/// with tokio's signal driver, which the program's runtime enables).
const REAP_EVERY: Duration = Duration::from_secs(1);

/// The reaper: every job's exited children, at each `SIGCHLD` (signals that arrive together
/// wake it once; one pass reaps them all). Ends with the launcher.
async fn reap_on_exit(
    children: Weak<Mutex<Children>>,
    mut sigchld: Option<tokio::signal::unix::Signal>,
) {
    loop {
        match &mut sigchld {
            Some(s) => {
                if s.recv().await.is_none() {
                    return; // the runtime is shutting down
                }
            }
            None => tokio::time::sleep(REAP_EVERY).await,
        }
        let Some(children) = children.upgrade() else {
            return;
        };
        lock(&children).reap_all();
    }
}

impl Drop for LocalLauncher {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.reaper).take() {
            t.abort();
        }
    }
}

impl LocalLauncher {
    /// `exe args…` is the consumer command (normally this binary and `consume`); `starter` is
    /// this program (it has the `run-child` step).
    pub(crate) fn new(
        exe: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        starter: PathBuf,
    ) -> Self {
        LocalLauncher {
            exe,
            args,
            env,
            starter,
            tag: format!(
                "{:08x}",
                getrandom::u32().unwrap_or_else(|_| std::process::id())
            ),
            children: Arc::default(),
            reaper: Mutex::new(None),
            runs: Mutex::new(0),
        }
    }

    /// Live children of `job`, and the children that exited so far (all, failed).
    pub(crate) fn count(&self, job: &str) -> (u32, (u64, u64)) {
        lock(&self.children).reap(job)
    }

    /// Starts the reaper if it does not run yet. Its `SIGCHLD` listener is registered here,
    /// before any child exists, so no exit goes unnoticed.
    fn start_reaper(&self) {
        let mut reaper = lock(&self.reaper);
        if reaper.is_some() {
            return;
        }
        let sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
            .map_err(|e| tracing::debug!(error = %e, "cannot listen to SIGCHLD; reaping children every second"))
            .ok();
        *reaper = Some(tokio::spawn(reap_on_exit(
            Arc::downgrade(&self.children),
            sigchld,
        )));
    }

    /// Starts `k` instances of `job`; returns the run's name.
    pub(crate) fn launch(&self, job: &Job, k: u32) -> Result<String, LaunchError> {
        let run = {
            let mut n = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            run_name(&job.name, &self.tag, *n)
        };
        self.start_reaper();
        let mut started = Vec::new();
        let observer = std::process::id().to_string();
        for index in 0..k {
            let mut cmd = Command::new(&self.starter);
            cmd.args([RUN_CHILD, "--parent", &observer, "--"])
                .arg(&self.exe)
                .args(&self.args)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                // The job's own (kafkadata `idle_timeout`) over the observer's.
                .envs(job.wake.run_env())
                .env("KAFKA_TOPIC", job.topics.join(","))
                .env("CONSUMER_GROUP", &job.consumer_group)
                .env("JOB_INDEX", index.to_string())
                .env("JOB_ARRAY_SIZE", k.to_string())
                .env("CE_JOB", &job.name)
                .env("CE_JOBRUN", &run)
                .stdin(Stdio::null())
                .process_group(0)
                .kill_on_drop(false);
            let child = cmd.spawn().map_err(|e| LaunchError::Spawn {
                exe: self.exe.display().to_string(),
                job: job.name.clone(),
                source: Arc::new(e),
            })?;
            started.push(child);
        }
        lock(&self.children)
            .live
            .entry(job.name.clone())
            .or_default()
            .extend(started);
        Ok(run)
    }

    /// Asks every child to stop (SIGTERM to its process group), waits up to `grace`, then
    /// kills the groups of those still running.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        let mut all: Vec<Child> = std::mem::take(&mut lock(&self.children).live)
            .into_values()
            .flatten()
            .collect();
        for c in &all {
            signal_group(c, Signal::TERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        for c in &mut all {
            if tokio::time::timeout_at(deadline, c.wait()).await.is_err() {
                signal_group(c, Signal::KILL);
                let _ = c.kill().await;
            }
        }
    }
}

/// `<job>-local-<tag>-<n>`: unique across observer restarts (the tag is random per start).
pub(crate) fn run_name(job: &str, tag: &str, n: u64) -> String {
    format!("{job}-local-{tag}-{n}")
}

/// Sends `sig` to the process group a child leads (it was started with `process_group(0)`).
fn signal_group(c: &Child, sig: Signal) {
    let Some(pid) = c.id().and_then(|id| Pid::from_raw(id as i32)) else {
        return; // already reaped
    };
    if rustix::process::kill_process_group(pid, sig).is_err() {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// The `run-child` step: runs in the child process between the observer's spawn and the
/// consumer program. Asks for SIGTERM when the parent dies, makes sure the parent is still
/// `parent` (it may have died before the request took effect), then replaces this process with
/// `exe args…`. Returns only on failure.
pub fn exec_child(parent: u32, exe: &OsStr, args: &[OsString]) -> String {
    use std::os::unix::process::CommandExt;
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::TERM)) {
        return format!("cannot ask for a parent-death signal: {e}");
    }
    let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
    if ppid != Some(parent) {
        return format!("the observer (pid {parent}) is gone; not starting the consumer");
    }
    let e = std::process::Command::new(exe).args(args).exec();
    format!("cannot start {}: {e}", exe.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_differ_by_start_and_by_run() {
        assert_eq!(run_name("pay", "0a1b2c3d", 7), "pay-local-0a1b2c3d-7");
        let a = LocalLauncher::new("x".into(), vec![], vec![], "y".into());
        let b = LocalLauncher::new("x".into(), vec![], vec![], "y".into());
        assert_ne!(a.tag, b.tag, "two starts got the same tag");
        assert_eq!(a.tag.len(), 8);
    }
}
