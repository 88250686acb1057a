//! SASL OAUTHBEARER with IBM IAM tokens (from the fake IBM Cloud) and KIP-368
//! re-authentication, against the broker's SASL_OAUTH listener (unsecured JWT validation,
//! `connections.max.reauth.ms` = `harness::OAUTH_REAUTH_MS`).

use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_observer::config::Secret;
use kafka_observer::protocol::metadata::MetadataResponse;
use kafka_observer::wire::{ConnectOptions, Connection, SaslConfig, WireError};
use kafka_observer::wire::{Credentials, Mechanism, TokenFuture, TokenSource};
use kafka_protocol::messages::MetadataRequest;
use serde_json::{json, Value};

use crate::fake_ce::{unsecured_jwt, FakeCloud};
use crate::harness::{self, USERS};
use crate::support::command::command_env;
use crate::support::wait::eventually_async;
use crate::support::{eventually_every, run_env, text};

/// A topic with `counts[p]` records in partition p, and a group committed at `committed` on
/// partition 0.
fn topic_and_group(counts: &[u32], committed: i64) -> (String, String) {
    let b = harness::broker();
    let topic = harness::unique("oauth");
    b.create_topic(&topic, counts.len() as i32);
    for (p, n) in counts.iter().enumerate() {
        if *n > 0 {
            b.produce(&topic, p as i32, *n);
        }
    }
    let group = harness::unique("oauth-g");
    b.commit_offset(&group, &topic, 0, committed);
    (topic, group)
}

/// Checks one `lag --json` report: partition 0 committed at 1 of 3, partition 1 empty.
fn check_report(report: &Value, group: &str, topic: &str) -> Result<(), String> {
    let g = report["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group"] == group))
        .ok_or_else(|| format!("group {group} missing: {report}"))?;
    let parts = g["partitions"]
        .as_array()
        .ok_or_else(|| format!("no partitions: {report}"))?;
    let p0 = parts
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == 0)
        .ok_or_else(|| format!("partition 0 missing: {report}"))?;
    if p0["committed"] != 1 || p0["high_watermark"] != 3 || p0["lag"] != 2 {
        return Err(format!("partition 0 wrong: {p0}"));
    }
    Ok(())
}

