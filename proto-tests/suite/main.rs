//! Integration suite against a real Apache Kafka broker (see proto-tests/README.md).
//! `cargo test --test suite`; the first run downloads the Kafka jars with Maven.

#[path = "../harness/mod.rs"]
mod harness;

mod harness_selftest;
mod hostile;
mod lag_cli;
mod observer_local;
mod observer_proc;
