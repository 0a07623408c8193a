//! A shared-filesystem rootfs at Create (runtime-core's `shared_fs` chose it): 9p needs only
//! qemu's device on the mounted rootfs; virtiofs needs its daemon, recorded in the state before
//! it is spawned and running before the VMM starts (qemu connects to its socket at once).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runtime_core::{NodeConfig, SharedFsKind, SharedRootfs, VIRTIOFSD};

use crate::cgroup::Cgroup;
use crate::container::blocking::BlockingSteps;
use crate::container::prepared::Prepared;
use crate::container::ShimContext;
use crate::error::{Result, ShimError};
use crate::virtiofsd::{self, VirtiofsdRecord};

/// In the VMM's directory, which its confined root holds.
const VIRTIOFS_SOCKET: &str = "virtiofs.sock";
/// In the container's state directory: its log, and the empty folder its confined root is
/// mounted on (in its own mount namespace only).
const VIRTIOFSD_LOG: &str = "virtiofsd.log";
const VIRTIOFSD_ROOT_DIR: &str = "virtiofsd-root";
/// `sun_path` holds 108 bytes with the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// `[extra_binaries.virtiofsd]`, when that binary exists: urunc chooses virtiofs only then.
pub(super) fn virtiofsd_binary(node_config: &NodeConfig) -> Option<&runtime_core::ExtraBinary> {
    node_config
        .extra_binaries
        .get(VIRTIOFSD)
        .filter(|binary| Path::new(&binary.path).is_file())
}

/// What the plan shares: the mounted rootfs over 9p, or the daemon's socket for virtiofs.
pub(super) fn shared_rootfs(kind: SharedFsKind, rootfs: &Path, vmm_dir: &Path) -> SharedRootfs {
    match kind {
        SharedFsKind::NineP => SharedRootfs::NineP {
            dir: rootfs.to_path_buf(),
        },
        SharedFsKind::Virtiofs => SharedRootfs::Virtiofs {
            socket: vmm_dir.join(VIRTIOFS_SOCKET),
        },
    }
}

/// Starts the virtiofsd that serves `rootfs` on `socket`, confined in the container's
/// `cgroup`, recorded first; its socket is given to the VMM's user. On error the caller's
/// undo stops whatever was started.
pub(super) async fn start_virtiofsd(
    context: &ShimContext,
    steps: &BlockingSteps,
    prepared: &Mutex<Prepared>,
    node_config: &NodeConfig,
    (rootfs, socket): (&Path, &Path),
    cgroup: Option<&Cgroup>,
    (uid, gid): (u32, u32),
) -> Result<()> {
    let binary = virtiofsd_binary(node_config).ok_or_else(|| {
        ShimError::invalid(
            "extra_binaries.virtiofsd.path",
            node_config
                .extra_binaries
                .get(VIRTIOFSD)
                .map(|b| b.path.as_str())
                .unwrap_or_default(),
            "virtiofs was chosen but the binary is gone",
        )
    })?;
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(ShimError::invalid(
            "virtiofsd socket",
            socket.display().to_string(),
            "too long for a Unix socket path",
        ));
    }
    let plan =
        runtime_core::virtiofsd_plan(Path::new(&binary.path), &binary.options, rootfs, socket)?;
    let (id, log, new_root) = {
        let p = prepared.lock().unwrap_or_else(|p| p.into_inner());
        let dir = p.store.dir();
        (
            p.id.clone(),
            dir.join(VIRTIOFSD_LOG),
            dir.join(VIRTIOFSD_ROOT_DIR),
        )
    };
    let cgroup_join = match cgroup {
        Some(cgroup) => cgroup.join_files()?,
        None => Vec::new(),
    };
    let mut record = VirtiofsdRecord::planned(&plan, socket);
    Prepared::persist_change(prepared, |state| state.virtiofsd = Some(record.clone()))?;
    // Reading the daemon's libraries, building its root in the helper and forking block: off
    // the reactor, as the VMM's are.
    let (router, step_plan, served, step_socket, step_log, step_id) = (
        context.router.clone(),
        plan.clone(),
        rootfs.to_path_buf(),
        socket.to_path_buf(),
        log.clone(),
        id.clone(),
    );
    let (identity, mut exit) = steps
        .run("start virtiofsd confined", move || {
            std::fs::create_dir(&new_root)
                .map_err(|e| ShimError::io(format!("create {}", new_root.display()), e))?;
            let site = virtiofsd::DaemonSite {
                new_root: &new_root,
                served: &served,
            };
            let confined = virtiofsd::confine(&step_plan, &step_socket, &site)?;
            tracing::info!(id = %step_id, mounts = ?confined.0.mounts.iter().map(|m| m.path.display().to_string()).collect::<Vec<_>>(), capabilities = ?step_plan.capabilities, "virtiofsd confined");
            virtiofsd::spawn(&router, &step_plan, confined, cgroup_join, &step_log)
        })
        .await?;
    record.process = Some(identity);
    Prepared::persist_change(prepared, |state| state.virtiofsd = Some(record.clone()))?;
    tracing::info!(%id, pid = identity.pid, program = %plan.program.display(), args = ?plan.args, "virtiofsd started");
    virtiofsd::wait_ready(&record, identity.pid, &mut exit, &log).await?;
    std::os::unix::fs::chown(socket, Some(uid), Some(gid))
        .map_err(|e| ShimError::io(format!("chown {}", socket.display()), e))?;
    tokio::spawn(async move {
        if let Ok(status) = exit.await {
            tracing::info!(%id, pid = identity.pid, status, "virtiofsd exited");
        }
    });
    Ok(())
}

/// The directory the VMM itself opens (9p), for its confined root.
pub(super) fn shared_dir(shared: Option<&SharedRootfs>) -> Option<PathBuf> {
    match shared? {
        SharedRootfs::NineP { dir } => Some(dir.clone()),
        SharedRootfs::Virtiofs { .. } => None,
    }
}
