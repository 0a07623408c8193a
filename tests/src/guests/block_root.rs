//! A Linux guest whose root filesystem is the image's: the image's whole rootfs
//! (Debian's kernel and an initramfs under `/unikernel`, busybox, `/sbin/init`
//! and a file only the image has) is what urunc's devmapper path hands the
//! guest as `/dev/vda`, or what its shared-fs path shares (`shared_root`).
//! The initramfs loads the modules, mounts `root=` and switches to `init=` on
//! it; that init prints [`BLOCK_ROOT_MARKER`], the image-only file's contents
//! and the device and filesystem type on `/`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use urunc_pack::LayerEntry;

use super::initramfs::build_initramfs_with_init;
use super::kernel_modules::modules_with_dependencies;
use super::linux::{find_kernel, GUEST_MODULES};
use crate::error::{HarnessError, Result};
use crate::host_tools::static_busybox;
use crate::unikernel_images::{INITRD_PATH, KERNEL_PATH};

pub const BLOCK_ROOT_MARKER: &str = "URUNC-BLOCK-ROOT";
/// A file only the image's rootfs holds, and what it says.
pub const IMAGE_ONLY_FILE: &str = "/only-in-image";
pub const IMAGE_ONLY_TEXT: &str = "from-the-image-rootfs";
/// The init on the disk; an argument `poweroff` makes it power off after the marker.
pub const DISK_INIT: &str = "/sbin/init";

const INITRAMFS_INIT: &str = include_str!("block_root_init.sh");
const DISK_INIT_TEMPLATE: &str = include_str!("block_root_disk_init.sh");

/// What the console shows when the guest runs from its root disk `/dev/vda`.
pub fn booted_from_vda_line() -> String {
    booted_from_line("/dev/vda", "ext4")
}

/// What the console shows when the guest runs from `root` (a device or a mount tag), a
/// filesystem of type `fs_type`.
pub fn booted_from_line(root: &str, fs_type: &str) -> String {
    format!("{BLOCK_ROOT_MARKER} {IMAGE_ONLY_TEXT} root={root} type={fs_type}")
}

/// The image rootfs entries (kernel and initrd written into `dir`), with a
/// `/urunc.json` that boots it: `linux` on qemu with an initrd, the init
/// from the process args (the image's `Cmd` is [`DISK_INIT`]).
pub fn block_root_guest(dir: &Path) -> Result<Vec<LayerEntry>> {
    let (kernel, release) = find_kernel()?;
    let modules_dir = Path::new("/lib/modules").join(&release);
    rooted_guest(dir, &kernel, &modules_dir, GUEST_MODULES, &[])
}

/// The image rootfs of a guest that boots `kernel` with an initramfs holding `modules` (from
/// `modules_dir`, with their dependencies) that mounts its `root=`; `urunc` adds keys to its
/// `/urunc.json`.
pub fn rooted_guest(
    dir: &Path,
    kernel: &Path,
    modules_dir: &Path,
    modules: &[&str],
    urunc: &[(&str, &str)],
) -> Result<Vec<LayerEntry>> {
    let modules = modules_with_dependencies(modules_dir, modules)?;
    let busybox = static_busybox()?;
    let initramfs = build_initramfs_with_init(&busybox, &modules, INITRAMFS_INIT)?;
    let initrd = dir.join("block-root-initrd.cpio");
    std::fs::write(&initrd, initramfs).map_err(HarnessError::io("write", &initrd))?;
    let disk_init = DISK_INIT_TEMPLATE
        .replace("@MARKER@", BLOCK_ROOT_MARKER)
        .replace("@IMAGE_FILE@", IMAGE_ONLY_FILE);
    let mut entries = vec![
        LayerEntry::HostFile {
            path: KERNEL_PATH.into(),
            host: kernel.to_path_buf(),
        },
        LayerEntry::HostFile {
            path: INITRD_PATH.into(),
            host: initrd,
        },
        LayerEntry::HostFile {
            path: "/bin/busybox".into(),
            host: busybox,
        },
        LayerEntry::Symlink {
            path: "/bin/sh".into(),
            target: "busybox".into(),
        },
        LayerEntry::Bytes {
            path: DISK_INIT.into(),
            contents: disk_init.into_bytes(),
            mode: 0o755,
        },
        LayerEntry::Bytes {
            path: IMAGE_ONLY_FILE.into(),
            contents: format!("{IMAGE_ONLY_TEXT}\n").into_bytes(),
            mode: 0o644,
        },
    ];
    for folder in ["/dev", "/proc", "/sys", "/tmp"] {
        entries.push(LayerEntry::Dir {
            path: folder.into(),
        });
    }
    // Plain values: urunc-rs reads them as they are (Go urunc wants base64).
    let urunc_json: serde_json::Map<String, serde_json::Value> = [
        ("unikernelType", "linux"),
        ("hypervisor", "qemu"),
        ("binary", KERNEL_PATH),
        ("initrd", INITRD_PATH),
    ]
    .iter()
    .chain(urunc)
    .map(|(key, value)| (format!("com.urunc.unikernel.{key}"), (*value).into()))
    .collect();
    entries.push(LayerEntry::Bytes {
        path: "/urunc.json".into(),
        contents: serde_json::Value::Object(urunc_json)
            .to_string()
            .into_bytes(),
        mode: 0o644,
    });
    Ok(entries)
}

/// Packs `entries` (from [`block_root_guest`] or `shared_root`) as image `name`, its `Cmd`
/// [`DISK_INIT`], into an OCI archive in `dir`; returns the archive's path.
pub fn rooted_image_archive(dir: &Path, name: &str, entries: Vec<LayerEntry>) -> Result<PathBuf> {
    let archive = dir.join(crate::images::archive_file_name(name));
    urunc_pack::OciImage {
        name: name.to_string(),
        architecture: urunc_pack::host_architecture().to_string(),
        entries,
        cmd: vec![DISK_INIT.to_string()],
        ..urunc_pack::OciImage::default()
    }
    .write_archive(&archive)?;
    Ok(archive)
}

/// Writes `entries` as a directory tree under `root` (what `mkfs.ext4 -d` takes).
pub fn write_tree(root: &Path, entries: &[LayerEntry]) -> Result<()> {
    for entry in entries {
        let (path, target) = match entry {
            LayerEntry::HostFile { path, .. }
            | LayerEntry::Bytes { path, .. }
            | LayerEntry::Symlink { path, .. }
            | LayerEntry::Dir { path } => (path, root.join(path.trim_start_matches('/'))),
        };
        let parent = target.parent().map(Path::to_path_buf).unwrap_or_default();
        std::fs::create_dir_all(&parent).map_err(HarnessError::io("create", &parent))?;
        let written = match entry {
            LayerEntry::HostFile { host, .. } => std::fs::copy(host, &target).map(|_| ()),
            LayerEntry::Bytes { contents, mode, .. } => {
                std::fs::write(&target, contents).and_then(|()| {
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))
                })
            }
            LayerEntry::Symlink { target: link, .. } => std::os::unix::fs::symlink(link, &target),
            LayerEntry::Dir { .. } => std::fs::create_dir_all(&target),
        };
        written.map_err(HarnessError::io("write", &PathBuf::from(path)))?;
    }
    Ok(())
}
