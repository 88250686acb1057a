//! The settings of `observe`: its loop, its metrics address, its launcher and, for Code
//! Engine, the project and API to launch with.
//!
//! Read and checked here, before any socket opens, so that a daemon with a typo in its
//! configmap stops at once with one sentence naming the flag or variable — instead of running
//! and never waking a consumer. The result is plain data; `cli` builds the observer's
//! configuration and the launcher from it.

use std::net::SocketAddr;
use std::time::Duration;

use super::env::Env;
use super::failure::{failure_policy, FailureFlags};
use super::kafkadata::Kafkadata;
use super::settings::{
    boolean, choice, invalid, number, offset_reset, parsed, read_committed, required, setting, var,
    whole, OffsetReset, Setting,
};
use super::ConfigError;

/// The loop's flags as given (each with its variable).
#[derive(Debug, Clone, Default)]
pub(crate) struct ObserveFlags {
    pub launcher: Option<String>,
    pub ticker_ms: Option<String>,
    pub max_instances: Option<String>,
    pub isolation: Option<String>,
    pub offset_reset: Option<String>,
    pub metrics_addr: Option<String>,
    pub metadata_refresh: Option<String>,
    pub stuck_cycles: Option<String>,
    pub stuck_backoff: Option<String>,
    pub launcher_refresh: Option<String>,
    pub long_poll: Option<String>,
    pub idle_ticker_ms: Option<String>,
    pub group_plan: Option<String>,
}

/// Where consumers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LauncherKind {
    CodeEngine,
    Local,
}

/// The loop's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObserveSettings {
    pub ticker: Duration,
    pub max_instances: Option<u32>,
    pub read_committed: bool,
    pub offset_reset: OffsetReset,
    pub metrics_addr: SocketAddr,
    pub metadata_refresh: Duration,
    pub stuck_cycles: u32,
    pub stuck_backoff: Duration,
    pub long_poll: bool,
    pub group_plan: bool,
    /// As given; never shorter than `ticker` when used.
    pub idle_ticker: Duration,
    pub launcher: LauncherKind,
    pub launcher_refresh: Duration,
}

/// Flags first, then the environment, then the defaults; every problem names its origin.
pub(crate) fn resolve(env: &dyn Env, f: &ObserveFlags) -> Result<ObserveSettings, ConfigError> {
    let ticker = whole(
        env,
        &f.ticker_ms,
        "--ticker-ms",
        "OBSERVER_TICKER",
        500,
        (10, 3_600_000),
    )?;
    let max_instances = parsed(
        setting(env, &f.max_instances, "--max-instances", "MAX_INSTANCES")?,
        None,
        |v| number(1, 1000)(v).map(|n| Some(n as u32)),
    )?;
    let read_committed = read_committed(env, &f.isolation)?;
    let offset_reset = offset_reset(env, &f.offset_reset)?;
    let metrics_addr = parsed(
        setting(env, &f.metrics_addr, "--metrics-addr", "METRICS_ADDR")?,
        SocketAddr::from(([127, 0, 0, 1], 9464)),
        |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("expected IP:PORT such as 127.0.0.1:9464, got '{v}'"))
        },
    )?;
    let metadata_refresh = whole(
        env,
        &f.metadata_refresh,
        "--metadata-refresh",
        "METADATA_REFRESH",
        30,
        (1, 86_400),
    )?;
    let stuck_cycles = whole(
        env,
        &f.stuck_cycles,
        "--stuck-cycles",
        "STUCK_CYCLES",
        120,
        (1, 1_000_000),
    )?;
    let stuck_backoff = whole(
        env,
        &f.stuck_backoff,
        "--stuck-backoff",
        "STUCK_BACKOFF",
        10,
        (1, 3_600),
    )?;
    let long_poll = boolean(env, &f.long_poll, "--long-poll", "OBSERVER_LONG_POLL", true)?;
    let group_plan = boolean(
        env,
        &f.group_plan,
        "--group-plan",
        "OBSERVER_GROUP_PLAN",
        true,
    )?;
    let idle_ticker = whole(
        env,
        &f.idle_ticker_ms,
        "--idle-ticker-ms",
        "OBSERVER_IDLE_TICKER",
        10_000,
        (10, 3_600_000),
    )?;
    let launcher = parsed(
        setting(env, &f.launcher, "--launcher", "OBSERVER_LAUNCHER")?,
        "codeengine".to_string(),
        choice(&["codeengine", "local"]),
    )?;
    let launcher = if launcher == "local" {
        LauncherKind::Local
    } else {
        LauncherKind::CodeEngine
    };
    let launcher_refresh = whole(
        env,
        &f.launcher_refresh,
        "--launcher-refresh",
        "LAUNCHER_REFRESH",
        if launcher == LauncherKind::Local {
            0
        } else {
            10
        },
        (0, 3_600),
    )?;
    Ok(ObserveSettings {
        ticker: Duration::from_millis(ticker),
        max_instances,
        read_committed,
        offset_reset,
        metrics_addr,
        metadata_refresh: Duration::from_secs(metadata_refresh),
        stuck_cycles: stuck_cycles as u32,
        stuck_backoff: Duration::from_secs(stuck_backoff),
        long_poll,
        group_plan,
        idle_ticker: Duration::from_millis(idle_ticker),
        launcher,
        launcher_refresh: Duration::from_secs(launcher_refresh),
    })
}

