//! The observer's settings: defaults, flag over variable, and what each refusal names.

use super::*;
use crate::config::env::VarTable;

fn ok(vars: &[(&str, &str)], f: &ObserveFlags) -> ObserveSettings {
    resolve(&VarTable::new(vars), f).unwrap()
}

fn err(vars: &[(&str, &str)], f: &ObserveFlags) -> String {
    resolve(&VarTable::new(vars), f).unwrap_err().to_string()
}

#[test]
fn defaults() {
    let s = ok(&[], &ObserveFlags::default());
    assert_eq!(
        s,
        ObserveSettings {
            ticker: Duration::from_millis(500),
            max_instances: None,
            read_committed: true,
            offset_reset: OffsetReset::Earliest,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            metadata_refresh: Duration::from_secs(30),
            stuck_cycles: 120,
            stuck_backoff: Duration::from_secs(10),
            long_poll: true,
            group_plan: true,
            idle_ticker: Duration::from_millis(10_000),
            launcher: LauncherKind::CodeEngine,
            launcher_refresh: Duration::from_secs(10),
        }
    );
    // The local launcher counts its children exactly: no refresh interval by default.
    let local = ok(&[("OBSERVER_LAUNCHER", "LOCAL")], &ObserveFlags::default());
    assert_eq!(
        (local.launcher, local.launcher_refresh),
        (LauncherKind::Local, Duration::ZERO)
    );
}

#[test]
fn flags_beat_variables() {
    let vars = [
        ("OBSERVER_TICKER", "250"),
        ("MAX_INSTANCES", "4"),
        ("METRICS_ADDR", "0.0.0.0:9000"),
        ("OBSERVER_LONG_POLL", "off"),
        ("LAUNCHER_REFRESH", "7"),
    ];
    let s = ok(&vars, &ObserveFlags::default());
    assert_eq!(
        (
            s.ticker,
            s.max_instances,
            s.metrics_addr.port(),
            s.long_poll
        ),
        (Duration::from_millis(250), Some(4), 9000, false)
    );
    assert_eq!(s.launcher_refresh, Duration::from_secs(7));
    let f = ObserveFlags {
        ticker_ms: Some("100".into()),
        max_instances: Some("2".into()),
        long_poll: Some("true".into()),
        ..ObserveFlags::default()
    };
    let s = ok(&vars, &f);
    assert_eq!(
        (s.ticker, s.max_instances, s.long_poll),
        (Duration::from_millis(100), Some(2), true)
    );
}

/// Variables, and the exact message.
type Refusal = (&'static [(&'static str, &'static str)], &'static str);

#[test]
fn refusals_name_the_variable() {
    let cases: &[Refusal] = &[
        (
            &[("OBSERVER_TICKER", "5")],
            "The setting OBSERVER_TICKER is invalid: expected a whole number from 10 to 3600000, got '5'.",
        ),
        (
            &[("MAX_INSTANCES", "-3")],
            "The setting MAX_INSTANCES is invalid: expected a whole number from 1 to 1000, got '-3'.",
        ),
        (
            &[("METRICS_ADDR", "localhost")],
            "The setting METRICS_ADDR is invalid: expected IP:PORT such as 127.0.0.1:9464, got 'localhost'.",
        ),
        (
            &[("OBSERVER_LAUNCHER", "k8s")],
            "The setting OBSERVER_LAUNCHER is invalid: expected one of codeengine, local, got 'k8s'.",
        ),
        (
            &[("STUCK_BACKOFF", "3601")],
            "The setting STUCK_BACKOFF is invalid: expected a whole number from 1 to 3600, got '3601'.",
        ),
    ];
    for (vars, want) in cases {
        assert_eq!(err(vars, &ObserveFlags::default()), *want, "{vars:?}");
    }
    let f = ObserveFlags {
        group_plan: Some("sometimes".into()),
        ..ObserveFlags::default()
    };
    assert_eq!(
        err(&[], &f),
        "The setting --group-plan is invalid: expected true or false (also 1/0, yes/no, on/off), got 'sometimes'."
    );
}

#[test]
fn the_consumers_policy_is_checked_for_every_job() {
    let (data, _) = Kafkadata::parse(
        "a: {jobs: [{name: ja, consumer_group: ga}]}\nb: {jobs: [{name: jb, consumer_group: gb}]}\n",
        "test",
    )
    .unwrap();
    assert_eq!(consumers_policy(&VarTable::default(), &data), Ok(()));
    let ok = VarTable::new(&[("MAX_ATTEMPTS", "3"), ("DEAD_LETTER_TOPIC", "c.DLT")]);
    assert_eq!(consumers_policy(&ok, &data), Ok(()));
    let e = consumers_policy(&VarTable::new(&[("MAX_ATTEMPTS", "3")]), &data).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("The setting MAX_ATTEMPTS is invalid: MAX_ATTEMPTS needs somewhere"),
        "{e}"
    );
    // A dead-letter topic that one job reads is refused for that job.
    let e = consumers_policy(&VarTable::new(&[("DEAD_LETTER_TOPIC", "b")]), &data).unwrap_err();
    assert!(
        e.to_string()
            .contains("the dead-letter topic 'b' is a topic this consumer reads"),
        "{e}"
    );
}

#[test]
fn code_engine_api_and_credentials() {
    let all = CodeEngineFlags {
        iam_api_key: Some("key".into()),
        project_id: Some("p-1".into()),
        ..CodeEngineFlags::default()
    };
    let ce = |vars: &[(&str, &str)], f: &CodeEngineFlags| code_engine(&VarTable::new(vars), f);
    let s = ce(&[("CE_REGION", "eu-de")], &all).unwrap();
    assert_eq!(s.api_base, "https://api.eu-de.codeengine.cloud.ibm.com/v2");
    assert_eq!(
        (s.api_key.origin.as_str(), s.iam_url),
        ("--iam-api-key", None)
    );
    // The URL beats the region; /v2 is added once; trailing slashes go.
    let s = ce(
        &[
            ("CE_REGION", "eu-de"),
            ("CE_API_BASE_URL", "http://127.0.0.1:9/"),
        ],
        &all,
    )
    .unwrap();
    assert_eq!(s.api_base, "http://127.0.0.1:9/v2");
    let s = ce(&[("CE_API_BASE_URL", "https://ce.test/v2")], &all).unwrap();
    assert_eq!(s.api_base, "https://ce.test/v2");
    let cases: &[Refusal] = &[
        (
            &[],
            "The setting --api-base is invalid: the Code Engine API URL is required: pass --api-base URL or set CE_API_BASE_URL (or CE_REGION).",
        ),
        (
            &[("CE_REGION", "us-south.evil.example/x")],
            "The setting CE_REGION is invalid: 'us-south.evil.example/x' is not a region name (letters, digits and '-' only, e.g. us-south).",
        ),
        (
            &[("CE_API_BASE_URL", "ce.test")],
            "The setting CE_API_BASE_URL is invalid: expected an http(s) URL such as https://api.us-south.codeengine.cloud.ibm.com, got 'ce.test'.",
        ),
    ];
    for (vars, want) in cases {
        assert_eq!(ce(vars, &all).unwrap_err().to_string(), *want, "{vars:?}");
    }
    let e = ce(&[("CE_REGION", "eu-de")], &CodeEngineFlags::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "The setting --iam-api-key is invalid: an IBM Cloud API key is required: pass --iam-api-key or set IAM_API_KEY."
    );
    let e = ce(&[("IAM_API_KEY", "k")], &CodeEngineFlags::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "The setting --project-id is invalid: the Code Engine project id is required: pass --project-id or set CE_PROJECT_ID."
    );
}
