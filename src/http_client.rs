//! The HTTP client for IBM Cloud APIs (IAM, Code Engine) and what one exchange's outcome means.
//!
//! Both APIs are called the same way: one JSON request, a bounded wait, a bounded body, and a
//! decision whether a failure is worth another try. Keeping that here means the IAM token
//! manager and the Code Engine client differ only in what they ask, not in how they cope.
//!
//! Trust comes from [`crate::tls::client_config`] — the same ring-only rustls setup the
//! Kafka connections use: a CA file when the operator names one, else the platform store, else
//! the bundled webpki roots (a FROM scratch image has no platform store at all). Plain `http://`
//! is allowed too, because the test suite's fake IBM Cloud listens on loopback without TLS.
//!
//! Nothing here ever formats a request: bodies and headers may carry an API key or a token.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::retry::Backoff;
use crate::tls::{client_config, TlsError, TlsOptions};

/// A pooled HTTP/1.1 client over TLS (or plain TCP for `http://` URLs). Cheap to clone.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long establishing a TCP connection may take before it counts as a connect error.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sent with every request, so IBM support can tell our calls apart.
pub(crate) const USER_AGENT: &str = concat!("kafka-observer/", env!("CARGO_PKG_VERSION"));

/// The longest `Retry-After` we are willing to sleep: a reconcile loop must not stall for an
/// hour because a proxy said so.
pub(crate) const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);

/// Builds the shared client. `ca_file` (PEM) replaces the system roots when given.
pub fn build_client(ca_file: Option<&Path>) -> Result<HttpClient, TlsError> {
    let tls = client_config(&TlsOptions {
        ca_file: ca_file.map(Path::to_path_buf),
        ..TlsOptions::default()
    })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// A complete response: status, `Retry-After` (seconds form only) and the body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why an exchange produced no response. The details come from hyper/rustls/io and never
/// contain request headers or bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// No connection could be made: the request was certainly not sent.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// No complete response within the deadline; the server may have acted on the request.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The connection broke after the request may have been sent.
    #[error("connection failed: {0}")]
    Broken(String),
    /// The response body exceeded the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

/// Sends `req` and reads the whole response, within `timeout` and at most `max_body` bytes.
pub async fn exchange(
    client: &HttpClient,
    req: http::Request<Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
) -> Result<Reply, ExchangeError> {
    let work = async {
        let resp = client.request(req).await.map_err(|e| {
            if e.is_connect() {
                ExchangeError::Connect(error_chain(&e))
            } else {
                ExchangeError::Broken(error_chain(&e))
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = Limited::new(resp.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ExchangeError::TooLarge(max_body)
                } else {
                    ExchangeError::Broken(e.to_string())
                }
            })?
            .to_bytes();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ExchangeError::Timeout(timeout)),
    }
}

/// `e` and its sources joined with ": " (hyper's own Display is only "client error (Connect)").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `Retry-After` in its delay-seconds form; the HTTP-date form is ignored (plain backoff then).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What went wrong with one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A complete non-2xx response.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No response; see [`ExchangeError`].
    Exchange(ExchangeError),
}

impl From<&Reply> for Failure {
    fn from(r: &Reply) -> Self {
        Failure::Status {
            status: r.status,
            retry_after: r.retry_after,
        }
    }
}

/// The pure retry decision: how long to wait before retry number `attempt` (1-based), or
/// `None` to give up.
///
/// Retried: 429 (after `Retry-After` when given, capped), 5xx, connect errors (the request was
/// not sent); timeouts and broken connections only when `idempotent`, because a create that
/// timed out may well have happened — the caller's next reconcile cycle counts it instead of
/// launching a duplicate. Other 4xx never: asking again will not change the answer.
pub(crate) fn retry_delay(
    failure: &Failure,
    attempt: u32,
    backoff: &Backoff,
    unit: f64,
    idempotent: bool,
) -> Option<Duration> {
    let planned = backoff.delay(attempt, unit)?;
    match failure {
        Failure::Status {
            status: 429,
            retry_after,
        } => Some(retry_after.map_or(planned, |d| d.min(RETRY_AFTER_CAP))),
        Failure::Status { status, .. } if *status >= 500 => Some(planned),
        Failure::Status { .. } => None,
        Failure::Exchange(ExchangeError::Connect(_)) => Some(planned),
        Failure::Exchange(ExchangeError::Timeout(_) | ExchangeError::Broken(_)) if idempotent => {
            Some(planned)
        }
        Failure::Exchange(_) => None,
    }
}

