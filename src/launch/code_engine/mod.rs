//! The Code Engine v2 job-runs API: count a job's active instances, start a run of k more.
//!
//! That is all the observer asks of IBM Cloud, so this is a small hand-written client over
//! hyper rather than a generated SDK. The wire facts are in `research/code-engine-api.md`.
//!
//! Coping with a flaky cloud happens here, once: a 401 means the cached IAM token was revoked
//! or expired early, so it is dropped and the request repeated once with a new one; 429, 5xx
//! and connect errors are retried with jittered exponential backoff (429 after `Retry-After`).
//! A create is not retried after a timeout: it may have happened, and the observer's next
//! cycle counts it instead of starting a duplicate. Every attempt is counted and failures are
//! logged through the [`CallLog`] it shares with the IAM token manager; text the API sends
//! back is redacted of the token and the API key in every encoding (`crate::redact`).
//!
//! Counting streams: each ListJobRuns page is tallied run by run and dropped, so memory stays
//! flat whatever the project holds, and a page cap ends a server that never stops paging.
//! The bearer token goes only to the configured API origin.

mod array_spec;
mod error;
mod model;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::config::secret::Secret;
use crate::http_client::{
    api_error, exchange, failure_class, percent_encode, retry_delay, CallLog, Failure, HttpClient,
    Reply,
};
use crate::iam::IamTokenManager;
use crate::retry::{jitter_unit, Backoff};

pub use array_spec::{array_spec, array_spec_len};
pub use error::CeError;
pub use model::CreateJobRun;
pub(crate) use model::{JobRun, RunTally};

/// Runs per page asked of ListJobRuns (the API's maximum).
const PAGE_LIMIT: u32 = 100;
/// A project holds at most 100 job runs, so more pages than this means a server that loops.
pub(crate) const MAX_PAGES: usize = 1000;
/// 100 job runs of a few KiB each fit easily.
const MAX_BODY: usize = 4 * 1024 * 1024;

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
    calls: Arc<CallLog>,
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
                calls: iam.call_log(),
                iam,
                client,
            }),
        })
    }

    /// The log of every IBM Cloud call (shared with the IAM token manager).
    pub fn call_log(&self) -> Arc<CallLog> {
        self.inner.calls.clone()
    }

    /// The instance counts of `job_name` summed over its runs, following pagination to the end.
    pub async fn count_job_runs(&self, job_name: &str) -> Result<RunTally, CeError> {
        let mut tally = RunTally::default();
        let mut start: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = format!("job_name={}&limit={PAGE_LIMIT}", percent_encode(job_name));
            if let Some(s) = &start {
                query.push_str("&start=");
                query.push_str(&percent_encode(s));
            }
            let path = self.inner.path(&self.inner.runs_path, Some(&query));
            let reply = self.inner.call("list", "GET", &path, None, true).await?;
            let page = model::tally_page(&reply.body, job_name)
                .map_err(|e| self.inner.decode_error("GET", &path, &reply, e))?;
            drop(reply);
            tally = tally.plus(page.tally);
            match page.next {
                Some(next) if Some(&next) == start.as_ref() => {
                    return Err(CeError::Decode {
                        method: "GET",
                        path,
                        status: 200,
                        detail: "the next page token repeats the current one".into(),
                    })
                }
                Some(next) => start = Some(next),
                None => return Ok(tally),
            }
        }
        Err(CeError::Decode {
            method: "GET",
            path: self.inner.runs_path.clone(),
            status: 200,
            detail: format!(
                "more than {MAX_PAGES} pages of job runs (a project holds at most 100): the server keeps paging"
            ),
        })
    }

    /// Starts a job run; Code Engine answers 202 (201/200 are accepted too).
    pub async fn create_job_run(&self, req: &CreateJobRun) -> Result<JobRun, CeError> {
        if req.job_name.trim().is_empty() {
            return Err(CeError::Config("a job run needs a job name".into()));
        }
        if !req.scale_array_spec.is_empty() {
            array_spec_len(&req.scale_array_spec)?;
        }
        let path = self.inner.path(&self.inner.runs_path, None);
        let body = serde_json::to_vec(req)
            .map_err(|e| CeError::Config(format!("cannot encode the job run request: {e}")))?;
        let reply = self
            .inner
            .call("create", "POST", &path, Some(body), false)
            .await?;
        self.inner.decode("POST", &path, &reply)
    }

    /// One job run by name.
    pub async fn get_job_run(&self, name: &str) -> Result<JobRun, CeError> {
        if name.is_empty() {
            return Err(CeError::Config("a job run name is needed".into()));
        }
        let run_path = format!("{}/{}", self.inner.runs_path, percent_encode(name));
        let path = self.inner.path(&run_path, None);
        let reply = self.inner.call("get", "GET", &path, None, true).await?;
        self.inner.decode("GET", &path, &reply)
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

    /// One API call of `kind` (for the call log) with re-authentication and retries; returns
    /// a 2xx reply.
    async fn call(
        &self,
        kind: &'static str,
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
            self.calls.sent(kind);
            let (failure, err) = match exchange(&self.client, req, self.timeout, MAX_BODY).await {
                Ok(reply) if reply.is_success() => {
                    self.calls.succeeded(kind);
                    return Ok(reply);
                }
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
                    api_failure(method, path, &reply, &[&token, self.iam.api_key()]),
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
            let delay = retry_delay(&failure, attempts, &self.backoff, jitter_unit(), idempotent);
            self.calls
                .failed(kind, failure_class(&failure), &err, delay);
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
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
        // The token goes to the API's own origin and paths only.
        if !path.starts_with(&self.runs_path) {
            return Err(CeError::Config(format!(
                "refusing to send the IAM token to {path}: not under {}",
                self.runs_path
            )));
        }
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

/// The error for a non-2xx reply: the API's code and message, with `secrets` (the token, the
/// API key) scrubbed in every encoding in case a proxy echoes the request.
fn api_failure(method: &'static str, path: &str, reply: &Reply, secrets: &[&Secret]) -> CeError {
    let e = api_error(&reply.body);
    let scrub = |s: String| crate::redact::redact(&s, secrets);
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

impl Inner {
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        reply: &Reply,
    ) -> Result<T, CeError> {
        serde_json::from_slice(&reply.body).map_err(|e| self.decode_error(method, path, reply, e))
    }

    /// A 2xx answer that is not what the API documents; the decoder's text may quote the
    /// body, so it is redacted of the API key (the token is not in a response one reads).
    fn decode_error(
        &self,
        method: &'static str,
        path: &str,
        reply: &Reply,
        e: serde_json::Error,
    ) -> CeError {
        let detail = crate::redact::redact(&e.to_string(), &[self.iam.api_key()]);
        CeError::Decode {
            method,
            path: path.to_string(),
            status: reply.status,
            detail,
        }
    }
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
            let e = api_failure("POST", "/v2/projects/p/job_runs", &r, &[&token]);
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
