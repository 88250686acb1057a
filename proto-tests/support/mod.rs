//! What the suites share: the only module a suite imports from besides `harness` (the broker)
//! and `fake_ce` (IBM Cloud). A suite never imports from another suite; a helper that two
//! suites need lives here, once, so that a fix (a cleaner environment, a longer deadline, a
//! clearer failure message) reaches every test.
//!
//! | Module | What |
//! |---|---|
//! | [`command`] | the program under test, always with a clean environment; [`text`], how a test shows an output |
//! | [`wait`] | [`eventually`]: the one deadline loop (no test sleeps a fixed time) |
//! | [`observer`] | `observe` as a child process ([`observer::ObserverProc`]): its log, metrics and health |

pub mod command;
pub mod observer;
pub mod wait;

pub use command::{command, run, run_env, text};
pub use wait::eventually;
