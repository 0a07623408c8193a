//! The one teardown of what a container's persisted state records: runc's container, the
//! network, the virtiofsd of a virtiofs rootfs, the cgroup, the rootfs mount, then the
//! poststop hooks, then the fresh network namespace the shim made (the hooks may still need
//! it: it is the CNI's namespace), then the state itself. Delete and a failed Create use it
//! with the service's netns pool and reaper; `delete` after a shim crash with its own. Every
//! step is attempted and every failure returned; the state is removed only after all of them
//! succeeded, else it stays, recording what is left, for the next attempt.

use std::future::Future;

use netns::NetnsPool;

use crate::cgroup::Cgroup;
use crate::error::{Result, ShimError};
use crate::mounts;
use crate::runc::Runc;
use crate::state::{ContainerKind, ContainerState, StateStore};
use crate::virtiofsd;

/// No poststop hooks to run (a failed Create, runc's containers: runc runs its own).
pub fn no_poststop() -> std::future::Ready<Result<()>> {
    std::future::ready(Ok(()))
}

/// Tears down everything `state` records (see the module). `poststop` runs once the
/// container's own steps succeeded; its failure is returned but keeps no state.
pub async fn teardown(
    state: &ContainerState,
    store: &StateStore,
    runc: &Runc,
    pool: &NetnsPool,
    poststop: impl Future<Output = Result<()>>,
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
    // virtiofsd, the cgroup and the unmount block: off the reactor.
    let blocking_state = state.clone();
    let failures = tokio::task::spawn_blocking(move || {
        let state = blocking_state;
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
        unmount_rootfs(&state, &mut failures);
        failures
    })
    .await
    .map_err(|error| ShimError::BlockingStep {
        what: "stop virtiofsd, remove the cgroup and unmount the rootfs",
        reason: error.to_string(),
    })?;
    let hooks = if failures.is_empty() {
        poststop.await
    } else {
        Ok(())
    };
    let (state, store) = (state.clone(), store.clone());
    let removed =
        tokio::task::spawn_blocking(move || remove_fresh_netns_and_state(&state, &store, failures))
            .await
            .map_err(|error| ShimError::BlockingStep {
                what: "remove the fresh network namespace and the state",
                reason: error.to_string(),
            })?;
    ShimError::from_cleanup(
        [removed, hooks]
            .into_iter()
            .filter_map(Result::err)
            .collect(),
    )
}

/// The last steps: unmounts the rootfs, then removes the state if nothing failed
/// (`failures` holds the earlier steps' errors).
pub fn finish(
    state: &ContainerState,
    store: &StateStore,
    mut failures: Vec<ShimError>,
) -> Result<()> {
    unmount_rootfs(state, &mut failures);
    remove_fresh_netns_and_state(state, store, failures)
}

fn unmount_rootfs(state: &ContainerState, failures: &mut Vec<ShimError>) {
    if let Some(rootfs) = &state.rootfs_mount {
        if let Err(error) = mounts::unmount_rootfs(rootfs) {
            failures.push(error);
        }
    }
}

/// Releases the fresh network namespace's pin (the namespace, and the CNI's veth in it, go
/// with it), then removes the state if nothing failed.
fn remove_fresh_netns_and_state(
    state: &ContainerState,
    store: &StateStore,
    mut failures: Vec<ShimError>,
) -> Result<()> {
    if let Some(pin) = &state.fresh_netns {
        if let Err(error) = netns::remove_pinned(pin) {
            failures.push(error.into());
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