/// The status class of a failed attempt, as the metrics label it: `429`, `4xx`, `5xx`,
/// `connect`, `timeout`, `broken`, `too_large`.
pub(crate) fn failure_class(f: &Failure) -> &'static str {
    match f {
        Failure::Status { status: 429, .. } => "429",
        Failure::Status { status, .. } if *status >= 500 => "5xx",
        Failure::Status { .. } => "4xx",
        Failure::Exchange(ExchangeError::Connect(_)) => "connect",
        Failure::Exchange(ExchangeError::Timeout(_)) => "timeout",
        Failure::Exchange(ExchangeError::Broken(_)) => "broken",
        Failure::Exchange(ExchangeError::TooLarge(_)) => "too_large",
    }
}

/// How often a run of failures is logged again after its first line.
const REPEAT_EVERY: Duration = Duration::from_secs(30);

/// Every IBM Cloud call of the process, counted by kind (`iam`, `list`, `create`, `get`) and
/// failures by kind and status class, with the log lines a person needs: the first failure
/// of a run of failures at once, then at most one line per `REPEAT_EVERY` (30 s) with a count.
/// Shared by the IAM token manager and the Code Engine client; the observer exports the counts
/// as metrics, reads [`CallLog::failing_since`] for `/healthz` and logs the recovery.
#[derive(Debug, Default)]
pub struct CallLog {
    state: std::sync::Mutex<CallState>,
}

#[derive(Debug, Default)]
struct CallState {
    requests: std::collections::BTreeMap<&'static str, u64>,
    failures: std::collections::BTreeMap<(&'static str, &'static str), u64>,
    streak: Option<Streak>,
}

#[derive(Debug)]
struct Streak {
    since: std::time::Instant,
    failures: u64,
    logged_at: std::time::Instant,
    last: String,
}

/// A copy of the counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Requests sent, per kind.
    pub requests: Vec<(&'static str, u64)>,
    /// Failed attempts, per (kind, status class).
    pub failures: Vec<((&'static str, &'static str), u64)>,
}

impl CallLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request of `kind` is about to be sent.
    pub fn sent(&self, kind: &'static str) {
        *self.lock().requests.entry(kind).or_default() += 1;
    }

    /// One attempt of `kind` failed with `error` (already free of secrets); `retry_in` says
    /// when it is tried again, if it is.
    /// `class` is [`failure_class`] of the attempt, or `body` for an unreadable 2xx answer.
    pub fn failed(
        &self,
        kind: &'static str,
        class: &'static str,
        error: &dyn std::fmt::Display,
        retry_in: Option<Duration>,
    ) {
        let now = std::time::Instant::now();
        let mut st = self.lock();
        *st.failures.entry((kind, class)).or_default() += 1;
        let next = match retry_in {
            Some(d) => format!("retrying in {} ms", d.as_millis()),
            None => "not retried".to_string(),
        };
        match &mut st.streak {
            None => {
                tracing::warn!(call = kind, class, %error, "IBM Cloud call failed; {next}");
                st.streak = Some(Streak {
                    since: now,
                    failures: 1,
                    logged_at: now,
                    last: error.to_string(),
                });
            }
            Some(s) => {
                s.failures += 1;
                s.last = error.to_string();
                if now.duration_since(s.logged_at) >= REPEAT_EVERY {
                    s.logged_at = now;
                    tracing::warn!(
                        call = kind,
                        class,
                        failures = s.failures,
                        for_s = now.duration_since(s.since).as_secs(),
                        %error,
                        "IBM Cloud calls still failing; {next}"
                    );
                }
            }
        }
    }

    /// One attempt of `kind` succeeded.
    pub fn succeeded(&self, kind: &'static str) {
        // The recovery line is the observer's (one for the launcher as a whole).
        if let Some(s) = self.lock().streak.take() {
            tracing::debug!(
                call = kind,
                failures = s.failures,
                for_s = s.since.elapsed().as_secs(),
                "IBM Cloud call succeeded after failures"
            );
        }
    }

    /// Since when calls have been failing, and the last error, if they are.
    pub fn failing_since(&self) -> Option<(std::time::Instant, String)> {
        self.lock()
            .streak
            .as_ref()
            .map(|s| (s.since, s.last.clone()))
    }

    /// The counts so far.
    pub fn counts(&self) -> CallCounts {
        let st = self.lock();
        CallCounts {
            requests: st.requests.iter().map(|(k, n)| (*k, *n)).collect(),
            failures: st.failures.iter().map(|(k, n)| (*k, *n)).collect(),
        }
    }
}

