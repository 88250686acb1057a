//! Flag-or-environment settings that name their origin in errors.
//!
//! clap's own env fallback cannot tell a bad `OBSERVER_TICKER` from a bad `--ticker-ms`; the
//! person fixing a Code Engine configmap needs to know which one to edit.

use super::kafka::env;
use super::{invalid, CliError};

/// A raw setting and where it came from.
pub struct Setting {
    pub value: String,
    pub origin: String,
}

/// The flag's value, else the variable's; `None` when neither is set.
pub fn setting(flag: &Option<String>, flag_name: &str, var: &str) -> Option<Setting> {
    match (flag, env(var)) {
        (Some(v), _) => Some(Setting {
            value: v.clone(),
            origin: flag_name.to_string(),
        }),
        (None, Some(v)) => Some(Setting {
            value: v,
            origin: var.to_string(),
        }),
        (None, None) => None,
    }
}

/// Like `setting`, but missing is an error naming both the flag and the variable.
pub fn required(
    flag: &Option<String>,
    flag_name: &str,
    var: &str,
    what: &str,
) -> Result<Setting, CliError> {
    setting(flag, flag_name, var).ok_or_else(|| {
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
    parsed(setting(flag, flag_name, var), default, number(min, max))
}

/// `--isolation` / `KAFKA_ISOLATION`: true for read_committed (the default).
pub fn read_committed(flag: &Option<String>) -> Result<bool, CliError> {
    let v = parsed(
        setting(flag, "--isolation", "KAFKA_ISOLATION"),
        "read_committed".to_string(),
        choice(&["read_committed", "read_uncommitted"]),
    )?;
    Ok(v == "read_committed")
}

/// `--offset-reset` / `OFFSET_RESET`: where a partition without a usable commit starts.
pub fn offset_reset(flag: &Option<String>) -> Result<crate::lag::NoCommit, CliError> {
    let v = parsed(
        setting(flag, "--offset-reset", "OFFSET_RESET"),
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
}
