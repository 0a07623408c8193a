//! `delete`: containerd runs it in the bundle after the serving shim died (or never answered).
//! It finishes the teardown from the persisted state alone: stop the VMM if it still runs (the
//! very process recorded, never a recycled pid), detach its network through a netns worker,
//! delete runc's container, remove the cgroup, unmount the rootfs, remove the state.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use containerd_shim::Flags;
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::{Message, MessageField};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup::Cgroup;
use crate::container::process::now;
use crate::error::{Result, ShimError};
use crate::mounts;
use crate::runc;
use crate::state::{ContainerKind, ContainerState, ProcessIdentity, StateStore};

/// What containerd reports for a task the shim could not see exit: killed (128 + SIGKILL).
const KILLED_STATUS: u32 = 128 + 9;
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
    let mut outcome = runtime.block_on(teardown(
        &flags.namespace,
        &flags.id,
        &bundle,
        state.as_ref(),
        &store,
    ));
    // The serving shim runs poststop after its own teardown; it never got there. Only once the
    // container is gone (a failed teardown keeps the state for another attempt).
    if outcome.is_ok() && state.as_ref().map(|s| s.kind) == Some(ContainerKind::Unikernel) {
        outcome = runtime.block_on(crate::hooks::poststop_after_crash(&bundle, &flags.id, pid));
    }

    // The answer is written even when part of the teardown failed: containerd needs it to
    // move on, and the failure is reported on stderr (containerd logs it) and by the exit code.
    let response = DeleteResponse {
        pid,
        exit_status: KILLED_STATUS,
        exited_at: MessageField::some(now()),
        ..Default::default()
    };
    let bytes = response
        .write_to_bytes()
        .map_err(|e| ShimError::Events(format!("encode DeleteResponse: {e}")))?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| ShimError::io("write DeleteResponse", e))?;
    outcome
}

async fn teardown(
    namespace: &str,
    id: &str,
    bundle: &Path,
    state: Option<&ContainerState>,
    store: &StateStore,
) -> Result<()> {
    let mut failures = Vec::new();
    let kind = state.map(|s| s.kind);
    if let Some(vmm) = state.and_then(|s| s.vmm) {
        if let Err(error) = stop_vmm(id, vmm) {
            failures.push(error);
        }
    }
    // Without state the container may still be runc's (state is written first, so only a
    // crash inside Create lands here): asking runc is harmless.
    if matches!(
        kind,
        Some(ContainerKind::Runc) | Some(ContainerKind::Pending) | None
    ) {
        if let Err(error) = runc_delete(namespace, id) {
            failures.push(error);
        }
    }
    if let Some(record) = state.and_then(|s| s.net.as_ref()) {
        let pool = netns::NetnsPool::new();
        if let Err(error) = pool.detach(record).await {
            failures.push(error.into());
        }
    }
    if let Some(dirs) = state
        .map(|s| s.cgroup_dirs.clone())
        .filter(|d| !d.is_empty())
    {
        if let Err(error) = Cgroup::from_dirs(dirs).remove() {
            failures.push(error);
        }
    }
    let rootfs = state
        .and_then(|s| s.rootfs_mount.clone())
        .unwrap_or_else(|| bundle.join("rootfs"));
    if let Err(error) = mounts::unmount_rootfs(&rootfs) {
        failures.push(error);
    }
    if failures.is_empty() {
        store.remove()?;
    } else {
        tracing::error!(
            id,
            "teardown incomplete; state kept in {} for another attempt",
            store.dir().display()
        );
    }
    ShimError::from_cleanup(failures)
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
    while vmm.is_alive() && !is_zombie(vmm.pid) {
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

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn runc_delete(namespace: &str, id: &str) -> Result<()> {
    let root = runc::root(namespace);
    if !runc::has_container(&root, id) {
        return Ok(());
    }
    let output = Command::new(runc::RUNC_BINARY)
        .arg("--root")
        .arg(&root)
        .args(["delete", "--force", id])
        .output()
        .map_err(|e| ShimError::io("run runc delete", e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(ShimError::Runc {
        args: format!("delete --force {id}"),
        status: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}
