//! A string that must never reach a log line.
//!
//! Passwords, API keys and tokens travel through config structs that get `{:?}`-printed in
//! debug logs and error reports. Wrapping them makes redaction the default: leaking one takes
//! an explicit, greppable call to [`Secret::expose`].

use std::fmt;

/// A secret value (password, API key, token). `Debug` and `Display` print `<redacted>`.
///
/// Deliberately not `Serialize`: writing a secret out should need `expose()` too.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that really needs it (an auth header, a SASL
    /// message). Never pass the result to a formatter that might end up in a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is the empty string (a common sign of an unset variable).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "hunter2-api-key";

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::from(VALUE.to_string());
        for text in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{s:#?}"),
            format!("{s:>40}"),
            format!("{:?}", Some(&s)),
            format!("{:?}", vec![s.clone()]),
        ] {
            assert!(!text.contains(VALUE), "leaked in {text:?}");
            assert!(text.contains("<redacted>"), "{text:?}");
        }
        assert_eq!(s.expose(), VALUE);
    }

    #[test]
    fn redacted_inside_derived_debug() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Creds {
            user: String,
            password: Secret,
        }
        let c = Creds {
            user: "token".into(),
            password: Secret::new(VALUE),
        };
        let text = format!("{c:?}");
        assert!(!text.contains(VALUE));
        assert!(text.contains("token"));
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        #[derive(serde::Deserialize)]
        struct Cfg {
            key: Secret,
        }
        let cfg: Cfg = serde_json::from_str(r#"{"key":"hunter2-api-key"}"#).unwrap();
        assert_eq!(cfg.key.expose(), VALUE);
        let cfg: Cfg = serde_norway::from_str("key: hunter2-api-key").unwrap();
        assert_eq!(cfg.key.expose(), VALUE);
        assert!(!Secret::default().expose().contains('x'));
        assert!(Secret::default().is_empty());
    }
}
