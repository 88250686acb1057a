//! The Code Engine v2 job-runs API: count a job's active instances, start a run of k more.
//!
//! That is all the observer asks of IBM Cloud, so this is a small hand-written client over
//! hyper rather than a generated SDK. The wire facts are in `research/code-engine-api.md`.
//!
//! Coping with a flaky cloud happens here, once: a 401 means the cached IAM token was revoked
//! or expired early, so it is dropped and the request repeated once with a new one; 429, 5xx
//! and connect errors are retried with jittered exponential backoff (429 after `Retry-After`).
//! A create is not retried after a timeout: it may have happened, and the observer's next
//! cycle counts it instead of starting a duplicate.

mod array_spec;
mod error;
mod model;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::config::secret::Secret;
use crate::http_client::{
    api_error, exchange, percent_encode, retry_delay, Failure, HttpClient, Reply,
};
use crate::iam::IamTokenManager;
use crate::retry::{jitter_unit, Backoff};

pub use array_spec::{array_spec, array_spec_len, MAX_ARRAY_SIZE};
pub use error::CeError;
use model::JobRunList;
pub use model::{active_count, CreateJobRun, JobRun, StatusDetails};

/// Runs per page asked of ListJobRuns (the API's maximum).
const PAGE_LIMIT: u32 = 100;
/// A project holds at most 100 job runs, so more pages than this means a server that loops.
const MAX_PAGES: usize = 1000;
/// 100 job runs of a few KiB each fit easily.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Where the project is and how patient to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeEngineConfig {
    /// e.g. `https://api.us-south.codeengine.cloud.ibm.com/v2` (with the `/v2`).
    pub api_base: String,
    /// The project GUID (`CE_PROJECT_ID`).
    pub project_id: String,
    /// `version=YYYY-MM-DD` sent with every request when set.
    pub api_version: Option<String>,
    /// Deadline of one HTTP exchange.
    pub request_timeout: Duration,
    /// Retries after the first attempt for retriable failures.
    pub retries: u32,
}

/// A Code Engine job-runs client for one project. Clones share the connection pool and token.
#[derive(Clone)]
pub struct CodeEngine {
    inner: Arc<Inner>,
}

struct Inner {
    /// `scheme://authority` of the API.
    origin: String,
    /// `/v2/projects/{id}/job_runs`, already encoded.
    runs_path: String,
    version: Option<String>,
    timeout: Duration,
    backoff: Backoff,
    iam: Arc<IamTokenManager>,
    client: HttpClient,
}

impl std::fmt::Debug for CodeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeEngine")
            .field("origin", &self.inner.origin)
            .field("runs_path", &self.inner.runs_path)
            .finish_non_exhaustive()
    }
}

