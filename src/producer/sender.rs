//! The producer's one task: records in, batches sealed, requests out to partition leaders,
//! answers back into the pipeline. Everything that decides is in `accumulator.rs` and
//! `pipeline.rs`; this loop only moves data between them, the cluster and the caller.
//!
//! Requests are grouped by leader (one Produce per broker carries the next batch of each of its
//! partitions), at most `max_in_flight` per broker, on the broker's own produce connection; a
//! broker's `throttle_time_ms` holds its next request back. Every retry waits its back-off and
//! logs one line.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::accumulator::{Accumulator, OutRecord};
use super::pipeline::{Answer, Identity, Outgoing, Pipeline};
use super::{ProduceError, ProducerConfig, Report};
use crate::cluster::{Cluster, Lane};
use crate::offsets::TopicPartition;
use crate::protocol::error::{error_name, is_retriable};
use crate::protocol::init_producer_id::{self, InitProducerIdResponse};
use crate::protocol::produce::{self, ProduceResponse};
use crate::retry::{retry, Backoff, Retriable};
use crate::wire::WireError;

/// What the caller asks of the task.
pub(super) enum Command {
    Send(Vec<(TopicPartition, OutRecord)>),
    /// Seal everything and answer once all of it is written or lost.
    Flush(oneshot::Sender<Report>),
}

/// One request's answers, back from its task.
struct Answers {
    broker: i32,
    batches: Vec<(TopicPartition, u64)>,
    result: Result<ProduceResponse, WireError>,
}

/// Why InitProducerId failed.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum InitError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("InitProducerId answered {0}")]
    Broker(String, bool),
}

impl Retriable for InitError {
    fn is_retriable(&self) -> bool {
        match self {
            InitError::Wire(e) => e.is_retriable(),
            InitError::Broker(_, retriable) => *retriable,
        }
    }
}

/// InitProducerId's retries: a broker creating its transaction state topic answers
/// COORDINATOR_LOAD_IN_PROGRESS for several seconds; ~30 s in all.
const INIT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(2),
    retries: 18,
};

/// A new idempotent producer identity from any broker (retried while that may heal).
pub(super) async fn init_producer_id(cluster: &Cluster) -> Result<Identity, InitError> {
    retry(&INIT_BACKOFF, "InitProducerId", |_| async {
        let conn = cluster.any().await?;
        let r: InitProducerIdResponse = cluster
            .call::<InitProducerIdRequest, InitProducerIdResponse>(&conn, |_| {
                init_producer_id::request()
            })
            .await?;
        if r.error_code != 0 {
            return Err(InitError::Broker(
                error_name(r.error_code),
                is_retriable(r.error_code),
            ));
        }
        Ok(Identity {
            producer_id: r.producer_id,
            epoch: r.producer_epoch,
        })
    })
    .await
}

/// The task's state.
pub(super) struct Sender {
    cluster: Arc<Cluster>,
    cfg: ProducerConfig,
    acc: Accumulator,
    pipe: Pipeline,
    requests: HashMap<i32, usize>,
    throttled: HashMap<i32, Instant>,
    answers_tx: mpsc::UnboundedSender<Answers>,
    answers_rx: mpsc::UnboundedReceiver<Answers>,
    waiting: Vec<oneshot::Sender<Report>>,
    report: Report,
    refresh: bool,
    /// Retries so far, for the log.
    retries: u64,
}

