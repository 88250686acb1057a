//! `/metrics` and `/healthz` over HTTP/1.
//!
//! Health is about the observer's own loop: 200 while cycles complete, 503 with the reason when
//! the last cycle failed or no cycle has completed for a while (a hung loop is unhealthy too),
//! or when the launcher's calls (IAM, Code Engine) have failed or hung for longer than a bound.
//!
//! `/metrics` is streamed in chunks as it is encoded: at 10,000 partitions the text is several
//! megabytes, which as one string would be the observer's biggest allocation.
//!
//! Every client is bounded ([`limits`]): a capped number of connections, a deadline for the
//! request head, an idle timeout, and a paused accept loop when descriptors run out — so that
//! slow or hostile clients can neither spin the observer nor keep `/healthz` from answering.

pub(crate) mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::error::{CycleError, Unhealthy};
use super::metrics::Metrics;
pub(crate) use limits::Limits;
use limits::{accept_pause, LogLimit, SlotGuard, Slots, Watched};

/// What `/healthz` reports.
#[derive(Debug)]
pub(crate) struct Health {
    state: Mutex<HealthState>,
    /// A cycle older than this makes the observer unhealthy.
    stale_after: Duration,
    /// Launcher trouble older than this makes the observer unhealthy.
    launcher_after: Duration,
}

#[derive(Debug, Default)]
struct HealthState {
    last_ok: Option<Instant>,
    error: Option<CycleError>,
    /// Since when the launcher has been failing or not answering, and how.
    launcher: Option<(Instant, String)>,
}

impl Health {
    pub(crate) fn new(stale_after: Duration) -> Self {
        Health {
            state: Mutex::default(),
            stale_after,
            launcher_after: Duration::from_secs(30),
        }
    }

    /// Sets how long launcher trouble is tolerated (default 30 s).
    pub(crate) fn with_launcher_bound(mut self, d: Duration) -> Self {
        self.launcher_after = d;
        self
    }

    /// The launcher's state: `Some((since, what))` while its calls fail or hang.
    pub(crate) fn launcher(&self, trouble: Option<(Instant, String)>) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .launcher = trouble;
    }

    pub(crate) fn ok(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.last_ok = Some(Instant::now());
        s.error = None;
    }

    pub(crate) fn failed(&self, reason: CycleError) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).error = Some(reason);
    }

    /// `Ok(())` when healthy, else the reason.
    pub(crate) fn check(&self, now: Instant) -> Result<(), Unhealthy> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &s.error {
            return Err(Unhealthy::CycleFailed(e.clone()));
        }
        if let Some((since, what)) = &s.launcher {
            let lasting = now.saturating_duration_since(*since);
            if lasting > self.launcher_after {
                return Err(Unhealthy::Launcher {
                    what: what.clone(),
                    lasting,
                });
            }
        }
        match s.last_ok {
            None => Err(Unhealthy::NoCycleYet),
            Some(t) if now.duration_since(t) > self.stale_after => {
                Err(Unhealthy::Stale(now.duration_since(t)))
            }
            Some(_) => Ok(()),
        }
    }
}

/// Binds `addr` and serves until the task is dropped, with the default [`Limits`] (the
/// connection cap lowered to a quarter of the descriptor limit). Returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let limits = Limits::for_descriptor_limit(limits::descriptor_limit());
    serve_with(addr, metrics, health, limits).await
}

/// [`serve`] with explicit limits.
pub(crate) async fn serve_with(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    limits: Limits,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(accept_loop(listener, metrics, health, Arc::new(limits)));
    Ok((bound, task))
}

