//! `kafka-observer consume`: the consumer job. Reads the sample's variables (`KAFKA_TOPIC`,
//! `CONSUMER_GROUP`, `IDLE_TIMEOUT`), joins the group, handles records, exits when idle.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tracing::Instrument;

mod policy;

use super::kafka::KafkaArgs;
use super::{invalid, CliError};
use crate::cluster::Cluster;
use crate::config::env::ProcessEnv;
use crate::config::settings::{
    offset_reset, parsed, read_committed, required, setting, switch, var, whole,
};
use crate::consumer::assignor::SUPPORTED;
use crate::consumer::failure::Exhausted;
use crate::consumer::group::GroupConfig;
use crate::consumer::handler::{Handler, HandlerSpec};
use crate::consumer::run::{self, ConsumerConfig, Exit};

/// Seconds a rejoin may take beyond one handler call (the final commit, finding the coordinator).
const REJOIN_MARGIN_SECS: u64 = 30;

/// Join a consumer group, handle its records, exit when idle.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Topics, comma-separated [env: KAFKA_TOPIC]
    #[arg(long = "topic", value_name = "TOPIC[,TOPIC...]")]
    pub topics: Option<String>,

    /// Consumer group [env: CONSUMER_GROUP]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Seconds without records before committing, leaving and exiting 0 [env: IDLE_TIMEOUT]
    /// [default: 60]
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<String>,

    /// Run CMD (via sh -c) for each batch, records as JSON lines on stdin [env: CONSUMER_EXEC]
    #[arg(long, value_name = "CMD", conflicts_with = "sink")]
    pub exec: Option<String>,

    /// POST each record to URL as a CloudEvent (binary mode) [env: CONSUMER_SINK]
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,

    /// Accept records and do nothing with them (benchmarks, draining a topic)
    #[arg(long, conflicts_with_all = ["exec", "sink"])]
    pub discard: bool,

    /// Seconds one handler call may take [env: HANDLER_TIMEOUT] [default: 300]
    #[arg(long, value_name = "SECONDS")]
    pub handler_timeout: Option<String>,

    /// Where a partition without a commit starts: earliest or latest [env: OFFSET_RESET]
    /// [default: earliest]
    #[arg(long, value_name = "POLICY")]
    pub offset_reset: Option<String>,

    /// read_committed or read_uncommitted [env: KAFKA_ISOLATION] [default: read_committed]
    #[arg(long, value_name = "LEVEL")]
    pub isolation: Option<String>,

    /// Partition assignors offered, in order: cooperative-sticky, range, roundrobin
    /// [env: ASSIGNORS] [default: cooperative-sticky,range,roundrobin]
    #[arg(long, value_name = "LIST")]
    pub assignors: Option<String>,

    /// Milliseconds between offset commits [env: COMMIT_INTERVAL] [default: 1000]
    #[arg(long, value_name = "MS")]
    pub commit_interval_ms: Option<String>,

    /// Most records per handler call [env: BATCH_SIZE] [default: 500]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<String>,

    /// Seconds the group waits for a silent member before reassigning its partitions
    /// [env: SESSION_TIMEOUT] [default: 45]
    #[arg(long, value_name = "SECONDS")]
    pub session_timeout: Option<String>,

    /// Milliseconds between heartbeats: how soon this member hears of a rebalance
    /// [env: HEARTBEAT_INTERVAL] [default: 500]
    #[arg(long, value_name = "MS")]
    pub heartbeat_interval_ms: Option<String>,

    /// Static membership: group.instance.id = CE_JOBRUN-JOB_INDEX [env: STATIC_MEMBERSHIP]
    #[arg(long)]
    pub static_membership: bool,

    /// Failed handler calls of one record before it is dead-lettered or skipped
    /// [env: MAX_ATTEMPTS] [default: unlimited; 10 with --dead-letter-topic]
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<String>,

    /// Records older than this skip the handler and are dead-lettered or skipped
    /// [env: MAX_RECORD_AGE] [default: no limit]
    #[arg(long, value_name = "SECONDS")]
    pub max_record_age: Option<String>,

    /// Write records that exhausted their attempts to TOPIC (acks=all), then commit past them
    /// [env: DEAD_LETTER_TOPIC]
    #[arg(long, value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,

    /// Without a dead-letter topic: block (retry forever, commit nothing past the record) or
    /// skip (log, count, commit past it) [env: ON_EXHAUSTED] [default: block]
    #[arg(long, value_name = "ACTION")]
    pub on_exhausted: Option<String>,
}

