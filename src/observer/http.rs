//! `/metrics` and `/healthz` over HTTP/1.
//!
//! Health is about the observer's own loop: 200 while cycles complete, 503 with the reason when
//! the last cycle failed or no cycle has completed for a while (a hung loop is unhealthy too).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
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

fn route<B>(req: &Request<B>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
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
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = ctype.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

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