#[test]
fn lag_with_oauthbearer_iam_tokens() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.set_jwt_tokens(true);
    let (topic, group) = topic_and_group(&[3, 0], 1);
    let addr = b.sasl_oauth();
    let iam = cloud.iam_url();
    let args = [
        "lag",
        "--bootstrap",
        &addr,
        "--group",
        &group,
        "--json",
        "--sasl-mechanism",
        "OAUTHBEARER",
        "--allow-plain-without-tls",
    ];
    // The API key from MESSAGEHUB_PASSWORD; MESSAGEHUB_USER is ignored.
    let out = run_env(
        &args,
        &[
            ("MESSAGEHUB_PASSWORD", FakeCloud::API_KEY),
            ("MESSAGEHUB_USER", "someone-else"),
            ("IAM_URL", &iam),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    check_report(&report, &group, &topic).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    assert!(cloud.token_requests() >= 1);

    // The mechanism from KAFKA_SASL_MECHANISM, the key from IAM_API_KEY, the URL by flag.
    let before = cloud.token_requests();
    let out = run_env(
        &[
            "lag",
            "--bootstrap",
            &addr,
            "--group",
            &group,
            "--json",
            "--sasl-iam-url",
            &iam,
        ],
        &[
            ("KAFKA_SASL_MECHANISM", "oauthbearer"),
            ("IAM_API_KEY", FakeCloud::API_KEY),
            ("KAFKA_ALLOW_PLAIN_WITHOUT_TLS", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    check_report(&report, &group, &topic).unwrap_or_else(|e| panic!("{e}\n{}", text(&out)));
    assert!(cloud.token_requests() > before);

    // Without TLS and without the opt-in, the token is not sent in clear.
    let out = run_env(
        &args[..args.len() - 1],
        &[
            ("MESSAGEHUB_PASSWORD", FakeCloud::API_KEY),
            ("IAM_URL", &iam),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("OAUTHBEARER"), "{}", text(&out));
}

#[test]
fn oauthbearer_with_a_wrong_api_key_is_a_clear_iam_error() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.set_jwt_tokens(true);
    let key = "wrong-Key-0123456789-abcdef";
    let out = run_env(
        &[
            "lag",
            "--bootstrap",
            &b.sasl_oauth(),
            "--group",
            "g",
            "--topic",
            "t",
            "--sasl-mechanism",
            "OAUTHBEARER",
            "--allow-plain-without-tls",
        ],
        &[("MESSAGEHUB_PASSWORD", key), ("IAM_URL", &cloud.iam_url())],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("OAUTHBEARER"), "{all}");
    assert!(all.contains("IAM"), "{all}");
    assert!(all.contains("BXNIM0415E"), "{all}");
    assert!(all.contains("MESSAGEHUB_PASSWORD"), "{all}");
    assert!(!all.contains(key), "the API key leaked: {all}");
}

/// Reads a child's pipe into a shared buffer until it closes.
fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let out = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn snapshot(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).to_string()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lag_watch_survives_token_and_session_expiry() {
    let b = harness::broker();
    let cloud = FakeCloud::start();
    cloud.set_jwt_tokens(true);
    cloud.set_token_lifetime(6);
    let (topic, group) = topic_and_group(&[3, 0], 1);
    let mut child = command_env(
        &[
            "lag",
            "--bootstrap",
            &b.sasl_oauth(),
            "--group",
            &group,
            "--json",
            "--watch",
            "0.5",
            "--sasl-mechanism",
            "OAUTHBEARER",
            "--allow-plain-without-tls",
        ],
        &[
            ("MESSAGEHUB_PASSWORD", FakeCloud::API_KEY),
            ("IAM_URL", &cloud.iam_url()),
            ("RUST_LOG", "kafka_observer=debug"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn kafka-observer");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let mut child = KillOnDrop(child);

    // Several token lifetimes (6 s) and broker sessions (≤ 5 s): wait for the evidence, with a
    // deadline generous enough for a slow machine.
    let pause = Duration::from_millis(250);
    eventually_every(
        pause,
        120,
        "4 re-authentications and 3 token requests",
        || {
            let log = snapshot(&stderr);
            let reauths = log.matches("re-authenticated").count();
            if reauths >= 4 && cloud.token_requests() >= 3 {
                return Ok(());
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("lag exited early ({status}):\n{log}");
            }
            Err(format!(
                "{reauths} re-authentications so far, {} token requests:\n{log}",
                cloud.token_requests()
            ))
        },
    );
    drop(child);

    let log = snapshot(&stderr);
    // No connection was lost: the link logs every closure, and re-authentication failures.
    for bad in [
        "connection closed",
        "re-authentication failed",
        "ERROR",
        "WARN",
    ] {
        assert!(!log.contains(bad), "'{bad}' in the log:\n{log}");
    }
    // Connections are opened once (bootstrap and the coordinator's); re-authentication, not
    // reconnection, kept them alive.
    let opened = log
        .matches("SASL session expires; re-authentication scheduled")
        .count();
    assert!((1..=3).contains(&opened), "{opened} connections:\n{log}");
    // Every complete watch frame is right.
    let out = snapshot(&stdout);
    // Off a terminal, one JSON document per line.
    let frames: Vec<&str> = out.lines().filter(|f| !f.trim().is_empty()).collect();
    assert!(frames.len() >= 10, "{} frames:\n{out}", frames.len());
    let complete = &frames[..frames.len() - 1]; // the last one may have been cut by the kill
    for f in complete {
        let report: Value =
            serde_json::from_str(f).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {f}"));
        check_report(&report, &group, &topic).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn metadata_request(_: i16) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![]))
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

fn scram_options() -> ConnectOptions {
    ConnectOptions {
        sasl: Some(SaslConfig {
            mechanism: Mechanism::ScramSha512,
            credentials: Credentials {
                username: USERS[0].0.into(),
                password: Secret::new(USERS[0].1),
            },
            token_source: None,
        }),
        ..ConnectOptions::default()
    }
}

#[test]
fn scram_session_is_renewed_under_concurrent_load() {
    let b = harness::broker();
    let addr = b.sasl_oauth();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = Arc::new(
            Connection::connect("127.0.0.1", port(&addr), &scram_options())
                .await
                .expect("SCRAM-SHA-512 on SASL_OAUTH"),
        );
        let lifetime = conn.session_lifetime_ms();
        assert!(
            lifetime > 0 && lifetime <= harness::OAUTH_REAUTH_MS as i64,
            "{lifetime}"
        );
        // Four callers keep requests in flight all the time while sessions expire.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (conn, stop, calls) = (conn.clone(), stop.clone(), calls.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let r: Result<MetadataResponse, WireError> =
                            conn.call(metadata_request).await;
                        if let Err(e) = r {
                            return Err(e.to_string());
                        }
                        calls.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Ok(())
                })
            })
            .collect();
        let c = &conn;
        let pause = Duration::from_millis(200);
        eventually_async(pause, 90, "3 re-authentications", move || async move {
            if c.reauthentications() >= 3 {
                return Ok(());
            }
            assert!(c.closed().is_none(), "closed: {:?}", c.closed());
            Err(format!(
                "{} re-authentications (closed: {:?})",
                c.reauthentications(),
                c.closed()
            ))
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap().unwrap();
        }
        assert!(conn.closed().is_none(), "closed: {:?}", conn.closed());
        assert!(calls.load(Ordering::Relaxed) > 20);
    });
}

/// Tokens made by the test: the first `good` calls get a valid JWT, later ones `bad`.
#[derive(Debug)]
struct Scripted {
    good: usize,
    bad: &'static str,
    calls: AtomicUsize,
    lifetime: u64,
}

impl TokenSource for Scripted {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let exp = now + self.lifetime;
            if n < self.good {
                let jwt = unsecured_jwt(&json!({"sub": "scripted", "iat": now, "exp": exp}));
                Ok((Secret::new(jwt), Some(exp as i64)))
            } else {
                Ok((Secret::new(self.bad), Some(exp as i64)))
            }
        })
    }
}

