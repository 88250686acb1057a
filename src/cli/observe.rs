//! `kafka-observer observe`: the daemon. Hands its flags to
//! [`config::observe`](crate::config::observe) (flags win over the sample's environment
//! variables), then wires cluster, launcher, metrics and the loop together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::kafka::{connect, Kafka, KafkaArgs};
use super::{invalid, CliError};
use crate::cluster::Cluster;
use crate::config::env::ProcessEnv;
use crate::config::kafka::{child_env, KafkaSettings};
use crate::config::kafkadata::load::load;
use crate::config::kafkadata::Kafkadata;
use crate::config::observe::{self, CodeEngineFlags, LauncherKind, ObserveFlags};
use crate::config::secret::Secret;
use crate::config::settings::Setting;
use crate::http_client::build_client;
use crate::iam::{IamError, IamTokenManager, DEFAULT_IAM_URL};
use crate::lag::stuck::StuckPolicy;
use crate::lag::{EndKind, Policy};
use crate::launch::code_engine::{CodeEngine, CodeEngineConfig};
use crate::launch::local::LocalLauncher;
use crate::launch::Launcher;
use crate::observer::http::{self, Health};
use crate::observer::metrics::Metrics;
use crate::observer::{Observer, ObserverConfig};
use crate::retry::Backoff;

/// Watch lag and start consumer job runs when there is work.
#[derive(Debug, Clone, Args)]
pub struct ObserveArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// kafkadata mapping file [env: kafkadata holds the mapping itself]
    #[arg(long, value_name = "FILE")]
    pub kafkadata: Option<PathBuf>,

    /// Where consumers run: codeengine or local [env: OBSERVER_LAUNCHER] [default: codeengine]
    #[arg(long, value_name = "KIND")]
    pub launcher: Option<String>,

    /// Cycle period in milliseconds [env: OBSERVER_TICKER] [default: 500]
    #[arg(long, value_name = "MS")]
    pub ticker_ms: Option<String>,

    /// Most instances per job [env: MAX_INSTANCES] [default: one per partition]
    #[arg(long, value_name = "N")]
    pub max_instances: Option<String>,

    /// read_committed (lag to the last stable offset) or read_uncommitted (to the high
    /// watermark) [env: KAFKA_ISOLATION] [default: read_committed]
    #[arg(long, value_name = "LEVEL")]
    pub isolation: Option<String>,

    /// Where a group without a commit starts: earliest or latest [env: OFFSET_RESET]
    /// [default: earliest]
    #[arg(long, value_name = "POLICY")]
    pub offset_reset: Option<String>,

    /// Address of /metrics and /healthz [env: METRICS_ADDR] [default: 127.0.0.1:9464]
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,

    /// Seconds between metadata refreshes (new partitions) [env: METADATA_REFRESH] [default: 30]
    #[arg(long, value_name = "SECONDS")]
    pub metadata_refresh: Option<String>,

    /// Cycles without commit progress, while consumers run, before lag counts as stuck
    /// [env: STUCK_CYCLES] [default: 120]
    #[arg(long, value_name = "N")]
    pub stuck_cycles: Option<String>,

    /// First back-off of a job whose consumers end without committing (a crash loop),
    /// doubling at each further sign up to an hour; reset when its commits move
    /// [env: STUCK_BACKOFF] [default: 10]
    #[arg(long, value_name = "SECONDS")]
    pub stuck_backoff: Option<String>,

    /// Shortest time between two counts of a lagging job's instances (ListJobRuns); started
    /// runs count at once, idle jobs are never counted [env: LAUNCHER_REFRESH]
    /// [default: 10; 0 with --launcher local]
    #[arg(long, value_name = "SECONDS")]
    pub launcher_refresh: Option<String>,

    /// IBM Cloud API key for Code Engine [env: IAM_API_KEY]
    #[arg(long, value_name = "KEY")]
    pub iam_api_key: Option<String>,

    /// IAM token endpoint, or IAM's base URL (then /identity/token is appended, as IBM's SDKs
    /// do) [env: IAM_URL] [default: https://iam.cloud.ibm.com/identity/token]
    #[arg(long, value_name = "URL")]
    #[allow(rustdoc::bare_urls)] // the doc is --help text: a plain URL there, not a link
    pub iam_url: Option<String>,

    /// Code Engine project id [env: CE_PROJECT_ID]
    #[arg(long, value_name = "GUID")]
    pub project_id: Option<String>,

    /// Code Engine API URL, with or without /v2 [env: CE_API_BASE_URL] [default: derived from
    /// CE_REGION]
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,

    /// Long-poll Fetch on idle partitions to wake at the first record: true or false
    /// [env: OBSERVER_LONG_POLL] [default: true]
    #[arg(long, value_name = "BOOL")]
    pub long_poll: Option<String>,

    /// Cycle period in milliseconds while everything is idle and long-polled
    /// [env: OBSERVER_IDLE_TICKER] [default: 10000]
    #[arg(long, value_name = "MS")]
    pub idle_ticker_ms: Option<String>,

    /// Local launcher: the consumer program [default: this binary, `consume`]
    #[arg(long, value_name = "PATH")]
    pub consumer_exe: Option<PathBuf>,

    /// Benchmark knob, not for use: `false` plans each job alone, as before jobs sharing a
    /// consumer group were planned together (the "before" of the `group_scaleout` benchmark)
    /// [env: OBSERVER_GROUP_PLAN] [default: true]
    #[arg(long, value_name = "BOOL", hide = true)]
    pub group_plan: Option<String>,
}

