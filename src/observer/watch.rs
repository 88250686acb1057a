//! Event-driven detection: a long-poll Fetch per leader broker over every idle partition, held
//! at the partition's end, so the first record after a quiet period wakes the observer at once
//! instead of at the next tick.
//!
//! Only idle partitions are watched (every group has caught up). A partition with lag is
//! already being served and is left to the timed cycle, which keeps a record storm from turning
//! into a storm of cycles: the first record wakes a cycle, that cycle sees lag, and the
//! partition leaves the watch until its groups catch up again. Topics the observer may not read
//! (TOPIC_AUTHORIZATION_FAILED — Fetch needs READ where ListOffsets needs only DESCRIBE) fall
//! back to timed cycles with one log line.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cluster::{is_stale_route, Cluster};
use crate::offsets::fetch::{fetch, FetchOptions};
use crate::offsets::TopicPartition;
use crate::wire::kafka_error::code;

/// Long-poll watchers and the signal they raise.
pub struct Watcher {
    cluster: Arc<Cluster>,
    opts: FetchOptions,
    notify: Arc<Notify>,
    denied: Arc<Mutex<BTreeSet<String>>>,
    /// Set when a task ended (leader moved, connection lost): rebuild at the next sync.
    broken: Arc<AtomicBool>,
    watching: BTreeMap<i32, BTreeSet<TopicPartition>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Watcher {
    pub fn new(cluster: Arc<Cluster>, read_committed: bool, max_wait: Duration) -> Self {
        Watcher {
            cluster,
            opts: FetchOptions {
                max_wait,
                partition_max_bytes: 1,
                max_bytes: 1,
                read_committed,
                lane: "long-poll",
            },
            notify: Arc::new(Notify::new()),
            denied: Arc::default(),
            broken: Arc::default(),
            watching: BTreeMap::new(),
            tasks: Vec::new(),
        }
    }

    /// Resolves when a watched partition got data (or changed in a way worth a look).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Topics that fell back to timed cycles.
    pub fn denied(&self) -> BTreeSet<String> {
        self.denied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Watches exactly `idle` (partition → its current end), restarting the fetches only when
    /// the set or its leaders changed. Returns true when every partition of `idle` is watched.
    pub fn sync(&mut self, idle: &BTreeMap<TopicPartition, i64>) -> bool {
        let md = self.cluster.metadata();
        let denied = self.denied();
        let mut layout: BTreeMap<i32, BTreeSet<TopicPartition>> = BTreeMap::new();
        let mut complete = true;
        for tp in idle.keys() {
            if denied.contains(&tp.topic) {
                complete = false;
                continue;
            }
            match md.leader(&tp.topic, tp.partition) {
                Some(l) => {
                    layout.entry(l).or_default().insert(tp.clone());
                }
                None => complete = false,
            }
        }
        let broken = self.broken.swap(false, Ordering::Relaxed);
        if layout == self.watching && !broken {
            return complete;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for (leader, tps) in &layout {
            let positions: BTreeMap<TopicPartition, i64> =
                tps.iter().map(|tp| (tp.clone(), idle[tp])).collect();
            self.tasks.push(tokio::spawn(watch_leader(
                self.cluster.clone(),
                *leader,
                positions,
                self.opts,
                self.notify.clone(),
                self.denied.clone(),
                self.broken.clone(),
            )));
        }
        tracing::debug!(
            leaders = layout.len(),
            partitions = idle.len(),
            "long-poll watch updated"
        );
        self.watching = layout;
        complete
    }
}

async fn watch_leader(
    cluster: Arc<Cluster>,
    leader: i32,
    mut positions: BTreeMap<TopicPartition, i64>,
    opts: FetchOptions,
    notify: Arc<Notify>,
    denied: Arc<Mutex<BTreeSet<String>>>,
    broken: Arc<AtomicBool>,
) {
    while !positions.is_empty() {
        let answers = match fetch(&cluster, leader, &positions, opts).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(leader, error = %e, "long poll failed; timed cycles cover until it is rebuilt");
                broken.store(true, Ordering::Relaxed);
                notify.notify_one();
                return;
            }
        };
        let mut woke = false;
        for (tp, p) in answers {
            let Some(pos) = positions.get(&tp).copied() else {
                continue;
            };
            match p.error_code {
                0 => {
                    let end = if opts.read_committed && p.last_stable_offset >= 0 {
                        p.last_stable_offset
                    } else {
                        p.high_watermark
                    };
                    let data = p.records.as_ref().is_some_and(|r| !r.is_empty());
                    if data || end != pos {
                        woke = true;
                        positions.insert(tp, end.max(0));
                    }
                }
                code::OFFSET_OUT_OF_RANGE => {
                    woke = true;
                    positions.insert(tp, p.high_watermark.max(0));
                }
                code::TOPIC_AUTHORIZATION_FAILED => {
                    let mut d = denied.lock().unwrap_or_else(|p| p.into_inner());
                    if d.insert(tp.topic.clone()) {
                        tracing::warn!(topic = %tp.topic, "not authorised to Fetch this topic (the observer needs READ for event-driven wake-ups); using timed cycles for it");
                    }
                    let topic = tp.topic.clone();
                    positions.retain(|t, _| t.topic != topic);
                }
                ec if is_stale_route(ec) => {
                    broken.store(true, Ordering::Relaxed);
                    notify.notify_one();
                    return;
                }
                _ => {}
            }
        }
        if woke {
            notify.notify_one();
        }
    }
}
