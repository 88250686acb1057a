//! The cluster as one thing: bootstrap, metadata cache, leader and coordinator routing.
//!
//! One connection per broker and [`Lane`], shared by every caller; a dead connection is
//! replaced on next use. Metadata and coordinators are cached and refreshed only when an
//! answer says they moved, so a steady-state cycle costs no Metadata or FindCoordinator
//! requests at all. Failures are typed ([`ClusterError`]) and retried through
//! [`crate::retry`] only when they may heal.

mod coordinator;
mod error;
mod metadata;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::protocol::Request;

use crate::config::brokers::BrokerAddr;
use crate::protocol::Response;
use crate::retry::{retry, retry_each, Backoff};
use crate::wire::{ConnectOptions, Connection, WireError};

pub(crate) use error::{AdvertisedError, ClusterError};
pub(crate) use metadata::Metadata;
#[cfg(test)]
pub(crate) use metadata::{PartitionMeta, TopicMeta};
pub(crate) use stats::RequestStats;

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

/// Which connection to a broker a request travels on. A broker answers the requests of one
/// connection in order, so a long-poll Fetch would hold every request behind it for its whole
/// wait: fetches get lanes of their own, as the Java client gives its coordinator one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Short requests: Metadata, ListOffsets, OffsetFetch, group membership.
    Default,
    /// The consumer's record fetches.
    Fetch,
    /// The observer's look at small commit gaps (`offsets::visible`).
    Peek,
    /// The observer's long poll on idle partitions.
    LongPoll,
    /// Produce requests (the producer keeps several in flight per broker).
    Produce,
}

/// A Kafka cluster reached through its bootstrap brokers.
pub struct Cluster {
    bootstrap: Vec<BrokerAddr>,
    opts: ConnectOptions,
    conns: Mutex<HashMap<(String, Lane), Slot>>,
    metadata: RwLock<Arc<Metadata>>,
    coordinators: Mutex<HashMap<String, i32>>,
    stats: RequestStats,
    backoff: Backoff,
}

impl Cluster {
    pub fn new(bootstrap: Vec<BrokerAddr>, opts: ConnectOptions) -> Self {
        Cluster {
            bootstrap,
            opts,
            conns: Mutex::default(),
            metadata: RwLock::new(Arc::new(Metadata::default())),
            coordinators: Mutex::default(),
            stats: RequestStats::default(),
            backoff: Backoff::default(),
        }
    }

    /// The retry schedule of requests to this cluster.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Requests sent so far, per API.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }

    /// The connection to `host:port`, opened on first use and replaced when it died.
    pub async fn connect(&self, host: &str, port: u16) -> Result<Arc<Connection>, WireError> {
        self.connect_lane(host, port, Lane::Default).await
    }

