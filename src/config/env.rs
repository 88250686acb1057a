//! Where settings read environment variables from: passed in, never reached for.
//!
//! Resolution rules (flag beats variable, blank is unset, a non-UTF-8 value is refused by name)
//! are decisions, and decisions in this program are pure functions of their inputs, as time and
//! randomness are passed in elsewhere. So `config` never calls `std::env`: the process
//! environment is one [`Env`] ([`ProcessEnv`], used by `cli`), and a table of variables is
//! another (`VarTable`, in the unit tests).

#[cfg(test)]
use std::collections::HashMap;
use std::ffi::OsString;

/// A lookup of environment variables by name.
pub trait Env {
    /// The raw value of `name`, `None` when it is not set.
    fn var_os(&self, name: &str) -> Option<OsString>;
}

/// The environment of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

/// A fixed table of variables, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct VarTable(HashMap<String, OsString>);

#[cfg(test)]
impl VarTable {
    /// A table of text values.
    pub(crate) fn new(vars: &[(&str, &str)]) -> Self {
        VarTable(
            vars.iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v)))
                .collect(),
        )
    }

    /// Adds or replaces one raw value (for values that are not UTF-8).
    pub(crate) fn with_raw(mut self, name: &str, value: OsString) -> Self {
        self.0.insert(name.to_string(), value);
        self
    }
}

#[cfg(test)]
impl Env for VarTable {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.0.get(name).cloned()
    }
}
