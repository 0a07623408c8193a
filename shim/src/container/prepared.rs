//! The first steps of every Create, before the shim knows what kind of container it is: the
//! state is written, then the rootfs is mounted. Undoing them is the last step of every
//! teardown.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runtime_core::oci::Spec;

use crate::error::{Result, ShimError};
use crate::mounts::{self, RequestMount};
use crate::state::{ContainerKind, ContainerState, StateSnapshot, StateStore};
use crate::stdio::StdioPaths;

/// A change of the state made and serialized, not yet on disk.
pub struct StateWrite {
    store: StateStore,
    snapshot: StateSnapshot,
}

impl StateWrite {
    /// Writes the change, unless a newer one is already on disk or the state was removed.
    pub fn write(self) -> Result<()> {
        self.store
            .write_snapshot(self.snapshot)
            .map_err(|e| write_failed(&self.store, e))
    }
}

/// A container whose state exists and whose rootfs is mounted.
pub struct Prepared {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The Create request's rootfs mounts, as containerd sent them (what the snapshotter gave).
    pub mounts: Vec<RequestMount>,
    pub spec: Spec,
    pub stdio: StdioPaths,
    pub store: StateStore,
    pub state: ContainerState,
    /// Where this container's node configuration comes from (its runtime options).
    pub node_config: crate::node_config::NodeConfigSource,
}

impl Prepared {
    /// Reads the bundle's spec, records the state, mounts `mounts` on `<bundle>/rootfs`.
    pub fn new(
        namespace: &str,
        id: &str,
        bundle: PathBuf,
        mounts: &[RequestMount],
        stdio: StdioPaths,
    ) -> Result<Self> {
        let spec = load_spec(&bundle)?;
        // Before anything exists: a namespace path that is not a namespace (a FIFO would block
        // whoever opens it) is refused whatever kind of container this becomes.
        crate::spawn::check_paths(&spec.linux.namespaces)?;
        let store = StateStore::new(namespace, id)?;
        // Without mounts in the request (`ctr run --config` / `--rootfs`), the rootfs is the
        // spec's `root.path`, relative to the bundle, as runc reads it.
        let rootfs = match &spec.root {
            Some(root) if mounts.is_empty() => bundle.join(&root.path),
            _ => bundle.join("rootfs"),
        };
        let mut state = ContainerState::new(namespace, id, &bundle, ContainerKind::Pending);
        if !mounts.is_empty() {
            state.rootfs_mount = Some(rootfs.clone());
        }
        // Recorded before mounting, so a crashed shim's `delete` knows what to undo.
        store
            .write(&state)
            .map_err(|e| ShimError::io(format!("write state in {}", store.dir().display()), e))?;
        if !mounts.is_empty() {
            if let Err(error) = mounts::mount_rootfs(mounts, &rootfs) {
                return match store.remove() {
                    Ok(()) => Err(error),
                    Err(cleanup) => Err(ShimError::Cleanup(vec![error, cleanup])),
                };
            }
        }
        Ok(Prepared {
            id: id.to_string(),
            bundle,
            rootfs,
            mounts: mounts.to_vec(),
            spec,
            stdio,
            store,
            state,
            node_config: Default::default(),
        })
    }

    pub fn persist(&self) -> Result<()> {
        self.store
            .write(&self.state)
            .map_err(|e| write_failed(&self.store, e))
    }

    /// Changes the state of a shared container and persists it, writing after the lock is
    /// released (snapshots taken under the lock keep the file at the newest state).
    pub fn persist_change(
        prepared: &Mutex<Prepared>,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<()> {
        Self::change_then_write_later(prepared, change)?.write()
    }

    /// Makes `change` now and serializes it in the order of the changes, but leaves its write
    /// to the caller ([`StateWrite::write`]). Only for a change that narrows what the record
    /// lists (a network removed): until the write, the record on disk still lists what is
    /// already gone, and every teardown step takes "already gone" as done.
    pub fn change_then_write_later(
        prepared: &Mutex<Prepared>,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<StateWrite> {
        let (store, snapshot) = {
            let mut p = prepared.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut p.state);
            let snapshot = p.store.snapshot(&p.state);
            (p.store.clone(), snapshot)
        };
        let snapshot = snapshot.map_err(|e| write_failed(&store, e))?;
        Ok(StateWrite { store, snapshot })
    }

    /// The last steps of every teardown (see `teardown::finish`): unmounts the rootfs, then
    /// removes the state only if `failures` (the earlier steps') is empty and the unmount
    /// succeeded.
    pub fn finish(&self, failures: Vec<ShimError>) -> Result<()> {
        super::teardown::finish(&self.state, &self.store, failures)
    }

    /// Undoes [`Prepared::new`]: unmounts the rootfs, then removes the state.
    pub fn undo(&self) -> Result<()> {
        self.finish(Vec::new())
    }

    pub fn bundle_text(&self) -> String {
        self.bundle.display().to_string()
    }
}

/// Reads the bundle's `config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let config = bundle.join("config.json");
    let invalid =
        |reason: String| ShimError::invalid("bundle config", config.display().to_string(), reason);
    let bytes = std::fs::read(&config).map_err(|e| invalid(e.to_string()))?;
    Spec::from_json(&bytes).map_err(|e| invalid(e.to_string()))
}

/// Runs `undo` after `error`, keeping both when the undo fails too.
pub fn with_undo(error: ShimError, undo: Result<()>) -> ShimError {
    match undo {
        Ok(()) => error,
        Err(cleanup) => ShimError::Cleanup(vec![error, cleanup]),
    }
}

fn write_failed(store: &StateStore, error: std::io::Error) -> ShimError {
    ShimError::io(format!("write state in {}", store.dir().display()), error)
}
