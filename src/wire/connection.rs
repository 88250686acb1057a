//! A ready-to-use broker connection: transport, ApiVersions, SASL, then typed requests.
//!
//! Requests are built by a closure that receives the negotiated version, because what a request
//! may carry depends on it (isolation level, multi-group OffsetFetch, …) and kafka-protocol
//! refuses to encode a field the version lacks.
//!
//! KIP-368 re-authentication: when the broker limits a SASL session (SaslAuthenticate v1+
//! `session_lifetime_ms > 0`, from `connections.max.reauth.ms` or an OAUTHBEARER token's expiry),
//! the connection authenticates again, on the same socket, after 80–90 % of the lifetime (a
//! timer task, and any request that finds the moment passed). The broker requires that nothing
//! else is in flight meanwhile, so requests hold a read guard of `gate` while in flight and
//! the re-authentication takes the write guard. The broker also refuses a re-authentication
//! within a second of the previous one, so a very short session (an OAUTHBEARER token about to
//! expire) is renewed no sooner than that; requests wait meanwhile, because after the session's
//! end the broker only accepts a SaslHandshake. A failed re-authentication poisons the link;
//! the cluster layer reconnects on next use.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kafka_protocol::messages::{ApiVersionsRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Message, Request, StrBytes};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::link::Link;
use super::sasl::{Credentials, Mechanism, SaslClient, Step, TokenSource};
use super::versions::{intersect, BrokerVersions, VersionGap};
use super::{transport, WireError};
use crate::protocol::api::api_name;
use crate::protocol::api_versions::ApiVersionsResponse;
use crate::protocol::error::{code, error_name};
use crate::protocol::sasl::{SaslAuthenticateResponse, SaslHandshakeResponse};
use crate::protocol::{decode_body, Response};

/// SASL settings of a connection.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    pub mechanism: Mechanism,
    /// User name and password (PLAIN, SCRAM). For OAUTHBEARER the user name only appears in
    /// error messages and the password is what the token source was built from.
    pub credentials: Credentials,
    /// Where OAUTHBEARER tokens come from; required for it, unused by the other mechanisms.
    pub token_source: Option<Arc<dyn TokenSource>>,
}

/// Everything needed to open a connection to any broker of a cluster.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// TLS client configuration; `None` means plaintext TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslConfig>,
    /// SASL PLAIN sends the password (OAUTHBEARER the token) in clear: refused without TLS
    /// unless this is set.
    pub allow_plain_without_tls: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_frame_bytes: usize,
    pub client_id: String,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            tls: None,
            sasl: None,
            allow_plain_without_tls: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_frame_bytes: 100 * 1024 * 1024,
            client_id: "kafka-observer".to_string(),
        }
    }
}

/// One authenticated connection to one broker, shared by every caller.
pub struct Connection {
    inner: Arc<Inner>,
    /// Re-authenticates when the session is due (only for sessions with a lifetime).
    reauth_task: Option<JoinHandle<()>>,
}

struct Inner {
    link: Link,
    versions: BrokerVersions,
    request_timeout: Duration,
    sasl: Option<SaslConfig>,
    /// Requests hold a read guard while in flight; re-authentication holds the write guard.
    gate: RwLock<()>,
    session: Mutex<Session>,
    /// Why re-authentication failed (the link is poisoned too; this reason is the clearer one).
    failed: Mutex<Option<Arc<str>>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Session {
    /// KIP-368: how long the broker keeps this SASL session (0 = forever / not SASL).
    lifetime_ms: i64,
    /// From here on, requests wait for a re-authentication; `None`: the session does not expire.
    reauth_at: Option<Instant>,
    /// The broker accepts no re-authentication before this (one per second, counted from its
    /// receipt of the previous SaslHandshake, which is before our authentication finished).
    not_before: Option<Instant>,
    /// Successful re-authentications so far.
    reauths: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.link.addr())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(t) = &self.reauth_task {
            t.abort();
        }
    }
}

