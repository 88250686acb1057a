//! Real-broker test harness: one Apache Kafka broker per test process, started on first use.
//!
//! ```ignore
//! let b = harness::broker();
//! let topic = harness::unique("t");
//! b.create_topic(&topic, 3);
//! b.produce(&topic, 1, 5);
//! ```
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub use broker::Broker;

/// The pinned Apache Kafka version (also in `proto-tests/pom.xml`).
pub const KAFKA_VERSION: &str = "4.3.1";

/// SASL users known to the broker for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512: (name, password).
pub const USERS: [(&str, &str); 2] = [("alice", "alice-secret"), ("bob", "bob-secret")];

/// The broker shared by every test in this process, started (blocking) on first call. If it
/// cannot start, every caller panics with the same message (no start is retried per test).
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
    let start = || {
        std::panic::catch_unwind(Broker::start).unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(msg.unwrap_or_else(|| "harness: broker start panicked".into()))
        })
    };
    match BROKER.get_or_init(start) {
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
