//! Waiting for something the tests cannot be told about (a process exit,
//! a line in a log, a folder vanishing) by polling it under a time limit.

use std::time::{Duration, Instant};

/// How often [`eventually`] re-checks.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` every 50 ms until it returns true (true) or `limit`
/// passes (false).
pub fn eventually(limit: Duration, check: impl FnMut() -> bool) -> bool {
    eventually_every(limit, POLL, check)
}

/// Polls `check` every `poll` until it returns true (true) or `limit`
/// passes (false). `check` always runs at least once, and once more at or
/// after the limit, so a condition met just in time counts.
pub fn eventually_every(limit: Duration, poll: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(poll);
    }
}
