//! Heartbeats on their own task, so a slow handler never costs the membership, and so the member
//! hears of a rebalance within one heartbeat interval even while its handler runs.
//!
//! The interval is what decides how fast a new member gets into the group: the coordinator
//! tells the existing members to rejoin only in answer to their next heartbeat. The default
//! (500 ms) keeps that wait well under a second; a heartbeat is a tiny request the coordinator
//! answers from memory.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::Instrument;

use super::group::{Generation, GroupConfig, GroupError, Member};
use super::rebalance::Signal;
use crate::cluster::Cluster;

/// Consecutive failed heartbeats (coordinator moved, connection lost) before the member rejoins,
/// which finds the coordinator again.
const MAX_FAILURES: u32 = 10;

/// Heartbeats every `every` for generation `gen` until the task is aborted (the loop rejoined)
/// or the membership is gone; what it learns is raised on `signal` (which outlives this task).
pub(crate) fn spawn(
    cluster: Arc<Cluster>,
    group: GroupConfig,
    gen: Generation,
    every: Duration,
    signal: Signal,
) -> JoinHandle<()> {
    let task = async move {
        let mut m = Member::with_generation(cluster, group, gen);
        let mut failures = 0u32;
        loop {
            tokio::time::sleep(every).await;
            match m.heartbeat().await {
                Ok(()) => failures = 0,
                Err(GroupError::Retry(e)) => {
                    failures += 1;
                    tracing::debug!(error = %e, failures, "heartbeat failed");
                    if failures >= MAX_FAILURES {
                        signal.raise(GroupError::Rebalance(format!(
                            "{failures} heartbeats failed, last: {e}"
                        )));
                        return;
                    }
                }
                Err(e @ GroupError::Rebalance(_)) => {
                    // Still a member: keep heartbeating until the loop rejoins (after the handler
                    // call in flight), or the coordinator would expire the session meanwhile.
                    failures = 0;
                    if signal.pending().is_none() {
                        tracing::info!(reason = %e, "rebalance started; rejoining after the handler call in flight");
                    }
                    signal.raise(e);
                }
                Err(e) => {
                    signal.raise(e);
                    return;
                }
            }
        }
    };
    tokio::spawn(task.in_current_span())
}
