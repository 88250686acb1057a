//! The settings of `consume`, the consumer job: the sample's variables (`KAFKA_TOPIC`,
//! `CONSUMER_GROUP`, `IDLE_TIMEOUT`) and the group, fetch and handler knobs, with their flags.
//!
//! Checked here, before the consumer joins its group, because a consumer that starts with a
//! bad setting fails in every job run the observer wakes: better one clear exit 2 in the first
//! run's log. The failure policy is [`super::failure`] (the observer checks it too); building
//! the handler and the connection stay with the caller, which owns those types.

use std::time::Duration;

use super::env::Env;
use super::failure::{failure_policy, FailureFlags, FailureSettings};
use super::settings::{
    invalid, offset_reset, parsed, read_committed, required, setting, switch, var, whole,
    OffsetReset,
};
use super::ConfigError;

/// The consumer's flags as given (each with its variable), besides the connection's.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConsumeFlags {
    pub topics: Option<String>,
    pub group: Option<String>,
    pub idle_timeout: Option<String>,
    pub exec: Option<String>,
    pub sink: Option<String>,
    pub discard: bool,
    pub handler_timeout: Option<String>,
    pub offset_reset: Option<String>,
    pub isolation: Option<String>,
    pub assignors: Option<String>,
    pub commit_interval_ms: Option<String>,
    pub batch_size: Option<String>,
    pub session_timeout: Option<String>,
    pub heartbeat_interval_ms: Option<String>,
    pub failure: FailureFlags,
}

/// Which handler, and the setting it came from (a handler that cannot be built names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandlerChoice {
    /// One log line per record (the default).
    Log,
    Discard,
    Exec {
        command: String,
        origin: String,
    },
    Sink {
        url: String,
        origin: String,
    },
}

/// The consumer's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumeSettings {
    pub topics: Vec<String>,
    pub group: String,
    pub idle_timeout: Duration,
    pub handler_timeout: Duration,
    pub offset_reset: OffsetReset,
    pub read_committed: bool,
    pub assignors: Vec<String>,
    pub commit_interval: Duration,
    pub batch_size: usize,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub failure: FailureSettings,
    pub handler: HandlerChoice,
}

/// Flags first, then the environment, then the defaults; every problem names its origin.
/// `supported` are the assignor names the consumer implements, in its default order.
pub(crate) fn resolve(
    env: &dyn Env,
    f: &ConsumeFlags,
    supported: &[&str],
) -> Result<ConsumeSettings, ConfigError> {
    let topics_s = required(env, &f.topics, "--topic", "KAFKA_TOPIC", "the topic list")?;
    let topics: Vec<String> = topics_s
        .value
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if topics.is_empty() {
        return Err(invalid(&topics_s.origin, "no topic named"));
    }
    let group = required(
        env,
        &f.group,
        "--group",
        "CONSUMER_GROUP",
        "the consumer group",
    )?;
    let idle = whole(
        env,
        &f.idle_timeout,
        "--idle-timeout",
        "IDLE_TIMEOUT",
        60,
        (1, 7 * 86_400),
    )?;
    let handler_timeout = whole(
        env,
        &f.handler_timeout,
        "--handler-timeout",
        "HANDLER_TIMEOUT",
        300,
        (1, 86_400),
    )?;
    let reset = offset_reset(env, &f.offset_reset)?;
    let read_committed = read_committed(env, &f.isolation)?;
    let assignors = parsed(
        setting(env, &f.assignors, "--assignors", "ASSIGNORS")?,
        supported.iter().map(|s| s.to_string()).collect(),
        |v| {
            let mut list: Vec<String> = Vec::new();
            for name in v.split(',').map(|s| s.trim().to_ascii_lowercase()) {
                if !supported.contains(&name.as_str()) {
                    return Err(format!(
                        "expected a list of {}, got '{v}'",
                        supported.join(", ")
                    ));
                }
                if !list.contains(&name) {
                    list.push(name);
                }
            }
            Ok(list)
        },
    )?;
    let commit_ms = whole(
        env,
        &f.commit_interval_ms,
        "--commit-interval-ms",
        "COMMIT_INTERVAL",
        1000,
        (10, 3_600_000),
    )?;
    let batch_size = whole(
        env,
        &f.batch_size,
        "--batch-size",
        "BATCH_SIZE",
        500,
        (1, 1_000_000),
    )?;
    let session = whole(
        env,
        &f.session_timeout,
        "--session-timeout",
        "SESSION_TIMEOUT",
        45,
        (6, 3600),
    )?;
    let heartbeat_ms = whole(
        env,
        &f.heartbeat_interval_ms,
        "--heartbeat-interval-ms",
        "HEARTBEAT_INTERVAL",
        500,
        (50, session * 1000 / 3),
    )?;
    let failure = failure_policy(env, &f.failure, &topics)?;
    let handler = match (
        setting(env, &f.exec, "--exec", "CONSUMER_EXEC")?,
        setting(env, &f.sink, "--sink", "CONSUMER_SINK")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "--exec",
                "--exec and --sink exclude each other: pick one handler",
            ))
        }
        (Some(e), None) => HandlerChoice::Exec {
            command: e.value,
            origin: e.origin,
        },
        (None, Some(s)) => HandlerChoice::Sink {
            url: s.value,
            origin: s.origin,
        },
        (None, None) if f.discard => HandlerChoice::Discard,
        (None, None) => HandlerChoice::Log,
    };
    Ok(ConsumeSettings {
        topics,
        group: group.value,
        idle_timeout: Duration::from_secs(idle),
        handler_timeout: Duration::from_secs(handler_timeout),
        offset_reset: reset,
        read_committed,
        assignors,
        commit_interval: Duration::from_millis(commit_ms),
        batch_size: batch_size as usize,
        session_timeout: Duration::from_secs(session),
        heartbeat_interval: Duration::from_millis(heartbeat_ms),
        failure,
        handler,
    })
}

