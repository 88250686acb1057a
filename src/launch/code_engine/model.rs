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

/// The seed's count of a job's active instances: Σ over its runs of requested + pending + running.
pub fn active_count(runs: &[JobRun]) -> u32 {
    runs.iter()
        .fold(0u32, |n, r| n.saturating_add(r.status_details.active()))
}

/// One page of ListJobRuns.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct JobRunList {
    #[serde(deserialize_with = "nullable")]
    pub job_runs: Vec<JobRun>,
    pub next: Option<PageRef>,
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
    fn list_page() {
        let page: JobRunList = serde_json::from_value(json!({
            "job_runs": [{"name": "a"}], "limit": 2,
            "first": {"href": "h"}, "next": {"href": "h2", "start": "tok"}
        }))
        .unwrap();
        assert_eq!(page.job_runs.len(), 1);
        assert_eq!(page.next.unwrap().start.as_deref(), Some("tok"));
        let last: JobRunList = serde_json::from_value(json!({"job_runs": null})).unwrap();
        assert!(last.job_runs.is_empty() && last.next.is_none());
    }
}
