//! Flag-or-environment settings that name their origin in errors.
//!
//! clap's own env fallback cannot tell a bad `OBSERVER_TICKER` from a bad `--ticker-ms`; the
//! person fixing a Code Engine configmap needs to know which one to edit. Every variable the
//! program reads goes through [`env()`], and every yes/no value through [`parse_bool`], so that a
//! value is either understood or refused with its name — never silently taken as unset or false
//! (a non-UTF-8 `IDLE_TIMEOUT` used to run with the default, `STATIC_MEMBERSHIP=TRUE` meant
//! false).

use std::ffi::OsString;

use super::{invalid, CliError};

/// A raw setting and where it came from.
pub struct Setting {
    pub value: String,
    pub origin: String,
}

/// Reads one environment variable: `None` when unset, empty or blank; an error naming the
/// variable when its value is not UTF-8.
pub fn env(name: &str) -> Result<Option<String>, CliError> {
    env_value(name, std::env::var_os(name))
}

/// [`env()`] on a value already read (pure, for tests).
pub fn env_value(name: &str, raw: Option<OsString>) -> Result<Option<String>, CliError> {
    match raw.map(OsString::into_string) {
        None => Ok(None),
        Some(Ok(v)) if v.trim().is_empty() => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(bad)) => Err(invalid(
            name,
            format!(
                "the value is not valid UTF-8 ('{}'); set it to plain text",
                bad.to_string_lossy()
            ),
        )),
    }
}

/// Yes or no: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case.
pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "expected true or false (also 1/0, yes/no, on/off), got '{}'",
            v.trim()
        )),
    }
}

/// The flag's value, else the variable's; `None` when neither is set.
pub fn setting(
    flag: &Option<String>,
    flag_name: &str,
    var: &str,
) -> Result<Option<Setting>, CliError> {
    Ok(match (flag, env(var)?) {
        (Some(v), _) => Some(Setting {
            value: v.clone(),
            origin: flag_name.to_string(),
        }),
        (None, Some(v)) => Some(Setting {
            value: v,
            origin: var.to_string(),
        }),
        (None, None) => None,
    })
}

/// Like `setting`, but missing is an error naming both the flag and the variable.
pub fn required(
    flag: &Option<String>,
    flag_name: &str,
    var: &str,
    what: &str,
) -> Result<Setting, CliError> {
    setting(flag, flag_name, var)?.ok_or_else(|| {
        invalid(
            flag_name,
            format!("{what} is required: pass {flag_name} or set {var}"),
        )
    })
}

/// Parses a setting with `parse`, naming its origin on failure.
pub fn parsed<T>(
    s: Option<Setting>,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, CliError> {
    match s {
        None => Ok(default),
        Some(s) => parse(s.value.trim()).map_err(|m| invalid(&s.origin, m)),
    }
}

/// A yes/no setting given as a flag value (`--long-poll false`) or a variable; `default` when
/// neither is set.
pub fn boolean(
    flag: &Option<String>,
    flag_name: &str,
    var: &str,
    default: bool,
) -> Result<bool, CliError> {
    parsed(setting(flag, flag_name, var)?, default, parse_bool)
}

/// A yes/no setting whose flag is a switch (`--static-membership`): on when the switch is
/// given, else the variable through [`parse_bool`], else off.
pub fn switch(flag: bool, var: &str) -> Result<bool, CliError> {
    if flag {
        return Ok(true);
    }
    let from_env = env(var)?.map(|value| Setting {
        value,
        origin: var.to_string(),
    });
    parsed(from_env, false, parse_bool)
}

/// A whole number within `min..=max`.
pub fn number(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |v| match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, got '{v}'"
        )),
    }
}

/// One of `choices`, case-insensitively.
pub fn choice<'a>(choices: &'a [&'a str]) -> impl Fn(&str) -> Result<String, String> + 'a {
    move |v| {
        let lower = v.to_ascii_lowercase();
        if choices.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(format!("expected one of {}, got '{v}'", choices.join(", ")))
        }
    }
}

