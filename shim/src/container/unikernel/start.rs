//! Start: the VMM is spawned in the container's namespaces and cgroup, confined, between the
//! `startContainer` and `poststart` hooks; its exit is watched, its network detached before
//! TaskExit is reported.

use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use runtime_core::oci::Status;

use super::network::detach_network;
use super::{lock, run_hooks, ConfinedVmm, Inner};
use crate::cgroup::Cgroup;
use crate::confine::HeldMountNamespace;
use crate::console::Console;
use crate::container::core::{ExitFindings, ExitSteps};
use crate::container::cpu_sample::schedstat;
use crate::container::phase_timer::PhaseTimer;
use crate::container::prepared::Prepared;
use crate::error::{Result, ShimError};
use crate::hooks::HookKind;
use crate::host;
use crate::log_binary::{LogBinary, LoggerInputs};
use crate::reaper::ExitCode;
use crate::spawn::{container_command, signal_init, ChildSetup, NamespacePlan, PidNamespace};
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
        let ConfinedVmm {
            program,
            root,
            seccomp,
        } = lock(&self.confined)
            .take()
            .ok_or_else(|| ShimError::precondition(self.id(), "the VMM was already started"))?;
        // Normally built already, while containerd answered Create and sent Start.
        let root = root.finish()?;
        timer.mark("vmm_root");
        let (root_build, root_ready_for) = (root.build, root.ready_for);
        let (helper_cpu, helper_runq) = root.helper_schedstat.unwrap_or_default();
        // Copied out so the FIFOs and the console are opened without the container's lock.
        let (paths, namespaces) = {
            let p = lock(&self.prepared);
            (p.stdio.clone(), p.spec.linux.namespaces.clone())
        };
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
        let pid_namespace = PidNamespace::from_spec(&namespaces)?;
        let setup = ChildSetup {
            namespaces: NamespacePlan::from_spec(&namespaces)?.without_mount(),
            cgroup_join: match &self.cgroup {
                Some(cgroup) => cgroup.join_files()?,
                None => Vec::new(),
            },
        };
        let env = vec![("PATH".to_string(), host::vmm_search_path())];
        let program_text = program.display().to_string();
        let mut command = container_command(&program_text, &self.plan.args, &env, stdio, setup);
        // argv[0] stays the plan's program name, as ps and the host's tools know the VMM.
        command.arg0(&self.plan.program);
        // After the namespace and cgroup hooks container_command registered: those need the
        // privileges the confinement drops.
        let mount_namespace = root.install(&mut command)?;
        if matches!(pid_namespace, PidNamespace::Fresh) {
            // The VMM would be pid 1, which never sees a SIGTERM it has no handler for.
            signal_init::install(&mut command);
        }
        if let Some(filter) = seccomp {
            // Last: the profile may forbid what the confinement itself does (unshare, mount).
            filter.install_last(&mut command);
        }
        timer.mark("command");
        let started_at = Instant::now();
        let spawned = pid_namespace.spawn(&self.context.router, &mut command);
        timer.mark("fork_exec");
        // The pipe's write end is the VMM's alone: the copy sees EOF when it dies.
        drop(command);
        let (child, exit) = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                self.init().close_stdin();
                mount_namespace.release();
                return Err(ShimError::io(
                    format!("start VMM {program_text} confined (the container's stderr has the failed step)"),
                    e,
                ));
            }
        };
        let pid = child.id();
        // The child's own time from its fork to just past its exec (a sliver of the VMM's
        // loader too): on a CPU, and waiting for one.
        let (child_cpu, child_runq) = schedstat(pid as i32).unwrap_or_default();
        let cpu = timer.cpu_spent().unwrap_or_default();
        tracing::info!(
            id = %self.id(),
            pid,
            create_to_exec_us = self.created_at.elapsed().as_micros() as u64,
            cpu_user_us = cpu.user.as_micros() as u64,
            cpu_sys_us = cpu.system.as_micros() as u64,
            runq_us = cpu.run_queue.as_micros() as u64,
            vmm_child_cpu_us = child_cpu.as_micros() as u64,
            vmm_child_runq_us = child_runq.as_micros() as u64,
            root_build_us = root_build.as_micros() as u64,
            root_ready_for_us = root_ready_for.as_micros() as u64,
            root_helper_cpu_us = helper_cpu.as_micros() as u64,
            root_helper_runq_us = helper_runq.as_micros() as u64,
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
            mount_namespace,
        };
        self.core
            .watch_exit(self.init().clone(), exit, Box::new(steps));
        Prepared::persist_change(&self.prepared, |state| {
            state.vmm = ProcessIdentity::of(pid as i32)
        })?;
        Ok(pid)
    }
}

/// The VMM's exit: why it died (when right after its start), its network detached and
/// verified before the exit is reported (invariant 2), its OOM kill told; once reported, its
/// mount namespace is let go.
struct VmmExit {
    inner: Arc<Inner>,
    stderr: Option<StderrTee>,
    started_at: Instant,
    /// The exit path's phases and its start, both (re)started when the VMM is reaped.
    timer: PhaseTimer,
    died_at: Instant,
    mount_namespace: HeldMountNamespace,
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
        if let Err(error) = detach_network(&inner.context, &inner.prepared).await {
            tracing::error!(id = %inner.id(), %error, "network teardown after VMM exit failed; Delete will retry");
        }
        self.timer.mark("network_detach");
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
    }
}
