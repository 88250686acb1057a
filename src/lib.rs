//! Kafka Observer: runs Kafka consumers only when there is work for them.
//!
//! The modules follow the data flow: `config` → `protocol` (bytes ↔ messages, no I/O) → `wire`
//! (one broker connection) → `cluster` (routing) → `offsets` (snapshots) → `lag` (pure decisions).
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
pub mod protocol;
pub mod wire;
