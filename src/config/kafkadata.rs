//! The kafkadata mapping: which Code Engine jobs consume which topics, in which groups.
//!
//! The format is the IBM sample's (a configmap whose file name, `kafkadata`, becomes an env
//! var), so existing deployments work unchanged. It is parsed into a YAML value first rather
//! than straight into structs so that every problem can name its exact place
//! (`payments.jobs[1].name`) and so unknown keys — usually typos like `consumer-group` that
//! would otherwise silently drop a setting — become warnings instead of either hard failures or
//! silence. The observer thinks in jobs and groups, not topics, so the derived views
//! [`Kafkadata::jobs`] and [`Kafkadata::groups`] live here, next to the checks that make them
//! consistent (one group per job).

use std::collections::{HashMap, HashSet};

use serde_norway::{Mapping, Value};

use super::ConfigError;

pub(crate) mod load;
pub(crate) mod wake;
pub(crate) use wake::WakePolicy;

/// The whole mapping, topics in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kafkadata {
    /// One entry per top-level key, in file order.
    pub topics: Vec<TopicSpec>,
}

/// One topic and the jobs that consume it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicSpec {
    /// Kafka topic name.
    pub name: String,
    /// The partition count the file claims (informational; the broker's metadata wins).
    pub partitions: Option<u32>,
    /// Consumer jobs, in file order; never empty.
    pub jobs: Vec<JobSpec>,
}

/// One `jobs:` entry under a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobSpec {
    /// Code Engine job name.
    pub name: String,
    /// Kafka consumer group the job commits to.
    pub consumer_group: String,
    /// When to wake it (optional keys; the default wakes at once).
    pub wake: WakePolicy,
}

/// A job with every topic it consumes, merged across the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// Code Engine job name.
    pub name: String,
    /// Its (single) consumer group.
    pub consumer_group: String,
    /// Topics in order of first appearance.
    pub topics: Vec<String>,
    /// Its wake-up policy (the same in every entry of the job: checked when parsing).
    pub wake: WakePolicy,
}

/// The largest mapping accepted, in bytes: what a Code Engine configmap can hold (1 MiB). The
/// loaders refuse anything larger before parsing, so a wrong file costs no memory or CPU.
pub(crate) const MAX_BYTES: usize = 1024 * 1024;

const TOPIC_KEYS: &[&str] = &["partitions", "jobs"];
const JOB_KEYS: &[&str] = &[
    "name",
    "consumer_group",
    "min_lag",
    "max_wait",
    "records_per_instance",
    "max_instances",
    "idle_timeout",
];
const EXAMPLE: &str =
    "payments: {partitions: 4, jobs: [{name: payments-consumer, consumer_group: payments-consumer-group}]}";

impl Kafkadata {
    /// Parses and validates a kafkadata document. `source` names where it came from (a file
    /// path, `env kafkadata`) for error messages. Returns the mapping and warnings about keys
    /// that were ignored or combinations that are legal but suspicious.
    pub(crate) fn parse(text: &str, source: &str) -> Result<(Kafkadata, Vec<String>), ConfigError> {
        let mut p = Parser {
            source,
            warnings: Vec::new(),
        };
        let data = p.document(text)?;
        p.cross_check(&data)?;
        Ok((data, p.warnings))
    }

    /// Each job once, with all its topics (order of first appearance).
    pub(crate) fn jobs(&self) -> Vec<Job> {
        let mut wake: HashMap<&str, WakePolicy> = HashMap::new();
        for spec in self.topics.iter().flat_map(|t| &t.jobs) {
            wake.entry(&spec.name).or_insert(spec.wake);
        }
        let mut out: Vec<Job> = Vec::new();
        for (name, group, topics) in self.merged(|s| &s.name, |s| &s.consumer_group) {
            out.push(Job {
                name: name.to_string(),
                consumer_group: group.to_string(),
                topics,
                wake: wake.get(name).copied().unwrap_or_default(),
            });
        }
        out
    }

    /// Each consumer group once with the topics it covers (order of first appearance): what
    /// the observer fetches committed offsets for.
    pub(crate) fn groups(&self) -> Vec<(String, Vec<String>)> {
        self.merged(|s| &s.consumer_group, |s| &s.consumer_group)
            .into_iter()
            .map(|(group, _, topics)| (group.to_string(), topics))
            .collect()
    }