impl Sender {
    pub(super) fn new(cluster: Arc<Cluster>, cfg: ProducerConfig, identity: Identity) -> Self {
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        Sender {
            acc: Accumulator::new(cfg.batch_bytes, cfg.linger),
            pipe: Pipeline::new(identity, cfg.pipeline),
            cluster,
            cfg,
            requests: HashMap::new(),
            throttled: HashMap::new(),
            answers_tx,
            answers_rx,
            waiting: Vec::new(),
            report: Report::default(),
            refresh: false,
            retries: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.acc.buffered() + self.pipe.buffered()
    }

    /// Runs until the caller drops its end and everything sent is written or lost.
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut open = true;
        loop {
            let accepting = open && self.buffered() < self.cfg.buffer_bytes;
            let wake = [self.acc.next_due(), self.pipe.next_wake()]
                .into_iter()
                .flatten()
                .chain(self.throttled.values().copied())
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                Some(a) = self.answers_rx.recv() => self.answered(a),
                cmd = commands.recv(), if accepting => match cmd {
                    Some(Command::Send(records)) => {
                        let now = Instant::now();
                        for (tp, r) in &records {
                            for full in self.acc.append(tp, r, now) {
                                self.pipe.push(full, now);
                            }
                        }
                    }
                    Some(Command::Flush(reply)) => {
                        let now = Instant::now();
                        for full in self.acc.drain() {
                            self.pipe.push(full, now);
                        }
                        self.waiting.push(reply);
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            let now = Instant::now();
            for full in self.acc.due(now) {
                self.pipe.push(full, now);
            }
            if !open {
                for full in self.acc.drain() {
                    self.pipe.push(full, now);
                }
            }
            if self.pipe.reset_needed() && self.pipe.in_flight() == 0 {
                self.new_identity().await;
            }
            if self.refresh {
                self.refresh = false;
                let topics = self.pipe.topics();
                if let Err(e) = self.cluster.refresh_metadata(Some(&topics)).await {
                    tracing::warn!(error = %e, "metadata refresh for the producer failed");
                }
            }
            self.send_ready().await;
            self.collect();
            if self.acc.is_empty() && self.pipe.is_idle() {
                for w in self.waiting.drain(..) {
                    let _ = w.send(std::mem::take(&mut self.report));
                }
                if !open {
                    return;
                }
            }
        }
    }

    async fn new_identity(&mut self) {
        tracing::warn!("the broker no longer knows this producer id: getting a new one; batches whose answers were lost before may be written twice");
        match init_producer_id(&self.cluster).await {
            Ok(id) => self.pipe.reset(id),
            Err(e) => {
                tracing::error!(error = %e, "InitProducerId failed; retrying at the next answer or timeout")
            }
        }
    }

    /// Sends one request per leader while batches and request slots are there.
    async fn send_ready(&mut self) {
        loop {
            let now = Instant::now();
            let md = self.cluster.metadata();
            let mut capacity: HashMap<i32, usize> = HashMap::new();
            let max = self.cfg.pipeline.max_in_flight;
            let mut no_leader = false;
            let out = self.pipe.sendable(now, |tp| {
                let Some(leader) = md.leader(&tp.topic, tp.partition) else {
                    no_leader = true;
                    return false;
                };
                if self.throttled.get(&leader).is_some_and(|t| now < *t) {
                    return false;
                }
                let used = self.requests.get(&leader).copied().unwrap_or(0);
                let room = capacity.entry(leader).or_insert(max.saturating_sub(used));
                // One request per leader per round: only the first partition takes the slot.
                *room > 0
            });
            if no_leader {
                self.refresh = true;
            }
            if out.is_empty() {
                return;
            }
            let mut by_leader: BTreeMap<i32, Vec<Outgoing>> = BTreeMap::new();
            for o in out {
                if let Some(l) = md.leader(&o.tp.topic, o.tp.partition) {
                    by_leader.entry(l).or_default().push(o);
                }
            }
            for (leader, batch) in by_leader {
                self.spawn_request(leader, batch);
            }
        }
    }

    fn spawn_request(&mut self, broker: i32, batches: Vec<Outgoing>) {
        *self.requests.entry(broker).or_default() += 1;
        let cluster = self.cluster.clone();
        let tx = self.answers_tx.clone();
        let timeout_ms = self.cfg.broker_timeout_ms;
        tokio::spawn(async move {
            let parts: Vec<(TopicPartition, u64)> =
                batches.iter().map(|o| (o.tp.clone(), o.id)).collect();
            let result = async {
                let conn = cluster.broker_lane(broker, Lane::Produce).await?;
                let topics: Vec<(&str, i32, bytes::Bytes)> = batches
                    .iter()
                    .map(|o| (&*o.tp.topic, o.tp.partition, o.bytes.clone()))
                    .collect();
                cluster
                    .call::<ProduceRequest, ProduceResponse>(&conn, |_| {
                        produce::request(&topics, timeout_ms)
                    })
                    .await
            }
            .await;
            let _ = tx.send(Answers {
                broker,
                batches: parts,
                result,
            });
        });
    }

    fn answered(&mut self, a: Answers) {
        if let Some(n) = self.requests.get_mut(&a.broker) {
            *n = n.saturating_sub(1);
        }
        let now = Instant::now();
        match a.result {
            Err(e) => {
                self.retries += 1;
                tracing::warn!(broker = a.broker, error = %e, batches = a.batches.len(), retries = self.retries, "produce request failed; resending its batches after a back-off (the broker drops duplicates)");
                for (tp, id) in a.batches {
                    let effect = self
                        .pipe
                        .answer(&tp, id, Answer::Transport(e.to_string()), now);
                    self.refresh |= effect.refresh_metadata;
                }
            }
            Ok(resp) => {
                if resp.throttle_time_ms > 0 {
                    self.throttled.insert(
                        a.broker,
                        now + Duration::from_millis(resp.throttle_time_ms as u64),
                    );
                }
                for (tp, id) in a.batches {
                    let answer = resp
                        .topics
                        .iter()
                        .filter(|t| t.name == *tp.topic)
                        .flat_map(|t| t.partitions.iter())
                        .find(|p| p.index == tp.partition)
                        .map(|p| Answer::Partition {
                            error_code: p.error_code,
                            base_offset: p.base_offset,
                            message: p.error_message.clone(),
                        })
                        .unwrap_or_else(|| {
                            Answer::Transport(format!("the answer does not mention {tp}"))
                        });
                    if let Answer::Partition { error_code, .. } = &answer {
                        if *error_code != 0 && super::reaction::reaction(*error_code).retries() {
                            self.retries += 1;
                            tracing::warn!(partition = %tp, error = %error_name(*error_code), retries = self.retries, "produce refused; retrying after a back-off");
                        }
                    }
                    let effect = self.pipe.answer(&tp, id, answer, now);
                    self.refresh |= effect.refresh_metadata;
                }
            }
        }
    }

    /// Moves written and lost batches into the report.
    fn collect(&mut self) {
        let (written, lost) = self.pipe.take_outcomes();
        for w in written {
            self.report.add_written(&w);
        }
        for l in lost {
            tracing::error!(partition = %l.tp, records = l.records, error = %l.error, "records not written");
            self.report.lost.push(l);
        }
    }
}

/// The back-off of one batch's retries: 100 ms doubling to 1 s, until the delivery timeout.
pub(super) const BATCH_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(1),
    retries: u32::MAX,
};

/// Sends `cmd`, mapping a stopped task to an error.
pub(super) async fn send(tx: &mpsc::Sender<Command>, cmd: Command) -> Result<(), ProduceError> {
    tx.send(cmd).await.map_err(|_| ProduceError::Stopped)
}
