//! A ready-to-use broker connection: transport, ApiVersions, SASL, then typed requests.
//!
//! Requests are built by a closure that receives the negotiated version, because what a request
//! may carry depends on it (isolation level, multi-group OffsetFetch, …) and kafka-protocol
//! refuses to encode a field the version lacks.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiVersionsRequest, SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::{Message, Request, StrBytes};

use super::kafka_error::{code, error_name};
use super::link::Link;
use super::sasl::{Credentials, Mechanism, SaslClient, Step};
use super::versions::{intersect, BrokerVersions, VersionGap};
use super::{api_name, transport, WireError};
use crate::protocol::api_versions::ApiVersionsResponse;
use crate::protocol::sasl::{SaslAuthenticateResponse, SaslHandshakeResponse};
use crate::protocol::{decode_body, Response};

/// SASL settings of a connection.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    pub mechanism: Mechanism,
    pub credentials: Credentials,
}

/// Everything needed to open a connection to any broker of a cluster.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// TLS client configuration; `None` means plaintext TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslConfig>,
    /// SASL PLAIN sends the password in clear: refused without TLS unless this is set.
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
    link: Link,
    versions: BrokerVersions,
    request_timeout: Duration,
    /// KIP-368: how long the broker keeps this SASL session (0 = forever / not SASL).
    session_lifetime_ms: i64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.link.addr())
            .finish()
    }
}

impl Connection {
    /// Opens, negotiates versions and authenticates.
    pub async fn connect(host: &str, port: u16, opts: &ConnectOptions) -> Result<Self, WireError> {
        let addr = format!("{host}:{port}");
        if let Some(sasl) = &opts.sasl {
            if sasl.mechanism == Mechanism::Plain
                && opts.tls.is_none()
                && !opts.allow_plain_without_tls
            {
                return Err(WireError::Sasl {
                    addr,
                    mechanism: "PLAIN".into(),
                    cause: "refusing to send a password in clear text: use --tls, a SCRAM mechanism, or --allow-plain-without-tls".into(),
                });
            }
        }
        let stream = transport::open(host, port, opts.tls.as_ref(), opts.connect_timeout).await?;
        let link = Link::new(stream, &addr, opts.max_frame_bytes, &opts.client_id);
        let versions = api_versions(&link, opts.connect_timeout).await?;
        let mut conn = Connection {
            link,
            versions,
            request_timeout: opts.request_timeout,
            session_lifetime_ms: 0,
        };
        if let Some(sasl) = &opts.sasl {
            conn.session_lifetime_ms = conn.authenticate(sasl).await?;
        }
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        self.link.addr()
    }

    /// Why this connection is unusable, if it is.
    pub fn closed(&self) -> Option<Arc<str>> {
        self.link.closed()
    }

    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    pub fn session_lifetime_ms(&self) -> i64 {
        self.session_lifetime_ms
    }

    /// The version that `call::<Q, P>` would use.
    pub fn version<Q: Request, P: Response>(&self) -> Result<i16, WireError> {
        let ours = intersect((Q::VERSIONS.min, Q::VERSIONS.max), P::VERSIONS);
        self.versions
            .pick(Q::KEY, ours)
            .map_err(|gap| self.gap_error(Q::KEY, gap))
    }

    /// Builds a request for the negotiated version, sends it and decodes the response.
    pub async fn call<Q: Request, P: Response>(
        &self,
        build: impl FnOnce(i16) -> Q,
    ) -> Result<P, WireError> {
        let version = self.version::<Q, P>()?;
        self.call_at(build(version), version, self.request_timeout)
            .await
    }

    /// Like `call`, with an explicit timeout (long polls).
    pub async fn call_with_timeout<Q: Request, P: Response>(
        &self,
        build: impl FnOnce(i16) -> Q,
        timeout: Duration,
    ) -> Result<P, WireError> {
        let version = self.version::<Q, P>()?;
        self.call_at(build(version), version, timeout).await
    }

    async fn call_at<Q: Request, P: Response>(
        &self,
        req: Q,
        version: i16,
        timeout: Duration,
    ) -> Result<P, WireError> {
        let body = self.link.roundtrip(&req, version, timeout).await?;
        decode_body::<P>(&body, version).map_err(|e| WireError::Decode {
            addr: self.addr().to_string(),
            api: api_name(Q::KEY),
            source: Box::new(e),
        })
    }

    fn gap_error(&self, key: i16, gap: VersionGap) -> WireError {
        let addr = self.addr().to_string();
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

    /// SaslHandshake v1 then SaslAuthenticate rounds until the mechanism is done.
    async fn authenticate(&self, sasl: &SaslConfig) -> Result<i64, WireError> {
        let addr = self.addr().to_string();
        let mech = sasl.mechanism.name();
        let hs: SaslHandshakeResponse = self
            .call(|_| {
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
        let mut client = SaslClient::new(sasl.mechanism, &sasl.credentials)
            .map_err(|e| self.sasl_error(mech, e.to_string()))?;
        let mut msg = client.initial();
        // PLAIN takes one round, SCRAM two; anything longer is a confused or hostile server.
        for _ in 0..4 {
            let resp: SaslAuthenticateResponse = self
                .call(|_| SaslAuthenticateRequest::default().with_auth_bytes(msg.into()))
                .await
                .map_err(|e| match e {
                    // Old brokers (SaslAuthenticate v0) close the connection on bad credentials.
                    WireError::Closed { .. } => WireError::AuthFailed {
                        addr: addr.clone(),
                        user: sasl.credentials.username.clone(),
                        mechanism: mech.into(),
                        message: "the broker closed the connection during authentication".into(),
                    },
                    other => other,
                })?;
            if resp.error_code != 0 {
                let message = resp
                    .error_message
                    .clone()
                    .unwrap_or_else(|| error_name(resp.error_code));
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
            addr: self.addr().to_string(),
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
                name: "see Kafka error codes",
            });
        }
        return Ok(BrokerVersions::new(
            resp.api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version)),
        ));
    }
}
