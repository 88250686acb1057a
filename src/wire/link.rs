//! Many requests in flight on one connection, matched to responses by correlation id.
//!
//! A writer task owns the write half and a reader task the read half, so a caller that gives up
//! (timeout, dropped future) can never leave half a frame on the wire. Any read error, a frame
//! that is not Kafka, or a response to a request never sent poisons the link: every waiting and
//! future request fails at once with the same reason, and the owner reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::frame::{read_frame, FrameError};
use super::transport::Stream;
use super::WireError;
use crate::protocol::api::api_name;
use crate::protocol::{decode_response_header, Reader};

type Reply = Result<Bytes, WireError>;

/// Why the reader poisoned the link: the text becomes the reason of every
/// [`WireError::Closed`] that follows.
#[derive(Debug, thiserror::Error)]
enum ReadFault {
    #[error("closed by the broker")]
    Eof,
    #[error("the broker sent a frame of {size} bytes, over the {max}-byte limit (raise --max-frame-bytes if the broker is genuine)")]
    TooLarge { size: i64, max: usize },
    /// Any other framing failure (a negative size, a cut frame, a read error).
    #[error(transparent)]
    Frame(FrameError),
    #[error("received a {len}-byte frame, too short for a response header: not a Kafka broker?")]
    ShortFrame { len: usize },
    #[error("received a response with correlation id {id}, which was never sent: not a Kafka broker, or the stream is corrupt")]
    UnknownId { id: i32 },
}

impl From<FrameError> for ReadFault {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge { size, max } => ReadFault::TooLarge { size, max },
            e => ReadFault::Frame(e),
        }
    }
}

struct Pending {
    tx: oneshot::Sender<Reply>,
    flexible_header: bool,
}

#[derive(Default)]
struct State {
    pending: HashMap<i32, Pending>,
    next_id: i32,
    closed: Option<Arc<str>>,
}

struct Shared {
    addr: Arc<str>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave State inconsistent; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn closed_error(&self, reason: &Arc<str>) -> WireError {
        WireError::Closed {
            addr: self.addr.to_string(),
            reason: reason.clone(),
        }
    }

    /// Marks the link dead and fails everything waiting on it. The first reason wins.
    fn poison(&self, reason: String) {
        let mut st = self.lock();
        if st.closed.is_none() {
            tracing::debug!(addr = %self.addr, %reason, "connection closed");
            st.closed = Some(reason.into());
        }
        let reason = st.closed.clone().expect("set above");
        for (_, p) in st.pending.drain() {
            let _ = p.tx.send(Err(self.closed_error(&reason)));
        }
    }
}

/// A multiplexed, framed connection to one broker.
pub(super) struct Link {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Bytes>,
    tasks: [JoinHandle<()>; 2],
    client_id: StrBytes,
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Link {
    pub(super) fn new(
        stream: Box<dyn Stream>,
        addr: &str,
        max_frame: usize,
        client_id: &str,
    ) -> Self {
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            addr: addr.into(),
            state: Mutex::new(State::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(rd, shared.clone(), max_frame));
        let writer = tokio::spawn(write_loop(wr, rx, shared.clone()));
        Link {
            shared,
            writer: tx,
            tasks: [reader, writer],
            client_id: StrBytes::from_string(client_id.to_string()),
        }
    }

    pub(super) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Why the link is unusable, if it is.
    pub(super) fn closed(&self) -> Option<Arc<str>> {
        self.shared.lock().closed.clone()
    }

    /// Marks the link unusable (the first reason wins) and fails every waiting request.
    pub(super) fn poison(&self, reason: String) {
        self.shared.poison(reason);
    }

    /// Sends `req` at `version` and waits for the response body (header already removed).
    pub(super) async fn roundtrip<Q: Request>(
        &self,
        req: &Q,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes, WireError> {
        let api = api_name(Q::KEY);
        let flexible_header = Q::Response::header_version(version) >= 1;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.shared.lock();
            if let Some(reason) = &st.closed {
                return Err(self.shared.closed_error(reason));
            }
            let id = st.next_id;
            st.next_id = st.next_id.wrapping_add(1).max(0);
            st.pending.insert(
                id,
                Pending {
                    tx,
                    flexible_header,
                },
            );
            id
        };
        let frame = match self.encode(req, version, id) {
            Ok(f) => f,
            Err(e) => {
                self.shared.lock().pending.remove(&id);
                return Err(e);
            }
        };
        if self.writer.send(frame).is_err() {
            self.shared.poison("the writer stopped".into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(self
                .shared
                .closed_error(&self.closed().unwrap_or_else(|| "link dropped".into()))),
            Err(_) => {
                self.shared.lock().pending.remove(&id);
                Err(WireError::Timeout {
                    addr: self.addr().to_string(),
                    what: api,
                    timeout,
                })
            }
        }
    }

    /// The request's frame; kafka-protocol reports encode errors as `anyhow::Error`, of which
    /// only the text is kept.
    fn encode<Q: Request>(&self, req: &Q, version: i16, id: i32) -> Result<Bytes, WireError> {
        let failed = |e: &dyn std::fmt::Display| WireError::Encode {
            api: api_name(Q::KEY),
            cause: e.to_string(),
        };
        let header = RequestHeader::default()
            .with_request_api_key(Q::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        header
            .encode(&mut buf, Q::header_version(version))
            .map_err(|e| failed(&e))?;
        req.encode(&mut buf, version).map_err(|e| failed(&e))?;
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        Ok(buf.freeze())
    }
}

async fn write_loop(
    mut wr: WriteHalf<Box<dyn Stream>>,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = rx.recv().await {
        if let Err(e) = wr.write_all(&frame).await {
            shared.poison(format!("write failed: {e}"));
            return;
        }
        if rx.is_empty() {
            if let Err(e) = wr.flush().await {
                shared.poison(format!("write failed: {e}"));
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop(mut rd: ReadHalf<Box<dyn Stream>>, shared: Arc<Shared>, max_frame: usize) {
    let fault = loop {
        let frame = match read_frame(&mut rd, max_frame).await {
            Ok(Some(f)) => f,
            Ok(None) => break ReadFault::Eof,
            Err(e) => break e.into(),
        };
        if let Err(fault) = dispatch(&shared, frame) {
            break fault;
        }
    };
    shared.poison(fault.to_string());
}

/// Hands one response frame to its waiter; a fault poisons the link.
fn dispatch(shared: &Shared, frame: Bytes) -> Result<(), ReadFault> {
    if frame.len() < 4 {
        return Err(ReadFault::ShortFrame { len: frame.len() });
    }
    let id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let mut st = shared.lock();
    let Some(p) = st.pending.remove(&id) else {
        // Ids below next_id were issued: the waiter gave up (timeout) and left. Anything else
        // answers a question never asked.
        if id >= 0 && id < st.next_id {
            return Ok(());
        }
        return Err(ReadFault::UnknownId { id });
    };
    drop(st);
    let mut r = Reader::new(&frame);
    let body = match decode_response_header(&mut r, p.flexible_header) {
        Ok(_) => Ok(frame.slice(frame.len() - r.remaining()..)),
        Err(e) => Err(WireError::Decode {
            addr: shared.addr.to_string(),
            api: "response header",
            source: Box::new(e),
        }),
    };
    let _ = p.tx.send(body);
    Ok(())
}
