//! What `lag` shows, built from one snapshot: a pure function of committed offsets, group
//! descriptions, topic partitions and log ends, so every rule is table-tested without a broker.
//!
//! Lag goes through the observer's own function ([`group_lag`]), so `lag` and `observe` cannot
//! disagree on a partition: what differs is only presentation — a partition without a commit
//! shows `-` for its offset and lag, as kafka-consumer-groups prints it, where the observer
//! counts it from the start its `--offset-reset` gives.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::config::brokers::BrokerAddr;
use crate::lag::group::{commit_of, group_lag};
use crate::lag::{Policy, Summary};
use crate::offsets::timestamps::{time_lag_ms, wanted, Peeks, Want};
use crate::offsets::{Ends, GroupDescription, GroupOffsets, OffsetsError, TopicPartition};

/// What to show: a group and, optionally, the topics whose every partition is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub group: String,
    /// Show every partition of these topics; `None` = the group's commits and assignments only.
    pub topics: Option<Vec<String>>,
    /// Named with `--group` and no `--topic`: a group that does not exist leaves nothing to
    /// show, an error (exit 1). With topics its partitions are shown anyway; groups of a
    /// kafkadata mapping may not exist yet (no consumer ran): that is shown, not an error.
    pub must_exist: bool,
}

/// Everything one look at the cluster returned.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    pub committed: BTreeMap<String, Result<GroupOffsets, OffsetsError>>,
    pub described: BTreeMap<String, Result<GroupDescription, OffsetsError>>,
    /// Partitions of each topic a target names; `Err` = why it has none (does not exist, …).
    pub topics: BTreeMap<String, Result<Vec<i32>, String>>,
    pub ends: BTreeMap<TopicPartition, Result<Ends, OffsetsError>>,
    pub brokers: HashMap<i32, BrokerAddr>,
    /// What the first waiting records' timestamps are (see `offsets::timestamps`).
    pub peeks: Peeks,
    /// The time the time lags are computed at (ms since the epoch).
    pub now_ms: i64,
}

/// One row: kafka-consumer-groups' columns, then ours.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Row {
    pub topic: String,
    pub partition: i32,
    /// CURRENT-OFFSET: the committed offset; `None` when the group never committed here.
    pub committed: Option<i64>,
    pub log_start: Option<i64>,
    /// LOG-END-OFFSET.
    pub high_watermark: Option<i64>,
    pub last_stable: Option<i64>,
    pub lag: Option<i64>,
    /// TIME-LAG: age of the first record the group would read next, in milliseconds (0 when
    /// nothing waits; from where `--offset-reset` starts without a commit); `None` = unknown.
    pub time_lag_ms: Option<i64>,
    pub consumer_id: Option<String>,
    pub host: Option<String>,
    pub client_id: Option<String>,
    pub error: Option<String>,
}

/// One member, as `--members` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct MemberReport {
    pub consumer_id: String,
    pub group_instance_id: Option<String>,
    pub host: String,
    pub client_id: String,
    pub assignment: Vec<TopicAssignment>,
}

/// Some partitions of one topic.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct TopicAssignment {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// The coordinator, as `--state` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Coordinator {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// One group of output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct GroupReport {
    pub group: String,
    /// False when the group has no member and no commit (DescribeGroups says `Dead`).
    pub exists: bool,
    /// `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Dead`; `None` when
    /// DescribeGroups failed.
    pub state: Option<String>,
    pub assignment_strategy: Option<String>,
    pub coordinator: Option<Coordinator>,
    pub error: Option<String>,
    pub total_lag: i64,
    pub lagging_partitions: usize,
    pub unknown_partitions: usize,
    /// Partitions listed (assigned, or by --topic / --kafkadata) on which the group never
    /// committed.
    pub uncommitted_partitions: usize,
    pub partitions: Vec<Row>,
    pub members: Vec<MemberReport>,
    /// Topics this group was asked about that the cluster does not have (or hides).
    pub missing_topics: Vec<String>,
    #[serde(skip)]
    pub must_exist: bool,
}

impl GroupReport {
    /// Something asked for could not be shown: exit 1.
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
            || self.unknown_partitions > 0
            || !self.missing_topics.is_empty()
            || (self.must_exist && !self.exists)
    }
}

/// The reports of `targets`, in their order.
pub(super) fn reports(targets: &[Target], snap: &Snapshot, policy: &Policy) -> Vec<GroupReport> {
    targets.iter().map(|t| report(t, snap, policy)).collect()
}

