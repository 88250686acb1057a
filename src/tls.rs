//! rustls client configuration (ring provider only).
//!
//! The provider is passed explicitly because if a second crypto backend ever slips into the
//! dependency tree, rustls' implicit `ClientConfig::builder()` panics at run time. Roots come
//! from, in order: a CA file the operator names, the platform store, and finally the bundled
//! webpki roots — because the static binary usually runs in a FROM scratch image whose
//! platform store is empty, and Event Streams' public certificates chain to a public CA that
//! the bundle covers. Errors name the file and the flag, since a wrong path is the usual cause.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Where trust and (optionally) a client identity come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    /// PEM file with one or more CA certificates (`--ca-file`); replaces the system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain for mutual TLS (`--client-cert`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for mutual TLS (`--client-key`).
    pub client_key: Option<PathBuf>,
}

/// Why a TLS client configuration could not be built. Each message names the file and flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The file could not be opened or its PEM could not be decoded.
    #[error("cannot read the {what} '{path}' ({flag}): {cause}")]
    Read {
        /// e.g. "CA file".
        what: &'static str,
        /// e.g. "--ca-file".
        flag: &'static str,
        /// The path as given.
        path: String,
        /// The underlying I/O or PEM error.
        cause: String,
    },
    /// The file holds no `CERTIFICATE` PEM block.
    #[error(
        "the {what} '{path}' ({flag}) holds no certificate: it needs at least one \
         '-----BEGIN CERTIFICATE-----' block"
    )]
    NoCertificate {
        /// e.g. "CA file".
        what: &'static str,
        /// e.g. "--ca-file".
        flag: &'static str,
        /// The path as given.
        path: String,
    },
    /// A certificate in the CA file cannot serve as a trust anchor.
    #[error("the CA file '{path}' (--ca-file) holds a certificate that cannot be trusted as a CA: {cause}")]
    BadCertificate {
        /// The path as given.
        path: String,
        /// rustls' reason.
        cause: String,
    },
    /// The key file holds no usable private key.
    #[error(
        "the client key file '{path}' (--client-key) holds no private key: it needs a \
         'PRIVATE KEY', 'RSA PRIVATE KEY' or 'EC PRIVATE KEY' PEM block (encrypted keys are not supported)"
    )]
    NoKey {
        /// The path as given.
        path: String,
    },
    /// Only one half of the client identity was given.
    #[error("{given} was given without {missing}: mutual TLS needs both the client certificate and its private key")]
    MissingPair {
        /// The flag that was set.
        given: &'static str,
        /// The flag that is missing.
        missing: &'static str,
    },
    /// Certificate and key were read but rustls refused them (e.g. they do not match).
    #[error("the client certificate '{cert}' (--client-cert) and key '{key}' (--client-key) cannot be used: {cause}")]
    ClientAuth {
        /// Certificate path.
        cert: String,
        /// Key path.
        key: String,
        /// rustls' reason.
        cause: String,
    },
    /// rustls rejected the protocol setup itself (should not happen with ring).
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// Builds the client configuration: TLS 1.2/1.3, hostname verification on, roots and client
/// identity from `opts`.
pub(crate) fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let identity = match (&opts.client_cert, &opts.client_key) {
        (Some(cert), Some(key)) => Some((load_client_chain(cert)?, load_key(key)?)),
        (Some(_), None) => {
            return Err(TlsError::MissingPair {
                given: "--client-cert",
                missing: "--client-key",
            })
        }
        (None, Some(_)) => {
            return Err(TlsError::MissingPair {
                given: "--client-key",
                missing: "--client-cert",
            })
        }
        (None, None) => None,
    };
    let roots = match &opts.ca_file {
        Some(path) => ca_file_roots(path)?,
        None => system_roots(),
    };
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => {
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::ClientAuth {
                    cert: shown(opts.client_cert.as_deref()),
                    key: shown(opts.client_key.as_deref()),
                    cause: e.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn shown(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Reads every `CERTIFICATE` block of a PEM file; none is an error.
fn read_certs(
    path: &Path,
    what: &'static str,
    flag: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |e: pem::Error| TlsError::Read {
        what,
        flag,
        path: path.display().to_string(),
        cause: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            flag,
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn ca_file_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, "CA file", "--ca-file")? {
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
    }
    tracing::debug!(
        ca_file = %path.display(),
        roots = roots.len(),
        "TLS trust roots: CA file"
    );
    Ok(roots)
}

/// The platform store, or the bundled Mozilla roots when the platform has none.
fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::debug!(error = %err, "could not load some native root certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if added > 0 {
        tracing::debug!(roots = added, ignored, "TLS trust roots: native store");
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        tracing::debug!(
            roots = roots.len(),
            "TLS trust roots: bundled webpki-roots (no native roots found)"
        );
    }
    roots
}

fn load_client_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    read_certs(path, "client certificate file", "--client-cert")
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.display().to_string(),
        },
        other => TlsError::Read {
            what: "client key file",
            flag: "--client-key",
            path: path.display().to_string(),
            cause: other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("kafka-observer-tls-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn path(&self, file: &str) -> PathBuf {
            self.0.join(file)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn openssl(dir: &TempDir, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir.0)
            .output()
            .expect("the openssl CLI must be installed for TLS tests");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes `<name>.key` (PKCS#8 EC) and a self-signed CA certificate `<name>.pem`.
    fn make_ca(dir: &TempDir, name: &str) {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key,
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-out",
                &pem,
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
            ],
        );
    }

    fn opts(ca: Option<PathBuf>, cert: Option<PathBuf>, key: Option<PathBuf>) -> TlsOptions {
        TlsOptions {
            ca_file: ca,
            client_cert: cert,
            client_key: key,
        }
    }

    #[test]
    fn loads_generated_ca_and_bundles() {
        let dir = TempDir::new("ca");
        make_ca(&dir, "one");
        make_ca(&dir, "two");
        client_config(&opts(Some(dir.path("one.pem")), None, None)).unwrap();

        let bundle = [
            std::fs::read_to_string(dir.path("one.pem")).unwrap(),
            std::fs::read_to_string(dir.path("one.key")).unwrap(), // other blocks are skipped
            std::fs::read_to_string(dir.path("two.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.path("bundle.pem"), bundle).unwrap();
        assert_eq!(ca_file_roots(&dir.path("bundle.pem")).unwrap().len(), 2);
    }

    #[test]
    fn system_roots_are_never_empty() {
        assert!(!system_roots().is_empty());
        client_config(&TlsOptions::default()).unwrap();
    }

    #[test]
    fn mutual_tls_with_every_key_format() {
        let dir = TempDir::new("mtls");
        make_ca(&dir, "client");
        // SEC1 ("EC PRIVATE KEY") from the PKCS#8 key.
        openssl(
            &dir,
            &["ec", "-in", "client.key", "-out", "client-sec1.key"],
        );
        // PKCS#1 ("RSA PRIVATE KEY") with its own certificate.
        openssl(&dir, &["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
        openssl(
            &dir,
            &[
                "req", "-x509", "-new", "-key", "rsa.key", "-out", "rsa.pem", "-days", "2",
                "-subj", "/CN=rsa",
            ],
        );
        for (cert, key, marker) in [
            ("client.pem", "client.key", "BEGIN PRIVATE KEY"),
            ("client.pem", "client-sec1.key", "BEGIN EC PRIVATE KEY"),
            ("rsa.pem", "rsa.key", "BEGIN RSA PRIVATE KEY"),
        ] {
            let text = std::fs::read_to_string(dir.path(key)).unwrap();
            assert!(text.contains(marker), "{key} is not in the expected format");
            client_config(&opts(
                Some(dir.path("client.pem")),
                Some(dir.path(cert)),
                Some(dir.path(key)),
            ))
            .unwrap_or_else(|e| panic!("{cert} + {key}: {e}"));
        }
        // A key that does not belong to the certificate.
        let err = client_config(&opts(
            None,
            Some(dir.path("client.pem")),
            Some(dir.path("rsa.key")),
        ))
        .unwrap_err();
        assert!(matches!(err, TlsError::ClientAuth { .. }), "{err}");
        assert!(err.to_string().contains("client.pem") && err.to_string().contains("rsa.key"));
    }

    #[test]
    fn missing_file_is_named() {
        let missing = PathBuf::from("/nonexistent/kafka-observer/ca.pem");
        let err = client_config(&opts(Some(missing), None, None)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TlsError::Read { .. }), "{text}");
        assert!(
            text.contains("/nonexistent/kafka-observer/ca.pem") && text.contains("--ca-file"),
            "{text}"
        );
    }

    #[test]
    fn file_without_certificates_is_named() {
        let dir = TempDir::new("nocert");
        make_ca(&dir, "x");
        std::fs::write(dir.path("empty.pem"), "not a pem file\n").unwrap();
        for file in ["empty.pem", "x.key"] {
            let err = client_config(&opts(Some(dir.path(file)), None, None)).unwrap_err();
            assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
            assert!(err.to_string().contains(file), "{err}");
        }
        let err = client_config(&opts(
            None,
            Some(dir.path("empty.pem")),
            Some(dir.path("x.key")),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("--client-cert"), "{err}");
        let err = client_config(&opts(
            None,
            Some(dir.path("x.pem")),
            Some(dir.path("x.pem")),
        ))
        .unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        assert!(err.to_string().contains("x.pem"), "{err}");
    }

    #[test]
    fn half_a_client_identity_names_the_missing_flag() {
        let p = Some(PathBuf::from("/whatever.pem"));
        let err = client_config(&opts(None, None, p.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--client-key was given without --client-cert: mutual TLS needs both the client \
             certificate and its private key"
        );
        let err = client_config(&opts(None, p, None)).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--client-cert was given without --client-key"));
    }
}