/// Reads the mapping from `--kafkadata FILE` or the `kafkadata` variable; its warnings are
/// logged.
pub(crate) fn load_kafkadata(file: &Option<PathBuf>) -> Result<Kafkadata, CliError> {
    let (data, warnings) = load(&ProcessEnv, file)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(data)
}

/// Everything `observe` needs, validated before anything starts.
struct Resolved {
    kafka_settings: KafkaSettings,
    kafka: Kafka,
    cfg: ObserverConfig,
    launcher: LauncherKind,
    metrics_addr: SocketAddr,
}

impl ObserveArgs {
    /// The loop's flags as [`config::observe`](crate::config::observe) takes them.
    fn flags(&self) -> ObserveFlags {
        ObserveFlags {
            launcher: self.launcher.clone(),
            ticker_ms: self.ticker_ms.clone(),
            max_instances: self.max_instances.clone(),
            isolation: self.isolation.clone(),
            offset_reset: self.offset_reset.clone(),
            metrics_addr: self.metrics_addr.clone(),
            metadata_refresh: self.metadata_refresh.clone(),
            stuck_cycles: self.stuck_cycles.clone(),
            stuck_backoff: self.stuck_backoff.clone(),
            launcher_refresh: self.launcher_refresh.clone(),
            long_poll: self.long_poll.clone(),
            idle_ticker_ms: self.idle_ticker_ms.clone(),
            group_plan: self.group_plan.clone(),
        }
    }

    /// The Code Engine flags as [`config::observe`](crate::config::observe) takes them.
    fn code_engine_flags(&self) -> CodeEngineFlags {
        CodeEngineFlags {
            iam_api_key: self.iam_api_key.clone(),
            iam_url: self.iam_url.clone(),
            project_id: self.project_id.clone(),
            api_base: self.api_base.clone(),
        }
    }
}

fn resolve(a: &ObserveArgs) -> Result<Resolved, CliError> {
    let env = &ProcessEnv;
    let kafkadata = load_kafkadata(&a.kafkadata)?;
    let kafka_settings = a.kafka.settings(env)?;
    let kafka = connect(&kafka_settings)?;
    let s = observe::resolve(env, &a.flags())?;
    observe::consumers_policy(env, &kafkadata)?;
    let local = s.launcher == LauncherKind::Local;
    let cfg = ObserverConfig {
        kafkadata,
        policy: Policy {
            end: if s.read_committed {
                EndKind::LastStable
            } else {
                EndKind::HighWatermark
            },
            no_commit: super::no_commit(s.offset_reset),
        },
        ticker: s.ticker,
        max_instances: s.max_instances,
        stuck: StuckPolicy {
            cycles: s.stuck_cycles,
        },
        group_plan: s.group_plan,
        metadata_refresh: s.metadata_refresh,
        // Code Engine may list a fresh run a moment late; local children are counted exactly.
        launch_grace: Duration::from_secs(if local { 0 } else { 5 }),
        long_poll: s.long_poll,
        idle_ticker: s.idle_ticker.max(s.ticker),
        launcher_refresh: s.launcher_refresh,
        backoff: s.stuck_backoff,
        max_backoff: Duration::from_secs(3600),
        launcher_deadline: LAUNCHER_DEADLINE,
        launcher_health: (s.launcher_refresh * 3)
            .clamp(Duration::from_secs(5), Duration::from_secs(30)),
    };
    Ok(Resolved {
        kafka_settings,
        kafka,
        cfg,
        launcher: s.launcher,
        metrics_addr: s.metrics_addr,
    })
}

fn make_launcher(a: &ObserveArgs, r: &Resolved) -> Result<Launcher, CliError> {
    match r.launcher {
        LauncherKind::Local => {
            let starter = std::env::current_exe()
                .map_err(|e| CliError::Runtime(format!("cannot find this program's path: {e}")))?;
            let (exe, args) = match &a.consumer_exe {
                Some(p) => {
                    check_exe(p).map_err(|m| invalid("--consumer-exe", m))?;
                    (p.clone(), vec![])
                }
                None => (starter.clone(), vec!["consume".to_string()]),
            };
            Ok(Launcher::Local(LocalLauncher::new(
                exe,
                args,
                child_env(&r.kafka_settings, a.kafka.allow_plain_without_tls),
                starter,
            )))
        }
        LauncherKind::CodeEngine => code_engine_launcher(a),
    }
}

