//! Recognising a network namespace file and naming it by identity.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{NetnsError, Result};
use crate::nsfs::open_namespace;

/// A network namespace as the kernel names it: the device and inode of its
/// nsfs file. The path is how we reached it; two paths can name one namespace,
/// and one path can name another namespace after `ip netns del` + `add`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetnsIdentity {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

impl NetnsIdentity {
    /// The pool key: what makes two identities the same namespace.
    pub fn key(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Whether `self.path` still names this namespace (it was not deleted or replaced).
    pub fn path_still_names_it(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }
}

/// Where bind-mounted namespaces live (`ip netns`, CNI, CRI).
const NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

impl NetnsIdentity {
    /// Another path to this same namespace when `self.path` no longer names
    /// it: a bind mount under /run/netns, or any process still inside it.
    /// containerd hands containers `/proc/<pause pid>/ns/net`, which
    /// vanishes with the pause process while CRI still pins the namespace.
    pub fn find_other_path(&self) -> Option<PathBuf> {
        let same = |path: &Path| {
            std::fs::metadata(path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
        };
        let pinned = NETNS_DIRS
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .flatten()
            .map(|entry| entry.path());
        let processes = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .map(|e| e.path().join("ns/net"));
        pinned.chain(processes).find(|path| same(path))
    }
}

/// Opens `path` and proves it is a network namespace, without entering it.
pub fn open_netns(path: &Path) -> Result<(OwnedFd, NetnsIdentity)> {
    let file = open_namespace(path, libc::CLONE_NEWNET)?;
    let meta = file.metadata().map_err(|source| NetnsError::Io {
        what: "stat of netns",
        path: path.to_path_buf(),
        source,
    })?;
    let identity = NetnsIdentity {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok((file.into(), identity))
}
