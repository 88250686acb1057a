//! Log-start, high watermark and last stable offset of many partitions.
//!
//! Three kinds, three ListOffsets per leader: a partition may appear only once per request and the
//! isolation level is per request. The three go out together, so a snapshot takes one round trip.
//!
//! In rskafka's shape: routing, the request and the reading of its answer are pure functions
//! (tested below with tables); the async glue only sends; [`crate::retry::retry_each`] asks
//! again for the partitions whose failure may heal, with fresh metadata.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::join_all;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{OffsetsError, TopicPartition};
use crate::cluster::{Cluster, Metadata};
use crate::protocol::error::{code, ErrorCode};
use crate::protocol::list_offsets::ListOffsetsResponse;
use crate::retry::{retry_each, Retriable};

/// The three ends of a partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Ends {
    /// First offset still in the log (after retention).
    pub log_start: i64,
    /// Offset after the last replicated record (read_uncommitted end).
    pub high_watermark: i64,
    /// Offset of the first record of a still-open transaction, else the high watermark
    /// (read_committed end).
    pub last_stable: i64,
}

/// Which end one ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Earliest,
    Latest,
    Stable,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Earliest, Kind::Latest, Kind::Stable];

    fn timestamp(self) -> i64 {
        match self {
            Kind::Earliest => -2,
            Kind::Latest | Kind::Stable => -1,
        }
    }

    fn isolation(self) -> i8 {
        match self {
            Kind::Stable => 1,
            _ => 0,
        }
    }
}

type Answer = Result<i64, OffsetsError>;

/// Ends of every partition in `partitions`; a partition whose ends could not all be read maps
/// to an error that says why.
pub(crate) async fn fetch_ends(
    cluster: &Cluster,
    partitions: &[TopicPartition],
) -> BTreeMap<TopicPartition, Result<Ends, OffsetsError>> {
    let todo: Vec<TopicPartition> = partitions
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut found = retry_each(&cluster.backoff(), "ListOffsets", todo, |tps, attempt| {
        round(cluster, tps, attempt > 0)
    })
    .await;
    partitions
        .iter()
        .map(|tp| {
            let answer = found.remove(tp).unwrap_or(Err(OffsetsError::NoAnswer));
            (tp.clone(), answer)
        })
        .collect()
}

/// One round: route by (possibly refreshed) metadata, ask every leader for the three kinds.
async fn round(
    cluster: &Cluster,
    tps: Vec<TopicPartition>,
    refresh: bool,
) -> Vec<(TopicPartition, Result<Ends, OffsetsError>)> {
    let topics: Vec<String> = tps
        .iter()
        .map(|tp| tp.topic.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let md = if refresh {
        cluster.refresh_metadata(Some(&topics)).await
    } else {
        cluster.metadata_for(&topics).await
    };
    let md = match md {
        Ok(md) => md,
        Err(e) => {
            return tps
                .into_iter()
                .map(|tp| (tp, Err(OffsetsError::Metadata(e.clone()))))
                .collect()
        }
    };
    let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
    let mut out = Vec::new();
    for tp in tps {
        match route(&md, &tp) {
            Ok(leader) => by_leader.entry(leader).or_default().push(tp),
            Err(e) => out.push((tp, Err(e))),
        }
    }
    let asks = by_leader.iter().flat_map(|(leader, tps)| {
        Kind::ALL.map(|kind| async move { (kind, list_offsets(cluster, *leader, kind, tps).await) })
    });
    out.extend(combine(join_all(asks).await));
    out
}

/// Leader of `tp`, or why there is none (pure).
fn route(md: &Metadata, tp: &TopicPartition) -> Result<i32, OffsetsError> {
    let Some(topic) = md.topics.get(&*tp.topic) else {
        return Err(OffsetsError::NotInMetadata(tp.topic.to_string()));
    };
    match topic.error_code {
        code::NONE => {}
        code::UNKNOWN_TOPIC_OR_PARTITION => {
            return Err(OffsetsError::UnknownTopic(tp.topic.to_string()))
        }
        c => {
            return Err(OffsetsError::Topic {
                topic: tp.topic.to_string(),
                code: ErrorCode(c),
            })
        }
    }
    match topic.partitions.get(&tp.partition) {
        None => Err(OffsetsError::NoSuchPartition {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            count: topic.partitions.len(),
        }),
        Some(p) if p.leader < 0 => Err(OffsetsError::NoLeader(tp.clone())),
        Some(p) => Ok(p.leader),
    }
}

/// The ListOffsets request for `tps` at `kind`, version `v` (pure).
fn request(kind: Kind, tps: &[TopicPartition], v: i16) -> ListOffsetsRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let topics: Vec<ListOffsetsTopic> = by_topic
        .iter()
        .map(|(t, ps)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partitions(
                    ps.iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(*p)
                                .with_timestamp(kind.timestamp())
                        })
                        .collect(),
                )
        })
        .collect();
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics);
    if v >= 2 {
        req.with_isolation_level(kind.isolation())
    } else {
        req
    }
}

