//! Integration suite against a real Apache Kafka broker (see proto-tests/README.md).
//! `cargo test --test suite`; the first run downloads the Kafka jars with Maven.

#[path = "../fake_ce/mod.rs"]
mod fake_ce;
#[path = "../harness/mod.rs"]
mod harness;
#[path = "../support/mod.rs"]
mod support;

mod bad_input;
mod bench;
mod code_engine;
mod compat;
mod consumer;
mod fetch_session;
mod groups;
mod hardening;
mod harness_selftest;
mod hostile;
mod lag_cli;
mod oauth;
mod observer_authz;
mod observer_ce;
mod observer_local;
mod produce;
mod readme;
mod records;
mod runsh;
mod time_lag;
mod wake;
