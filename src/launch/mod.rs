//! Launching consumer instances: Code Engine job runs, or local processes.
//!
//! The observer sees one interface — count a job's instances, start k more — so the same
//! reconcile loop runs in the cloud, on a laptop and in the tests. The calls run in the
//! launcher's own tasks ([`agent`]), each with a deadline, so IBM Cloud never stalls the
//! Kafka side.

pub(crate) mod agent;
pub mod code_engine;
pub(crate) mod local;

pub use local::exec_child;

use std::sync::Arc;
use std::time::Duration;

use crate::config::kafkadata::Job;
use crate::lag::reconcile::Count;
use code_engine::CeError;

/// A launch or count that failed: which order, for which job, and the cause; never a secret.
/// Every one is asked again after the job's back-off, so none says whether it may heal.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum LaunchError {
    /// Code Engine could not list the job's runs.
    #[error("listing job runs of {job}: {source}")]
    Count { job: String, source: Box<CeError> },
    /// Code Engine did not create the job run.
    #[error("creating a job run of {job}: {source}")]
    Create { job: String, source: Box<CeError> },
    /// A local consumer process could not be started.
    #[error("cannot start {exe} for job {job}: {source}")]
    Spawn {
        exe: String,
        job: String,
        source: Arc<std::io::Error>,
    },
    /// The order got no answer within its deadline; its call was abandoned.
    #[error("{order} for job {job}: no answer within {} s", .deadline.as_secs())]
    Deadline {
        order: &'static str,
        job: String,
        deadline: Duration,
    },
}

/// Where consumer instances run.
pub(crate) enum Launcher {
    CodeEngine(code_engine::CodeEngine),
    Local(local::LocalLauncher),
}

impl Launcher {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Launcher::CodeEngine(_) => "codeengine",
            Launcher::Local(_) => "local",
        }
    }

    /// Instances of `job` that are requested, pending or running, and those that ended.
    pub(crate) async fn count(&self, job: &Job) -> Result<Count, LaunchError> {
        match self {
            Launcher::CodeEngine(ce) => ce
                .count_job_runs(&job.name)
                .await
                .map(|t| Count {
                    active: t.active,
                    ended: t.ended,
                    failed: t.failed,
                })
                .map_err(|e| LaunchError::Count {
                    job: job.name.clone(),
                    source: Box::new(e),
                }),
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
    pub(crate) fn call_log(&self) -> Option<std::sync::Arc<crate::http_client::CallLog>> {
        match self {
            Launcher::CodeEngine(ce) => Some(ce.call_log()),
            Launcher::Local(_) => None,
        }
    }

    /// Starts `instances` more instances of `job` as one run; returns the run's name.
    pub(crate) async fn launch(&self, job: &Job, instances: u32) -> Result<String, LaunchError> {
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
                    .map_err(|e| LaunchError::Create {
                        job: job.name.clone(),
                        source: Box::new(e),
                    })
            }
            Launcher::Local(l) => l.launch(job, instances),
        }
    }

    /// Stops what this process started itself (local children); Code Engine runs stay.
    pub(crate) async fn shutdown(&self) {
        match self {
            Launcher::CodeEngine(_) => {}
            Launcher::Local(l) => l.shutdown(std::time::Duration::from_secs(20)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let ce = Box::new(CeError::Config("a job run name is needed".into()));
        let cases = [
            (
                LaunchError::Count {
                    job: "pay".into(),
                    source: ce.clone(),
                },
                "listing job runs of pay: Code Engine client configuration: a job run name is needed",
            ),
            (
                LaunchError::Create {
                    job: "pay".into(),
                    source: ce,
                },
                "creating a job run of pay: Code Engine client configuration: a job run name is needed",
            ),
            (
                LaunchError::Spawn {
                    exe: "/bin/consume".into(),
                    job: "pay".into(),
                    source: Arc::new(std::io::Error::other("no such file")),
                },
                "cannot start /bin/consume for job pay: no such file",
            ),
            (
                LaunchError::Deadline {
                    order: "counting instances",
                    job: "pay".into(),
                    deadline: Duration::from_millis(30_500),
                },
                "counting instances for job pay: no answer within 30 s",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.to_string(), want);
        }
    }
}
