//! urunc's devmapper path on the host side: the container rootfs, when the snapshotter gave a
//! block device, becomes the guest's root disk (`runtime_core::rootfs_storage` decides).
//!
//! The rootfs was mounted where containerd asked (Create must read `/urunc.json` from it, and a
//! runc container needs it mounted anyway). Here the guest's kernel and initrd are copied out of
//! it into the container's private state directory, the rootfs is unmounted, and the device is
//! checked to be claimed by nobody (`O_EXCL` on a block device fails while any mount, in any
//! namespace, holds it) before the VMM gets it: two writers of one ext4 would corrupt it.
//!
//! urunc moves the kernel, initrd and `urunc.json` out of the image into `<bundle>/tmp`, unmounts,
//! and renames that directory to `rootfs`. Here they are copied, so the guest's disk keeps its
//! files, and they live in the state directory, so Delete (or `delete` after a shim crash)
//! removes them with the state; the rootfs mount point is recorded already and unmounting it
//! again is harmless.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use runtime_core::{RootfsMount, RootfsStorage, SharedFsKind, UruncConfig};

use crate::error::{Result, ShimError};
use crate::mounts::{self, RequestMount};
use crate::rootfs_file;

/// The host files the VMM gets: the kernel, the initrd, the guest's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFiles {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub block: Option<PathBuf>,
    /// `block` is the rootfs block device handed over, not a disk image file of the rootfs.
    pub block_is_device: bool,
    /// `mountRootfs` demanded the rootfs and it stays mounted: it is shared with the guest.
    pub shared_fs: Option<SharedFsKind>,
}

/// Where the guest's files come from: the rootfs device (copied out, unmounted) when urunc's
/// rule hands it to the guest, else the files the configuration names in the mounted rootfs.
/// `private_dir` is the container's state directory; `virtiofsd_found` says whether the
/// configured virtiofsd exists (urunc's shared-fs choice, when `mountRootfs` demands it).
pub fn guest_files(
    id: &str,
    rootfs: &Path,
    private_dir: &Path,
    request_mounts: &[RequestMount],
    config: &UruncConfig,
    virtiofsd_found: bool,
) -> Result<GuestFiles> {
    let found = describe(request_mounts);
    let env_default = std::env::var(runtime_core::USE_DEVMAPPER_AS_BLOCK).ok();
    let storage =
        runtime_core::rootfs_storage(config, env_default.as_deref(), &found, virtiofsd_found)?;
    let shared_fs = match storage {
        RootfsStorage::Mounted { reason } => {
            tracing::debug!(%id, reason, "the rootfs stays mounted");
            None
        }
        RootfsStorage::SharedFs(kind) => {
            tracing::info!(%id, fs = kind.as_str(), "the rootfs stays mounted and is shared with the guest as its root");
            Some(kind)
        }
        RootfsStorage::BlockDevice { device, fs_type } => {
            tracing::info!(%id, device = %device.display(), %fs_type, "the rootfs block device is the guest's root disk");
            return take_over(rootfs, private_dir, config, device);
        }
    };
    let resolve = |field: &str, value: &str, max: Option<u64>| {
        rootfs_file::resolve(rootfs, field, value, max)
    };
    let boot_file = Some(rootfs_file::BOOT_FILE_MAX_BYTES);
    let initrd = config.initrd.as_deref();
    let block = config.block.as_deref();
    Ok(GuestFiles {
        kernel: resolve(runtime_core::ANNOT_BINARY, &config.binary, boot_file)?,
        initrd: initrd
            .map(|v| resolve(runtime_core::ANNOT_INITRD, v, boot_file))
            .transpose()?,
        // The guest's disk: never read by the shim, its size is the guest's.
        block: block
            .map(|v| resolve(runtime_core::ANNOT_BLOCK, v, None))
            .transpose()?,
        // `resolve` opens regular files only.
        block_is_device: false,
        shared_fs,
    })
}

/// Hands the rootfs device over to the guest (urunc's rule said so): copies the boot files
/// out, unmounts the rootfs and checks nobody else holds the device.
fn take_over(
    rootfs: &Path,
    private_dir: &Path,
    config: &UruncConfig,
    device: PathBuf,
) -> Result<GuestFiles> {
    let mut kernel = None;
    let mut initrd = None;
    for file in runtime_core::boot_files(config) {
        let source = rootfs_file::resolve(
            rootfs,
            file.field,
            file.rootfs_path,
            Some(rootfs_file::BOOT_FILE_MAX_BYTES),
        )?;
        let copy = private_dir.join(file.copy_name);
        std::fs::copy(&source, &copy).map_err(|e| {
            ShimError::io(
                format!(
                    "copy {}={:?} out of the rootfs device to {}",
                    file.field,
                    file.rootfs_path,
                    copy.display()
                ),
                e,
            )
        })?;
        if file.field == runtime_core::ANNOT_BINARY {
            kernel = Some(copy);
        } else {
            initrd = Some(copy);
        }
    }
    let kernel = kernel.ok_or_else(|| {
        ShimError::invalid(
            runtime_core::ANNOT_BINARY,
            &config.binary,
            "no kernel to copy",
        )
    })?;
    mounts::unmount_rootfs(rootfs)?;
    ensure_unclaimed(&device)?;
    Ok(GuestFiles {
        kernel,
        initrd,
        block: Some(device),
        block_is_device: true,
        shared_fs: None,
    })
}

