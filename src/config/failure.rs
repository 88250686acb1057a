//! The consumers' failure policy, from `--max-attempts`, `--max-record-age`,
//! `--dead-letter-topic`, `--on-exhausted` or their variables.
//!
//! Its own file because two roles read it: `consume`, which runs by it, and `observe`, whose
//! environment its consumers inherit — so the observer checks the same variables with the same
//! function at its start, and a typo fails once, at deploy time, instead of in every consumer
//! run. Every refusal names the flag or variable to change: a consumer that cannot say where
//! its exhausted records go, or would write them back to a topic it reads, never starts.

use std::time::Duration;

use super::env::Env;
use super::settings::{choice, invalid, number, parsed, setting};
use super::ConfigError;

/// Longest `--max-record-age`: ten years.
const MAX_RECORD_AGE_SECS: u64 = 10 * 365 * 86_400;

/// The failure-policy flags as given (all `None` for `observe`, which has no such flags).
#[derive(Debug, Clone, Default)]
pub(crate) struct FailureFlags {
    pub max_attempts: Option<String>,
    pub max_record_age: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub on_exhausted: Option<String>,
}

/// Where a record goes once its attempts are exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnExhausted {
    /// Nowhere: retry forever, commit nothing past it (the default).
    Block,
    /// Log it, count it, commit past it.
    Skip,
    /// Produce a copy to this topic, then commit past it.
    DeadLetter(String),
}

/// The failure settings, checked: attempts and age come with somewhere for exhausted records
/// to go, and the dead-letter topic is a topic name that this consumer does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailureSettings {
    /// `None`: the consumer's default (unlimited, or 10 with a dead-letter topic).
    pub max_attempts: Option<u32>,
    pub max_record_age: Option<Duration>,
    pub exhausted: OnExhausted,
}

