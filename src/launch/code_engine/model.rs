//! The job-run shapes of the Code Engine v2 API, as much of them as the observer needs.
//!
//! Reading is lenient — unknown fields are ignored, missing or `null` ones take defaults —
//! because the API adds fields over versions and the observer must not break on them. Writing
//! is minimal: a create request carries only what is set, exactly like the seed's
//! `{"job_name": J, "scale_array_spec": "0-(n-1)"}`, so the job's own configuration applies to
//! everything else.

use serde::{Deserialize, Deserializer, Serialize};

/// A request to start one job run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateJobRun {
    pub job_name: String,
    /// e.g. `"0-3"`; empty = not sent (the job's own array spec applies).
    pub scale_array_spec: String,
    /// Literal environment variables for this run only; sent only when non-empty.
    pub run_env_variables: Vec<(String, String)>,
}

impl Serialize for CreateJobRun {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct EnvVar<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'a str,
            value: &'a str,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            job_name: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            scale_array_spec: &'a str,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            run_env_variables: Vec<EnvVar<'a>>,
        }
        Wire {
            job_name: &self.job_name,
            scale_array_spec: &self.scale_array_spec,
            run_env_variables: self
                .run_env_variables
                .iter()
                .map(|(name, value)| EnvVar {
                    kind: "literal",
                    name,
                    value,
                })
                .collect(),
        }
        .serialize(s)
    }
}

/// A job run as the API reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct JobRun {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub job_name: String,
    pub id: Option<String>,
    /// completed | failed | pending | running
    pub status: Option<String>,
    pub scale_array_spec: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub status_details: StatusDetails,
}

/// Instance counts of one job run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StatusDetails {
    #[serde(deserialize_with = "nullable")]
    pub requested: u32,
    #[serde(deserialize_with = "nullable")]
    pub pending: u32,
    #[serde(deserialize_with = "nullable")]
    pub running: u32,
    #[serde(deserialize_with = "nullable")]
    pub succeeded: u32,
    #[serde(deserialize_with = "nullable")]
    pub failed: u32,
    #[serde(deserialize_with = "nullable")]
    pub unknown: u32,
}

impl StatusDetails {
    /// Instances that are, or are about to be, running: `requested + pending + running`.
    pub fn active(&self) -> u32 {
        self.requested
            .saturating_add(self.pending)
            .saturating_add(self.running)
    }
}

#[cfg(test)]
/// The seed's count of a job's active instances: Σ over its runs of requested + pending + running.
pub(crate) fn active_count(runs: &[JobRun]) -> u32 {
    runs.iter()
        .fold(0u32, |n, r| n.saturating_add(r.status_details.active()))
}

/// Instance counts of one job summed over its runs, as ListJobRuns pages stream past.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTally {
    pub runs: u32,
    /// Requested + pending + running (the seed's count).
    pub active: u32,
    /// Succeeded + failed + unknown.
    pub ended: u64,
    pub failed: u64,
}

impl RunTally {
    fn add(&mut self, r: &JobRun) {
        let d = &r.status_details;
        self.runs = self.runs.saturating_add(1);
        self.active = self.active.saturating_add(d.active());
        self.ended = self
            .ended
            .saturating_add(u64::from(d.succeeded) + u64::from(d.failed) + u64::from(d.unknown));
        self.failed = self.failed.saturating_add(u64::from(d.failed));
    }

    /// This tally plus another page's.
    pub fn plus(self, o: RunTally) -> RunTally {
        RunTally {
            runs: self.runs.saturating_add(o.runs),
            active: self.active.saturating_add(o.active),
            ended: self.ended.saturating_add(o.ended),
            failed: self.failed.saturating_add(o.failed),
        }
    }
}

/// One page of ListJobRuns, read without keeping its runs: each run is decoded, counted into
/// the tally when it belongs to `job`, and dropped, so memory does not grow with the page.
#[derive(Debug, Default)]
pub(crate) struct PageTally {
    pub tally: RunTally,
    pub next: Option<String>,
}

/// Reads one page body for `job`.
pub(crate) fn tally_page(body: &[u8], job: &str) -> Result<PageTally, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut d = serde_json::Deserializer::from_slice(body);
    let page = PageSeed { job }.deserialize(&mut d)?;
    d.end()?;
    Ok(page)
}

struct PageSeed<'a> {
    job: &'a str,
}

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed<'_> {
    type Value = PageTally;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PageTally, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed<'_> {
    type Value = PageTally;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a ListJobRuns page (a JSON object)")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PageTally, A::Error> {
        let mut page = PageTally::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "job_runs" => page.tally = map.next_value_seed(RunsSeed { job: self.job })?,
                "next" => {
                    page.next = map
                        .next_value::<Option<PageRef>>()?
                        .and_then(|n| n.start)
                        .filter(|s| !s.is_empty())
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(page)
    }
}

struct RunsSeed<'a> {
    job: &'a str,
}