/// What the Create request's mounts are: a source that is a block device is named by its
/// canonical path (`/dev/mapper/x` is a link to `/dev/dm-N`), which is what the VMM opens.
fn describe(request_mounts: &[RequestMount]) -> Vec<RootfsMount> {
    request_mounts
        .iter()
        .map(|mount| {
            let source = PathBuf::from(&mount.source);
            let device = std::fs::metadata(&source)
                .ok()
                .filter(|m| m.file_type().is_block_device())
                .and_then(|_| source.canonicalize().ok());
            RootfsMount {
                fs_type: mount.fs_type.clone(),
                source_is_block_device: device.is_some(),
                source: device.unwrap_or(source),
            }
        })
        .collect()
}

/// Refuses a device some mount still holds (a copy of the rootfs mount propagated elsewhere):
/// the guest must be its only writer.
fn ensure_unclaimed(device: &Path) -> Result<()> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(device)
    {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(ShimError::invalid(
            "rootfs device",
            device.display().to_string(),
            "is still mounted or claimed elsewhere after the rootfs was unmounted; \
             the guest must be its only user",
        )),
        Err(e) => Err(ShimError::io(
            format!("open {} exclusively", device.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confine::test_reaper;
    use std::os::fd::AsRawFd;

    fn mount(fs_type: &str, source: &str) -> RequestMount {
        RequestMount {
            fs_type: fs_type.into(),
            source: source.into(),
            ..RequestMount::default()
        }
    }

    fn linux_config(use_dm_block: Option<bool>) -> UruncConfig {
        UruncConfig {
            unikernel_type: runtime_core::UnikernelType::Linux,
            unikernel_version: None,
            binary: "/unikernel/kernel".into(),
            cmdline: String::new(),
            hypervisor: runtime_core::Hypervisor::Qemu,
            initrd: Some("/unikernel/initrd".into()),
            block: None,
            blk_mnt_point: None,
            use_dm_block,
            mount_rootfs: false,
            solo5_net_dev: None,
            solo5_blk_dev: None,
        }
    }

    /// A loop device over an ext4 image, detached when dropped.
    struct LoopDevice {
        path: PathBuf,
        file: std::fs::File,
    }

    const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
    const LOOP_SET_FD: libc::c_ulong = 0x4C00;
    const LOOP_CLR_FD: libc::c_ulong = 0x4C01;

    impl LoopDevice {
        /// Takes a free loop device; tests running in parallel may be handed the same one, the
        /// loser of the race gets EBUSY and asks again (as losetup does).
        fn attach(image: &Path) -> std::io::Result<Self> {
            let control = std::fs::File::open("/dev/loop-control")?;
            let backing = OpenOptions::new().read(true).write(true).open(image)?;
            let mut attempts = 0;
            loop {
                // SAFETY: ioctls on descriptors owned here, with integer arguments.
                let free = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
                if free < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let path = PathBuf::from(format!("/dev/loop{free}"));
                let file = OpenOptions::new().read(true).write(true).open(&path)?;
                // SAFETY: as above.
                if unsafe { libc::ioctl(file.as_raw_fd(), LOOP_SET_FD, backing.as_raw_fd()) } == 0 {
                    return Ok(LoopDevice { path, file });
                }
                let error = std::io::Error::last_os_error();
                attempts += 1;
                if error.raw_os_error() != Some(libc::EBUSY) || attempts == 20 {
                    return Err(error);
                }
            }
        }
    }

    impl Drop for LoopDevice {
        fn drop(&mut self) {
            // SAFETY: as above.
            if unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD) } < 0 {
                eprintln!(
                    "detach {}: {}",
                    self.path.display(),
                    std::io::Error::last_os_error()
                );
            }
        }
    }

    /// An ext4 image holding a kernel, an initrd and a file, on a loop device; `None` (after
    /// printing SKIPPED) when this is not root or mkfs.ext4 is missing.
    async fn ext4_on_loop(dir: &Path) -> Option<LoopDevice> {
        let Some(mkfs) = test_reaper::find_program("mkfs.ext4")
            .or_else(|| Some(PathBuf::from("/usr/sbin/mkfs.ext4")).filter(|p| p.is_file()))
        else {
            skipped!("SKIPPED: mkfs.ext4 is not installed");
            return None;
        };
        if !test_reaper::is_root() || !Path::new("/dev/loop-control").exists() {
            skipped!("SKIPPED: needs root and loop devices");
            return None;
        }
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("unikernel")).expect("mkdir");
        std::fs::write(tree.join("unikernel/kernel"), b"kernel bytes").expect("kernel");
        std::fs::write(tree.join("unikernel/initrd"), b"initrd bytes").expect("initrd");
        let image = dir.join("disk.ext4");
        let (_child, exit) = test_reaper::shared()
            .spawn(
                std::process::Command::new(mkfs)
                    .args(["-q", "-F", "-d"])
                    .arg(&tree)
                    .arg(&image)
                    .arg("8M")
                    .stdout(std::process::Stdio::null()),
            )
            .expect("spawn mkfs.ext4");
        assert_eq!(exit.await.expect("mkfs exit"), 0, "mkfs.ext4 failed");
        Some(LoopDevice::attach(&image).expect("attach a loop device"))
    }

    fn is_mount_point(path: &Path) -> bool {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let wanted = path.display().to_string();
        mountinfo
            .lines()
            .any(|line| line.split(' ').nth(4) == Some(wanted.as_str()))
    }

    #[tokio::test]
    async fn the_rootfs_device_goes_to_the_guest_with_its_boot_files_copied_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(device) = ext4_on_loop(dir.path()).await else {
            return;
        };
        let rootfs = dir.path().join("rootfs");
        let private = dir.path().join("state");
        std::fs::create_dir_all(&rootfs).expect("rootfs");
        std::fs::create_dir_all(&private).expect("state");
        let request = [mount("ext4", &device.path.display().to_string())];
        mounts::mount_rootfs(&request, &rootfs).expect("mount like Create");

        let files = guest_files(
            "c1",
            &rootfs,
            &private,
            &request,
            &linux_config(None),
            false,
        )
        .expect("hands the device over");
        assert_eq!(
            files,
            GuestFiles {
                kernel: private.join("rootfs-kernel"),
                initrd: Some(private.join("rootfs-initrd")),
                block: Some(device.path.clone()),
                block_is_device: true,
                shared_fs: None,
            }
        );
        assert_eq!(
            std::fs::read(&files.kernel).expect("kernel"),
            b"kernel bytes"
        );
        assert_eq!(
            std::fs::read(private.join("rootfs-initrd")).expect("initrd"),
            b"initrd bytes"
        );
        assert!(!is_mount_point(&rootfs), "the rootfs is still mounted");
        ensure_unclaimed(&device.path).expect("nobody holds the device");

        // Copied, not moved: the guest's disk keeps its files (urunc moved them out).
        mounts::mount_rootfs(&request, &rootfs).expect("mount again");
        let kept = rootfs.join("unikernel/kernel").is_file();
        mounts::unmount_rootfs(&rootfs).expect("unmount");
        assert!(kept, "the kernel was removed from the disk");
    }

    #[tokio::test]
    async fn a_device_mounted_elsewhere_too_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(device) = ext4_on_loop(dir.path()).await else {
            return;
        };
        let rootfs = dir.path().join("rootfs");
        let elsewhere = dir.path().join("elsewhere");
        for folder in [&rootfs, &elsewhere] {
            std::fs::create_dir_all(folder).expect("mkdir");
        }
        let request = [mount("ext4", &device.path.display().to_string())];
        mounts::mount_rootfs(&request, &rootfs).expect("mount like Create");
        mounts::mount_rootfs(&request, &elsewhere).expect("a second user of the device");
        let refused = guest_files(
            "c1",
            &rootfs,
            dir.path(),
            &request,
            &linux_config(Some(true)),
            false,
        );
        let unmounted = mounts::unmount_rootfs(&elsewhere);
        let error = refused.expect_err("refused").to_string();
        unmounted.expect("unmount the second user");
        assert!(
            error.contains(&device.path.display().to_string()) && error.contains("still mounted"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn with_use_dm_block_false_the_rootfs_stays_mounted_and_is_read_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(device) = ext4_on_loop(dir.path()).await else {
            return;
        };
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("rootfs");
        let request = [mount("ext4", &device.path.display().to_string())];
        mounts::mount_rootfs(&request, &rootfs).expect("mount like Create");
        let files = guest_files(
            "c1",
            &rootfs,
            dir.path(),
            &request,
            &linux_config(Some(false)),
            false,
        );
        let still_mounted = is_mount_point(&rootfs);
        mounts::unmount_rootfs(&rootfs).expect("unmount");
        let files = files.expect("resolves in the rootfs");
        assert!(still_mounted);
        assert_eq!(files.block, None);
        assert!(files.kernel.ends_with("unikernel/kernel"), "{files:?}");
    }

    #[test]
    fn only_a_block_device_source_counts_and_is_canonical() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("image");
        std::fs::write(&file, b"x").expect("write");
        let found = describe(&[
            mount("overlay", "overlay"),
            mount("ext4", &file.display().to_string()),
        ]);
        assert!(found.iter().all(|m| !m.source_is_block_device), "{found:?}");
        let Some(loop_device) = (0..8)
            .map(|n| format!("/dev/loop{n}"))
            .find(|p| Path::new(p).exists())
        else {
            skipped!("SKIPPED: no /dev/loopN block device to describe");
            return;
        };
        let link = dir.path().join("mapper-link");
        std::os::unix::fs::symlink(&loop_device, &link).expect("symlink");
        let found = describe(&[mount("ext4", &link.display().to_string())]);
        assert_eq!(
            found,
            [RootfsMount {
                fs_type: "ext4".into(),
                source: PathBuf::from(&loop_device),
                source_is_block_device: true,
            }]
        );
    }
}
