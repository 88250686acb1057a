//! `kafka-observer lag`: per-partition offsets and lag of consumer groups, for a person or a
//! script, in kafka-consumer-groups' columns and words, in one round trip per broker.
//!
//! A snapshot is three batched passes that run together — committed offsets (OffsetFetch per
//! coordinator), members (DescribeGroups per coordinator), partitions of named topics (Metadata)
//! — then the log ends of every partition shown (ListOffsets per leader). `report` turns it
//! into rows with the observer's lag function; `render` prints them.

mod render;
mod report;

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::kafka::KafkaArgs;
use super::{invalid, CliError};
use crate::cluster::Cluster;
use crate::config::env::ProcessEnv;
use crate::config::kafkadata::Kafkadata;
use crate::config::lag;
use crate::config::settings::{offset_reset, read_committed};
use crate::consumer::handler::log::now_ms;
use crate::consumer::handler::rfc3339::format_millis;
use crate::lag::Policy;
use crate::offsets::timestamps::{self, Peeks};
use crate::offsets::{describe_groups, fetch_committed, fetch_ends, GroupQuery, TopicPartition};
use crate::protocol::error::error_name;

pub(crate) use render::View;
pub(crate) use report::GroupReport;
use report::{Snapshot, Target};

/// Show offsets and lag of consumer groups.
#[derive(Debug, Clone, Args)]
pub struct LagArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Consumer group to show (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,

    /// Show every consumer group of the cluster
    #[arg(long, conflicts_with = "groups")]
    pub all_groups: bool,

    /// Only these topics (repeatable); all their partitions are shown, committed or not
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,

    /// Every job's group and topics from a kafkadata mapping
    #[arg(long, value_name = "FILE", conflicts_with_all = ["groups", "all_groups"])]
    pub kafkadata: Option<PathBuf>,

    /// Lag up to the last stable offset (read_committed, the default) or the high watermark
    /// (read_uncommitted); `-` or `_`, any case [env: KAFKA_ISOLATION]
    #[arg(long, value_name = "LEVEL")]
    pub isolation: Option<String>,

    /// Where TIME-LAG of a partition without a usable commit counts from: earliest or latest,
    /// as the observer's option [env: OFFSET_RESET]
    #[arg(long, value_name = "WHERE")]
    pub offset_reset: Option<String>,

    /// The members of each group and their partitions (kafka-consumer-groups --members)
    #[arg(long, conflicts_with = "state")]
    pub members: bool,

    /// Coordinator, assignor, state and member count of each group (kafka-consumer-groups
    /// --state)
    #[arg(long)]
    pub state: bool,

    /// Print JSON instead of a table (every field of every view)
    #[arg(long)]
    pub json: bool,

    /// Refresh every SECONDS until interrupted (in place on a terminal, else one timestamped
    /// report, or one JSON document per line, per refresh)
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    time: String,
    groups: &'a [GroupReport],
}