fn oauth_options(source: Scripted) -> ConnectOptions {
    ConnectOptions {
        sasl: Some(SaslConfig {
            mechanism: Mechanism::OAuthBearer,
            credentials: Credentials {
                username: "token".into(),
                password: Secret::new(""),
            },
            token_source: Some(Arc::new(source)),
        }),
        allow_plain_without_tls: true,
        ..ConnectOptions::default()
    }
}

#[test]
fn rejected_token_reports_the_server_challenge_without_the_token() {
    let b = harness::broker();
    let addr = b.sasl_oauth();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let bad = "not-a-jwt-SECRET-value";
        let source = Scripted {
            good: 0,
            bad,
            calls: AtomicUsize::new(0),
            lifetime: 60,
        };
        let err = Connection::connect("127.0.0.1", port(&addr), &oauth_options(source))
            .await
            .expect_err("a non-JWT token is refused");
        let text = format!("{err} {err:?}");
        assert!(matches!(err, WireError::AuthFailed { .. }), "{text}");
        assert!(text.contains("OAUTHBEARER"), "{text}");
        assert!(text.contains("invalid_token"), "{text}");
        assert!(!text.contains(bad), "the token leaked: {text}");
    });
}

#[test]
fn failed_reauthentication_poisons_the_connection() {
    let b = harness::broker();
    let addr = b.sasl_oauth();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let source = Scripted {
            good: 1,
            bad: "expired-or-garbage",
            calls: AtomicUsize::new(0),
            lifetime: 60,
        };
        let conn = Connection::connect("127.0.0.1", port(&addr), &oauth_options(source))
            .await
            .expect("the first token is good");
        assert!(conn.session_lifetime_ms() > 0);
        let _: MetadataResponse = conn.call(metadata_request).await.expect("first call");
        let c = &conn;
        let pause = Duration::from_millis(200);
        let err = eventually_async(pause, 60, "the connection to fail", move || async move {
            match c.call::<_, MetadataResponse>(metadata_request).await {
                Ok(_) => Err("still usable"),
                Err(e) => Ok(e),
            }
        })
        .await;
        let text = err.to_string();
        assert!(matches!(err, WireError::Closed { .. }), "{text}");
        assert!(text.contains("re-authentication failed"), "{text}");
        assert!(text.contains("invalid_token"), "{text}");
        assert!(!text.contains("expired-or-garbage"), "{text}");
        assert!(conn.closed().is_some());
        assert_eq!(conn.reauthentications(), 0);
    });
}

/// Event Streams runs Kafka 3.8: OAUTHBEARER and re-authentication on a 3.x broker too.
#[test]
fn kafka_3_9_oauthbearer_and_reauthentication() {
    let b = harness::broker_version("3.9.1");
    let addr = b.sasl_oauth();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let source = Scripted {
            good: usize::MAX,
            bad: "",
            calls: AtomicUsize::new(0),
            lifetime: 60,
        };
        let conn = Connection::connect("127.0.0.1", port(&addr), &oauth_options(source))
            .await
            .expect("OAUTHBEARER on Kafka 3.9");
        let lifetime = conn.session_lifetime_ms();
        assert!(
            lifetime > 0 && lifetime <= harness::OAUTH_REAUTH_MS as i64,
            "{lifetime}"
        );
        let c = &conn;
        let pause = Duration::from_millis(200);
        eventually_async(pause, 60, "2 re-authentications", move || async move {
            if c.reauthentications() >= 2 {
                return true;
            }
            let r: Result<MetadataResponse, WireError> = c.call(metadata_request).await;
            r.expect("requests keep working across re-authentications");
            false
        })
        .await;
        assert!(conn.closed().is_none(), "{:?}", conn.closed());
    });
}