impl Connection {
    /// Opens, negotiates versions and authenticates.
    pub async fn connect(host: &str, port: u16, opts: &ConnectOptions) -> Result<Self, WireError> {
        let addr = format!("{host}:{port}");
        if let Some(sasl) = &opts.sasl {
            if opts.tls.is_none() && !opts.allow_plain_without_tls {
                let what = match sasl.mechanism {
                    Mechanism::Plain => Some("a password"),
                    Mechanism::OAuthBearer => Some("a bearer token"),
                    _ => None,
                };
                if let Some(what) = what {
                    return Err(WireError::Sasl {
                        addr,
                        mechanism: sasl.mechanism.name().into(),
                        cause: format!("refusing to send {what} in clear text: use --tls, a SCRAM mechanism, or --allow-plain-without-tls"),
                    });
                }
            }
            if sasl.mechanism == Mechanism::OAuthBearer && sasl.token_source.is_none() {
                return Err(WireError::Sasl {
                    addr,
                    mechanism: sasl.mechanism.name().into(),
                    cause: "no token source configured".into(),
                });
            }
        }
        let stream = transport::open(host, port, opts.tls.as_ref(), opts.connect_timeout).await?;
        let link = Link::new(stream, &addr, opts.max_frame_bytes, &opts.client_id);
        let versions = api_versions(&link, opts.connect_timeout).await?;
        let inner = Arc::new(Inner {
            link,
            versions,
            request_timeout: opts.request_timeout,
            sasl: opts.sasl.clone(),
            gate: RwLock::new(()),
            session: Mutex::new(Session::default()),
            failed: Mutex::new(None),
        });
        let mut reauth_task = None;
        if let Some(sasl) = &inner.sasl {
            let started = Instant::now();
            let lifetime = inner.authenticate(sasl).await?;
            inner.start_session(started, lifetime);
            if lifetime > 0 {
                tracing::debug!(
                    addr = %inner.link.addr(),
                    mechanism = sasl.mechanism.name(),
                    session_lifetime_ms = lifetime,
                    "SASL session expires; re-authentication scheduled"
                );
                reauth_task = Some(tokio::spawn(reauth_loop(Arc::downgrade(&inner))));
            }
        }
        Ok(Connection { inner, reauth_task })
    }

    pub fn addr(&self) -> &str {
        self.inner.link.addr()
    }

    /// Why this connection is unusable, if it is.
    pub fn closed(&self) -> Option<Arc<str>> {
        self.inner.closed()
    }

    pub fn versions(&self) -> &BrokerVersions {
        &self.inner.versions
    }

    /// The lifetime the broker gave the current SASL session (0: it does not expire).
    pub fn session_lifetime_ms(&self) -> i64 {
        self.inner.session().lifetime_ms
    }

    /// How many times this connection re-authenticated (KIP-368).
    pub fn reauthentications(&self) -> u64 {
        self.inner.session().reauths
    }

    /// The version that `call::<Q, P>` would use.
    pub fn version<Q: Request, P: Response>(&self) -> Result<i16, WireError> {
        self.inner.version::<Q, P>()
    }

    /// Builds a request for the negotiated version, sends it and decodes the response.
    pub async fn call<Q: Request, P: Response>(
        &self,
        build: impl FnOnce(i16) -> Q,
    ) -> Result<P, WireError> {
        let version = self.version::<Q, P>()?;
        self.inner
            .gated_call(build(version), version, self.inner.request_timeout)
            .await
    }

    /// Like `call`, with an explicit timeout (long polls).
    pub async fn call_with_timeout<Q: Request, P: Response>(
        &self,
        build: impl FnOnce(i16) -> Q,
        timeout: Duration,
    ) -> Result<P, WireError> {
        let version = self.version::<Q, P>()?;
        self.inner
            .gated_call(build(version), version, timeout)
            .await
    }
}

