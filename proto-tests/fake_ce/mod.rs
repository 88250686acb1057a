//! A fake IBM Cloud (IAM token endpoint + Code Engine job-runs API) for the integration tests.
//!
//! IBM Cloud is not reachable from the test machines, so this is the one peer the suite fakes;
//! it follows `research/code-engine-api.md` exactly, including the error shapes, and is strict
//! where the real service is (form fields, bearer tokens, array specs, the 100-run limit), so a
//! client that passes here sends what IBM Cloud expects.
//!
//! ```ignore
//! let cloud = FakeCloud::start();
//! // point the code under test at cloud.iam_url(), cloud.api_base(), FakeCloud::API_KEY,
//! // FakeCloud::PROJECT_ID ...
//! cloud.fail_next(Route::Create, &[429, 500]);
//! let bodies = cloud.wait_for_creates("orders", 1, Duration::from_secs(30));
//! cloud.finish_job("orders"); // its instances are no longer active
//! ```
//!
//! The server is hyper HTTP/1 on 127.0.0.1 (a free port), on its own thread with its own tokio
//! runtime; the control API is blocking, because most tests are plain `#[test]`s that also run
//! child processes. Dropping the `FakeCloud` stops the server.
#![allow(dead_code)] // each test uses a different subset

mod codec;
mod state;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub use codec::unsecured_jwt;
use state::{Incoming, Outgoing, State};

/// The endpoints whose answers a test can delay or replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /identity/token`
    Token,
    /// `GET /v2/projects/{id}/job_runs`
    List,
    /// `POST /v2/projects/{id}/job_runs`
    Create,
    /// `GET /v2/projects/{id}/job_runs/{name}`
    Get,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `None` for unknown routes.
    pub route: Option<Route>,
    pub method: String,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// An `Authorization` header was present.
    pub authorization: bool,
    /// Its scheme (`Bearer`, `Basic`), when present.
    pub auth_scheme: Option<String>,
    /// JSON bodies as parsed; form bodies as an object of strings; `Null` when empty.
    pub body: Value,
    /// The status answered (0 while the answer is pending).
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// The decoded value of query parameter `name`.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The running fake; see the module docs.
pub struct FakeCloud {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeCloud {
    /// The only API key IAM accepts.
    pub const API_KEY: &'static str = "fake-iam-key-7d1c0f5e-kafka-observer";
    /// The `sub` claim of JWT access tokens (see [`FakeCloud::set_jwt_tokens`]): the Kafka
    /// principal is `User:` + this.
    pub const JWT_SUBJECT: &'static str = "iam-ServiceId-fake-kafka-observer";
    /// The only project the job-runs API knows.
    pub const PROJECT_ID: &'static str = "0c1d2e3f-4a5b-6c7d-8e9f-fake00project";

