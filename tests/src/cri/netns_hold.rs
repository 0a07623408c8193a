//! Holding a pod's network namespace open past the pod's own teardown, so a
//! test can still look inside after CRI removed its pin: a bind mount of the
//! nsfs file under /run/netns (an `ip netns` name), made without entering
//! the namespace.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{HarnessError, Result};
use crate::sandbox::unique_name;

/// Where `ip netns` names live.
const NETNS_DIR: &str = "/run/netns";

/// A bind mount of a network namespace; unmounted on drop.
pub struct NetnsHold {
    name: String,
    path: PathBuf,
    inode: u64,
    mounted: bool,
}

impl NetnsHold {
    /// Binds `netns` (an nsfs path such as `/var/run/netns/cni-...`).
    pub fn hold(netns: &Path) -> Result<Self> {
        let inode = std::fs::metadata(netns)
            .map_err(HarnessError::io("stat", netns))?
            .ino();
        let name = unique_name("urhold");
        let path = Path::new(NETNS_DIR).join(&name);
        std::fs::File::create(&path).map_err(HarnessError::io("create", &path))?;
        let mut hold = NetnsHold {
            name,
            path,
            inode,
            mounted: false,
        };
        mount(
            Some(netns),
            &hold.path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| HarnessError::Io {
            action: "bind-mount a network namespace onto",
            path: hold.path.clone(),
            source: errno.into(),
        })?;
        hold.mounted = true;
        Ok(hold)
    }

    /// The `ip netns` name of the held namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's inode (its identity).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    /// Lets the namespace go now, reporting a failure.
    pub fn release(mut self) -> Result<()> {
        self.unhold()
    }

    fn unhold(&mut self) -> Result<()> {
        if self.mounted {
            umount2(&self.path, MntFlags::MNT_DETACH).map_err(|errno| HarnessError::Io {
                action: "unmount",
                path: self.path.clone(),
                source: errno.into(),
            })?;
            self.mounted = false;
        }
        match std::fs::remove_file(&self.path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(HarnessError::io("remove", self.path.clone())(error))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for NetnsHold {
    fn drop(&mut self) {
        if let Err(error) = self.unhold() {
            eprintln!("NetnsHold({}): {error}", self.name);
        }
    }
}
