//! `--sink URL`: POST every record as a CloudEvent (HTTP binding, binary content mode).
//!
//! Binary mode because the record value stays the body byte for byte: a receiver that knows
//! nothing of CloudEvents still gets the payload and a content type, and one that does (Knative,
//! Code Engine apps, the CloudEvents SDKs) gets the attributes from `ce-*` headers. The header
//! set mirrors what Knative's KafkaSource sends, so receivers written for it work unchanged:
//!
//! | header | value |
//! |---|---|
//! | `ce-specversion` | `1.0` |
//! | `ce-id` | `<topic>-<partition>-<offset>` — unique per record, stable across redeliveries, so a receiver can de-duplicate at-least-once delivery |
//! | `ce-source` | given by the caller, e.g. `kafka-observer/<group>/<topic>` |
//! | `ce-type` | `dev.knative.kafka.event` |
//! | `ce-time` | record timestamp, RFC 3339 UTC with milliseconds; absent when the record has none |
//! | `ce-partition`, `ce-offset` | extension attributes (lowercase alphanumeric names, as the spec requires) |
//! | `ce-key` | UTF-8 key as text, a binary key as base64; absent for a null key |
//! | `content-type` | the record's `content-type` header when it has a usable one, else `application/octet-stream` |
//!
//! String values are percent-encoded as the HTTP binding (§3.1.3.2) demands: space, `"`, `%` and
//! everything outside printable ASCII. Records go one at a time, in order, over the shared
//! keep-alive client: the first non-2xx answer, connect error or timeout stops the batch there,
//! so the caller commits exactly the records before it. Any 2xx status is success whatever the
//! body: the body is read only up to a small cap (so the connection can be reused) and dropped
//! beyond it, so a receiver answering with megabytes never turns a delivery into a retry. URLs in errors lose their query string
//! (it may hold a token); credentials in the URL are refused rather than silently dropped.

use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use http::Uri;
use http_body_util::{BodyExt, Full};

use crate::consumer::message::Message;
use crate::http_client::{build_client, error_chain, ExchangeError, HttpClient};

use super::log::shown;
use super::rfc3339;
use super::HandlerError;

/// `ce-type` of every event: the type Knative's Kafka source uses.
pub(crate) const EVENT_TYPE: &str = "dev.knative.kafka.event";
/// `content-type` when the record does not name one.
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Response bodies are read up to this size (so the connection can be reused); a longer body
/// is dropped unread, which closes the connection.
const MAX_RESPONSE_BODY: usize = 64 << 10;
/// How much of an error response's body is repeated in the error.
const ERROR_BODY_SHOWN: usize = 200;

/// A validated sink with its connection pool.
#[derive(Debug)]
pub(crate) struct Sink {
    uri: Uri,
    /// The URL as errors show it (no query).
    shown_url: String,
    source: String,
    timeout: Duration,
    client: HttpClient,
}

