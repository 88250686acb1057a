//! IBM Cloud IAM access tokens from an API key, cached and refreshed ahead of expiry.
//!
//! Every Code Engine call needs a bearer token, and the observer calls every few seconds, so
//! the token is fetched once and reused. It is refreshed in the background after 80 % of its
//! lifetime while the cached one keeps being served — a slow or briefly failing IAM never
//! stalls the reconcile loop — and only when it is about to expire do callers wait. At most one
//! request to IAM is in flight at a time, however many callers ask. This mirrors go-sdk-core's
//! `IamAuthenticator`, which the seed sample used; the wire format is in
//! `research/code-engine-api.md`.
//!
//! The same token (with its expiry) serves SASL OAUTHBEARER for Event Streams.

mod error;
pub(crate) mod token;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;

use crate::config::secret::Secret;
use crate::http_client::{
    exchange, failure_class, percent_encode, retry_delay, CallLog, ExchangeError, Failure,
    HttpClient,
};
use crate::retry::{jitter_unit, Backoff};

pub(crate) use error::{validate_api_key, IamError};
use token::{freshness, token_times, Freshness, TokenResponse, TokenTimes};

/// IBM Cloud's public token endpoint.
pub(crate) const DEFAULT_IAM_URL: &str = "https://iam.cloud.ibm.com/identity/token";

/// The token endpoint's path, appended to a base URL the way IBM's SDKs do.
const TOKEN_PATH: &str = "/identity/token";

/// The token endpoint for `url`: a base URL (`https://iam.cloud.ibm.com`, path empty or `/`)
/// gets `/identity/token` appended, as IBM's SDKs do; anything else is the endpoint itself.
pub(crate) fn token_endpoint(url: &str) -> String {
    let url = url.trim();
    match url.parse::<http::Uri>() {
        Ok(u) if u.host().is_some() && matches!(u.path(), "" | "/") && u.query().is_none() => {
            format!("{}{TOKEN_PATH}", url.trim_end_matches('/'))
        }
        _ => url.to_string(),
    }
}

/// The API-key grant type.
const GRANT_TYPE: &str = "urn:ibm:params:oauth:grant-type:apikey";
/// `bx:bx`, the client id/secret the IBM SDKs send (as the seed sample does).
const BASIC_BX: &str = "Basic Yng6Yng=";
/// A token response is a few KiB; anything far larger is not one.
const MAX_BODY: usize = 256 * 1024;
/// After a failed background refresh, wait this long before the next one (the cached token
/// is still good, so there is no hurry, and a down IAM should not be hammered).
const REFRESH_RETRY_MS: i64 = 5_000;

/// Hands out IAM access tokens for one API key. Cheap to share behind an `Arc`.
pub struct IamTokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    key: Secret,
    client: HttpClient,
    timeout: Duration,
    backoff: Backoff,
    calls: Arc<CallLog>,
    state: Mutex<State>,
    /// Held by whoever is talking to IAM: one token request at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    token: Option<Cached>,
    refreshing: bool,
    /// No background refresh before this moment (Unix ms).
    next_refresh_ms: i64,
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    times: TokenTimes,
}

