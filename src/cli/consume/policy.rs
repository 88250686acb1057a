//! The failure policy of `consume`: its flags as [`config::failure`](crate::config::failure)
//! takes them (it resolves and checks them, for `observe` too), the result turned into the
//! consumer's [`FailurePolicy`], and the one check that needs the cluster: the dead-letter
//! topic exists.

use super::ConsumeArgs;
use crate::cli::{invalid, CliError};
use crate::cluster::Cluster;
use crate::config::failure::{FailureFlags, FailureSettings, OnExhausted};
use crate::consumer::failure::{Exhausted, FailurePolicy};

/// The failure-policy flags of `consume`, as [`config::failure`](crate::config::failure) takes them.
pub(super) fn flags(a: &ConsumeArgs) -> FailureFlags {
    FailureFlags {
        max_attempts: a.max_attempts.clone(),
        max_record_age: a.max_record_age.clone(),
        dead_letter_topic: a.dead_letter_topic.clone(),
        on_exhausted: a.on_exhausted.clone(),
    }
}

/// The consumer's failure policy for settings [`config::failure`](crate::config::failure)
/// resolved and checked.
pub(super) fn failure_policy(s: FailureSettings) -> Result<FailurePolicy, CliError> {
    let exhausted = match s.exhausted {
        OnExhausted::Block => Exhausted::Block,
        OnExhausted::Skip => Exhausted::Skip,
        OnExhausted::DeadLetter(t) => Exhausted::DeadLetter(t),
    };
    // config has refused every combination the consumer cannot run with.
    FailurePolicy::new(s.max_attempts, s.max_record_age, exhausted)
        .map_err(|e| CliError::Usage(format!("the failure policy cannot run: {e:?}")))
}

/// The dead-letter topic must exist before the first record needs it: a missing one would
/// block the partition at its first exhausted record. An unreachable cluster is not judged
/// here (the consumer retries it like any other start).
pub(super) async fn check_dead_letter_topic(
    cluster: &Cluster,
    topic: &str,
) -> Result<(), CliError> {
    let topics = [topic.to_string()];
    let md = match cluster.refresh_metadata(Some(&topics)).await {
        Ok(md) => md,
        Err(e) if e.is_fatal() => return Err(CliError::Runtime(e.to_string())),
        Err(_) => return Ok(()),
    };
    match md.topics.get(topic) {
        Some(t) if t.error_code == 0 && !t.partitions.is_empty() => Ok(()),
        Some(t) if t.error_code != 0 && t.error_code != 3 => Err(CliError::Runtime(format!(
            "dead-letter topic '{topic}': {}",
            crate::protocol::error::error_name(t.error_code)
        ))),
        _ => Err(invalid(
            "--dead-letter-topic",
            format!(
                "the dead-letter topic '{topic}' does not exist: create it first (kafka-topics --create --topic {topic})"
            ),
        )),
    }
}
