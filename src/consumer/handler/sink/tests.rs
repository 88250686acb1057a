//! Sink tests: the pure header mapping as tables, delivery against a local hyper server that
//! records what it receives.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::*;
use crate::consumer::handler::{Handler, HandlerSpec};

fn msg(offset: i64) -> Message {
    Message {
        topic: "payments".into(),
        partition: 3,
        offset,
        timestamp_ms: 1_709_210_096_789,
        key: Some(Bytes::from_static(b"order-7")),
        value: Some(Bytes::from(format!("{{\"n\":{offset}}}"))),
        headers: vec![],
        log_append_time: false,
    }
}

fn names(headers: &[(HeaderName, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn header_table() {
    let plain = msg(42);
    let mut binary_key = msg(43);
    binary_key.key = Some(Bytes::from_static(b"\x00\xff\x10"));
    binary_key.headers = vec![
        (
            "Content-Type".into(),
            Some(Bytes::from_static(b"text/plain")),
        ),
        (
            "content-type".into(),
            Some(Bytes::from_static(b"application/json")),
        ),
    ];
    let mut no_key = msg(44);
    no_key.key = None;
    no_key.timestamp_ms = -1;
    no_key.headers = vec![(
        "content-type".into(),
        Some(Bytes::from_static(b"bad\nvalue")),
    )];
    let mut spaced = msg(0);
    spaced.key = Some(Bytes::from("a b\"c%d€".as_bytes().to_vec()));
    spaced.headers = vec![("content-type".into(), None)];

    type Case<'a> = (&'a Message, &'a str, Vec<(String, String)>);
    let cases: Vec<Case> = vec![
        (
            &plain,
            "kafka-observer/g/payments",
            pairs(&[
                ("ce-specversion", "1.0"),
                ("ce-id", "payments-3-42"),
                ("ce-source", "kafka-observer/g/payments"),
                ("ce-type", "dev.knative.kafka.event"),
                ("ce-time", "2024-02-29T12:34:56.789Z"),
                ("ce-partition", "3"),
                ("ce-offset", "42"),
                ("ce-key", "order-7"),
                ("content-type", "application/octet-stream"),
            ]),
        ),
        (
            &binary_key,
            "s",
            pairs(&[
                ("ce-specversion", "1.0"),
                ("ce-id", "payments-3-43"),
                ("ce-source", "s"),
                ("ce-type", "dev.knative.kafka.event"),
                ("ce-time", "2024-02-29T12:34:56.789Z"),
                ("ce-partition", "3"),
                ("ce-offset", "43"),
                ("ce-key", "AP8Q"),
                ("content-type", "application/json"),
            ]),
        ),
        (
            &no_key,
            "kafka-observer/my group/payments",
            pairs(&[
                ("ce-specversion", "1.0"),
                ("ce-id", "payments-3-44"),
                ("ce-source", "kafka-observer/my%20group/payments"),
                ("ce-type", "dev.knative.kafka.event"),
                ("ce-partition", "3"),
                ("ce-offset", "44"),
                ("content-type", "application/octet-stream"),
            ]),
        ),
        (
            &spaced,
            "s",
            pairs(&[
                ("ce-specversion", "1.0"),
                ("ce-id", "payments-3-0"),
                ("ce-source", "s"),
                ("ce-type", "dev.knative.kafka.event"),
                ("ce-time", "2024-02-29T12:34:56.789Z"),
                ("ce-partition", "3"),
                ("ce-offset", "0"),
                ("ce-key", "a%20b%22c%25d%E2%82%AC"),
                ("content-type", "application/octet-stream"),
            ]),
        ),
    ];
    for (m, source, want) in cases {
        let got = names(&event_headers(m, source));
        assert_eq!(got, want, "offset {}", m.offset);
        for (name, value) in &got {
            // Extension names: lowercase alphanumeric after the prefix.
            if let Some(attr) = name.strip_prefix("ce-") {
                assert!(
                    attr.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "{name}"
                );
            }
            HeaderValue::from_str(value).unwrap();
        }
    }
}

#[test]
fn header_text_table() {
    for (raw, want) in [
        ("plain-text_1.2/x:y", "plain-text_1.2/x:y"),
        ("Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
        ("\"q\" 100%", "%22q%22%20100%25"),
        ("tab\there\n\x7f", "tab%09here%0A%7F"),
        ("", ""),
    ] {
        assert_eq!(header_text(raw), want, "{raw:?}");
    }
}

#[test]
fn display_url_table() {
    for (raw, want) in [
        ("https://h.example/path", "https://h.example/path"),
        (
            "https://h.example/path?token=abc",
            "https://h.example/path?…",
        ),
        ("http://user:pw@h:8080/p", "http://h:8080/p"),
        ("http://user:pw@h", "http://h"),
        ("https://h/a@b", "https://h/a@b"),
        ("not a url", "not a url"),
        ("u:p@host/x?y", "host/x?…"),
    ] {
        assert_eq!(display_url(raw), want, "{raw}");
    }
}

/// What the test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Seen {
    /// The `ce-*` and `content-type` headers, in the order received.
    fn event_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(n, _)| n.starts_with("ce-") || n == "content-type")
            .cloned()
            .collect()
    }
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

/// A local HTTP/1 server answering request number `i` (0-based) with `status(i)`.
async fn server(status: fn(usize) -> u16) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/events?token=t0ps3cret",
        listener.local_addr().unwrap()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (seen2, connections2) = (seen.clone(), connections.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            connections2.fetch_add(1, Ordering::SeqCst);
            let seen = seen2.clone();
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let seen = seen.clone();
                async move {
                    let method = req.method().to_string();
                    let path = req.uri().to_string();
                    let headers = req
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
                        .collect();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let index = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(Seen {
                            method,
                            path,
                            headers,
                            body,
                        });
                        seen.len() - 1
                    };
                    let code = StatusCode::from_u16(status(index)).unwrap();
                    let text = if code.is_success() { "" } else { "boom\ntrace" };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(code)
                            .body(Full::new(Bytes::from(text)))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Server {
        url,
        seen,
        connections,
    }
}

fn sink_handler(url: &str) -> Handler {
    Handler::new(&HandlerSpec::Sink {
        url: url.to_string(),
        timeout: Duration::from_secs(10),
        source: "kafka-observer/g/payments".into(),
    })
    .unwrap()
}

#[tokio::test]
async fn three_records_arrive_as_cloudevents_over_one_connection() {
    let srv = server(|_| 202).await;
    let mut h = sink_handler(&srv.url);
    let mut batch = vec![msg(10), msg(11), msg(12)];
    batch[1].key = Some(Bytes::from_static(b"\xff"));
    batch[1].headers = vec![(
        "content-type".into(),
        Some(Bytes::from_static(b"application/json")),
    )];
    batch[2].key = None;
    batch[2].value = None;
    h.handle(&batch).await.unwrap();

    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    let common = |offset: &str, key: Option<&str>, ct: &str| {
        let id = format!("payments-3-{offset}");
        let mut v = pairs(&[
            ("ce-specversion", "1.0"),
            ("ce-id", &id),
            ("ce-source", "kafka-observer/g/payments"),
            ("ce-type", "dev.knative.kafka.event"),
            ("ce-time", "2024-02-29T12:34:56.789Z"),
            ("ce-partition", "3"),
            ("ce-offset", offset),
        ]);
        if let Some(key) = key {
            v.push(("ce-key".into(), key.into()));
        }
        v.push(("content-type".into(), ct.into()));
        v
    };
    let want = [
        common("10", Some("order-7"), "application/octet-stream"),
        common("11", Some("/w=="), "application/json"),
        common("12", None, "application/octet-stream"),
    ];
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, "/events?token=t0ps3cret");
        let mut got = s.event_headers();
        got.sort();
        let mut expected = want[i].clone();
        expected.sort();
        assert_eq!(got, expected, "record {i}");
        assert!(s
            .headers
            .iter()
            .any(|(n, v)| n == "user-agent" && v.starts_with("kafka-observer/")));
    }
    assert_eq!(seen[0].body, Bytes::from_static(b"{\"n\":10}"));
    assert_eq!(seen[1].body, Bytes::from_static(b"{\"n\":11}"));
    assert_eq!(seen[2].body, Bytes::new(), "a null value is an empty body");
    assert_eq!(
        srv.connections.load(Ordering::SeqCst),
        1,
        "keep-alive reuses one connection"
    );
}

