//! The byte stream under a connection: plain TCP or TLS over TCP.
//!
//! Both are hidden behind one boxed trait object so that everything above — framing,
//! multiplexing, SASL — is written once.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::WireError;

/// A bidirectional byte stream.
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Opens TCP to `host:port`, then TLS when `tls` is set, verifying the certificate against `host`.
pub(super) async fn open(
    host: &str,
    port: u16,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Box<dyn Stream>, WireError> {
    let addr = format!("{host}:{port}");
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| WireError::Timeout {
            addr: addr.clone(),
            what: "TCP connect",
            timeout,
        })?
        .map_err(|e| WireError::Connect {
            addr: addr.clone(),
            cause: e.to_string(),
        })?;
    let _ = tcp.set_nodelay(true);
    let Some(config) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = ServerName::try_from(host.to_string()).map_err(|e| WireError::Tls {
        addr: addr.clone(),
        cause: format!("'{host}' is not a valid TLS server name: {e}"),
    })?;
    let connector = TlsConnector::from(config.clone());
    let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| WireError::Timeout {
            addr: addr.clone(),
            what: "TLS handshake",
            timeout,
        })?
        .map_err(|e| WireError::Tls {
            addr: addr.clone(),
            cause: explain_tls(&e),
        })?;
    Ok(Box::new(stream))
}

/// Turns rustls' terse errors into advice.
fn explain_tls(e: &std::io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") {
        format!("{text}: the broker's certificate is not signed by a trusted CA; pass the CA that signed it with --ca-file")
    } else if text.contains("NotValidForName") {
        format!("{text}: the certificate does not name this host; connect with the host name the certificate was issued for")
    } else if text.contains("corrupt message") || text.contains("InvalidContentType") {
        format!("{text}: the port does not speak TLS (is it a PLAINTEXT or SASL_PLAINTEXT listener? then drop --tls)")
    } else {
        text
    }
}
