//! Starting the `kafka-observer` binary in tests: with none of the variables it reads, unless a
//! test sets them, so a developer's own environment (an Event Streams binding, IAM_API_KEY, …)
//! can never leak into a test.

use std::process::Command;

/// Every environment variable the binary reads.
pub const VARIABLES: &[&str] = &[
    "MESSAGEHUB_KAFKA_BROKERS_SASL",
    "MESSAGEHUB_USER",
    "MESSAGEHUB_PASSWORD",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_TLS",
    "KAFKA_CA_FILE",
    "KAFKA_ALLOW_PLAIN_WITHOUT_TLS",
    "KAFKA_ISOLATION",
    "OFFSET_RESET",
    "IAM_API_KEY",
    "IAM_URL",
    "CE_PROJECT_ID",
    "CE_API_BASE_URL",
    "CE_REGION",
    "CE_JOB",
    "CE_JOBRUN",
    "JOB_INDEX",
    "JOB_ARRAY_SIZE",
    "OBSERVER_TICKER",
    "OBSERVER_IDLE_TICKER",
    "OBSERVER_LAUNCHER",
    "OBSERVER_LONG_POLL",
    "MAX_INSTANCES",
    "METRICS_ADDR",
    "METADATA_REFRESH",
    "STUCK_CYCLES",
    "STUCK_BACKOFF",
    "LAUNCHER_REFRESH",
    "kafkadata",
    "KAFKA_TOPIC",
    "CONSUMER_GROUP",
    "IDLE_TIMEOUT",
    "SESSION_TIMEOUT",
    "HEARTBEAT_INTERVAL",
    "CONSUMER_EXEC",
    "CONSUMER_SINK",
    "HANDLER_TIMEOUT",
    "BATCH_SIZE",
    "COMMIT_INTERVAL",
    "ASSIGNORS",
    "STATIC_MEMBERSHIP",
    "RUST_LOG",
    "LOG_LEVEL",
];

/// The program under test: this build, or `KO_OBSERVER_EXE` (the benchmarks point it at the
/// shipped static musl binary, whose memory is the one that matters).
pub fn exe() -> std::ffi::OsString {
    std::env::var_os("KO_OBSERVER_EXE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_kafka-observer").into())
}

/// `kafka-observer ARGS` with a clean environment.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(exe());
    cmd.args(args);
    for v in VARIABLES {
        cmd.env_remove(v);
    }
    cmd
}
