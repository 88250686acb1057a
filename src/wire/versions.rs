//! Choosing a protocol version per API: the highest one both sides speak.
//!
//! Kafka 4.0 dropped old versions (KIP-896) and Kafka 3.x lacks new ones, so a fixed version works
//! with one or the other, never both. Each connection asks the broker (ApiVersions) and picks per
//! API; the client's own range is the intersection of what kafka-protocol can encode for the
//! request and what our decoder understands of the response.

use std::collections::HashMap;

/// The broker's advertised range for each API key.
#[derive(Debug, Clone, Default)]
pub struct BrokerVersions {
    ranges: HashMap<i16, (i16, i16)>,
}

/// Why no version could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionGap {
    /// The broker does not list the API at all.
    Missing,
    /// Both list it, but the ranges do not overlap.
    Disjoint {
        ours: (i16, i16),
        theirs: (i16, i16),
    },
}

impl BrokerVersions {
    pub fn new(ranges: impl IntoIterator<Item = (i16, i16, i16)>) -> Self {
        BrokerVersions {
            ranges: ranges
                .into_iter()
                .map(|(key, min, max)| (key, (min, max)))
                .collect(),
        }
    }

    pub fn range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.ranges.get(&api_key).copied()
    }

    /// The highest version in both `ours` and the broker's range for `api_key`.
    pub fn pick(&self, api_key: i16, ours: (i16, i16)) -> Result<i16, VersionGap> {
        let theirs = self.range(api_key).ok_or(VersionGap::Missing)?;
        let hi = ours.1.min(theirs.1);
        let lo = ours.0.max(theirs.0);
        if hi < lo {
            return Err(VersionGap::Disjoint { ours, theirs });
        }
        Ok(hi)
    }
}

/// Intersection of two inclusive ranges (may be empty: min > max).
pub(crate) fn intersect(a: (i16, i16), b: (i16, i16)) -> (i16, i16) {
    (a.0.max(b.0), a.1.min(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_table() {
        // Metadata (3), ListOffsets (2), OffsetFetch (9) as Kafka 3.0, 3.9 and 4.3 advertise them.
        let k30 = BrokerVersions::new([(3, 0, 11), (2, 0, 7), (9, 0, 8)]);
        let k43 = BrokerVersions::new([(3, 0, 13), (2, 1, 11), (9, 1, 10)]);
        type Case<'a> = (&'a BrokerVersions, i16, (i16, i16), Result<i16, VersionGap>);
        let cases: &[Case] = &[
            (&k30, 3, (1, 12), Ok(11)),
            (&k43, 3, (1, 12), Ok(12)),
            (&k30, 2, (1, 10), Ok(7)),
            (&k43, 2, (1, 10), Ok(10)),
            (&k43, 9, (1, 9), Ok(9)),
            (&k30, 9, (1, 9), Ok(8)),
            (
                &k43,
                2,
                (0, 0),
                Err(VersionGap::Disjoint {
                    ours: (0, 0),
                    theirs: (1, 11),
                }),
            ),
            (&k30, 18, (0, 3), Err(VersionGap::Missing)),
        ];
        for (broker, key, ours, want) in cases {
            assert_eq!(&broker.pick(*key, *ours), want, "api {key} ours {ours:?}");
        }
    }

    #[test]
    fn intersect_table() {
        assert_eq!(intersect((0, 13), (1, 12)), (1, 12));
        assert_eq!(intersect((4, 18), (0, 17)), (4, 17));
        let empty = intersect((0, 2), (3, 5));
        assert!(empty.0 > empty.1);
    }
}
