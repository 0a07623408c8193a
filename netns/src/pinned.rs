//! A fresh network namespace pinned by a bind mount, for a container whose spec asks for a new
//! one. runc makes that namespace at Create with the container's init; a unikernel has no
//! process before Start, so the hooks that set up its network at Create (nerdctl's CNI hook)
//! would have no namespace to configure. The shim makes it here instead, and hooks, the tap
//! attach and the VMM all reach it by the pin's path.
//!
//! The namespace is born in a dedicated short-lived thread named [`NEW_NETNS_THREAD`]: it
//! unshares `CLONE_NEWNET` (which moves only the calling thread), bind-mounts its own
//! `/proc/thread-self/ns/net` onto the pin file and ends. It never calls setns, runs nothing
//! else and is gone before the caller returns, so invariant 1 holds: the only threads ever
//! outside the shim's namespace are named `ns-*` and never come back to serve anything else.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{NetnsError, Result};
use crate::identity::{open_netns, NetnsIdentity};

/// The name of the thread that makes a fresh namespace (`ns-` like the workers: the thread
/// audit counts it among the threads allowed outside the shim's namespace).
pub const NEW_NETNS_THREAD: &str = "ns-new";

/// Creates a fresh network namespace pinned at `pin` (a file that must not exist yet; its
/// folder must). On error nothing is left: no file, no mount.
pub fn create_pinned(pin: &Path) -> Result<NetnsIdentity> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(pin)
        .map_err(|source| NetnsError::Io {
            what: "create the pin file of a fresh netns",
            path: pin.to_path_buf(),
            source,
        })?;
    let target = pin.to_path_buf();
    let made = std::thread::Builder::new()
        .name(NEW_NETNS_THREAD.to_string())
        .spawn(move || unshare_and_pin(&target))
        .map_err(|source| NetnsError::Spawn {
            path: pin.to_path_buf(),
            source,
        })
        .and_then(|thread| {
            thread.join().unwrap_or_else(|_| {
                Err(NetnsError::Io {
                    what: "the thread making a fresh netns panicked at",
                    path: pin.to_path_buf(),
                    source: io::Error::other("panic"),
                })
            })
        })
        .and_then(|()| open_netns(pin).map(|(_, identity)| identity));
    match made {
        Ok(identity) => Ok(identity),
        Err(cause) => match remove_pinned(pin) {
            Ok(()) => Err(cause),
            Err(rollback) => Err(NetnsError::RollbackFailed {
                cause: Box::new(cause),
                rollback: Box::new(rollback),
            }),
        },
    }
}

/// In the dedicated thread only: a new netns for this thread, bind-mounted onto `pin`.
fn unshare_and_pin(pin: &Path) -> Result<()> {
    let failed = |step: &'static str, errno: Errno| NetnsError::Io {
        what: step,
        path: pin.to_path_buf(),
        source: io::Error::from(errno),
    };
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| failed("unshare a fresh netns for", e))?;
    mount(
        Some(Path::new("/proc/thread-self/ns/net")),
        pin,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| failed("bind-mount the fresh netns onto", e))
}

/// Unmounts and removes the pin of [`create_pinned`]; the namespace goes with its last user.
/// Idempotent: a pin already unmounted or removed is not an error.
pub fn remove_pinned(pin: &Path) -> Result<()> {
    match umount2(pin, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (never mounted, or already unmounted).
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(errno) => {
            return Err(NetnsError::Io {
                what: "unmount the pinned netns",
                path: pin.to_path_buf(),
                source: io::Error::from(errno),
            })
        }
    }
    match std::fs::remove_file(pin) {
        Ok(()) => Ok(()),
        Err(source) if source.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::Io {
            what: "remove the pin file of a netns",
            path: PathBuf::from(pin),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::netns_inode_of;

    fn is_root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    #[test]
    fn a_pinned_netns_is_new_and_removing_it_leaves_nothing() {
        if !is_root() {
            urunc_test_skip::skipped!(
                "SKIPPED: a_pinned_netns_is_new_and_removing_it_leaves_nothing: needs root"
            );
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = dir.path().join("netns");
        let identity = create_pinned(&pin).expect("create");
        let mine = netns_inode_of(Path::new("/proc/thread-self/ns/net")).expect("own netns");
        assert_ne!(identity.ino, mine, "the pin names this thread's own netns");
        assert_eq!(
            netns_inode_of(Path::new("/proc/thread-self/ns/net")).expect("own netns"),
            mine,
            "the calling thread moved"
        );
        remove_pinned(&pin).expect("remove");
        assert!(!pin.exists(), "the pin file stayed");
        remove_pinned(&pin).expect("removing twice is not an error");
    }

    #[test]
    fn an_existing_pin_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = dir.path().join("netns");
        std::fs::write(&pin, "someone else's").expect("write");
        let error = create_pinned(&pin).expect_err("refused");
        assert!(
            error.to_string().contains(&pin.display().to_string()),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(&pin).expect("read"),
            "someone else's"
        );
    }
}