/// The partitions `t` shows — its commits and refusals, its members' assignments, every
/// partition of the topics it names — and the named topics the cluster does not have.
pub(super) fn shown(t: &Target, snap: &Snapshot) -> (BTreeSet<TopicPartition>, Vec<String>) {
    let wanted = |topic: &str| {
        t.topics
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|x| x == topic))
    };
    let mut tps: BTreeSet<TopicPartition> = BTreeSet::new();
    if let Some(Ok(o)) = snap.committed.get(&t.group) {
        tps.extend(o.committed.keys().cloned());
        tps.extend(o.errors.keys().cloned());
    }
    if let Some(Ok(d)) = snap.described.get(&t.group) {
        tps.extend(d.members.iter().flat_map(|m| m.assignment.iter().cloned()));
    }
    tps.retain(|tp| wanted(&tp.topic));
    let mut missing_topics = Vec::new();
    for topic in t.topics.iter().flatten() {
        match snap.topics.get(topic) {
            Some(Ok(ps)) => tps.extend(ps.iter().map(|p| TopicPartition::new(topic.as_str(), *p))),
            _ => missing_topics.push(topic.clone()),
        }
    }
    (tps, missing_topics)
}

/// The records whose timestamps the time lags of `targets` need: (partition, from, end), once
/// each (pure; ends and commits must be in `snap`).
pub(super) fn time_wants(
    targets: &[Target],
    snap: &Snapshot,
    policy: &Policy,
) -> Vec<(TopicPartition, i64, i64)> {
    let mut out = BTreeSet::new();
    for t in targets {
        let committed = snap.committed.get(&t.group);
        for tp in shown(t, snap).0 {
            let e = snap.ends.get(&tp).and_then(|e| e.as_ref().ok());
            if let Want::From { from, end } = wanted(policy, e, commit_of(committed, &tp), false) {
                out.insert((tp, from, end));
            }
        }
    }
    out.into_iter().collect()
}

fn report(t: &Target, snap: &Snapshot, policy: &Policy) -> GroupReport {
    let committed = snap.committed.get(&t.group);
    let described = snap.described.get(&t.group);
    let description = described.and_then(|d| d.as_ref().ok());
    // Which member holds each partition.
    let mut owner: HashMap<&TopicPartition, &crate::offsets::Member> = HashMap::new();
    for m in description.map_or(&[][..], |d| &d.members[..]) {
        for tp in &m.assignment {
            owner.insert(tp, m);
        }
    }

    let (tps, missing_topics) = shown(t, snap);

    // Lag through the observer's function, over exactly these partitions.
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in &tps {
        by_topic
            .entry(tp.topic.to_string())
            .or_default()
            .push(tp.partition);
    }
    let topics: Vec<String> = by_topic.keys().cloned().collect();
    let lag = group_lag(
        &topics,
        &by_topic,
        &snap.ends,
        committed,
        policy,
        &HashSet::new(),
    );

    let rows: Vec<Row> = lag
        .partitions
        .into_iter()
        .map(|pl| {
            let ends = snap.ends.get(&pl.tp);
            let e = ends.and_then(|e| e.as_ref().ok());
            let commit_error = match committed {
                Some(Ok(o)) => o.errors.get(&pl.tp).map(ToString::to_string),
                _ => None,
            };
            let ends_error = match ends {
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(e.to_string()),
                None => Some("no answer".into()),
            };
            let member = owner.get(&pl.tp);
            let want = wanted(policy, e, commit_of(committed, &pl.tp), false);
            Row {
                topic: pl.tp.topic.to_string(),
                partition: pl.tp.partition,
                committed: pl.committed,
                log_start: e.map(|e| e.log_start),
                high_watermark: e.map(|e| e.high_watermark),
                last_stable: e.map(|e| e.last_stable),
                // kafka-consumer-groups' `-`: no commit, no lag to show.
                lag: pl.committed.and(pl.lag),
                time_lag_ms: time_lag_ms(&snap.peeks, &pl.tp, want, snap.now_ms),
                consumer_id: member.map(|m| m.member_id.clone()),
                host: member.map(|m| m.host.clone()),
                client_id: member.map(|m| m.client_id.clone()),
                error: commit_error.or(ends_error),
            }
        })
        .collect();

    let error = match (committed, described) {
        (Some(Err(e)), _) => Some(e.to_string()),
        (None, _) => Some("no answer for this group".into()),
        (_, Some(Err(e))) => Some(format!("members unknown: {e}")),
        (_, None) => Some("members unknown: no answer for this group".into()),
        _ => None,
    };
    let has_commits =
        matches!(committed, Some(Ok(o)) if !o.committed.is_empty() || !o.errors.is_empty());
    let exists = match description {
        // A group that commits without joining (assign + commit) is `Empty`, not `Dead`.
        Some(d) => !d.is_dead() || has_commits,
        None => true,
    };
    let summary = Summary::of(
        rows.iter()
            .filter(|r| r.committed.is_some() || r.error.is_some())
            .map(|r| r.lag),
    );
    GroupReport {
        group: t.group.clone(),
        exists,
        state: description.map(|d| d.state.clone()),
        assignment_strategy: description
            .map(|d| d.protocol.clone())
            .filter(|p| !p.is_empty()),
        coordinator: description.and_then(|d| {
            snap.brokers.get(&d.coordinator).map(|b| Coordinator {
                id: d.coordinator,
                host: b.host.clone(),
                port: b.port,
            })
        }),
        error,
        total_lag: summary.total_lag,
        lagging_partitions: summary.lagging_partitions,
        unknown_partitions: summary.unknown_partitions,
        uncommitted_partitions: rows
            .iter()
            .filter(|r| r.committed.is_none() && r.error.is_none())
            .count(),
        partitions: rows,
        members: description.map_or_else(Vec::new, |d| {
            d.members
                .iter()
                .map(|m| MemberReport {
                    consumer_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    host: m.host.clone(),
                    client_id: m.client_id.clone(),
                    assignment: grouped(&m.assignment),
                })
                .collect()
        }),
        missing_topics,
        must_exist: t.must_exist,
    }
}

