//! The one teardown of what a container's persisted state records: runc's container, the
//! network, the virtiofsd of a virtiofs rootfs, the cgroup, the rootfs mount, then the state
//! itself. Delete and a failed Create
//! use it with the service's netns pool and reaper; `delete` after a shim crash with its own.
//! Every step is attempted and every failure returned; the state is removed only after all of
//! them succeeded, else it stays, recording what is left, for the next attempt.

use netns::NetnsPool;

use crate::cgroup::Cgroup;
use crate::error::{Result, ShimError};
use crate::mounts;
use crate::runc::Runc;
use crate::state::{ContainerKind, ContainerState, StateStore};
use crate::virtiofsd;

/// Tears down everything `state` records (see the module).
pub async fn teardown(
    state: &ContainerState,
    store: &StateStore,
    runc: &Runc,
    pool: &NetnsPool,
) -> Result<()> {
    let mut failures = Vec::new();
    // A Pending container may be runc's already; runc's state directory says.
    if matches!(state.kind, ContainerKind::Runc | ContainerKind::Pending)
        && runc.has_container(&state.id)
    {
        if let Err(error) = runc.delete(&state.id, true).await {
            failures.push(error);
        }
    }
    if let Some(record) = &state.net {
        if let Err(error) = pool.detach(record).await {
            failures.push(error.into());
        }
    }
    // virtiofsd, the cgroup, the unmount and the state's removal block: off the reactor.
    let (state, store) = (state.clone(), store.clone());
    tokio::task::spawn_blocking(move || {
        if let Some(record) = &state.virtiofsd {
            if let Err(error) = virtiofsd::stop(record) {
                failures.push(error);
            }
        }
        if !state.cgroup_dirs.is_empty() {
            if let Err(error) = Cgroup::from_dirs(state.cgroup_dirs.clone()).remove() {
                failures.push(error);
            }
        }
        finish(&state, &store, failures)
    })
    .await
    .map_err(|error| ShimError::BlockingStep {
        what: "stop virtiofsd, remove the cgroup, unmount the rootfs and remove the state",
        reason: error.to_string(),
    })?
}

/// The last steps: unmounts the rootfs, then removes the state if nothing failed
/// (`failures` holds the earlier steps' errors).
pub fn finish(
    state: &ContainerState,
    store: &StateStore,
    mut failures: Vec<ShimError>,
) -> Result<()> {
    if let Some(rootfs) = &state.rootfs_mount {
        if let Err(error) = mounts::unmount_rootfs(rootfs) {
            failures.push(error);
        }
    }
    if failures.is_empty() {
        return store.remove();
    }
    tracing::error!(
        id = %state.id,
        "teardown incomplete; state kept in {} for another attempt",
        store.dir().display()
    );
    ShimError::from_cleanup(failures)
}
