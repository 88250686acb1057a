//! Launching consumer instances: Code Engine job runs, or local processes.
//!
//! The observer sees one interface — count a job's instances, start k more — so the same
//! reconcile loop runs in the cloud, on a laptop and in the tests. The calls run in the
//! launcher's own tasks ([`agent`]), each with a deadline, so IBM Cloud never stalls the
//! Kafka side.

pub(crate) mod agent;
pub mod code_engine;
pub mod local;

use std::fmt;

use crate::config::kafkadata::Job;
use crate::lag::reconcile::Count;

/// A launch or count that failed; the message names the job and the cause, never a secret.
#[derive(Debug, Clone)]
pub struct LaunchError(String);

impl LaunchError {
    pub fn new(msg: impl Into<String>) -> Self {
        LaunchError(msg.into())
    }
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LaunchError {}

/// Where consumer instances run.
pub enum Launcher {
    CodeEngine(code_engine::CodeEngine),
    Local(local::LocalLauncher),
}

impl Launcher {
    pub fn kind(&self) -> &'static str {
        match self {
            Launcher::CodeEngine(_) => "codeengine",
            Launcher::Local(_) => "local",
        }
    }

    /// Instances of `job` that are requested, pending or running, and those that ended.
    pub async fn count(&self, job: &Job) -> Result<Count, LaunchError> {
        match self {
            Launcher::CodeEngine(ce) => ce
                .count_job_runs(&job.name)
                .await
                .map(|t| Count {
                    active: t.active,
                    ended: t.ended,
                    failed: t.failed,
                })
                .map_err(|e| LaunchError::new(format!("listing job runs of {}: {e}", job.name))),
            Launcher::Local(l) => {
                let (active, (ended, failed)) = l.count(&job.name);
                Ok(Count {
                    active,
                    ended,
                    failed,
                })
            }
        }
    }

    /// The log of IBM Cloud calls (Code Engine only).
    pub fn call_log(&self) -> Option<std::sync::Arc<crate::http_client::CallLog>> {
        match self {
            Launcher::CodeEngine(ce) => Some(ce.call_log()),
            Launcher::Local(_) => None,
        }
    }

    /// Starts `instances` more instances of `job` as one run; returns the run's name.
    pub async fn launch(&self, job: &Job, instances: u32) -> Result<String, LaunchError> {
        match self {
            Launcher::CodeEngine(ce) => {
                let req = code_engine::CreateJobRun {
                    job_name: job.name.clone(),
                    scale_array_spec: code_engine::array_spec(instances),
                    // The job's `idle_timeout` (kafkadata), for this run only.
                    run_env_variables: job.wake.run_env(),
                };
                ce.create_job_run(&req)
                    .await
                    .map(|run| run.name)
                    .map_err(|e| {
                        LaunchError::new(format!("creating a job run of {}: {e}", job.name))
                    })
            }
            Launcher::Local(l) => l.launch(job, instances),
        }
    }

    /// Stops what this process started itself (local children); Code Engine runs stay.
    pub async fn shutdown(&self) {
        match self {
            Launcher::CodeEngine(_) => {}
            Launcher::Local(l) => l.shutdown(std::time::Duration::from_secs(20)).await,
        }
    }
}
