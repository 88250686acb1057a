//! Flag-or-environment settings that name their origin in errors.
//!
//! clap's own env fallback cannot tell a bad `OBSERVER_TICKER` from a bad `--ticker-ms`; the
//! person fixing a Code Engine configmap needs to know which one to edit. Every variable the
//! program reads goes through [`var()`], and every yes/no value through [`parse_bool`], so that
//! a value is either understood or refused with its name — never silently taken as unset or
//! false (a non-UTF-8 `IDLE_TIMEOUT` used to run with the default, `STATIC_MEMBERSHIP=TRUE`
//! meant false).
//!
//! The rules, in one place for every subcommand: a flag beats its variable; a blank variable is
//! unset; a value that is not UTF-8 is refused naming the variable; a number out of bounds names
//! the bounds; a required setting that is missing names both the flag and the variable. The
//! environment is an [`Env`] passed in, so every rule is a pure function.

use std::ffi::OsString;

use super::env::Env;
use super::ConfigError;

/// An invalid flag or variable value.
pub(crate) fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        message: message.into(),
    }
}

/// A raw setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub value: String,
    pub origin: String,
}

/// Reads one environment variable: `None` when unset, empty or blank; an error naming the
/// variable when its value is not UTF-8.
pub fn var(env: &dyn Env, name: &str) -> Result<Option<String>, ConfigError> {
    env_value(name, env.var_os(name))
}

/// [`var()`] on a value already read.
pub(crate) fn env_value(name: &str, raw: Option<OsString>) -> Result<Option<String>, ConfigError> {
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
pub(crate) fn parse_bool(v: &str) -> Result<bool, String> {
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
pub(crate) fn setting(
    env: &dyn Env,
    flag: &Option<String>,
    flag_name: &str,
    name: &str,
) -> Result<Option<Setting>, ConfigError> {
    Ok(match (flag, var(env, name)?) {
        (Some(v), _) => Some(Setting {
            value: v.clone(),
            origin: flag_name.to_string(),
        }),
        (None, Some(v)) => Some(Setting {
            value: v,
            origin: name.to_string(),
        }),
        (None, None) => None,
    })
}

/// A flag without an environment fallback, as a setting naming it.
pub(crate) fn flag(value: &Option<String>, name: &str) -> Option<Setting> {
    value.as_ref().map(|v| Setting {
        value: v.clone(),
        origin: name.to_string(),
    })
}

/// Like [`setting`], but missing is an error naming both the flag and the variable.
pub(crate) fn required(
    env: &dyn Env,
    flag: &Option<String>,
    flag_name: &str,
    name: &str,
    what: &str,
) -> Result<Setting, ConfigError> {
    setting(env, flag, flag_name, name)?.ok_or_else(|| {
        invalid(
            flag_name,
            format!("{what} is required: pass {flag_name} or set {name}"),
        )
    })
}

/// Parses a setting with `parse`, naming its origin on failure.
pub(crate) fn parsed<T>(
    s: Option<Setting>,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    match s {
        None => Ok(default),
        Some(s) => parse(s.value.trim()).map_err(|m| invalid(&s.origin, m)),
    }
}

/// A yes/no setting given as a flag value (`--long-poll false`) or a variable; `default` when
/// neither is set.
pub(crate) fn boolean(
    env: &dyn Env,
    flag: &Option<String>,
    flag_name: &str,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    parsed(setting(env, flag, flag_name, name)?, default, parse_bool)
}

/// A yes/no setting whose flag is a switch (`--static-membership`): on when the switch is
/// given, else the variable through [`parse_bool`], else off.
pub(crate) fn switch(env: &dyn Env, flag: bool, name: &str) -> Result<bool, ConfigError> {
    if flag {
        return Ok(true);
    }
    let from_env = var(env, name)?.map(|value| Setting {
        value,
        origin: name.to_string(),
    });
    parsed(from_env, false, parse_bool)
}

/// A whole number within `min..=max`.
pub(crate) fn number(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |v| match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {min} to {max}, got '{v}'"
        )),
    }
}

