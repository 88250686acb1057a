//! What one HTTP client may cost the observer: a connection slot out of a fixed number, bytes
//! at a steady pace, and nothing once it goes quiet.
//!
//! The server's clients are a Prometheus scraper and a health probe, both of which send a whole
//! request at once. Anything else — a client that sends half a request and waits, trickles a
//! byte a second, or never reads its answer — must not hold a descriptor for long, and must
//! never keep the probe out. So:
//! - at most [`Limits::max_connections`] connections are open; a new one beyond that takes the
//!   slot of the connection that has waited longest without a request in service (a probe's
//!   request arrives in one packet, so it is served long before it could be the oldest);
//! - a request head must arrive within [`Limits::header_read_timeout`];
//! - a connection on which nothing moved for [`Limits::idle_timeout`] (no byte read or
//!   written: an idle keep-alive, a reader that stopped reading) is closed;
//! - when `accept` fails for want of descriptors (EMFILE/ENFILE), the connection that waited
//!   longest is closed to make room, as at the cap; with none to close, the accept loop pauses,
//!   doubling to [`Limits::accept_pause_max`]. Either way one log line per [`LOG_EVERY`], not
//!   one per try.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// The server's limits (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub accept_pause_min: Duration,
    pub accept_pause_max: Duration,
}

/// Default cap on open connections (also bounded by the descriptor limit, see
/// [`Limits::for_descriptor_limit`]).
pub(crate) const MAX_CONNECTIONS: usize = 128;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            accept_pause_min: Duration::from_millis(10),
            accept_pause_max: Duration::from_secs(1),
        }
    }
}

impl Limits {
    /// The defaults with the cap lowered to a quarter of the process's descriptor limit
    /// (`soft`), so that HTTP clients alone can never use up the descriptors the broker
    /// connections and consumer children need.
    pub(crate) fn for_descriptor_limit(soft: Option<u64>) -> Limits {
        let mut l = Limits::default();
        if let Some(soft) = soft {
            l.max_connections = l.max_connections.min((soft / 4).max(4) as usize);
        }
        l
    }
}

/// The process's soft limit on open descriptors, when it can be read.
pub(crate) fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// How long the accept loop pauses after `failures` consecutive failed accepts ending in
/// `err`: nothing for errors of one connection (it was reset before we took it), doubling from
/// `min` to `max` for everything else — above all running out of descriptors, where retrying
/// at once only spins.
pub(crate) fn accept_pause(err: &io::Error, failures: u32, limits: &Limits) -> Duration {
    use io::ErrorKind::*;
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) {
        return Duration::ZERO;
    }
    let doubled = limits
        .accept_pause_min
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(limits.accept_pause_max)
}

/// A failed accept is logged at most this often; the line says how many failed since.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// Rate limit for one kind of log line.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    /// `Some(n)` when a line is due now (`n` events were not logged since the last line).
    pub(crate) fn due(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < LOG_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The open connections, so that a new one beyond the cap can take the slot of the one that
/// waited longest.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    inner: Mutex<SlotsInner>,
}

#[derive(Debug, Default)]
struct SlotsInner {
    next_id: u64,
    open: HashMap<u64, Arc<Slot>>,
}

/// One open connection as the registry sees it.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    /// When its last request was answered (or it was accepted).
    since: Mutex<Instant>,
    /// A request is being answered: evicted only when nothing else can be.
    serving: AtomicBool,
    /// Told to close (its slot went to a newer connection).
    pub evicted: Notify,
    /// Its connection is closed and its descriptor released.
    closed: Notify,
}

impl Slot {
    /// A request head arrived: the connection is doing what it is for.
    pub(crate) fn serving(&self) {
        self.serving.store(true, Ordering::Relaxed);
    }

    /// The answer was handed to the connection: back to waiting for the next request.
    pub(crate) fn answered(&self) {
        self.serving.store(false, Ordering::Relaxed);
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

/// Frees the slot when the connection ends.
pub(crate) struct SlotGuard {
    slots: Arc<Slots>,
    pub slot: Arc<Slot>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.lock().open.remove(&self.slot.id);
        self.slot.closed.notify_one();
    }
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of open connections.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// A slot for a new connection. At the cap, the connection that has waited longest
    /// without a request in service (else the oldest in service) is told to close and its
    /// slot is taken; returns whether one was evicted.
    pub(crate) fn admit(self: &Arc<Self>, cap: usize) -> (SlotGuard, bool) {
        let mut inner = self.lock();
        let mut evicted = false;
        while inner.open.len() >= cap.max(1) {
            if Self::evict(&mut inner, Duration::ZERO).is_none() {
                break;
            }
            evicted = true;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            since: Mutex::new(Instant::now()),
            serving: AtomicBool::new(false),
            evicted: Notify::new(),
            closed: Notify::new(),
        });
        inner.open.insert(id, slot.clone());
        (
            SlotGuard {
                slots: self.clone(),
                slot,
            },
            evicted,
        )
    }
}