/// A consumer program the local launcher can start: an executable file, found directly or,
/// for a bare name, on `PATH` — checked once at start instead of failing every cycle.
fn check_exe(p: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if p.components().count() == 1 && !p.as_os_str().is_empty() {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if std::env::split_paths(&path).any(|d| executable(&d.join(p)).unwrap_or(false)) {
            return Ok(());
        }
        return Err(format!(
            "no executable '{}' on PATH; give the consumer program's path",
            p.display()
        ));
    }
    match executable(p) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "'{}' is not an executable file; point it at the consumer program (chmod +x if it is one)",
            p.display()
        )),
        Err(e) => Err(format!("cannot use '{}': {e}", p.display())),
    }
}

fn code_engine_launcher(a: &ObserveArgs) -> Result<Launcher, CliError> {
    let s = observe::code_engine(&ProcessEnv, &a.code_engine_flags())?;
    let iam_url = s.iam_url.unwrap_or(Setting {
        value: DEFAULT_IAM_URL.to_string(),
        origin: "--iam-url".into(),
    });
    let (key, project) = (s.api_key, s.project_id);
    let client = build_client(None).map_err(|e| CliError::Usage(e.to_string()))?;
    let iam = IamTokenManager::new(iam_url.value, Secret::new(key.value), client.clone()).map_err(
        |e| match e {
            IamError::InvalidUrl { .. } => invalid(&iam_url.origin, e.to_string()),
            _ => invalid(&key.origin, e.to_string()),
        },
    )?;
    let cfg = CodeEngineConfig {
        api_base: s.api_base,
        project_id: project.value,
        api_version: None,
        request_timeout: Duration::from_secs(30),
        retries: 4,
    };
    let ce = CodeEngine::new(cfg, Arc::new(iam), client)
        .map_err(|e| invalid(&project.origin, e.to_string()))?;
    Ok(Launcher::CodeEngine(ce))
}

/// Deadline of one launcher order (an IAM token, a count and a start, each with retries).
const LAUNCHER_DEADLINE: Duration = Duration::from_secs(60);

/// The first contact with the cluster. Errors no retry can fix (wrong credentials, an
/// untrusted certificate, no common protocol version) end the program, so that a daemon job
/// run shows as failed with the reason in its log; a cluster that is not reachable yet is
/// asked again, with a line per back-off step.
async fn first_contact(cluster: &Cluster, topics: &[String]) -> Result<(), CliError> {
    let steps = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(30),
        retries: u32::MAX,
    };
    let mut attempt = 0u32;
    loop {
        match cluster.refresh_metadata(Some(topics)).await {
            Ok(_) => {
                if attempt > 0 {
                    tracing::info!("Kafka cluster reachable");
                }
                return Ok(());
            }
            Err(e) if e.is_fatal() => {
                return Err(CliError::Runtime(format!(
                    "cannot use the Kafka cluster: {e}"
                )))
            }
            Err(e) => {
                attempt += 1;
                let d = steps.delay_random(attempt).unwrap_or(steps.max);
                tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "Kafka cluster not reachable yet; retrying");
                tokio::time::sleep(d).await;
            }
        }
    }
}

pub async fn run(a: ObserveArgs) -> Result<(), CliError> {
    let r = resolve(&a)?;
    let launcher = make_launcher(&a, &r)?;
    let metrics = Arc::new(Metrics::new());
    let stale = (r.cfg.ticker * 5).max(Duration::from_secs(10)) + r.kafka.options.request_timeout;
    let health = Arc::new(Health::new(stale).with_launcher_bound(r.cfg.launcher_health));
    let (bound, _server) = http::serve(r.metrics_addr, metrics.clone(), health.clone())
        .await
        .map_err(|e| {
            CliError::Runtime(format!(
                "cannot listen on {} for /metrics: {e}",
                r.metrics_addr
            ))
        })?;
    tracing::info!(
        metrics = %format!("http://{bound}/metrics"),
        launcher = launcher.kind(),
        jobs = r.cfg.kafkadata.jobs().len(),
        ticker_ms = r.cfg.ticker.as_millis() as u64,
        "observer started"
    );
    let cluster = Arc::new(Cluster::new(
        r.kafka.bootstrap.clone(),
        r.kafka.options.clone(),
    ));
    let topics: Vec<String> = r
        .cfg
        .kafkadata
        .topics
        .iter()
        .map(|t| t.name.clone())
        .collect();
    tokio::select! {
        first = first_contact(&cluster, &topics) => first?,
        _ = shutdown_signal() => return Ok(()),
    }
    let observer = Observer::new(r.cfg, cluster, launcher, metrics, health);
    observer.run(shutdown_signal()).await;
    Ok(())
}

/// SIGTERM (Code Engine, `kill`) or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
