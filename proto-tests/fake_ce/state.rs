//! What the fake IBM Cloud knows (tokens, job runs, injected failures) and how it answers one
//! request — synchronous and free of I/O, so the server loop around it only moves bytes.
//!
//! The answers follow `research/code-engine-api.md`: IAM's form-encoded API-key grant and its
//! `errorCode`/`errorMessage` errors; Code Engine's job-runs API with bearer tokens, `job_name`
//! filter, `limit`/`start` pagination, 202 on create and `{"errors":[…],"trace","status_code"}`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::codec::{parse_pairs, random_hex, random_id, rfc3339, unix_now, unsecured_jwt};
use super::{FakeCloud, Recorded, Route};

/// Code Engine's limit of job runs per project.
const MAX_RUNS: usize = 100;

/// One request as the server read it.
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// One answer.
pub struct Outgoing {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl Outgoing {
    fn json(status: u16, body: Value) -> Outgoing {
        Outgoing {
            status,
            headers: Vec::new(),
            body,
        }
    }
}

struct Token {
    expires: Instant,
    revoked: bool,
}

pub struct Run {
    pub name: String,
    pub job_name: String,
    id: String,
    created_at: String,
    created: Instant,
    pub status: String,
    scale_array_spec: String,
    /// requested, pending, running, succeeded, failed, unknown
    pub counts: [u32; 6],
}

impl Run {
    pub fn active(&self) -> u32 {
        self.counts[0] + self.counts[1] + self.counts[2]
    }

    fn to_json(&self, origin: &str) -> Value {
        let [requested, pending, running, succeeded, failed, unknown] = self.counts;
        json!({
            "name": self.name,
            "id": self.id,
            "job_name": self.job_name,
            "project_id": FakeCloud::PROJECT_ID,
            "region": "us-south",
            "resource_type": "job_run_v2",
            "href": format!("{origin}/v2/projects/{}/job_runs/{}", FakeCloud::PROJECT_ID, self.name),
            "created_at": self.created_at,
            "status": self.status,
            "scale_array_spec": self.scale_array_spec,
            "status_details": {
                "requested": requested, "pending": pending, "running": running,
                "succeeded": succeeded, "failed": failed, "unknown": unknown,
            },
        })
    }
}

pub struct State {
    pub origin: String,
    pub token_lifetime: u64,
    /// Issue unsecured JWTs (for Kafka's OAUTHBEARER test validator) instead of opaque tokens.
    pub jwt_tokens: bool,
    pub page_size: usize,
    tokens: HashMap<String, Token>,
    pub runs: Vec<Run>,
    run_counter: u64,
    pub recorded: Vec<Recorded>,
    failures: HashMap<Route, VecDeque<(u16, u64)>>,
    delays: HashMap<Route, VecDeque<Duration>>,
    /// Routes whose requests wait (unanswered) while listed.
    pub hung: std::collections::HashSet<Route>,
    /// Runs end by themselves this long after their creation, failed (true) or succeeded.
    pub run_lifetime: Option<(Duration, bool)>,
    /// ListJobRuns answers this many pages, each one completed run padded with this many
    /// bytes, instead of the real runs.
    pub synthetic_pages: Option<(usize, usize)>,
    /// IAM errors echo the request body (form-encoded) and its API key (JSON-escaped).
    pub echo_requests: bool,
}

impl State {
    pub fn new(origin: String) -> State {
        State {
            origin,
            token_lifetime: 3600,
            jwt_tokens: false,
            page_size: 100,
            tokens: HashMap::new(),
            runs: Vec::new(),
            run_counter: 0,
            recorded: Vec::new(),
            failures: HashMap::new(),
            delays: HashMap::new(),
            hung: std::collections::HashSet::new(),
            run_lifetime: None,
            synthetic_pages: None,
            echo_requests: false,
        }
    }

    pub fn queue_failures(&mut self, route: Route, statuses: &[u16]) {
        self.failures
            .entry(route)
            .or_default()
            .extend(statuses.iter().map(|s| (*s, 0)));
    }

    /// One failure with this status and `Retry-After: secs`.
    pub fn queue_retry_after(&mut self, route: Route, status: u16, secs: u64) {
        self.failures
            .entry(route)
            .or_default()
            .push_back((status, secs));
    }

    /// Ends the runs whose lifetime is over (see `run_lifetime`).
    fn age_runs(&mut self) {
        let Some((lifetime, failed)) = self.run_lifetime else {
            return;
        };
        for run in &mut self.runs {
            if run.active() > 0 && run.created.elapsed() >= lifetime {
                let n = run.active();
                run.counts[0] = 0;
                run.counts[1] = 0;
                run.counts[2] = 0;
                if failed {
                    run.counts[4] += n;
                    run.status = "failed".into();
                } else {
                    run.counts[3] += n;
                    run.status = "completed".into();
                }
            }
        }
    }