    /// Like `connect`, on the connection of `lane`.
    pub async fn connect_lane(
        &self,
        host: &str,
        port: u16,
        lane: Lane,
    ) -> Result<Arc<Connection>, WireError> {
        let key = (format!("{host}:{port}"), lane);
        let slot = lock(&self.conns).entry(key).or_default().clone();
        let mut guard = slot.lock().await;
        if let Some(c) = guard.as_ref() {
            if c.closed().is_none() {
                return Ok(c.clone());
            }
        }
        let conn = Arc::new(Connection::connect(host, port, &self.opts).await?);
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Forgets the connection to broker `node_id` on `lane`: it closes once its last user lets
    /// go, and the next request opens a new one. For a long poll that must be re-armed at once:
    /// the broker would answer a second fetch on the same connection only after the first.
    pub fn drop_lane(&self, node_id: i32, lane: Lane) {
        let Some(a) = self.metadata().brokers.get(&node_id).cloned() else {
            return;
        };
        let key = (format!("{}:{}", a.host, a.port), lane);
        let slot = lock(&self.conns).get(&key).cloned();
        if let Some(slot) = slot {
            if let Ok(mut guard) = slot.try_lock() {
                *guard = None;
            }
        }
    }

    /// The connection to broker `node_id` as the cached metadata knows it.
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>, WireError> {
        self.broker_lane(node_id, Lane::Default).await
    }

    /// The connection to broker `node_id` on `lane`.
    pub async fn broker_lane(
        &self,
        node_id: i32,
        lane: Lane,
    ) -> Result<Arc<Connection>, WireError> {
        let md = self.metadata();
        match md.brokers.get(&node_id).cloned() {
            Some(a) => self.connect_lane(&a.host, a.port, lane).await,
            None => Err(WireError::Connect {
                addr: format!("broker {node_id}"),
                cause: md
                    .unusable
                    .get(&node_id)
                    .map_or_else(|| "not in the cluster metadata".into(), ToString::to_string),
            }),
        }
    }

    /// Any live connection: a known broker first, then the bootstrap list in order.
    /// Authentication and TLS errors are returned at once: every broker would refuse the same way.
    pub async fn any(&self) -> Result<Arc<Connection>, WireError> {
        // Only the default lane: a fetch lane may be busy with a long poll.
        let live: Vec<Slot> = lock(&self.conns)
            .iter()
            .filter(|((_, lane), _)| *lane == Lane::Default)
            .map(|(_, v)| v.clone())
            .collect();
        for slot in live {
            if let Some(c) = slot.lock().await.as_ref() {
                if c.closed().is_none() {
                    return Ok(c.clone());
                }
            }
        }
        let mut causes = Vec::new();
        for addr in &self.bootstrap {
            match self.connect(&addr.host, addr.port).await {
                Ok(c) => return Ok(c),
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => causes.push(e.to_string()),
            }
        }
        Err(WireError::Connect {
            addr: self
                .bootstrap
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(","),
            cause: format!("no bootstrap broker reachable: {}", causes.join("; ")),
        })
    }

    /// Sends one request on `conn`, counting it.
    pub async fn call<Q: Request, P: Response>(
        &self,
        conn: &Connection,
        build: impl FnOnce(i16) -> Q,
    ) -> Result<P, WireError> {
        self.stats.count(Q::KEY);
        conn.call(build).await
    }

    /// The cached metadata (possibly empty).
    pub fn metadata(&self) -> Arc<Metadata> {
        self.metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Asks for metadata of `topics` (all topics when `None`) and merges it into the cache.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[String]>,
    ) -> Result<Arc<Metadata>, WireError> {
        let resp = retry(&self.backoff, "Metadata", |_| async {
            let conn = self.any().await?;
            self.call(&conn, |v| metadata::request(topics, v)).await
        })
        .await?;
        let mut guard = self.metadata.write().unwrap_or_else(|p| p.into_inner());
        let merged = Arc::new(guard.merged(resp, topics.is_none()));
        *guard = merged.clone();
        Ok(merged)
    }

    /// Metadata that covers every topic in `topics`, refreshing once if some are missing.
    pub async fn metadata_for(&self, topics: &[String]) -> Result<Arc<Metadata>, WireError> {
        let md = self.metadata();
        if topics.iter().all(|t| md.topics.contains_key(t)) && !md.brokers.is_empty() {
            return Ok(md);
        }
        self.refresh_metadata(Some(topics)).await
    }

    /// Forgets where `group`'s coordinator is (after NOT_COORDINATOR and friends).
    pub fn forget_coordinator(&self, group: &str) {
        lock(&self.coordinators).remove(group);
    }

    /// Coordinator node of each group: cached, else FindCoordinator (see `coordinator`),
    /// retried for the groups whose answer may heal. Errors are per group.
    pub async fn coordinators(
        &self,
        groups: &[String],
    ) -> BTreeMap<String, Result<i32, ClusterError>> {
        let mut out = BTreeMap::new();
        let mut missing: Vec<String> = Vec::new();
        {
            let cache = lock(&self.coordinators);
            for g in groups {
                match cache.get(g) {
                    Some(n) => {
                        out.insert(g.clone(), Ok(*n));
                    }
                    None => missing.push(g.clone()),
                }
            }
        }
        let found = retry_each(&self.backoff, "FindCoordinator", missing, |todo, _| {
            coordinator::find(self, todo)
        })
        .await;
        for (g, answer) in found {
            if let Ok(n) = &answer {
                lock(&self.coordinators).insert(g.clone(), *n);
            }
            out.insert(g, answer);
        }
        out
    }

    /// Adds brokers learned outside Metadata (FindCoordinator answers) to the cached metadata.
    fn learn_brokers(&self, brokers: Vec<(i32, String, i32)>) {
        if brokers.is_empty() {
            return;
        }
        let mut guard = self.metadata.write().unwrap_or_else(|p| p.into_inner());
        let merged = Arc::new(guard.with_brokers(brokers));
        *guard = merged;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