/// Static membership's `group.instance.id` when `--static-membership` / `STATIC_MEMBERSHIP`
/// is on: the job run and array index Code Engine (or the local launcher) set.
pub(crate) fn instance_id(env: &dyn Env, flag: bool) -> Result<Option<String>, ConfigError> {
    if !switch(env, flag, "STATIC_MEMBERSHIP")? {
        return Ok(None);
    }
    let run = var(env, "CE_JOBRUN")?.unwrap_or_else(|| "local".into());
    let index = var(env, "JOB_INDEX")?.unwrap_or_else(|| "0".into());
    Ok(Some(format!("{run}-{index}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::VarTable;

    const SUPPORTED: &[&str] = &["cooperative-sticky", "range", "roundrobin"];

    fn flags() -> ConsumeFlags {
        ConsumeFlags {
            topics: Some("a, b,,".into()),
            group: Some("g".into()),
            ..ConsumeFlags::default()
        }
    }

    #[test]
    fn defaults_and_precedence() {
        let s = resolve(&VarTable::default(), &flags(), SUPPORTED).unwrap();
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.group, "g");
        assert_eq!(s.idle_timeout, Duration::from_secs(60));
        assert_eq!(s.assignors, SUPPORTED);
        assert_eq!(s.handler, HandlerChoice::Log);
        assert_eq!(s.heartbeat_interval, Duration::from_millis(500));
        let env = VarTable::new(&[
            ("KAFKA_TOPIC", "t"),
            ("CONSUMER_GROUP", "vg"),
            ("IDLE_TIMEOUT", "5"),
            ("ASSIGNORS", "RANGE,range"),
            ("CONSUMER_SINK", "http://h/x"),
        ]);
        let s = resolve(&env, &ConsumeFlags::default(), SUPPORTED).unwrap();
        assert_eq!((s.topics, s.group.as_str()), (vec!["t".to_string()], "vg"));
        assert_eq!(s.idle_timeout, Duration::from_secs(5));
        assert_eq!(s.assignors, ["range"]);
        assert_eq!(
            s.handler,
            HandlerChoice::Sink {
                url: "http://h/x".into(),
                origin: "CONSUMER_SINK".into()
            }
        );
        let s = resolve(&env, &flags(), SUPPORTED).unwrap();
        assert_eq!(
            (s.topics, s.group.as_str()),
            (vec!["a".to_string(), "b".into()], "g")
        );
    }

    /// Variables, and the exact message.
    type Refusal = (&'static [(&'static str, &'static str)], &'static str);

    #[test]
    fn refusals_name_what_to_change() {
        let cases: &[Refusal] = &[
            (
                &[("KAFKA_TOPIC", " , ")],
                "The setting KAFKA_TOPIC is invalid: no topic named.",
            ),
            (
                &[("KAFKA_TOPIC", "t")],
                "The setting --group is invalid: the consumer group is required: pass --group or set CONSUMER_GROUP.",
            ),
            (
                &[],
                "The setting --topic is invalid: the topic list is required: pass --topic or set KAFKA_TOPIC.",
            ),
            (
                &[("KAFKA_TOPIC", "t"), ("CONSUMER_GROUP", "g"), ("ASSIGNORS", "sticky")],
                "The setting ASSIGNORS is invalid: expected a list of cooperative-sticky, range, roundrobin, got 'sticky'.",
            ),
            (
                &[("KAFKA_TOPIC", "t"), ("CONSUMER_GROUP", "g"), ("SESSION_TIMEOUT", "6"), ("HEARTBEAT_INTERVAL", "2001")],
                "The setting HEARTBEAT_INTERVAL is invalid: expected a whole number from 50 to 2000, got '2001'.",
            ),
            (
                &[("KAFKA_TOPIC", "t"), ("CONSUMER_GROUP", "g"), ("CONSUMER_EXEC", "cat"), ("CONSUMER_SINK", "http://h/x")],
                "The setting --exec is invalid: --exec and --sink exclude each other: pick one handler.",
            ),
        ];
        for (vars, want) in cases {
            let e = resolve(&VarTable::new(vars), &ConsumeFlags::default(), SUPPORTED).unwrap_err();
            assert_eq!(e.to_string(), *want, "{vars:?}");
        }
    }

    #[test]
    fn static_membership_names_the_run() {
        assert_eq!(instance_id(&VarTable::default(), false), Ok(None));
        assert_eq!(
            instance_id(&VarTable::default(), true),
            Ok(Some("local-0".into()))
        );
        let env = VarTable::new(&[
            ("STATIC_MEMBERSHIP", "TRUE"),
            ("CE_JOBRUN", "r1"),
            ("JOB_INDEX", "3"),
        ]);
        assert_eq!(instance_id(&env, false), Ok(Some("r1-3".into())));
        let e = instance_id(&VarTable::new(&[("STATIC_MEMBERSHIP", "maybe")]), false).unwrap_err();
        assert!(e.to_string().contains("STATIC_MEMBERSHIP") && e.to_string().contains("'maybe'"));
    }
}
