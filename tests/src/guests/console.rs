//! Watching a VMM's serial console and making sure the VMM dies with the test.

use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};

/// Collects everything a child prints on stdout (the guest's serial console
/// with `-serial stdio`) on a background thread, so tests can wait for a
/// marker without blocking on a read.
pub struct ConsoleWatcher {
    seen: Arc<(Mutex<ConsoleText>, Condvar)>,
    started: Instant,
}

#[derive(Default)]
struct ConsoleText {
    text: Vec<u8>,
    closed: bool,
}

impl ConsoleWatcher {
    /// Starts reading `stdout` until it closes.
    pub fn new(mut stdout: ChildStdout) -> ConsoleWatcher {
        let seen = Arc::new((Mutex::new(ConsoleText::default()), Condvar::new()));
        let writer = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let read = stdout.read(&mut buffer);
                let (lock, changed) = &*writer;
                let mut console = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match read {
                    Ok(0) | Err(_) => {
                        console.closed = true;
                        changed.notify_all();
                        return;
                    }
                    Ok(count) => console.text.extend_from_slice(&buffer[..count]),
                }
                changed.notify_all();
            }
        });
        ConsoleWatcher {
            seen,
            started: Instant::now(),
        }
    }

    /// Waits until the console has shown `needle`; returns the time since
    /// the watcher started. Fails on timeout or when the console closed
    /// first, with everything printed so far.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> Result<Duration> {
        let deadline = Instant::now() + limit;
        let (lock, changed) = &*self.seen;
        let mut console = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if String::from_utf8_lossy(&console.text).contains(needle) {
                return Ok(self.started.elapsed());
            }
            let now = Instant::now();
            if console.closed || now >= deadline {
                let what = if console.closed {
                    "(console closed first)"
                } else {
                    ""
                };
                return Err(HarnessError::Timeout {
                    what: format!(
                        "{needle:?} on the console {what}; it showed:\n{}",
                        String::from_utf8_lossy(&console.text)
                    ),
                    seconds: limit.as_secs(),
                });
            }
            console = changed
                .wait_timeout(console, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// Everything printed so far.
    pub fn text(&self) -> String {
        let (lock, _) = &*self.seen;
        let console = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&console.text).into_owned()
    }
}

/// Spawns `command` (a foreground `ctr run` or a VMM) with no stdin and its stdout watched as
/// the guest's console; the child dies with the returned guard.
pub fn spawn_with_console(command: &mut Command) -> Result<(ConsoleWatcher, KillOnDrop)> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(HarnessError::io("spawn", format!("{command:?}")))?;
    let stdout = child.stdout.take().expect("stdout was piped just above");
    Ok((ConsoleWatcher::new(stdout), KillOnDrop(child)))
}

/// A child process that is SIGKILLed and reaped when dropped, so a failing
/// test cannot leave a VMM running.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    /// Waits up to `limit` for the child to exit by itself.
    pub fn wait_within(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().map_err(HarnessError::io(
                "wait for child",
                format!("pid {}", self.0.id()),
            ))? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("pid {} to exit", self.0.id()),
                    seconds: limit.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            if let Err(error) = self.0.kill() {
                eprintln!("KillOnDrop: kill pid {}: {error}", self.0.id());
            }
            if let Err(error) = self.0.wait() {
                eprintln!("KillOnDrop: reap pid {}: {error}", self.0.id());
            }
        }
    }
}
