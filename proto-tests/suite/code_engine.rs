//! The IAM token manager and the Code Engine job-runs client against the fake IBM Cloud
//! (`proto-tests/fake_ce`): request shapes, pagination, retries, re-authentication, token
//! refresh, and errors that name the problem without leaking the key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use kafka_observer::config::Secret;
use kafka_observer::http_client::{build_client, exchange, HttpClient};
use kafka_observer::iam::IamTokenManager;
use kafka_observer::launch::code_engine::{
    array_spec, CeError, CodeEngine, CodeEngineConfig, CreateJobRun,
};
use kafka_observer::retry::Backoff;
use serde_json::json;

use crate::fake_ce::{FakeCloud, Route};

fn fast_backoff(retries: u32) -> Backoff {
    Backoff {
        base: Duration::from_millis(20),
        max: Duration::from_millis(100),
        retries,
    }
}

fn iam(cloud: &FakeCloud, key: &str, http: &HttpClient) -> Arc<IamTokenManager> {
    Arc::new(
        IamTokenManager::new(cloud.iam_url(), Secret::new(key), http.clone())
            .unwrap()
            .with_retry(Duration::from_secs(5), fast_backoff(4)),
    )
}

fn ce_with(cloud: &FakeCloud, key: &str, project: &str, timeout: Duration) -> CodeEngine {
    let http = build_client(None).unwrap();
    CodeEngine::new(
        CodeEngineConfig {
            api_base: cloud.api_base(),
            project_id: project.into(),
            api_version: None,
            request_timeout: timeout,
            retries: 4,
        },
        iam(cloud, key, &http),
        http,
    )
    .unwrap()
}

fn ce(cloud: &FakeCloud) -> CodeEngine {
    ce_with(
        cloud,
        FakeCloud::API_KEY,
        FakeCloud::PROJECT_ID,
        Duration::from_secs(5),
    )
}

fn create(job: &str, k: u32) -> CreateJobRun {
    CreateJobRun {
        job_name: job.into(),
        scale_array_spec: array_spec(k),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_sends_exactly_the_seed_body_and_gets_202() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    let run = ce.create_job_run(&create("orders", 2)).await.unwrap();
    assert_eq!(run.job_name, "orders");
    assert!(run.name.starts_with("orders-jobrun-"), "{run:?}");
    assert_eq!(run.status.as_deref(), Some("running"));
    assert_eq!(run.status_details.running, 2);
    assert_eq!(run.scale_array_spec.as_deref(), Some("0-1"));

    assert_eq!(
        cloud.creates("orders"),
        vec![json!({"job_name": "orders", "scale_array_spec": "0-1"})]
    );
    let reqs = cloud.requests();
    assert_eq!(reqs.len(), 2, "{}", cloud.describe_requests());
    // the IAM exchange exactly as go-sdk-core does it
    assert_eq!(reqs[0].route, Some(Route::Token));
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].auth_scheme.as_deref(), Some("Basic"));
    assert_eq!(
        reqs[0].body,
        json!({
            "grant_type": "urn:ibm:params:oauth:grant-type:apikey",
            "apikey": FakeCloud::API_KEY,
            "response_type": "cloud_iam",
        })
    );
    assert_eq!(reqs[1].route, Some(Route::Create));
    assert_eq!(
        reqs[1].path,
        format!("/v2/projects/{}/job_runs", FakeCloud::PROJECT_ID)
    );
    assert_eq!(reqs[1].auth_scheme.as_deref(), Some("Bearer"));
    assert_eq!(reqs[1].status, 202);

    let got = ce.get_job_run(&run.name).await.unwrap();
    assert_eq!(got.name, run.name);
    assert_eq!(got.id, run.id);
    assert_eq!(cloud.token_requests(), 1, "the token is cached");

    let e = ce.get_job_run("no-such-run").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert!(e.to_string().contains("resource_not_found"), "{e}");
}