    /// Starts the server on a free loopback port; returns once it accepts connections.
    pub fn start() -> FakeCloud {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::new(format!("http://{addr}"))));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-ibm-cloud".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake cloud runtime");
                rt.block_on(serve(listener, shared, stopped));
            })
            .expect("spawn fake cloud thread");
        FakeCloud {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:P` — like `CE_API_BASE_URL`, without `/v2`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The IAM token endpoint.
    pub fn iam_url(&self) -> String {
        format!("{}/identity/token", self.url())
    }

    /// The Code Engine API base, with `/v2`.
    pub fn api_base(&self) -> String {
        format!("{}/v2", self.url())
    }

    /// Lifetime of tokens issued from now on (default 3600 s).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime = secs;
    }

    /// From now on, issue access tokens that are unsecured JWTs (`{"alg":"none"}`, claims
    /// `sub` = [`FakeCloud::JWT_SUBJECT`], `iat`, `exp` = `iat` + the token lifetime, a random
    /// `jti`, `scope`; empty signature), which Kafka's default OAUTHBEARER validator accepts.
    /// They remain valid bearer tokens for the fake Code Engine API. Default: opaque tokens.
    pub fn set_jwt_tokens(&self, on: bool) {
        self.lock().jwt_tokens = on;
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// Requests to IAM so far (whatever their outcome).
    pub fn token_requests(&self) -> usize {
        self.count(Route::Token)
    }

    /// Requests to `route` so far (whatever their outcome).
    pub fn count(&self, route: Route) -> usize {
        self.lock()
            .recorded
            .iter()
            .filter(|r| r.route == Some(route))
            .count()
    }

    /// Bodies of the CreateJobRun requests for `job` that created a run (answered 202).
    pub fn creates(&self, job: &str) -> Vec<Value> {
        self.lock()
            .recorded
            .iter()
            .filter(|r| {
                r.route == Some(Route::Create)
                    && r.status == 202
                    && r.body.get("job_name").and_then(Value::as_str) == Some(job)
            })
            .map(|r| r.body.clone())
            .collect()
    }

    /// Waits until at least `n` runs of `job` were created; panics after `timeout` with every
    /// recorded request.
    pub fn wait_for_creates(&self, job: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let creates = self.creates(job);
            if creates.len() >= n {
                return creates;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} of {n} job runs of '{job}' created within {timeout:?}; requests:\n{}",
                    creates.len(),
                    self.describe_requests()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `cond(self)` holds; panics after `timeout` with `what` and every request.
    pub fn wait_until(&self, what: &str, timeout: Duration, cond: impl Fn(&FakeCloud) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            if Instant::now() >= deadline {
                panic!(
                    "not within {timeout:?}: {what}; requests:\n{}",
                    self.describe_requests()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every recorded request, one per line (for panic messages).
    pub fn describe_requests(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "  {} {} {:?} auth={:?} -> {} body={}",
                    r.method, r.path, r.query, r.auth_scheme, r.status, r.body
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The next requests to `route` are answered with these statuses, one each, in order,
    /// before any other check (429 carries `Retry-After: 0`).
    pub fn fail_next(&self, route: Route, statuses: &[u16]) {
        self.lock().queue_failures(route, statuses);
    }

    /// The next request to `route` is answered only after `d` (recorded on arrival).
    pub fn delay_next(&self, route: Route, d: Duration) {
        self.lock().queue_delay(route, d);
    }

    /// The next request to `route` is answered with `status` and `Retry-After: secs`.
    pub fn fail_next_retry_after(&self, route: Route, status: u16, secs: u64) {
        self.lock().queue_retry_after(route, status, secs);
    }

    /// While `on`, requests to `route` get no answer (they are answered normally once it is
    /// off, if the client still waits).
    pub fn hang(&self, route: Route, on: bool) {
        let mut st = self.lock();
        if on {
            st.hung.insert(route);
        } else {
            st.hung.remove(&route);
        }
    }

    /// Runs created from now on end by themselves `after` their creation, with status
    /// "failed" (`failed`) or "completed"; `None`: they run until the test ends them.
    pub fn set_run_lifetime(&self, lifetime: Option<(Duration, bool)>) {
        self.lock().run_lifetime = lifetime;
    }

    /// ListJobRuns answers `pages` pages, each with one completed run of the asked job and
    /// `pad` bytes of padding; `None` lists the real runs again.
    pub fn set_synthetic_pages(&self, pages: Option<(usize, usize)>) {
        self.lock().synthetic_pages = pages;
    }

    /// IAM error bodies echo the request (the form body, and its API key JSON-escaped).
    pub fn set_echo_requests(&self, on: bool) {
        self.lock().echo_requests = on;
    }

    /// Requests to Code Engine (not IAM) so far.
    pub fn ce_requests(&self) -> usize {
        self.lock()
            .recorded
            .iter()
            .filter(|r| matches!(r.route, Some(Route::List | Route::Create | Route::Get)))
            .count()
    }

    /// Every token issued so far is refused from now on (401).
    pub fn revoke_tokens(&self) {
        self.lock().revoke_tokens();
    }

    /// Most runs per ListJobRuns page, below the request's `limit` (default 100).
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = n;
    }

    /// Sets a run's instance counts and status; panics if there is no such run.
    pub fn set_instances(
        &self,
        run_name: &str,
        requested: u32,
        pending: u32,
        running: u32,
        status: &str,
    ) {
        let mut st = self.lock();
        let run = st
            .runs
            .iter_mut()
            .find(|r| r.name == run_name)
            .unwrap_or_else(|| panic!("the fake has no job run '{run_name}'"));
        run.counts[0] = requested;
        run.counts[1] = pending;
        run.counts[2] = running;
        run.status = status.to_string();
    }

    /// Every run of `job` completes: status "completed", no active instances.
    pub fn finish_job(&self, job: &str) {
        for run in self.lock().runs.iter_mut().filter(|r| r.job_name == job) {
            run.counts[3] += run.active();
            run.counts[0] = 0;
            run.counts[1] = 0;
            run.counts[2] = 0;
            run.status = "completed".into();
        }
    }

    /// Σ requested + pending + running over the runs of `job` (what the client should compute).
    pub fn active(&self, job: &str) -> u32 {
        self.lock()
            .runs
            .iter()
            .filter(|r| r.job_name == job)
            .map(|r| r.active())
            .sum()
    }

    /// Names of the runs of `job`, in creation order.
    pub fn run_names(&self, job: &str) -> Vec<String> {
        self.lock()
            .runs
            .iter()
            .filter(|r| r.job_name == job)
            .map(|r| r.name.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let incoming = Incoming {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: header(http::header::CONTENT_TYPE),
        authorization: header(http::header::AUTHORIZATION),
        body: body
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default(),
    };
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let (index, delay, injected) = lock().arrive(&incoming);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let route = state::route_of(&incoming.method, &incoming.path);
    while route.is_some_and(|r| lock().hung.contains(&r)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = {
        let mut st = lock();
        let out = injected.unwrap_or_else(|| st.answer(&incoming));
        st.recorded[index].status = out.status;
        out
    };
    respond(out)
}

fn respond(out: Outgoing) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder()
        .status(out.status)
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in out.headers {
        b = b.header(name, value);
    }
    b.body(Full::new(Bytes::from(out.body.to_string())))
        .expect("valid response")
}
