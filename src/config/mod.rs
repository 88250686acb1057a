//! Configuration: flags, environment and the kafkadata mapping.
//!
//! Everything a person can get wrong is checked here, before any socket opens, so that a typo
//! in a Code Engine configmap or an Event Streams binding fails fast with one sentence that
//! names where the value came from and how to fix it — instead of surfacing minutes later as a
//! connection timeout or a consumer that never wakes up. Those failures map to exit code
//! [`EXIT_CODE`].

pub(crate) mod brokers;
pub(crate) mod consume;
pub(crate) mod env;
pub(crate) mod failure;
pub(crate) mod kafka;
pub(crate) mod kafkadata;
pub(crate) mod lag;
pub(crate) mod observe;
pub(crate) mod produce;
pub(crate) mod secret;
pub(crate) mod settings;

pub use brokers::BrokerAddr;
pub use env::{Env, ProcessEnv};
pub use secret::Secret;
pub use settings::var;

/// Process exit code for any configuration error: the run cannot succeed until a person edits
/// the input, so restarting (which Code Engine does for non-zero daemon exits) will not help.
pub(crate) const EXIT_CODE: i32 = 2;

/// A configuration problem, phrased for the person who has to fix it.
///
/// Every variant names its origin (a flag such as `--bootstrap`, an environment variable, or a
/// file path) because the same value can arrive by several routes and the fix differs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A bootstrap broker list that could not be read.
    #[error("The broker list in {origin} is invalid: {message}.")]
    Brokers {
        /// Where the list came from, e.g. `--bootstrap` or `MESSAGEHUB_KAFKA_BROKERS_SASL`.
        origin: String,
        /// What was wrong and how to fix it.
        message: String,
    },

    /// A kafkadata document that is valid YAML but not a valid mapping of topics to jobs.
    #[error("The kafkadata in {origin} is invalid at {path}: {message}.")]
    Kafkadata {
        /// File path or e.g. `env kafkadata`.
        origin: String,
        /// Location inside the document, e.g. `payments.jobs[0].name`, or `(document)`.
        path: String,
        /// What was wrong and how to fix it.
        message: String,
    },

    /// A kafkadata document that is not even YAML.
    #[error(
        "The kafkadata in {origin} is not valid YAML (line {line}, column {column}): {message}. \
         Check the indentation and quoting around that spot."
    )]
    Yaml {
        /// File path or e.g. `env kafkadata`.
        origin: String,
        /// 1-based line, 0 when the parser did not say.
        line: usize,
        /// 1-based column, 0 when the parser did not say.
        column: usize,
        /// The parser's own description.
        message: String,
    },

    /// Any other invalid or missing setting (flags, environment variables).
    #[error("The setting {origin} is invalid: {message}.")]
    Invalid {
        /// The flag or environment variable.
        origin: String,
        /// What was wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// The process exit code for this error (always [`EXIT_CODE`]).
    pub fn exit_code(&self) -> i32 {
        EXIT_CODE
    }
}