/// Sleeps until the session is due, re-authenticates, repeats; ends with the connection, when
/// the session stops expiring, or when re-authentication failed (the link is then poisoned).
async fn reauth_loop(conn: Weak<Inner>) {
    loop {
        let at = match conn.upgrade() {
            Some(inner) if inner.closed().is_none() => match inner.session().reauth_at {
                Some(at) => at,
                None => return,
            },
            _ => return,
        };
        tokio::time::sleep_until(at).await;
        let Some(inner) = conn.upgrade() else { return };
        if inner.reauthenticate_if_due().await.is_err() {
            return;
        }
    }
}

/// The broker's minimum interval between re-authentications is 1 s; this adds a margin.
const MIN_REAUTH_INTERVAL: Duration = Duration::from_millis(1200);

/// When to re-authenticate a session of `lifetime_ms` that began at `started`: after a random
/// 80–90 % of it (spreads many connections' re-authentications, leaves time for the exchange).
fn reauth_deadline(started: Instant, lifetime_ms: i64, jitter: f64) -> Option<Instant> {
    if lifetime_ms <= 0 {
        return None;
    }
    let fraction = 0.80 + 0.10 * jitter.clamp(0.0, 1.0);
    let after = Duration::from_millis((lifetime_ms as f64 * fraction) as u64);
    // A lifetime from the wire so long that the instant overflows means "never".
    started.checked_add(after)
}

impl Inner {
    fn session(&self) -> Session {
        *self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a session that began (its SaslHandshake was sent) at `started` and was granted
    /// just now.
    fn start_session(&self, started: Instant, lifetime_ms: i64) -> Session {
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        s.lifetime_ms = lifetime_ms;
        s.reauth_at = reauth_deadline(started, lifetime_ms, crate::retry::jitter_unit());
        s.not_before = Some(Instant::now() + MIN_REAUTH_INTERVAL);
        *s
    }

    fn closed(&self) -> Option<Arc<str>> {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        failed.or_else(|| self.link.closed())
    }

    fn closed_error(&self, reason: Arc<str>) -> WireError {
        WireError::Closed {
            addr: self.link.addr().to_string(),
            reason,
        }
    }

    fn reauth_due(&self) -> bool {
        self.session()
            .reauth_at
            .is_some_and(|at| Instant::now() >= at)
    }

    fn version<Q: Request, P: Response>(&self) -> Result<i16, WireError> {
        let ours = intersect((Q::VERSIONS.min, Q::VERSIONS.max), P::VERSIONS);
        self.versions
            .pick(Q::KEY, ours)
            .map_err(|gap| self.gap_error(Q::KEY, gap))
    }

    /// A request from a caller: first re-authenticate if the session is due, then send while
    /// holding a read guard so that no re-authentication starts while it is in flight.
    async fn gated_call<Q: Request, P: Response>(
        &self,
        req: Q,
        version: i16,
        timeout: Duration,
    ) -> Result<P, WireError> {
        if self.reauth_due() {
            self.reauthenticate_if_due().await?;
        }
        let _in_flight = self.gate.read().await;
        if let Some(reason) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(self.closed_error(reason));
        }
        self.call_at(req, version, timeout).await
    }

    /// Re-authenticates on this connection if the session is (still) due. Waits for requests
    /// in flight to finish and holds new ones back meanwhile. On failure the link is poisoned.
    async fn reauthenticate_if_due(&self) -> Result<(), WireError> {
        let _exclusive = self.gate.write().await;
        if let Some(reason) = self.closed() {
            return Err(self.closed_error(reason));
        }
        // Another caller may have re-authenticated while this one waited for the guard.
        if !self.reauth_due() {
            return Ok(());
        }
        let Some(sasl) = &self.sasl else {
            return Ok(());
        };
        if let Some(not_before) = self.session().not_before {
            // Requests keep waiting: the session may already be over.
            tokio::time::sleep_until(not_before).await;
        }
        let started = Instant::now();
        match self.authenticate(sasl).await {
            Ok(lifetime) => {
                let s = self.start_session(started, lifetime);
                let reauths = {
                    let mut st = self.session.lock().unwrap_or_else(|p| p.into_inner());
                    st.reauths += 1;
                    st.reauths
                };
                tracing::debug!(
                    addr = %self.link.addr(),
                    mechanism = sasl.mechanism.name(),
                    session_lifetime_ms = s.lifetime_ms,
                    reauths,
                    took_ms = started.elapsed().as_millis() as u64,
                    "re-authenticated"
                );
                Ok(())
            }
            Err(e) => {
                let reason: Arc<str> = format!("SASL re-authentication failed: {e}").into();
                tracing::debug!(addr = %self.link.addr(), %reason, "re-authentication failed");
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                self.link.poison(reason.to_string());
                Err(self.closed_error(reason))
            }
        }
    }

