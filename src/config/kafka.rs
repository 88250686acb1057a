//! The broker connection settings shared by every subcommand, with the IBM sample's variable
//! names: flags first, then the environment (the Event Streams binding), then defaults.
//!
//! Resolved here by hand rather than by clap, so that an error can say whether the bad value
//! came from a flag or from the binding, and checked as a whole before anything connects: a
//! password that would cross the network in clear text, a CA file with TLS off, a timeout of 0.
//! The result is plain data; `cli` turns it into the connection's types (the TLS client
//! configuration, the IAM token source), which live in layers that `config` sits below — so
//! the SASL mechanism is named here by its own small enum, not the wire's.

use std::path::PathBuf;
use std::time::Duration;

use super::brokers::{parse_brokers, BrokerAddr};
use super::env::Env;
use super::secret::Secret;
use super::settings::{invalid, parse_bool, switch, var};
use super::ConfigError;
pub(crate) use crate::protocol::sasl::Mechanism;

pub(crate) const ENV_BROKERS: &str = "MESSAGEHUB_KAFKA_BROKERS_SASL";
pub(crate) const ENV_USER: &str = "MESSAGEHUB_USER";
pub(crate) const ENV_PASSWORD: &str = "MESSAGEHUB_PASSWORD";
pub(crate) const ENV_MECHANISM: &str = "KAFKA_SASL_MECHANISM";
pub(crate) const ENV_TLS: &str = "KAFKA_TLS";
pub(crate) const ENV_CA_FILE: &str = "KAFKA_CA_FILE";
pub(crate) const ENV_ALLOW_PLAIN: &str = "KAFKA_ALLOW_PLAIN_WITHOUT_TLS";
/// OAUTHBEARER: the IBM Cloud API key when MESSAGEHUB_PASSWORD / --password is not set.
pub(crate) const ENV_IAM_API_KEY: &str = "IAM_API_KEY";
/// OAUTHBEARER: the IAM token endpoint.
pub(crate) const ENV_IAM_URL: &str = "IAM_URL";

/// `--max-frame-bytes`: the default, and the range accepted (a frame under 1 KiB cannot hold
/// a Metadata answer, so every request would fail and be retried forever; 2 GiB is the largest
/// size a Kafka frame header can state).
pub(crate) const DEFAULT_FRAME_BYTES: usize = 100 * 1024 * 1024;
pub(crate) const MIN_FRAME_BYTES: usize = 1024;
pub(crate) const MAX_FRAME_BYTES: usize = i32::MAX as usize;

/// The connection flags as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct KafkaFlags {
    pub bootstrap: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub sasl_mechanism: Option<String>,
    pub sasl_iam_url: Option<String>,
    pub tls: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub allow_plain_without_tls: bool,
    pub request_timeout: u64,
    pub connect_timeout: u64,
    pub max_frame_bytes: usize,
}

/// The mechanism named `v` (any case, surrounding blanks ignored), or an error naming `origin`.
fn mechanism(v: &str, origin: &str) -> Result<Mechanism, ConfigError> {
    Mechanism::from_name(v).ok_or_else(|| {
        invalid(
            origin,
            format!("unknown SASL mechanism '{v}': use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"),
        )
    })
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    /// PLAIN or SCRAM: a user name and a password.
    Password {
        mechanism: Mechanism,
        username: String,
        password: Secret,
    },
    /// OAUTHBEARER with IBM IAM access tokens for an API key (the user name is not used).
    Iam {
        key: Secret,
        /// `--password`, `MESSAGEHUB_PASSWORD` or `IAM_API_KEY`.
        key_origin: &'static str,
        /// The token endpoint; `None`: IAM's public one.
        url: Option<String>,
        /// `--sasl-iam-url` (also for the default) or `IAM_URL`.
        url_origin: &'static str,
    },
}

