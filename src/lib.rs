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

// Randomness (SCRAM nonces, retry jitter) comes from the getrandom crate. In a statically linked
// glibc binary its default Linux backend cannot find glibc's getrandom() (it looks it up with
// dlsym, which a static binary does not have) and falls back to opening /dev/urandom, which a
// FROM scratch image or a chroot does not have: SCRAM then fails ("could not generate a random
// SCRAM nonce"). The musl build links getrandom() directly; a static glibc build must choose the
// syscall backend, so building one without it is an error here rather than in production.
#[cfg(all(
    target_os = "linux",
    target_env = "gnu",
    target_feature = "crt-static",
    not(any(getrandom_backend = "linux_getrandom", getrandom_backend = "linux_raw"))
))]
compile_error!(
    "a static glibc build needs the getrandom syscall backend: add \
     --cfg getrandom_backend=\"linux_getrandom\" to RUSTFLAGS (as proto-tests/image/check.sh does), \
     or build for x86_64-unknown-linux-musl"
);