impl CodeEngine {
    /// Checks the configuration; sends nothing yet.
    pub fn new(
        cfg: CodeEngineConfig,
        iam: Arc<IamTokenManager>,
        client: HttpClient,
    ) -> Result<Self, CeError> {
        let project = cfg.project_id.trim();
        if project.is_empty() {
            return Err(CeError::Config(
                "the project id is empty: set CE_PROJECT_ID (see `ibmcloud ce project current`)"
                    .into(),
            ));
        }
        let base = cfg.api_base.trim().trim_end_matches('/');
        let bad_url = |why: String| {
            CeError::Config(format!(
                "the API URL '{base}' is not usable: {why} (expected e.g. https://api.us-south.codeengine.cloud.ibm.com/v2)"
            ))
        };
        let uri: http::Uri = base.parse().map_err(|e| bad_url(format!("{e}")))?;
        let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (uri.scheme_str(), uri.authority())
        else {
            return Err(bad_url("it needs an http(s) scheme and a host".into()));
        };
        if uri.query().is_some() {
            return Err(bad_url("it must not have a query".into()));
        }
        let version = match cfg.api_version.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) if is_version_date(v) => Some(v.to_string()),
            Some(v) => {
                return Err(CeError::Config(format!(
                    "the API version '{v}' is not a date YYYY-MM-DD"
                )))
            }
        };
        Ok(CodeEngine {
            inner: Arc::new(Inner {
                origin: format!("{scheme}://{authority}"),
                runs_path: format!(
                    "{}/projects/{}/job_runs",
                    uri.path().trim_end_matches('/'),
                    percent_encode(project)
                ),
                version,
                timeout: cfg.request_timeout,
                backoff: Backoff {
                    base: Duration::from_millis(250),
                    max: Duration::from_secs(8),
                    retries: cfg.retries,
                },
                iam,
                client,
            }),
        })
    }

    /// Every run of `job_name`, following pagination to the end.
    pub async fn list_job_runs(&self, job_name: &str) -> Result<Vec<JobRun>, CeError> {
        let mut runs = Vec::new();
        let mut start: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = format!("job_name={}&limit={PAGE_LIMIT}", percent_encode(job_name));
            if let Some(s) = &start {
                query.push_str("&start=");
                query.push_str(&percent_encode(s));
            }
            let path = self.inner.path(&self.inner.runs_path, Some(&query));
            let reply = self.inner.call("GET", &path, None, true).await?;
            let page: JobRunList = decode("GET", &path, &reply)?;
            // The API filters by job; a server that ignored the filter must not make other
            // jobs' instances count for this one.
            runs.extend(page.job_runs.into_iter().filter(|r| r.job_name == job_name));
            match page.next.and_then(|n| n.start).filter(|s| !s.is_empty()) {
                Some(next) if Some(&next) == start.as_ref() => {
                    return Err(CeError::Decode {
                        method: "GET",
                        path,
                        status: reply.status,
                        detail: "the next page token repeats the current one".into(),
                    })
                }
                Some(next) => start = Some(next),
                None => return Ok(runs),
            }
        }
        Err(CeError::Decode {
            method: "GET",
            path: self.inner.runs_path.clone(),
            status: 200,
            detail: format!("more than {MAX_PAGES} pages of job runs"),
        })
    }

    /// Starts a job run; Code Engine answers 202 (201/200 are accepted too).
    pub async fn create_job_run(&self, req: &CreateJobRun) -> Result<JobRun, CeError> {
        if req.job_name.trim().is_empty() {
            return Err(CeError::Config("a job run needs a job name".into()));
        }
        if !req.scale_array_spec.is_empty() {
            array_spec_len(&req.scale_array_spec).map_err(CeError::Config)?;
        }
        let path = self.inner.path(&self.inner.runs_path, None);
        let body = serde_json::to_vec(req)
            .map_err(|e| CeError::Config(format!("cannot encode the job run request: {e}")))?;
        let reply = self.inner.call("POST", &path, Some(body), false).await?;
        decode("POST", &path, &reply)
    }

    /// One job run by name.
    pub async fn get_job_run(&self, name: &str) -> Result<JobRun, CeError> {
        if name.is_empty() {
            return Err(CeError::Config("a job run name is needed".into()));
        }
        let run_path = format!("{}/{}", self.inner.runs_path, percent_encode(name));
        let path = self.inner.path(&run_path, None);
        let reply = self.inner.call("GET", &path, None, true).await?;
        decode("GET", &path, &reply)
    }

    /// Instances of `job_name` requested, pending or running, summed over its runs (the seed's
    /// count).
    pub async fn active_instances(&self, job_name: &str) -> Result<u32, CeError> {
        Ok(active_count(&self.list_job_runs(job_name).await?))
    }
}

impl Inner {
    /// Path and query for a request, with `version` appended when configured.
    fn path(&self, path: &str, query: Option<&str>) -> String {
        let mut q: Vec<String> = query.map(str::to_string).into_iter().collect();
        if let Some(v) = &self.version {
            q.push(format!("version={v}"));
        }
        if q.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", q.join("&"))
        }
    }

    /// One API call with re-authentication and retries; returns a 2xx reply.
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Vec<u8>>,
        idempotent: bool,
    ) -> Result<Reply, CeError> {
        let body = Bytes::from(body.unwrap_or_default());
        let mut attempts = 0u32;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            let token = self.iam.token().await.map_err(|source| CeError::Auth {
                method,
                path: path.to_string(),
                source,
            })?;
            let req = self.request(method, path, &token, body.clone())?;
            let (failure, err) = match exchange(&self.client, req, self.timeout, MAX_BODY).await {
                Ok(reply) if reply.is_success() => return Ok(reply),
                Ok(reply) if reply.status == 401 && !reauthenticated => {
                    tracing::debug!(
                        method,
                        path,
                        "Code Engine refused the IAM token; fetching a new one"
                    );
                    self.iam.invalidate_token(&token);
                    reauthenticated = true;
                    attempts -= 1;
                    continue;
                }
                Ok(reply) => (
                    Failure::from(&reply),
                    api_failure(method, path, &reply, &token),
                ),
                Err(e) => {
                    let err = CeError::Transport {
                        method,
                        path: path.to_string(),
                        detail: e.to_string(),
                        attempts,
                    };
                    (Failure::Exchange(e), err)
                }
            };
            match retry_delay(&failure, attempts, &self.backoff, jitter_unit(), idempotent) {
                Some(delay) => {
                    tracing::debug!(method, path, error = %err, attempt = attempts, delay_ms = delay.as_millis() as u64, "Code Engine request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => return Err(err),
            }
        }
    }

    fn request(
        &self,
        method: &'static str,
        path: &str,
        token: &Secret,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, CeError> {
        let mut auth =
            http::HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                CeError::Auth {
                    method,
                    path: path.to_string(),
                    source: crate::iam::IamError::BadResponse {
                        status: 200,
                        detail: "the access token is not a valid header value".into(),
                    },
                }
            })?;
        auth.set_sensitive(true);
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.origin, path))
            .header(http::header::AUTHORIZATION, auth)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, crate::http_client::USER_AGENT);
        if !body.is_empty() {
            b = b.header(http::header::CONTENT_TYPE, "application/json");
        }
        b.body(Full::new(body))
            .map_err(|e| CeError::Config(format!("cannot build the request {method} {path}: {e}")))
    }
}