/// One of `choices`, case-insensitively.
pub(crate) fn choice<'a>(choices: &'a [&'a str]) -> impl Fn(&str) -> Result<String, String> + 'a {
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
pub(crate) fn whole(
    env: &dyn Env,
    flag: &Option<String>,
    flag_name: &str,
    name: &str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
    parsed(
        setting(env, flag, flag_name, name)?,
        default,
        number(min, max),
    )
}

/// An isolation level as people write it: `read_committed`, `read-committed`, `READ_COMMITTED`,
/// … (Kafka's Java clients say `read_committed`, kcat and the old `lag` flag `read-committed`).
/// True for read_committed.
pub(crate) fn isolation(v: &str) -> Result<bool, String> {
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
pub(crate) fn read_committed(env: &dyn Env, flag: &Option<String>) -> Result<bool, ConfigError> {
    parsed(
        setting(env, flag, "--isolation", "KAFKA_ISOLATION")?,
        true,
        isolation,
    )
}

/// Where a partition without a usable commit starts (Kafka's `auto.offset.reset`). The
/// decision layer has its own type for it; `config` sits below it and names only the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetReset {
    /// From the log start (the default).
    Earliest,
    /// From the end.
    Latest,
}

/// `--offset-reset` / `OFFSET_RESET`: where a partition without a usable commit starts.
pub(crate) fn offset_reset(
    env: &dyn Env,
    flag: &Option<String>,
) -> Result<OffsetReset, ConfigError> {
    let v = parsed(
        setting(env, flag, "--offset-reset", "OFFSET_RESET")?,
        "earliest".to_string(),
        choice(&["earliest", "latest"]),
    )?;
    Ok(if v == "earliest" {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::VarTable;
    use std::os::unix::ffi::OsStringExt;

    fn some(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn text(e: ConfigError) -> String {
        e.to_string()
    }

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
        assert_eq!(env_value("X", None).unwrap(), None);
        assert_eq!(env_value("X", Some("  ".into())).unwrap(), None);
        assert_eq!(env_value("X", Some("5".into())).unwrap(), Some("5".into()));
        let bad = OsString::from_vec(b"5\xff".to_vec());
        let e = env_value("IDLE_TIMEOUT", Some(bad)).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            text(e),
            "The setting IDLE_TIMEOUT is invalid: the value is not valid UTF-8 ('5\u{fffd}'); set it to plain text."
        );
    }

    /// A flag, a variable, and the value resolved or the error's text.
    type Rule = (
        Option<&'static str>,
        Option<&'static str>,
        Result<u64, &'static str>,
    );

    /// Flag, variable, or neither: which wins, and what an error names.
    #[test]
    fn resolution_rules() {
        // (flag, variable, expected value or the error's text)
        let cases: &[Rule] = &[
            (None, None, Ok(7)),
            (Some("3"), None, Ok(3)),
            (None, Some("4"), Ok(4)),
            // The flag beats the variable, even a bad variable.
            (Some("3"), Some("4"), Ok(3)),
            (Some("3"), Some("many"), Ok(3)),
            // A blank variable is unset.
            (None, Some(""), Ok(7)),
            (None, Some("  \t"), Ok(7)),
            // Surrounding blanks are not part of the value.
            (None, Some(" 5 "), Ok(5)),
            // Bounds are named, with the origin of the value.
            (
                Some("0"),
                None,
                Err("The setting --n is invalid: expected a whole number from 1 to 10, got '0'."),
            ),
            (
                None,
                Some("11"),
                Err("The setting N is invalid: expected a whole number from 1 to 10, got '11'."),
            ),
            (
                None,
                Some("many"),
                Err("The setting N is invalid: expected a whole number from 1 to 10, got 'many'."),
            ),
        ];
        for (flag, value, want) in cases {
            let env = VarTable::new(&value.map(|v| vec![("N", v)]).unwrap_or_default());
            let got = whole(&env, &flag.map(String::from), "--n", "N", 7, (1, 10)).map_err(text);
            assert_eq!(got, want.map_err(String::from), "{flag:?} {value:?}");
        }
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_named() {
        let env = VarTable::default().with_raw("N", OsString::from_vec(b"5\xff".to_vec()));
        for e in [
            whole(&env, &None, "--n", "N", 7, (1, 10)).unwrap_err(),
            boolean(&env, &None, "--b", "N", true).unwrap_err(),
            switch(&env, false, "N").unwrap_err(),
            var(&env, "N").unwrap_err(),
        ] {
            let t = text(e);
            assert!(
                t.starts_with("The setting N is invalid") && t.contains("UTF-8"),
                "{t}"
            );
        }
        // The variable is read even when the flag is given: a broken one is refused either way.
        assert!(whole(&env, &some("3"), "--n", "N", 7, (1, 10)).is_err());
    }

    #[test]
    fn required_names_both_flag_and_variable() {
        let e = required(
            &VarTable::default(),
            &None,
            "--topic",
            "KAFKA_TOPIC",
            "the topic",
        );
        assert_eq!(
            text(e.unwrap_err()),
            "The setting --topic is invalid: the topic is required: pass --topic or set KAFKA_TOPIC."
        );
        let env = VarTable::new(&[("KAFKA_TOPIC", "t")]);
        let s = required(&env, &None, "--topic", "KAFKA_TOPIC", "the topic").unwrap();
        assert_eq!((s.value.as_str(), s.origin.as_str()), ("t", "KAFKA_TOPIC"));
        let s = required(&env, &some("u"), "--topic", "KAFKA_TOPIC", "the topic").unwrap();
        assert_eq!((s.value.as_str(), s.origin.as_str()), ("u", "--topic"));
    }

    #[test]
    fn booleans_and_switches() {
        let on = VarTable::new(&[("B", "TRUE")]);
        let off = VarTable::new(&[("B", "off")]);
        let bad = VarTable::new(&[("B", "maybe")]);
        let none = VarTable::default();
        assert_eq!(boolean(&none, &None, "--b", "B", true), Ok(true));
        assert_eq!(boolean(&off, &None, "--b", "B", true), Ok(false));
        assert_eq!(boolean(&off, &some("yes"), "--b", "B", false), Ok(true));
        assert!(text(boolean(&bad, &None, "--b", "B", true).unwrap_err()).contains("B is invalid"));
        assert_eq!(switch(&none, false, "B"), Ok(false));
        assert_eq!(switch(&on, false, "B"), Ok(true));
        assert_eq!(switch(&off, true, "B"), Ok(true));
        let e = text(switch(&bad, false, "B").unwrap_err());
        assert!(e.contains("B is invalid") && e.contains("'maybe'"), "{e}");
    }

    #[test]
    fn isolation_and_offset_reset() {
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
        let env = VarTable::new(&[
            ("KAFKA_ISOLATION", "read_uncommitted"),
            ("OFFSET_RESET", "LATEST"),
        ]);
        assert_eq!(read_committed(&VarTable::default(), &None), Ok(true));
        assert_eq!(read_committed(&env, &None), Ok(false));
        assert_eq!(read_committed(&env, &some("read-committed")), Ok(true));
        assert_eq!(
            offset_reset(&VarTable::default(), &None),
            Ok(OffsetReset::Earliest)
        );
        assert_eq!(offset_reset(&env, &None), Ok(OffsetReset::Latest));
        let e = text(offset_reset(&env, &some("newest")).unwrap_err());
        assert_eq!(
            e,
            "The setting --offset-reset is invalid: expected one of earliest, latest, got 'newest'."
        );
    }
}