/// The consumers inherit the observer's environment: a failure policy they would refuse is
/// refused here, with the message each of them would print, before any job is woken.
pub(crate) fn consumers_policy(env: &dyn Env, kafkadata: &Kafkadata) -> Result<(), ConfigError> {
    for job in kafkadata.jobs() {
        failure_policy(env, &FailureFlags::default(), &job.topics)?;
    }
    Ok(())
}

/// The Code Engine flags as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeEngineFlags {
    pub iam_api_key: Option<String>,
    pub iam_url: Option<String>,
    pub project_id: Option<String>,
    pub api_base: Option<String>,
}

/// What the Code Engine launcher needs, each with where it came from (the IAM client and the
/// API client refuse values with the origin named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeEngineSettings {
    pub api_key: Setting,
    pub project_id: Setting,
    /// `…/v2`.
    pub api_base: String,
    /// `None`: IAM's public token endpoint (its origin is `--iam-url`).
    pub iam_url: Option<Setting>,
}

/// The Code Engine settings: the key and project are required, the API from --api-base /
/// CE_API_BASE_URL or CE_REGION.
pub(crate) fn code_engine(
    env: &dyn Env,
    f: &CodeEngineFlags,
) -> Result<CodeEngineSettings, ConfigError> {
    let api_key = required(
        env,
        &f.iam_api_key,
        "--iam-api-key",
        "IAM_API_KEY",
        "an IBM Cloud API key",
    )?;
    let project_id = required(
        env,
        &f.project_id,
        "--project-id",
        "CE_PROJECT_ID",
        "the Code Engine project id",
    )?;
    let api_base = api_base(env, &f.api_base)?;
    let iam_url = setting(env, &f.iam_url, "--iam-url", "IAM_URL")?;
    Ok(CodeEngineSettings {
        api_key,
        project_id,
        api_base,
        iam_url,
    })
}

/// `…/v2` from --api-base / CE_API_BASE_URL, else the public endpoint of CE_REGION.
pub(crate) fn api_base(env: &dyn Env, flag: &Option<String>) -> Result<String, ConfigError> {
    if let Some(s) = setting(env, flag, "--api-base", "CE_API_BASE_URL")? {
        let v = s.value.trim().trim_end_matches('/');
        if !(v.starts_with("https://") || v.starts_with("http://")) {
            return Err(invalid(
                &s.origin,
                format!("expected an http(s) URL such as https://api.us-south.codeengine.cloud.ibm.com, got '{v}'"),
            ));
        }
        return Ok(if v.ends_with("/v2") {
            v.to_string()
        } else {
            format!("{v}/v2")
        });
    }
    match var(env, "CE_REGION")? {
        Some(region) => region_base(&region),
        None => Err(invalid(
            "--api-base",
            "the Code Engine API URL is required: pass --api-base URL or set CE_API_BASE_URL (or CE_REGION)",
        )),
    }
}

/// The public API base of Code Engine region `region`. The region becomes part of the host the
/// bearer token is sent to, so it must be a region name and nothing else.
fn region_base(region: &str) -> Result<String, ConfigError> {
    let r = region.trim();
    if r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(invalid(
            "CE_REGION",
            format!("'{r}' is not a region name (letters, digits and '-' only, e.g. us-south)"),
        ));
    }
    Ok(format!("https://api.{r}.codeengine.cloud.ibm.com/v2"))
}

#[cfg(test)]
mod tests;