/// A whole-number setting: flag, else variable, else `default`; must lie in `min..=max`.
pub fn whole(
    flag: &Option<String>,
    flag_name: &str,
    var: &str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, CliError> {
    parsed(setting(flag, flag_name, var)?, default, number(min, max))
}

/// An isolation level as people write it: `read_committed`, `read-committed`, `READ_COMMITTED`,
/// … (Kafka's Java clients say `read_committed`, kcat and the old `lag` flag `read-committed`).
/// True for read_committed.
pub fn isolation(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().replace('-', "_").as_str() {
        "read_committed" => Ok(true),
        "read_uncommitted" => Ok(false),
        _ => Err(format!(
            "expected read_committed or read_uncommitted, got '{v}'"
        )),
    }
}

/// `--isolation` / `KAFKA_ISOLATION`, for every subcommand: true for read_committed (the
/// default).
pub fn read_committed(flag: &Option<String>) -> Result<bool, CliError> {
    parsed(
        setting(flag, "--isolation", "KAFKA_ISOLATION")?,
        true,
        isolation,
    )
}

/// `--offset-reset` / `OFFSET_RESET`: where a partition without a usable commit starts.
pub fn offset_reset(flag: &Option<String>) -> Result<crate::lag::NoCommit, CliError> {
    let v = parsed(
        setting(flag, "--offset-reset", "OFFSET_RESET")?,
        "earliest".to_string(),
        choice(&["earliest", "latest"]),
    )?;
    Ok(if v == "earliest" {
        crate::lag::NoCommit::Earliest
    } else {
        crate::lag::NoCommit::Latest
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_and_choice_tables() {
        let n = number(1, 10);
        assert_eq!(n("5"), Ok(5));
        assert!(n("0").unwrap_err().contains("from 1 to 10"));
        assert!(n("x").unwrap_err().contains("got 'x'"));
        let c = choice(&["local", "codeengine"]);
        assert_eq!(c("LOCAL"), Ok("local".into()));
        assert!(c("k8s").unwrap_err().contains("local, codeengine"));
    }

    #[test]
    fn bool_table() {
        for v in ["true", "TRUE", "1", "yes", "On", " on "] {
            assert_eq!(parse_bool(v), Ok(true), "{v}");
        }
        for v in ["false", "False", "0", "no", "OFF"] {
            assert_eq!(parse_bool(v), Ok(false), "{v}");
        }
        for v in ["", "2", "y", "enabled", "truee"] {
            let e = parse_bool(v).unwrap_err();
            assert!(e.contains("expected true or false"), "{v}: {e}");
        }
    }

    #[test]
    fn env_values_are_text_or_named_errors() {
        use std::os::unix::ffi::OsStringExt;
        assert_eq!(env_value("X", None).unwrap(), None);
        assert_eq!(env_value("X", Some("  ".into())).unwrap(), None);
        assert_eq!(env_value("X", Some("5".into())).unwrap(), Some("5".into()));
        let bad = OsString::from_vec(b"5\xff".to_vec());
        let e = env_value("IDLE_TIMEOUT", Some(bad)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.contains("IDLE_TIMEOUT") && text.contains("UTF-8"),
            "{text}"
        );
    }

    #[test]
    fn isolation_spellings() {
        for v in [
            "read_committed",
            "read-committed",
            "READ_COMMITTED",
            "Read-Committed",
        ] {
            assert_eq!(isolation(v), Ok(true), "{v}");
        }
        for v in ["read_uncommitted", "read-uncommitted", "READ-UNCOMMITTED"] {
            assert_eq!(isolation(v), Ok(false), "{v}");
        }
        for v in ["", "committed", "read committed", "dirty"] {
            let e = isolation(v).unwrap_err();
            assert!(e.contains("read_committed or read_uncommitted"), "{v}: {e}");
            assert!(e.contains(&format!("'{v}'")), "{v}: {e}");
        }
    }
}