/// The error an IBM Cloud API put in its body, whatever the shape: Code Engine's
/// `{"errors":[{"code","message"}]}`, IAM's `{"errorCode","errorMessage"}`, or plain
/// `error` / `message` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// The longest piece of a server's error text we repeat; longer text is cut.
const MAX_ERROR_TEXT: usize = 300;

/// Extracts [`ApiError`] from a response body. Message precedence follows go-sdk-core:
/// `errors[0].message`, `error`, `message`, `errorMessage`. Text is cleaned of control
/// characters and cut, since it ends up in logs.
pub(crate) fn api_error(body: &[u8]) -> ApiError {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ApiError::default();
    };
    let text = |v: Option<&serde_json::Value>| -> Option<String> {
        v.and_then(|v| v.as_str())
            .map(clean)
            .filter(|s| !s.is_empty())
    };
    let first = v.get("errors").and_then(|e| e.get(0));
    let message = text(first.and_then(|f| f.get("message")))
        .or_else(|| text(v.get("error")))
        .or_else(|| text(v.get("message")))
        .or_else(|| text(v.get("errorMessage")));
    let code = text(first.and_then(|f| f.get("code")))
        .or_else(|| text(v.get("errorCode")))
        .or_else(|| text(v.get("code")));
    ApiError { code, message }
}

/// `text` without control characters, at most [`MAX_ERROR_TEXT`] characters.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_TEXT)
        .collect();
    if text.chars().count() > MAX_ERROR_TEXT {
        out.push('…');
    }
    out.trim().to_string()
}

