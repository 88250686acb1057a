//! Broker connection settings shared by every subcommand, with the IBM sample's variable names.
//!
//! Environment fallbacks are resolved here by hand rather than by clap, so that an error can say
//! whether the bad value came from a flag or from the Event Streams binding.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{invalid, CliError};
use crate::config::brokers::{parse_brokers, BrokerAddr};
use crate::config::env::ProcessEnv;
use crate::config::secret::Secret;
use crate::config::settings::{parse_bool, switch, var};
use crate::http_client::build_client;
use crate::iam::{IamError, IamTokenManager, DEFAULT_IAM_URL};
use crate::tls::{client_config, TlsOptions};
use crate::wire::sasl::{Credentials, Mechanism, TokenError, TokenFuture, TokenSource};
use crate::wire::{ConnectOptions, SaslConfig};

pub const ENV_BROKERS: &str = "MESSAGEHUB_KAFKA_BROKERS_SASL";
pub const ENV_USER: &str = "MESSAGEHUB_USER";
pub const ENV_PASSWORD: &str = "MESSAGEHUB_PASSWORD";
pub const ENV_MECHANISM: &str = "KAFKA_SASL_MECHANISM";
pub const ENV_TLS: &str = "KAFKA_TLS";
pub const ENV_CA_FILE: &str = "KAFKA_CA_FILE";
pub const ENV_ALLOW_PLAIN: &str = "KAFKA_ALLOW_PLAIN_WITHOUT_TLS";
/// OAUTHBEARER: the IBM Cloud API key when MESSAGEHUB_PASSWORD / --password is not set.
pub const ENV_IAM_API_KEY: &str = "IAM_API_KEY";
/// OAUTHBEARER: the IAM token endpoint.
pub const ENV_IAM_URL: &str = "IAM_URL";

/// How to reach and authenticate to the cluster.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, host:port, comma-separated or a JSON array
    /// [env: MESSAGEHUB_KAFKA_BROKERS_SASL]
    #[arg(long, value_name = "HOST:PORT,...")]
    pub bootstrap: Option<String>,

    /// SASL user name; not used by OAUTHBEARER [env: MESSAGEHUB_USER]
    #[arg(long)]
    pub username: Option<String>,

    /// SASL password or Event Streams API key (OAUTHBEARER: the IBM Cloud API key, else
    /// IAM_API_KEY) [env: MESSAGEHUB_PASSWORD]
    #[arg(long)]
    pub password: Option<String>,

    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (an IBM IAM access token; default
    /// PLAIN when a user name is given) [env: KAFKA_SASL_MECHANISM]
    #[arg(long, value_name = "MECHANISM")]
    pub sasl_mechanism: Option<String>,

    /// OAUTHBEARER: the IAM token endpoint [env: IAM_URL]
    /// [default: https://iam.cloud.ibm.com/identity/token]
    #[arg(long, value_name = "URL")]
    #[allow(rustdoc::bare_urls)] // the doc is --help text: a plain URL there, not a link
    pub sasl_iam_url: Option<String>,

    /// Use TLS: true or false (default: true when the brokers come from
    /// MESSAGEHUB_KAFKA_BROKERS_SASL, else false) [env: KAFKA_TLS]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls: Option<String>,

    /// PEM file of the CA(s) to trust instead of the system roots [env: KAFKA_CA_FILE]
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate chain for mutual TLS
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of the client certificate
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,

    /// Allow SASL PLAIN on a connection without TLS (sends the password in clear)
    /// [env: KAFKA_ALLOW_PLAIN_WITHOUT_TLS]
    #[arg(long)]
    pub allow_plain_without_tls: bool,

    /// Seconds to wait for a broker's answer
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub request_timeout: u64,

    /// Seconds to wait for a TCP connect or TLS handshake
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,

    /// Largest response frame accepted from a broker
    #[arg(long, default_value_t = DEFAULT_FRAME_BYTES, value_name = "BYTES")]
    pub max_frame_bytes: usize,
}

/// `--max-frame-bytes`: the default, and the range accepted (a frame under 1 KiB cannot hold
/// a Metadata answer, so every request would fail and be retried forever; 2 GiB is the largest
/// size a Kafka frame header can state).
pub const DEFAULT_FRAME_BYTES: usize = 100 * 1024 * 1024;
pub const MIN_FRAME_BYTES: usize = 1024;
pub const MAX_FRAME_BYTES: usize = i32::MAX as usize;

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct Kafka {
    pub bootstrap: Vec<BrokerAddr>,
    pub options: ConnectOptions,
}

