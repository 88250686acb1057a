//! What the suites share: the only module a suite imports from besides `harness` (the broker)
//! and `fake_ce` (IBM Cloud). A suite never imports from another suite; a helper that two
//! suites need lives here, once, so that a fix (a cleaner environment, a longer deadline, a
//! clearer failure message) reaches every test.
//!
//! | Module | What |
//! |---|---|
//! | [`command`] | the program under test, always with a clean environment; [`text`], how a test shows an output |
//! | [`consumer`] | `consume` commands ([`consumer::consume_cmd`], [`consumer::exec_consumer`]), what the handler wrote, waiting for a child |
//! | [`produce`] | `produce` with its input on stdin, its summary, Kafka's console consumer reading a topic back |
//! | [`wait`] | [`eventually`]: the one deadline loop (no test sleeps a fixed time); [`wait::exit_within`] for a child |
//! | [`observer`] | `observe` as a child process ([`observer::ObserverProc`]): its log, metrics and health |

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_observer::wire::{ConnectOptions, Connection};

use crate::harness;

pub mod command;
pub mod consumer;
pub mod observer;
pub mod produce;
pub mod wait;

pub use command::{command, run, run_env, text};
pub use wait::{eventually, eventually_every};

/// A fresh directory `prefix-PID-N` under the system temp dir (left there: the logs of a failed
/// test are worth keeping).
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(harness::unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `f` with a fresh connection to the shared broker's plaintext listener.
pub fn with_plaintext<T>(f: impl AsyncFnOnce(&Connection) -> T) -> T {
    let b = harness::broker();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = b.plaintext();
        let (host, port) = addr.rsplit_once(':').unwrap();
        let conn = Connection::connect(host, port.parse().unwrap(), &ConnectOptions::default())
            .await
            .unwrap();
        f(&conn).await
    })
}

/// Now, in milliseconds since the Unix epoch (record timestamps).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
