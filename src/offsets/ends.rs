//! Log-start, high watermark and last stable offset of many partitions.
//!
//! Three kinds, three ListOffsets per leader: a partition may appear only once per request and the
//! isolation level is per request. The three go out together, so a snapshot takes one round trip.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::join_all;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::TopicPartition;
use crate::cluster::{is_stale_route, Cluster};
use crate::protocol::list_offsets::ListOffsetsResponse;
use crate::wire::kafka_error::error_name;

/// The three ends of a partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ends {
    /// First offset still in the log (after retention).
    pub log_start: i64,
    /// Offset after the last replicated record (read_uncommitted end).
    pub high_watermark: i64,
    /// Offset of the first record of a still-open transaction, else the high watermark
    /// (read_committed end).
    pub last_stable: i64,
}

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

type Answer = Result<i64, (String, bool)>;

/// Ends of every partition in `partitions`; a partition whose ends could not all be read maps
/// to an error that says why.
pub async fn fetch_ends(
    cluster: &Cluster,
    partitions: &[TopicPartition],
) -> BTreeMap<TopicPartition, Result<Ends, String>> {
    let mut found: BTreeMap<TopicPartition, [Option<i64>; 3]> = BTreeMap::new();
    let mut failed: BTreeMap<TopicPartition, String> = BTreeMap::new();
    let mut todo: Vec<TopicPartition> = partitions.to_vec();
    let mut attempt = 0;
    let mut refresh = false;
    while !todo.is_empty() {
        let topics: Vec<String> = todo
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
                for tp in todo.drain(..) {
                    failed.insert(tp, e.to_string());
                }
                break;
            }
        };
        let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        let mut retry: Vec<TopicPartition> = Vec::new();
        for tp in todo.drain(..) {
            match route(&md, &tp) {
                Ok(leader) => by_leader.entry(leader).or_default().push(tp),
                Err((msg, retriable)) => {
                    if retriable {
                        retry.push(tp.clone());
                    }
                    failed.insert(tp, msg);
                }
            }
        }
        let asks = by_leader.into_iter().flat_map(|(leader, tps)| {
            Kind::ALL.map(|kind| {
                let tps = tps.clone();
                async move {
                    let answers = list_offsets(cluster, leader, kind, &tps).await;
                    (kind, answers)
                }
            })
        });
        for (kind, answers) in join_all(asks).await {
            for (tp, answer) in answers {
                match answer {
                    Ok(offset) => {
                        found.entry(tp).or_default()[kind as usize] = Some(offset);
                    }
                    Err((msg, retriable)) => {
                        if retriable && !retry.contains(&tp) {
                            retry.push(tp.clone());
                        }
                        failed.insert(tp, msg);
                    }
                }
            }
        }
        attempt += 1;
        if retry.is_empty() {
            break;
        }
        let Some(delay) = cluster.backoff().delay_random(attempt) else {
            break;
        };
        tracing::debug!(
            partitions = retry.len(),
            ?delay,
            "ListOffsets: retrying after stale routes"
        );
        tokio::time::sleep(delay).await;
        for tp in &retry {
            failed.remove(tp);
        }
        refresh = true;
        todo = retry;
    }
    partitions
        .iter()
        .map(|tp| {
            let result = match (failed.get(tp), found.get(tp)) {
                (Some(msg), _) => Err(msg.clone()),
                (None, Some([Some(s), Some(h), Some(l)])) => Ok(Ends {
                    log_start: *s,
                    high_watermark: *h,
                    last_stable: *l,
                }),
                _ => Err("no answer for this partition".to_string()),
            };
            (tp.clone(), result)
        })
        .collect()
}

/// Leader of `tp`, or why there is none (and whether asking again may help).
fn route(md: &crate::cluster::Metadata, tp: &TopicPartition) -> Result<i32, (String, bool)> {
    let Some(topic) = md.topics.get(&*tp.topic) else {
        return Err((format!("topic '{}' is not in the metadata", tp.topic), true));
    };
    if topic.error_code != 0 {
        let retriable = is_stale_route(topic.error_code);
        let msg = if topic.error_code == crate::wire::kafka_error::code::UNKNOWN_TOPIC_OR_PARTITION
        {
            format!("topic '{}' does not exist", tp.topic)
        } else {
            format!("topic '{}': {}", tp.topic, error_name(topic.error_code))
        };
        return Err((msg, retriable));
    }
    match topic.partitions.get(&tp.partition) {
        None => Err((
            format!(
                "partition {} does not exist (topic '{}' has {} partitions)",
                tp.partition,
                tp.topic,
                topic.partitions.len()
            ),
            false,
        )),
        Some(p) if p.leader < 0 => Err((format!("{tp}: no leader right now"), true)),
        Some(p) => Ok(p.leader),
    }
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
        Err(e) => return all_failed(tps, e.to_string(), !e.is_fatal()),
    };
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
    let resp: ListOffsetsResponse = match cluster
        .call(&conn, |v| {
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(topics);
            if v >= 2 {
                req.with_isolation_level(kind.isolation())
            } else {
                req
            }
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return all_failed(tps, e.to_string(), !e.is_fatal()),
    };
    let mut answers: HashMap<(&str, i32), Answer> = HashMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let answer = if p.error_code != 0 {
                Err((
                    format!(
                        "ListOffsets {}-{} at {}: {}",
                        t.name,
                        p.partition_index,
                        conn.addr(),
                        error_name(p.error_code)
                    ),
                    is_stale_route(p.error_code),
                ))
            } else if p.offset < 0 {
                Err((
                    format!(
                        "ListOffsets {}-{}: no offset in the answer",
                        t.name, p.partition_index
                    ),
                    true,
                ))
            } else {
                Ok(p.offset)
            };
            answers.insert((t.name.as_str(), p.partition_index), answer);
        }
    }
    tps.iter()
        .map(|tp| {
            let a = answers
                .remove(&(&*tp.topic, tp.partition))
                .unwrap_or_else(|| {
                    Err((format!("{tp}: missing from the ListOffsets answer"), true))
                });
            (tp.clone(), a)
        })
        .collect()
}

fn all_failed(
    tps: &[TopicPartition],
    msg: String,
    retriable: bool,
) -> Vec<(TopicPartition, Answer)> {
    tps.iter()
        .map(|tp| (tp.clone(), Err((msg.clone(), retriable))))
        .collect()
}
