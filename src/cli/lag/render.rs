//! The text views, in kafka-consumer-groups' columns so an operator reads them at a glance:
//! `--describe` (the default), `--members` and `--state`, plus one summary line per group.
//!
//! One table for all groups (kafka-consumer-groups prints one per group): easier to sort, grep
//! and watch. `-` marks a missing value exactly where kafka-consumer-groups prints one; `?` a
//! value that could not be read this time (the error follows the table).

use super::report::{GroupReport, TopicAssignment};

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Offsets,
    Members,
    State,
}

/// The whole text output of one refresh.
pub(super) fn render(reports: &[GroupReport], view: View) -> String {
    match view {
        View::Offsets => offsets(reports),
        View::Members => members(reports),
        View::State => state(reports),
    }
}

const DASH: &str = "-";

fn num(v: Option<i64>) -> String {
    v.map_or_else(|| DASH.to_string(), |v| v.to_string())
}

/// A time lag for a person: the two largest units, `0s`, `45s`, `3m12s`, `2h5m`, `3d4h`.
pub(super) fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// Columns left-aligned, two spaces apart, no trailing blanks; nothing when there are no rows.
fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push('\n');
    out
}

fn offsets(reports: &[GroupReport]) -> String {
    const HEAD: [&str; 12] = [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "LOG-START",
        "LAST-STABLE",
        "TIME-LAG",
    ];
    let mut rows = Vec::new();
    for r in reports {
        for p in &r.partitions {
            let unknown = |v: Option<i64>| {
                if p.error.is_some() && v.is_none() {
                    "?".to_string()
                } else {
                    num(v)
                }
            };
            let text = |v: &Option<String>| v.clone().unwrap_or_else(|| DASH.into());
            rows.push(vec![
                r.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                num(p.committed),
                unknown(p.high_watermark),
                if p.committed.is_some() {
                    unknown(p.lag)
                } else {
                    DASH.into()
                },
                text(&p.consumer_id),
                text(&p.host),
                text(&p.client_id),
                unknown(p.log_start),
                unknown(p.last_stable),
                p.time_lag_ms.map_or_else(|| "?".to_string(), duration),
            ]);
        }
    }
    let mut out = table(&HEAD, rows);
    for r in reports {
        out.push_str(&summary(r));
    }
    out
}

