//! Job array index specs (`"0-3"`, `"1-5,7-8,10"`): how many instances a job run starts.
//!
//! Code Engine starts one instance per index and tells each its `JOB_INDEX`. The observer only
//! ever asks for `0-(k-1)`, but it reads specs back from the API and the test fake validates
//! what it receives with the same rules, so parsing is strict and shared.

/// The most indices one job run may have (Code Engine's array size limit).
pub(crate) const MAX_ARRAY_SIZE: u32 = 1000;

/// Why a job array spec was refused. Each variant carries the whole spec (it is what the
/// operator or the API sent) and the piece that is wrong; the fake Code Engine answers with
/// the same text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArraySpecError {
    #[error("the array spec is empty: expected e.g. \"0-3\" or \"1-5,7-8,10\"")]
    Empty,
    /// Not digits (blanks, signs, an empty item, a range of more than two ends).
    #[error("the array spec \"{spec}\" is malformed near \"{near}\": expected indices like \"0-3\" or \"1-5,7-8,10\"")]
    Malformed { spec: String, near: String },
    /// Digits, but more than a `u32` holds.
    #[error("the array spec \"{spec}\" has an index too large: \"{index}\"")]
    IndexTooLarge { spec: String, index: String },
    #[error("the array spec \"{spec}\" has a descending range \"{range}\"")]
    Descending { spec: String, range: String },
    #[error("the array spec \"{spec}\" has overlapping indices")]
    Overlapping { spec: String },
    #[error(
        "the array spec \"{spec}\" has {total} indices, more than the limit of {MAX_ARRAY_SIZE}"
    )]
    TooMany { spec: String, total: u64 },
}

/// The number of indices in `spec`: comma-separated non-negative integers or ascending ranges
/// `a-b`, no blanks, no overlaps, at most [`MAX_ARRAY_SIZE`] in all.
pub fn array_spec_len(spec: &str) -> Result<u32, ArraySpecError> {
    if spec.is_empty() {
        return Err(ArraySpecError::Empty);
    }
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for item in spec.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (index(a, spec)?, index(b, spec)?),
            None => {
                let i = index(item, spec)?;
                (i, i)
            }
        };
        if lo > hi {
            return Err(ArraySpecError::Descending {
                spec: spec.to_string(),
                range: item.to_string(),
            });
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut total: u64 = 0;
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        if i > 0 && lo <= ranges[i - 1].1 {
            return Err(ArraySpecError::Overlapping {
                spec: spec.to_string(),
            });
        }
        total += u64::from(hi - lo) + 1;
    }
    if total > u64::from(MAX_ARRAY_SIZE) {
        return Err(ArraySpecError::TooMany {
            spec: spec.to_string(),
            total,
        });
    }
    Ok(total as u32)
}

fn index(text: &str, spec: &str) -> Result<u32, ArraySpecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArraySpecError::Malformed {
            spec: spec.to_string(),
            near: text.to_string(),
        });
    }
    text.parse().map_err(|_| ArraySpecError::IndexTooLarge {
        spec: spec.to_string(),
        index: text.to_string(),
    })
}

/// The spec for `k` instances, `"0-(k-1)"`, as the seed sends it. `k` below 1 is taken as 1.
pub fn array_spec(k: u32) -> String {
    format!("0-{}", k.max(1) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        for (spec, want) in [
            ("0-3", 4),
            ("0-0", 1),
            ("7", 1),
            ("1-5,7-8,10", 8),
            ("10,1-5,7-8", 8),
            ("0-999", 1000),
            ("5-5,6", 2),
            ("4294967295", 1),
        ] {
            assert_eq!(array_spec_len(spec), Ok(want), "{spec}");
        }
    }

    #[test]
    fn rejects() {
        for (spec, why) in [
            ("", "empty"),
            ("3-1", "descending"),
            ("0-3,2", "overlapping"),
            ("1-5,5-6", "overlapping"),
            ("0-1000", "limit"),
            ("0-499,500-1000", "limit"),
            ("0-", "malformed"),
            ("-3", "malformed"),
            ("0--3", "malformed"),
            ("1,,2", "malformed"),
            ("1,", "malformed"),
            (" 1", "malformed"),
            ("0-3 ", "malformed"),
            ("a-b", "malformed"),
            ("+1", "malformed"),
            ("1-2-3", "malformed"),
            ("99999999999", "too large"),
        ] {
            let e = array_spec_len(spec).unwrap_err().to_string();
            assert!(e.contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn messages() {
        let cases = [
            ("", "the array spec is empty: expected e.g. \"0-3\" or \"1-5,7-8,10\""),
            ("0-x", "the array spec \"0-x\" is malformed near \"x\": expected indices like \"0-3\" or \"1-5,7-8,10\""),
            ("99999999999", "the array spec \"99999999999\" has an index too large: \"99999999999\""),
            ("1,3-1", "the array spec \"1,3-1\" has a descending range \"3-1\""),
            ("0-3,2", "the array spec \"0-3,2\" has overlapping indices"),
            ("0-1000", "the array spec \"0-1000\" has 1001 indices, more than the limit of 1000"),
        ];
        for (spec, want) in cases {
            assert_eq!(array_spec_len(spec).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn formatting_round_trips() {
        for (k, want) in [
            (1, "0-0"),
            (2, "0-1"),
            (4, "0-3"),
            (1000, "0-999"),
            (0, "0-0"),
        ] {
            assert_eq!(array_spec(k), want);
            assert_eq!(array_spec_len(want), Ok(k.max(1)));
        }
    }
}