#[tokio::test]
async fn env_variables_and_version_are_sent() {
    let cloud = FakeCloud::start();
    let http = build_client(None).unwrap();
    let ce = CodeEngine::new(
        CodeEngineConfig {
            api_base: cloud.api_base(),
            project_id: FakeCloud::PROJECT_ID.into(),
            api_version: Some("2025-07-10".into()),
            request_timeout: Duration::from_secs(5),
            retries: 1,
        },
        iam(&cloud, FakeCloud::API_KEY, &http),
        http,
    )
    .unwrap();
    let req = CreateJobRun {
        job_name: "pay ments".into(),
        scale_array_spec: "0-0".into(),
        run_env_variables: vec![("GROUP".into(), "g 1".into())],
    };
    ce.create_job_run(&req).await.unwrap();
    assert_eq!(
        cloud.creates("pay ments"),
        vec![json!({"job_name": "pay ments", "scale_array_spec": "0-0",
            "run_env_variables": [{"type": "literal", "name": "GROUP", "value": "g 1"}]})]
    );
    ce.count_job_runs("pay ments").await.unwrap();
    let list = cloud
        .requests()
        .into_iter()
        .find(|r| r.route == Some(Route::List))
        .unwrap();
    assert_eq!(list.query_value("job_name"), Some("pay ments"));
    assert_eq!(list.query_value("version"), Some("2025-07-10"));
    assert!(cloud
        .requests()
        .iter()
        .filter(|r| r.route != Some(Route::Token))
        .all(|r| r.query_value("version") == Some("2025-07-10")));
}

#[tokio::test]
async fn list_follows_pagination_to_the_end() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    for _ in 0..5 {
        ce.create_job_run(&create("a", 1)).await.unwrap();
    }
    for _ in 0..2 {
        ce.create_job_run(&create("b", 1)).await.unwrap();
    }
    cloud.set_page_size(2);
    let tally = ce.count_job_runs("a").await.unwrap();
    assert_eq!((tally.runs, tally.active), (5, 5));
    assert_eq!(cloud.run_names("a").len(), 5);

    let lists: Vec<_> = cloud
        .requests()
        .into_iter()
        .filter(|r| r.route == Some(Route::List))
        .collect();
    assert_eq!(lists.len(), 3, "{}", cloud.describe_requests());
    for (i, r) in lists.iter().enumerate() {
        assert_eq!(r.query_value("job_name"), Some("a"));
        assert_eq!(r.query_value("limit"), Some("100"));
        assert_eq!(r.query_value("start").is_some(), i > 0, "{r:?}");
        assert_eq!(r.status, 200);
    }
    assert_eq!(ce.count_job_runs("b").await.unwrap().runs, 2);
    assert_eq!(ce.count_job_runs("none").await.unwrap().runs, 0);
}

async fn active(ce: &CodeEngine, job: &str) -> Result<u32, CeError> {
    ce.count_job_runs(job).await.map(|t| t.active)
}

#[tokio::test]
async fn active_instances_sum_requested_pending_running() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    assert_eq!(active(&ce, "orders").await.unwrap(), 0);
    let first = ce.create_job_run(&create("orders", 2)).await.unwrap();
    ce.create_job_run(&create("orders", 3)).await.unwrap();
    ce.create_job_run(&create("other", 4)).await.unwrap();
    assert_eq!(active(&ce, "orders").await.unwrap(), 5);

    cloud.set_instances(&first.name, 1, 1, 0, "pending");
    assert_eq!(cloud.active("orders"), 5);
    assert_eq!(active(&ce, "orders").await.unwrap(), 5);
    cloud.set_instances(&first.name, 0, 0, 1, "running");
    assert_eq!(active(&ce, "orders").await.unwrap(), 4);
    assert_eq!(cloud.active("orders"), 4);

    cloud.finish_job("orders");
    assert_eq!(active(&ce, "orders").await.unwrap(), 0);
    assert_eq!(active(&ce, "other").await.unwrap(), 4);
}

#[tokio::test]
async fn throttled_and_failing_create_is_retried_and_creates_one_run() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    cloud.fail_next(Route::Create, &[429, 500]);
    let run = ce.create_job_run(&create("orders", 2)).await.unwrap();
    assert_eq!(run.status_details.running, 2);
    let statuses: Vec<u16> = cloud
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Create))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 500, 202]);
    assert_eq!(cloud.creates("orders").len(), 1);
    assert_eq!(cloud.run_names("orders").len(), 1);
}

