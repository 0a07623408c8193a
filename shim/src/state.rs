//! The persisted state of a container: everything `containerd-shim-urunc-v2 delete` needs to
//! finish a teardown after the serving shim died, written before the thing it describes exists.
//!
//! Location: `/run/urunc-rs/<namespace>/<container id>/state.json` (tmpfs: a reboot clears it, as
//! it clears everything the state describes). Written atomically (temporary file + rename).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::error::{Result, ShimError};

pub const STATE_ROOT: &str = "/run/urunc-rs";
const STATE_FILE: &str = "state.json";
/// Bumped when the format changes incompatibly; `delete` refuses a version it does not know.
pub const STATE_VERSION: u32 = 1;
/// The write order's mark of a removed state: newer than any snapshot.
const REMOVED: u64 = u64::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// Create is still deciding (the rootfs must be mounted to read `/urunc.json`).
    Pending,
    Unikernel,
    Runc,
}

/// A process identified so that a recycled pid is never mistaken for it: the pid and the start
/// time the kernel reports in `/proc/<pid>/stat` (field 22, clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: i32,
    pub start_time: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub version: u32,
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
    pub kind: ContainerKind,
    /// The rootfs mount point when the shim mounted the request's mounts there.
    pub rootfs_mount: Option<PathBuf>,
    /// The cgroup directories the VMM was placed in (created by the shim).
    #[serde(default)]
    pub cgroup_dirs: Vec<PathBuf>,
    /// The network the netns worker created for this container, recorded before creation.
    pub net: Option<netns::NetRecord>,
    /// The pin (a bind mount in this state directory) of the fresh network namespace the shim
    /// made because the spec asks for a new one; recorded before it is made.
    #[serde(default)]
    pub fresh_netns: Option<PathBuf>,
    pub vmm: Option<ProcessIdentity>,
    /// The node configuration (urunc's config.toml) this container was planned with, as urunc
    /// keeps its config in state.json.
    #[serde(default)]
    pub node_config: Option<runtime_core::NodeConfig>,
    /// The virtiofsd of a virtiofs rootfs, recorded before it is spawned.
    #[serde(default)]
    pub virtiofsd: Option<crate::virtiofsd::VirtiofsdRecord>,
}

impl ContainerState {
    pub fn new(namespace: &str, id: &str, bundle: &Path, kind: ContainerKind) -> Self {
        ContainerState {
            version: STATE_VERSION,
            id: id.to_string(),
            namespace: namespace.to_string(),
            bundle: bundle.to_path_buf(),
            kind,
            rootfs_mount: None,
            cgroup_dirs: Vec::new(),
            net: None,
            fresh_netns: None,
            vmm: None,
            node_config: None,
            virtiofsd: None,
        }
    }
}

/// The state directory of one container. Clones share the write order.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    order: Arc<WriteOrder>,
}

/// Keeps the file at the newest state when writers race: snapshots are numbered where the
/// state is changed (under its owner's lock), and a snapshot older than the one on disk is
/// dropped. The writer mutex guards only the file, never the container's state, so nobody
/// reading the container waits on disk I/O.
#[derive(Debug, Default)]
struct WriteOrder {
    next_ticket: AtomicU64,
    last_written: Mutex<Option<u64>>,
}

/// A state serialized at one moment, to be written after its owner's lock is released.
pub struct StateSnapshot {
    ticket: u64,
    bytes: Vec<u8>,
}

impl StateStore {
    pub fn new(namespace: &str, id: &str) -> Result<Self> {
        Self::under(Path::new(STATE_ROOT), namespace, id)
    }