impl Slots {
    /// Closes the connection that waited longest (as [`Slots::admit`] picks it) and waits
    /// briefly until its descriptor is released: what the accept loop does when descriptors
    /// run out, so that a waiting client (the health probe) gets in at once. False when there
    /// is no connection to close.
    /// Connections younger than [`FREE_MIN_AGE`] are spared, so a newcomer always has time to
    /// send its request (else, with descriptors held elsewhere, each accept would close the one
    /// before).
    pub(crate) async fn free_one(&self) -> bool {
        let Some(slot) = Self::evict(&mut self.lock(), FREE_MIN_AGE) else {
            return false;
        };
        let _ = tokio::time::timeout(Duration::from_millis(100), slot.closed.notified()).await;
        true
    }

    /// Tells the connection that waited longest, and at least `min_age`, to close.
    fn evict(inner: &mut SlotsInner, min_age: Duration) -> Option<Arc<Slot>> {
        let now = Instant::now();
        let since = |s: &Slot| *s.since.lock().unwrap_or_else(|p| p.into_inner());
        let id = inner
            .open
            .values()
            .filter(|s| now.duration_since(since(s)) >= min_age)
            .min_by_key(|s| {
                (
                    s.serving.load(Ordering::Relaxed),
                    *s.since.lock().unwrap_or_else(|p| p.into_inner()),
                )
            })
            .map(|s| s.id)?;
        let slot = inner.open.remove(&id)?;
        slot.evicted.notify_one();
        Some(slot)
    }
}

/// See [`Slots::free_one`].
pub(crate) const FREE_MIN_AGE: Duration = Duration::from_millis(500);

/// A stream that remembers when a byte last moved in either direction.
pub(crate) struct Watched<S> {
    inner: S,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last read or write that moved bytes.
    last: Arc<AtomicU64>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S) -> (Watched<S>, Activity) {
        let epoch = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        (
            Watched {
                inner,
                epoch,
                last: last.clone(),
            },
            Activity { epoch, last },
        )
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
}

/// The other side of [`Watched`]: when did the connection last move?
#[derive(Clone)]
pub(crate) struct Activity {
    epoch: Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    pub(crate) fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_pause_table() {
        let l = Limits::default();
        let emfile = io::Error::from_raw_os_error(24);
        let enfile = io::Error::from_raw_os_error(23);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        let cases: &[(&io::Error, u32, u64)] = &[
            (&aborted, 1, 0),
            (&aborted, 50, 0),
            (&emfile, 1, 10),
            (&emfile, 2, 20),
            (&emfile, 4, 80),
            (&emfile, 7, 640),
            (&emfile, 8, 1000),
            (&emfile, 1000, 1000),
            (&enfile, 3, 40),
        ];
        for (err, failures, ms) in cases {
            assert_eq!(
                accept_pause(err, *failures, &l),
                Duration::from_millis(*ms),
                "{err} after {failures}"
            );
        }
    }

    #[test]
    fn log_limit_says_how_many_it_swallowed() {
        let mut l = LogLimit::default();
        let t = Instant::now();
        assert_eq!(l.due(t), Some(0));
        assert_eq!(l.due(t + Duration::from_secs(1)), None);
        assert_eq!(l.due(t + Duration::from_secs(9)), None);
        assert_eq!(l.due(t + Duration::from_secs(10)), Some(2));
        assert_eq!(l.due(t + Duration::from_secs(11)), None);
    }

    #[test]
    fn cap_follows_the_descriptor_limit() {
        assert_eq!(Limits::for_descriptor_limit(None).max_connections, 128);
        assert_eq!(
            Limits::for_descriptor_limit(Some(1 << 20)).max_connections,
            128
        );
        assert_eq!(Limits::for_descriptor_limit(Some(256)).max_connections, 64);
        assert_eq!(Limits::for_descriptor_limit(Some(8)).max_connections, 4);
    }

    #[tokio::test]
    async fn a_full_house_evicts_the_longest_waiting_idle_connection() {
        let slots = Arc::new(Slots::default());
        let (a, _) = slots.admit(3);
        let (b, _) = slots.admit(3);
        let (c, _) = slots.admit(3);
        a.slot.serving();
        // b waited longest without a request in service: it goes.
        let (d, evicted) = slots.admit(3);
        assert!(evicted);
        assert_eq!(slots.len(), 3);
        tokio::time::timeout(Duration::from_secs(5), b.slot.evicted.notified())
            .await
            .expect("b told to close");
        drop(b);
        assert_eq!(slots.len(), 3, "b's slot was already taken over");
        // c then d (both idle) before a (serving).
        let (_e, _) = slots.admit(3);
        tokio::time::timeout(Duration::from_secs(5), c.slot.evicted.notified())
            .await
            .expect("c told to close");
        drop(c);
        drop(d);
        assert_eq!(slots.len(), 2);
        let (_f, evicted) = slots.admit(3);
        assert!(!evicted);
    }
}