/// A 429 with `Retry-After: 2` is asked again no sooner than 2 s later (the back-off alone
/// would wait about 250 ms), and every attempt is in the call log by class.
#[tokio::test]
async fn retry_after_is_honoured_and_counted() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    cloud.fail_next_retry_after(Route::Create, 429, 2);
    ce.create_job_run(&create("orders", 1)).await.unwrap();
    let at: Vec<Instant> = cloud
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Create))
        .map(|r| r.at)
        .collect();
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_millis(1900),
        "{:?}",
        at[1] - at[0]
    );
    let counts = ce.call_log().counts();
    assert!(counts.requests.contains(&("create", 2)), "{counts:?}");
    assert!(
        counts.failures.contains(&(("create", "429"), 1)),
        "{counts:?}"
    );
}

#[tokio::test]
async fn revoked_token_is_replaced_once_then_the_request_succeeds() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    ce.count_job_runs("orders").await.unwrap();
    assert_eq!(cloud.token_requests(), 1);
    cloud.revoke_tokens();
    ce.create_job_run(&create("orders", 1)).await.unwrap();
    assert_eq!(cloud.token_requests(), 2, "{}", cloud.describe_requests());
    let creates: Vec<u16> = cloud
        .requests()
        .iter()
        .filter(|r| r.route == Some(Route::Create))
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, vec![401, 202]);
    assert_eq!(cloud.run_names("orders").len(), 1);
}

#[tokio::test]
async fn token_refused_twice_is_an_error_not_a_loop() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    cloud.fail_next(Route::List, &[401, 401, 401]);
    let e = ce.count_job_runs("orders").await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(cloud.count(Route::List), 2, "{}", cloud.describe_requests());
    assert_eq!(cloud.token_requests(), 2);
}