#[tokio::test]
async fn a_500_stops_the_batch_at_that_record() {
    let srv = server(|i| if i == 1 { 500 } else { 200 }).await;
    let mut h = sink_handler(&srv.url);
    let f = h.handle(&[msg(0), msg(1), msg(2)]).await.unwrap_err();
    assert_eq!(f.handled, 1);
    assert!(
        matches!(f.error, HandlerError::SinkStatus { status: 500, .. }),
        "{:?}",
        f.error
    );
    let text = f.to_string();
    assert!(
        text.contains("500") && text.contains("payments-3-1"),
        "{text}"
    );
    assert!(text.contains("boom\\ntrace"), "body shown escaped: {text}");
    assert!(!text.contains("t0ps3cret"), "query hidden: {text}");
    assert_eq!(
        srv.seen.lock().unwrap().len(),
        2,
        "nothing sent after the failure"
    );
}

#[tokio::test]
async fn connect_refused_handles_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut h = sink_handler(&format!("http://127.0.0.1:{port}/x"));
    let f = h.handle(&[msg(0), msg(1)]).await.unwrap_err();
    assert_eq!(f.handled, 0);
    assert!(
        matches!(f.error, HandlerError::SinkDelivery { .. }),
        "{:?}",
        f.error
    );
    assert!(f.to_string().contains("cannot connect"), "{f}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts, reads nothing, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut h = Handler::new(&HandlerSpec::Sink {
        url: format!("http://{addr}/"),
        timeout: Duration::from_millis(300),
        source: "s".into(),
    })
    .unwrap();
    let f = h.handle(&[msg(0)]).await.unwrap_err();
    assert_eq!(f.handled, 0);
    assert!(f.to_string().contains("no response within"), "{f}");
    hold.abort();
}

