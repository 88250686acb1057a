//! Starting the `kafka-observer` binary in tests: with none of the variables it reads, unless a
//! test sets them, so a developer's own environment (an Event Streams binding, IAM_API_KEY, …)
//! can never leak into a test. Every launch of the program goes through [`command_exe`].

use std::ffi::{OsStr, OsString};
use std::process::{Command, Output};

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
    "OBSERVER_GROUP_PLAN",
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
    "MAX_ATTEMPTS",
    "MAX_RECORD_AGE",
    "DEAD_LETTER_TOPIC",
    "ON_EXHAUSTED",
    "RUST_LOG",
    "LOG_LEVEL",
];

/// The program under test: this build, or `KO_OBSERVER_EXE` (the benchmarks point it at the
/// shipped static musl binary, whose memory is the one that matters).
pub fn exe() -> OsString {
    std::env::var_os("KO_OBSERVER_EXE")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_kafka-observer").into())
}

/// `kafka-observer ARGS` with a clean environment.
pub fn command(args: &[&str]) -> Command {
    command_exe(&exe(), args)
}

/// `EXE ARGS` with a clean environment: the program under test or a baseline build of it.
pub fn command_exe(exe: &OsStr, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    for v in VARIABLES {
        cmd.env_remove(v);
    }
    cmd
}

/// [`command`] with `env` set on top of the clean environment.
pub fn command_env(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `kafka-observer ARGS` (clean environment) to completion.
pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

/// Runs `kafka-observer ARGS` with `env` on top of the clean environment to completion.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    command_env(args, env).output().expect("run kafka-observer")
}

/// An output as a failing assertion shows it: exit code, stdout, stderr.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
