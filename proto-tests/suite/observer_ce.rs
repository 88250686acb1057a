//! The observer against the real broker and the fake IBM Cloud (IAM + Code Engine job runs):
//! the scenarios a–f and j, observed from the fake's request log.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_ce::{FakeCloud, Route};
use crate::harness;
use crate::observer_local::{sample_mapping, Mapping};
use crate::observer_proc::ObserverProc;

fn ce_observer(
    cloud: &FakeCloud,
    m: &Mapping,
    dir: &std::path::Path,
    extra: &[&str],
) -> ObserverProc {
    let b = harness::broker();
    let bootstrap = b.plaintext();
    let iam = cloud.iam_url();
    let api = cloud.url();
    let mut args = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--kafkadata",
        m.file.to_str().unwrap(),
    ];
    if !extra.contains(&"--ticker-ms") {
        args.extend(["--ticker-ms", "300"]);
    }
    args.extend_from_slice(extra);
    ObserverProc::start(
        dir,
        &args,
        &[
            ("IAM_API_KEY", FakeCloud::API_KEY),
            ("IAM_URL", &iam),
            ("CE_API_BASE_URL", &api),
            ("CE_PROJECT_ID", FakeCloud::PROJECT_ID),
        ],
    )
}

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

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(harness::unique("obs-ce"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn wakes_lagging_jobs_once_and_heals_level_triggered() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = dir();
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while instances(&cloud.creates(job)) < 2 {
            assert!(Instant::now() < deadline, "{job}: {:?}", cloud.creates(job));
            std::thread::sleep(Duration::from_millis(20));
        }
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
    let d = dir();
    let m = sample_mapping(&d);
    b.produce_spread(&m.ship, &[(0, 1), (1, 1), (2, 1)]);
    let mut obs = ce_observer(&cloud, &m, &d, &["--ticker-ms", "60000"]);
    let runs = cloud.wait_for_creates(&m.jobs[2], 1, Duration::from_secs(30));
    assert_eq!(runs[0]["scale_array_spec"], "0-2");
    assert!(obs.metric("kafka_observer_cycles_total").unwrap_or(0.0) <= 1.0);
    obs.stop();
}

#[test]
fn api_errors_are_retried_into_exactly_one_run_and_401_refreshes_the_token_once() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    let d = dir();
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
    let d = dir();
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
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kafka-observer"));
        cmd.arg("observe").args(*args);
        for v in [
            "IAM_API_KEY",
            "CE_PROJECT_ID",
            "CE_API_BASE_URL",
            "CE_REGION",
            "kafkadata",
            "MESSAGEHUB_KAFKA_BROKERS_SASL",
            "OBSERVER_TICKER",
            "KAFKA_TLS",
        ] {
            cmd.env_remove(v);
        }
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
    let d = dir();
    let m = sample_mapping(&d);
    b.produce(&m.ship, 0, 1);
    let bootstrap = b.plaintext();
    let iam = cloud.iam_url();
    let api = cloud.url();
    let mut obs = ObserverProc::start(
        &d,
        &[
            "--bootstrap",
            &bootstrap,
            "--kafkadata",
            m.file.to_str().unwrap(),
            "--ticker-ms",
            "200",
        ],
        &[
            ("IAM_API_KEY", "WrongKey-abcdefghijklmnop"),
            ("IAM_URL", &iam),
            ("CE_API_BASE_URL", &api),
            ("CE_PROJECT_ID", FakeCloud::PROJECT_ID),
        ],
    );
    obs.wait_log(60, "an IAM error", |t| {
        t.contains("BXNIM0415E").then_some(())
    });
    let errors = format!(
        "kafka_observer_launcher_errors_total{{job=\"{}\"}}",
        m.jobs[2]
    );
    assert!(obs.metric(&errors).unwrap_or(0.0) >= 1.0);
    assert!(!obs.log_text().contains("WrongKey-abcdefghijklmnop"));
    assert_eq!(cloud.count(Route::Create), 0);
    obs.stop();
}
