//! The container rootfs: mounting the request's mounts on `<bundle>/rootfs` and unmounting it.

use std::path::Path;

use nix::mount::{umount2, MntFlags};

use crate::error::{Result, ShimError};

/// One of the Create request's rootfs mounts (what the snapshotter gave), in the shim's own
/// terms: the service edge converts containerd's `Mount` into it. Empty strings mean unset,
/// as in the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMount {
    pub fs_type: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Mounts `mounts` in order on `target`. On failure, whatever was mounted is unmounted again.
pub fn mount_rootfs(mounts: &[RequestMount], target: &Path) -> Result<()> {
    for (index, mount) in mounts.iter().enumerate() {
        let fs_type = (!mount.fs_type.is_empty()).then_some(mount.fs_type.as_str());
        let source = (!mount.source.is_empty()).then_some(mount.source.as_str());
        if let Err(error) =
            containerd_shim::mount::mount_rootfs(fs_type, source, &mount.options, target)
        {
            let mounted = ShimError::invalid(
                format!("rootfs[{index}]"),
                format!("{} {} {:?}", mount.fs_type, mount.source, mount.options),
                error.to_string(),
            );
            if index > 0 {
                if let Err(cleanup) = unmount_rootfs(target) {
                    return Err(ShimError::Cleanup(vec![mounted, cleanup]));
                }
            }
            return Err(mounted);
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `target`; a target with nothing mounted is fine.
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            // EINVAL: not a mount point (any more). ENOENT: the bundle is already gone.
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(error) => {
                return Err(ShimError::sys(
                    format!("unmount {}", target.display()),
                    error,
                ))
            }
        }
    }
}