    pub fn queue_delay(&mut self, route: Route, d: Duration) {
        self.delays.entry(route).or_default().push_back(d);
    }

    pub fn revoke_tokens(&mut self) {
        for t in self.tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Records the request and takes the one-shot delay and failure queued for its route.
    /// Returns the record's index (for its status later), the delay and the injected answer.
    pub fn arrive(&mut self, req: &Incoming) -> (usize, Option<Duration>, Option<Outgoing>) {
        let route = route_of(&req.method, &req.path);
        let body = if req
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            parse_pairs(&String::from_utf8_lossy(&req.body))
                .map(|pairs| {
                    Value::Object(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (k, Value::String(v)))
                            .collect(),
                    )
                })
                .unwrap_or(Value::Null)
        } else if req.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&req.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into()))
        };
        self.recorded.push(Recorded {
            route,
            method: req.method.clone(),
            path: req.path.clone(),
            query: parse_pairs(&req.query).unwrap_or_default(),
            authorization: req.authorization.is_some(),
            auth_scheme: req
                .authorization
                .as_deref()
                .and_then(|a| a.split(' ').next())
                .map(str::to_string),
            body,
            status: 0,
            at: Instant::now(),
        });
        let index = self.recorded.len() - 1;
        let Some(route) = route else {
            return (index, None, None);
        };
        let delay = self.delays.get_mut(&route).and_then(VecDeque::pop_front);
        let injected = self
            .failures
            .get_mut(&route)
            .and_then(VecDeque::pop_front)
            .map(|(status, retry_after)| injected(route, status, retry_after));
        (index, delay, injected)
    }

    /// The real answer to a request (after any delay, when nothing was injected).
    pub fn answer(&mut self, req: &Incoming) -> Outgoing {
        self.age_runs();
        match route_of(&req.method, &req.path) {
            Some(Route::Token) => self.token(req),
            Some(route) => {
                if let Err(e) = self.check_bearer(req) {
                    return e;
                }
                let segments: Vec<&str> = req.path.split('/').collect();
                // ["", "v2", "projects", P, "job_runs", (name)]
                let project = super::codec::url_decode(segments[3]).unwrap_or_default();
                if project != FakeCloud::PROJECT_ID {
                    return ce_error(
                        404,
                        "resource_not_found",
                        &format!("Project '{project}' not found."),
                    );
                }
                match route {
                    Route::List => self.list(req),
                    Route::Create => self.create(req),
                    Route::Get => self.get(segments[5]),
                    Route::Token => unreachable!(),
                }
            }
            None => ce_error(
                404,
                "not_found",
                &format!("No route for {} {}.", req.method, req.path),
            ),
        }
    }

    fn token(&mut self, req: &Incoming) -> Outgoing {
        let mut out = self.token_answer(req);
        if self.echo_requests && out.status >= 400 {
            // A proxy that repeats what it was sent: the form body as is, and its API key
            // decoded and JSON-escaped.
            let raw = String::from_utf8_lossy(&req.body).to_string();
            let key = parse_pairs(&raw)
                .ok()
                .and_then(|p| p.into_iter().find(|(k, _)| k == "apikey"))
                .map(|(_, v)| v)
                .unwrap_or_default();
            out.body["errorMessage"] = Value::String(format!(
                "{} Request was: {raw}",
                out.body["errorMessage"].as_str().unwrap_or("")
            ));
            out.body["context"] = json!({"requestBody": raw, "apikey": key});
        }
        out
    }

    fn token_answer(&mut self, req: &Incoming) -> Outgoing {
        if req.method != "POST" {
            return iam_error(405, "BXNIM0007E", "Method not allowed: use POST.");
        }
        if !req
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        {
            return iam_error(
                400,
                "BXNIM0109E",
                "Content-Type must be application/x-www-form-urlencoded.",
            );
        }
        if req.authorization.as_deref() != Some("Basic Yng6Yng=") {
            return iam_error(400, "BXNIM0400E", "Client credentials bx:bx are missing.");
        }
        let form: HashMap<String, String> = match parse_pairs(&String::from_utf8_lossy(&req.body)) {
            Ok(p) => p.into_iter().collect(),
            Err(e) => return iam_error(400, "BXNIM0109E", &e),
        };
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        if field("grant_type") != "urn:ibm:params:oauth:grant-type:apikey" {
            return iam_error(400, "BXNIM0003E", "Operation not supported (grant_type).");
        }
        match field("apikey") {
            "" => return iam_error(400, "BXNIM0109E", "Property missing or empty (apikey)."),
            k if k != FakeCloud::API_KEY => {
                return iam_error(400, "BXNIM0415E", "Provided API key could not be found.")
            }
            _ => {}
        }
        if field("response_type") != "cloud_iam" {
            return iam_error(400, "BXNIM0109E", "response_type must be cloud_iam.");
        }
        let access = if self.jwt_tokens {
            let now = unix_now();
            unsecured_jwt(&json!({
                "sub": FakeCloud::JWT_SUBJECT,
                "iat": now,
                "exp": now + self.token_lifetime,
                "jti": random_hex(12),
                "scope": "ibm openid",
            }))
        } else {
            format!("fake-at-{}", random_hex(24))
        };
        self.tokens.insert(
            access.clone(),
            Token {
                expires: Instant::now() + Duration::from_secs(self.token_lifetime),
                revoked: false,
            },
        );
        Outgoing::json(
            200,
            json!({
                "access_token": access,
                "refresh_token": format!("fake-rt-{}", random_hex(24)),
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "expiration": unix_now() + self.token_lifetime,
                "ims_user_id": 1234567,
                "scope": "ibm openid",
            }),
        )
    }

    fn check_bearer(&self, req: &Incoming) -> Result<(), Outgoing> {
        let token = req
            .authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        match self.tokens.get(token) {
            Some(t) if !t.revoked && Instant::now() < t.expires => Ok(()),
            Some(t) if t.revoked => Err(unauthorized("The IAM token was revoked.")),
            Some(_) => Err(unauthorized("The IAM token is expired.")),
            None => Err(unauthorized("Missing or unknown IAM token.")),
        }
    }

    fn list(&self, req: &Incoming) -> Outgoing {
        let query: HashMap<String, String> = match parse_pairs(&req.query) {
            Ok(p) => p.into_iter().collect(),
            Err(e) => return ce_error(400, "invalid_query", &e),
        };
        if let Some((pages, pad)) = self.synthetic_pages {
            return self.synthetic_page(&query, pages, pad);
        }
        let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
            None => 50,
            Some(Ok(l)) if (1..=100).contains(&l) => l,
            Some(_) => return ce_error(400, "invalid_limit", "limit must be 1 to 100."),
        };
        let offset = match query.get("start").map(|s| {
            s.strip_prefix("fake-start-")
                .and_then(|n| n.parse::<usize>().ok())
        }) {
            None => 0,
            Some(Some(n)) => n,
            Some(None) => return ce_error(400, "invalid_start", "start token is not valid."),
        };
        let job = query.get("job_name");
        let matching: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| job.is_none_or(|j| &r.job_name == j))
            .collect();
        let size = limit.min(self.page_size.max(1));
        let end = (offset + size).min(matching.len());
        let page: Vec<Value> = matching
            .get(offset..end)
            .unwrap_or(&[])
            .iter()
            .map(|r| r.to_json(&self.origin))
            .collect();
        let mut base = format!(
            "{}/v2/projects/{}/job_runs?limit={limit}",
            self.origin,
            FakeCloud::PROJECT_ID
        );
        if let Some(j) = job {
            base.push_str(&format!(
                "&job_name={}",
                kafka_observer::http_client::percent_encode(j)
            ));
        }
        let mut body = json!({"job_runs": page, "limit": limit, "first": {"href": base}});
        if end < matching.len() {
            let start = format!("fake-start-{end}");
            body["next"] = json!({"href": format!("{base}&start={start}"), "start": start});
        }
        Outgoing::json(200, body)
    }

    /// Page `start` of `pages` synthetic pages: one completed run of the asked job, padded.
    fn synthetic_page(
        &self,
        query: &HashMap<String, String>,
        pages: usize,
        pad: usize,
    ) -> Outgoing {
        let n = query
            .get("start")
            .and_then(|s| s.strip_prefix("fake-start-"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        let job = query.get("job_name").cloned().unwrap_or_default();
        let run = json!({
            "name": format!("{job}-synthetic-{n}"), "job_name": job, "status": "completed",
            "status_details": {"requested": 0, "pending": 0, "running": 0, "succeeded": 1,
                "failed": 0, "unknown": 0},
            "padding": "p".repeat(pad),
        });
        let mut body = json!({"job_runs": [run], "limit": 100});
        if n + 1 < pages {
            body["next"] = json!({"start": format!("fake-start-{}", n + 1)});
        }
        Outgoing::json(200, body)
    }

    fn create(&mut self, req: &Incoming) -> Outgoing {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) else {
            return ce_error(
                400,
                "invalid_json",
                "The request body is not a JSON object.",
            );
        };
        let job_name = match body.get("job_name") {
            Some(Value::String(j)) if !j.is_empty() => j.clone(),
            _ => return ce_error(400, "missing_field", "job_name is required."),
        };
        let name = match body.get("name") {
            None => None,
            Some(Value::String(n)) if valid_run_name(n) => {
                if self.runs.iter().any(|r| &r.name == n) {
                    return ce_error(409, "conflict", &format!("Job run '{n}' already exists."));
                }
                Some(n.clone())
            }
            Some(_) => {
                return ce_error(
                    400,
                    "invalid_field",
                    "name must be at most 53 lowercase letters, digits and '-'.",
                )
            }
        };
        let spec = match body.get("scale_array_spec") {
            None => "0".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return ce_error(400, "invalid_field", "scale_array_spec must be a string."),
        };
        let k = match kafka_observer::launch::code_engine::array_spec_len(&spec) {
            Ok(k) => k,
            Err(e) => return ce_error(400, "invalid_field", &e.to_string()),
        };
        if let Some(env) = body.get("run_env_variables") {
            let ok = env.as_array().is_some_and(|vars| {
                vars.iter().all(|v| {
                    v.get("type").and_then(Value::as_str) == Some("literal")
                        && v.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| !n.is_empty())
                        && v.get("value").is_some_and(Value::is_string)
                })
            });
            if !ok {
                return ce_error(
                    400,
                    "invalid_field",
                    "run_env_variables must be [{type: literal, name, value}].",
                );
            }
        }
        if self.runs.len() >= MAX_RUNS {
            return ce_error(
                400,
                "limit_exceeded",
                "The project already has the maximum of 100 job runs.",
            );
        }
        self.run_counter += 1;
        let run = Run {
            name: name.unwrap_or_else(|| format!("{job_name}-jobrun-{}", self.run_counter)),
            job_name,
            id: random_id(),
            created_at: rfc3339(unix_now()),
            created: Instant::now(),
            status: "running".into(),
            scale_array_spec: spec,
            // requested/pending/running are disjoint phases (the seed sums them), so a new
            // run's k instances are counted once, as running.
            counts: [0, 0, k, 0, 0, 0],
        };
        let out = Outgoing::json(202, run.to_json(&self.origin));
        self.runs.push(run);
        out
    }

    fn get(&self, name: &str) -> Outgoing {
        let name = super::codec::url_decode(name).unwrap_or_default();
        match self.runs.iter().find(|r| r.name == name) {
            Some(r) => Outgoing::json(200, r.to_json(&self.origin)),
            None => ce_error(
                404,
                "resource_not_found",
                &format!("Job run '{name}' not found."),
            ),
        }
    }
}

