//! `delete`: containerd runs it in the bundle after the serving shim died (or never answered).
//! It finishes the teardown from the persisted state alone: stop the VMM if it still runs (the
//! very process recorded, never a recycled pid), detach its network through a netns worker,
//! delete runc's container, remove the cgroup, unmount the rootfs, run a unikernel's poststop
//! hooks, release its fresh netns, remove the state.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use containerd_shim::Flags;
use containerd_shim_protos::api::DeleteResponse;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::container::teardown;
use crate::error::{Result, ShimError};
use crate::mounts;
use crate::proto_time::proto_timestamp;
use crate::reaper::ExitRouter;
use crate::runc::Runc;
use crate::state::{ContainerKind, ContainerState, ProcessIdentity, StateStore};

/// What containerd reports for a task the shim could not see exit: killed (128 + SIGKILL).
pub const KILLED_STATUS: u32 = 128 + 9;
const VMM_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(flags: &Flags) -> Result<()> {
    crate::logging::init_stderr(flags.debug);
    let store = StateStore::new(&flags.namespace, &flags.id)?;
    let bundle = std::env::current_dir().map_err(|e| ShimError::io("find the bundle (cwd)", e))?;
    let state = store.read()?;
    let pid = state
        .as_ref()
        .and_then(|s| s.vmm)
        .map_or(0, |v| v.pid as u32);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ShimError::io("build tokio runtime", e))?;
    let outcome = runtime.block_on(async {
        // This process's one reaper (the dead shim's is gone), for runc and the hooks.
        let router = ExitRouter::start()?;
        teardown(
            &flags.namespace,
            &flags.id,
            &bundle,
            state.as_ref(),
            &store,
            &router,
            pid,
        )
        .await
    });

    // The answer is written even when part of the teardown failed: containerd needs it to
    // move on, and the failure is reported on stderr (containerd logs it) and by the exit code.
    let response = DeleteResponse {
        pid,
        exit_status: KILLED_STATUS,
        exited_at: proto_timestamp(SystemTime::now()),
        ..Default::default()
    };
    super::answer_on_stdout("DeleteResponse", &response)?;
    outcome
}

async fn teardown(
    namespace: &str,
    id: &str,
    bundle: &Path,
    state: Option<&ContainerState>,
    store: &StateStore,
    router: &ExitRouter,
    pid: u32,
) -> Result<()> {
    let runc = Runc::new(namespace, bundle, router.clone());
    let Some(state) = state else {
        // Without state the container may still be runc's (state is written first, so only a
        // crash inside Create lands here), and the rootfs may be mounted where containerd asks.
        let mut failures = Vec::new();
        if runc.has_container(id) {
            if let Err(error) = runc.delete(id, true).await {
                failures.push(error);
            }
        }
        if let Err(error) = mounts::unmount_rootfs(&bundle.join("rootfs")) {
            failures.push(error);
        }
        return ShimError::from_cleanup(failures);
    };
    // The VMM first: its network and cgroup go only once it is gone.
    if let Some(vmm) = state.vmm {
        stop_vmm(id, vmm)?;
    }
    let pool = netns::NetnsPool::new();
    if state.kind == ContainerKind::Unikernel {
        // The serving shim runs poststop in its own teardown; it never got there.
        let poststop = crate::hooks::poststop_after_crash(router, bundle, id, pid);
        teardown::teardown(state, store, &runc, &pool, poststop).await
    } else {
        teardown::teardown(state, store, &runc, &pool, teardown::no_poststop()).await
    }
}

/// SIGKILLs the recorded VMM if that very process still runs, and waits until it is gone.
fn stop_vmm(id: &str, vmm: ProcessIdentity) -> Result<()> {
    if !vmm.is_alive() {
        return Ok(());
    }
    tracing::info!(pid = vmm.pid, "killing the VMM left by a dead shim");
    match kill(Pid::from_raw(vmm.pid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => return Err(ShimError::sys(format!("kill VMM pid {}", vmm.pid), error)),
    }
    // The VMM is not our child (init or the dead shim's subreaper reaps it): poll.
    let deadline = Instant::now() + VMM_EXIT_TIMEOUT;
    while !vmm.has_ended() {
        if Instant::now() > deadline {
            return Err(ShimError::precondition(
                id,
                format!(
                    "the VMM (pid {}) survived SIGKILL for {VMM_EXIT_TIMEOUT:?}",
                    vmm.pid
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
