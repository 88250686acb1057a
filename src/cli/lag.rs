//! `kafka-observer lag`: per-partition offsets and lag of consumer groups, for a person or a
//! script, in one round trip per broker.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::kafka::KafkaArgs;
use super::{invalid, CliError};
use crate::cluster::Cluster;
use crate::config::kafkadata::Kafkadata;
use crate::lag::{EndKind, Policy, Summary};
use crate::offsets::{fetch_committed, fetch_ends, Ends, GroupQuery, OffsetsError, TopicPartition};

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

    /// Only these topics (repeatable); their uncommitted partitions are shown too
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,

    /// Every job's group and topics from a kafkadata mapping
    #[arg(long, value_name = "FILE", conflicts_with_all = ["groups", "all_groups"])]
    pub kafkadata: Option<PathBuf>,

    /// Which end lag is measured to
    #[arg(long, value_enum, default_value_t = Isolation::ReadCommitted)]
    pub isolation: Isolation,

    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,

    /// Refresh every SECONDS until interrupted
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<f64>,
}

/// The consumer's isolation level, which decides the end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Isolation {
    /// Up to the last stable offset (transactions committed)
    ReadCommitted,
    /// Up to the high watermark
    ReadUncommitted,
}

/// What to show: groups and, per group, a topic filter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    group: String,
    /// Show every partition of these topics; `None` = only the partitions the group committed.
    topics: Option<Vec<String>>,
}

/// One row of output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_start: Option<i64>,
    pub high_watermark: Option<i64>,
    pub last_stable: Option<i64>,
    pub lag: Option<i64>,
    pub error: Option<String>,
}

/// One group of output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GroupReport {
    pub group: String,
    pub error: Option<String>,
    pub total_lag: i64,
    pub lagging_partitions: usize,
    pub unknown_partitions: usize,
    /// Partitions listed (by --topic or --kafkadata) on which the group never committed.
    pub uncommitted_partitions: usize,
    pub partitions: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct Report {
    groups: Vec<GroupReport>,
}

pub async fn run(args: LagArgs) -> Result<(), CliError> {
    let kafka = args.kafka.resolve()?;
    if args.groups.is_empty() && !args.all_groups && args.kafkadata.is_none() {
        return Err(invalid(
            "--group",
            "say which groups to show: --group GROUP (repeatable), --all-groups, or --kafkadata FILE",
        ));
    }
    if let Some(w) = args.watch {
        if !(w.is_finite() && w >= 0.1) {
            return Err(invalid(
                "--watch",
                "must be a number of seconds, at least 0.1",
            ));
        }
    }
    let mut targets = static_targets(&args)?;
    let cluster = Cluster::new(kafka.bootstrap, kafka.options);
    // An unreachable cluster, wrong credentials or an untrusted certificate fail here, typed,
    // instead of as one error per partition; the connection is the one the snapshot reuses.
    cluster.any().await?;
    let policy = Policy {
        end: match args.isolation {
            Isolation::ReadCommitted => EndKind::LastStable,
            Isolation::ReadUncommitted => EndKind::HighWatermark,
        },
        ..Policy::default()
    };
    loop {
        if args.all_groups {
            let topics = (!args.topics.is_empty()).then(|| args.topics.clone());
            targets = crate::offsets::list_groups(&cluster)
                .await
                .map_err(|e| CliError::Runtime(e.to_string()))?
                .into_iter()
                .map(|group| Target {
                    group,
                    topics: topics.clone(),
                })
                .collect();
        }
        let reports = snapshot(&cluster, &targets, &policy).await?;
        let failed = reports
            .iter()
            .any(|r| r.error.is_some() || r.unknown_partitions > 0);
        let text = if args.json {
            serde_json::to_string_pretty(&Report {
                groups: reports.clone(),
            })
            .map_err(|e| CliError::Runtime(e.to_string()))?
                + "\n"
        } else {
            render(&reports)
        };
        let mut out = std::io::stdout().lock();
        let Some(every) = args.watch else {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            if failed {
                return Err(CliError::Runtime(
                    "some offsets could not be read (see the errors above)".into(),
                ));
            }
            return Ok(());
        };
        // Home, clear screen, then the fresh report: refresh in place.
        let _ = write!(out, "\x1b[H\x1b[2J{text}");
        let _ = out.flush();
        drop(out);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(every)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
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
        })
        .collect())
}