#[tokio::test]
async fn empty_batch_sends_nothing() {
    let srv = server(|_| 200).await;
    let mut h = sink_handler(&srv.url);
    h.handle(&[]).await.unwrap();
    assert!(srv.seen.lock().unwrap().is_empty());
}

/// A server answering every request with `status` and a body of `body_len` bytes.
async fn big_body_server(status: u16, body_len: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                let _ = req.into_body().collect().await;
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::from_u16(status).unwrap())
                        .body(Full::new(Bytes::from(vec![b'x'; body_len])))
                        .unwrap(),
                )
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}

#[tokio::test]
async fn any_2xx_is_handled_whatever_the_body_size() {
    // 3 MiB answers: more than the body cap; still delivered, every time.
    let url = big_body_server(200, 3 << 20).await;
    let mut h = sink_handler(&url);
    h.handle(&[msg(0), msg(1), msg(2)]).await.unwrap();
    // A huge error body is cut, and still reported as the status.
    let url = big_body_server(503, 3 << 20).await;
    let mut h = sink_handler(&url);
    let f = h.handle(&[msg(0)]).await.unwrap_err();
    assert!(
        matches!(f.error, HandlerError::SinkStatus { status: 503, .. }),
        "{:?}",
        f.error
    );
    assert!(f.to_string().len() < 1000, "{f}");
}
