//! The wake-up policy keys of a job entry: the dial between latency and Code Engine cost.
//!
//! Every key is optional and today's behaviour (wake one instance per lagging partition at
//! once) is what an entry without them gets. Values are checked here, where the entry's path
//! is known, so that a mistake names the topic, the job and the key (see `kafkadata`'s errors).

use std::fmt;
use std::time::Duration;

use serde_norway::{Mapping, Value};

/// The longest `max_wait` accepted: a day (a record older than that is not "batched").
pub(crate) const MAX_WAIT_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// The longest `idle_timeout` accepted: what the consumer's `IDLE_TIMEOUT` accepts (7 days).
pub(crate) const IDLE_TIMEOUT_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// A job's wake-up policy (see `lag::wake` for what it decides) and how long its runs stay up
/// once idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WakePolicy {
    /// A partition counts as lagging only from this many records (activation).
    pub min_lag: Option<u64>,
    /// Wake anyway once the oldest waiting record is this old (the batching window).
    pub max_wait: Option<Duration>,
    /// Instances = ceil(lag / this), never more than the partitions that count.
    pub records_per_instance: Option<u64>,
    /// At most this many instances of the job (else `--max-instances`).
    pub max_instances: Option<u32>,
    /// Every run of the job gets `IDLE_TIMEOUT` = these (whole) seconds, so a run woken for a
    /// batch ends soon after it drained it instead of waiting for a trickle to pause.
    pub idle_timeout: Option<Duration>,
}

impl WakePolicy {
    /// True when no key is set: today's behaviour.
    pub(crate) fn is_default(&self) -> bool {
        *self == WakePolicy::default()
    }

    /// True when no key changes *when* or *how many* instances wake (`idle_timeout` does not).
    pub(crate) fn wakes_as_default(&self) -> bool {
        WakePolicy {
            idle_timeout: None,
            ..*self
        }
        .is_default()
    }

    /// The environment every run of the job gets on top of the launcher's own:
    /// `IDLE_TIMEOUT=<seconds>` when `idle_timeout` is set, else nothing.
    pub(crate) fn run_env(&self) -> Vec<(String, String)> {
        self.idle_timeout
            .map(|d| vec![("IDLE_TIMEOUT".to_string(), d.as_secs().to_string())])
            .unwrap_or_default()
    }
}

/// `wake at once from 1 record, one instance per lagging partition`, and so on: what `check`
/// prints, every value spelled out.
impl fmt::Display for WakePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min_lag, self.max_wait) {
            (None, None) => f.write_str("wake at the first record")?,
            (Some(n), None) => write!(f, "wake from {n} records")?,
            (None, Some(w)) => write!(
                f,
                "wake when the oldest waiting record is {} old",
                show_duration(w)
            )?,
            (Some(n), Some(w)) => write!(
                f,
                "wake from {n} records, or when the oldest waiting record is {} old",
                show_duration(w)
            )?,
        }
        match self.records_per_instance {
            None => f.write_str("; one instance per lagging partition")?,
            Some(n) => write!(
                f,
                "; one instance per {n} records (at most one per lagging partition)"
            )?,
        }
        match self.max_instances {
            None => f.write_str(", at most --max-instances")?,
            Some(n) => write!(f, ", at most {n}")?,
        }
        match self.idle_timeout {
            None => Ok(()),
            Some(d) => write!(
                f,
                "; runs exit after {} without records (IDLE_TIMEOUT={})",
                show_duration(d),
                d.as_secs()
            ),
        }
    }
}

/// `30s`, `5m`, `1h`, `250ms` as written in a mapping.
pub(crate) fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A duration: a whole number and a unit, `ms`, `s`, `m` or `h` (`30s`, `5m`); `None` otherwise.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Reads the policy keys of one job entry; an error is (key, what is wrong and how to fix it).
pub(crate) fn parse(map: &Mapping) -> Result<WakePolicy, (&'static str, String)> {
    let count = |key: &'static str, what: &str, max: u64| -> Result<Option<u64>, _> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if (1..=max).contains(&v) => Ok(Some(v)),
                _ => Err((
                    key,
                    format!("'{key}' must be a whole number of {what} from 1 to {max}, got {n}"),
                )),
            },
            Some(other) => Err((
                key,
                format!(
                    "'{key}' must be a whole number of {what} from 1 to {max}, got {}{}",
                    super::describe(other),
                    if matches!(other, Value::String(_)) {
                        "; remove the quotes"
                    } else {
                        ""
                    }
                ),
            )),
        }
    };
    let min_lag = count("min_lag", "records", i64::MAX as u64)?;
    let records_per_instance = count("records_per_instance", "records", i64::MAX as u64)?;
    let max_instances = count("max_instances", "instances", 1000)?.map(|n| n as u32);
    let max_wait = duration(
        map,
        "max_wait",
        "write a whole number and a unit, e.g. '30s', '5m' or '500ms', at most 24h",
        |d| !d.is_zero() && d <= MAX_WAIT_LIMIT,
        "a duration from 1ms to 24h",
    )?;
    // The consumer reads IDLE_TIMEOUT as whole seconds from 1 to 7 days.
    let idle_timeout = duration(
        map,
        "idle_timeout",
        "write whole seconds with a unit, e.g. '2s', '30s' or '5m', at most 168h \
         (every run gets IDLE_TIMEOUT in seconds)",
        |d| d.subsec_nanos() == 0 && d.as_secs() >= 1 && d <= IDLE_TIMEOUT_LIMIT,
        "whole seconds from 1s to 168h",
    )?;
    Ok(WakePolicy {
        min_lag,
        max_wait,
        records_per_instance,
        max_instances,
        idle_timeout,
    })
}