    /// Sends without the gate: for authentication, which runs before any caller has the
    /// connection or while holding the write guard.
    async fn ungated<Q: Request, P: Response>(
        &self,
        build: impl FnOnce(i16) -> Q,
    ) -> Result<P, WireError> {
        let version = self.version::<Q, P>()?;
        self.call_at(build(version), version, self.request_timeout)
            .await
    }

    async fn call_at<Q: Request, P: Response>(
        &self,
        req: Q,
        version: i16,
        timeout: Duration,
    ) -> Result<P, WireError> {
        let body = self.link.roundtrip(&req, version, timeout).await?;
        decode_body::<P>(&body, version).map_err(|e| WireError::Decode {
            addr: self.link.addr().to_string(),
            api: api_name(Q::KEY),
            source: Box::new(e),
        })
    }

    fn gap_error(&self, key: i16, gap: VersionGap) -> WireError {
        let addr = self.link.addr().to_string();
        let api = api_name(key);
        match gap {
            VersionGap::Missing => WireError::Unsupported { addr, api },
            VersionGap::Disjoint { ours, theirs } => WireError::NoCommonVersion {
                addr,
                api,
                ours_min: ours.0,
                ours_max: ours.1,
                theirs_min: theirs.0,
                theirs_max: theirs.1,
            },
        }
    }

    /// The exchange for `sasl`: a fresh token for OAUTHBEARER, the password otherwise.
    async fn sasl_client(&self, sasl: &SaslConfig) -> Result<SaslClient, WireError> {
        let mech = sasl.mechanism.name();
        if sasl.mechanism != Mechanism::OAuthBearer {
            return SaslClient::new(sasl.mechanism, &sasl.credentials)
                .map_err(|e| self.sasl_error(mech, e.to_string()));
        }
        let Some(source) = &sasl.token_source else {
            return Err(self.sasl_error(mech, "no token source configured".into()));
        };
        let (token, expires_at) = source
            .token()
            .await
            .map_err(|e| self.sasl_error(mech, format!("cannot get a token: {e}")))?;
        tracing::debug!(addr = %self.link.addr(), token_expires_at = ?expires_at, "presenting an OAUTHBEARER token");
        SaslClient::oauth_bearer(&token).map_err(|e| self.sasl_error(mech, e.to_string()))
    }

