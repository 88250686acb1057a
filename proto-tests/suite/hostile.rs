//! Hostile or broken peers: a hand-made server on loopback sends what no broker should, and the
//! client must answer with a clear error — never abort, never allocate what the peer claims.
//!
//! These run in the test process itself: an abort (kafka-protocol's allocation bomb) would kill
//! the whole test binary, so a passing run is the proof.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use kafka_observer::protocol::metadata::MetadataResponse;
use kafka_observer::wire::{ConnectOptions, Connection, WireError};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake broker answers to one request: raw bytes to write, then whether to close.
type Script = dyn Fn(i16, i16, i32) -> (Vec<u8>, bool) + Send + Sync;

/// Serves every accepted connection with `script`; returns the address.
async fn fake_broker(script: Arc<Script>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, script.clone()));
        }
    });
    addr
}

async fn serve(mut sock: TcpStream, script: Arc<Script>) {
    loop {
        let mut size = [0u8; 4];
        if sock.read_exact(&mut size).await.is_err() {
            return;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        if sock.read_exact(&mut frame).await.is_err() {
            return;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let (bytes, close) = script(key, version, corr);
        if sock.write_all(&bytes).await.is_err() {
            return;
        }
        if close {
            let _ = sock.shutdown().await;
            // Keep the socket until the peer closes, so the client reads our bytes first.
            let mut sink = [0u8; 64];
            while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A well-formed ApiVersions answer (header v0) advertising Metadata 0..=12.
fn api_versions_ok(version: i16, corr: i32) -> Vec<u8> {
    let resp = ApiVersionsResponse::default().with_api_keys(vec![
        ApiVersion::default()
            .with_api_key(18)
            .with_min_version(0)
            .with_max_version(3),
        ApiVersion::default()
            .with_api_key(3)
            .with_min_version(0)
            .with_max_version(12),
    ]);
    let mut body = BytesMut::new();
    body.put_i32(corr);
    resp.encode(&mut body, version).unwrap();
    frame(&body)
}

/// ApiVersions is answered properly; every other request gets `hostile(corr)`.
fn after_handshake(
    hostile: impl Fn(i32) -> (Vec<u8>, bool) + Send + Sync + 'static,
) -> Arc<Script> {
    Arc::new(move |key, version, corr| {
        if key == 18 {
            (api_versions_ok(version, corr), false)
        } else {
            hostile(corr)
        }
    })
}

fn opts() -> ConnectOptions {
    ConnectOptions {
        request_timeout: Duration::from_secs(20),
        max_frame_bytes: 1024 * 1024,
        ..ConnectOptions::default()
    }
}

async fn metadata_call(addr: SocketAddr) -> Result<MetadataResponse, WireError> {
    let conn = Connection::connect("127.0.0.1", addr.port(), &opts()).await?;
    conn.call::<MetadataRequest, MetadataResponse>(|_| MetadataRequest::default())
        .await
}

/// Runs `f` and checks it fails fast with an error whose text contains every word of `want`.
async fn expect_error<T: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, WireError>>,
    want: &[&str],
) {
    let start = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 15 s"));
    let err = match result {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    };
    for w in want {
        assert!(err.contains(w), "{what}: error '{err}' lacks '{w}'");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{what}: too slow"
    );
}

#[tokio::test]
async fn lying_array_count_in_metadata_is_an_error_not_an_abort() {
    // The 14-byte MetadataResponse of the pitfall: header (corr id + no tags), throttle, and a
    // broker array that claims 2^31 - 1 entries (compact: uvarint of n + 1).
    let addr = fake_broker(after_handshake(|corr| {
        let mut b = BytesMut::new();
        b.put_i32(corr);
        b.put_u8(0); // header tagged fields
        b.put_i32(0); // throttle
        b.put_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]); // uvarint 2^31
        (frame(&b), false)
    }))
    .await;
    expect_error(
        "lying compact count",
        metadata_call(addr),
        &["Metadata", "malformed", "count"],
    )
    .await;
}

#[tokio::test]
async fn lying_array_count_in_api_versions_is_an_error() {
    // ApiVersions v0 format (what a broker sends for UNSUPPORTED_VERSION) claiming i32::MAX keys.
    let addr = fake_broker(Arc::new(|_, _, corr| {
        let mut b = BytesMut::new();
        b.put_i32(corr);
        b.put_i16(0);
        b.put_i32(i32::MAX);
        b.put_i16(18);
        (frame(&b), false)
    }))
    .await;
    expect_error(
        "lying classic count",
        Connection::connect("127.0.0.1", addr.port(), &opts()),
        &["ApiVersions", "malformed"],
    )
    .await;
}

#[tokio::test]
async fn oversized_frame_is_refused_before_reading_it() {
    let addr = fake_broker(after_handshake(|corr| {
        let mut b = (64 * 1024 * 1024i32).to_be_bytes().to_vec();
        b.extend_from_slice(&corr.to_be_bytes());
        (b, false)
    }))
    .await;
    expect_error(
        "oversized frame",
        metadata_call(addr),
        &["closed", "over the 1048576-byte limit"],
    )
    .await;
}

#[tokio::test]
async fn negative_frame_size_is_an_error() {
    let addr = fake_broker(after_handshake(|_| ((-5i32).to_be_bytes().to_vec(), false))).await;
    expect_error(
        "negative size",
        metadata_call(addr),
        &["negative frame size"],
    )
    .await;
}

#[tokio::test]
async fn truncated_frame_is_an_error() {
    let addr = fake_broker(after_handshake(|corr| {
        let mut b = 100i32.to_be_bytes().to_vec();
        b.extend_from_slice(&corr.to_be_bytes());
        b.extend_from_slice(&[0; 6]);
        (b, true)
    }))
    .await;
    expect_error(
        "truncated frame",
        metadata_call(addr),
        &["middle of a frame", "10 of 100"],
    )
    .await;
}

#[tokio::test]
async fn truncated_body_inside_a_complete_frame_is_an_error() {
    // The frame is whole but the Metadata body ends in the middle of a broker entry.
    let addr = fake_broker(after_handshake(|corr| {
        let mut b = BytesMut::new();
        b.put_i32(corr);
        b.put_u8(0);
        b.put_i32(0);
        b.put_u8(2); // one broker
        b.put_i32(1); // node id, then nothing
        (frame(&b), false)
    }))
    .await;
    expect_error(
        "truncated body",
        metadata_call(addr),
        &["Metadata", "malformed"],
    )
    .await;
}

#[tokio::test]
async fn unknown_correlation_id_poisons_the_connection() {
    let addr = fake_broker(after_handshake(|corr| {
        let mut b = BytesMut::new();
        b.put_i32(corr + 1000);
        b.put_u8(0);
        (frame(&b), false)
    }))
    .await;
    expect_error(
        "unknown correlation id",
        metadata_call(addr),
        &["correlation id", "never sent"],
    )
    .await;
}

#[tokio::test]
async fn peer_closing_mid_request_is_a_clear_error() {
    let addr = fake_broker(after_handshake(|_| (Vec::new(), true))).await;
    expect_error(
        "peer closes",
        metadata_call(addr),
        &["closed by the broker"],
    )
    .await;
}

#[tokio::test]
async fn an_http_server_is_not_mistaken_for_a_broker() {
    let addr = fake_broker(Arc::new(|_, _, _| {
        (
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec(),
            true,
        )
    }))
    .await;
    expect_error(
        "HTTP peer",
        Connection::connect("127.0.0.1", addr.port(), &opts()),
        &["limit"],
    )
    .await;
}

#[tokio::test]
async fn silence_is_a_timeout_not_a_hang() {
    let addr = fake_broker(after_handshake(|_| (Vec::new(), false))).await;
    let o = ConnectOptions {
        request_timeout: Duration::from_millis(500),
        ..opts()
    };
    let conn = Connection::connect("127.0.0.1", addr.port(), &o)
        .await
        .unwrap();
    let err = conn
        .call::<MetadataRequest, MetadataResponse>(|_| MetadataRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(err, WireError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("Metadata"), "{err}");
}

#[test]
fn the_binary_survives_a_hostile_broker_with_exit_1() {
    // The same lying Metadata answer, through the CLI: a clean exit 1 with a message, no signal.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(fake_broker(after_handshake(|corr| {
        let mut b = BytesMut::new();
        b.put_i32(corr);
        b.put_u8(0);
        b.put_i32(0);
        b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        (frame(&b), false)
    })));
    let out = crate::support::run(&[
        "lag",
        "--bootstrap",
        &addr.to_string(),
        "--group",
        "g",
        "--topic",
        "t",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("malformed Metadata response"),
        "stderr: {stderr}"
    );
}

#[test]
fn an_advertised_port_beyond_65535_is_refused_not_truncated() {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Where a 16-bit cast of the advertised port would lead: nothing may connect here.
    let decoy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    decoy.set_nonblocking(true).unwrap();
    let advertised = i32::from(decoy.local_addr().unwrap().port()) + 65_536;
    let addr = rt.block_on(fake_broker(after_handshake(move |corr| {
        let resp = kafka_protocol::messages::MetadataResponse::default()
            .with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(advertised)])
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(1))])]);
        let mut b = BytesMut::new();
        b.put_i32(corr);
        b.put_u8(0); // header tagged fields (Metadata v12 is flexible)
        resp.encode(&mut b, 12).unwrap();
        (frame(&b), false)
    })));
    let out = crate::support::command(&[
        "lag",
        "--bootstrap",
        &addr.to_string(),
        "--topic",
        "t",
        "--group",
        "g",
        "--json",
        "--request-timeout",
        "5",
    ])
    .output()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{advertised} is not a TCP port")),
        "exit {:?}: {text}",
        out.status
    );
    assert!(
        decoy.accept().is_err(),
        "something connected to the truncated port"
    );
}