impl Sink {
    pub(crate) fn new(url: &str, timeout: Duration, source: &str) -> Result<Sink, HandlerError> {
        let invalid = |reason: &str| HandlerError::InvalidSink {
            url: display_url(url),
            reason: reason.to_string(),
        };
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&format!("not a valid URL: {e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => {
                return Err(invalid(&format!(
                    "unsupported scheme '{other}': use http:// or https://"
                )))
            }
            None => {
                return Err(invalid(
                    "no scheme: use http://host[:port]/path or https://…",
                ))
            }
        }
        let Some(authority) = uri.authority() else {
            return Err(invalid("no host: use http://host[:port]/path or https://…"));
        };
        if authority.as_str().contains('@') {
            return Err(invalid(
                "credentials in the URL are not supported: put an authenticating proxy or a \
                 token in the path/query instead",
            ));
        }
        if authority.host().is_empty() {
            return Err(invalid("no host: use http://host[:port]/path or https://…"));
        }
        if source.is_empty() {
            return Err(invalid(
                "the CloudEvents source (ce-source) must not be empty",
            ));
        }
        if timeout.is_zero() {
            return Err(invalid("the timeout must be greater than zero"));
        }
        let client = build_client(None).map_err(|e| invalid(&format!("TLS setup failed: {e}")))?;
        Ok(Sink {
            shown_url: display_url(&uri.to_string()),
            uri,
            source: source.to_string(),
            timeout,
            client,
        })
    }

    /// Delivers one record; `Ok` only for a 2xx answer.
    pub(crate) async fn post(&self, m: &Message) -> Result<(), HandlerError> {
        let mut req = http::Request::post(self.uri.clone())
            .header(USER_AGENT, crate::http_client::USER_AGENT)
            .body(Full::new(m.value.clone().unwrap_or_default()))
            .map_err(|e| HandlerError::SinkDelivery {
                url: self.shown_url.clone(),
                record: record_id(m),
                cause: e.to_string(),
            })?;
        for (name, value) in event_headers(m, &self.source) {
            // Every value is percent-encoded or checked visible ASCII, so this cannot fail;
            // skipping rather than panicking keeps hostile input an error at worst.
            if let Ok(value) = HeaderValue::from_str(&value) {
                req.headers_mut().insert(name, value);
            }
        }
        let (status, body) = self
            .send(req)
            .await
            .map_err(|e| HandlerError::SinkDelivery {
                url: self.shown_url.clone(),
                record: record_id(m),
                cause: e.to_string(),
            })?;
        if (200..300).contains(&status) {
            return Ok(());
        }
        Err(HandlerError::SinkStatus {
            url: self.shown_url.clone(),
            record: record_id(m),
            status,
            body: shown(Some(&body), ERROR_BODY_SHOWN),
        })
    }

    /// One exchange within the timeout: the status, and the body's first
    /// [`MAX_RESPONSE_BODY`] bytes. Once the status is in, nothing can fail any more: a body
    /// that is too long, breaks off or is too slow is simply cut.
    async fn send(&self, req: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), ExchangeError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = match tokio::time::timeout_at(deadline, self.client.request(req)).await {
            Err(_) => return Err(ExchangeError::Timeout(self.timeout)),
            Ok(Err(e)) if e.is_connect() => return Err(ExchangeError::Connect(error_chain(&e))),
            Ok(Err(e)) => return Err(ExchangeError::Broken(error_chain(&e))),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut head = BytesMut::new();
        while head.len() < MAX_RESPONSE_BODY {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let room = MAX_RESPONSE_BODY - head.len();
                        head.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                // The end, a broken body, or the deadline: what arrived is all there is.
                _ => break,
            }
        }
        Ok((status, head.freeze()))
    }
}

/// `<topic>-<partition>-<offset>`: the event id and how errors name a record.
fn record_id(m: &Message) -> String {
    format!("{}-{}-{}", m.topic, m.partition, m.offset)
}

/// The CloudEvents headers of one record, in a fixed order (see the module doc).
pub(crate) fn event_headers(m: &Message, source: &str) -> Vec<(HeaderName, String)> {
    let h = HeaderName::from_static;
    let mut out = vec![
        (h("ce-specversion"), "1.0".to_string()),
        (h("ce-id"), header_text(&record_id(m))),
        (h("ce-source"), header_text(source)),
        (h("ce-type"), EVENT_TYPE.to_string()),
    ];
    if m.timestamp_ms >= 0 {
        if let Some(time) = rfc3339::format_millis(m.timestamp_ms) {
            out.push((h("ce-time"), time));
        }
    }
    out.push((h("ce-partition"), m.partition.to_string()));
    out.push((h("ce-offset"), m.offset.to_string()));
    if let Some(key) = &m.key {
        let text = match std::str::from_utf8(key) {
            Ok(text) => header_text(text),
            Err(_) => base64::engine::general_purpose::STANDARD.encode(key),
        };
        out.push((h("ce-key"), text));
    }
    out.push((CONTENT_TYPE, content_type(m)));
    out
}

/// The record's `content-type` header if it is usable as one, else the default.
fn content_type(m: &Message) -> String {
    m.header("content-type")
        .and_then(|v| v.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_string()
}

/// Percent-encoding of a CloudEvents string attribute for an HTTP header (binding §3.1.3.2):
/// space, `"`, `%` and every byte outside `!`..=`~` become `%XX` (upper-case hex).
pub(crate) fn header_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL as errors show it: without `user:password@` and with the query replaced by `?…`.
pub(crate) fn display_url(raw: &str) -> String {
    let raw = raw.trim();
    let (mut base, query) = match raw.split_once('?') {
        Some((base, _)) => (base.to_string(), true),
        None => (raw.to_string(), false),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    if let Some(at) = base[after_scheme..authority_end].rfind('@') {
        base.replace_range(after_scheme..after_scheme + at + 1, "");
    }
    if query {
        base.push_str("?…");
    }
    base
}

#[cfg(test)]
mod tests;
