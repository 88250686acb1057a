//! Where the kafkadata mapping comes from: `--kafkadata FILE`, or the `kafkadata` variable
//! that holds the YAML itself (a Code Engine configmap key). Shared by `observe`, `check` and
//! `lag --kafkadata`, so the three read a mapping the same way and refuse the same things: a
//! file that cannot be read, is not UTF-8, or is larger than a configmap can be (read at most
//! one byte past the limit, so an endless file costs nothing).

use std::io::Read;
use std::path::PathBuf;

use super::{Kafkadata, MAX_BYTES};
use crate::config::env::Env;
use crate::config::settings::{invalid, var};
use crate::config::ConfigError;

/// Reads the mapping from `--kafkadata FILE` or the `kafkadata` variable, with the parser's
/// warnings (for the caller to log).
pub(crate) fn load(
    env: &dyn Env,
    file: &Option<PathBuf>,
) -> Result<(Kafkadata, Vec<String>), ConfigError> {
    let too_big = |origin: &str, what: String, size: String| {
        invalid(
            origin,
            format!(
                "{what} is {size} bytes; a kafkadata mapping may be at most {} bytes (1 MiB, the size limit of a Code Engine configmap): split the jobs over several observers",
                MAX_BYTES
            ),
        )
    };
    let (text, source) = match (file, var(env, "kafkadata")?) {
        (Some(path), _) => {
            let cannot = |e: std::io::Error| {
                invalid(
                    "--kafkadata",
                    format!("cannot read '{}': {e}", path.display()),
                )
            };
            // Read at most one byte past the limit: a huge or endless file costs nothing.
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(MAX_BYTES as u64 + 1).read_to_end(&mut bytes))
                .map_err(cannot)?;
            if bytes.len() > MAX_BYTES {
                let size = std::fs::metadata(path)
                    .map(|m| m.len().to_string())
                    .unwrap_or_else(|_| format!("more than {}", MAX_BYTES));
                return Err(too_big(
                    "--kafkadata",
                    format!("'{}'", path.display()),
                    size,
                ));
            }
            let text = String::from_utf8(bytes).map_err(|e| {
                invalid(
                    "--kafkadata",
                    format!(
                        "'{}' is not UTF-8 text (invalid byte at offset {})",
                        path.display(),
                        e.utf8_error().valid_up_to()
                    ),
                )
            })?;
            (text, path.display().to_string())
        }
        (None, Some(text)) if text.len() > MAX_BYTES => {
            return Err(too_big(
                "kafkadata",
                "the variable".into(),
                text.len().to_string(),
            ))
        }
        (None, Some(text)) => (text, "env kafkadata".to_string()),
        (None, None) => {
            return Err(invalid(
                "--kafkadata",
                "the topic → job mapping is required: pass --kafkadata FILE or set the variable kafkadata to its YAML",
            ))
        }
    };
    Kafkadata::parse(&text, &source)
}
