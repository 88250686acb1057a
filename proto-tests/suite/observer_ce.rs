//! The observer against the real broker and the fake IBM Cloud (IAM + Code Engine job runs):
//! the scenarios a–f and j, observed from the fake's request log.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_ce::{FakeCloud, Route};
use crate::harness;
use crate::support::observer::{ce_observer, ce_observer_env, sample_mapping};
use crate::support::{eventually_every, temp_dir};

/// Instances started by `runs` (CreateJobRun bodies): the sizes of their arrays "0-N".
fn instances(runs: &[serde_json::Value]) -> u32 {
    runs.iter()
        .map(|r| {
            r["scale_array_spec"]
                .as_str()
                .and_then(|s| s.strip_prefix("0-"))
                .and_then(|n| n.parse::<u32>().ok())
                .map_or(0, |n| n + 1)
        })
        .sum()
}

#[test]
fn wakes_lagging_jobs_once_and_heals_level_triggered() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    // Timed cycles only (the long poll has its own test). Two records on two partitions are not
    // one event: a cycle may fall between them and wake one instance, the next cycle the second
    // — level-triggered, so the test counts instances, not runs.
    let mut obs = ce_observer(
        &cloud,
        &m,
        &d,
        &["--ticker-ms", "1000", "--long-poll", "false"],
    );
    obs.wait_cycles(2);
    assert_eq!(cloud.count(Route::Create), 0);

    // (a) partitions 0 and 1 of payments: two instances for each payments job (one run "0-1",
    // or two "0-0" when a cycle fell between the records), none for shipping.
    b.produce_spread(&m.pay, &[(0, 3), (1, 2)]);
    for job in &m.jobs[..2] {
        eventually_every(Duration::from_millis(20), 60, "two instances", || {
            let runs = cloud.creates(job);
            if instances(&runs) >= 2 {
                Ok(())
            } else {
                Err(format!("{job}: {runs:?}"))
            }
        });
        for run in cloud.creates(job) {
            assert_eq!(run["job_name"], json!(job));
        }
    }

    // (b) while those instances are active, nothing more is created. (7 cycles of 1 s also
    // outlast the launcher's 5 s launch grace of the last run, which (e) relies on.)
    obs.wait_cycles(7);
    let (pay_runs, foo_runs) = (cloud.creates(&m.jobs[0]), cloud.creates(&m.jobs[1]));
    assert_eq!(instances(&pay_runs), 2, "{pay_runs:?}");
    assert_eq!(instances(&foo_runs), 2, "{foo_runs:?}");
    assert!(cloud.creates(&m.jobs[2]).is_empty());

    // (e) the payments runs end with lag left: woken again, one run for both partitions (no
    // record arrives in between now).
    cloud.finish_job(&m.jobs[0]);
    let again = cloud.wait_for_creates(&m.jobs[0], pay_runs.len() + 1, Duration::from_secs(60));
    assert_eq!(again[pay_runs.len()]["scale_array_spec"], "0-1");
    assert_eq!(
        cloud.creates(&m.jobs[1]).len(),
        foo_runs.len(),
        "foobar was still active"
    );

    // (c) the groups commit to the end; with 0 active, nothing is created.
    for g in &m.groups[..2] {
        b.commit_offset(g, &m.pay, 0, 3);
        b.commit_offset(g, &m.pay, 1, 2);
    }
    let lag = format!(
        "kafka_consumergroup_group_sum_lag{{group=\"{}\"}}",
        m.groups[1]
    );
    obs.wait_metric(60, &lag, "lag never 0", |v| v == 0.0);
    cloud.finish_job(&m.jobs[0]);
    cloud.finish_job(&m.jobs[1]);
    obs.wait_cycles(5);
    assert_eq!(cloud.creates(&m.jobs[0]).len(), pay_runs.len() + 1);
    assert_eq!(cloud.creates(&m.jobs[1]).len(), foo_runs.len());
    // Every API call carried a bearer token; the API key went only to IAM.
    for r in cloud.requests() {
        if r.route != Some(Route::Token) {
            assert_eq!(r.auth_scheme.as_deref(), Some("Bearer"), "{r:?}");
        }
    }
    let log = obs.log_text();
    assert!(
        !log.contains(FakeCloud::API_KEY),
        "the API key is in the log"
    );
    assert_eq!(obs.stop(), Some(0));
}

