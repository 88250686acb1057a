//! What can go wrong getting an IAM token, and the API-key check done before any request.
//!
//! Every message says what to fix (the key, the URL, the network) but never carries the key or
//! a token: the key never enters an error value at all, and text that comes back from the server
//! is scrubbed of it in case a proxy echoes the request.

use crate::config::secret::Secret;
use crate::http_client::ApiError;

/// A failed token request or an unusable configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// The API key cannot be right; checked before anything is sent.
    #[error("the IBM Cloud API key (IAM_API_KEY) is not usable: {0}")]
    InvalidKey(&'static str),
    /// The token endpoint URL cannot be parsed or has no http(s) scheme.
    #[error("the IAM token URL '{url}' (IAM_URL) is not usable: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// IAM answered with an error status (after retries, when it was retriable).
    #[error("IAM refused the token request with HTTP {status}{code}: {message}{hint}",
        code = code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        hint = if *status == 400 || *status == 401 { " — check the API key (IAM_API_KEY)" } else { "" })]
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
        attempts: u32,
    },
    /// No usable answer from IAM after all attempts.
    #[error("IAM token request to {url} failed after {attempts} attempt(s): {detail}")]
    Transport {
        url: String,
        detail: String,
        attempts: u32,
    },
    /// A 2xx answer without a usable token.
    #[error("IAM answered HTTP {status} without a usable token: {detail}")]
    BadResponse { status: u16, detail: String },
}

impl IamError {
    /// The HTTP status IAM answered with, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            IamError::Rejected { status, .. } | IamError::BadResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Builds [`IamError::Rejected`] from a response body, scrubbing `key` from the text.
    pub(crate) fn rejected(status: u16, body: &[u8], key: &Secret, attempts: u32) -> IamError {
        let ApiError { code, message } = crate::http_client::api_error(body);
        let scrub = |s: String| crate::redact::redact(&s, &[key]);
        IamError::Rejected {
            status,
            code: code.map(scrub),
            message: scrub(
                message.unwrap_or_else(|| format!("no error message ({} bytes)", body.len())),
            ),
            attempts,
        }
    }
}

/// The checks go-sdk-core makes before using an API key, with messages that name the likely
/// mistake. Surrounding whitespace (a trailing newline from a secret file) is removed first.
pub(crate) fn validate_api_key(key: &Secret) -> Result<Secret, IamError> {
    let k = key.expose().trim();
    if k.is_empty() {
        return Err(IamError::InvalidKey(
            "it is empty: set IAM_API_KEY to an IBM Cloud API key",
        ));
    }
    let bad = |c: char| matches!(c, '{' | '}' | '"');
    if k.starts_with(bad) || k.ends_with(bad) {
        return Err(IamError::InvalidKey(
            "it starts or ends with '{', '}' or '\"' — probably a paste error: pass only the \
             value of the \"apikey\" field, without braces or quotes",
        ));
    }
    if k.chars().any(char::is_control) {
        return Err(IamError::InvalidKey("it contains control characters"));
    }
    Ok(Secret::new(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "Xy9-very-secret_api_KEY";

    #[test]
    fn key_validation_table() {
        for (raw, ok) in [
            (KEY, true),
            ("  key-with-newline\n", true),
            ("", false),
            ("   ", false),
            ("{\"apikey\":\"abc\"}", false),
            ("\"abc\"", false),
            ("abc}", false),
            ("{abc", false),
            ("\"abc", false),
            ("ab\u{7}c", false),
        ] {
            let r = validate_api_key(&Secret::new(raw));
            assert_eq!(r.is_ok(), ok, "{raw:?}");
            if let Err(e) = r {
                let text = format!("{e} {e:?}");
                assert!(text.contains("IAM_API_KEY"), "{text}");
                if raw.trim().len() > 2 {
                    assert!(!text.contains(raw.trim()), "{text}");
                }
            }
        }
        assert_eq!(
            validate_api_key(&Secret::new(" k \n")).unwrap().expose(),
            "k"
        );
    }

    #[test]
    fn rejected_message_table() {
        let key = Secret::new(KEY);
        let cases: &[(u16, &str, &str)] = &[
            (
                400,
                r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}"#,
                "IAM refused the token request with HTTP 400 (BXNIM0415E): Provided API key could not be found. — check the API key (IAM_API_KEY)",
            ),
            (
                500,
                r#"{"errors":[{"code":"internal","message":"boom"}]}"#,
                "IAM refused the token request with HTTP 500 (internal): boom",
            ),
            (
                429,
                r#"{"error":"slow down"}"#,
                "IAM refused the token request with HTTP 429: slow down",
            ),
            (
                502,
                "<html>",
                "IAM refused the token request with HTTP 502: no error message (6 bytes)",
            ),
        ];
        for (status, body, want) in cases {
            let e = IamError::rejected(*status, body.as_bytes(), &key, 1);
            assert_eq!(e.to_string(), *want);
            assert_eq!(e.status(), Some(*status));
        }
    }

    #[test]
    fn echoed_key_is_scrubbed() {
        let key = Secret::new(KEY);
        let body = format!(r#"{{"errorMessage":"key {KEY} not found","errorCode":"{KEY}"}}"#);
        let e = IamError::rejected(400, body.as_bytes(), &key, 1);
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(KEY), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        // A proxy that echoes the form body: the key URL-encoded.
        let odd = Secret::new("AK+SECRET/xyz=");
        let body = r#"{"errorMessage":"bad request: grant_type=x&apikey=AK%2BSECRET%2Fxyz%3D"}"#;
        let e = IamError::rejected(400, body.as_bytes(), &odd, 1);
        let text = format!("{e} {e:?}");
        assert!(!text.contains("SECRET"), "{text}");
    }
}
