//! Kafka Observer: runs Kafka consumers only when there is work for them.
//!
//! The modules follow the data flow: `config` → `protocol` (bytes ↔ messages, error codes, API
//! names; no I/O) → `wire` (one broker connection) → `cluster` (routing) → `offsets`
//! (snapshots) → `lag` (pure decisions) → `launch` (Code Engine, local processes) → `observer`
//! (the loop); `consumer` beside it. Below them all: `retry` (back-off, jitter, the one retry
//! loop) and `tls` (trust), shared by the Kafka side and the HTTP side (`http_client`, `iam`).
#![forbid(unsafe_code)]

pub mod cli;
pub mod cluster;
pub mod config;
pub mod consumer;
pub mod http_client;
pub mod iam;
pub mod lag;
pub mod launch;
pub mod observer;
pub mod offsets;
pub mod producer;
pub mod protocol;
pub mod redact;
pub mod retry;
pub mod tls;
pub mod wire;
