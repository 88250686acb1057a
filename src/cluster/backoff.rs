//! Exponential backoff with jitter, as a pure function of the attempt number.
//!
//! Jitter spreads reconnects of many clients after an outage (KEDA #3151 shows the storm a fixed
//! delay causes); the random part is passed in so the schedule itself is testable.

use std::time::Duration;

/// A bounded retry schedule.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// How many retries after the first attempt.
    pub retries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            retries: 5,
        }
    }
}

impl Backoff {
    /// Delay before retry number `attempt` (1-based), `unit` in [0, 1) picks the jittered point in
    /// the upper half of the exponential step. `None` once retries are exhausted.
    pub fn delay(&self, attempt: u32, unit: f64) -> Option<Duration> {
        if attempt == 0 || attempt > self.retries {
            return None;
        }
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX))
            .min(self.max);
        let unit = unit.clamp(0.0, 1.0);
        Some(exp.mul_f64(0.5 + 0.5 * unit))
    }

    /// `delay` with a random jitter.
    pub fn delay_random(&self, attempt: u32) -> Option<Duration> {
        let mut b = [0u8; 8];
        let unit = match getrandom::fill(&mut b) {
            Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
            Err(_) => 0.5,
        };
        self.delay(attempt, unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_table() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            retries: 6,
        };
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        let cases = [
            (0, 0.0, None),
            (1, 0.0, Some(50)),
            (1, 1.0, Some(100)),
            (2, 1.0, Some(200)),
            (3, 0.0, Some(200)),
            (4, 1.0, Some(800)),
            (5, 1.0, Some(1000)),
            (6, 0.0, Some(500)),
            (7, 0.5, None),
        ];
        for (attempt, unit, want) in cases {
            assert_eq!(
                ms(b.delay(attempt, unit)),
                want,
                "attempt {attempt} unit {unit}"
            );
        }
    }

    #[test]
    fn huge_attempts_do_not_overflow() {
        let b = Backoff {
            retries: u32::MAX,
            ..Backoff::default()
        };
        assert_eq!(b.delay(200, 1.0), Some(b.max));
    }
}