#[test]
fn backlog_at_start_is_dispatched_in_the_first_cycle() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    b.produce_spread(&m.ship, &[(0, 1), (1, 1), (2, 1)]);
    let mut obs = ce_observer(&cloud, &m, &d, &["--ticker-ms", "60000"]);
    let runs = cloud.wait_for_creates(&m.jobs[2], 1, Duration::from_secs(30));
    assert_eq!(runs[0]["scale_array_spec"], "0-2");
    assert!(obs.metric("kafka_observer_cycles_total").unwrap_or(0.0) <= 1.0);
    obs.stop();
}

#[test]
fn a_jobs_idle_timeout_goes_into_its_job_runs_environment() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = temp_dir("obs-ce-idle");
    let (short, plain) = (harness::unique("idle-short"), harness::unique("idle-plain"));
    let jobs = [harness::unique("short-job"), harness::unique("plain-job")];
    for t in [&short, &plain] {
        b.create_topic(t, 1);
    }
    let file = d.join("kafkadata");
    std::fs::write(
        &file,
        format!(
            "{short}:\n  jobs:\n    - {{name: {}, consumer_group: {}, idle_timeout: 3s}}\n\
             {plain}:\n  jobs:\n    - {{name: {}, consumer_group: {}}}\n",
            jobs[0],
            harness::unique("g"),
            jobs[1],
            harness::unique("g")
        ),
    )
    .unwrap();
    let mut obs = ce_observer(&cloud, &file, &d, &[]);
    b.produce(&short, 0, 1);
    b.produce(&plain, 0, 1);
    let with = cloud.wait_for_creates(&jobs[0], 1, Duration::from_secs(60));
    assert_eq!(
        with[0],
        json!({"job_name": jobs[0], "scale_array_spec": "0-0", "run_env_variables": [
            {"type": "literal", "name": "IDLE_TIMEOUT", "value": "3"}
        ]})
    );
    // A job without the key: exactly the sample's body, the job's own environment applies.
    let without = cloud.wait_for_creates(&jobs[1], 1, Duration::from_secs(60));
    assert_eq!(
        without[0],
        json!({"job_name": jobs[1], "scale_array_spec": "0-0"})
    );
    assert_eq!(obs.stop(), Some(0), "{}", obs.log_text());
}

#[test]
fn api_errors_are_retried_into_exactly_one_run_and_401_refreshes_the_token_once() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    let mut obs = ce_observer(&cloud, &m, &d, &[]);
    obs.wait_cycles(2);
    // (f) 429, then 500, then 202: one run.
    cloud.fail_next(Route::Create, &[429, 500]);
    b.produce(&m.ship, 0, 1);
    cloud.wait_for_creates(&m.jobs[2], 1, Duration::from_secs(60));
    obs.wait_cycles(3);
    assert_eq!(
        cloud.creates(&m.jobs[2]).len(),
        1,
        "{}",
        cloud.describe_requests()
    );
    let tokens = cloud.token_requests();
    // 401: exactly one new token, then success.
    cloud.revoke_tokens();
    cloud.finish_job(&m.jobs[2]);
    cloud.wait_for_creates(&m.jobs[2], 2, Duration::from_secs(60));
    assert_eq!(
        cloud.token_requests(),
        tokens + 1,
        "{}",
        cloud.describe_requests()
    );
    obs.stop();
}

