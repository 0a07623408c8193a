//! The confined VMM's mount namespace, held open by the shim from the VMM's start until its
//! exit was reported (the file Start opened on the root helper's namespace).
//!
//! Freeing a mount namespace unmounts its ~110 mounts and waits for an RCU grace period
//! (`namespace_unlock`), 0.5-45 ms on these 2-core VMs. Without a holder, the VMM's last
//! process pays it inside `exit(2)`, before its parent is told: VMM death → TaskExit would
//! carry a grace period of its own on top of the tap deletion's. With the shim holding the
//! namespace, the VMM dies at once and the namespace is freed after TaskExit, on a
//! blocking thread (closing the last file of a namespace blocks the closing thread for the
//! grace period). The mounts outlive the VMM by that long only: they are private to that
//! namespace and reachable by no process.

use std::fs::File;

/// An open `/proc/<pid>/ns/mnt` of the VMM.
pub struct HeldMountNamespace(File);

impl HeldMountNamespace {
    pub(super) fn from_file(namespace: File) -> Self {
        Self(namespace)
    }

    /// Frees the namespace (when nothing else holds it) off the caller's thread.
    pub fn release(self) {
        tokio::task::spawn_blocking(move || drop(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn the_held_file_is_the_process_mount_namespace() {
        let file = File::open("/proc/self/ns/mnt").expect("own mount namespace");
        let held = HeldMountNamespace::from_file(file);
        let own = std::fs::metadata("/proc/self/ns/mnt").expect("stat own namespace");
        let kept = held.0.metadata().expect("stat held namespace");
        assert_eq!((kept.dev(), kept.ino()), (own.dev(), own.ino()));
        held.release();
    }
}
