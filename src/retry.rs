//! Retrying, once for the whole program: the back-off schedule, its jitter, and the one loop
//! that asks again only for what failed in a way that may heal.
//!
//! The bottom layer: the Kafka side (`wire`, `cluster`, `offsets`) and the HTTP side
//! (`http_client`, `iam`, `launch`) both build on it and on nothing of each other.
//!
//! Jitter spreads the reconnects of many clients after an outage (KEDA #3151 shows the storm a
//! fixed delay causes); the random part is passed in, so the schedule itself is a pure, tested
//! function. Whether a failure is worth another attempt is the failure's own business
//! ([`Retriable`]): errors are typed per layer and know why they happened.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// A bounded retry schedule: exponential steps from `base`, capped at `max`, jittered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        self.delay(attempt, jitter_unit())
    }
}

/// A uniformly random number in [0, 1) for jitter (0.5 if the OS has no randomness).
pub(crate) fn jitter_unit() -> f64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// A failure that knows whether asking again may succeed.
pub(crate) trait Retriable {
    /// True when the condition may heal by itself (a moved leader, a closed connection), false
    /// when every further attempt would fail the same way (bad credentials, a missing topic).
    fn is_retriable(&self) -> bool;
}

/// One operation, retried on the schedule while its failure is retriable. `op` receives the
/// attempt number (0 for the first try). `what` names the operation in the debug line logged
/// per retry.
pub(crate) async fn retry<T, E, F, Fut>(backoff: &Backoff, what: &str, mut op: F) -> Result<T, E>
where
    E: Retriable + std::fmt::Display,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        let e = match op(attempt).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        attempt += 1;
        match backoff.delay_random(attempt).filter(|_| e.is_retriable()) {
            Some(d) => {
                log_retry(what, attempt, 1, d, &e);
                tokio::time::sleep(d).await;
            }
            None => return Err(e),
        }
    }
}

/// The debug line of one retry.
fn log_retry(what: &str, attempt: u32, keys: usize, d: Duration, error: &dyn std::fmt::Display) {
    tracing::debug!(
        what,
        attempt,
        keys,
        delay_ms = d.as_millis() as u64,
        %error,
        "retrying"
    );
}

/// Many keys (partitions, groups), asked together in rounds: each round gets the keys still to
/// do and the attempt number, and answers per key. Keys whose answer is a retriable failure go
/// into the next round after the back-off; the others are final. When the retries run out,
/// the last failure stands. A key the round leaves out counts as done without an answer and
/// is absent from the result.
pub(crate) async fn retry_each<K, V, E, F, Fut>(
    backoff: &Backoff,
    what: &str,
    todo: Vec<K>,
    mut round: F,
) -> BTreeMap<K, Result<V, E>>
where
    K: Ord + Clone,
    E: Retriable + std::fmt::Display,
    F: FnMut(Vec<K>, u32) -> Fut,
    Fut: Future<Output = Vec<(K, Result<V, E>)>>,
{
    let mut out = BTreeMap::new();
    let mut todo = todo;
    let mut attempt = 0u32;
    while !todo.is_empty() {
        let answers = round(std::mem::take(&mut todo), attempt).await;
        attempt += 1;
        let delay = backoff.delay_random(attempt);
        let mut first_retriable: Option<String> = None;
        for (key, answer) in answers {
            if let (Err(e), Some(_)) = (&answer, delay) {
                if e.is_retriable() {
                    first_retriable.get_or_insert_with(|| e.to_string());
                    todo.push(key.clone());
                }
            }
            out.insert(key, answer);
        }
        if let (Some(d), Some(error)) = (delay, first_retriable) {
            log_retry(what, attempt, todo.len(), d, &error);
            tokio::time::sleep(d).await;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

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

    #[test]
    fn jitter_is_a_unit() {
        for _ in 0..100 {
            assert!((0.0..1.0).contains(&jitter_unit()));
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Failure(&'static str, bool);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Retriable for Failure {
        fn is_retriable(&self) -> bool {
            self.1
        }
    }

    fn quick(retries: u32) -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(1),
            retries,
        }
    }

    /// Each key's answers per round, in order; the table says which rounds ask which keys.
    #[tokio::test]
    async fn only_retriable_failures_are_asked_again() {
        let script: BTreeMap<&str, Vec<Result<u32, Failure>>> = BTreeMap::from([
            ("ok", vec![Ok(1)]),
            ("heals", vec![Err(Failure("moved", true)), Ok(2)]),
            ("final", vec![Err(Failure("denied", false))]),
            (
                "never",
                vec![
                    Err(Failure("down", true)),
                    Err(Failure("down", true)),
                    Err(Failure("still down", true)),
                ],
            ),
        ]);
        let asked = std::sync::Mutex::new(Vec::new());
        let out = retry_each(
            &quick(2),
            "test",
            script.keys().copied().collect(),
            |keys, attempt| {
                asked.lock().unwrap().push((attempt, keys.clone()));
                let answers = keys
                    .into_iter()
                    .map(|k| (k, script[k][attempt as usize].clone()))
                    .collect();
                async move { answers }
            },
        )
        .await;
        assert_eq!(
            *asked.lock().unwrap(),
            vec![
                (0, vec!["final", "heals", "never", "ok"]),
                (1, vec!["heals", "never"]),
                (2, vec!["never"]),
            ]
        );
        assert_eq!(out["ok"], Ok(1));
        assert_eq!(out["heals"], Ok(2));
        assert_eq!(out["final"], Err(Failure("denied", false)));
        assert_eq!(out["never"], Err(Failure("still down", true)));
    }

    #[tokio::test]
    async fn a_single_operation_stops_at_success_or_a_final_failure() {
        let calls = AtomicU32::new(0);
        let r: Result<u32, Failure> = retry(&quick(5), "op", |attempt| {
            calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if attempt < 2 {
                    Err(Failure("flaky", true))
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!((r, calls.load(Ordering::Relaxed)), (Ok(2), 3));

        let calls = AtomicU32::new(0);
        let r: Result<u32, Failure> = retry(&quick(5), "op", |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err(Failure("refused", false)) }
        })
        .await;
        assert_eq!(
            (r, calls.load(Ordering::Relaxed)),
            (Err(Failure("refused", false)), 1)
        );

        let r: Result<u32, Failure> =
            retry(&quick(0), "op", |_| async { Err(Failure("down", true)) }).await;
        assert_eq!(r, Err(Failure("down", true)));
    }
}