#[test]
fn bad_configuration_exits_2_naming_the_setting_and_never_printing_the_key() {
    let d = temp_dir("obs-ce");
    let good_map = d.join("kafkadata");
    std::fs::write(&good_map, "payments:\n  partitions: 4\n  jobs:\n    - name: payments-consumer\n      consumer_group: g\n").unwrap();
    let gm = good_map.to_str().unwrap();
    let key = "SuperSecretKey-1234567890";
    let base: &[(&str, &str)] = &[
        ("IAM_API_KEY", key),
        ("CE_PROJECT_ID", "p"),
        ("CE_API_BASE_URL", "http://127.0.0.1:9"),
        ("MESSAGEHUB_KAFKA_BROKERS_SASL", "127.0.0.1:9"),
        ("KAFKA_TLS", "false"),
    ];
    type Case<'a> = (
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
        &'a str,
    );
    let cases: &[Case] = &[
        (&["--kafkadata", gm], &[], &["IAM_API_KEY"], "--iam-api-key"),
        (
            &["--kafkadata", gm],
            &[],
            &["CE_PROJECT_ID"],
            "--project-id",
        ),
        (
            &["--kafkadata", gm],
            &[],
            &["CE_API_BASE_URL"],
            "--api-base",
        ),
        (
            &["--kafkadata", gm],
            &[("OBSERVER_TICKER", "fast")],
            &[],
            "OBSERVER_TICKER",
        ),
        (
            &["--kafkadata", gm, "--ticker-ms", "0"],
            &[],
            &[],
            "--ticker-ms",
        ),
        (
            &["--kafkadata", gm, "--launcher", "k8s"],
            &[],
            &[],
            "--launcher",
        ),
        (
            &["--kafkadata", gm],
            &[("IAM_API_KEY", "{SuperSecretKey-1234567890}")],
            &[],
            "IAM_API_KEY",
        ),
        (
            &["--kafkadata", gm],
            &[("CE_API_BASE_URL", "api.example.com")],
            &[],
            "CE_API_BASE_URL",
        ),
        (&[], &[], &[], "kafkadata"),
        (
            &[],
            &[("kafkadata", "payments: [unclosed")],
            &[],
            "env kafkadata",
        ),
        (
            &[],
            &[("kafkadata", "payments:\n  jobs: []\n")],
            &[],
            "payments",
        ),
        (
            &[],
            &[(
                "kafkadata",
                "payments:\n  jobs:\n    - name: Bad_Name\n      consumer_group: g\n",
            )],
            &[],
            "Bad_Name",
        ),
        (
            &[],
            &[(
                "kafkadata",
                "payments:\n  partitions: -1\n  jobs:\n    - name: ok\n      consumer_group: g\n",
            )],
            &[],
            "partitions",
        ),
        (
            &[],
            &[(
                "kafkadata",
                "payments:\n  jobs:\n    - name: ok\n      consumer_group: ''\n",
            )],
            &[],
            "consumer_group",
        ),
        (
            &["--kafkadata", gm],
            &[("MESSAGEHUB_KAFKA_BROKERS_SASL", "nonsense")],
            &[],
            "MESSAGEHUB_KAFKA_BROKERS_SASL",
        ),
        // The region becomes the host the token goes to: a region name, nothing else.
        (
            &["--kafkadata", gm],
            &[("CE_REGION", "evil.example/x?")],
            &["CE_API_BASE_URL"],
            "CE_REGION",
        ),
        (
            &["--kafkadata", gm],
            &[("CE_REGION", "us-south.attacker.example")],
            &["CE_API_BASE_URL"],
            "CE_REGION",
        ),
        (
            &["--kafkadata", gm, "--launcher-refresh", "soon"],
            &[],
            &[],
            "--launcher-refresh",
        ),
        (
            &["--kafkadata", gm],
            &[("LAUNCHER_REFRESH", "-1")],
            &[],
            "LAUNCHER_REFRESH",
        ),
    ];
    for (args, env, unset, culprit) in cases {
        let mut all_env: Vec<(&str, &str)> = base
            .iter()
            .filter(|(k, _)| !unset.contains(k))
            .copied()
            .collect();
        for (k, v) in env.iter() {
            all_env.retain(|(kk, _)| kk != k);
            all_env.push((k, v));
        }
        let mut cmd = crate::support::command(&["observe"]);
        cmd.args(*args);
        for (k, v) in &all_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {text}");
        assert!(
            text.contains(culprit),
            "{args:?} {env:?}: does not name {culprit}: {text}"
        );
        assert!(
            !text.contains("SuperSecretKey"),
            "{args:?}: the key leaked: {text}"
        );
    }
}

#[test]
fn a_wrong_api_key_is_reported_without_the_key() {
    let cloud = FakeCloud::start();
    let b = harness::broker();
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    b.produce(&m.ship, 0, 1);
    let mut obs = ce_observer_env(
        &cloud,
        &m,
        &d,
        &["--ticker-ms", "200"],
        &[("IAM_API_KEY", "WrongKey-abcdefghijklmnop")],
    );
    obs.wait_log(60, "an IAM error", |t| {
        t.contains("BXNIM0415E").then_some(())
    });
    let errors = format!(
        "kafka_observer_launcher_errors_total{{job=\"{}\"}}",
        m.jobs[2]
    );
    // The attempt's line comes first; the order's failure is counted when the next cycle
    // takes its report in.
    obs.wait_metric(60, &errors, "the failed order counted", |v| v >= 1.0);
    assert!(!obs.log_text().contains("WrongKey-abcdefghijklmnop"));
    assert_eq!(cloud.count(Route::Create), 0);
    obs.stop();
}

/// Lagging partitions of the sample mapping's jobs when every partition of both topics holds
/// records nobody committed: payments 4 (two jobs), shipping 3.
const LAGGING: [u32; 3] = [4, 4, 3];

/// Code Engine requests (ListJobRuns, CreateJobRun, GetJobRun) that arrived after `t`.
fn ce_requests_since(cloud: &FakeCloud, t: Instant) -> usize {
    cloud
        .requests()
        .iter()
        .filter(|r| r.at > t && r.route.is_some_and(|r| r != Route::Token))
        .count()
}

