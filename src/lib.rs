//! Kafka Observer: runs Kafka consumers only when there is work for them.
//!
//! One library behind one binary (`main.rs` only hands the command line to [`cli`]). The
//! modules are layers: data flows top to bottom, and nothing below imports from above, so each
//! layer can be read and tested knowing only the ones under it (the layout of
//! `shared/DESIGN.md`; the *Uses* column is what each module imports from the crate).
//!
//! The surface is narrow: `pub(crate)` is the default, and an item is `pub` only when `main.rs`,
//! the integration suite (`proto-tests/`, a test target of this package that sees only the
//! public API) or the fuzz targets use it, and a public module shows only those (mostly as
//! re-exports at its root; its other submodules are crate-private). `#![warn(unreachable_pub)]` (an error in clippy's
//! `-D warnings`) refuses a `pub` that nothing outside can reach, so the compiler also reports
//! what nothing uses at all. The public items are listed by `cargo doc --no-deps`
//! (`target/doc/kafka_observer/all.html`): 106, of which 55 are `protocol` types and decoders
//! that the fuzz targets and the suite decode with.
//!
//! | Layer | Module | Responsibility | Uses |
//! |---|---|---|---|
//! | wiring | [`cli`] | subcommands (`observe`, `consume`, `lag`, `check`, `produce`): clap flags in, handed to [`config`], the result wired to the layers below; exit codes out (0 ok, 1 runtime failure, 2 usage or configuration) | everything below |
//! | config | [`config`] | **pure** resolution and validation before any socket opens: flag beats variable ([`config::settings`], the environment passed in as a [`config::env::Env`]), the connection ([`config::kafka`]), `observe`'s loop and launcher ([`config::observe`]), the consumer's group and handler ([`config::consume`]) and failure policy ([`config::failure`]), `lag`'s targets ([`config::lag`]), `produce`'s topic, delimiters, headers and batches ([`config::produce`]), the kafkadata mapping and broker lists; [`config::secret`] values redact themselves; errors name the field, variable or flag | `protocol` (SASL mechanism and codec names) |
//! | loop | [`observer`] | the reconcile loop: snapshot → plan → act → export; the long poll that wakes it; `/metrics` and `/healthz` | `cluster`, `config`, `http_client`, `lag`, `launch`, `offsets`, `protocol` |
//! | launch | [`launch`] | Code Engine job runs and local processes behind one interface, called from the launcher's own tasks with deadlines | `config`, `http_client`, `iam`, `lag`, `redact`, `retry` |
//! | decide | [`lag`] | **pure**: [`lag::Policy`] (which end of the log counts, where a consumer starts), lag per partition and group, the reconcile plan, stuck partitions | `offsets` (data types), `protocol` (error codes) |
//! | snapshot | [`offsets`] | batched snapshots: log starts and ends per leader, commits and members per coordinator, the long-poll Fetch; errors per partition or group | `cluster`, `protocol`, `retry`, `wire` |
//! | routing | [`cluster`] | bootstrap, metadata cache, leader and coordinator routing, one connection per broker and lane | `config`, `protocol`, `retry`, `wire` |
//! | connection | [`wire`] | one broker connection: TCP/TLS, SASL, framing, correlation ids, version negotiation | `config`, `protocol`, `retry` |
//! | bytes | [`protocol`] | bounds-checked decoders of every response read, Kafka error classes, API names, SASL mechanism names; no I/O | — |
//!
//! Beside the observer's stack, using the same Kafka layers:
//!
//! | Module | Responsibility | Uses |
//! |---|---|---|
//! | [`consumer`] | the consumer role: group membership, fetching, handlers, failure policy, commit after handling, idle exit | `cluster`, `http_client`, `lag`, `offsets`, `protocol`, `retry`, `wire` |
//! | [`producer`] | idempotent, acks=all producer for `produce` and the consumer's dead-letter topic | `cluster`, `offsets`, `protocol`, `retry`, `wire` |
//! | [`http_client`] | the HTTP side: one bounded JSON exchange for IBM Cloud (and the consumer's HTTP sink), failure classes, the call log | `retry`, `tls` |
//! | [`iam`] | IBM Cloud IAM tokens from an API key, cached and refreshed ahead of expiry (Code Engine, SASL OAUTHBEARER) | `config`, `http_client`, `redact`, `retry` |
//!
//! Below them all, shared by the Kafka side and the HTTP side:
//!
//! | Module | Responsibility | Uses |
//! |---|---|---|
//! | [`retry`] | the back-off schedule, its jitter and the one retry loop over failures that say whether they may heal | — |
//! | [`tls`] | rustls client configuration (ring only): CA file, platform store, bundled roots | — |
//! | [`redact`] | removes secrets, in any encoding, from text a server sent back | `config` (the secret type) |
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]
// Docs are part of the code: a link that no longer resolves is a build error in `.ci/run`
// (`cargo doc --document-private-items` with `-D warnings`) and in every `cargo doc` here. The
// docs are for people working on this program, so they include crate-private items, and a link
// to one (most items are `pub(crate)`) is welcome.
#![allow(rustdoc::private_intra_doc_links)]
#![deny(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::invalid_codeblock_attributes,
    rustdoc::invalid_rust_codeblocks,
    rustdoc::bare_urls,
    rustdoc::redundant_explicit_links,
    rustdoc::unescaped_backticks
)]

pub mod cli;
pub mod cluster;
pub mod config;
pub(crate) mod consumer;
pub mod http_client;
pub mod iam;
pub(crate) mod lag;
pub mod launch;
pub(crate) mod observer;
pub mod offsets;
pub(crate) mod producer;
pub mod protocol;
pub(crate) mod redact;
pub mod retry;
pub(crate) mod tls;
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
