//! The checks of `lag`, the command for a person at a workstation: it must be told which
//! groups to show, and a `--watch` period short enough to flood the cluster is refused. Its
//! isolation and offset-reset settings are the shared ones of [`super::settings`].

use super::settings::invalid;
use super::ConfigError;

/// Which groups to show: some must be named (`--group`), or all (`--all-groups`), or those of
/// a mapping (`--kafkadata`).
pub(crate) fn targets_named(
    named: bool,
    all_groups: bool,
    kafkadata: bool,
) -> Result<(), ConfigError> {
    if !named && !all_groups && !kafkadata {
        return Err(invalid(
            "--group",
            "say which groups to show: --group GROUP (repeatable), --all-groups, or --kafkadata FILE",
        ));
    }
    Ok(())
}

/// `--watch SECONDS`: a number of seconds, at least 0.1.
pub(crate) fn watch(seconds: Option<f64>) -> Result<(), ConfigError> {
    match seconds {
        Some(w) if !(w.is_finite() && w >= 0.1) => Err(invalid(
            "--watch",
            "must be a number of seconds, at least 0.1",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_must_be_named_one_way_or_another() {
        for (named, all, kd) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            assert_eq!(targets_named(named, all, kd), Ok(()));
        }
        assert_eq!(
            targets_named(false, false, false).unwrap_err().to_string(),
            "The setting --group is invalid: say which groups to show: --group GROUP (repeatable), --all-groups, or --kafkadata FILE."
        );
    }

    #[test]
    fn watch_periods() {
        for ok in [None, Some(0.1), Some(2.0), Some(1e6)] {
            assert_eq!(watch(ok), Ok(()), "{ok:?}");
        }
        for bad in [0.0, 0.09, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                watch(Some(bad)).unwrap_err().to_string(),
                "The setting --watch is invalid: must be a number of seconds, at least 0.1.",
                "{bad}"
            );
        }
    }
}