#[tokio::test]
async fn token_is_refreshed_in_the_background_while_the_old_one_serves() {
    let cloud = FakeCloud::start();
    cloud.set_token_lifetime(5);
    let http = build_client(None).unwrap();
    let iam = iam(&cloud, FakeCloud::API_KEY, &http);
    let issued = Instant::now();
    let (first, expiration) = iam.token_with_expiry().await.unwrap();
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now_unix + 3..=now_unix + 6).contains(&expiration),
        "{expiration} vs {now_unix}"
    );
    assert_eq!(cloud.token_requests(), 1);
    // the refresh request will take a while to answer: meanwhile the old token must serve
    cloud.delay_next(Route::Token, Duration::from_millis(400));

    let deadline = issued + Duration::from_secs(15);
    let mut served_old_during_refresh = false;
    let second = loop {
        assert!(
            Instant::now() < deadline,
            "no refreshed token within 15 s; requests:\n{}",
            cloud.describe_requests()
        );
        let refreshing = cloud.token_requests() >= 2;
        let asked = Instant::now();
        let t = iam.token().await.unwrap();
        let waited = asked.elapsed();
        if t != first {
            break t;
        }
        // a caller that had to wait for the fetch would take the whole delay
        if refreshing && waited < Duration::from_millis(150) {
            served_old_during_refresh = true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let refreshed_after = issued.elapsed();
    assert_ne!(second, first);
    assert_eq!(cloud.token_requests(), 2, "exactly one refresh");
    assert!(
        refreshed_after >= Duration::from_secs(2),
        "refreshed too early: {refreshed_after:?}"
    );
    assert!(
        served_old_during_refresh,
        "the old token was not served while the refresh ran"
    );
    // the new token is cached again
    assert_eq!(iam.token().await.unwrap(), second);
    assert_eq!(cloud.token_requests(), 2);
}

#[tokio::test]
async fn iam_failures_are_retried() {
    let cloud = FakeCloud::start();
    cloud.fail_next(Route::Token, &[500, 429, 503]);
    let ce = ce(&cloud);
    assert_eq!(active(&ce, "orders").await.unwrap(), 0);
    assert_eq!(cloud.token_requests(), 4);
}

#[tokio::test]
async fn unknown_api_key_is_a_clear_error_without_the_key() {
    let cloud = FakeCloud::start();
    let key = "wrong-key-7b3e9a";
    let ce = ce_with(&cloud, key, FakeCloud::PROJECT_ID, Duration::from_secs(5));
    let e = ce.count_job_runs("orders").await.unwrap_err();
    let text = format!("{e} | {e:?}");
    assert!(matches!(e, CeError::Auth { .. }), "{text}");
    assert_eq!(e.status(), Some(400));
    assert!(text.contains("BXNIM0415E"), "{text}");
    assert!(
        text.contains("Provided API key could not be found"),
        "{text}"
    );
    assert!(text.contains("IAM_API_KEY"), "{text}");
    assert!(!text.contains(key), "{text}");
    assert_eq!(cloud.token_requests(), 1, "a refused key is not retried");
    assert_eq!(cloud.count(Route::List), 0);
}

#[tokio::test]
async fn non_retriable_errors_fail_at_once() {
    let cloud = FakeCloud::start();
    let ce = ce(&cloud);
    cloud.fail_next(Route::Create, &[400]);
    let e = ce.create_job_run(&create("orders", 1)).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(e.to_string().contains("POST /v2/projects/"), "{e}");
    assert!(e.to_string().contains("Injected failure 400"), "{e}");
    assert_eq!(cloud.count(Route::Create), 1);
    assert!(cloud.run_names("orders").is_empty());

    // unknown project: 404 with the API's code, once
    let other = ce_with(
        &cloud,
        FakeCloud::API_KEY,
        "no-such-project",
        Duration::from_secs(5),
    );
    let e = other.count_job_runs("orders").await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
    assert!(e.to_string().contains("resource_not_found"), "{e}");
    assert!(e.to_string().contains("CE_PROJECT_ID"), "{e}");
    assert_eq!(cloud.count(Route::List), 1);

    // invalid specs never leave the client
    let e = ce
        .create_job_run(&CreateJobRun {
            job_name: "orders".into(),
            scale_array_spec: "3-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("descending"), "{e}");
    assert_eq!(cloud.count(Route::Create), 1);
}

#[tokio::test]
async fn timeouts_retry_reads_but_not_creates() {
    let cloud = FakeCloud::start();
    let ce = ce_with(
        &cloud,
        FakeCloud::API_KEY,
        FakeCloud::PROJECT_ID,
        Duration::from_millis(300),
    );
    ce.count_job_runs("warm-up").await.unwrap();

    cloud.delay_next(Route::List, Duration::from_secs(2));
    assert_eq!(ce.count_job_runs("orders").await.unwrap().runs, 0);
    assert_eq!(cloud.count(Route::List), 3, "{}", cloud.describe_requests());

    cloud.delay_next(Route::Create, Duration::from_secs(1));
    let e = ce.create_job_run(&create("orders", 1)).await.unwrap_err();
    assert!(matches!(e, CeError::Transport { .. }), "{e}");
    assert!(e.to_string().contains("no response within"), "{e}");
    assert_eq!(
        cloud.count(Route::Create),
        1,
        "{}",
        cloud.describe_requests()
    );
    // the server did act on it: the next cycle's count sees it instead of a duplicate
    cloud.wait_until("the slow create completes", Duration::from_secs(10), |c| {
        c.run_names("orders").len() == 1
    });
    assert_eq!(active(&ce, "orders").await.unwrap(), 1);
}

/// The fake itself is as strict as the real IAM: a client that passes here sends what IBM
/// Cloud expects.
#[tokio::test]
async fn fake_iam_and_routes_are_strict() {
    let cloud = FakeCloud::start();
    let http = build_client(None).unwrap();
    let good_form = format!(
        "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey={}&response_type=cloud_iam",
        FakeCloud::API_KEY
    );
    /// method, path, content type, authorization, body → status, text in the answer
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        String,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/identity/token",
            Some("application/x-www-form-urlencoded"),
            Some("Basic Yng6Yng="),
            good_form.clone(),
            200,
            "access_token",
        ),
        (
            "GET",
            "/identity/token",
            None,
            Some("Basic Yng6Yng="),
            String::new(),
            405,
            "BXNIM",
        ),
        (
            "POST",
            "/identity/token",
            Some("application/json"),
            Some("Basic Yng6Yng="),
            good_form.clone(),
            400,
            "Content-Type",
        ),
        (
            "POST",
            "/identity/token",
            Some("application/x-www-form-urlencoded"),
            None,
            good_form.clone(),
            400,
            "bx:bx",
        ),
        (
            "POST",
            "/identity/token",
            Some("application/x-www-form-urlencoded"),
            Some("Basic Yng6Yng="),
            good_form.replace("cloud_iam", "x"),
            400,
            "response_type",
        ),
        (
            "POST",
            "/identity/token",
            Some("application/x-www-form-urlencoded"),
            Some("Basic Yng6Yng="),
            good_form.replace("apikey&", "x&"),
            400,
            "grant_type",
        ),
        (
            "POST",
            "/identity/token",
            Some("application/x-www-form-urlencoded"),
            Some("Basic Yng6Yng="),
            good_form.replace(FakeCloud::API_KEY, "nope"),
            400,
            "BXNIM0415E",
        ),
        (
            "GET",
            "/v2/projects/p/job_runs",
            None,
            None,
            String::new(),
            401,
            "unauthorized",
        ),
        (
            "GET",
            "/v2/projects/p/job_runs",
            None,
            Some("Bearer made-up"),
            String::new(),
            401,
            "\"status_code\":401",
        ),
        (
            "GET",
            "/v2/nothing",
            None,
            None,
            String::new(),
            404,
            "\"errors\"",
        ),
    ];
    for (method, path, ctype, auth, body, status, needle) in cases {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", cloud.url()));
        if let Some(c) = ctype {
            b = b.header("content-type", c);
        }
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let req = b.body(Full::new(Bytes::from(body))).unwrap();
        let reply = exchange(&http, req, Duration::from_secs(5), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&reply.body).to_string();
        assert_eq!(reply.status, status, "{method} {path}: {text}");
        assert!(text.contains(needle), "{method} {path}: {text}");
    }
}

#[tokio::test]
async fn fake_create_validation() {
    let cloud = FakeCloud::start();
    let http = build_client(None).unwrap();
    let iam = iam(&cloud, FakeCloud::API_KEY, &http);
    let token = iam.token().await.unwrap();
    let url = format!(
        "{}/projects/{}/job_runs",
        cloud.api_base(),
        FakeCloud::PROJECT_ID
    );
    let post = |body: serde_json::Value| {
        http::Request::post(&url)
            .header("authorization", format!("Bearer {}", token.expose()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let cases = vec![
        (json!({"job_name": "j", "scale_array_spec": "0-2"}), 202),
        (json!({"job_name": "j"}), 202),
        (json!({"job_name": "j", "name": "my-run-1"}), 202),
        (json!({"job_name": "j", "name": "my-run-1"}), 409),
        (json!({"job_name": "j", "name": "Upper"}), 400),
        (json!({"job_name": "j", "name": "x".repeat(54)}), 400),
        (json!({"scale_array_spec": "0-2"}), 400),
        (json!({"job_name": "j", "scale_array_spec": "2-0"}), 400),
        (json!({"job_name": "j", "scale_array_spec": "0-1000"}), 400),
        (
            json!({"job_name": "j", "run_env_variables": [{"name": "A", "value": "1"}]}),
            400,
        ),
        (json!(["not", "an", "object"]), 400),
    ];
    for (body, status) in cases {
        let reply = exchange(&http, post(body.clone()), Duration::from_secs(5), 1 << 20)
            .await
            .unwrap();
        assert_eq!(
            reply.status,
            status,
            "{body}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    assert_eq!(cloud.run_names("j").len(), 3);
    assert_eq!(cloud.active("j"), 3 + 1 + 1);
    // the project limit of 100 runs
    for _ in 3..100 {
        let reply = exchange(
            &http,
            post(json!({"job_name": "j"})),
            Duration::from_secs(5),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(reply.status, 202);
    }
    let reply = exchange(
        &http,
        post(json!({"job_name": "j"})),
        Duration::from_secs(5),
        1 << 20,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("limit_exceeded"));
}