/// Which fake endpoint a method and path reach.
pub fn route_of(method: &str, path: &str) -> Option<Route> {
    if path == "/identity/token" {
        return Some(Route::Token);
    }
    let segments: Vec<&str> = path.split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["", "v2", "projects", p, "job_runs"]) if !p.is_empty() => Some(Route::List),
        ("POST", ["", "v2", "projects", p, "job_runs"]) if !p.is_empty() => Some(Route::Create),
        ("GET", ["", "v2", "projects", p, "job_runs", n]) if !p.is_empty() && !n.is_empty() => {
            Some(Route::Get)
        }
        _ => None,
    }
}

fn valid_run_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 53
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn injected(route: Route, status: u16, retry_after: u64) -> Outgoing {
    let mut out = match route {
        Route::Token => iam_error(status, "BXNIM9999E", &format!("Injected failure {status}.")),
        _ => ce_error(status, "injected", &format!("Injected failure {status}.")),
    };
    if status == 429 || retry_after > 0 {
        out.headers.push(("retry-after", retry_after.to_string()));
    }
    out
}

fn iam_error(status: u16, code: &str, message: &str) -> Outgoing {
    Outgoing::json(status, json!({"errorCode": code, "errorMessage": message}))
}

fn ce_error(status: u16, code: &str, message: &str) -> Outgoing {
    Outgoing::json(
        status,
        json!({
            "errors": [{"code": code, "message": message}],
            "trace": format!("fake-{}", random_hex(8)),
            "status_code": status,
        }),
    )
}

fn unauthorized(message: &str) -> Outgoing {
    ce_error(401, "unauthorized", message)
}

#[test]
fn routes() {
    for (method, path, want) in [
        ("POST", "/identity/token", Some(Route::Token)),
        ("GET", "/identity/token", Some(Route::Token)),
        ("GET", "/v2/projects/p/job_runs", Some(Route::List)),
        ("POST", "/v2/projects/p/job_runs", Some(Route::Create)),
        ("GET", "/v2/projects/p/job_runs/r-1", Some(Route::Get)),
        ("DELETE", "/v2/projects/p/job_runs/r-1", None),
        ("GET", "/v2/projects//job_runs", None),
        ("GET", "/v2/projects/p/jobs", None),
        ("GET", "/", None),
    ] {
        assert_eq!(route_of(method, path), want, "{method} {path}");
    }
}
