//! A unikernel container: the shim itself runs the VMM as the container's process.
//!
//! Create makes a fresh network namespace when the spec asks for a new one, runs the
//! `prestart` and `createRuntime` hooks, resolves the urunc configuration's files beneath the
//! rootfs, records the state, attaches the network through the sandbox's netns worker, builds
//! the VMM plan, plans the VMM's confinement (which refuses an impossible user or capability
//! set) and runs the `createContainer` hooks; any failure undoes it all. Start
//! runs the `startContainer` hooks, spawns the VMM in the container's namespaces and cgroup,
//! confined (see `confine`), then runs the `poststart` hooks. When the VMM exits, for whatever
//! reason, its network is detached (and verified clean) before TaskExit is published. Delete
//! removes everything, then runs the `poststop` hooks (see `hooks` for each hook's moment).
//!
//! Kill with SIGTERM or SIGINT asks a Linux guest on qemu to power off (QMP
//! `system_powerdown`, the ACPI power button) instead of ending qemu. A guest that ignores the
//! button (no ACPI, or nothing listening for it) keeps running: the caller's grace period ends
//! in its SIGKILL, which is delivered at once. Unikernels have no power-button handling: their
//! SIGTERM goes to qemu, which exits. When QMP cannot be reached the
//! signal goes to the VMM, which ends it. Firecracker runs with `--no-api`, as under urunc, so
//! it has no Ctrl-Alt-Del channel: its SIGTERM goes to the VMM, and the log says so. A VMM in a
//! pid namespace of its own is pid 2 under a forwarding init (`spawn::signal_init`): as pid 1,
//! firecracker and solo5-spt would never see a SIGTERM (they install no handler for it).

//!
//! By concern: `create` (resolving, planning and confining the VMM), `network` (attach and
//! detach through the sandbox's netns worker), `start` (spawning and watching the VMM) and
//! `stop` (Kill's graceful path, teardown, the poststop hooks).

mod create;
mod network;
mod shared_rootfs;
mod start;
mod stop;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use runtime_core::oci::Status;
use runtime_core::{Hypervisor, VmmPlan};

use super::core::{ContainerCore, Exec};
use super::kind::Kind;
use super::prepared::Prepared;
use super::process::Process;
use super::{ShimContext, UpdateRequest};
use crate::cgroup::Cgroup;
use crate::confine::WaitingVmm;
use crate::error::{Result, ShimError};
use crate::hooks::{self, HookKind};
use crate::log_binary::LogBinary;

pub struct UnikernelKind {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<ContainerCore>,
    context: ShimContext,
    plan: VmmPlan,
    hypervisor: Hypervisor,
    cgroup: Option<Cgroup>,
    /// The prepared container, with the state as last persisted (shared with Create's
    /// blocking steps).
    prepared: Arc<Mutex<Prepared>>,
    /// Taken by the one Start that spawns the VMM.
    confined: Mutex<Option<ConfinedVmm>>,
    /// The logging binary of a `binary://` stdout, started at Start, stopped at teardown.
    logger: Mutex<Option<Arc<LogBinary>>>,
    /// Delete may be retried after a failure; the poststop hooks run once.
    poststop_ran: AtomicBool,
    created_at: Instant,
}

/// The VMM's program (absolute, visible at the same path inside its root) and its process,
/// forked and confined at Create, waiting at its exec (dropping this ends it). The spec's
/// `linux.seccomp` was compiled at Create, so a profile that cannot be honoured fails Create;
/// the process installs it last, after its confinement dropped privileges.
struct ConfinedVmm {
    program: PathBuf,
    process: WaitingVmm,
}

impl Inner {
    fn id(&self) -> &str {
        self.core.id()
    }

    fn init(&self) -> &Arc<Process> {
        self.core.init()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the spec's hooks of `kind` with the container's state as it is now.
async fn run_hooks(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
    kind: HookKind,
    status: Status,
    pid: Option<u32>,
) -> Result<()> {
    let (spec, state) = {
        let p = lock(prepared);
        // Most specs have none: no copy of the spec for them.
        if kind.select(&p.spec.hooks).is_empty() {
            return Ok(());
        }
        let state = hooks::oci_state(&p.spec, &p.id, &p.bundle, status, pid);
        (p.spec.clone(), state)
    };
    hooks::run_spec_hooks(&context.router, kind, &spec, &state).await
}

#[async_trait]
impl Kind for UnikernelKind {
    async fn start_init(&self) -> Result<u32> {
        self.inner.start().await
    }

    fn check_exec(&self) -> Result<()> {
        Err(unikernel_exec())
    }

    async fn start_exec(&self, _exec: &Exec) -> Result<u32> {
        Err(unikernel_exec())
    }

    async fn kill_init(&self, signal: u32, all: bool) -> Result<()> {
        self.inner.kill(signal, all).await
    }

    async fn teardown(&self) -> Result<()> {
        self.inner.teardown().await
    }

    async fn freeze(&self, frozen: bool) -> Result<()> {
        let cgroup = self.inner.cgroup.as_ref().ok_or_else(|| {
            ShimError::precondition(self.inner.id(), "the container has no cgroup to freeze")
        })?;
        cgroup.set_frozen(frozen)
    }

    async fn pids(&self) -> Result<Vec<u32>> {
        let pid = self.inner.init().snapshot().pid;
        match &self.inner.cgroup {
            Some(cgroup) => cgroup.pids(),
            None if pid != 0 => Ok(vec![pid]),
            None => Ok(Vec::new()),
        }
    }

    async fn update(&self, request: UpdateRequest) -> Result<()> {
        if request.resources.is_none() && !request.has_annotations {
            return Ok(());
        }
        Err(ShimError::precondition(
            self.inner.id(),
            "a running VMM's memory and vCPUs are fixed at boot; recreate the container to change its resources",
        ))
    }
}

fn unikernel_exec() -> ShimError {
    ShimError::Unimplemented {
        operation: "Exec",
        reason: "a unikernel is a single guest image: there is no process inside it to exec into"
            .to_string(),
    }
}
