//! Waiting for an observable fact with a deadline: the suite never sleeps a fixed time (a slow,
//! shared 2-core machine makes any fixed sleep either wasteful or flaky), and never waits
//! without a deadline (a hung test says what it waited for).

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The longest pause between two attempts: the first ones come quickly (most facts are true
/// within milliseconds), later ones at this pace, so a long wait that spawns a process per
/// attempt stays cheap.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// What one attempt returns: done (with a value), or not yet (with what was seen, if
/// anything, formatted only if time runs out).
pub trait Attempt {
    type Value;
    type Seen: std::fmt::Display;
    fn check(self) -> Result<Self::Value, Option<Self::Seen>>;
}

impl Attempt for bool {
    type Value = ();
    type Seen = String;
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
    type Seen = String;
    fn check(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: std::fmt::Display> Attempt for Result<T, E> {
    type Value = T;
    type Seen = E;
    fn check(self) -> Result<T, Option<E>> {
        self.map_err(Some)
    }
}

/// What a failed attempt saw, computed only when time runs out (a log, a member's output).
pub struct Later<F>(pub F);

impl<F: Fn() -> String> std::fmt::Display for Later<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&(self.0)())
    }
}

/// Calls `f` until it is done (`true`, `Some`, `Ok`) and returns its value; after `secs`
/// panics naming `what` and, for `Err`, the last error. Attempts come quickly at first, then
/// every 200 ms.
pub fn eventually<A: Attempt>(secs: u64, what: &str, f: impl FnMut() -> A) -> A::Value {
    poll(secs, what, Duration::from_millis(20), MAX_PAUSE, f)
}

/// [`eventually`] with one attempt every `pause`: for a state that may not last (a metric
/// value, a log line count) and must be seen while it does.
pub fn eventually_every<A: Attempt>(
    pause: Duration,
    secs: u64,
    what: &str,
    f: impl FnMut() -> A,
) -> A::Value {
    poll(secs, what, pause, pause, f)
}

/// [`eventually`] of a yes/no fact at a 50 ms pace; on timeout the panic shows `context()`,
/// which is called only then.
pub fn wait_until(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let pause = Duration::from_millis(50);
    eventually_every(pause, secs, what, || {
        if f() {
            Ok(())
        } else {
            Err(Later(&context))
        }
    });
}

fn poll<A: Attempt>(
    secs: u64,
    what: &str,
    first: Duration,
    max: Duration,
    mut f: impl FnMut() -> A,
) -> A::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pause = first;
    loop {
        match f().check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => timed_out(secs, what, last),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(max);
            }
        }
    }
}

/// [`eventually_every`] inside an async test: `f`'s future is awaited and the pause is a tokio
/// sleep, so the runtime goes on serving the test's other tasks meanwhile.
pub async fn eventually_async<A: Attempt, F: std::future::Future<Output = A>>(
    pause: Duration,
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) -> A::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f().await.check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => timed_out(secs, what, last),
            Err(_) => tokio::time::sleep(pause).await,
        }
    }
}

fn timed_out<S: std::fmt::Display>(secs: u64, what: &str, last: Option<S>) -> ! {
    match last {
        Some(last) => panic!("timed out after {secs} s waiting for {what}; last:\n{last}"),
        None => panic!("timed out after {secs} s waiting for {what}"),
    }
}

/// Waits up to `secs` for `child` to exit and returns how it ended; on timeout kills and reaps
/// it (no test leaves a process behind) and returns `None`.
pub fn exit_within(child: &mut Child, secs: u64) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