/// The crash loop, scaled down ten times (refresh and first back-off 1 s instead of
/// 10 s, 18 s instead of 3 minutes): consumer runs that end at once without committing. Each
/// job is woken at least twice (level-triggered healing goes on) and at most 6 times (the
/// back-off doubles: 0, 2, 5, 10 refresh periods); Code Engine sees at most one request per
/// refresh period per lagging job; then, caught up, an idle system sends nothing at all. The
/// IAM URL is given in IBM's base form.
#[test]
fn crash_looping_consumers_back_off_and_an_idle_system_costs_nothing() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.set_run_lifetime(Some((Duration::from_millis(300), true)));
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    let base = cloud.url();
    let mut obs = ce_observer_env(
        &cloud,
        &m,
        &d,
        &[
            "--ticker-ms",
            "100",
            "--launcher-refresh",
            "1",
            "--stuck-backoff",
            "1",
        ],
        &[("IAM_URL", &base)],
    );
    obs.wait_cycles(2);
    b.produce_spread(&m.pay, &[(0, 1), (1, 1), (2, 1), (3, 1)]);
    b.produce_spread(&m.ship, &[(0, 1), (1, 1), (2, 1)]);
    for job in &m.jobs {
        cloud.wait_for_creates(job, 1, Duration::from_secs(60));
    }
    let woken = Instant::now();
    let window = Duration::from_secs(18);
    while woken.elapsed() < window {
        obs.wait_cycles(5);
        for (job, lagging) in m.jobs.iter().zip(LAGGING) {
            assert!(
                cloud.active(job) <= lagging,
                "{job}: more instances than lagging partitions"
            );
        }
    }
    let elapsed = woken.elapsed();
    for job in &m.jobs {
        let runs = cloud.creates(job).len();
        assert!(
            (2..=6).contains(&runs),
            "{job}: {runs} runs in {elapsed:?}:\n{}",
            cloud.describe_requests()
        );
    }
    // At most one request per refresh period per lagging job (three jobs), plus the first
    // count-then-create of each.
    let requests = ce_requests_since(&cloud, woken);
    let budget = 3 * (elapsed.as_secs() as usize + 1);
    assert!(
        requests <= budget,
        "{requests} Code Engine requests in {elapsed:?} (budget {budget}):\n{}",
        cloud.describe_requests()
    );
    assert!(obs
        .log_text()
        .contains("consumers ended without committing"));
    let backoff = format!(
        "kafka_observer_job_backoff_seconds{{job=\"{}\"}}",
        m.jobs[2]
    );
    assert!(obs.metric(&backoff).unwrap_or(0.0) >= 1.0);

    // Caught up: from then on, not one Code Engine request.
    b.commit_offsets(
        &m.groups[0],
        &[
            (&m.pay, 0, 1),
            (&m.pay, 1, 1),
            (&m.pay, 2, 1),
            (&m.pay, 3, 1),
        ],
    );
    b.commit_offsets(
        &m.groups[1],
        &[
            (&m.pay, 0, 1),
            (&m.pay, 1, 1),
            (&m.pay, 2, 1),
            (&m.pay, 3, 1),
        ],
    );
    b.commit_offsets(
        &m.groups[2],
        &[(&m.ship, 0, 1), (&m.ship, 1, 1), (&m.ship, 2, 1)],
    );
    for g in &m.groups {
        let lag = format!("kafka_consumergroup_group_sum_lag{{group=\"{g}\"}}");
        obs.wait_metric(60, &lag, "lag never 0", |v| v == 0.0);
    }
    obs.wait_cycles(3);
    let idle = Instant::now();
    let before = cloud.ce_requests();
    // 5 refresh periods and 50 cycles.
    while idle.elapsed() < Duration::from_secs(5) {
        obs.wait_cycles(10);
    }
    assert_eq!(
        cloud.ce_requests(),
        before,
        "requests while idle:\n{}",
        cloud.describe_requests()
    );
    assert_eq!(obs.stop(), Some(0));
}