impl<'de> serde::de::DeserializeSeed<'de> for RunsSeed<'_> {
    type Value = RunTally;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RunTally, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for RunsSeed<'_> {
    type Value = RunTally;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of job runs or null")
    }

    fn visit_unit<E>(self) -> Result<RunTally, E> {
        Ok(RunTally::default())
    }

    fn visit_none<E>(self) -> Result<RunTally, E> {
        Ok(RunTally::default())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RunTally, A::Error> {
        let mut t = RunTally::default();
        while let Some(run) = seq.next_element::<JobRun>()? {
            // The API filters by job; a server that ignored the filter must not make other
            // jobs' instances count for this one.
            if run.job_name == self.job {
                t.add(&run);
            }
        }
        Ok(t)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PageRef {
    pub start: Option<String>,
}

/// `null` reads as the default, like a missing field.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_body_has_only_what_is_set() {
        let cases = [
            (
                CreateJobRun {
                    job_name: "orders".into(),
                    scale_array_spec: "0-1".into(),
                    ..Default::default()
                },
                json!({"job_name": "orders", "scale_array_spec": "0-1"}),
            ),
            (
                CreateJobRun {
                    job_name: "orders".into(),
                    ..Default::default()
                },
                json!({"job_name": "orders"}),
            ),
            (
                CreateJobRun {
                    job_name: "j".into(),
                    scale_array_spec: "0-0".into(),
                    run_env_variables: vec![("A".into(), "1".into()), ("B".into(), "x y".into())],
                },
                json!({"job_name": "j", "scale_array_spec": "0-0", "run_env_variables": [
                    {"type": "literal", "name": "A", "value": "1"},
                    {"type": "literal", "name": "B", "value": "x y"},
                ]}),
            ),
        ];
        for (req, want) in cases {
            assert_eq!(serde_json::to_value(&req).unwrap(), want);
        }
    }

    #[test]
    fn job_run_reading_is_lenient() {
        let full = json!({
            "name": "orders-jobrun-abcde", "job_name": "orders", "id": "42", "project_id": "p",
            "created_at": "2025-01-01T00:00:00Z", "status": "running", "scale_array_spec": "0-2",
            "status_details": {"requested": 1, "pending": 1, "running": 1, "succeeded": 0,
                "failed": 0, "unknown": 0, "start_time": "t", "running_indices": "2"},
            "some_future_field": {"x": [1, 2]}
        });
        let r: JobRun = serde_json::from_value(full).unwrap();
        assert_eq!(r.name, "orders-jobrun-abcde");
        assert_eq!(r.status.as_deref(), Some("running"));
        assert_eq!(r.status_details.active(), 3);

        for sparse in [
            json!({}),
            json!({"name": null, "status_details": null}),
            json!({"status_details": {"running": null}}),
        ] {
            let r: JobRun = serde_json::from_value(sparse.clone()).unwrap();
            assert_eq!(r.status_details, StatusDetails::default(), "{sparse}");
            assert_eq!(r.name, "");
        }
        // hostile counts are an error, not a wrap-around
        assert!(
            serde_json::from_value::<JobRun>(json!({"status_details": {"running": -1}})).is_err()
        );
    }

    #[test]
    fn active_count_table() {
        let run = |requested, pending, running, succeeded| JobRun {
            status_details: StatusDetails {
                requested,
                pending,
                running,
                succeeded,
                ..Default::default()
            },
            ..Default::default()
        };
        let cases = [
            (vec![], 0),
            (vec![run(0, 0, 0, 5)], 0),
            (vec![run(1, 2, 3, 9)], 6),
            (vec![run(0, 0, 2, 0), run(1, 0, 0, 0), run(0, 0, 0, 3)], 3),
            (vec![run(u32::MAX, 1, 1, 0), run(5, 0, 0, 0)], u32::MAX),
        ];
        for (runs, want) in cases {
            assert_eq!(active_count(&runs), want);
        }
    }

    #[test]
    fn list_pages_are_tallied_per_job() {
        let run = |job: &str, details: serde_json::Value| {
            json!({"name": "r", "job_name": job, "status": "x", "status_details": details,
                "huge_future_field": "x".repeat(1000)})
        };
        let body = json!({
            "job_runs": [
                run("j", json!({"running": 2, "pending": 1})),
                run("j", json!({"succeeded": 1, "failed": 2, "unknown": 1})),
                run("other", json!({"running": 9, "failed": 9})),
                run("j", json!(null)),
            ],
            "limit": 100, "first": {"href": "h"}, "next": {"href": "h2", "start": "tok"}
        })
        .to_string();
        let page = tally_page(body.as_bytes(), "j").unwrap();
        assert_eq!(
            page.tally,
            RunTally {
                runs: 3,
                active: 3,
                ended: 4,
                failed: 2
            }
        );
        assert_eq!(page.next.as_deref(), Some("tok"));
        for (body, next) in [
            (r#"{"job_runs": null}"#, None),
            (r#"{"job_runs": [], "next": {"start": ""}}"#, None),
            (r#"{"next": null}"#, None),
            (r#"{}"#, None),
        ] {
            let p = tally_page(body.as_bytes(), "j").unwrap();
            assert_eq!((p.tally, p.next), (RunTally::default(), next), "{body}");
        }
        for bad in [
            "[]",
            r#"{"job_runs": 5}"#,
            r#"{"job_runs": [{"status_details": {"running": -1}}]}"#,
            r#"{"job_runs": []} trailing"#,
            "",
        ] {
            assert!(tally_page(bad.as_bytes(), "j").is_err(), "{bad}");
        }
    }
}
