//! Code Engine client errors: each names the request (method and path), the HTTP status and
//! the API's own error code and message — what an operator needs to act — and never a token.

use super::array_spec::ArraySpecError;
use crate::iam::IamError;

/// A failed Code Engine call or an unusable client configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeError {
    /// The configuration cannot work (empty project id, malformed URL, bad request data).
    #[error("Code Engine client configuration: {0}")]
    Config(String),
    /// A job run request whose array spec Code Engine would refuse.
    #[error("Code Engine client configuration: {0}")]
    ArraySpec(#[from] ArraySpecError),
    /// No IAM token could be obtained.
    #[error("Code Engine {method} {path}: no IAM token: {source}")]
    Auth {
        method: &'static str,
        path: String,
        source: IamError,
    },
    /// The API answered with an error status (after retries, when it was retriable).
    #[error("Code Engine {method} {path}: HTTP {status}{code}: {message}{hint}",
        code = code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
        hint = hint(*status))]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// No usable answer (connect error, timeout, broken connection) after all attempts.
    #[error("Code Engine {method} {path}: {detail} (after {attempts} attempt(s))")]
    Transport {
        method: &'static str,
        path: String,
        detail: String,
        attempts: u32,
    },
    /// A 2xx answer whose body is not what the API documents.
    #[error("Code Engine {method} {path}: HTTP {status} with an unreadable body: {detail}")]
    Decode {
        method: &'static str,
        path: String,
        status: u16,
        detail: String,
    },
}

fn hint(status: u16) -> &'static str {
    match status {
        401 => " — the IAM token was refused twice: check that the API key belongs to the project's account",
        403 => " — the API key's identity lacks access to the Code Engine project (needs Writer on it)",
        404 => " — check the project id (CE_PROJECT_ID), the region of the API URL and the job name",
        _ => "",
    }
}

impl CeError {
    /// The HTTP status of the failing answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            CeError::Api { status, .. } | CeError::Decode { status, .. } => Some(*status),
            CeError::Auth { source, .. } => source.status(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let path = "/v2/projects/p/job_runs?job_name=orders&limit=100".to_string();
        let cases = [
            (
                CeError::Api {
                    method: "GET",
                    path: path.clone(),
                    status: 404,
                    code: Some("resource_not_found".into()),
                    message: "Resource not found.".into(),
                },
                "Code Engine GET /v2/projects/p/job_runs?job_name=orders&limit=100: HTTP 404 (resource_not_found): Resource not found. — check the project id",
                Some(404),
            ),
            (
                CeError::Api {
                    method: "POST",
                    path: "/v2/projects/p/job_runs".into(),
                    status: 400,
                    code: None,
                    message: "bad".into(),
                },
                "Code Engine POST /v2/projects/p/job_runs: HTTP 400: bad",
                Some(400),
            ),
            (
                CeError::Transport {
                    method: "GET",
                    path: path.clone(),
                    detail: "no response within 1s".into(),
                    attempts: 4,
                },
                "Code Engine GET /v2/projects/p/job_runs?job_name=orders&limit=100: no response within 1s (after 4 attempt(s))",
                None,
            ),
            (
                CeError::Auth {
                    method: "GET",
                    path,
                    source: IamError::Rejected {
                        status: 400,
                        code: Some("BXNIM0415E".into()),
                        message: "Provided API key could not be found.".into(),
                        attempts: 1,
                    },
                },
                "no IAM token: IAM refused the token request with HTTP 400 (BXNIM0415E)",
                Some(400),
            ),
        ];
        for (e, want, status) in cases {
            assert!(
                e.to_string().starts_with(want) || e.to_string().contains(want),
                "{e}"
            );
            assert_eq!(e.status(), status);
        }
    }
}
