//! The cluster as one thing: bootstrap, metadata cache, leader and coordinator routing.
//!
//! One connection per broker, shared by every caller; a dead connection is replaced on next use.
//! Metadata and coordinators are cached and refreshed only when an answer says they moved, so a
//! steady-state cycle costs no Metadata or FindCoordinator requests at all.

pub mod backoff;
mod metadata;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::messages::FindCoordinatorRequest;
use kafka_protocol::protocol::{Request, StrBytes};

use crate::config::brokers::BrokerAddr;
use crate::protocol::find_coordinator::FindCoordinatorResponse;
use crate::protocol::Response;
use crate::wire::kafka_error::{code, error_name, is_retriable};
use crate::wire::{ConnectOptions, Connection, WireError};

pub use backoff::Backoff;
pub use metadata::{Metadata, PartitionMeta, TopicMeta};
pub use stats::RequestStats;

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

/// A Kafka cluster reached through its bootstrap brokers.
pub struct Cluster {
    bootstrap: Vec<BrokerAddr>,
    opts: ConnectOptions,
    conns: Mutex<HashMap<String, Slot>>,
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

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Requests sent so far, per API.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }

    /// The connection to `host:port`, opened on first use and replaced when it died.
    pub async fn connect(&self, host: &str, port: u16) -> Result<Arc<Connection>, WireError> {
        self.connect_lane(host, port, "").await
    }

    /// Like `connect`, on a separate connection named `lane`. A broker answers the requests of
    /// one connection in order, so a long-poll Fetch would hold every request behind it for its
    /// whole wait: fetches get their own lane, as the Java client gives its coordinator one.
    pub async fn connect_lane(
        &self,
        host: &str,
        port: u16,
        lane: &str,
    ) -> Result<Arc<Connection>, WireError> {
        let key = format!("{host}:{port}/{lane}");
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
    pub fn drop_lane(&self, node_id: i32, lane: &str) {
        let Some(a) = self.metadata().brokers.get(&node_id).cloned() else {
            return;
        };
        let key = format!("{}:{}/{lane}", a.host, a.port);
        let slot = lock(&self.conns).get(&key).cloned();
        if let Some(slot) = slot {
            if let Ok(mut guard) = slot.try_lock() {
                *guard = None;
            }
        }
    }

    /// The connection to broker `node_id` as the cached metadata knows it.
    pub async fn broker(&self, node_id: i32) -> Result<Arc<Connection>, WireError> {
        self.broker_lane(node_id, "").await
    }

    /// The connection to broker `node_id` on a separate `lane` (see `connect_lane`).
    pub async fn broker_lane(
        &self,
        node_id: i32,
        lane: &str,
    ) -> Result<Arc<Connection>, WireError> {
        let addr = self.metadata().brokers.get(&node_id).cloned();
        match addr {
            Some(a) => self.connect_lane(&a.host, a.port, lane).await,
            None => Err(WireError::Connect {
                addr: format!("broker {node_id}"),
                cause: "not in the cluster metadata".into(),
            }),
        }
    }

    /// Any live connection: a known broker first, then the bootstrap list in order.
    /// Authentication and TLS errors are returned at once: every broker would refuse the same way.
    pub async fn any(&self) -> Result<Arc<Connection>, WireError> {
        // Only the default lane: a fetch lane may be busy with a long poll.
        let live: Vec<Slot> = lock(&self.conns)
            .iter()
            .filter(|(k, _)| k.ends_with('/'))
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
        let mut attempt = 0;
        loop {
            let result = async {
                let conn = self.any().await?;
                let resp = self.call(&conn, |v| metadata::request(topics, v)).await?;
                Ok::<_, WireError>(resp)
            }
            .await;
            match result {
                Ok(resp) => {
                    let mut guard = self.metadata.write().unwrap_or_else(|p| p.into_inner());
                    let merged = Arc::new(guard.merged(resp, topics.is_none()));
                    *guard = merged.clone();
                    return Ok(merged);
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    attempt += 1;
                    match self.backoff.delay_random(attempt) {
                        Some(d) => {
                            tracing::debug!(error = %e, ?d, "metadata request failed; retrying");
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(e),
                    }
                }
            }
        }
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

    /// Coordinator node of each group: cached, else FindCoordinator — one batched request when
    /// the broker supports v4, else one per group. Errors are per group.
    pub async fn coordinators(&self, groups: &[String]) -> BTreeMap<String, Result<i32, String>> {
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
        let mut attempt = 0;
        while !missing.is_empty() {
            let found = self.find_coordinators(&missing).await;
            let mut retry = Vec::new();
            for g in missing.drain(..) {
                match found.get(&g) {
                    Some(Ok(n)) => {
                        lock(&self.coordinators).insert(g.clone(), *n);
                        out.insert(g, Ok(*n));
                    }
                    Some(Err((msg, retriable))) => {
                        if *retriable {
                            retry.push(g.clone());
                        }
                        out.insert(g, Err(msg.clone()));
                    }
                    None => {
                        out.insert(g, Err("no coordinator in the answer".into()));
                    }
                }
            }
            attempt += 1;
            if retry.is_empty() {
                break;
            }
            match self.backoff.delay_random(attempt) {
                Some(d) => tokio::time::sleep(d).await,
                None => break,
            }
            missing = retry;
        }
        out
    }

    /// One round of FindCoordinator. Err carries (message, retriable).
    async fn find_coordinators(
        &self,
        groups: &[String],
    ) -> HashMap<String, Result<i32, (String, bool)>> {
        let mut out = HashMap::new();
        let conn = match self.any().await {
            Ok(c) => c,
            Err(e) => {
                let retriable = !e.is_fatal();
                for g in groups {
                    out.insert(g.clone(), Err((e.to_string(), retriable)));
                }
                return out;
            }
        };
        let batched = matches!(
            conn.version::<FindCoordinatorRequest, FindCoordinatorResponse>(),
            Ok(v) if v >= 4
        );
        let mut answers: Vec<(String, Result<FindCoordinatorResponse, WireError>)> = Vec::new();
        if batched {
            let keys: Vec<StrBytes> = groups
                .iter()
                .map(|g| StrBytes::from_string(g.clone()))
                .collect();
            let r = self
                .call(&conn, |_| {
                    FindCoordinatorRequest::default()
                        .with_key_type(0)
                        .with_coordinator_keys(keys)
                })
                .await;
            answers.push((String::new(), r));
        } else {
            for g in groups {
                let key = StrBytes::from_string(g.clone());
                let r = self
                    .call(&conn, |v| {
                        let req = FindCoordinatorRequest::default().with_key(key);
                        if v >= 1 {
                            req.with_key_type(0)
                        } else {
                            req
                        }
                    })
                    .await;
                answers.push((g.clone(), r));
            }
        }
        let mut brokers = Vec::new();
        for (asked, answer) in answers {
            match answer {
                Ok(resp) => {
                    for c in resp.coordinators {
                        let group = if c.key.is_empty() {
                            asked.clone()
                        } else {
                            c.key
                        };
                        if c.error_code != 0 {
                            let msg = format!(
                                "FindCoordinator for group '{group}': {}{}",
                                error_name(c.error_code),
                                c.error_message
                                    .map(|m| format!(" ({m})"))
                                    .unwrap_or_default()
                            );
                            out.insert(group, Err((msg, is_retriable(c.error_code))));
                        } else {
                            brokers.push((c.node_id, c.host, c.port));
                            out.insert(group, Ok(c.node_id));
                        }
                    }
                }
                Err(e) => {
                    let targets: Vec<String> = if asked.is_empty() {
                        groups.to_vec()
                    } else {
                        vec![asked]
                    };
                    for g in targets {
                        out.insert(g, Err((e.to_string(), !e.is_fatal())));
                    }
                }
            }
        }
        // The coordinator may be a broker the metadata cache has not seen yet.
        if !brokers.is_empty() {
            let mut guard = self.metadata.write().unwrap_or_else(|p| p.into_inner());
            let merged = Arc::new(guard.with_brokers(brokers));
            *guard = merged;
        }
        out
    }
}

/// Error codes after which the cached leader or coordinator is stale.
pub fn is_stale_route(error_code: i16) -> bool {
    matches!(
        error_code,
        code::NOT_LEADER_OR_FOLLOWER
            | code::UNKNOWN_TOPIC_OR_PARTITION
            | code::LEADER_NOT_AVAILABLE
            | code::FENCED_LEADER_EPOCH
            | code::UNKNOWN_LEADER_EPOCH
            | code::NOT_COORDINATOR
            | code::COORDINATOR_NOT_AVAILABLE
            | code::COORDINATOR_LOAD_IN_PROGRESS
            | code::UNKNOWN_TOPIC_ID
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
