//! Waiting for an observable fact with a deadline: the suite never sleeps a fixed time (a slow,
//! shared 2-core machine makes any fixed sleep either wasteful or flaky), and never waits
//! without a deadline (a hung test says what it waited for).

use std::time::{Duration, Instant};

/// The longest pause between two attempts: the first ones come quickly (most facts are true
/// within milliseconds), later ones at this pace, so a long wait that spawns a process per
/// attempt stays cheap.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// What one attempt returns: done (with a value), or not yet (with what was seen, if anything,
/// shown when time runs out).
pub trait Attempt {
    type Value;
    fn check(self) -> Result<Self::Value, Option<String>>;
}

impl Attempt for bool {
    type Value = ();
    fn check(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Attempt for Option<T> {
    type Value = T;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: std::fmt::Display> Attempt for Result<T, E> {
    type Value = T;
    fn check(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// Calls `f` until it is done (`true`, `Some`, `Ok`) and returns its value; after `secs`
/// panics naming `what` and, for `Err`, the last error.
pub fn eventually<A: Attempt>(secs: u64, what: &str, mut f: impl FnMut() -> A) -> A::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pause = Duration::from_millis(20);
    loop {
        match f().check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => match last {
                Some(last) => panic!("timed out after {secs} s waiting for {what}; last:\n{last}"),
                None => panic!("timed out after {secs} s waiting for {what}"),
            },
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}
