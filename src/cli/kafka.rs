//! Broker connection flags shared by every subcommand, and the connection they resolve to:
//! [`config::kafka`](crate::config::kafka) reads and checks them (with the environment), and
//! this file turns its settings into the wire's types — the TLS client configuration (which
//! reads the CA and certificate files) and, for OAUTHBEARER, the IAM token source.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{invalid, CliError};
use crate::config::brokers::BrokerAddr;
use crate::config::env::{Env, ProcessEnv};
use crate::config::kafka::{
    self as settings, KafkaFlags, KafkaSettings, Sasl, DEFAULT_FRAME_BYTES,
};
use crate::config::secret::Secret;
use crate::http_client::build_client;
use crate::iam::{IamError, IamTokenManager, DEFAULT_IAM_URL};
use crate::tls::{client_config, TlsOptions};
use crate::wire::sasl::{Credentials, Mechanism, TokenError, TokenFuture, TokenSource};
use crate::wire::{ConnectOptions, SaslConfig};

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

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct Kafka {
    pub bootstrap: Vec<BrokerAddr>,
    pub options: ConnectOptions,
}

impl KafkaArgs {
    /// The flags as [`config::kafka`](crate::config::kafka) takes them.
    pub fn flags(&self) -> KafkaFlags {
        KafkaFlags {
            bootstrap: self.bootstrap.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            sasl_mechanism: self.sasl_mechanism.clone(),
            sasl_iam_url: self.sasl_iam_url.clone(),
            tls: self.tls.clone(),
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            allow_plain_without_tls: self.allow_plain_without_tls,
            request_timeout: self.request_timeout,
            connect_timeout: self.connect_timeout,
            max_frame_bytes: self.max_frame_bytes,
        }
    }

    /// The settings, checked: flags first, then `env`.
    pub fn settings(&self, env: &dyn Env) -> Result<KafkaSettings, CliError> {
        Ok(settings::resolve(env, &self.flags())?)
    }

    /// Flags first, then the process environment, then the connection built from them.
    pub fn resolve(&self) -> Result<Kafka, CliError> {
        connect(&self.settings(&ProcessEnv)?)
    }
}

/// The connection for checked settings: the TLS configuration (its files read now, so a
/// missing CA is a usage error before any connection) and the SASL configuration.
pub(crate) fn connect(s: &KafkaSettings) -> Result<Kafka, CliError> {
    let sasl = match &s.sasl {
        None => None,
        Some(Sasl::Password {
            mechanism,
            username,
            password,
        }) => Some(SaslConfig {
            mechanism: *mechanism,
            credentials: Credentials {
                username: username.clone(),
                password: password.clone(),
            },
            token_source: None,
        }),
        Some(Sasl::Iam {
            key,
            key_origin,
            url,
            url_origin,
        }) => Some(oauth_bearer(key, key_origin, url.as_deref(), url_origin)?),
    };
    let tls = match &s.tls {
        Some(files) => {
            let opts = TlsOptions {
                ca_file: files.ca_file.clone(),
                client_cert: files.client_cert.clone(),
                client_key: files.client_key.clone(),
            };
            Some(client_config(&opts).map_err(|e| CliError::Usage(e.to_string()))?)
        }
        None => None,
    };
    Ok(Kafka {
        bootstrap: s.bootstrap.clone(),
        options: ConnectOptions {
            tls,
            sasl,
            allow_plain_without_tls: s.allow_plain_without_tls,
            connect_timeout: s.connect_timeout,
            request_timeout: s.request_timeout,
            max_frame_bytes: s.max_frame_bytes,
            client_id: "kafka-observer".into(),
        },
    })
}

/// OAUTHBEARER with IBM IAM access tokens for `key` (the user name is not used); a key or URL
/// the token manager refuses names the setting it came from.
fn oauth_bearer(
    key: &Secret,
    key_origin: &'static str,
    url: Option<&str>,
    url_origin: &'static str,
) -> Result<SaslConfig, CliError> {
    let client = build_client(None).map_err(|e| CliError::Usage(e.to_string()))?;
    let url = url.unwrap_or(DEFAULT_IAM_URL).to_string();
    let iam = IamTokenManager::new(url, key.clone(), client).map_err(|e| {
        let named = match e {
            IamError::InvalidUrl { .. } => url_origin,
            _ => key_origin,
        };
        invalid(named, e.to_string())
    })?;
    Ok(SaslConfig {
        mechanism: Mechanism::OAuthBearer,
        credentials: Credentials {
            username: "token".into(),
            password: key.clone(),
        },
        token_source: Some(Arc::new(IamTokens { iam, key_origin })),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env::VarTable;

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

    fn build(a: &KafkaArgs) -> Result<Kafka, CliError> {
        connect(&a.settings(&VarTable::default())?)
    }

    #[test]
    fn oauthbearer_uses_the_api_key_and_hides_it() {
        let k = build(&oauth_args()).unwrap();
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
        let e = build(&a).unwrap_err().to_string();
        assert!(e.contains("OAUTHBEARER") && e.contains("clear text"), "{e}");
        let mut a = oauth_args();
        a.password = Some("\"quoted-key\"".into());
        let e = build(&a).unwrap_err().to_string();
        assert!(e.contains("--password") && !e.contains("quoted-key"), "{e}");
        let mut a = oauth_args();
        a.sasl_iam_url = Some("ftp://nowhere".into());
        let e = build(&a).unwrap_err().to_string();
        assert!(
            e.contains("ftp://nowhere") && e.contains("--sasl-iam-url"),
            "{e}"
        );
    }
}