impl std::fmt::Debug for IamTokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamTokenManager")
            .field("url", &self.inner.url)
            .field("api_key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl IamTokenManager {
    /// A manager for `api_key` against the token endpoint `iam_url` (a full endpoint such as
    /// [`DEFAULT_IAM_URL`], or IAM's base URL: see [`token_endpoint`]). Checks the key and URL;
    /// sends nothing yet.
    pub fn new(iam_url: String, api_key: Secret, client: HttpClient) -> Result<Self, IamError> {
        let key = validate_api_key(&api_key)?;
        let url = token_endpoint(&iam_url);
        let invalid = |reason: &str| IamError::InvalidUrl {
            url: url.clone(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
            return Err(invalid(
                "expected an http(s) URL such as https://iam.cloud.ibm.com/identity/token",
            ));
        }
        Ok(IamTokenManager {
            inner: Arc::new(Inner {
                url,
                key,
                client,
                timeout: Duration::from_secs(30),
                backoff: Backoff {
                    base: Duration::from_millis(250),
                    max: Duration::from_secs(8),
                    retries: 4,
                },
                calls: Arc::default(),
                state: Mutex::default(),
                fetching: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Replaces the per-request timeout (default 30 s) and retry schedule (default 4 retries,
    /// 250 ms doubling to 8 s). Only before the manager is shared.
    pub fn with_retry(mut self, timeout: Duration, backoff: Backoff) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.timeout = timeout;
            inner.backoff = backoff;
        }
        self
    }

    /// Counts and logs this manager's calls in `calls` (shared with the Code Engine client).
    /// Only before the manager is shared.
    pub fn with_call_log(mut self, calls: Arc<CallLog>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.calls = calls;
        }
        self
    }

    /// The token endpoint in use.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The call log this manager counts in.
    pub fn call_log(&self) -> Arc<CallLog> {
        self.inner.calls.clone()
    }

    /// The API key, for redacting it from text a server sent back.
    pub(crate) fn api_key(&self) -> &Secret {
        &self.inner.key
    }

    /// A valid access token (fetched on first use, then cached).
    pub async fn token(&self) -> Result<Secret, IamError> {
        self.token_with_expiry().await.map(|(t, _)| t)
    }

    /// A valid access token and its expiration (Unix seconds, by our clock) — what SASL
    /// OAUTHBEARER needs to know when to re-authenticate.
    pub async fn token_with_expiry(&self) -> Result<(Secret, i64), IamError> {
        if let Some(c) = self.serve_cached() {
            return Ok(pair(&c));
        }
        // Slow path: no usable token. One caller fetches, the others wait for its result.
        let _guard = self.inner.fetching.lock().await;
        if let Some(c) = self.inner.usable() {
            return Ok(pair(&c));
        }
        let c = self.inner.fetch().await?;
        self.inner.lock().token = Some(c.clone());
        Ok(pair(&c))
    }

    /// Forgets the cached token (after the API answered 401): the next call fetches anew.
    pub fn invalidate(&self) {
        self.inner.lock().token = None;
    }

    /// Forgets the cached token only if it still is `token` — so that many callers rejected
    /// with the same old token cause one new fetch, not one each.
    pub fn invalidate_token(&self, token: &Secret) {
        let mut st = self.inner.lock();
        if st.token.as_ref().is_some_and(|c| &c.token == token) {
            st.token = None;
        }
    }

    /// The cached token if it may be served; starts a background refresh when it is due.
    fn serve_cached(&self) -> Option<Cached> {
        let now = now_ms();
        let mut st = self.inner.lock();
        let c = st.token.clone()?;
        match freshness(now, &c.times) {
            Freshness::Fresh => Some(c),
            Freshness::Refresh => {
                if !st.refreshing && now >= st.next_refresh_ms {
                    st.refreshing = true;
                    let inner = self.inner.clone();
                    tokio::spawn(async move { inner.refresh_in_background().await });
                }
                Some(c)
            }
            Freshness::Expired => None,
        }
    }
}

fn pair(c: &Cached) -> (Secret, i64) {
    (c.token.clone(), c.times.expires_at_ms.div_euclid(1000))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What one attempt produced, short of a token.
enum AttemptError {
    Retriable(Failure, IamError),
    /// Not worth another attempt; with the status class for the metrics.
    Fatal(&'static str, IamError),
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn usable(&self) -> Option<Cached> {
        let st = self.lock();
        let c = st.token.as_ref()?;
        (freshness(now_ms(), &c.times) != Freshness::Expired).then(|| c.clone())
    }

    async fn refresh_in_background(self: Arc<Self>) {
        let result = {
            let _guard = self.fetching.lock().await;
            // A waiting caller may have fetched a new token meanwhile.
            match self.usable() {
                Some(c) if freshness(now_ms(), &c.times) == Freshness::Fresh => Ok(c),
                _ => self.fetch().await,
            }
        };
        let mut st = self.lock();
        st.refreshing = false;
        match result {
            Ok(c) => {
                tracing::debug!(
                    expires_at = c.times.expires_at_ms / 1000,
                    "IAM token refreshed in the background"
                );
                st.token = Some(c);
            }
            Err(e) => {
                st.next_refresh_ms = now_ms() + REFRESH_RETRY_MS;
                tracing::warn!(error = %e, "background IAM token refresh failed; the current token is served until it expires");
            }
        }
    }

    /// Requests a new token, retrying what is worth retrying.
    async fn fetch(&self) -> Result<Cached, IamError> {
        let mut attempt = 0u32;
        loop {
            self.calls.sent("iam");
            let (failure, err) = match self.fetch_once(attempt + 1).await {
                Ok(c) => {
                    self.calls.succeeded("iam");
                    return Ok(c);
                }
                Err(AttemptError::Fatal(class, e)) => {
                    self.calls.failed("iam", class, &e, None);
                    return Err(e);
                }
                Err(AttemptError::Retriable(f, e)) => (f, e),
            };
            attempt += 1;
            let delay = retry_delay(&failure, attempt, &self.backoff, jitter_unit(), true);
            self.calls
                .failed("iam", failure_class(&failure), &err, delay);
            match delay {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(err),
            }
        }
    }

    async fn fetch_once(&self, attempts: u32) -> Result<Cached, AttemptError> {
        let body = format!(
            "grant_type={}&apikey={}&response_type=cloud_iam",
            percent_encode(GRANT_TYPE),
            percent_encode(self.key.expose())
        );
        let req = http::Request::post(&self.url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, BASIC_BX)
            .header(http::header::USER_AGENT, crate::http_client::USER_AGENT)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| {
                AttemptError::Fatal(
                    "request",
                    IamError::InvalidUrl {
                        url: self.url.clone(),
                        reason: e.to_string(),
                    },
                )
            })?;
        let reply = match exchange(&self.client, req, self.timeout, MAX_BODY).await {
            Ok(r) => r,
            Err(e) => {
                let err = IamError::Transport {
                    url: self.url.clone(),
                    detail: e.to_string(),
                    attempts,
                };
                return Err(match e {
                    ExchangeError::TooLarge(_) => AttemptError::Fatal("too_large", err),
                    _ => AttemptError::Retriable(Failure::Exchange(e), err),
                });
            }
        };
        if !reply.is_success() {
            let err = IamError::rejected(reply.status, &reply.body, &self.key, attempts);
            return Err(AttemptError::Retriable(Failure::from(&reply), err));
        }
        let bad = |detail: String| {
            AttemptError::Fatal(
                "body",
                IamError::BadResponse {
                    status: reply.status,
                    detail: crate::redact::redact(&detail, &[&self.key]),
                },
            )
        };
        let parsed: TokenResponse = serde_json::from_slice(&reply.body)
            .map_err(|e| bad(format!("the body is not a token response: {e}")))?;
        if parsed.access_token.is_empty() {
            return Err(bad("access_token is missing or empty".into()));
        }
        if let Some(t) = parsed.token_type.as_deref() {
            if !t.eq_ignore_ascii_case("bearer") {
                return Err(bad(format!("token_type is '{t}', expected 'Bearer'")));
            }
        }
        let times = token_times(now_ms(), parsed.expires_in, parsed.expiration)
            .map_err(|e| bad(e.to_string()))?;
        Ok(Cached {
            token: Secret::new(parsed.access_token),
            times,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "unit-test-api-key-0123";

    #[test]
    fn base_urls_get_the_token_path() {
        for (given, want) in [
            ("https://iam.cloud.ibm.com", DEFAULT_IAM_URL),
            ("https://iam.cloud.ibm.com/", DEFAULT_IAM_URL),
            (" https://iam.cloud.ibm.com ", DEFAULT_IAM_URL),
            (DEFAULT_IAM_URL, DEFAULT_IAM_URL),
            ("http://127.0.0.1:9/", "http://127.0.0.1:9/identity/token"),
            (
                "https://private.iam.cloud.ibm.com/identity/token",
                "https://private.iam.cloud.ibm.com/identity/token",
            ),
            (
                "https://proxy.example/iam/token",
                "https://proxy.example/iam/token",
            ),
            ("https://x/?a=b", "https://x/?a=b"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(token_endpoint(given), want, "{given}");
        }
    }

    #[tokio::test]
    async fn construction_checks_key_and_url() {
        let client = crate::http_client::build_client(None).unwrap();
        let m =
            IamTokenManager::new(DEFAULT_IAM_URL.into(), Secret::new(KEY), client.clone()).unwrap();
        let text = format!("{m:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("iam.cloud.ibm.com"), "{text}");
        for (url, key, want) in [
            ("ftp://x/identity/token", KEY, "not usable"),
            ("not a url", KEY, "not usable"),
            (DEFAULT_IAM_URL, "", "empty"),
            (DEFAULT_IAM_URL, "{\"apikey\":\"abc\"}", "paste error"),
        ] {
            let e = IamTokenManager::new(url.into(), Secret::new(key), client.clone()).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(text.contains(want), "{text}");
            assert!(!text.contains(KEY) && !text.contains("abc"), "{text}");
        }
    }

    #[tokio::test]
    async fn unreachable_iam_is_a_transport_error_without_the_key() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = crate::http_client::build_client(None).unwrap();
        let m = IamTokenManager::new(
            format!("http://127.0.0.1:{port}/identity/token"),
            Secret::new(KEY),
            client,
        )
        .unwrap()
        .with_retry(
            Duration::from_secs(2),
            Backoff {
                base: Duration::from_millis(1),
                max: Duration::from_millis(2),
                retries: 2,
            },
        );
        let e = m.token().await.unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            matches!(e, IamError::Transport { attempts: 3, .. }),
            "{text}"
        );
        assert!(!text.contains(KEY), "{text}");
        assert_eq!(e.status(), None);
    }
}