impl KafkaArgs {
    /// Flags first, then the environment; every problem names its flag or variable.
    pub fn resolve(&self) -> Result<Kafka, CliError> {
        let (brokers_text, origin, from_binding) =
            match (&self.bootstrap, var(&ProcessEnv, ENV_BROKERS)?) {
                (Some(b), _) => (b.clone(), "--bootstrap", false),
                (None, Some(b)) => (b, ENV_BROKERS, true),
                (None, None) => {
                    return Err(invalid(
                        "--bootstrap",
                        format!(
                            "no brokers given: pass --bootstrap HOST:PORT or set {ENV_BROKERS}"
                        ),
                    ))
                }
            };
        let bootstrap = parse_brokers(&brokers_text, origin)?;

        let tls = match (&self.tls, var(&ProcessEnv, ENV_TLS)?) {
            (Some(v), _) => parse_bool(v).map_err(|m| invalid("--tls", m))?,
            (None, Some(v)) => parse_bool(&v).map_err(|m| invalid(ENV_TLS, m))?,
            (None, None) => from_binding,
        };

        let username = or_env(&self.username, ENV_USER)?;
        let password = or_env(&self.password, ENV_PASSWORD)?;
        let mechanism = match (&self.sasl_mechanism, var(&ProcessEnv, ENV_MECHANISM)?) {
            (Some(m), _) => Some(parse_mechanism(m, "--sasl-mechanism")?),
            (None, Some(m)) => Some(parse_mechanism(&m, ENV_MECHANISM)?),
            (None, None) => None,
        };
        let sasl = if mechanism == Some(Mechanism::OAuthBearer) {
            Some(self.oauth_bearer()?)
        } else {
            match (username, password, mechanism) {
                (None, None, None) => None,
                (Some(u), Some(p), m) => Some(SaslConfig {
                    mechanism: m.unwrap_or(Mechanism::Plain),
                    credentials: Credentials {
                        username: u,
                        password: Secret::new(p),
                    },
                    token_source: None,
                }),
                (None, _, _) => {
                    return Err(invalid(
                        "--username",
                        format!("SASL needs a user name: pass --username or set {ENV_USER}"),
                    ))
                }
                (Some(_), None, _) => {
                    return Err(invalid(
                        "--password",
                        format!("SASL needs a password: pass --password or set {ENV_PASSWORD}"),
                    ))
                }
            }
        };

        let allow_plain = switch(&ProcessEnv, self.allow_plain_without_tls, ENV_ALLOW_PLAIN)?;
        if let Some(s) = &sasl {
            if s.mechanism == Mechanism::Plain && !tls && !allow_plain {
                return Err(invalid(
                    "--sasl-mechanism",
                    "PLAIN would send the password in clear text without TLS: add --tls, use SCRAM-SHA-256 or SCRAM-SHA-512, or pass --allow-plain-without-tls",
                ));
            }
            if s.mechanism == Mechanism::OAuthBearer && !tls && !allow_plain {
                return Err(invalid(
                    "--sasl-mechanism",
                    "OAUTHBEARER would send the access token in clear text without TLS: add --tls, or pass --allow-plain-without-tls",
                ));
            }
        }
        let ca_file = match &self.ca_file {
            Some(p) => Some(p.clone()),
            None => var(&ProcessEnv, ENV_CA_FILE)?.map(PathBuf::from),
        };
        let tls_config = if tls {
            let opts = TlsOptions {
                ca_file,
                client_cert: self.client_cert.clone(),
                client_key: self.client_key.clone(),
            };
            Some(client_config(&opts).map_err(|e| CliError::Usage(e.to_string()))?)
        } else {
            if ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some() {
                return Err(invalid(
                    "--tls",
                    "a CA file or client certificate was given but TLS is off: add --tls",
                ));
            }
            None
        };
        if self.request_timeout == 0 {
            return Err(invalid("--request-timeout", "must be at least 1 second"));
        }
        if self.connect_timeout == 0 {
            return Err(invalid("--connect-timeout", "must be at least 1 second"));
        }
        if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&self.max_frame_bytes) {
            return Err(invalid(
                "--max-frame-bytes",
                format!(
                    "expected a size from {MIN_FRAME_BYTES} (1 KiB) to {MAX_FRAME_BYTES} (2 GiB), got {}; the default is {DEFAULT_FRAME_BYTES} (100 MiB)",
                    self.max_frame_bytes
                ),
            ));
        }
        Ok(Kafka {
            bootstrap,
            options: ConnectOptions {
                tls: tls_config,
                sasl,
                allow_plain_without_tls: allow_plain,
                connect_timeout: Duration::from_secs(self.connect_timeout),
                request_timeout: Duration::from_secs(self.request_timeout),
                max_frame_bytes: self.max_frame_bytes,
                client_id: "kafka-observer".into(),
            },
        })
    }
}

