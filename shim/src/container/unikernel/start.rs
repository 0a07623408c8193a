//! Start: the VMM is spawned in the container's namespaces and cgroup, confined, between the
//! `startContainer` and `poststart` hooks; its exit is watched, its network detached before
//! TaskExit is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runtime_core::oci::Status;

use super::network::{detach_network, DetachedNetwork};
use super::{lock, run_hooks, ConfinedVmm, Inner};
use crate::cgroup::Cgroup;
use crate::confine::{HeldMountNamespace, NotStarted};
use crate::console::Console;
use crate::container::core::{ExitFindings, ExitSteps};
use crate::container::phase_timer::PhaseTimer;
use crate::container::prepared::Prepared;
use crate::error::{Result, ShimError};
use crate::hooks::HookKind;
use crate::log_binary::{LogBinary, LoggerInputs};
use crate::reaper::ExitCode;
use crate::state::ProcessIdentity;
use crate::stderr_tee::{self, StderrTee};
use crate::stdio::ProcessStdio;

impl Inner {
    /// Runs the `startContainer` hooks, spawns the VMM, then runs the `poststart` hooks.
    pub(super) async fn start(self: &Arc<Self>) -> Result<u32> {
        let inner = self;
        run_hooks(
            &inner.context,
            &inner.prepared,
            HookKind::StartContainer,
            Status::Created,
            None,
        )
        .await?;
        let logger = inner.start_logger().await?;
        let pid = inner.start_vmm(logger)?;
        // runtime-spec: a poststart failure is a warning; the VMM runs on.
        if let Err(error) = run_hooks(
            &inner.context,
            &inner.prepared,
            HookKind::Poststart,
            Status::Running,
            Some(pid),
        )
        .await
        {
            tracing::warn!(id = %inner.id(), %error, "poststart hooks failed; the VMM keeps running");
        }
        Ok(pid)
    }

    /// The logging binary a `binary://` stdout names, started and ready (kept for the
    /// teardown to stop); the VMM's stdout and stderr are its pipes.
    async fn start_logger(&self) -> Result<Option<LoggerInputs>> {
        let stdio = lock(&self.prepared).stdio.clone();
        let Some((program, args)) = stdio.log_binary()? else {
            return Ok(None);
        };
        let (logger, inputs) = LogBinary::start(
            &self.context.router,
            &program,
            &args,
            self.id(),
            &self.context.namespace,
        )
        .await?;
        *lock(&self.logger) = Some(Arc::new(logger));
        Ok(Some(inputs))
    }

    /// A VMM that died right after its start: why, from its stderr, in the shim's log and as
    /// the last line of the container's stderr (what `ctr` and the CRI log show).
    async fn report_early_exit(&self, tee: &StderrTee, status: ExitCode, ran: Duration) {
        let program = &self.plan.program;
        let mut report = None;
        tee.finish(|tail| {
            report = runtime_core::early_exit_message(program, status, ran, tail);
            report.clone()
        })
        .await;
        if let Some(report) = report {
            tracing::error!(id = %self.id(), %report, "the VMM died right after its start");
        }
    }