/// The failure policy of a consumer reading `topics`; every refusal names the setting to fix.
pub(crate) fn failure_policy(
    env: &dyn Env,
    flags: &FailureFlags,
    topics: &[String],
) -> Result<FailureSettings, ConfigError> {
    let attempts = setting(env, &flags.max_attempts, "--max-attempts", "MAX_ATTEMPTS")?;
    let attempts_origin = attempts.as_ref().map(|s| s.origin.clone());
    let max_attempts = parsed(attempts, None, |v| {
        number(1, 1_000_000)(v).map(|n| Some(n as u32))
    })?;
    let age = setting(
        env,
        &flags.max_record_age,
        "--max-record-age",
        "MAX_RECORD_AGE",
    )?;
    let age_origin = age.as_ref().map(|s| s.origin.clone());
    let max_record_age = parsed(age, None, |v| {
        number(1, MAX_RECORD_AGE_SECS)(v).map(|n| Some(Duration::from_secs(n)))
    })?;
    let dlt = setting(
        env,
        &flags.dead_letter_topic,
        "--dead-letter-topic",
        "DEAD_LETTER_TOPIC",
    )?;
    let on = setting(env, &flags.on_exhausted, "--on-exhausted", "ON_EXHAUSTED")?;
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
            OnExhausted::DeadLetter(topic)
        }
        (Some(t), Some(_)) => {
            let on = on_origin.as_deref().unwrap_or("--on-exhausted");
            return Err(invalid(
                on,
                format!(
                    "{on} and {} exclude each other: exhausted records go to the dead-letter topic; drop one",
                    t.origin
                ),
            ));
        }
        (None, Some(v)) if v == "skip" => OnExhausted::Skip,
        (None, _) => OnExhausted::Block,
    };
    if exhausted == OnExhausted::Block {
        // Attempts first, then age: the order the consumer has always named them in.
        let nowhere = match (max_attempts, max_record_age) {
            (Some(_), _) => attempts_origin,
            (None, Some(_)) => age_origin,
            (None, None) => None,
        };
        if let Some(origin) = nowhere {
            return Err(invalid(
                &origin,
                format!(
                    "{origin} needs somewhere for exhausted records to go: add --dead-letter-topic TOPIC or --on-exhausted skip (without either, a failing record is retried forever and nothing past it is committed)"
                ),
            ));
        }
    }
    Ok(FailureSettings {
        max_attempts,
        max_record_age,
        exhausted,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::VarTable;

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

    fn flags(
        a: Option<&str>,
        age: Option<&str>,
        dlt: Option<&str>,
        on: Option<&str>,
    ) -> FailureFlags {
        FailureFlags {
            max_attempts: a.map(String::from),
            max_record_age: age.map(String::from),
            dead_letter_topic: dlt.map(String::from),
            on_exhausted: on.map(String::from),
        }
    }

    #[test]
    fn policies_that_are_accepted() {
        let topics = ["t".to_string()];
        let none = VarTable::default();
        let ok = |env: &VarTable, f: FailureFlags| failure_policy(env, &f, &topics).unwrap();
        let s = ok(&none, flags(None, None, None, None));
        assert_eq!(
            (s.max_attempts, s.max_record_age, s.exhausted),
            (None, None, OnExhausted::Block)
        );
        let s = ok(&none, flags(Some("3"), Some("60"), None, Some("SKIP")));
        assert_eq!(
            (s.max_attempts, s.max_record_age, s.exhausted),
            (Some(3), Some(Duration::from_secs(60)), OnExhausted::Skip)
        );
        let s = ok(&none, flags(None, None, Some(" t.DLT "), None));
        assert_eq!(s.exhausted, OnExhausted::DeadLetter("t.DLT".into()));
        assert_eq!(
            ok(&none, flags(None, None, None, Some("block"))).exhausted,
            OnExhausted::Block
        );
        // Variables, and a flag beating its variable.
        let env = VarTable::new(&[
            ("MAX_ATTEMPTS", "5"),
            ("ON_EXHAUSTED", "skip"),
            ("MAX_RECORD_AGE", " "),
        ]);
        let s = ok(&env, FailureFlags::default());
        assert_eq!(
            (s.max_attempts, s.max_record_age, s.exhausted),
            (Some(5), None, OnExhausted::Skip)
        );
        assert_eq!(
            ok(&env, flags(Some("2"), None, None, None)).max_attempts,
            Some(2)
        );
    }

    /// Flags, variables, and the exact message.
    type Refusal = (
        FailureFlags,
        &'static [(&'static str, &'static str)],
        &'static str,
    );

    /// Every refusal names what to change.
    #[test]
    fn policies_that_are_refused() {
        let topics = ["t".to_string()];
        let cases: &[Refusal] = &[
            (
                flags(Some("0"), None, None, Some("skip")),
                &[],
                "The setting --max-attempts is invalid: expected a whole number from 1 to 1000000, got '0'.",
            ),
            (
                flags(None, None, None, Some("skip")),
                &[("MAX_ATTEMPTS", "many")],
                "The setting MAX_ATTEMPTS is invalid: expected a whole number from 1 to 1000000, got 'many'.",
            ),
            (
                flags(Some("3"), None, None, None),
                &[],
                "The setting --max-attempts is invalid: --max-attempts needs somewhere for exhausted records to go: add --dead-letter-topic TOPIC or --on-exhausted skip (without either, a failing record is retried forever and nothing past it is committed).",
            ),
            (
                FailureFlags::default(),
                &[("MAX_RECORD_AGE", "60")],
                "The setting MAX_RECORD_AGE is invalid: MAX_RECORD_AGE needs somewhere for exhausted records to go: add --dead-letter-topic TOPIC or --on-exhausted skip (without either, a failing record is retried forever and nothing past it is committed).",
            ),
            (
                flags(None, Some("1h"), None, Some("skip")),
                &[],
                "The setting --max-record-age is invalid: expected a whole number from 1 to 315360000, got '1h'.",
            ),
            (
                FailureFlags::default(),
                &[("DEAD_LETTER_TOPIC", "t")],
                "The setting DEAD_LETTER_TOPIC is invalid: the dead-letter topic 't' is a topic this consumer reads: its failing records would come back to it; name another topic (e.g. t.DLT).",
            ),
            (
                flags(None, None, Some("dead letters"), None),
                &[],
                "The setting --dead-letter-topic is invalid: expected one topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_', '-'), got 'dead letters'.",
            ),
            (
                flags(None, None, None, Some("drop")),
                &[],
                "The setting --on-exhausted is invalid: expected one of block, skip, got 'drop'.",
            ),
            (
                flags(None, None, Some("t.DLT"), None),
                &[("ON_EXHAUSTED", "skip")],
                "The setting ON_EXHAUSTED is invalid: ON_EXHAUSTED and --dead-letter-topic exclude each other: exhausted records go to the dead-letter topic; drop one.",
            ),
        ];
        for (f, vars, want) in cases {
            let e = failure_policy(&VarTable::new(vars), f, &topics).unwrap_err();
            assert_eq!(e.to_string(), *want, "{f:?} {vars:?}");
        }
    }
}