/// IAM stops answering: the Kafka side goes on (cycles at the ticker rate, lag metrics follow
/// new records), `/healthz` says the launcher is in trouble, and once IAM answers again the
/// missing run is created and one recovery line is logged.
#[test]
fn an_iam_that_hangs_never_stops_the_kafka_side() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.hang(Route::Token, true);
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    let mut obs = ce_observer(
        &cloud,
        &m,
        &d,
        &["--ticker-ms", "200", "--launcher-refresh", "1"],
    );
    b.produce(&m.ship, 0, 2);
    let lag = format!(
        "kafka_consumergroup_group_sum_lag{{group=\"{}\"}}",
        m.groups[2]
    );
    obs.wait_metric(60, &lag, "lag seen", |v| v == 2.0);
    cloud.wait_until("IAM asked", Duration::from_secs(30), |c| {
        c.token_requests() > 0
    });
    // Cycles go on while the token request hangs, and lag follows new records.
    obs.wait_cycles(10);
    b.produce(&m.ship, 1, 3);
    obs.wait_metric(60, &lag, "lag follows records during the outage", |v| {
        v == 5.0
    });
    // One look per cycle.
    eventually_every(Duration::ZERO, 60, "/healthz to name the launcher", || {
        let (status, body) = obs.get("/healthz");
        if status == 503 && body.contains("launcher") {
            return Ok(());
        }
        obs.wait_cycles(1);
        Err(format!("/healthz {status} {body}"))
    });
    assert!(cloud.creates(&m.jobs[2]).is_empty());
    cloud.hang(Route::Token, false);
    // The order out since the first record asks for one instance; the second partition's
    // follows at once (level-triggered), so count instances.
    cloud.wait_until("two instances", Duration::from_secs(60), |c| {
        instances(&c.creates(&m.jobs[2])) == 2
    });
    obs.wait_log(60, "the recovery line", |t| {
        t.contains("launcher recovered").then_some(())
    });
    eventually_every(Duration::ZERO, 60, "/healthz 200", || {
        let health = obs.get("/healthz");
        if health.0 == 200 {
            return Ok(());
        }
        obs.wait_cycles(1);
        Err(format!("{health:?}"))
    });
    obs.wait_cycles(3);
    assert_eq!(obs.log_text().matches("launcher recovered").count(), 1);
    assert!(cloud.active(&m.jobs[2]) <= 2);
    obs.stop();
}

/// An API key with `+ / = \` that IAM rejects and echoes back, form-encoded and JSON-escaped,
/// at LOG_LEVEL=trace: in no form in the log.
#[test]
fn an_echoed_api_key_never_reaches_the_log_in_any_encoding() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.set_echo_requests(true);
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    b.produce(&m.ship, 0, 1);
    let key = "AK+SECRET/fo\\o=bar";
    let mut obs = ce_observer_env(
        &cloud,
        &m,
        &d,
        &["--ticker-ms", "200", "--launcher-refresh", "1"],
        &[("IAM_API_KEY", key), ("LOG_LEVEL", "trace")],
    );
    obs.wait_log(60, "the IAM error", |t| {
        t.contains("BXNIM0415E").then_some(())
    });
    // The fake really did echo it (as IAM answered).
    let echoed = cloud
        .requests()
        .iter()
        .any(|r| r.route == Some(Route::Token) && r.status == 400);
    assert!(echoed);
    obs.wait_cycles(5);
    let log = obs.log_text();
    let url: String = key
        .bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect();
    let json = serde_json::to_string(key).unwrap();
    for form in [
        key.to_string(),
        url.clone(),
        url.to_lowercase(),
        json.trim_matches('"').to_string(),
        "SECRET".to_string(),
    ] {
        assert!(!log.contains(&form), "{form} in the log:\n{log}");
    }
    obs.stop();
}

/// ListJobRuns answering 300 pages of 1.6 MB: counted page by page, the observer's peak RSS
/// stays under 32 MB; a server that never stops paging ends with a clear error.
#[test]
fn hundreds_of_large_pages_keep_memory_flat_and_a_page_cap_ends_them() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.set_synthetic_pages(Some((300, 1_600_000)));
    let d = temp_dir("obs-ce");
    let m = sample_mapping(&d);
    b.produce(&m.ship, 0, 1);
    let mut obs = ce_observer(
        &cloud,
        &m,
        &d,
        &["--ticker-ms", "200", "--launcher-refresh", "1"],
    );
    // The count of all 300 pages comes before the create.
    cloud.wait_for_creates(&m.jobs[2], 1, Duration::from_secs(180));
    let lists = cloud.count(Route::List);
    assert!(lists >= 300, "{lists} pages");
    let rss = obs.peak_rss_kb();
    assert!(rss > 0 && rss < 32 * 1024, "peak RSS {rss} KiB");
    cloud.set_synthetic_pages(Some((usize::MAX, 0)));
    obs.wait_log(180, "the page cap", |t| {
        t.contains("more than 1000 pages of job runs").then_some(())
    });
    obs.stop();
}
