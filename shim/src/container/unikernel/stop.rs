//! Stopping: Kill (the graceful power-off of a Linux guest on qemu, else the signal), and the
//! teardown of everything Create made, then the `poststop` hooks.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtime_core::oci::Status;
use runtime_core::{GracefulStop, Hypervisor};

use super::{lock, run_hooks, Inner};
use crate::container::prepared::Prepared;
use crate::container::process::Phase;
use crate::container::{teardown, ShimContext};
use crate::error::{Result, ShimError};
use crate::hooks::HookKind;
use crate::runc::Runc;

/// Bounds each QMP step of a Kill: a wedged qemu must not hold the Kill request.
const QMP_TIMEOUT: Duration = Duration::from_secs(2);

impl Inner {
    /// Signals the VMM (the init process), or asks its guest to power off (see the module of
    /// `unikernel`); with `all`, every other process of its cgroup too.
    pub(super) async fn kill(&self, signal: u32, all: bool) -> Result<()> {
        let init = self.init();
        let snapshot = init.snapshot();
        if let Some(why) = snapshot.missing() {
            return Err(ShimError::process_not_found(self.id(), &init.which, why));
        }
        let signal = crate::container::process::signal(signal)?;
        let graceful = matches!(signal, Signal::SIGTERM | Signal::SIGINT)
            && snapshot.phase == Phase::Running
            && self.request_powerdown(signal).await;
        let mut pids = if graceful {
            Vec::new()
        } else {
            vec![snapshot.pid]
        };
        if all {
            if let Some(cgroup) = &self.cgroup {
                pids.extend(
                    cgroup
                        .pids()?
                        .into_iter()
                        .filter(|pid| *pid != snapshot.pid),
                );
            }
        }
        for pid in pids {
            match kill(Pid::from_raw(pid as i32), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(error) => {
                    return Err(ShimError::sys(
                        format!("kill VMM pid {pid} with {signal}"),
                        error,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Removes everything Create made, running the poststop hooks once the container is gone
    /// (see `teardown`).
    pub(super) async fn teardown(&self) -> Result<()> {
        // Never started: its process ends before the cgroup it joined is removed.
        let never_started = lock(&self.confined).take();
        if let Some(confined) = never_started {
            confined.process.abandon().await;
        }
        // The VMM is gone: its logging binary has read everything (or gets SIGTERM to flush).
        let logger = lock(&self.logger).clone();
        let stopped = match logger {
            Some(logger) => logger.stop().await,
            None => Ok(()),
        };
        let torn_down = tear_down(&self.context, &self.prepared, self.poststop()).await;
        ShimError::from_cleanup(
            [stopped, torn_down]
                .into_iter()
                .filter_map(Result::err)
                .collect(),
        )
    }

    /// SIGTERM/SIGINT's graceful path: true when the guest was asked to power off (the VMM
    /// keeps running until it does), false when the signal must go to the VMM.
    async fn request_powerdown(&self, signal: Signal) -> bool {
        match &self.plan.graceful_stop {
            GracefulStop::QmpPowerdown { socket } => {
                match crate::qmp::request_powerdown(socket, QMP_TIMEOUT).await {
                    Ok(()) => {
                        tracing::info!(id = %self.id(), %signal, "asked the guest to power off (QMP system_powerdown); SIGKILL ends it if it does not");
                        true
                    }
                    Err(error) => {
                        tracing::warn!(id = %self.id(), %signal, %error, "QMP unreachable: delivering the signal to the VMM instead");
                        false
                    }
                }
            }
            GracefulStop::FirecrackerCtrlAltDel { socket } => {
                tracing::error!(id = %self.id(), %signal, socket = %socket.display(), "firecracker's Ctrl-Alt-Del is not implemented by this shim: delivering the signal to the VMM");
                false
            }
            GracefulStop::Signal => {
                if self.hypervisor == Hypervisor::Firecracker {
                    tracing::info!(id = %self.id(), %signal, "firecracker runs with --no-api (as under urunc): no Ctrl-Alt-Del for the guest; the signal goes to the VMM, which it ends without a guest shutdown");
                }
                false
            }
        }
    }

    /// The poststop hooks, once, after everything else of the container is gone.
    async fn poststop(&self) -> Result<()> {
        if self.poststop_ran.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let pid = self.init().snapshot().pid;
        let pid = (pid != 0).then_some(pid);
        let outcome = run_hooks(
            &self.context,
            &self.prepared,
            HookKind::Poststop,
            Status::Stopped,
            pid,
        )
        .await;
        if let Err(error) = &outcome {
            tracing::error!(id = %self.id(), %error, "poststop hooks failed (the container is deleted)");
        }
        outcome
    }
}

/// Undoes a failed Create: everything [`tear_down`] removes, without poststop hooks.
pub(super) async fn undo(context: &ShimContext, prepared: &Mutex<Prepared>) -> Result<()> {
    tear_down(context, prepared, teardown::no_poststop()).await
}

/// Detaches the network if attached, removes the cgroup, unmounts, runs `poststop`, releases
/// the fresh netns and removes the state once all of that succeeded (`teardown`). Every step
/// is attempted; every failure is reported.
async fn tear_down(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
    poststop: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let (state, store, runc) = {
        let p = lock(prepared);
        let runc = Runc::new(&context.namespace, &p.bundle, context.router.clone());
        (p.state.clone(), p.store.clone(), runc)
    };
    teardown::teardown(&state, &store, &runc, &context.pool, poststop).await
}