/// Per asked partition, the offset `resp` gives or why it gives none (pure).
fn answers(
    resp: &ListOffsetsResponse,
    tps: &[TopicPartition],
    addr: &str,
) -> Vec<(TopicPartition, Answer)> {
    let mut by_partition: HashMap<(&str, i32), (i16, i64)> = HashMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            by_partition.insert(
                (t.name.as_str(), p.partition_index),
                (p.error_code, p.offset),
            );
        }
    }
    tps.iter()
        .map(|tp| {
            let answer = match by_partition.get(&(&*tp.topic, tp.partition)) {
                None => Err(OffsetsError::MissingPartition {
                    api: "ListOffsets",
                    tp: tp.clone(),
                }),
                Some((c, _)) if *c != code::NONE => Err(OffsetsError::Partition {
                    api: "ListOffsets",
                    tp: tp.clone(),
                    addr: addr.to_string(),
                    code: ErrorCode(*c),
                }),
                Some((_, offset)) if *offset < 0 => Err(OffsetsError::NoOffset(tp.clone())),
                Some((_, offset)) => Ok(*offset),
            };
            (tp.clone(), answer)
        })
        .collect()
}

/// The three kinds' answers joined per partition (pure). A partition with any failure fails;
/// a retriable failure wins over a final one, so that the partition is asked again.
fn combine(
    per_kind: Vec<(Kind, Vec<(TopicPartition, Answer)>)>,
) -> Vec<(TopicPartition, Result<Ends, OffsetsError>)> {
    let mut slots: BTreeMap<TopicPartition, [Option<Answer>; 3]> = BTreeMap::new();
    for (kind, answers) in per_kind {
        for (tp, a) in answers {
            slots.entry(tp).or_default()[kind as usize] = Some(a);
        }
    }
    slots
        .into_iter()
        .map(|(tp, slots)| {
            let result = match slots {
                [Some(Ok(s)), Some(Ok(h)), Some(Ok(l))] => Ok(Ends {
                    log_start: s,
                    high_watermark: h,
                    last_stable: l,
                }),
                slots => {
                    let errors: Vec<OffsetsError> = slots
                        .into_iter()
                        .flatten()
                        .filter_map(Result::err)
                        .collect();
                    let pick = errors
                        .iter()
                        .position(Retriable::is_retriable)
                        .unwrap_or_default();
                    Err(errors
                        .into_iter()
                        .nth(pick)
                        .unwrap_or(OffsetsError::NoAnswer))
                }
            };
            (tp, result)
        })
        .collect()
}

/// One ListOffsets to `leader` for `tps` at `kind`; per-partition answers.
async fn list_offsets(
    cluster: &Cluster,
    leader: i32,
    kind: Kind,
    tps: &[TopicPartition],
) -> Vec<(TopicPartition, Answer)> {
    let conn = match cluster.broker(leader).await {
        Ok(c) => c,
        Err(e) => return all_failed(tps, e.into()),
    };
    match cluster
        .call::<_, ListOffsetsResponse>(&conn, |v| request(kind, tps, v))
        .await
    {
        Ok(resp) => answers(&resp, tps, conn.addr()),
        Err(e) => all_failed(tps, e.into()),
    }
}