    /// One entry per distinct `key` of the job specs, in order of first appearance, with the
    /// `extra` of its first spec and every topic it appears under (each once, in file order).
    /// Hash lookups keep this linear in the size of the mapping.
    fn merged<'a>(
        &'a self,
        key: impl Fn(&'a JobSpec) -> &'a str,
        extra: impl Fn(&'a JobSpec) -> &'a str,
    ) -> Vec<(&'a str, &'a str, Vec<String>)> {
        let mut out: Vec<(&str, &str, Vec<String>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut listed: HashSet<(usize, &str)> = HashSet::new();
        for topic in &self.topics {
            for spec in &topic.jobs {
                let i = *index.entry(key(spec)).or_insert_with(|| {
                    out.push((key(spec), extra(spec), Vec::new()));
                    out.len() - 1
                });
                if listed.insert((i, &topic.name)) {
                    out[i].2.push(topic.name.clone());
                }
            }
        }
        out
    }

    #[cfg(test)]
    /// The topic with this name, if listed.
    pub(crate) fn topic(&self, name: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.name == name)
    }
}

struct Parser<'a> {
    source: &'a str,
    warnings: Vec<String>,
}

impl Parser<'_> {
    fn err(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Kafkadata {
            origin: self.source.to_string(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn document(&mut self, text: &str) -> Result<Kafkadata, ConfigError> {
        let value: Value = serde_norway::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let mut message = e.to_string();
            if message.starts_with("duplicate entry") {
                message.push_str(
                    " (each topic, and each key of a job, may appear only once: merge the entries)",
                );
            }
            ConfigError::Yaml {
                origin: self.source.to_string(),
                line,
                column,
                message,
            }
        })?;
        let map = match &value {
            Value::Null => {
                return Err(self.err(
                    "(document)",
                    format!("the document is empty; map each topic to its jobs, e.g. '{EXAMPLE}'"),
                ))
            }
            Value::Mapping(m) if m.is_empty() => {
                return Err(self.err(
                    "(document)",
                    format!("no topics are listed; map each topic to its jobs, e.g. '{EXAMPLE}'"),
                ))
            }
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(
                    "(document)",
                    format!(
                        "expected a mapping of topic names to their settings, got {}; write it like '{EXAMPLE}'",
                        describe(other)
                    ),
                ))
            }
        };
        let mut topics = Vec::with_capacity(map.len());
        for (key, value) in map {
            topics.push(self.topic(key, value)?);
        }
        Ok(Kafkadata { topics })
    }

    fn topic(&mut self, key: &Value, value: &Value) -> Result<TopicSpec, ConfigError> {
        let name = match key {
            Value::String(s) => s.clone(),
            other => {
                return Err(self.err(
                    &yaml_text(other),
                    format!(
                        "a topic name must be a string, but YAML read {}; quote it, e.g. '\"{}\":'",
                        describe(other),
                        yaml_text(other)
                    ),
                ))
            }
        };
        if let Some(problem) = topic_name_problem(&name) {
            return Err(self.err(&name, problem));
        }
        let map = match value {
            Value::Mapping(m) => m,
            Value::Null => {
                return Err(self.err(
                    &name,
                    format!(
                    "topic '{name}' has no settings; add a 'jobs' list under it, e.g. '{EXAMPLE}'"
                ),
                ))
            }
            other => {
                return Err(self.err(
                    &name,
                    format!(
                        "expected the topic's settings ('partitions', 'jobs'), got {}",
                        describe(other)
                    ),
                ))
            }
        };
        self.unknown_keys(map, TOPIC_KEYS, &name);

        let partitions = match map.get("partitions") {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.partitions(v, &format!("{name}.partitions"))?),
        };

        let jobs_path = format!("{name}.jobs");
        let items = match map.get("jobs") {
            None | Some(Value::Null) => {
                return Err(self.err(
                    &jobs_path,
                    format!(
                        "topic '{name}' has no 'jobs'; list the Code Engine jobs that consume it, each with 'name' and 'consumer_group'"
                    ),
                ))
            }
            Some(Value::Sequence(items)) if items.is_empty() => {
                return Err(self.err(
                    &jobs_path,
                    format!("the jobs list of topic '{name}' is empty; add at least one job with 'name' and 'consumer_group'"),
                ))
            }
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                return Err(self.err(
                    &jobs_path,
                    format!(
                        "expected a list of jobs (lines starting with '- name:'), got {}",
                        describe(other)
                    ),
                ))
            }
        };
        let mut jobs: Vec<JobSpec> = Vec::with_capacity(items.len());
        let mut listed: HashSet<(String, String)> = HashSet::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{jobs_path}[{i}]");
            let job = self.job(item, &path)?;
            if !listed.insert((job.name.clone(), job.consumer_group.clone())) {
                self.warnings.push(format!(
                    "{path}: job '{}' is listed twice under topic '{name}'; the duplicate is ignored",
                    job.name
                ));
                continue;
            }
            jobs.push(job);
        }
        Ok(TopicSpec {
            name,
            partitions,
            jobs,
        })
    }

    fn partitions(&self, v: &Value, path: &str) -> Result<u32, ConfigError> {
        let bad = |what: String| {
            self.err(
                path,
                format!("'partitions' must be a whole number of at least 1, got {what}"),
            )
        };
        match v {
            Value::Number(n) => match n.as_u64() {
                Some(p) if p >= 1 && p <= i32::MAX as u64 => Ok(p as u32),
                _ => Err(bad(describe(v))),
            },
            Value::String(_) => Err(bad(format!("{}; remove the quotes", describe(v)))),
            _ => Err(bad(describe(v))),
        }
    }

    fn job(&mut self, item: &Value, path: &str) -> Result<JobSpec, ConfigError> {
        let map = match item {
            Value::Mapping(m) => m,
            other => {
                return Err(self.err(
                    path,
                    format!(
                        "expected a job with 'name' and 'consumer_group', got {}",
                        describe(other)
                    ),
                ))
            }
        };
        self.unknown_keys(map, JOB_KEYS, path);

        let name_path = format!("{path}.name");
        let name = self.string_field(map, "name", &name_path, "the Code Engine job to start")?;
        if let Some(problem) = job_name_problem(&name) {
            return Err(self.err(&name_path, problem));
        }
        let group_path = format!("{path}.consumer_group");
        let consumer_group = self.string_field(
            map,
            "consumer_group",
            &group_path,
            "the Kafka consumer group the job commits to",
        )?;
        let wake = wake::parse(map).map_err(|(key, message)| {
            self.err(&format!("{path}.{key}"), format!("job '{name}': {message}"))
        })?;
        Ok(JobSpec {
            name,
            consumer_group,
            wake,
        })
    }

    fn string_field(
        &self,
        map: &Mapping,
        key: &str,
        path: &str,
        meaning: &str,
    ) -> Result<String, ConfigError> {
        match map.get(key) {
            None | Some(Value::Null) => {
                Err(self.err(path, format!("'{key}' is missing; set it to {meaning}")))
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                Err(self.err(path, format!("'{key}' is empty; set it to {meaning}")))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(
                path,
                format!(
                    "'{key}' must be a string, got {}; quote it",
                    describe(other)
                ),
            )),
        }
    }

    fn unknown_keys(&mut self, map: &Mapping, known: &[&str], path: &str) {
        for key in map.keys() {
            if key.as_str().is_some_and(|k| known.contains(&k)) {
                continue;
            }
            let text = yaml_text(key);
            let hint = match suggest(&text, known) {
                Some(s) => format!(" (did you mean '{s}'?)"),
                None => format!(" (known keys: {})", known.join(", ")),
            };
            self.warnings
                .push(format!("{path}: unknown key '{text}'{hint}; it is ignored"));
        }
    }

    /// A job has exactly one consumer group; a group shared by several jobs is legal in Kafka but
    /// makes them split partitions, which is rarely intended (one warning per such group).
    /// Linear: one hash lookup per job entry (it used to compare every job with every other,
    /// 4.9 s for 20k jobs).
    fn cross_check(&mut self, data: &Kafkadata) -> Result<(), ConfigError> {
        // Job name → (group, topic, policy) of first sight, and the names in that order.
        let mut seen: HashMap<&str, (&str, &str, WakePolicy)> = HashMap::new();
        let mut order: Vec<(&str, &str)> = Vec::new();
        for topic in &data.topics {
            for (i, job) in topic.jobs.iter().enumerate() {
                match seen.get(job.name.as_str()) {
                    Some((_, first_topic, wake)) if *wake != job.wake => {
                        return Err(self.err(
                            &format!("{}.jobs[{i}]", topic.name),
                            format!(
                                "job '{}' has another wake-up policy here ({}) than under topic '{}' ({}); \
                                 a job has one policy, so set min_lag, max_wait, records_per_instance \
                                 and max_instances the same in every entry of the job",
                                job.name, job.wake, first_topic, wake
                            ),
                        ));
                    }
                    Some((group, first_topic, _)) if *group != job.consumer_group => {
                        return Err(self.err(
                            &format!("{}.jobs[{i}]", topic.name),
                            format!(
                                "job '{}' uses consumer group '{}' here but '{}' under topic '{}'; \
                                 a job has one consumer group, so use the same group in both places \
                                 or give one of them another job name",
                                job.name, job.consumer_group, group, first_topic
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(&job.name, (&job.consumer_group, &topic.name, job.wake));
                        order.push((&job.name, &job.consumer_group));
                    }
                }
            }
        }
        // Group → its jobs, groups in order of first use: one line per shared group.
        let mut jobs_of: HashMap<&str, usize> = HashMap::new();
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for (name, group) in order {
            let i = *jobs_of.entry(group).or_insert_with(|| {
                groups.push((group, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(name);
        }
        for (group, names) in groups.iter().filter(|(_, n)| n.len() > 1) {
            // 'a' and 'b'; 'a', 'b' and 'c'; ten of them and the rest counted.
            let quoted: Vec<String> = names.iter().take(10).map(|n| format!("'{n}'")).collect();
            let list = match (names.len(), quoted.split_last()) {
                (n, _) if n > 10 => format!("{} and {} more", quoted.join(", "), n - 10),
                (_, Some((last, rest))) => format!("{} and {last}", rest.join(", ")),
                (_, None) => String::new(),
            };
            self.warnings.push(format!(
                "consumer group '{group}' is shared by jobs {list}: they split its partitions, \
                 and the observer wakes one instance per lagging partition of the group, not per \
                 job ('kafka-observer check' explains the mapping)"
            ));
        }
        Ok(())
    }
}

/// Kafka's rule: 1–249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn topic_name_problem(name: &str) -> Option<String> {
    let rule = "a Kafka topic name is 1 to 249 letters, digits, '.', '_' or '-'";
    if name.is_empty() {
        return Some(format!("the topic name is empty; {rule}"));
    }
    if name == "." || name == ".." {
        return Some(format!(
            "'{name}' is not a valid Kafka topic name; {rule}, and not '.' or '..'"
        ));
    }
    if name.len() > 249 {
        return Some(format!(
            "the topic name is {} characters long; {rule}",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "'{name}' is not a valid Kafka topic name ({c:?} is not allowed); {rule}"
        ));
    }
    None
}

/// Code Engine's rule for job names.
fn job_name_problem(name: &str) -> Option<String> {
    let valid = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_lowercase()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    };
    if valid(name) {
        return None;
    }
    let fixed: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c == '_' || c == '.' || c == ' ' {
                '-'
            } else {
                c
            }
        })
        .collect();
    let hint = if valid(&fixed) {
        format!(" (e.g. '{fixed}')")
    } else {
        String::new()
    };
    Some(format!(
        "'{name}' is not a valid Code Engine job name: use lowercase letters, digits and '-', \
         start with a letter, end with a letter or digit, at most 63 characters{hint}"
    ))
}

/// The known key a typo most likely meant: same after normalising case and separators, a
/// common alias, or within edit distance 2.
fn suggest(key: &str, known: &[&str]) -> Option<&'static str> {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let k = norm(key);
    let aliases: &[(&str, &'static str)] = &[
        ("group", "consumer_group"),
        ("groupid", "consumer_group"),
        ("consumer", "consumer_group"),
        ("job", "name"),
        ("jobname", "name"),
        ("partition", "partitions"),
        ("job", "jobs"),
        ("consumers", "jobs"),
    ];
    for &(alias, target) in aliases {
        if k == alias && known.contains(&target) {
            return Some(target);
        }
    }
    let statics: [&'static str; 8] = [
        "partitions",
        "jobs",
        "name",
        "consumer_group",
        "min_lag",
        "max_wait",
        "records_per_instance",
        "max_instances",
    ];
    statics
        .into_iter()
        .filter(|s| known.contains(s))
        .map(|s| (edit_distance(&k, &norm(s)), s))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A short, human description of a YAML value for error messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string '{s}'"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// A scalar as it was probably written (for keys in paths and warnings).
fn yaml_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "~".into(),
        other => describe(other),
    }
}

#[cfg(test)]
mod tests;