impl Sasl {
    /// The mechanism, user name and password as a consumer reads them from its variables
    /// (OAUTHBEARER: user `token`, the API key as the password).
    pub fn as_credentials(&self) -> (Mechanism, &str, &Secret) {
        match self {
            Sasl::Password {
                mechanism,
                username,
                password,
            } => (*mechanism, username, password),
            Sasl::Iam { key, .. } => (Mechanism::OAuthBearer, "token", key),
        }
    }
}

/// The files of a TLS connection; `None` each: the system roots, no client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// The connection settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub bootstrap: Vec<BrokerAddr>,
    /// `None`: plain TCP.
    pub tls: Option<TlsFiles>,
    pub sasl: Option<Sasl>,
    pub allow_plain_without_tls: bool,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_frame_bytes: usize,
}

/// Whether brokers were given at all (`--bootstrap`, else the binding's variable), for a
/// subcommand that connects only when they were (`check`). The variable is not read when the
/// flag is given; a variable that is not UTF-8 is refused by name.
pub(crate) fn brokers_given(
    env: &dyn Env,
    bootstrap: &Option<String>,
) -> Result<bool, ConfigError> {
    Ok(bootstrap.is_some() || var(env, ENV_BROKERS)?.is_some())
}

/// Flags first, then the environment; every problem names its flag or variable.
pub(crate) fn resolve(env: &dyn Env, f: &KafkaFlags) -> Result<KafkaSettings, ConfigError> {
    let (brokers_text, origin, from_binding) = match (&f.bootstrap, var(env, ENV_BROKERS)?) {
        (Some(b), _) => (b.clone(), "--bootstrap", false),
        (None, Some(b)) => (b, ENV_BROKERS, true),
        (None, None) => {
            return Err(invalid(
                "--bootstrap",
                format!("no brokers given: pass --bootstrap HOST:PORT or set {ENV_BROKERS}"),
            ))
        }
    };
    let bootstrap = parse_brokers(&brokers_text, origin)?;

    let tls = match (&f.tls, var(env, ENV_TLS)?) {
        (Some(v), _) => parse_bool(v).map_err(|m| invalid("--tls", m))?,
        (None, Some(v)) => parse_bool(&v).map_err(|m| invalid(ENV_TLS, m))?,
        (None, None) => from_binding,
    };

    let username = or_env(env, &f.username, ENV_USER)?;
    let password = or_env(env, &f.password, ENV_PASSWORD)?;
    let mechanism = match (&f.sasl_mechanism, var(env, ENV_MECHANISM)?) {
        (Some(m), _) => Some(mechanism(m, "--sasl-mechanism")?),
        (None, Some(m)) => Some(mechanism(&m, ENV_MECHANISM)?),
        (None, None) => None,
    };
    let sasl = if mechanism == Some(Mechanism::OAuthBearer) {
        Some(iam(env, f)?)
    } else {
        match (username, password, mechanism) {
            (None, None, None) => None,
            (Some(u), Some(p), m) => Some(Sasl::Password {
                mechanism: m.unwrap_or(Mechanism::Plain),
                username: u,
                password: Secret::new(p),
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

    let allow_plain = switch(env, f.allow_plain_without_tls, ENV_ALLOW_PLAIN)?;
    if !tls && !allow_plain {
        match sasl.as_ref().map(|s| s.as_credentials().0) {
            Some(Mechanism::Plain) => return Err(invalid(
                "--sasl-mechanism",
                "PLAIN would send the password in clear text without TLS: add --tls, use SCRAM-SHA-256 or SCRAM-SHA-512, or pass --allow-plain-without-tls",
            )),
            Some(Mechanism::OAuthBearer) => return Err(invalid(
                "--sasl-mechanism",
                "OAUTHBEARER would send the access token in clear text without TLS: add --tls, or pass --allow-plain-without-tls",
            )),
            _ => {}
        }
    }
    let ca_file = match &f.ca_file {
        Some(p) => Some(p.clone()),
        None => var(env, ENV_CA_FILE)?.map(PathBuf::from),
    };
    let tls = if tls {
        Some(TlsFiles {
            ca_file,
            client_cert: f.client_cert.clone(),
            client_key: f.client_key.clone(),
        })
    } else {
        if ca_file.is_some() || f.client_cert.is_some() || f.client_key.is_some() {
            return Err(invalid(
                "--tls",
                "a CA file or client certificate was given but TLS is off: add --tls",
            ));
        }
        None
    };
    if f.request_timeout == 0 {
        return Err(invalid("--request-timeout", "must be at least 1 second"));
    }
    if f.connect_timeout == 0 {
        return Err(invalid("--connect-timeout", "must be at least 1 second"));
    }
    if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&f.max_frame_bytes) {
        return Err(invalid(
            "--max-frame-bytes",
            format!(
                "expected a size from {MIN_FRAME_BYTES} (1 KiB) to {MAX_FRAME_BYTES} (2 GiB), got {}; the default is {DEFAULT_FRAME_BYTES} (100 MiB)",
                f.max_frame_bytes
            ),
        ));
    }
    Ok(KafkaSettings {
        bootstrap,
        tls,
        sasl,
        allow_plain_without_tls: allow_plain,
        connect_timeout: Duration::from_secs(f.connect_timeout),
        request_timeout: Duration::from_secs(f.request_timeout),
        max_frame_bytes: f.max_frame_bytes,
    })
}

/// OAUTHBEARER: the API key from --password / MESSAGEHUB_PASSWORD, else IAM_API_KEY; the
/// token endpoint from --sasl-iam-url / IAM_URL.
fn iam(env: &dyn Env, f: &KafkaFlags) -> Result<Sasl, ConfigError> {
    let (key, key_origin) = match (
        &f.password,
        var(env, ENV_PASSWORD)?,
        var(env, ENV_IAM_API_KEY)?,
    ) {
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
    let (url, url_origin) = match (&f.sasl_iam_url, var(env, ENV_IAM_URL)?) {
        (Some(u), _) => (Some(u.clone()), "--sasl-iam-url"),
        (None, Some(u)) => (Some(u), ENV_IAM_URL),
        (None, None) => (None, "--sasl-iam-url"),
    };
    Ok(Sasl::Iam {
        key: Secret::new(key),
        key_origin,
        url,
        url_origin,
    })
}

/// The flag's value, else the variable's (for values used as they are).
fn or_env(env: &dyn Env, flag: &Option<String>, name: &str) -> Result<Option<String>, ConfigError> {
    match flag {
        Some(v) => Ok(Some(v.clone())),
        None => var(env, name),
    }
}

/// The consumers' environment for these settings: the variables `consume` reads, so that
/// flags given to the observer reach the consumers it starts. `allow_plain_flag` is the
/// observer's own `--allow-plain-without-tls` (the variable reaches them by inheritance).
pub(crate) fn child_env(s: &KafkaSettings, allow_plain_flag: bool) -> Vec<(String, String)> {
    let mut env = vec![(
        ENV_BROKERS.to_string(),
        s.bootstrap
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(","),
    )];
    env.push((ENV_TLS.into(), s.tls.is_some().to_string()));
    if let Some(sasl) = &s.sasl {
        let (mechanism, username, password) = sasl.as_credentials();
        env.push((ENV_USER.into(), username.to_string()));
        env.push((ENV_PASSWORD.into(), password.expose().to_string()));
        env.push((ENV_MECHANISM.into(), mechanism.name().to_string()));
    }
    // A CA file is only ever resolved with TLS on (else it is refused).
    if let Some(ca) = s.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
        env.push((ENV_CA_FILE.into(), ca.display().to_string()));
    }
    if allow_plain_flag {
        env.push((ENV_ALLOW_PLAIN.into(), "true".into()));
    }
    env
}

#[cfg(test)]
mod tests;
