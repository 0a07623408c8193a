//! What every container has, whatever its kind: its id and bundle, its init process, the table
//! of its exec processes, and the one place where a process's exit is watched and reported to
//! the service's [`ExitGate`] (containers publish no event themselves). The kinds (`unikernel`,
//! `runc`) add what they do their own way, through [`super::kind::Kind`] and [`ExitSteps`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use tokio::sync::oneshot;

use super::prepared::Prepared;
use super::process::{self, Process};
use super::process_ref::{ProcessMissing, ProcessRef};
use super::ExecRequest;
use crate::error::{Result, ShimError};
use crate::events::{ExitGate, ExitReport};
use crate::reaper::ExitCode;
use crate::stdio::StdioPaths;

/// The status reported for a process whose reaper went away before it saw the exit.
const LOST_STATUS: ExitCode = 255;

/// An exec process registered by Exec, started later by Start.
#[derive(Clone)]
pub struct Exec {
    pub process: Arc<Process>,
    /// The OCI process spec containerd sent, as JSON.
    pub spec: Vec<u8>,
}

/// What the kind found once a process was reaped, before its exit is reported.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExitFindings {
    /// The cgroup's OOM killer killed a task of the container: TaskOOM goes out before the
    /// exit (CRI gives the container the reason OOMKilled only from that event).
    pub oom_killed: bool,
}

/// What a kind does between the reaping of one of its processes and the report of its exit
/// (the unikernel detaches the network there: invariant 2), and once it is reported.
#[async_trait]
pub trait ExitSteps: Send {
    async fn before_report(&mut self, status: ExitCode) -> ExitFindings;

    fn after_report(self: Box<Self>) {}
}

/// A process whose exit needs nothing of its kind (a runc exec).
pub struct NoExitSteps;

#[async_trait]
impl ExitSteps for NoExitSteps {
    async fn before_report(&mut self, _status: ExitCode) -> ExitFindings {
        ExitFindings::default()
    }
}

pub struct ContainerCore {
    id: String,
    bundle: String,
    init: Arc<Process>,
    execs: Mutex<HashMap<String, Exec>>,
    /// Where exits and OOM kills are reported; the service publishes them.
    exits: Arc<ExitGate>,
}

impl ContainerCore {
    /// The core of the container `prepared` is becoming; its init process is not started.
    pub fn of_prepared(prepared: &Prepared, exits: Arc<ExitGate>) -> Arc<Self> {
        Self::new(
            &prepared.id,
            &prepared.bundle_text(),
            prepared.stdio.clone(),
            exits,
        )
    }

    pub fn new(id: &str, bundle: &str, init_stdio: StdioPaths, exits: Arc<ExitGate>) -> Arc<Self> {
        Arc::new(ContainerCore {
            id: id.to_string(),
            bundle: bundle.to_string(),
            init: Arc::new(Process::new(ProcessRef::Init, init_stdio)),
            execs: Mutex::new(HashMap::new()),
            exits,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bundle(&self) -> &str {
        &self.bundle
    }

    pub fn init(&self) -> &Arc<Process> {
        &self.init
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, Exec>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn process(&self, which: &ProcessRef) -> Result<Arc<Process>> {
        match which {
            ProcessRef::Init => Ok(self.init.clone()),
            ProcessRef::Exec(exec_id) => Ok(self.exec(exec_id)?.process),
        }
    }

    pub fn exec(&self, exec_id: &str) -> Result<Exec> {
        self.execs()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| self.unknown_exec(exec_id))
    }

    /// Registers an exec process; an exec id already registered is refused.
    pub fn add_exec(&self, request: ExecRequest) -> Result<()> {
        let mut execs = self.execs();
        if execs.contains_key(&request.exec_id) {
            return Err(ShimError::AlreadyExists {
                id: format!("{}/{}", self.id, request.exec_id),
            });
        }
        let which = ProcessRef::Exec(request.exec_id.clone());
        execs.insert(
            request.exec_id,
            Exec {
                process: Arc::new(Process::new(which, request.stdio)),
                spec: request.spec,
            },
        );
        Ok(())
    }

    /// Forgets an exec process that is not running.
    pub fn remove_exec(&self, exec_id: &str) -> Result<()> {
        let mut execs = self.execs();
        let phase = execs.get(exec_id).map(|e| e.process.snapshot().phase);
        match phase {
            None => Err(self.unknown_exec(exec_id)),
            Some(process::Phase::Running) | Some(process::Phase::Paused) => Err(
                ShimError::precondition(&self.id, format!("exec {exec_id} is still running")),
            ),
            Some(_) => {
                execs.remove(exec_id);
                Ok(())
            }
        }
    }

    /// Signals a started exec process (an exec is a plain process, whatever the kind).
    pub fn kill_exec(&self, exec_id: &str, signal: u32) -> Result<()> {
        let process = self.exec(exec_id)?.process;
        let snapshot = process.snapshot();
        if let Some(why) = snapshot.missing() {
            // A registered exec has no pid until its Start: kill(0) would signal the shim's own
            // process group.
            return Err(ShimError::process_not_found(&self.id, &process.which, why));
        }
        let signal = process::signal(signal)?;
        match kill(Pid::from_raw(snapshot.pid as i32), signal) {
            Err(nix::errno::Errno::ESRCH) => Err(ShimError::process_not_found(
                &self.id,
                &process.which,
                ProcessMissing::Exited,
            )),
            answer => answer.map_err(|e| {
                ShimError::sys(format!("kill {} pid {}", process.which, snapshot.pid), e)
            }),
        }
    }

    /// CloseIO: the process reads EOF on its stdin.
    pub fn close_io(&self, which: &ProcessRef) -> Result<()> {
        self.process(which)?.close_stdin();
        Ok(())
    }

    pub fn resize_pty(&self, which: &ProcessRef, width: u32, height: u32) -> Result<()> {
        self.process(which)?.resize(&self.id, width, height)
    }

    /// Once the reaper sees `process` exit (`exit`): the kind's `steps`, then the process is
    /// stopped (waking Wait) and its exit (after its OOM kill, if any) reported.
    pub fn watch_exit(
        self: &Arc<Self>,
        process: Arc<Process>,
        exit: oneshot::Receiver<ExitCode>,
        mut steps: Box<dyn ExitSteps>,
    ) {
        let core = Arc::clone(self);
        tokio::spawn(async move {
            // A dropped sender means the reaper is gone; report the process as lost.
            let status = exit.await.unwrap_or(LOST_STATUS);
            let pid = process.snapshot().pid;
            let findings = steps.before_report(status).await;
            if findings.oom_killed {
                tracing::info!(id = %core.id, pid, "the OOM killer killed a task of the container");
                core.exits.oom_killed(&core.id);
            }
            let exit = process.set_stopped(status);
            tracing::info!(id = %core.id, process = %process.which, pid, status, "process exited");
            core.exits.exited(ExitReport {
                container_id: core.id.clone(),
                exec_id: process.which.exec_id().to_string(),
                pid,
                exit_status: status,
                exited_at: exit.at,
            });
            steps.after_report();
        });
    }

    fn unknown_exec(&self, exec_id: &str) -> ShimError {
        ShimError::process_not_found(
            &self.id,
            &ProcessRef::Exec(exec_id.to_string()),
            ProcessMissing::Unknown,
        )
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
