//! Whether the container rootfs itself becomes the guest's root disk: urunc's
//! devmapper path (pkg/unikontainers/unikontainers.go, `useDMBlock`,
//! `prepareDMAsBlock`).
//!
//! When the snapshotter hands the rootfs over as a block device (containerd's
//! devmapper snapshotter: one mount, `ext4` from `/dev/mapper/<pool>-snap-N`),
//! the shim does not keep it mounted for the VMM: it copies the guest's boot
//! files out of it, unmounts it and gives the device to the VMM as the guest's
//! root disk (`root=/dev/vda rw` for Linux). urunc's rule, kept here:
//!
//! 1. A `block` annotation wins: that image is the guest's disk.
//! 2. The kind must use block devices (`SupportsBlock`) and know the
//!    filesystem (`SupportsFS`: Linux any, rumprun and FreeBSD ext2, MirageOS none).
//! 3. `useDMBlock` (annotation or `/urunc.json`) decides; when it is not set,
//!    the environment variable `USE_DEVMAPPER_AS_BLOCK` of the runtime (the
//!    shim inherits containerd's environment); when neither is set, yes.
//!
//! Departures from urunc, on purpose:
//! * The rootfs must really be a block device (the shim checks the mount
//!   source is one). urunc took whatever `/proc/self/mountinfo` named, so with
//!   overlayfs and nothing set it handed `overlay` to the VMM as a disk.
//! * An unparsable `USE_DEVMAPPER_AS_BLOCK` is refused naming the variable;
//!   urunc logged it and went on as if it said yes.

use std::path::PathBuf;

use crate::config::{UnikernelType, UruncConfig};
use crate::decode::parse_flag;
use crate::error::CoreError;
use crate::kinds::supports_block;
use crate::shared_fs::{self, SharedFsKind};

/// The runtime-wide default of `useDMBlock`, read from the runtime's
/// environment as urunc does.
pub const USE_DEVMAPPER_AS_BLOCK: &str = "USE_DEVMAPPER_AS_BLOCK";

/// What the shim found about the container rootfs: the one mount of the
/// Create request, and whether its source is a block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    pub fs_type: String,
    pub source: PathBuf,
    pub source_is_block_device: bool,
}

/// Where the guest's root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsStorage {
    /// The rootfs stays mounted; the guest boots from what the configuration
    /// names in it (kernel, initrd, `block` image).
    Mounted { reason: &'static str },
    /// The rootfs block device is the guest's root disk; its boot files are
    /// read from it before it is unmounted.
    BlockDevice { device: PathBuf, fs_type: String },
    /// `mountRootfs` demanded the rootfs and it cannot be a block device: the rootfs stays
    /// mounted and is shared with the guest as its root filesystem (`shared_fs`).
    SharedFs(SharedFsKind),
}

/// Decides how the rootfs reaches the guest. `env_default` is the value of
/// [`USE_DEVMAPPER_AS_BLOCK`] in the runtime's environment, if set; `mounts`
/// is the Create request's rootfs mounts (none when containerd mounted it).
///
/// `mountRootfs=true` is a demand, not a preference: the guest must get the
/// container rootfs as its root. When the rule above keeps it mounted, it is
/// shared with the guest as a filesystem as urunc does (virtiofs when
/// `virtiofsd_found`, the configured daemon exists on the host, else 9p; see
/// `shared_fs`); when neither can carry it, Create is refused with both
/// reasons instead of booting a guest without its rootfs.
pub fn rootfs_storage(
    config: &UruncConfig,
    env_default: Option<&str>,
    mounts: &[RootfsMount],
    virtiofsd_found: bool,
) -> Result<RootfsStorage, CoreError> {
    let storage = decide(config, env_default, mounts)?;
    match storage {
        RootfsStorage::Mounted { reason } if config.mount_rootfs => {
            match shared_fs::choose(config, virtiofsd_found) {
                Ok(kind) => Ok(RootfsStorage::SharedFs(kind)),
                Err(shared_reason) => Err(CoreError::invalid(
                    crate::config::ANNOT_MOUNT_ROOTFS,
                    "true",
                    format!(
                        "the container rootfs cannot be handed to the guest: {reason} \
                         (only a block-device rootfs, e.g. from the devmapper snapshotter, \
                         can be) and it cannot be shared: {shared_reason}"
                    ),
                )),
            }
        }
        storage => Ok(storage),
    }
}

fn decide(
    config: &UruncConfig,
    env_default: Option<&str>,
    mounts: &[RootfsMount],
) -> Result<RootfsStorage, CoreError> {
    if config.block.is_some() {
        return Ok(RootfsStorage::Mounted {
            reason: "the block annotation names the guest's disk",
        });
    }
    if !supports_block(&config.unikernel_type) {
        return Ok(RootfsStorage::Mounted {
            reason: "the unikernel kind does not use block devices",
        });
    }
    if !use_dm_block(config, env_default)? {
        return Ok(RootfsStorage::Mounted {
            reason: "useDMBlock is false",
        });
    }
    let [mount] = mounts else {
        return Ok(RootfsStorage::Mounted {
            reason: "the rootfs is not a single mount",
        });
    };
    if !mount.source_is_block_device {
        return Ok(RootfsStorage::Mounted {
            reason: "the rootfs mount source is not a block device",
        });
    }
    if !supports_fs(&config.unikernel_type, &mount.fs_type) {
        return Ok(RootfsStorage::Mounted {
            reason: "the unikernel kind cannot read the rootfs filesystem",
        });
    }
    Ok(RootfsStorage::BlockDevice {
        device: mount.source.clone(),
        fs_type: mount.fs_type.clone(),
    })
}

fn use_dm_block(config: &UruncConfig, env_default: Option<&str>) -> Result<bool, CoreError> {
    if let Some(explicit) = config.use_dm_block {
        return Ok(explicit);
    }
    match env_default.filter(|v| !v.is_empty()) {
        Some(value) => parse_flag(USE_DEVMAPPER_AS_BLOCK, value),
        None => Ok(true),
    }
}

/// urunc's `SupportsFS`.
fn supports_fs(kind: &UnikernelType, fs_type: &str) -> bool {
    match kind {
        UnikernelType::Linux => true,
        UnikernelType::Rumprun | UnikernelType::Freebsd => fs_type == "ext2",
        UnikernelType::Mirage
        | UnikernelType::Unikraft
        | UnikernelType::Mewz
        | UnikernelType::Hermit => false,
    }
}

/// A file the shim copies out of the rootfs block device before it unmounts
/// it, and the name of the copy in the container's private directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile<'a> {
    /// The configuration key that names it, for errors.
    pub field: &'static str,
    /// Its path in the rootfs, as the configuration writes it.
    pub rootfs_path: &'a str,
    /// A fixed name, so no configured path can choose where the copy lands.
    pub copy_name: &'static str,
}

/// The kernel and the initrd: what the VMM reads from the host.
/// `/urunc.json` is not copied: the configuration was resolved from it
/// already (urunc moved it out too, to read it again at Start).
pub fn boot_files(config: &UruncConfig) -> Vec<BootFile<'_>> {
    let mut files = vec![BootFile {
        field: crate::config::ANNOT_BINARY,
        rootfs_path: &config.binary,
        copy_name: "rootfs-kernel",
    }];
    if let Some(initrd) = &config.initrd {
        files.push(BootFile {
            field: crate::config::ANNOT_INITRD,
            rootfs_path: initrd,
            copy_name: "rootfs-initrd",
        });
    }
    files
}