/// Partitions grouped by topic, both sorted.
fn grouped(tps: &[TopicPartition]) -> Vec<TopicAssignment> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            TopicAssignment {
                topic: topic.to_string(),
                partitions,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::EndKind;
    use crate::offsets::{Committed, Member};
    use crate::protocol::error::ErrorCode;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn ends(log_start: i64, hw: i64, lso: i64) -> Result<Ends, OffsetsError> {
        Ok(Ends {
            log_start,
            high_watermark: hw,
            last_stable: lso,
        })
    }

    fn offsets(commits: &[(&str, i32, i64)]) -> Result<GroupOffsets, OffsetsError> {
        let mut g = GroupOffsets::default();
        for (t, p, o) in commits {
            g.committed.insert(
                tp(t, *p),
                Committed {
                    offset: *o,
                    metadata: None,
                },
            );
        }
        Ok(g)
    }

    fn member(id: &str, parts: &[(&str, i32)]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: format!("{id}-client"),
            host: "/10.0.0.1".into(),
            assignment: parts.iter().map(|(t, p)| tp(t, *p)).collect(),
            assignment_error: None,
        }
    }

    fn described(state: &str, members: Vec<Member>) -> Result<GroupDescription, OffsetsError> {
        Ok(GroupDescription {
            state: state.into(),
            protocol_type: "consumer".into(),
            protocol: "range".into(),
            coordinator: 1,
            members,
        })
    }

    fn target(group: &str, topics: Option<&[&str]>, must_exist: bool) -> Target {
        Target {
            group: group.into(),
            topics: topics.map(|ts| ts.iter().map(|t| t.to_string()).collect()),
            must_exist,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            ends: BTreeMap::from([
                (tp("t", 0), ends(0, 10, 10)),
                (tp("t", 1), ends(0, 7, 7)),
                (tp("t", 2), ends(0, 4, 3)),
                (tp("u", 0), ends(5, 9, 9)),
            ]),
            topics: BTreeMap::from([
                ("t".to_string(), Ok(vec![0, 1, 2])),
                ("u".to_string(), Ok(vec![0])),
                ("gone".to_string(), Err("does not exist".into())),
            ]),
            brokers: HashMap::from([(
                1,
                BrokerAddr {
                    host: "broker-1".into(),
                    port: 9092,
                },
            )]),
            ..Snapshot::default()
        }
    }

    #[test]
    fn rows_join_commits_members_and_ends() {
        let mut s = snapshot();
        s.committed
            .insert("g".into(), offsets(&[("t", 0, 2), ("t", 1, 7)]));
        // m-1 holds t-0 and t-2 (no commit on t-2 yet); t-1 is committed but unassigned.
        s.described.insert(
            "g".into(),
            described("Stable", vec![member("m-1", &[("t", 0), ("t", 2)])]),
        );
        let r = &reports(&[target("g", None, true)], &s, &Policy::default())[0];
        type Seen<'a> = (i32, Option<i64>, Option<i64>, Option<&'a str>);
        let rows: Vec<Seen> = r
            .partitions
            .iter()
            .map(|r| (r.partition, r.committed, r.lag, r.consumer_id.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                (0, Some(2), Some(8), Some("m-1")),
                (1, Some(7), Some(0), None),
                (2, None, None, Some("m-1")),
            ]
        );
        assert_eq!(r.partitions[0].host.as_deref(), Some("/10.0.0.1"));
        assert_eq!(r.partitions[0].client_id.as_deref(), Some("m-1-client"));
        assert_eq!(r.partitions[2].last_stable, Some(3));
        assert_eq!(
            (r.total_lag, r.lagging_partitions, r.uncommitted_partitions),
            (8, 1, 1)
        );
        assert!(r.exists && !r.failed());
        assert_eq!(r.state.as_deref(), Some("Stable"));
        assert_eq!(r.assignment_strategy.as_deref(), Some("range"));
        assert_eq!(
            r.coordinator,
            Some(Coordinator {
                id: 1,
                host: "broker-1".into(),
                port: 9092
            })
        );
        assert_eq!(
            r.members[0].assignment,
            [TopicAssignment {
                topic: "t".into(),
                partitions: vec![0, 2]
            }]
        );
    }

    #[test]
    fn lag_is_the_observers() {
        // The end follows the policy: t-2 has an open transaction (LSO 3 < HW 4).
        let mut s = snapshot();
        s.committed
            .insert("g".into(), offsets(&[("t", 2, 1), ("u", 0, 1)]));
        s.described.insert("g".into(), described("Empty", vec![]));
        for (end, want) in [
            (EndKind::LastStable, [2, 4]),
            (EndKind::HighWatermark, [3, 4]),
        ] {
            let policy = Policy {
                end,
                ..Policy::default()
            };
            let r = &reports(&[target("g", None, true)], &s, &policy)[0];
            let lags: Vec<Option<i64>> = r.partitions.iter().map(|p| p.lag).collect();
            // u-0: a commit (1) below the log start (5) counts from the log start.
            assert_eq!(lags, [Some(want[0]), Some(want[1])], "{end:?}");
            let tps: Vec<TopicPartition> = r
                .partitions
                .iter()
                .map(|p| tp(&p.topic, p.partition))
                .collect();
            let observer = group_lag(
                &["t".to_string(), "u".to_string()],
                &BTreeMap::from([("t".to_string(), vec![2]), ("u".to_string(), vec![0])]),
                &s.ends,
                s.committed.get("g"),
                &policy,
                &HashSet::new(),
            );
            let theirs: Vec<(TopicPartition, Option<i64>)> = observer
                .partitions
                .into_iter()
                .map(|p| (p.tp, p.lag))
                .collect();
            assert_eq!(theirs, tps.into_iter().zip(lags).collect::<Vec<_>>());
        }
    }

    #[test]
    fn time_lag_is_the_age_of_the_record_a_consumer_would_read_next() {
        use crate::lag::NoCommit;
        use crate::offsets::timestamps::Peek;
        let mut s = snapshot();
        // t-0 committed at 2 (records from 2 stamped 1 000), t-1 caught up at 7, t-2 without a
        // commit (the log starts at 0, stamped 4 000); u-0 committed below its log start (5).
        s.committed.insert(
            "g".into(),
            offsets(&[("t", 0, 2), ("t", 1, 7), ("u", 0, 1)]),
        );
        s.described.insert("g".into(), described("Empty", vec![]));
        s.peeks.insert(
            tp("t", 0),
            2,
            Peek::Record {
                offset: 2,
                timestamp: 1_000,
            },
        );
        s.peeks.insert(tp("t", 2), 0, Peek::Skip { next: 1 });
        s.peeks.insert(
            tp("t", 2),
            1,
            Peek::Record {
                offset: 1,
                timestamp: 4_000,
            },
        );
        s.peeks.insert(
            tp("u", 0),
            5,
            Peek::Record {
                offset: 5,
                timestamp: 9_500,
            },
        );
        s.now_ms = 10_000;
        let targets = [target("g", Some(&["t", "u"]), true)];
        for (reset, want) in [
            (
                NoCommit::Earliest,
                [Some(9_000), Some(0), Some(6_000), Some(500)],
            ),
            (NoCommit::Latest, [Some(9_000), Some(0), Some(0), Some(0)]),
        ] {
            let policy = Policy::new(true, reset);
            let r = &reports(&targets, &s, &policy)[0];
            let got: Vec<Option<i64>> = r.partitions.iter().map(|p| p.time_lag_ms).collect();
            assert_eq!(got, want, "{reset:?}");
            // What the lookups need is exactly what the cache was filled with.
            let wants = time_wants(&targets, &s, &policy);
            assert!(wants.iter().all(|(tp, f, e)| !matches!(
                s.peeks.resolve(tp, *f, *e),
                crate::offsets::timestamps::Resolved::Need(_)
            )));
        }
        // Not looked at yet: unknown, not 0.
        s.peeks = Peeks::default();
        let r = &reports(&targets, &s, &Policy::default())[0];
        assert_eq!(r.partitions[0].time_lag_ms, None);
        assert_eq!(r.partitions[1].time_lag_ms, Some(0));
    }

    #[test]
    fn topics_filter_missing_topics_and_existence() {
        let mut s = snapshot();
        s.committed
            .insert("g".into(), offsets(&[("t", 0, 10), ("u", 0, 9)]));
        s.described.insert("g".into(), described("Empty", vec![]));
        s.committed.insert("nobody".into(), offsets(&[]));
        s.described
            .insert("nobody".into(), described("Dead", vec![]));
        s.committed
            .insert("commits-only".into(), offsets(&[("t", 1, 1)]));
        s.described
            .insert("commits-only".into(), described("Dead", vec![]));
        let targets = [
            target("g", Some(&["t", "gone"]), true),
            target("nobody", None, true),
            target("nobody", Some(&["u"]), false),
            target("commits-only", None, true),
        ];
        let r = reports(&targets, &s, &Policy::default());

        // --topic t: every partition of t, u's commit left out; a missing topic invents no row.
        let parts: Vec<(&str, i32, Option<i64>)> = r[0]
            .partitions
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.committed))
            .collect();
        assert_eq!(parts, [("t", 0, Some(10)), ("t", 1, None), ("t", 2, None)]);
        assert_eq!(r[0].missing_topics, ["gone"]);
        assert!(r[0].failed());

        assert!(!r[1].exists && r[1].partitions.is_empty() && r[1].failed());
        // From a kafkadata mapping: not there yet is not a failure; its topic is still listed.
        assert!(!r[2].exists && !r[2].failed());
        assert_eq!(r[2].partitions.len(), 1);
        assert_eq!(r[2].partitions[0].lag, None);
        assert!(
            r[3].exists,
            "a group with commits exists whatever DescribeGroups says"
        );
    }

    #[test]
    fn errors_are_per_group_and_per_partition() {
        let mut s = snapshot();
        s.committed
            .insert("down".into(), Err(OffsetsError::NoCoordinator));
        s.described
            .insert("down".into(), Err(OffsetsError::NoCoordinator));
        let mut refused = offsets(&[("t", 0, 1)]).unwrap();
        refused.errors.insert(tp("t", 1), ErrorCode(88));
        s.committed.insert("refused".into(), Ok(refused));
        let denied = OffsetsError::Described {
            group: "refused".into(),
            addr: "b:1".into(),
            code: ErrorCode(30),
        };
        s.described.insert("refused".into(), Err(denied));
        s.ends
            .insert(tp("t", 0), Err(OffsetsError::NoLeader(tp("t", 0))));
        let r = reports(
            &[target("down", None, true), target("refused", None, true)],
            &s,
            &Policy::default(),
        );
        assert_eq!(r[0].error.as_deref(), Some("no coordinator found"));
        assert!(r[0].exists && r[0].failed() && r[0].state.is_none());
        let errs: Vec<Option<&str>> = r[1].partitions.iter().map(|p| p.error.as_deref()).collect();
        assert_eq!(
            errs,
            [
                Some("t-0: no leader right now"),
                Some("UNSTABLE_OFFSET_COMMIT")
            ]
        );
        assert_eq!(r[1].unknown_partitions, 2);
        assert!(r[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("members unknown"));
    }
}