pub async fn run(args: LagArgs) -> Result<(), CliError> {
    let kafka = args.kafka.resolve()?;
    lag::targets_named(
        !args.groups.is_empty(),
        args.all_groups,
        args.kafkadata.is_some(),
    )?;
    lag::watch(args.watch)?;
    // `no_commit` plays no part in the offsets shown (a partition without a commit shows `-`),
    // only in its TIME-LAG: the age of the record a consumer would start at.
    let policy = Policy::new(
        read_committed(&ProcessEnv, &args.isolation)?,
        super::no_commit(offset_reset(&ProcessEnv, &args.offset_reset)?),
    );
    let view = if args.members {
        View::Members
    } else if args.state {
        View::State
    } else {
        View::Offsets
    };
    let static_targets = static_targets(&args)?;
    let cluster = Cluster::new(kafka.bootstrap, kafka.options);
    // An unreachable cluster, wrong credentials or an untrusted certificate fail here, typed,
    // instead of as one error per partition; the connection is the one the snapshot reuses.
    cluster.any().await?;
    // Timestamps of waiting records, kept across refreshes: a record's never changes.
    let mut peeks = Peeks::default();
    let Some(every) = args.watch else {
        let reports = look(&cluster, &args, &static_targets, &policy, &mut peeks).await?;
        let text = if args.json {
            json(&reports, true)?
        } else {
            render::render(&reports, view)
        };
        print(&text);
        return verdict(&reports);
    };
    let terminal = std::io::stdout().is_terminal();
    loop {
        let time = format_millis(now_ms()).unwrap_or_default();
        let text = match look(&cluster, &args, &static_targets, &policy, &mut peeks).await {
            Ok(reports) if args.json => json(&reports, false)?,
            Ok(reports) => render::render(&reports, view),
            // One failed refresh is shown and the next one tried: a watch outlives a blip.
            Err(e) if args.json => format!(
                "{}\n",
                serde_json::json!({"time": time, "error": e.to_string()})
            ),
            Err(e) => format!("error: {e}\n"),
        };
        if terminal && !args.json {
            // Home, clear screen, then the fresh report: refresh in place.
            print(&format!("\x1b[H\x1b[2J{time}\n\n{text}"));
        } else if args.json {
            print(&text);
        } else {
            print(&format!("--- {time}\n{text}"));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(every)) => {}
            _ = super::observe::shutdown_signal() => return Ok(()),
        }
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The reports as one JSON document: pretty for a person, one line per refresh under --watch.
fn json(reports: &[GroupReport], pretty: bool) -> Result<String, CliError> {
    let doc = Report {
        time: format_millis(now_ms()).unwrap_or_default(),
        groups: reports,
    };
    let text = if pretty {
        serde_json::to_string_pretty(&doc)
    } else {
        serde_json::to_string(&doc)
    };
    Ok(text.map_err(|e| CliError::Runtime(e.to_string()))? + "\n")
}

/// Exit 1 when something asked for could not be shown, naming what.
fn verdict(reports: &[GroupReport]) -> Result<(), CliError> {
    let missing: Vec<&str> = reports
        .iter()
        .filter(|r| r.must_exist && !r.exists)
        .map(|r| r.group.as_str())
        .collect();
    if let [one] = missing[..] {
        return Err(CliError::Runtime(
            render::does_not_exist(one).trim_end().to_string(),
        ));
    }
    if !missing.is_empty() {
        return Err(CliError::Runtime(format!(
            "consumer groups {} do not exist",
            missing
                .iter()
                .map(|g| format!("'{g}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if reports.iter().any(|r| !r.missing_topics.is_empty()) {
        return Err(CliError::Runtime(
            "some topics do not exist (see above)".into(),
        ));
    }
    if reports.iter().any(GroupReport::failed) {
        return Err(CliError::Runtime(
            "some offsets could not be read (see the errors above)".into(),
        ));
    }
    Ok(())
}

/// Targets from --group/--topic or --kafkadata (empty for --all-groups: listed per refresh).
fn static_targets(args: &LagArgs) -> Result<Vec<Target>, CliError> {
    let filter = (!args.topics.is_empty()).then(|| args.topics.clone());
    if let Some(path) = &args.kafkadata {
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "--kafkadata",
                format!("cannot read '{}': {e}", path.display()),
            )
        })?;
        let (data, warnings) = Kafkadata::parse(&text, &path.display().to_string())?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        return Ok(data
            .groups()
            .into_iter()
            .map(|(group, topics)| {
                let topics = match &filter {
                    Some(f) => topics.into_iter().filter(|t| f.contains(t)).collect(),
                    None => topics,
                };
                Target {
                    group,
                    topics: Some(topics),
                    must_exist: false,
                }
            })
            .collect());
    }
    let mut seen = BTreeSet::new();
    Ok(args
        .groups
        .iter()
        .filter(|g| seen.insert(g.to_string()))
        .map(|g| Target {
            group: g.clone(),
            topics: filter.clone(),
            // With --topic there is always something to show: the topic's partitions.
            must_exist: filter.is_none(),
        })
        .collect())
}

/// One refresh: the targets (listed anew for --all-groups), a snapshot, the reports.
async fn look(
    cluster: &Cluster,
    args: &LagArgs,
    static_targets: &[Target],
    policy: &Policy,
    peeks: &mut Peeks,
) -> Result<Vec<GroupReport>, CliError> {
    let listed;
    let targets = if args.all_groups {
        let topics = (!args.topics.is_empty()).then(|| args.topics.clone());
        listed = crate::offsets::list_groups(cluster)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?
            .into_iter()
            .map(|group| Target {
                group,
                topics: topics.clone(),
                must_exist: false,
            })
            .collect::<Vec<_>>();
        &listed[..]
    } else {
        static_targets
    };
    let mut snap = snapshot(cluster, targets).await?;
    // The time lags: one small Fetch per leader for the waiting records not seen before.
    let wants = report::time_wants(targets, &snap, policy);
    timestamps::look(cluster, peeks, &wants, policy.read_committed()).await;
    snap.peeks = std::mem::take(peeks);
    snap.now_ms = now_ms();
    let reports = report::reports(targets, &snap, policy);
    *peeks = snap.peeks;
    Ok(reports)
}

/// One consistent look at every target: commits, members and topics together, then the ends.
async fn snapshot(cluster: &Cluster, targets: &[Target]) -> Result<Snapshot, CliError> {
    let queries: Vec<GroupQuery> = targets
        .iter()
        .map(|t| GroupQuery {
            group: t.group.clone(),
            topics: t.topics.clone(),
        })
        .collect();
    let groups: Vec<String> = targets.iter().map(|t| t.group.clone()).collect();
    let named_topics: Vec<String> = targets
        .iter()
        .flat_map(|t| t.topics.iter().flatten().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (committed, described, metadata) = tokio::join!(
        fetch_committed(cluster, &queries),
        describe_groups(cluster, &groups),
        async {
            if named_topics.is_empty() {
                None
            } else {
                Some(cluster.refresh_metadata(Some(&named_topics)).await)
            }
        }
    );
    let mut snap = Snapshot {
        committed,
        described,
        ..Snapshot::default()
    };
    if let Some(md) = metadata {
        let md = md?;
        for t in &named_topics {
            let answer = match md.topics.get(t) {
                None => Err("not in the metadata answer".to_string()),
                Some(m) if m.error_code != 0 => Err(error_name(m.error_code)),
                Some(m) if m.partitions.is_empty() => Err("no partitions".to_string()),
                Some(m) => Ok(m.partitions.keys().copied().collect()),
            };
            snap.topics.insert(t.clone(), answer);
        }
    }
    // The log ends of every partition any report will show.
    let all: Vec<TopicPartition> = targets
        .iter()
        .flat_map(|t| report::shown(t, &snap).0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !all.is_empty() {
        snap.ends = fetch_ends(cluster, &all).await;
    }
    snap.brokers = cluster.metadata().brokers.clone();
    Ok(snap)
}
