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
use crate::config::consume::{self, ConsumeFlags, HandlerChoice};
use crate::config::env::ProcessEnv;
use crate::config::settings::var;
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

impl ConsumeArgs {
    /// The flags as [`config::consume`](crate::config::consume) takes them.
    fn flags(&self) -> ConsumeFlags {
        ConsumeFlags {
            topics: self.topics.clone(),
            group: self.group.clone(),
            idle_timeout: self.idle_timeout.clone(),
            exec: self.exec.clone(),
            sink: self.sink.clone(),
            discard: self.discard,
            handler_timeout: self.handler_timeout.clone(),
            offset_reset: self.offset_reset.clone(),
            isolation: self.isolation.clone(),
            assignors: self.assignors.clone(),
            commit_interval_ms: self.commit_interval_ms.clone(),
            batch_size: self.batch_size.clone(),
            session_timeout: self.session_timeout.clone(),
            heartbeat_interval_ms: self.heartbeat_interval_ms.clone(),
            failure: policy::flags(self),
        }
    }
}

pub async fn run(a: ConsumeArgs) -> Result<(), CliError> {
    let env = &ProcessEnv;
    let s = consume::resolve(env, &a.flags(), &SUPPORTED)?;
    let failure = policy::failure_policy(s.failure)?;
    let timeout = s.handler_timeout;
    let source = format!("kafka-observer/{}", s.group);
    let (handler, handler_origin) = match s.handler {
        HandlerChoice::Exec { command, origin } => (HandlerSpec::Exec { command, timeout }, origin),
        HandlerChoice::Sink { url, origin } => (
            HandlerSpec::Sink {
                url,
                timeout,
                source,
            },
            origin,
        ),
        HandlerChoice::Discard => (HandlerSpec::Discard, "--discard".into()),
        HandlerChoice::Log => (HandlerSpec::Log, "--exec".into()),
    };
    // A handler that cannot be built is a usage error, found before joining the group.
    Handler::new(&handler).map_err(|e| invalid(&handler_origin, e.to_string()))?;
    let instance_id = consume::instance_id(env, a.static_membership)?;
    let kafka = a.kafka.resolve()?;
    let cfg = ConsumerConfig {
        group: GroupConfig {
            group: s.group,
            topics: s.topics,
            instance_id,
            session_timeout: s.session_timeout,
            // A member rejoins after its handler call in flight: the group waits that long for
            // it rather than evicting it (evicted, its commit would fail and records repeat).
            rebalance_timeout: s.handler_timeout + Duration::from_secs(REJOIN_MARGIN_SECS),
            assignors: s.assignors,
        },
        handler,
        reset: super::no_commit(s.offset_reset),
        read_committed: s.read_committed,
        idle_timeout: s.idle_timeout,
        commit_interval: s.commit_interval,
        heartbeat_interval: s.heartbeat_interval,
        max_wait: Duration::from_millis(500),
        partition_max_bytes: 1024 * 1024,
        max_decompressed: kafka.options.max_frame_bytes,
        batch_size: s.batch_size,
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