/// One line per group (and one per failed partition).
fn summary(r: &GroupReport) -> String {
    let mut out = String::new();
    let state = r.state.as_deref().unwrap_or("");
    if !r.exists {
        out.push_str(&does_not_exist(&r.group));
    } else if let Some(e) = &r.error {
        out.push_str(&format!("{}: error: {e}\n", r.group));
    } else if r.partitions.is_empty() && r.members.is_empty() {
        // What kafka-consumer-groups says of a group with neither members nor offsets.
        out.push_str(&no_active_members(&r.group));
    }
    if r.exists && !r.partitions.is_empty() {
        let mut line = format!(
            "{}: total lag {}, {} of {} {} lagging",
            r.group,
            r.total_lag,
            r.lagging_partitions,
            r.partitions.len(),
            plural(r.partitions.len(), "partition", "partitions"),
        );
        if r.unknown_partitions > 0 {
            line.push_str(&format!(", {} unknown", r.unknown_partitions));
        }
        if r.uncommitted_partitions > 0 {
            line.push_str(&format!(", {} without a commit", r.uncommitted_partitions));
        }
        match state {
            "Empty" => line.push_str("; no active members"),
            "PreparingRebalance" | "CompletingRebalance" => line.push_str("; rebalancing"),
            _ => {}
        }
        out.push_str(&line);
        out.push('\n');
    }
    for t in &r.missing_topics {
        out.push_str(&format!("Topic '{t}' does not exist.\n"));
    }
    for p in &r.partitions {
        if let Some(e) = &p.error {
            out.push_str(&format!("  {}-{}: {e}\n", p.topic, p.partition));
        }
    }
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// kafka-consumer-groups' words for a group that does not exist.
pub(super) fn does_not_exist(group: &str) -> String {
    format!("Consumer group '{group}' does not exist.\n")
}

/// kafka-consumer-groups' words for a group without members.
fn no_active_members(group: &str) -> String {
    format!("Consumer group '{group}' has no active members.\n")
}

/// Groups that cannot be shown at all in the members and state views.
fn absent(r: &GroupReport) -> Option<String> {
    if !r.exists {
        Some(does_not_exist(&r.group))
    } else {
        r.error
            .as_ref()
            .map(|e| format!("{}: error: {e}\n", r.group))
    }
}

/// `topic:0,1;other:3`, kafka-consumer-groups' assignment notation.
fn assignment(a: &[TopicAssignment]) -> String {
    if a.is_empty() {
        return DASH.into();
    }
    a.iter()
        .map(|t| {
            let ps: Vec<String> = t.partitions.iter().map(|p| p.to_string()).collect();
            format!("{}:{}", t.topic, ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn members(reports: &[GroupReport]) -> String {
    let static_ids = reports
        .iter()
        .flat_map(|r| &r.members)
        .any(|m| m.group_instance_id.is_some());
    let mut head = vec!["GROUP", "CONSUMER-ID"];
    if static_ids {
        head.push("GROUP-INSTANCE-ID");
    }
    head.extend(["HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"]);
    let mut rows = Vec::new();
    let mut notes = String::new();
    for r in reports {
        if let Some(n) = absent(r) {
            notes.push_str(&n);
            continue;
        }
        if r.members.is_empty() {
            notes.push_str(&no_active_members(&r.group));
        }
        for m in &r.members {
            let mut row = vec![r.group.clone(), m.consumer_id.clone()];
            if static_ids {
                row.push(m.group_instance_id.clone().unwrap_or_else(|| DASH.into()));
            }
            let count: usize = m.assignment.iter().map(|a| a.partitions.len()).sum();
            row.extend([
                m.host.clone(),
                m.client_id.clone(),
                count.to_string(),
                assignment(&m.assignment),
            ]);
            rows.push(row);
        }
    }
    table(&head, rows) + &notes
}

fn state(reports: &[GroupReport]) -> String {
    const HEAD: [&str; 5] = [
        "GROUP",
        "COORDINATOR (ID)",
        "ASSIGNMENT-STRATEGY",
        "STATE",
        "#MEMBERS",
    ];
    let mut rows = Vec::new();
    let mut notes = String::new();
    for r in reports {
        if let Some(n) = absent(r) {
            notes.push_str(&n);
            continue;
        }
        rows.push(vec![
            r.group.clone(),
            r.coordinator.as_ref().map_or_else(
                || DASH.into(),
                |c| format!("{}:{}  ({})", c.host, c.port, c.id),
            ),
            r.assignment_strategy.clone().unwrap_or_else(|| DASH.into()),
            r.state.clone().unwrap_or_else(|| DASH.into()),
            r.members.len().to_string(),
        ]);
    }
    table(&HEAD, rows) + &notes
}

#[cfg(test)]
mod tests {
    use super::super::report::{Coordinator, MemberReport, Row};
    use super::*;

    fn row(partition: i32, committed: Option<i64>, member: Option<&str>) -> Row {
        Row {
            topic: "payments".into(),
            partition,
            committed,
            log_start: Some(0),
            high_watermark: Some(10),
            last_stable: Some(10),
            lag: committed.map(|c| 10 - c),
            time_lag_ms: committed.map(|c| (10 - c) * 24_000),
            consumer_id: member.map(String::from),
            host: member.map(|_| "/127.0.0.1".into()),
            client_id: member.map(|_| "kafka-observer".into()),
            error: None,
        }
    }

    fn group(
        name: &str,
        state: &str,
        partitions: Vec<Row>,
        members: Vec<MemberReport>,
    ) -> GroupReport {
        GroupReport {
            group: name.into(),
            exists: state != "Dead",
            state: Some(state.into()),
            assignment_strategy: Some("range".into()),
            coordinator: Some(Coordinator {
                id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
            }),
            error: None,
            total_lag: partitions.iter().filter_map(|p| p.lag).sum(),
            lagging_partitions: partitions.iter().filter(|p| p.lag.unwrap_or(0) > 0).count(),
            unknown_partitions: 0,
            uncommitted_partitions: partitions.iter().filter(|p| p.committed.is_none()).count(),
            partitions,
            members,
            missing_topics: vec![],
            must_exist: true,
        }
    }

    fn member(id: &str, instance: Option<&str>, partitions: Vec<i32>) -> MemberReport {
        MemberReport {
            consumer_id: id.into(),
            group_instance_id: instance.map(String::from),
            host: "/127.0.0.1".into(),
            client_id: "kafka-observer".into(),
            assignment: vec![TopicAssignment {
                topic: "payments".into(),
                partitions,
            }],
        }
    }

    #[test]
    fn offsets_view_has_kafka_columns_then_ours() {
        let g = group(
            "g",
            "Stable",
            vec![row(0, Some(2), Some("m-1")), row(1, None, Some("m-1"))],
            vec![member("m-1", None, vec![0, 1])],
        );
        let text = render(&[g], View::Offsets);
        let lines: Vec<&str> = text.lines().collect();
        let cols: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
                "LOG-START",
                "LAST-STABLE",
                "TIME-LAG"
            ]
        );
        let r0: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            r0,
            [
                "g",
                "payments",
                "0",
                "2",
                "10",
                "8",
                "m-1",
                "/127.0.0.1",
                "kafka-observer",
                "0",
                "10",
                "3m12s"
            ]
        );
        let r1: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(r1[3..6], ["-", "10", "-"]);
        assert_eq!(r1[11], "?");
        assert_eq!(
            lines[4],
            "g: total lag 8, 1 of 2 partitions lagging, 1 without a commit"
        );
    }

    #[test]
    fn durations_for_a_person() {
        #[rustfmt::skip]
        let cases: &[(i64, &str)] = &[
            (0, "0s"), (999, "0s"), (1_000, "1s"), (59_999, "59s"), (60_000, "1m0s"),
            (192_000, "3m12s"), (3_599_000, "59m59s"), (3_600_000, "1h0m"), (7_500_000, "2h5m"),
            (86_399_000, "23h59m"), (86_400_000, "1d0h"), (273_600_000, "3d4h"), (-5, "0s"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(*ms), *want, "{ms}");
        }
    }

    #[test]
    fn summaries_say_what_kafka_says() {
        let dead = group("nobody", "Dead", vec![], vec![]);
        let empty = group("idle", "Empty", vec![], vec![]);
        let one = group("one", "Empty", vec![row(0, Some(10), None)], vec![]);
        let text = render(&[dead, empty, one], View::Offsets);
        assert!(
            text.contains("Consumer group 'nobody' does not exist.\n"),
            "{text}"
        );
        assert!(
            text.contains("Consumer group 'idle' has no active members.\n"),
            "{text}"
        );
        assert!(
            text.contains("one: total lag 0, 0 of 1 partition lagging; no active members\n"),
            "{text}"
        );
        // No rows at all: no header either.
        let text = render(&[group("nobody", "Dead", vec![], vec![])], View::Offsets);
        assert_eq!(text, "Consumer group 'nobody' does not exist.\n");
    }

    #[test]
    fn members_and_state_views() {
        let g = group(
            "g",
            "Stable",
            vec![],
            vec![
                member("m-1", None, vec![0, 2]),
                member("m-2", Some("pod-2"), vec![1]),
            ],
        );
        let dead = group("nobody", "Dead", vec![], vec![]);
        let text = render(&[g.clone(), dead.clone()], View::Members);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "GROUP",
                "CONSUMER-ID",
                "GROUP-INSTANCE-ID",
                "HOST",
                "CLIENT-ID",
                "#PARTITIONS",
                "ASSIGNMENT"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "g",
                "m-1",
                "-",
                "/127.0.0.1",
                "kafka-observer",
                "2",
                "payments:0,2"
            ]
        );
        assert!(
            text.ends_with("Consumer group 'nobody' does not exist.\n"),
            "{text}"
        );
        // Without static members there is no GROUP-INSTANCE-ID column, as in kafka-consumer-groups.
        let plain = group("g", "Stable", vec![], vec![member("m-1", None, vec![0])]);
        assert!(!render(&[plain], View::Members).contains("GROUP-INSTANCE-ID"));

        let text = render(&[g, dead], View::State);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("GROUP  COORDINATOR (ID)"), "{text}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["g", "127.0.0.1:9092", "(1)", "range", "Stable", "2"]
        );
        assert!(
            text.ends_with("Consumer group 'nobody' does not exist.\n"),
            "{text}"
        );
    }
}