/// The error for a non-2xx reply: the API's code and message, with the token scrubbed in case
/// a proxy echoes the request.
fn api_failure(method: &'static str, path: &str, reply: &Reply, token: &Secret) -> CeError {
    let e = api_error(&reply.body);
    let scrub = |s: String| {
        if token.is_empty() {
            s
        } else {
            s.replace(token.expose(), "<redacted>")
        }
    };
    CeError::Api {
        method,
        path: path.to_string(),
        status: reply.status,
        code: e.code.map(scrub),
        message: e
            .message
            .map(scrub)
            .unwrap_or_else(|| format!("no error message ({} bytes of body)", reply.body.len())),
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    method: &'static str,
    path: &str,
    reply: &Reply,
) -> Result<T, CeError> {
    serde_json::from_slice(&reply.body).map_err(|e| CeError::Decode {
        method,
        path: path.to_string(),
        status: reply.status,
        detail: e.to_string(),
    })
}

/// `YYYY-MM-DD` in shape (the API validates the value itself).
fn is_version_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::DEFAULT_IAM_URL;

    fn cfg(base: &str, project: &str, version: Option<&str>) -> CodeEngineConfig {
        CodeEngineConfig {
            api_base: base.into(),
            project_id: project.into(),
            api_version: version.map(Into::into),
            request_timeout: Duration::from_secs(5),
            retries: 2,
        }
    }

    #[tokio::test]
    async fn construction_table() {
        let client = crate::http_client::build_client(None).unwrap();
        let iam = Arc::new(
            IamTokenManager::new(DEFAULT_IAM_URL.into(), Secret::new("k"), client.clone()).unwrap(),
        );
        let base = "https://api.us-south.codeengine.cloud.ibm.com/v2";
        let ok = [
            (
                cfg(base, "p-1", None),
                "https://api.us-south.codeengine.cloud.ibm.com",
                "/v2/projects/p-1/job_runs",
                "/v2/projects/p-1/job_runs",
            ),
            (
                cfg("http://127.0.0.1:9/v2/", " p ", Some("2025-07-10")),
                "http://127.0.0.1:9",
                "/v2/projects/p/job_runs",
                "/v2/projects/p/job_runs?version=2025-07-10",
            ),
            (
                cfg(base, "a/b", Some("")),
                "https://api.us-south.codeengine.cloud.ibm.com",
                "/v2/projects/a%2Fb/job_runs",
                "/v2/projects/a%2Fb/job_runs",
            ),
        ];
        for (c, origin, runs, with_version) in ok {
            let ce = CodeEngine::new(c, iam.clone(), client.clone()).unwrap();
            assert_eq!(ce.inner.origin, origin);
            assert_eq!(ce.inner.runs_path, runs);
            assert_eq!(ce.inner.path(runs, None), with_version);
        }
        for (c, want) in [
            (cfg(base, "", None), "project id is empty"),
            (cfg(base, "  ", None), "project id is empty"),
            (cfg("api.example.com/v2", "p", None), "not usable"),
            (cfg("ftp://x/v2", "p", None), "not usable"),
            (cfg("https://x/v2?a=b", "p", None), "query"),
            (cfg(base, "p", Some("July")), "YYYY-MM-DD"),
        ] {
            let e = CodeEngine::new(c, iam.clone(), client.clone()).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn api_failures_name_the_problem_and_never_the_token() {
        let token = Secret::new("eyJ-secret-token");
        let reply = |status, body: &str| Reply {
            status,
            retry_after: None,
            body: Bytes::from(body.to_string()),
        };
        let cases = [
            (
                reply(403, r#"{"errors":[{"code":"forbidden","message":"No access."}],"status_code":403}"#),
                "Code Engine POST /v2/projects/p/job_runs: HTTP 403 (forbidden): No access. — the API key's identity lacks access",
            ),
            (
                reply(400, r#"{"errors":[{"code":"bad","message":"token eyJ-secret-token is odd"}]}"#),
                "HTTP 400 (bad): token <redacted> is odd",
            ),
            (
                reply(502, "<html>Bad Gateway</html>"),
                "HTTP 502: no error message (24 bytes of body)",
            ),
        ];
        for (r, want) in cases {
            let e = api_failure("POST", "/v2/projects/p/job_runs", &r, &token);
            let text = format!("{e} {e:?}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(!text.contains("eyJ-secret-token"), "{text}");
            assert_eq!(e.status(), Some(r.status));
        }
    }

    #[test]
    fn version_dates() {
        for (v, ok) in [
            ("2025-07-10", true),
            ("2021-03-31", true),
            ("2025-7-10", false),
            ("20250710", false),
            ("2025-07-10x", false),
        ] {
            assert_eq!(is_version_date(v), ok, "{v}");
        }
    }
}
