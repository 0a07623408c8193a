//! A Linux guest whose root is the container rootfs shared over 9p or virtiofs (urunc's
//! `mountRootfs`): the image of `block_root`, with `mountRootfs=true` in its `/urunc.json`.
//!
//! Kernels: Debian's cloud kernel has virtiofs (as a module) but no 9p at all; Debian's
//! generic kernel has 9p as modules, and `.ci/install-deps` unpacks it (never installed)
//! under [`GENERIC_KERNEL_DIR`]. Only the modules the root needs are loaded, so the boot
//! under TCG stays short.

use std::path::{Path, PathBuf};

use urunc_pack::LayerEntry;

use super::block_root::rooted_guest;
use super::linux::find_kernel;
use crate::error::{HarnessError, Result};

/// Where `.ci/install-deps` unpacks Debian's generic kernel: `boot/vmlinuz-<release>` and
/// `lib/modules/<release>`.
pub const GENERIC_KERNEL_DIR: &str = "/var/tmp/urunc-rs-kernel";
/// The guest's mount tag for its root (urunc's).
pub const ROOT_TAG: &str = "fs0";

/// The shared filesystem the guest's root comes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedRoot {
    NineP,
    Virtiofs,
}

impl SharedRoot {
    /// The filesystem type `/proc/mounts` shows for the guest's `/`.
    pub fn fs_type(self) -> &'static str {
        match self {
            SharedRoot::NineP => "9p",
            SharedRoot::Virtiofs => "virtiofs",
        }
    }

    /// virtio over MMIO (qemu microvm) and the filesystem's driver.
    fn modules(self) -> &'static [&'static str] {
        match self {
            SharedRoot::NineP => &["virtio_mmio", "9pnet_virtio", "9p"],
            SharedRoot::Virtiofs => &["virtio_mmio", "virtiofs"],
        }
    }
}

/// The image rootfs entries of a guest booted from `root` (kernel and initrd written into
/// `dir`); the image's `Cmd` must be `block_root::DISK_INIT`.
pub fn shared_root_guest(dir: &Path, root: SharedRoot) -> Result<Vec<LayerEntry>> {
    let (kernel, modules_dir) = match root {
        SharedRoot::NineP => generic_kernel()?,
        SharedRoot::Virtiofs => {
            let (kernel, release) = find_kernel()?;
            (kernel, Path::new("/lib/modules").join(release))
        }
    };
    rooted_guest(
        dir,
        &kernel,
        &modules_dir,
        root.modules(),
        &[("mountRootfs", "true")],
    )
}

/// Debian's generic kernel under [`GENERIC_KERNEL_DIR`] and its modules folder.
fn generic_kernel() -> Result<(PathBuf, PathBuf)> {
    let root = Path::new(GENERIC_KERNEL_DIR);
    let boot = root.join("boot");
    let missing = || HarnessError::Missing {
        what: format!(
            "{}/vmlinuz-* (Debian's generic kernel, with 9p)",
            boot.display()
        ),
        hint: "run .ci/install-deps".into(),
    };
    let kernel = std::fs::read_dir(&boot)
        .map_err(|_| missing())?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("vmlinuz-"))
        })
        .ok_or_else(missing)?;
    let release = kernel
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix("vmlinuz-"))
        .ok_or_else(missing)?
        .to_owned();
    Ok((kernel, root.join("lib/modules").join(release)))
}
