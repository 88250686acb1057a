//! Real-broker test harness: one Apache Kafka broker per test process, started on first use.
//!
//! ```ignore
//! let b = harness::broker();
//! let topic = harness::unique("t");
//! b.create_topic(&topic, 3);
//! b.produce(&topic, 1, 5);
//! ```
//!
//! Other versions and clusters: `harness::broker_version("3.9.1")` (shared per version), or a
//! private `Broker::start_with(Options { version: "3.9.1", nodes: 3, ..Default::default() })`.
//! ACLs: a private `Broker::start_with(Options { authorizer: true, ..Default::default() })`, then
//! `b.acl(&["--add", ...])` for the user [`DESCRIBER`].
//!
//! Blocking std code only. Jars come from Maven Central into `proto-tests/.cache/` (once); every
//! helper drives the broker through its PLAINTEXT listener with the official Java tools, so tests
//! compare this crate against an independent implementation. See `proto-tests/README.md`.
#![allow(dead_code)] // each test binary uses a different subset

mod broker;
mod cache;
mod metadata;
mod process;
mod tls;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

#[allow(unused_imports)] // for tests that keep a `Broker::open_txn` handle in a type
pub use broker::OpenTxn;
pub use broker::{Broker, JavaChild, Options};
#[allow(unused_imports)] // for tests that inspect `Broker::metadata` results by type
pub use metadata::{Metadata, PartitionMeta, TopicMeta};
/// Runs a command with stdin closed and output captured, killed after a timeout.
pub use process::run_with_timeout;

/// The pinned Apache Kafka version (also in `proto-tests/pom.xml`): the default broker's.
pub const KAFKA_VERSION: &str = "4.3.1";

/// SASL users known to the broker for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512: (name, password).
pub const USERS: [(&str, &str); 2] = [("alice", "alice-secret"), ("bob", "bob-secret")];

/// A SASL user (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) that exists only on brokers started with
/// [`Options::authorizer`]: it has no rights beyond what `allow.everyone.if.no.acl.found` and the
/// ACLs a test adds (`Broker::acl`) give it.
pub const DESCRIBER: (&str, &str) = ("describer", "describer-secret");

/// `connections.max.reauth.ms` of the SASL_OAUTH listener ([`Broker::sasl_oauth`]).
pub const OAUTH_REAUTH_MS: u64 = 5000;

/// The broker shared by every test in this process (pinned [`KAFKA_VERSION`], single node),
/// started (blocking) on first call. If it cannot start, every caller panics with the same message
/// (no start is retried per test).
pub fn broker() -> &'static Broker {
    broker_version(KAFKA_VERSION)
}

/// A single-node broker of Kafka `version` (3.7+ or 4.x, all listeners) shared by every test in
/// this process, started on first call like [`broker()`]; `broker_version(KAFKA_VERSION)` is
/// [`broker()`]. Each version has its own jar cache and its own Java tools.
pub fn broker_version(version: &'static str) -> &'static Broker {
    static SHARED: Mutex<BTreeMap<&'static str, &'static OnceLock<Result<Broker, String>>>> =
        Mutex::new(BTreeMap::new());
    let cell: &'static OnceLock<Result<Broker, String>> = SHARED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(version)
        .or_insert_with(|| Box::leak(Box::new(OnceLock::new())));
    let start = || {
        let opts = Options {
            version,
            ..Options::default()
        };
        std::panic::catch_unwind(|| Broker::start_with(opts)).unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(msg.unwrap_or_else(|| "harness: broker start panicked".into()))
        })
    };
    match cell.get_or_init(start) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// A name no other call in any test process shares: `PREFIX-PID-N`. Use it for topics, groups,
/// transactional ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One row of `ConsumerGroupCommand --describe`. `None` where the tool prints `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
}

/// Parses the `--describe` table(s) by header, skipping blank lines, warnings and anything that
/// is not a row under a `GROUP TOPIC PARTITION ...` header.
pub fn parse_group_table(stdout: &str) -> Vec<GroupRow> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<&str>> = None;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"GROUP") && fields.contains(&"TOPIC") {
            header = Some(fields);
            continue;
        }
        let Some(h) = &header else { continue };
        let col = |name: &str| {
            h.iter()
                .position(|c| *c == name)
                .and_then(|i| fields.get(i))
        };
        let offset = |name: &str| col(name).and_then(|v| v.parse::<i64>().ok());
        let (Some(group), Some(topic), Some(partition)) = (
            col("GROUP"),
            col("TOPIC"),
            col("PARTITION").and_then(|v| v.parse::<i32>().ok()),
        ) else {
            continue;
        };
        rows.push(GroupRow {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
            current_offset: offset("CURRENT-OFFSET"),
            log_end_offset: offset("LOG-END-OFFSET"),
            lag: offset("LAG"),
        });
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    rows
}

/// Every row of every table in `stdout` whose header starts with `GROUP` (kafka-consumer-groups'
/// `--describe`, `--members`, `--state` views, and `lag`'s), as header word → value, split on
/// whitespace (so `COORDINATOR (ID)` is two columns, `COORDINATOR` and `(ID)`, in both header and
/// rows). Lines with another word count than the header (messages) are skipped; a blank line
/// ends a table (a summary line after it is not a row).
pub fn parse_columns(stdout: &str) -> Vec<BTreeMap<String, String>> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<&str>> = None;
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"GROUP") {
            header = Some(fields);
            continue;
        }
        // A blank line ends a table: a summary line after it is no row, whatever its word count.
        if fields.is_empty() {
            header = None;
            continue;
        }
        match &header {
            Some(h) if fields.len() == h.len() => rows.push(
                h.iter()
                    .zip(&fields)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            _ => {}
        }
    }
    rows
}