    pub fn under(root: &Path, namespace: &str, id: &str) -> Result<Self> {
        for (field, value) in [("namespace", namespace), ("id", id)] {
            if value.is_empty() || value.contains('/') || value == "." || value == ".." {
                return Err(ShimError::invalid(
                    field,
                    value,
                    "not usable as a directory name",
                ));
            }
        }
        Ok(StateStore {
            dir: root.join(namespace).join(id),
            order: Arc::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn write(&self, state: &ContainerState) -> std::io::Result<()> {
        self.write_snapshot(self.snapshot(state)?)
    }

    /// Serializes `state` (no I/O). Take it while holding the lock the state lives under, so
    /// the snapshots' order is the order of the changes.
    pub fn snapshot(&self, state: &ContainerState) -> std::io::Result<StateSnapshot> {
        let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        let ticket = self.order.next_ticket.fetch_add(1, Ordering::SeqCst);
        Ok(StateSnapshot { ticket, bytes })
    }

    /// Writes a snapshot atomically, unless a newer one is already on disk.
    pub fn write_snapshot(&self, snapshot: StateSnapshot) -> std::io::Result<()> {
        let mut last = self
            .order
            .last_written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|written| written > snapshot.ticket) {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)?;
        let temporary = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&snapshot.bytes)?;
        // No fsync: the record must survive the shim's death, not the kernel's. A dead
        // process's writes stay in the page cache for `delete` to read, and the rename keeps
        // the file whole; a power loss or reboot also ends every VMM, tap, netns and mount a
        // record describes (and /run is a tmpfs on nodes). The fsync cost 1-5 ms per write,
        // four writes per Create, where /run is on disk.
        fs::rename(&temporary, self.file())?;
        *last = Some(snapshot.ticket);
        Ok(())
    }

    /// `Ok(None)` when no state was ever written (or it was already removed).
    pub fn read(&self) -> Result<Option<ContainerState>> {
        let path = self.file();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ShimError::io(format!("read {}", path.display()), e)),
        };
        let state: ContainerState =
            serde_json::from_slice(&bytes).map_err(|source| ShimError::Json {
                path: path.clone(),
                source,
            })?;
        if state.version != STATE_VERSION {
            return Err(ShimError::invalid(
                "state version",
                state.version.to_string(),
                format!("{} was written by another shim version", path.display()),
            ));
        }
        Ok(Some(state))
    }

    /// Removes the state directory, then the namespace directory when it became empty. A
    /// snapshot taken before and written after (the VMM's exit writes its last change once
    /// TaskExit is out, and Delete may be quicker) is dropped: a removed state stays removed.
    pub fn remove(&self) -> Result<()> {
        let mut last = self
            .order
            .last_written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ShimError::io(format!("remove {}", self.dir.display()), e)),
        }
        *last = Some(REMOVED);
        drop(last);
        if let Some(namespace_dir) = self.dir.parent() {
            // Fails harmlessly while other containers of the namespace still have state.
            let _ = fs::remove_dir(namespace_dir);
        }
        Ok(())
    }
}

impl ProcessIdentity {
    /// Identifies a live process now; `None` when it is already gone.
    pub fn of(pid: i32) -> Option<Self> {
        start_time(pid).map(|start_time| ProcessIdentity { pid, start_time })
    }

    /// True while the very process this identity names is alive (not a recycled pid).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    /// True once the process is gone or a zombie: it runs no more, whoever reaps it (a
    /// process another parent reaps can only be polled).
    pub fn has_ended(&self) -> bool {
        !self.is_alive() || is_zombie(self.pid)
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; start time is field 22, so index 19 here.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_written_late_never_replaces_a_newer_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = StateStore::under(root.path(), "ns1", "c1").expect("store");
        let mut state = ContainerState::new("ns1", "c1", Path::new("/b"), ContainerKind::Unikernel);
        state.cgroup_dirs = vec![PathBuf::from("/older")];
        let older = store.snapshot(&state).expect("snapshot");
        state.cgroup_dirs = vec![PathBuf::from("/newer")];
        let newer = store.clone().snapshot(&state).expect("snapshot");
        // The two writers lost the race in the other order.
        store.write_snapshot(newer).expect("write newer");
        store.write_snapshot(older).expect("write older");
        let on_disk = store.read().expect("read").expect("present");
        assert_eq!(on_disk.cgroup_dirs, [PathBuf::from("/newer")]);
    }

    #[test]
    fn a_snapshot_written_after_the_removal_does_not_bring_the_state_back() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = StateStore::under(root.path(), "ns1", "c1").expect("store");
        let state = ContainerState::new("ns1", "c1", Path::new("/b"), ContainerKind::Unikernel);
        store.write(&state).expect("write");
        let late = store.snapshot(&state).expect("snapshot");
        store.clone().remove().expect("remove");
        store
            .write_snapshot(late)
            .expect("a dropped write is no error");
        assert!(!store.dir().exists(), "{} came back", store.dir().display());
        assert!(store.read().expect("read").is_none());
    }

    #[test]
    fn state_round_trips_and_is_removed() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = StateStore::under(root.path(), "ns1", "c1").expect("store");
        assert!(store.read().expect("read").is_none());
        let mut state = ContainerState::new("ns1", "c1", Path::new("/b"), ContainerKind::Unikernel);
        state.vmm = ProcessIdentity::of(std::process::id() as i32);
        store.write(&state).expect("write");
        let back = store.read().expect("read").expect("present");
        assert_eq!(back.vmm, state.vmm);
        assert!(back.vmm.expect("identity").is_alive());
        store.remove().expect("remove");
        assert!(!root.path().join("ns1").exists());
    }

    #[test]
    fn hostile_ids_are_refused() {
        for id in ["", "..", "a/b"] {
            assert!(StateStore::under(Path::new("/x"), "ns", id).is_err());
        }
    }

    #[test]
    fn a_recycled_pid_is_not_alive() {
        let me = ProcessIdentity::of(std::process::id() as i32).expect("self");
        let other = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
    }
}