/// Percent-encodes everything but RFC 3986 unreserved characters: safe for a path segment, a
/// query value and an `application/x-www-form-urlencoded` value alike.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16, ra: Option<u64>) -> Failure {
        Failure::Status {
            status: s,
            retry_after: ra.map(Duration::from_secs),
        }
    }

    #[test]
    fn retry_table() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            retries: 3,
        };
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
        let timeout = Failure::Exchange(ExchangeError::Timeout(Duration::from_secs(1)));
        let broken = Failure::Exchange(ExchangeError::Broken("reset".into()));
        let connect = Failure::Exchange(ExchangeError::Connect("refused".into()));
        let large = Failure::Exchange(ExchangeError::TooLarge(10));
        #[rustfmt::skip]
        let cases: Vec<(Failure, u32, bool, Option<u64>)> = vec![
            (status(429, None), 1, false, Some(100)),
            (status(429, Some(0)), 1, false, Some(0)),
            (status(429, Some(7)), 2, false, Some(7000)),
            (status(429, Some(3600)), 1, true, Some(30_000)),
            (status(429, Some(0)), 4, true, None),
            (status(500, None), 1, false, Some(100)),
            (status(503, Some(5)), 2, true, Some(200)),
            (status(500, None), 4, true, None),
            (status(400, None), 1, true, None),
            (status(401, None), 1, true, None),
            (status(404, None), 1, true, None),
            (status(409, None), 1, true, None),
            (connect.clone(), 1, false, Some(100)),
            (connect, 3, false, Some(400)),
            (timeout.clone(), 1, true, Some(100)),
            (timeout, 1, false, None),
            (broken.clone(), 2, true, Some(200)),
            (broken, 2, false, None),
            (large, 1, true, None),
        ];
        for (f, attempt, idem, want) in cases {
            assert_eq!(
                ms(retry_delay(&f, attempt, &b, 1.0, idem)),
                want,
                "{f:?} attempt {attempt} idempotent {idem}"
            );
        }
    }

    #[test]
    fn call_log_counts_and_streaks() {
        let log = CallLog::default();
        log.sent("iam");
        let class = failure_class(&status(500, None));
        log.failed("iam", class, &"HTTP 500", Some(Duration::from_millis(250)));
        log.sent("iam");
        let class = failure_class(&status(429, Some(1)));
        log.failed("iam", class, &"HTTP 429", None);
        assert!(log.failing_since().is_some_and(|(_, e)| e == "HTTP 429"));
        log.sent("create");
        log.succeeded("create");
        assert!(log.failing_since().is_none());
        let c = log.counts();
        assert_eq!(c.requests, vec![("create", 1), ("iam", 2)]);
        assert_eq!(c.failures, vec![(("iam", "429"), 1), (("iam", "5xx"), 1)]);
        let classes: Vec<&str> = [
            status(404, None),
            Failure::Exchange(ExchangeError::Connect("x".into())),
            Failure::Exchange(ExchangeError::Timeout(Duration::from_secs(1))),
            Failure::Exchange(ExchangeError::Broken("x".into())),
            Failure::Exchange(ExchangeError::TooLarge(1)),
        ]
        .iter()
        .map(failure_class)
        .collect();
        assert_eq!(
            classes,
            ["4xx", "connect", "timeout", "broken", "too_large"]
        );
    }

    #[test]
    fn api_error_shapes() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                r#"{"errors":[{"code":"resource_not_found","message":"Resource not found."}],"trace":"t","status_code":404}"#,
                Some("resource_not_found"),
                Some("Resource not found."),
            ),
            (
                r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}"#,
                Some("BXNIM0415E"),
                Some("Provided API key could not be found."),
            ),
            (r#"{"error":"invalid_grant"}"#, None, Some("invalid_grant")),
            (
                r#"{"message":"too many","code":"rate"}"#,
                Some("rate"),
                Some("too many"),
            ),
            (
                r#"{"errors":[{"code":"x"}],"message":"fallback"}"#,
                Some("x"),
                Some("fallback"),
            ),
            (r#"{"errors":[],"error":{"nested":1}}"#, None, None),
            ("<html>bad gateway</html>", None, None),
            ("", None, None),
            (
                r#"{"message":"line1\nline2\u0007"}"#,
                None,
                Some("line1 line2"),
            ),
        ];
        for (body, code, message) in cases {
            let e = api_error(body.as_bytes());
            assert_eq!(e.code.as_deref(), *code, "{body}");
            assert_eq!(e.message.as_deref(), *message, "{body}");
        }
        let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(5000));
        let m = api_error(long.as_bytes()).message.unwrap();
        assert!(m.chars().count() <= MAX_ERROR_TEXT + 1, "{}", m.len());
    }

    #[test]
    fn percent_encoding() {
        for (raw, want) in [
            ("abc-DEF_0.9~", "abc-DEF_0.9~"),
            ("a b", "a%20b"),
            ("a/b?c&d=e", "a%2Fb%3Fc%26d%3De"),
            ("urn:ibm:params", "urn%3Aibm%3Aparams"),
            ("é", "%C3%A9"),
            ("+%", "%2B%25"),
        ] {
            assert_eq!(percent_encode(raw), want, "{raw}");
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[tokio::test]
    async fn connect_refused_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = build_client(None).unwrap();
        let req = http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = exchange(&client, req, Duration::from_secs(5), 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, ExchangeError::Connect(_)), "{err:?}");
    }
}