/// One consistent look at every target: one committed-offsets pass, one ends pass.
async fn snapshot(
    cluster: &Cluster,
    targets: &[Target],
    policy: &Policy,
) -> Result<Vec<GroupReport>, CliError> {
    let queries: Vec<GroupQuery> = targets
        .iter()
        .map(|t| GroupQuery {
            group: t.group.clone(),
            topics: t.topics.clone(),
        })
        .collect();
    let named_topics: Vec<String> = targets
        .iter()
        .flat_map(|t| t.topics.iter().flatten().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (committed, metadata) = tokio::join!(fetch_committed(cluster, &queries), async {
        if named_topics.is_empty() {
            None
        } else {
            Some(cluster.refresh_metadata(Some(&named_topics)).await)
        }
    });
    let metadata = match metadata {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(md)) => Some(md),
        None => None,
    };
    // The partitions of each group: its commits, plus every partition of the named topics.
    let mut per_group: Vec<(String, BTreeSet<TopicPartition>)> = Vec::new();
    for t in targets {
        let mut tps = BTreeSet::new();
        if let Some(Ok(offsets)) = committed.get(&t.group) {
            tps.extend(offsets.committed.keys().cloned());
            tps.extend(offsets.errors.keys().cloned());
        }
        if let (Some(topics), Some(md)) = (&t.topics, &metadata) {
            for topic in topics {
                let topic: std::sync::Arc<str> = topic.as_str().into();
                match md.topics.get(&*topic) {
                    Some(tm) if !tm.partitions.is_empty() => tps.extend(
                        tm.partitions
                            .keys()
                            .map(|p| TopicPartition::new(topic.clone(), *p)),
                    ),
                    _ => {
                        tps.insert(TopicPartition::new(topic, 0));
                    }
                }
            }
        }
        per_group.push((t.group.clone(), tps));
    }
    let all: Vec<TopicPartition> = per_group
        .iter()
        .flat_map(|(_, tps)| tps.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ends = if all.is_empty() {
        BTreeMap::new()
    } else {
        fetch_ends(cluster, &all).await
    };
    let mut reports = Vec::new();
    for (group, tps) in per_group {
        let group_result = committed.get(&group);
        let mut rows = Vec::new();
        for tp in tps {
            let (c, commit_error) = match group_result {
                Some(Ok(o)) => (
                    o.committed.get(&tp).map(|c| c.offset),
                    o.errors.get(&tp).map(ToString::to_string),
                ),
                _ => (None, None),
            };
            rows.push(row(&tp, ends.get(&tp), c, commit_error, policy));
        }
        let error = match group_result {
            Some(Err(e)) => Some(e.to_string()),
            None => Some("no answer for this group".into()),
            _ => None,
        };
        let summary = Summary::of(
            rows.iter()
                .filter(|r| r.committed.is_some() || r.error.is_some())
                .map(|r| r.lag),
        );
        reports.push(GroupReport {
            group,
            error,
            total_lag: summary.total_lag,
            lagging_partitions: summary.lagging_partitions,
            unknown_partitions: summary.unknown_partitions,
            uncommitted_partitions: rows
                .iter()
                .filter(|r| r.committed.is_none() && r.error.is_none())
                .count(),
            partitions: rows,
        });
    }
    Ok(reports)
}

fn row(
    tp: &TopicPartition,
    ends: Option<&Result<Ends, OffsetsError>>,
    committed: Option<i64>,
    commit_error: Option<String>,
    policy: &Policy,
) -> Row {
    let (e, ends_error) = match ends {
        Some(Ok(e)) => (Some(*e), None),
        Some(Err(msg)) => (None, Some(msg.to_string())),
        None => (None, Some("no answer".into())),
    };
    Row {
        topic: tp.topic.to_string(),
        partition: tp.partition,
        committed,
        log_start: e.map(|e| e.log_start),
        high_watermark: e.map(|e| e.high_watermark),
        last_stable: e.map(|e| e.last_stable),
        lag: match (e, committed) {
            (Some(e), Some(c)) => Some(policy.lag(&e, Some(c))),
            _ => None,
        },
        error: commit_error.or(ends_error),
    }
}

/// The text table, like kafka-consumer-groups --describe, plus a summary line per group.
pub fn render(reports: &[GroupReport]) -> String {
    const HEAD: [&str; 8] = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "COMMITTED",
        "LOG-START",
        "HIGH-WATERMARK",
        "LAST-STABLE",
        "LAG",
    ];
    let num = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut table: Vec<[String; 8]> = vec![HEAD.map(String::from)];
    for r in reports {
        for p in &r.partitions {
            let unknown = |v: Option<i64>| {
                if p.error.is_some() && v.is_none() {
                    "?".to_string()
                } else {
                    num(v)
                }
            };
            table.push([
                r.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                num(p.committed),
                unknown(p.log_start),
                unknown(p.high_watermark),
                unknown(p.last_stable),
                if p.committed.is_some() {
                    unknown(p.lag)
                } else {
                    "-".into()
                },
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| table.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &table {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push('\n');
    for r in reports {
        match &r.error {
            Some(e) => out.push_str(&format!("{}: error: {e}\n", r.group)),
            None if r.partitions.is_empty() => out.push_str(&format!(
                "{}: no committed offsets (the group does not exist or never committed)\n",
                r.group
            )),
            None => {
                let mut line = format!(
                    "{}: total lag {}, {} of {} partitions lagging",
                    r.group,
                    r.total_lag,
                    r.lagging_partitions,
                    r.partitions.len()
                );
                if r.unknown_partitions > 0 {
                    line.push_str(&format!(", {} unknown", r.unknown_partitions));
                }
                if r.uncommitted_partitions > 0 {
                    line.push_str(&format!(", {} without a commit", r.uncommitted_partitions));
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        for p in &r.partitions {
            if let Some(e) = &p.error {
                out.push_str(&format!("  {}-{}: {e}\n", p.topic, p.partition));
            }
        }
    }
    out
}
