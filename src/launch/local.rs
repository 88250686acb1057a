//! The local launcher: consumer instances as child processes of the observer.
//!
//! It stands in for Code Engine on a laptop (`./run.sh local`) and in end-to-end tests, with
//! the same contract: a "job run" of k instances is k processes of `kafka-observer consume`,
//! each told its `JOB_INDEX`/`JOB_ARRAY_SIZE` as Code Engine would, and an instance is active
//! while its process lives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::LaunchError;
use crate::config::kafkadata::Job;

/// Starts and counts local consumer processes.
pub struct LocalLauncher {
    exe: PathBuf,
    args: Vec<String>,
    /// Variables every child gets (broker settings, idle timeout, log level).
    env: Vec<(String, String)>,
    children: Mutex<BTreeMap<String, Vec<Child>>>,
    runs: Mutex<u64>,
}

impl LocalLauncher {
    /// `exe args…` is the consumer command (normally this binary and `consume`).
    pub fn new(exe: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> Self {
        LocalLauncher {
            exe,
            args,
            env,
            children: Mutex::default(),
            runs: Mutex::new(0),
        }
    }

    /// Live children of `job`; exited ones are reaped.
    pub fn active(&self, job: &str) -> u32 {
        let mut all = self.children.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = all.get_mut(job) else {
            return 0;
        };
        list.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        list.len() as u32
    }

    /// Starts `k` instances of `job`; returns the run's name.
    pub fn launch(&self, job: &Job, k: u32) -> Result<String, LaunchError> {
        let run = {
            let mut n = self.runs.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("{}-local-{}", job.name, *n)
        };
        let mut started = Vec::new();
        for index in 0..k {
            let mut cmd = Command::new(&self.exe);
            cmd.args(&self.args)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .env("KAFKA_TOPIC", job.topics.join(","))
                .env("CONSUMER_GROUP", &job.consumer_group)
                .env("JOB_INDEX", index.to_string())
                .env("JOB_ARRAY_SIZE", k.to_string())
                .env("CE_JOB", &job.name)
                .env("CE_JOBRUN", &run)
                .stdin(Stdio::null())
                .kill_on_drop(false);
            let child = cmd.spawn().map_err(|e| {
                LaunchError::new(format!(
                    "cannot start {} for job {}: {e}",
                    self.exe.display(),
                    job.name
                ))
            })?;
            started.push(child);
        }
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(job.name.clone())
            .or_default()
            .extend(started);
        Ok(run)
    }

    /// Asks every child to stop (SIGTERM), waits up to `grace`, then kills what is left.
    pub async fn shutdown(&self, grace: Duration) {
        let mut all: Vec<Child> = {
            let mut map = self.children.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *map).into_values().flatten().collect()
        };
        for c in &all {
            if let Some(pid) = c.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        for c in &mut all {
            if tokio::time::timeout_at(deadline, c.wait()).await.is_err() {
                let _ = c.kill().await;
            }
        }
    }
}
