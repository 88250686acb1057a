//! The failure policy of `consume`, from its flags and variables: `--max-attempts`,
//! `--max-record-age`, `--dead-letter-topic`, `--on-exhausted`. Every refusal is a usage error
//! (exit 2) naming the flag or variable to change — a consumer that cannot say where its
//! exhausted records go, or would write them back to a topic it reads, never starts.

use std::time::Duration;

use super::ConsumeArgs;
use crate::cli::settings::{choice, number, parsed, setting};
use crate::cli::{invalid, CliError};
use crate::cluster::Cluster;
use crate::consumer::failure::{Exhausted, FailurePolicy, PolicyError};

/// Longest `--max-record-age`: ten years.
const MAX_RECORD_AGE_SECS: u64 = 10 * 365 * 86_400;

/// The failure policy from `--max-attempts`, `--max-record-age`, `--dead-letter-topic` and
/// `--on-exhausted` (or their variables); every refusal names the setting to fix.
pub(super) fn failure_policy(
    a: &ConsumeArgs,
    topics: &[String],
) -> Result<FailurePolicy, CliError> {
    let attempts = setting(&a.max_attempts, "--max-attempts", "MAX_ATTEMPTS")?;
    let attempts_origin = attempts.as_ref().map(|s| s.origin.clone());
    let max_attempts = parsed(attempts, None, |v| {
        number(1, 1_000_000)(v).map(|n| Some(n as u32))
    })?;
    let age = setting(&a.max_record_age, "--max-record-age", "MAX_RECORD_AGE")?;
    let age_origin = age.as_ref().map(|s| s.origin.clone());
    let max_record_age = parsed(age, None, |v| {
        number(1, MAX_RECORD_AGE_SECS)(v).map(|n| Some(Duration::from_secs(n)))
    })?;
    let dlt = setting(
        &a.dead_letter_topic,
        "--dead-letter-topic",
        "DEAD_LETTER_TOPIC",
    )?;
    let on = setting(&a.on_exhausted, "--on-exhausted", "ON_EXHAUSTED")?;
    let on_origin = on.as_ref().map(|s| s.origin.clone());
    let on = parsed(on, None, |v| choice(&["block", "skip"])(v).map(Some))?;
    let exhausted = match (dlt, on) {
        (Some(t), None) => {
            let topic = t.value.trim().to_string();
            dead_letter_name(&topic).map_err(|m| invalid(&t.origin, m))?;
            if topics.contains(&topic) {
                return Err(invalid(
                    &t.origin,
                    format!(
                        "the dead-letter topic '{topic}' is a topic this consumer reads: its failing records would come back to it; name another topic (e.g. {topic}.DLT)"
                    ),
                ));
            }
            Exhausted::DeadLetter(topic)
        }
        (Some(t), Some(_)) => {
            return Err(invalid(
                on_origin.as_deref().unwrap_or("--on-exhausted"),
                format!(
                    "{} and {} exclude each other: exhausted records go to the dead-letter topic; drop one",
                    on_origin.as_deref().unwrap_or("--on-exhausted"),
                    t.origin
                ),
            ))
        }
        (None, Some(v)) if v == "skip" => Exhausted::Skip,
        (None, _) => Exhausted::Block,
    };
    FailurePolicy::new(max_attempts, max_record_age, exhausted).map_err(|e| match e {
        PolicyError::NowhereToGo(flag) => {
            let origin = if flag == "--max-attempts" {
                attempts_origin.unwrap_or_else(|| flag.to_string())
            } else {
                age_origin.unwrap_or_else(|| flag.to_string())
            };
            invalid(
                &origin,
                format!(
                    "{origin} needs somewhere for exhausted records to go: add --dead-letter-topic TOPIC or --on-exhausted skip (without either, a failing record is retried forever and nothing past it is committed)"
                ),
            )
        }
        PolicyError::ZeroAttempts => invalid(
            attempts_origin.as_deref().unwrap_or("--max-attempts"),
            "expected a whole number from 1 to 1000000, got '0'",
        ),
    })
}

/// A topic name Kafka accepts: 1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`.
fn dead_letter_name(t: &str) -> Result<(), String> {
    let ok_chars = t
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if t.is_empty() || t.len() > 249 || !ok_chars || t == "." || t == ".." {
        return Err(format!(
            "expected one topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-'), got '{t}'"
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_names() {
        for ok in ["t.DLT", "a", "orders-dlt_1", &"x".repeat(249)] {
            assert_eq!(dead_letter_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "a,b",
            "t/1",
            &"x".repeat(250),
            "caf\u{e9}",
        ] {
            assert!(dead_letter_name(bad).is_err(), "{bad}");
        }
    }
}