async fn accept_loop(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    limits: Arc<Limits>,
) {
    let slots = Arc::new(Slots::default());
    let mut failures = 0u32;
    let mut accept_log = LogLimit::default();
    let mut cap_log = LogLimit::default();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                failures = 0;
                let (guard, evicted) = slots.admit(limits.max_connections);
                if evicted {
                    if let Some(n) = cap_log.due(Instant::now()) {
                        tracing::warn!(
                            cap = limits.max_connections,
                            closed_since_last_line = n,
                            "metrics server: connection cap reached; closed the connection that waited longest without a request"
                        );
                    }
                }
                tokio::spawn(connection(
                    stream,
                    guard,
                    metrics.clone(),
                    health.clone(),
                    limits.clone(),
                ));
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let pause = accept_pause(&e, failures, &limits);
                if pause.is_zero() {
                    continue;
                }
                // Out of descriptors: an HTTP client that waited longest gives its own back.
                let freed = slots.free_one().await;
                if let Some(n) = accept_log.due(Instant::now()) {
                    tracing::warn!(
                        error = %e,
                        pause_ms = if freed { 0 } else { pause.as_millis() as u64 },
                        freed_a_connection = freed,
                        failed_since_last_line = n,
                        "metrics server: cannot accept a connection; closing the longest-waiting one or pausing before the next try"
                    );
                }
                if !freed {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// Largest request head read (hyper's minimum buffer); larger heads get 431.
const MAX_HEAD_BYTES: usize = 8192;

/// Serves one connection until it ends, goes idle, or its slot is taken.
async fn connection(
    stream: TcpStream,
    guard: SlotGuard,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    limits: Arc<Limits>,
) {
    let _ = stream.set_nodelay(true);
    let (io, activity) = Watched::new(stream);
    let slot = guard.slot.clone();
    let svc = service_fn(move |req| {
        slot.serving();
        let resp = route(&req, &metrics, &health);
        slot.answered();
        async move { Ok::<_, Infallible>(resp) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    loop {
        let idle_until = activity.last() + limits.idle_timeout;
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = guard.slot.evicted.notified() => return,
            _ = tokio::time::sleep_until(idle_until.into()) => {
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    return;
                }
            }
        }
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Size of one `/metrics` chunk.
const CHUNK: usize = 64 * 1024;

/// A `fmt::Write` that hands out full chunks; fails once the reader is gone, which stops the
/// encoder.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: String,
}

impl ChunkWriter {
    fn flush(&mut self) -> std::fmt::Result {
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK));
        self.tx
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| std::fmt::Error)
    }
}

impl std::fmt::Write for ChunkWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }
}

/// The metrics text as a stream of chunks, encoded on a blocking thread.
fn metrics_body(metrics: Arc<Metrics>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            tx,
            buf: String::with_capacity(CHUNK),
        };
        if metrics.encode_to(&mut w).is_ok() && !w.buf.is_empty() {
            let _ = w.flush();
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let b = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    StreamBody::new(chunks).boxed_unsync()
}