/// The duration at `key`, if set: a string [`parse_duration`] reads and `ok` accepts
/// (`range` says what `ok` accepts, `fix` how to write one).
fn duration(
    map: &Mapping,
    key: &'static str,
    fix: &str,
    ok: impl Fn(Duration) -> bool,
    range: &str,
) -> Result<Option<Duration>, (&'static str, String)> {
    let text = match map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => {
            return Err((key, format!("'{key}' needs a unit: got {n}; {fix}")))
        }
        Some(other) => {
            return Err((
                key,
                format!(
                    "'{key}' must be a duration, got {}; {fix}",
                    super::describe(other)
                ),
            ))
        }
    };
    match parse_duration(&text) {
        Some(d) if ok(d) => Ok(Some(d)),
        _ => Err((key, format!("'{key}' is not {range}: '{text}'; {fix}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Result<WakePolicy, (&'static str, String)> {
        let v: Value = serde_norway::from_str(yaml).unwrap();
        parse(v.as_mapping().unwrap())
    }

    #[test]
    fn durations() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<u64>)] = &[
            ("30s", Some(30_000)), ("5m", Some(300_000)), ("1h", Some(3_600_000)),
            ("250ms", Some(250)), (" 2 s", Some(2000)), ("30", None), ("s", None),
            ("1.5s", None), ("-1s", None), ("3d", None), ("99999999999999999999s", None),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text),
                ms.map(Duration::from_millis),
                "{text}"
            );
        }
        for ms in [250, 30_000, 300_000, 3_600_000, 90_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&show_duration(d)), Some(d));
        }
    }

    #[test]
    fn keys_are_read_and_checked() {
        let all =
            policy("{min_lag: 100, max_wait: 60s, records_per_instance: 50, max_instances: 3, idle_timeout: 2s}");
        assert_eq!(
            all,
            Ok(WakePolicy {
                min_lag: Some(100),
                max_wait: Some(Duration::from_secs(60)),
                records_per_instance: Some(50),
                max_instances: Some(3),
                idle_timeout: Some(Duration::from_secs(2)),
            })
        );
        assert_eq!(
            policy("{idle_timeout: 5m}").map(|p| (p.run_env(), p.wakes_as_default())),
            Ok((vec![("IDLE_TIMEOUT".into(), "300".into())], true))
        );
        assert_eq!(
            policy("{max_wait: 5m}").map(|p| (p.run_env(), p.wakes_as_default())),
            Ok((vec![], false))
        );
        assert_eq!(policy("{name: x}"), Ok(WakePolicy::default()));
        #[rustfmt::skip]
        let bad: &[(&str, &str, &str)] = &[
            ("{min_lag: 0}", "min_lag", "from 1 to"),
            ("{min_lag: '10'}", "min_lag", "remove the quotes"),
            ("{min_lag: -3}", "min_lag", "got -3"),
            ("{records_per_instance: 1.5}", "records_per_instance", "whole number"),
            ("{max_instances: 0}", "max_instances", "from 1 to 1000"),
            ("{max_instances: 5000}", "max_instances", "got 5000"),
            ("{max_wait: 30}", "max_wait", "needs a unit"),
            ("{max_wait: 0s}", "max_wait", "from 1ms to 24h"),
            ("{max_wait: 2d}", "max_wait", "e.g. '30s'"),
            ("{max_wait: [1]}", "max_wait", "got a list"),
            ("{idle_timeout: 3}", "idle_timeout", "needs a unit"),
            ("{idle_timeout: 1500ms}", "idle_timeout", "whole seconds from 1s"),
            ("{idle_timeout: 500ms}", "idle_timeout", "whole seconds from 1s"),
            ("{idle_timeout: 0s}", "idle_timeout", "IDLE_TIMEOUT"),
            ("{idle_timeout: 169h}", "idle_timeout", "at most 168h"),
        ];
        for (yaml, key, words) in bad {
            let (k, m) = policy(yaml).unwrap_err();
            assert_eq!(k, *key, "{yaml}");
            assert!(m.contains(words) && m.contains(key), "{yaml}: {m}");
        }
    }

    #[test]
    fn check_spells_the_policy_out() {
        assert_eq!(
            WakePolicy::default().to_string(),
            "wake at the first record; one instance per lagging partition, at most --max-instances"
        );
        let p = WakePolicy {
            min_lag: Some(100),
            max_wait: Some(Duration::from_secs(60)),
            records_per_instance: Some(50),
            max_instances: Some(3),
            idle_timeout: None,
        };
        assert_eq!(
            p.to_string(),
            "wake from 100 records, or when the oldest waiting record is 1m old; one instance per 50 records (at most one per lagging partition), at most 3"
        );
        let idle = WakePolicy {
            idle_timeout: Some(Duration::from_secs(2)),
            ..WakePolicy::default()
        };
        assert_eq!(
            idle.to_string(),
            "wake at the first record; one instance per lagging partition, at most --max-instances; runs exit after 2s without records (IDLE_TIMEOUT=2)"
        );
    }
}
