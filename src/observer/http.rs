//! `/metrics` and `/healthz` over HTTP/1.
//!
//! Health is about the observer's own loop: 200 while cycles complete, 503 with the reason when
//! the last cycle failed or no cycle has completed for a while (a hung loop is unhealthy too).
//!
//! `/metrics` is streamed in chunks as it is encoded: at 10,000 partitions the text is several
//! megabytes, which as one string would be the observer's biggest allocation.

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
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::metrics::Metrics;

/// What `/healthz` reports.
#[derive(Debug)]
pub struct Health {
    state: Mutex<HealthState>,
    /// A cycle older than this makes the observer unhealthy.
    stale_after: Duration,
}

#[derive(Debug, Default)]
struct HealthState {
    last_ok: Option<Instant>,
    error: Option<String>,
}

impl Health {
    pub fn new(stale_after: Duration) -> Self {
        Health {
            state: Mutex::default(),
            stale_after,
        }
    }

    pub fn ok(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.last_ok = Some(Instant::now());
        s.error = None;
    }

    pub fn failed(&self, reason: String) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).error = Some(reason);
    }

    /// `Ok(())` when healthy, else the reason.
    pub fn check(&self, now: Instant) -> Result<(), String> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &s.error {
            return Err(format!("last cycle failed: {e}"));
        }
        match s.last_ok {
            None => Err("no cycle has completed yet".into()),
            Some(t) if now.duration_since(t) > self.stale_after => Err(format!(
                "no cycle completed for {:.0} s",
                now.duration_since(t).as_secs_f64()
            )),
            Some(_) => Ok(()),
        }
    }
}

/// Binds `addr` and serves until the task is dropped. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            let health = health.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let metrics = metrics.clone();
                    let health = health.clone();
                    async move { Ok::<_, Infallible>(route(&req, &metrics, &health)) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((bound, task))
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

    #[test]
    fn health_table() {
        let h = Health::new(Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(h.check(now), Err("no cycle has completed yet".into()));
        h.ok();
        assert_eq!(h.check(Instant::now()), Ok(()));
        assert!(h
            .check(Instant::now() + Duration::from_secs(11))
            .unwrap_err()
            .contains("no cycle completed for"));
        h.failed("broker down".into());
        assert_eq!(
            h.check(Instant::now()),
            Err("last cycle failed: broker down".into())
        );
        h.ok();
        assert_eq!(h.check(Instant::now()), Ok(()));
    }
}