    /// SaslHandshake v1 then SaslAuthenticate rounds until the mechanism is done. Returns the
    /// session lifetime the broker granted (0: unlimited).
    async fn authenticate(&self, sasl: &SaslConfig) -> Result<i64, WireError> {
        let addr = self.link.addr().to_string();
        let mech = sasl.mechanism.name();
        let mut client = self.sasl_client(sasl).await?;
        let hs: SaslHandshakeResponse = self
            .ungated(|_| {
                SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech))
            })
            .await?;
        if hs.error_code == code::UNSUPPORTED_SASL_MECHANISM {
            return Err(WireError::SaslMechanism {
                addr,
                mechanism: mech.into(),
                offered: hs.mechanisms.join(", "),
            });
        }
        if hs.error_code != 0 {
            return Err(self.sasl_error(mech, format!("handshake: {}", error_name(hs.error_code))));
        }
        let mut msg = client.initial();
        // PLAIN and OAUTHBEARER take one round (two when OAUTHBEARER fails), SCRAM two;
        // anything longer is a confused or hostile server.
        for _ in 0..4 {
            let resp: SaslAuthenticateResponse = self
                .ungated(|_| SaslAuthenticateRequest::default().with_auth_bytes(msg.into()))
                .await
                .map_err(|e| match e {
                    // Old brokers (SaslAuthenticate v0) close the connection on bad credentials.
                    WireError::Closed { .. } => WireError::AuthFailed {
                        addr: addr.clone(),
                        user: sasl.credentials.username.clone(),
                        mechanism: mech.into(),
                        message: match client.server_failure() {
                            Some(c) => format!("the broker closed the connection during authentication (server challenge: {c})"),
                            None => "the broker closed the connection during authentication".into(),
                        },
                    },
                    other => other,
                })?;
            if resp.error_code != 0 {
                let mut message = resp
                    .error_message
                    .clone()
                    .unwrap_or_else(|| error_name(resp.error_code));
                if let Some(challenge) = client.server_failure() {
                    message.push_str(&format!(" (server challenge: {challenge})"));
                }
                return Err(WireError::AuthFailed {
                    addr,
                    user: sasl.credentials.username.clone(),
                    mechanism: mech.into(),
                    message,
                });
            }
            match client.step(&resp.auth_bytes) {
                Ok(Step::Send(next)) => msg = next,
                Ok(Step::Done) => return Ok(resp.session_lifetime_ms),
                Err(e) => return Err(self.sasl_error(mech, e.to_string())),
            }
        }
        Err(self.sasl_error(mech, "the broker kept asking for more rounds".into()))
    }

    fn sasl_error(&self, mech: &str, cause: String) -> WireError {
        WireError::Sasl {
            addr: self.link.addr().to_string(),
            mechanism: mech.into(),
            cause,
        }
    }
}

/// ApiVersions at the highest version we speak; a broker that does not know it answers in v0
/// format with UNSUPPORTED_VERSION, and we ask again at v0.
async fn api_versions(link: &Link, timeout: Duration) -> Result<BrokerVersions, WireError> {
    let ours = intersect(
        (
            ApiVersionsRequest::VERSIONS.min,
            ApiVersionsRequest::VERSIONS.max,
        ),
        ApiVersionsResponse::VERSIONS,
    );
    let mut version = ours.1;
    loop {
        let req = if version >= 3 {
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("kafka-observer"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")))
        } else {
            ApiVersionsRequest::default()
        };
        let body = link.roundtrip(&req, version, timeout).await?;
        let error_code = if body.len() >= 2 {
            i16::from_be_bytes([body[0], body[1]])
        } else {
            0
        };
        let decode_as = if error_code == code::UNSUPPORTED_VERSION {
            0
        } else {
            version
        };
        let resp: ApiVersionsResponse =
            decode_body(&body, decode_as).map_err(|e| WireError::Decode {
                addr: link.addr().to_string(),
                api: "ApiVersions",
                source: Box::new(e),
            })?;
        if resp.error_code == code::UNSUPPORTED_VERSION && version != 0 {
            version = 0;
            continue;
        }
        if resp.error_code != 0 {
            return Err(WireError::Broker {
                addr: link.addr().to_string(),
                api: "ApiVersions",
                code: resp.error_code,
                name: error_name(resp.error_code),
            });
        }
        return Ok(BrokerVersions::new(
            resp.api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version)),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reauth_deadline_is_80_to_90_percent() {
        let t0 = Instant::now();
        assert_eq!(reauth_deadline(t0, 0, 0.5), None);
        assert_eq!(reauth_deadline(t0, -1, 0.5), None);
        // Any lifetime the broker may send is a deadline or none, never a panic.
        let _ = reauth_deadline(t0, i64::MAX, 1.0);
        assert_eq!(
            reauth_deadline(t0, 10_000, 0.0),
            Some(t0 + Duration::from_millis(8_000))
        );
        assert_eq!(
            reauth_deadline(t0, 10_000, 1.0),
            Some(t0 + Duration::from_millis(9_000))
        );
        assert_eq!(
            reauth_deadline(t0, 10_000, 7.0),
            Some(t0 + Duration::from_millis(9_000))
        );
    }
}