pub async fn run(a: ConsumeArgs) -> Result<(), CliError> {
    let env = &ProcessEnv;
    let topics_s = required(env, &a.topics, "--topic", "KAFKA_TOPIC", "the topic list")?;
    let topics: Vec<String> = topics_s
        .value
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if topics.is_empty() {
        return Err(invalid(&topics_s.origin, "no topic named"));
    }
    let group = required(
        env,
        &a.group,
        "--group",
        "CONSUMER_GROUP",
        "the consumer group",
    )?;
    let idle = whole(
        env,
        &a.idle_timeout,
        "--idle-timeout",
        "IDLE_TIMEOUT",
        60,
        (1, 7 * 86_400),
    )?;
    let handler_timeout = whole(
        env,
        &a.handler_timeout,
        "--handler-timeout",
        "HANDLER_TIMEOUT",
        300,
        (1, 86_400),
    )?;
    let reset = super::no_commit(offset_reset(env, &a.offset_reset)?);
    let read_committed = read_committed(env, &a.isolation)?;
    let assignors = parsed(
        setting(env, &a.assignors, "--assignors", "ASSIGNORS")?,
        SUPPORTED.iter().map(|s| s.to_string()).collect(),
        |v| {
            let mut list: Vec<String> = Vec::new();
            for name in v.split(',').map(|s| s.trim().to_ascii_lowercase()) {
                if !SUPPORTED.contains(&name.as_str()) {
                    return Err(format!(
                        "expected a list of {}, got '{v}'",
                        SUPPORTED.join(", ")
                    ));
                }
                if !list.contains(&name) {
                    list.push(name);
                }
            }
            Ok(list)
        },
    )?;
    let commit_ms = whole(
        env,
        &a.commit_interval_ms,
        "--commit-interval-ms",
        "COMMIT_INTERVAL",
        1000,
        (10, 3_600_000),
    )?;
    let batch_size = whole(
        env,
        &a.batch_size,
        "--batch-size",
        "BATCH_SIZE",
        500,
        (1, 1_000_000),
    )?;
    let session = whole(
        env,
        &a.session_timeout,
        "--session-timeout",
        "SESSION_TIMEOUT",
        45,
        (6, 3600),
    )?;
    let heartbeat_ms = whole(
        env,
        &a.heartbeat_interval_ms,
        "--heartbeat-interval-ms",
        "HEARTBEAT_INTERVAL",
        500,
        (50, session * 1000 / 3),
    )?;
    let failure = policy::failure_policy(env, &a, &topics)?;
    let timeout = Duration::from_secs(handler_timeout);
    let source = format!("kafka-observer/{}", group.value);
    let (handler, handler_origin) = match (
        setting(env, &a.exec, "--exec", "CONSUMER_EXEC")?,
        setting(env, &a.sink, "--sink", "CONSUMER_SINK")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "--exec",
                "--exec and --sink exclude each other: pick one handler",
            ))
        }
        (Some(e), None) => (
            HandlerSpec::Exec {
                command: e.value,
                timeout,
            },
            e.origin,
        ),
        (None, Some(s)) => (
            HandlerSpec::Sink {
                url: s.value,
                timeout,
                source,
            },
            s.origin,
        ),
        (None, None) if a.discard => (HandlerSpec::Discard, "--discard".into()),
        (None, None) => (HandlerSpec::Log, "--exec".into()),
    };
    // A handler that cannot be built is a usage error, found before joining the group.
    Handler::new(&handler).map_err(|e| invalid(&handler_origin, e.to_string()))?;
    let static_membership = switch(env, a.static_membership, "STATIC_MEMBERSHIP")?;
    let instance_id = if static_membership {
        let run = var(env, "CE_JOBRUN")?.unwrap_or_else(|| "local".into());
        let index = var(env, "JOB_INDEX")?.unwrap_or_else(|| "0".into());
        Some(format!("{run}-{index}"))
    } else {
        None
    };
    let kafka = a.kafka.resolve()?;
    let cfg = ConsumerConfig {
        group: GroupConfig {
            group: group.value,
            topics,
            instance_id,
            session_timeout: Duration::from_secs(session),
            // A member rejoins after its handler call in flight: the group waits that long for
            // it rather than evicting it (evicted, its commit would fail and records repeat).
            rebalance_timeout: Duration::from_secs(handler_timeout + REJOIN_MARGIN_SECS),
            assignors,
        },
        handler,
        reset,
        read_committed,
        idle_timeout: Duration::from_secs(idle),
        commit_interval: Duration::from_millis(commit_ms),
        heartbeat_interval: Duration::from_millis(heartbeat_ms),
        max_wait: Duration::from_millis(500),
        partition_max_bytes: 1024 * 1024,
        max_decompressed: kafka.options.max_frame_bytes,
        batch_size: batch_size as usize,
        failure,
    };
    let cluster = Arc::new(Cluster::new(kafka.bootstrap, kafka.options));
    if let Exhausted::DeadLetter(topic) = &cfg.failure.exhausted {
        policy::check_dead_letter_topic(&cluster, topic).await?;
    }
    // Every line of this instance names its job, group, job run and array index (what Code
    // Engine and the local launcher set), so instances of one group can be told apart.
    let span = crate::consumer::span(
        var(env, "CE_JOB")?.as_deref(),
        &cfg.group.group,
        var(env, "CE_JOBRUN")?.as_deref(),
        var(env, "JOB_INDEX")?.as_deref(),
    );
    match run::run(cluster, cfg, super::observe::shutdown_signal())
        .instrument(span)
        .await
    {
        Ok(Exit::Idle) | Ok(Exit::Signal) => Ok(()),
        Err(e) => Err(CliError::Runtime(e.to_string())),
    }
}