fn route<B>(req: &Request<B>, metrics: &Arc<Metrics>, health: &Health) -> Response<Body> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => {
            let mut resp = Response::new(metrics_body(metrics.clone()));
            if let Ok(v) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse() {
                resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            return resp;
        }
        "/healthz" => match health.check(Instant::now()) {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            Err(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{reason}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *resp.status_mut() = status;
    if let Ok(v) = ctype.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::metrics::{GroupRow, PartitionRow};
    use crate::offsets::Ends;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_stream_in_chunks_and_equal_the_whole_text() {
        let m = Arc::new(Metrics::new());
        let topic: Arc<str> = "payments".into();
        let group: Arc<str> = "billing".into();
        let parts = (0..5000)
            .map(|p| PartitionRow {
                topic: topic.clone(),
                partition: p,
                ends: Ends {
                    log_start: 1,
                    high_watermark: 10 + p as i64,
                    last_stable: 9,
                },
            })
            .collect();
        let groups = (0..5000)
            .map(|p| GroupRow {
                group: group.clone(),
                topic: topic.clone(),
                partition: p,
                lag: (p % 2 == 0).then_some(p as i64),
                committed: Some(3),
                stuck: p == 7,
                time_lag_ms: (p == 9).then_some(61_500),
            })
            .collect();
        m.partitions.set(parts, groups);
        let mut whole = String::new();
        m.encode_to(&mut whole).unwrap();
        assert!(whole.len() > 4 * CHUNK, "{}", whole.len());
        assert!(whole.contains(
            "kafka_partition_latest_offset{topic=\"payments\",partition=\"4999\"} 5009\n"
        ));
        assert!(whole.contains("kafka_observer_partition_stuck{group=\"billing\",topic=\"payments\",partition=\"7\"} 1\n"));
        assert!(whole.contains("kafka_consumergroup_group_lag_seconds{group=\"billing\",topic=\"payments\",partition=\"9\"} 61.5\n"));
        assert!(!whole.contains(
            "kafka_consumergroup_group_lag{group=\"billing\",topic=\"payments\",partition=\"1\"}"
        ));
        let mut body = metrics_body(m.clone());
        let mut streamed = Vec::new();
        let mut frames = 0;
        while let Some(f) = body.frame().await {
            let data = f.unwrap().into_data().unwrap();
            assert!(data.len() <= CHUNK + 1024);
            streamed.extend_from_slice(&data);
            frames += 1;
        }
        assert!(frames > 4);
        assert_eq!(String::from_utf8(streamed).unwrap(), whole);
    }

    /// A server with small limits and a healthy loop.
    async fn small_server(limits: Limits) -> SocketAddr {
        let health = Arc::new(Health::new(Duration::from_secs(3600)));
        health.ok();
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let (addr, _task) = serve_with(any, Arc::new(Metrics::new()), health, limits)
            .await
            .unwrap();
        addr
    }

    fn quick(max_connections: usize) -> Limits {
        Limits {
            max_connections,
            header_read_timeout: Duration::from_millis(400),
            idle_timeout: Duration::from_millis(400),
            ..Limits::default()
        }
    }

    /// Reads until the server closes; panics if it has not after `secs`.
    async fn closed_within(s: &mut TcpStream, secs: u64) -> Duration {
        use tokio::io::AsyncReadExt;
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(secs), s.read(&mut buf))
                .await
                .expect("the server should have closed the connection");
            match read {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    }

    async fn healthz(addr: SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trickled_request_head_is_cut_off() {
        use tokio::io::AsyncWriteExt;
        let addr = small_server(quick(8)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        // One byte every 100 ms keeps the idle timeout away but never ends the head.
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if s.write_all(b"X").await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), trickle)
            .await
            .expect("the server should have cut the trickling client off");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_and_idle_keep_alive_connections_are_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = small_server(quick(8)).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        closed_within(&mut silent, 20).await;
        let mut kept = TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = kept.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        closed_within(&mut kept, 20).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn healthz_answers_while_slow_clients_fill_every_slot() {
        use tokio::io::AsyncWriteExt;
        let limits = Limits {
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            ..quick(4)
        };
        let addr = small_server(limits).await;
        let mut held = Vec::new();
        for _ in 0..40 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        let answer = tokio::time::timeout(Duration::from_secs(20), healthz(addr))
            .await
            .expect("/healthz should answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ok\n"), "{answer}");
    }

    #[test]
    fn health_table() {
        // The /healthz body without its newline.
        let check = |h: &Health, at: Instant| h.check(at).map_err(|e| e.to_string());
        let h = Health::new(Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(check(&h, now), Err("no cycle has completed yet".into()));
        h.ok();
        assert_eq!(check(&h, Instant::now()), Ok(()));
        assert_eq!(
            check(&h, Instant::now() + Duration::from_secs(11)),
            Err("no cycle completed for 11 s".into())
        );
        h.failed(CycleError::Metadata(crate::wire::WireError::Connect {
            addr: "b1:9092".into(),
            cause: "connection refused".into(),
        }));
        assert_eq!(
            check(&h, Instant::now()),
            Err("last cycle failed: cannot connect to b1:9092: connection refused".into())
        );
        h.ok();
        assert_eq!(check(&h, Instant::now()), Ok(()));
        let h = Health::new(Duration::from_secs(3600)).with_launcher_bound(Duration::from_secs(30));
        h.ok();
        let t = Instant::now();
        h.launcher(Some((t, "Code Engine calls failing: HTTP 500".into())));
        assert_eq!(check(&h, t + Duration::from_secs(29)), Ok(()));
        assert_eq!(
            check(&h, t + Duration::from_secs(31)),
            Err("launcher: Code Engine calls failing: HTTP 500 for 31 s".into())
        );
        h.launcher(None);
        assert_eq!(check(&h, t + Duration::from_secs(31)), Ok(()));
    }
}