    fn start_vmm(self: &Arc<Self>, logger: Option<LoggerInputs>) -> Result<u32> {
        let mut timer = PhaseTimer::with_cpu();
        let ConfinedVmm { program, process } = lock(&self.confined)
            .take()
            .ok_or_else(|| ShimError::precondition(self.id(), "the VMM was already started"))?;
        // Copied out so the FIFOs and the console are opened without the container's lock.
        let paths = lock(&self.prepared).stdio.clone();
        // On a terminal the VMM's stderr is the pty, shared with its console: not teed.
        let (stdio, stderr_tee) = if paths.terminal {
            let (console, slave) = Console::open()?;
            self.init()
                .set_stdin(console.start_copying(self.id(), &paths)?);
            self.init().set_console(console);
            (ProcessStdio::terminal(slave)?, None)
        } else {
            let (mut stdio, stdin) = paths.open_with(self.id(), logger)?;
            self.init().set_stdin(stdin);
            let (vmm_stderr, tee) = stderr_tee::interpose(self.id(), stdio.stderr)?;
            stdio.stderr = vmm_stderr;
            (stdio, Some(tee))
        };
        timer.mark("stdio");
        // Opened first: the process may still be preparing (it was forked at the end of
        // Create), and the stdio does not depend on it.
        let launched = process.ready().and_then(|ready| {
            timer.mark("vmm_ready");
            let (prepared_in, ready_for) = (ready.prepared_in, ready.ready_for);
            ready
                .exec(stdio)
                .map(|launched| (launched, prepared_in, ready_for))
        });
        timer.mark("exec");
        let started_at = Instant::now();
        let (launched, prepared_in, ready_for) = match launched {
            Ok(launched) => launched,
            Err(not_started) => {
                let NotStarted { error, process } = *not_started;
                self.init().close_stdin();
                tracing::error!(id = %self.id(), program = %program.display(), %error, "the VMM did not start");
                // Ending on its own: kept for Delete, which waits for its exit before the
                // cgroup is removed, as for a VMM never started.
                *lock(&self.confined) = Some(ConfinedVmm { program, process });
                return Err(error);
            }
        };
        let pid = launched.pid;
        // The process's own time from its fork at Create to just past its exec (a sliver of
        // the VMM's loader too): on a CPU, and waiting for one.
        let (process_cpu, process_runq) = launched.schedstat.unwrap_or_default();
        let cpu = timer.cpu_spent().unwrap_or_default();
        tracing::info!(
            id = %self.id(),
            pid,
            create_to_exec_us = self.created_at.elapsed().as_micros() as u64,
            cpu_user_us = cpu.user.as_micros() as u64,
            cpu_sys_us = cpu.system.as_micros() as u64,
            runq_us = cpu.run_queue.as_micros() as u64,
            vmm_process_cpu_us = process_cpu.as_micros() as u64,
            vmm_process_runq_us = process_runq.as_micros() as u64,
            vmm_prepared_in_us = prepared_in.as_micros() as u64,
            vmm_ready_for_us = ready_for.as_micros() as u64,
            phases_us = %timer,
            "VMM started"
        );
        if let Some(node_config) = &lock(&self.prepared).state.node_config {
            crate::timestamps::record(
                &node_config.timestamps,
                runtime_core::TimedRequest::Start,
                self.id(),
                &timer,
            );
        }
        self.init().set_running(pid);
        let steps = VmmExit {
            inner: Arc::clone(self),
            stderr: stderr_tee,
            started_at,
            timer: PhaseTimer::start(),
            died_at: started_at,
            mount_namespace: launched.namespace,
            network: None,
        };
        self.core
            .watch_exit(self.init().clone(), launched.exit, Box::new(steps));
        Prepared::persist_change(&self.prepared, |state| {
            state.vmm = ProcessIdentity::of(pid as i32)
        })?;
        Ok(pid)
    }
}

/// The VMM's exit: why it died (when right after its start), its network detached and
/// verified before the exit is reported (invariant 2), its OOM kill told; once reported, its
/// mount namespace is let go and the detach settled (the state written, the worker ended).
struct VmmExit {
    inner: Arc<Inner>,
    stderr: Option<StderrTee>,
    started_at: Instant,
    /// The exit path's phases and its start, both (re)started when the VMM is reaped.
    timer: PhaseTimer,
    died_at: Instant,
    mount_namespace: HeldMountNamespace,
    network: Option<DetachedNetwork>,
}

#[async_trait]
impl ExitSteps for VmmExit {
    async fn before_report(&mut self, status: ExitCode) -> ExitFindings {
        self.died_at = Instant::now();
        self.timer = PhaseTimer::start();
        let inner = &self.inner;
        if let Some(tee) = self.stderr.take() {
            inner
                .report_early_exit(&tee, status, self.died_at - self.started_at)
                .await;
        }
        self.timer.mark("stderr_drain");
        match detach_network(&inner.context, &inner.prepared).await {
            Ok(network) => self.network = network,
            Err(error) => {
                tracing::error!(id = %inner.id(), %error, "network teardown after VMM exit failed; Delete will retry")
            }
        }
        // The tap's deletion is the kernel's (an RCU barrier); `network_detach` is the rest.
        let tap_deletion = self.network.as_ref().and_then(|n| n.tap_deletion);
        self.timer.mark_with_part(
            "network_detach",
            tap_deletion.map(|took| ("tap_delete", took)),
        );
        let oom_killed = inner.cgroup.as_ref().is_some_and(Cgroup::oom_killed);
        self.timer.mark("oom_check");
        ExitFindings { oom_killed }
    }

    fn after_report(mut self: Box<Self>) {
        self.timer.mark("publish");
        let snapshot = self.inner.init().snapshot();
        tracing::info!(
            id = %self.inner.id(),
            pid = snapshot.pid,
            status = snapshot.exit.map_or(0, |exit| exit.status),
            exit_to_event_us = self.died_at.elapsed().as_micros() as u64,
            phases_us = %self.timer,
            "VMM exited"
        );
        // After TaskExit: freeing the namespace waits for an RCU grace period.
        self.mount_namespace.release();
        if let Some(network) = self.network.take() {
            tokio::spawn(network.settle(self.inner.id().to_string()));
        }
    }
}