impl KafkaArgs {
    /// OAUTHBEARER with IBM IAM access tokens: the API key from --password /
    /// MESSAGEHUB_PASSWORD, else IAM_API_KEY; the user name is not used.
    fn oauth_bearer(&self) -> Result<SaslConfig, CliError> {
        let (key, origin) = match (&self.password, var(&ProcessEnv, ENV_PASSWORD)?, var(&ProcessEnv, ENV_IAM_API_KEY)?) {
            (Some(k), _, _) => (k.clone(), "--password"),
            (None, Some(k), _) => (k, ENV_PASSWORD),
            (None, None, Some(k)) => (k, ENV_IAM_API_KEY),
            (None, None, None) => {
                return Err(invalid(
                    "--password",
                    format!("OAUTHBEARER needs an IBM Cloud API key: pass --password or set {ENV_PASSWORD} or {ENV_IAM_API_KEY}"),
                ))
            }
        };
        let (url, url_origin) = match (&self.sasl_iam_url, var(&ProcessEnv, ENV_IAM_URL)?) {
            (Some(u), _) => (u.clone(), "--sasl-iam-url"),
            (None, Some(u)) => (u, ENV_IAM_URL),
            (None, None) => (DEFAULT_IAM_URL.to_string(), "--sasl-iam-url"),
        };
        let client = build_client(None).map_err(|e| CliError::Usage(e.to_string()))?;
        let key = Secret::new(key);
        let iam = IamTokenManager::new(url, key.clone(), client).map_err(|e| {
            let named = match e {
                IamError::InvalidUrl { .. } => url_origin,
                _ => origin,
            };
            invalid(named, e.to_string())
        })?;
        Ok(SaslConfig {
            mechanism: Mechanism::OAuthBearer,
            credentials: Credentials {
                username: "token".into(),
                password: key,
            },
            token_source: Some(Arc::new(IamTokens {
                iam,
                key_origin: origin,
            })),
        })
    }
}

/// OAUTHBEARER tokens from IBM IAM (cached, refreshed in the background at 80 % of their life).
#[derive(Debug)]
struct IamTokens {
    iam: IamTokenManager,
    key_origin: &'static str,
}

impl TokenSource for IamTokens {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            self.iam
                .token_with_expiry()
                .await
                .map(|(token, expires_at)| (token, Some(expires_at)))
                .map_err(|e| TokenError {
                    what: format!(
                        "no IAM access token (API key from {}, IAM at {})",
                        self.key_origin,
                        self.iam.url()
                    ),
                    source: Box::new(e),
                })
        })
    }
}

/// The flag's value, else the variable's (for values used as they are).
fn or_env(flag: &Option<String>, name: &str) -> Result<Option<String>, CliError> {
    match flag {
        Some(v) => Ok(Some(v.clone())),
        None => Ok(var(&ProcessEnv, name)?),
    }
}

fn parse_mechanism(v: &str, origin: &str) -> Result<Mechanism, CliError> {
    v.parse::<Mechanism>().map_err(|_| {
        invalid(
            origin,
            format!("unknown SASL mechanism '{v}': use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "unit-test-iam-key-4242";

    fn oauth_args() -> KafkaArgs {
        KafkaArgs {
            bootstrap: Some("127.0.0.1:9092".into()),
            tls: Some("false".into()),
            username: Some("ignored".into()),
            password: Some(KEY.into()),
            sasl_mechanism: Some("OAUTHBEARER".into()),
            sasl_iam_url: Some("http://127.0.0.1:1/identity/token".into()),
            allow_plain_without_tls: true,
            request_timeout: 30,
            connect_timeout: 10,
            max_frame_bytes: 1 << 20,
            ..KafkaArgs::default()
        }
    }

    #[test]
    fn oauthbearer_uses_the_api_key_and_hides_it() {
        let k = oauth_args().resolve().unwrap();
        let sasl = k.options.sasl.clone().unwrap();
        assert_eq!(sasl.mechanism, Mechanism::OAuthBearer);
        assert_eq!(sasl.credentials.username, "token");
        assert!(sasl.token_source.is_some());
        let text = format!("{:?}", k.options);
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("127.0.0.1:1/identity/token"), "{text}");
    }

    #[test]
    fn oauthbearer_needs_tls_or_the_opt_in_and_a_usable_key() {
        let mut a = oauth_args();
        a.allow_plain_without_tls = false;
        if var(&ProcessEnv, ENV_ALLOW_PLAIN).unwrap().is_none() {
            let e = a.resolve().unwrap_err().to_string();
            assert!(e.contains("OAUTHBEARER") && e.contains("clear text"), "{e}");
        }
        let mut a = oauth_args();
        a.password = Some("\"quoted-key\"".into());
        let e = a.resolve().unwrap_err().to_string();
        assert!(e.contains("--password") && !e.contains("quoted-key"), "{e}");
        let mut a = oauth_args();
        a.sasl_iam_url = Some("ftp://nowhere".into());
        let e = a.resolve().unwrap_err().to_string();
        assert!(e.contains("ftp://nowhere"), "{e}");
    }
}
