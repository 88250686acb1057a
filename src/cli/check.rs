//! `kafka-observer check`: validate a kafkadata mapping before deploying it — offline always,
//! and against the cluster when brokers are given (topics exist, partition counts agree).

use clap::Args;

use super::kafka::{KafkaArgs, ENV_BROKERS};
use super::observe::load_kafkadata;
use super::settings::env;
use super::CliError;
use crate::cluster::Cluster;

/// Validate a kafkadata mapping, offline or against the cluster.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// kafkadata mapping file [env: kafkadata holds the mapping itself]
    #[arg(long, value_name = "FILE")]
    pub kafkadata: Option<std::path::PathBuf>,
}

/// A line to stdout; a reader that went away (`check | head`) is not an error worth a panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `1 topic`, `2 topics`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

pub async fn run(a: CheckArgs) -> Result<(), CliError> {
    let data = load_kafkadata(&a.kafkadata)?;
    let jobs = data.jobs();
    say!(
        "kafkadata: {}, {}, {}: valid",
        count(data.topics.len(), "topic"),
        count(jobs.len(), "job"),
        count(data.groups().len(), "group")
    );
    for j in &jobs {
        say!(
            "  job {} (group {}) ← {}",
            j.name,
            j.consumer_group,
            j.topics.join(", ")
        );
    }
    if a.kafka.bootstrap.is_none() && env(ENV_BROKERS)?.is_none() {
        say!("no brokers given (--bootstrap): the cluster was not checked");
        return Ok(());
    }
    let kafka = a.kafka.resolve()?;
    let cluster = Cluster::new(kafka.bootstrap, kafka.options);
    let topics: Vec<String> = data.topics.iter().map(|t| t.name.clone()).collect();
    let md = cluster.refresh_metadata(Some(&topics)).await?;
    let mut problems = 0;
    for t in &data.topics {
        match md.topics.get(&t.name).filter(|m| m.error_code == 0) {
            None => {
                problems += 1;
                say!("  topic {}: does not exist in the cluster", t.name);
            }
            Some(m) => {
                let actual = m.partitions.len();
                match t.partitions {
                    Some(d) if d as usize != actual => say!(
                        "  topic {}: kafkadata says {d} partitions, the cluster has {actual} (the cluster's count is used)",
                        t.name
                    ),
                    _ => say!("  topic {}: {actual} partitions: ok", t.name),
                }
            }
        }
    }
    if problems > 0 {
        return Err(CliError::Runtime(format!(
            "{problems} topic(s) of the mapping do not exist in the cluster"
        )));
    }
    Ok(())
}