fn all_failed(tps: &[TopicPartition], e: OffsetsError) -> Vec<(TopicPartition, Answer)> {
    tps.iter().map(|tp| (tp.clone(), Err(e.clone()))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{PartitionMeta, TopicMeta};
    use crate::protocol::list_offsets::{
        ListOffsetsPartition as RespPartition, ListOffsetsTopic as RespTopic,
    };

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    /// (message, retriable) of an error, or the value.
    fn shown<T>(r: Result<T, OffsetsError>) -> Result<T, (String, bool)> {
        r.map_err(|e| (e.to_string(), e.is_retriable()))
    }

    fn metadata() -> Metadata {
        let part = |leader| PartitionMeta {
            leader,
            leader_epoch: 0,
            error_code: 0,
        };
        let mut md = Metadata::default();
        md.topics.insert(
            "t".into(),
            TopicMeta {
                partitions: BTreeMap::from([(0, part(1)), (1, part(-1))]),
                ..TopicMeta::default()
            },
        );
        md.topics.insert(
            "gone".into(),
            TopicMeta {
                error_code: code::UNKNOWN_TOPIC_OR_PARTITION,
                ..TopicMeta::default()
            },
        );
        md.topics.insert(
            "denied".into(),
            TopicMeta {
                error_code: code::TOPIC_AUTHORIZATION_FAILED,
                ..TopicMeta::default()
            },
        );
        md
    }

    #[test]
    fn route_table() {
        let md = metadata();
        let err = |m: &str, r| Err((m.to_string(), r));
        #[rustfmt::skip]
        type Case = (TopicPartition, Result<i32, (String, bool)>);
        let cases: Vec<Case> = vec![
            (tp("t", 0), Ok(1)),
            (tp("t", 1), err("t-1: no leader right now", true)),
            (
                tp("t", 7),
                err(
                    "partition 7 does not exist (topic 't' has 2 partitions)",
                    false,
                ),
            ),
            (
                tp("new", 0),
                err("topic 'new' is not in the metadata", true),
            ),
            (tp("gone", 0), err("topic 'gone' does not exist", true)),
            (
                tp("denied", 0),
                err("topic 'denied': TOPIC_AUTHORIZATION_FAILED", false),
            ),
        ];
        for (tp, want) in cases {
            assert_eq!(shown(route(&md, &tp)), want, "{tp}");
        }
    }

    #[test]
    fn answers_table() {
        let part = |p, error_code, offset| RespPartition {
            partition_index: p,
            error_code,
            timestamp: -1,
            offset,
            leader_epoch: -1,
        };
        let resp = ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: vec![RespTopic {
                name: "t".into(),
                partitions: vec![
                    part(0, 0, 42),
                    part(1, code::NOT_LEADER_OR_FOLLOWER, -1),
                    part(2, 0, -1),
                    part(3, 56, -1), // KAFKA_STORAGE_ERROR: the protocol says retriable, not a route
                    part(4, 0, 0),
                ],
            }],
        };
        let asked = [
            tp("t", 0),
            tp("t", 1),
            tp("t", 2),
            tp("t", 3),
            tp("t", 4),
            tp("t", 5),
        ];
        let err = |m: &str, r| Err((m.to_string(), r));
        #[rustfmt::skip]
        let want: Vec<Result<i64, (String, bool)>> = vec![
            Ok(42),
            err("ListOffsets t-1 at b:9092: NOT_LEADER_OR_FOLLOWER", true),
            err("ListOffsets t-2: no offset in the answer", true),
            err("ListOffsets t-3 at b:9092: KAFKA_STORAGE_ERROR", false),
            Ok(0),
            err("t-5: missing from the ListOffsets answer", true),
        ];
        let got: Vec<_> = answers(&resp, &asked, "b:9092")
            .into_iter()
            .map(|(_, a)| shown(a))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn three_kinds_make_one_answer() {
        let ok = |tp: &TopicPartition, v| (tp.clone(), Ok(v));
        let moved = |tp: &TopicPartition| {
            (
                tp.clone(),
                Err(OffsetsError::Partition {
                    api: "ListOffsets",
                    tp: tp.clone(),
                    addr: "b:1".into(),
                    code: ErrorCode(code::NOT_LEADER_OR_FOLLOWER),
                }),
            )
        };
        let denied = |tp: &TopicPartition| {
            (
                tp.clone(),
                Err(OffsetsError::Partition {
                    api: "ListOffsets",
                    tp: tp.clone(),
                    addr: "b:1".into(),
                    code: ErrorCode(code::TOPIC_AUTHORIZATION_FAILED),
                }),
            )
        };
        let (a, b, c) = (tp("t", 0), tp("t", 1), tp("t", 2));
        let got = combine(vec![
            (Kind::Earliest, vec![ok(&a, 3), ok(&b, 0), denied(&c)]),
            (Kind::Latest, vec![ok(&a, 10), moved(&b), moved(&c)]),
            (Kind::Stable, vec![ok(&a, 8), ok(&b, 5), ok(&c, 1)]),
        ]);
        let got: Vec<_> = got.into_iter().map(|(tp, r)| (tp, shown(r))).collect();
        assert_eq!(
            got,
            vec![
                (
                    a,
                    Ok(Ends {
                        log_start: 3,
                        high_watermark: 10,
                        last_stable: 8
                    })
                ),
                (
                    b,
                    Err((
                        "ListOffsets t-1 at b:1: NOT_LEADER_OR_FOLLOWER".into(),
                        true
                    ))
                ),
                // The retriable failure is kept, so the partition is asked again.
                (
                    c,
                    Err((
                        "ListOffsets t-2 at b:1: NOT_LEADER_OR_FOLLOWER".into(),
                        true
                    ))
                ),
            ]
        );
    }

    #[test]
    fn requests_per_kind_and_version() {
        let tps = [tp("b", 1), tp("a", 0), tp("b", 0)];
        let req = request(Kind::Stable, &tps, 5);
        let topics: Vec<(String, Vec<(i32, i64)>)> = req
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.timestamp))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            topics,
            vec![
                ("a".to_string(), vec![(0, -1)]),
                ("b".to_string(), vec![(1, -1), (0, -1)])
            ]
        );
        assert_eq!(req.isolation_level, 1);
        assert_eq!(req.replica_id, BrokerId(-1));
        assert_eq!(request(Kind::Stable, &tps, 1).isolation_level, 0);
        let earliest = request(Kind::Earliest, &tps, 5);
        assert_eq!(earliest.isolation_level, 0);
        assert!(earliest.topics[0]
            .partitions
            .iter()
            .all(|p| p.timestamp == -2));
    }
}
