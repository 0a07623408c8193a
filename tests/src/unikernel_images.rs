//! Unikernel images for the shim tests, packed the way urunc's tools pack
//! them (urunc-pack): the guest files under `/unikernel`, urunc's
//! configuration in `/urunc.json` and the image labels.
//!
//! Both guests are packed as urunc's `linux` kind on `qemu`. Like Go urunc,
//! that kind takes the init program from the container's process args
//! (`rdinit=<args[0]> -- <rest>`), so the images carry `Cmd ["/init"]`.

use std::path::{Path, PathBuf};

use urunc_pack::UnikernelImage;

use crate::error::Result;
use crate::guests::{pvh_guest, LinuxGuest, PvhBehaviour};
use crate::images::archive_file_name;

/// Where the kernel goes in the image's rootfs.
pub const KERNEL_PATH: &str = "/unikernel/kernel";
/// Where the initrd goes in the image's rootfs.
pub const INITRD_PATH: &str = "/unikernel/initrd";
/// The init the Linux guest's initramfs runs.
pub const GUEST_INIT: &str = "/init";

/// Packs `image` with `Cmd [GUEST_INIT]` as `<dir>/<name>.tar`.
pub fn write_unikernel_archive(dir: &Path, image: &UnikernelImage) -> Result<PathBuf> {
    write_unikernel_archive_with_args(dir, image, &[])
}

/// Like [`write_unikernel_archive`], with `init_args` after [`GUEST_INIT`]
/// in `Cmd` (the linux kind hands them to the guest's init).
pub fn write_unikernel_archive_with_args(
    dir: &Path,
    image: &UnikernelImage,
    init_args: &[&str],
) -> Result<PathBuf> {
    let mut oci = image.to_oci_image()?;
    oci.cmd = std::iter::once(GUEST_INIT)
        .chain(init_args.iter().copied())
        .map(String::from)
        .collect();
    let out = dir.join(archive_file_name(&image.name));
    oci.write_archive(&out)?;
    Ok(out)
}

/// The urunc configuration of a `linux` guest on qemu, plus `extra` pairs.
pub fn linux_on_qemu(initrd: bool, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut config = vec![
        ("unikernelType", "linux"),
        ("hypervisor", "qemu"),
        ("binary", KERNEL_PATH),
    ];
    if initrd {
        config.push(("initrd", INITRD_PATH));
    }
    config.extend_from_slice(extra);
    config
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Writes the PVH guest (see [`pvh_guest`]) into `dir` and packs it as image
/// `name`; returns the archive for `ctr images import`.
pub fn pvh_image(dir: &Path, name: &str, behaviour: PvhBehaviour, marker: &str) -> Result<PathBuf> {
    let kernel = pvh_guest(dir, behaviour, marker)?;
    write_unikernel_archive(
        dir,
        &UnikernelImage {
            name: name.to_string(),
            files: vec![(KERNEL_PATH.to_string(), kernel)],
            urunc: linux_on_qemu(false, &[]),
            labels_as_annotations: false,
        },
    )
}

/// Packs the Linux guest (kernel and busybox initramfs from
/// [`linux_guest`](crate::guests::linux_guest)) as image `name`; returns the
/// archive. The guest powers off after its ready marker when the runtime
/// puts `urunc.poweroff=1` on its command line (tests can pass it in the
/// `cmdline` annotation through `extra`).
pub fn linux_image(
    dir: &Path,
    name: &str,
    guest: &LinuxGuest,
    extra: &[(&str, &str)],
) -> Result<PathBuf> {
    linux_image_with_args(dir, name, guest, extra, &[])
}

/// Like [`linux_image`], the guest's init given `init_args` (such as
/// `urunc.httpport=80`) through the image's `Cmd`.
pub fn linux_image_with_args(
    dir: &Path,
    name: &str,
    guest: &LinuxGuest,
    extra: &[(&str, &str)],
    init_args: &[&str],
) -> Result<PathBuf> {
    write_unikernel_archive_with_args(
        dir,
        &UnikernelImage {
            name: name.to_string(),
            files: vec![
                (KERNEL_PATH.to_string(), guest.kernel.clone()),
                (INITRD_PATH.to_string(), guest.initrd.clone()),
            ],
            urunc: linux_on_qemu(true, extra),
            labels_as_annotations: false,
        },
        init_args,
    )
}
