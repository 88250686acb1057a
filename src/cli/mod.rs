//! The command line: flags and environment in, exit codes out. Wiring only.
//!
//! Exit codes are part of the interface: 0 ok, 1 a runtime failure (a broker unreachable, an
//! answer missing), 2 a usage or configuration error that no retry can fix.

pub mod check;
pub mod consume;
pub(crate) mod kafka;
pub mod lag;
pub mod observe;
pub mod produce;

use std::fmt;

use crate::config::settings::OffsetReset;
use crate::config::ConfigError;
use crate::lag::NoCommit;

/// What a command failed with, and so which exit code it gets.
#[derive(Debug)]
pub enum CliError {
    /// The person must change a flag, variable or file: exit 2.
    Usage(String),
    /// Something failed at run time: exit 1.
    Runtime(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Runtime(m) => f.write_str(m),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<crate::wire::WireError> for CliError {
    fn from(e: crate::wire::WireError) -> Self {
        CliError::Runtime(e.to_string())
    }
}

/// An invalid flag or variable value.
pub fn invalid(origin: &str, message: impl Into<String>) -> CliError {
    CliError::from(crate::config::settings::invalid(origin, message))
}

/// `--offset-reset` as the decision layer names it.
fn no_commit(r: OffsetReset) -> NoCommit {
    match r {
        OffsetReset::Earliest => NoCommit::Earliest,
        OffsetReset::Latest => NoCommit::Latest,
    }
}
