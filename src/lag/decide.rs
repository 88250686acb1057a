//! How many consumer instances a job should have, and how many to start now.
//!
//! Level-triggered: the answer depends only on the current lag and the instances running now,
//! never on what changed since the last look, so a missed event, an observer restart or a
//! consumer that died with work left all heal on the next cycle.

/// What to do for one job this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Instances the job should have: one per lagging partition, capped.
    pub desired: u32,
    /// New instances to start now.
    pub launch: u32,
}

/// `lagging` partitions, `active` instances, an optional cap; `gate_open` is false while
/// wake-ups of a stuck job are backing off.
pub fn decide(lagging: u32, active: u32, cap: Option<u32>, gate_open: bool) -> Decision {
    let desired = cap.map_or(lagging, |c| lagging.min(c));
    let launch = if gate_open {
        desired.saturating_sub(active)
    } else {
        0
    };
    Decision { desired, launch }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_table() {
        // (lagging, active, cap, gate, desired, launch)
        let cases = [
            (0, 0, None, true, 0, 0),
            (2, 0, None, true, 2, 2),
            (2, 2, None, true, 2, 0),
            (3, 1, None, true, 3, 2),
            (1, 3, None, true, 1, 0),
            (4, 0, Some(2), true, 2, 2),
            (4, 1, Some(2), true, 2, 1),
            (4, 0, Some(0), true, 0, 0),
            (2, 0, None, false, 2, 0),
        ];
        for (lagging, active, cap, gate, desired, launch) in cases {
            assert_eq!(
                decide(lagging, active, cap, gate),
                Decision { desired, launch },
                "lagging {lagging} active {active} cap {cap:?} gate {gate}"
            );
        }
    }
}
