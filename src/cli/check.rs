//! `kafka-observer check`: validate a kafkadata mapping before deploying it — offline always,
//! and against the cluster when brokers are given (topics exist, partition counts agree).
//!
//! A consumer group shared by several jobs is legal, and sometimes meant, but it changes what a
//! job is: its instances split the group's partitions with the other jobs' instances, so a job
//! may see only part of its topics, and the observer plans the group as a whole. `check` says
//! so, group by group, instead of calling such a mapping plainly valid.

use std::collections::HashMap;

use clap::Args;

use super::kafka::KafkaArgs;
use super::observe::load_kafkadata;
use super::CliError;
use crate::cluster::Cluster;
use crate::config::env::ProcessEnv;
use crate::config::kafka::brokers_given;
use crate::config::kafkadata::Job;

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

/// At most this many names in one list; the rest are counted.
const NAMES: usize = 10;

/// `a, b, c`, or `a, b, … and 7 more` past [`NAMES`].
fn names<'a>(list: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = list.len();
    let shown: Vec<&str> = list.take(NAMES).collect();
    match n.saturating_sub(NAMES) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The groups shared by several jobs, explained: their lines, and how many there are. Linear in
/// the size of the mapping.
fn shared_groups(jobs: &[Job], groups: &[(String, Vec<String>)]) -> (Vec<String>, usize) {
    let mut by_group: HashMap<&str, Vec<&Job>> = HashMap::new();
    for j in jobs {
        by_group.entry(&j.consumer_group).or_default().push(j);
    }
    let mut lines = Vec::new();
    let mut shared = 0;
    for (group, topics) in groups {
        let Some(members) = by_group.get(group.as_str()).filter(|m| m.len() > 1) else {
            continue;
        };
        shared += 1;
        let mut readers: HashMap<&str, Vec<&str>> = HashMap::new();
        for j in members {
            for t in &j.topics {
                readers.entry(t).or_default().push(&j.name);
            }
        }
        lines.push(format!(
            "  group {group} is shared by {} ({}):",
            count(members.len(), "job"),
            names(members.iter().map(|j| j.name.as_str()))
        ));
        lines.push(
            "    they split its partitions: each partition goes to one member, whatever its job"
                .into(),
        );
        for t in topics {
            let r = readers.get(t.as_str()).map_or(&[][..], Vec::as_slice);
            let only = if r.len() == 1 && members.len() > 1 {
                " only"
            } else {
                ""
            };
            lines.push(format!(
                "    topic {t} is read by {}{only}",
                names(r.iter().copied())
            ));
        }
        lines.push(
            "    the observer wakes one instance per lagging partition of the group, not per job"
                .into(),
        );
        lines.push(
            "    (a job that must see every record of its topics needs a consumer_group of its own)"
                .into(),
        );
    }
    (lines, shared)
}

pub async fn run(a: CheckArgs) -> Result<(), CliError> {
    let data = load_kafkadata(&a.kafkadata)?;
    let jobs = data.jobs();
    let groups = data.groups();
    let (explained, shared) = shared_groups(&jobs, &groups);
    let verdict = match shared {
        0 => "valid".to_string(),
        1 => "valid; 1 group is shared by several jobs (see below)".to_string(),
        n => format!("valid; {n} groups are shared by several jobs (see below)"),
    };
    say!(
        "kafkadata: {}, {}, {}: {verdict}",
        count(data.topics.len(), "topic"),
        count(jobs.len(), "job"),
        count(groups.len(), "group")
    );
    for j in &jobs {
        say!(
            "  job {} (group {}) ← {}",
            j.name,
            j.consumer_group,
            j.topics.join(", ")
        );
        // The effective wake-up policy, where the mapping sets one (kafkadata `min_lag`, …).
        if !j.wake.is_default() {
            say!("    wake-up: {}", j.wake);
        }
    }
    for line in explained {
        say!("{line}");
    }
    if !brokers_given(&ProcessEnv, &a.kafka.bootstrap)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kafkadata::Kafkadata;

    fn explain(yaml: &str) -> (Vec<String>, usize) {
        let (data, _) = Kafkadata::parse(yaml, "test").unwrap();
        shared_groups(&data.jobs(), &data.groups())
    }

    #[test]
    fn groups_of_one_job_need_no_explanation() {
        let yaml = "a: {jobs: [{name: ja, consumer_group: ga}, {name: jb, consumer_group: gb}]}\n\
                    b: {jobs: [{name: ja, consumer_group: ga}]}\n";
        assert_eq!(explain(yaml), (vec![], 0));
    }

    #[test]
    fn a_shared_group_is_explained_topic_by_topic() {
        let yaml = "t1: {jobs: [{name: j1, consumer_group: g}, {name: j2, consumer_group: g}, {name: j3, consumer_group: g}]}\n\
                    t2: {jobs: [{name: j2, consumer_group: g}, {name: j3, consumer_group: g}]}\n\
                    t3: {jobs: [{name: j3, consumer_group: g}, {name: other, consumer_group: h}]}\n";
        let (lines, n) = explain(yaml);
        assert_eq!(n, 1);
        assert_eq!(
            lines,
            [
                "  group g is shared by 3 jobs (j1, j2, j3):",
                "    they split its partitions: each partition goes to one member, whatever its job",
                "    topic t1 is read by j1, j2, j3",
                "    topic t2 is read by j2, j3",
                "    topic t3 is read by j3 only",
                "    the observer wakes one instance per lagging partition of the group, not per job",
                "    (a job that must see every record of its topics needs a consumer_group of its own)",
            ]
        );
    }

    #[test]
    fn long_lists_are_cut() {
        let jobs: String = (0..25)
            .map(|i| format!("{{name: j{i}, consumer_group: g}}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (lines, n) = explain(&format!("t: {{jobs: [{jobs}]}}\n"));
        assert_eq!(n, 1);
        assert_eq!(
            lines[0],
            "  group g is shared by 25 jobs (j0, j1, j2, j3, j4, j5, j6, j7, j8, j9 and 15 more):"
        );
    }
}
