//! The shim's one and only reaper.
//!
//! The serving shim is a child subreaper: its VMMs, its `runc` CLI children and the container
//! processes `runc` leaves behind all report to it. Exactly one task calls `waitpid(-1)`; every
//! exit goes to whoever registered interest in that pid through an [`ExitRouter`] owned by the
//! service (no process-wide registry).
//!
//! Spawning goes through [`ExitRouter::spawn`], which holds the router's lock across the fork so
//! the reaper cannot reap a child before its waiter is registered, and cannot steal the status
//! `std::process::Command::spawn` itself collects when an `exec` fails.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::error::{Result, ShimError};

/// Exit statuses of pids nobody registered yet, kept so a container process reparented to us
/// (runc's init) that dies before its pid file is read is still reported. Bounded: orphans of
/// orphans (daemons a container leaves) must not grow it forever.
const UNCLAIMED_LIMIT: usize = 1024;

/// How a process ended, in containerd's encoding: the exit code, or 128 + the signal number.
pub type ExitCode = u32;

#[derive(Default)]
struct Routes {
    waiting: HashMap<i32, oneshot::Sender<ExitCode>>,
    unclaimed: HashMap<i32, ExitCode>,
}

#[derive(Clone)]
pub struct ExitRouter {
    routes: Arc<Mutex<Routes>>,
}

impl ExitRouter {
    /// Subscribes to SIGCHLD and starts the reaping task. Call before spawning anything.
    pub fn start() -> Result<Self> {
        let mut sigchld =
            signal(SignalKind::child()).map_err(|e| ShimError::io("subscribe to SIGCHLD", e))?;
        let router = ExitRouter {
            routes: Arc::new(Mutex::new(Routes::default())),
        };
        let reaper = router.clone();
        tokio::spawn(async move {
            // One pass at start: a child may have died before the subscription existed.
            loop {
                reaper.reap_all();
                if sigchld.recv().await.is_none() {
                    tracing::error!("SIGCHLD stream ended: no more exits will be reaped");
                    return;
                }
            }
        });
        Ok(router)
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding this lock would already have aborted the shim's state machine;
        // the routes themselves are still consistent, so keep serving.
        self.routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reap_all(&self) {
        let mut routes = self.lock();
        loop {
            let (pid, code) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code as ExitCode),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid.as_raw(), 128 + signal as ExitCode)
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::error!(%error, "waitpid(-1) failed");
                    return;
                }
            };
            tracing::debug!(pid, code, "reaped");
            match routes.waiting.remove(&pid) {
                Some(waiter) => {
                    // The waiter may have given up (its container was deleted): nothing to do.
                    let _ = waiter.send(code);
                }
                None => {
                    if routes.unclaimed.len() >= UNCLAIMED_LIMIT {
                        routes.unclaimed.clear();
                    }
                    routes.unclaimed.insert(pid, code);
                }
            }
        }
    }

    /// Spawns `command` and returns the child with a receiver of its exit code.
    /// The returned `Child` must not be waited on: the exit arrives on the receiver.
    pub fn spawn(
        &self,
        command: &mut Command,
    ) -> std::io::Result<(Child, oneshot::Receiver<ExitCode>)> {
        let mut routes = self.lock();
        let child = command.spawn()?;
        let pid = child.id() as i32;
        let (sender, receiver) = oneshot::channel();
        routes.unclaimed.remove(&pid);
        routes.waiting.insert(pid, sender);
        Ok((child, receiver))
    }

    /// Forks a child that runs `child` and never execs (a helper of async-signal-safe system
    /// calls only), registered like [`Self::spawn`]'s children: under the router's lock, so its
    /// exit is never reaped unclaimed.
    ///
    /// # Safety
    /// `child` runs in the forked child of a multi-threaded process: it may make raw system
    /// calls on memory allocated before the fork only (no allocation, no locks), and must end
    /// the process itself (`_exit`; one that returns is ended with status 127).
    pub unsafe fn fork_helper(
        &self,
        child: impl FnOnce(),
    ) -> std::io::Result<(i32, oneshot::Receiver<ExitCode>)> {
        let mut routes = self.lock();
        // SAFETY: the caller's contract; the child runs `child` only.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            child();
            // SAFETY: a child that returned ends here, never back in the shim's code.
            unsafe { libc::_exit(127) };
        }
        let (sender, receiver) = oneshot::channel();
        routes.unclaimed.remove(&pid);
        routes.waiting.insert(pid, sender);
        Ok((pid, receiver))
    }

    /// Signals `pid`, a child of this shim, unless it was reaped already (its pid may then be
    /// another process's): the check and the signal happen under the lock the reaper takes.
    pub fn kill_unreaped(&self, pid: i32, signal: libc::c_int) {
        let routes = self.lock();
        if routes.waiting.contains_key(&pid) {
            // SAFETY: kill(2) with plain integers; an ESRCH (a zombie) needs nothing.
            unsafe { libc::kill(pid, signal) };
        }
    }

    /// Watches a process we did not fork ourselves but that is reparented to us (the init
    /// process `runc create` leaves behind). An exit already reaped is delivered at once.
    pub fn watch(&self, pid: i32) -> oneshot::Receiver<ExitCode> {
        let mut routes = self.lock();
        let (sender, receiver) = oneshot::channel();
        match routes.unclaimed.remove(&pid) {
            Some(code) => {
                let _ = sender.send(code);
            }
            None => {
                routes.waiting.insert(pid, sender);
            }
        }
        receiver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Two routers in one process steal each other's exits: every unit test that spawns shares
    // the test binary's single router.
    fn router() -> ExitRouter {
        crate::confine::test_reaper::shared()
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[tokio::test]
    async fn exit_codes_and_signals_reach_their_waiter() {
        let router = router();
        let (_child, exited) = router.spawn(&mut sh("exit 3")).expect("spawn");
        assert_eq!(exited.await.expect("exit"), 3);
        let (_child, killed) = router.spawn(&mut sh("kill -9 $$")).expect("spawn");
        assert_eq!(killed.await.expect("exit"), 128 + 9);
    }

    #[tokio::test]
    async fn an_exit_reaped_before_anyone_watched_is_still_delivered() {
        let router = router();
        // Spawned outside the router, like the container process runc leaves to us; the shared
        // router reaps it (waiting here would steal the status under test).
        #[allow(clippy::zombie_processes)]
        let child = sh("exit 5").spawn().expect("spawn");
        let pid = child.id() as i32;
        // Reaped means its /proc entry is gone (a zombie keeps one): wait for exactly that.
        let reaped = tokio::time::timeout(Duration::from_secs(10), async {
            while std::path::Path::new(&format!("/proc/{pid}")).exists() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
        assert!(reaped.is_ok(), "pid {pid} was not reaped");
        let exit = tokio::time::timeout(Duration::from_secs(10), router.watch(pid))
            .await
            .expect("delivered")
            .expect("exit");
        assert_eq!(exit, 5);
    }

    #[tokio::test]
    async fn a_failed_exec_is_an_error_not_a_stolen_status() {
        let router = router();
        let error = router
            .spawn(&mut Command::new("/nonexistent/program"))
            .expect_err("no such program");
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }
}
