//! The `freebsd` kind (urunc's `FreeBSD`, unikernels/freebsd.go): a FreeBSD kernel booted
//! through its PVH entry point by qemu (`-M microvm`) or firecracker, x86_64 only. Its boot
//! arguments:
//!
//! ```text
//! vfs.root.mountfrom=<ufs:/dev/vtbd0 | ext2fs:/dev/vtbd0 | p9fs:fs0> [init_path=<args[0]>]
//! [URUNIT_CONFIG=/dev/vtbd<n> [URUNIT_DEFROUTE=1]]
//! ```
//!
//! * The root: a `block` image is UFS; the container's rootfs block device (the devmapper
//!   snapshot, ext2 as urunc's `SupportsFS` reads it) is read by FreeBSD's ext2fs driver; a
//!   shared rootfs is 9p with urunc's mount tag. Nothing else boots FreeBSD: an initrd (even
//!   beside a disk), virtiofs, or no root at all are refused naming the field, as urunc
//!   refuses any rootfs but block and 9p.
//! * PVH turns every `name=value` token into a kernel environment variable; tokens are split
//!   on spaces and commas, with no quoting, and `init_path` is the kernel's colon-separated
//!   list of programs to try as init. So args[0] must be one word without `,`, `:` or quotes.
//! * urunit: when args[0]'s file name is `urunit` (urunc's `usesUrunit`), the arguments after
//!   it, the environment, the user, the working directory and the network go in urunit's
//!   configuration file (`urunit`), attached as a raw block device after every other one and
//!   named by `URUNIT_CONFIG`; `URUNIT_DEFROUTE=1` asks it for a default route through a
//!   gateway outside the pod's subnet (a point-to-point gateway, as Calico gives).
//! * Without urunit the kernel starts init with no arguments and no environment from the
//!   host. Arguments after args[0] are refused rather than lost (urunc drops them silently);
//!   the environment, which always holds at least containerd's `PATH`, is not passed, as in
//!   urunc.
//! * Departure: urunc asks for a default route also when the pod has no gateway at all (its
//!   subnet check fails on an empty gateway); with no gateway there is no route to add, so
//!   `URUNIT_DEFROUTE` is left out.

use std::ffi::OsStr;
use std::path::Path;

use super::urunit::{self, UrunitConfig};
use super::{GuestArg, GuestContext, GuestRootfs};
use crate::config::{refuse_control_chars, Hypervisor, ANNOT_BLOCK, ANNOT_INITRD};
use crate::error::CoreError;
use crate::net::GuestNetwork;
use crate::shared_fs::{SharedFsKind, ROOT_TAG};
use crate::vmm::PlanFile;

/// The id of the root disk, qemu's drive id and serial (on firecracker, behind its prefix).
pub(crate) const ROOT_DRIVE: &str = "rootfs";
/// qemu's drive id and serial of urunit's configuration.
pub(crate) const QEMU_CONFIG_DRIVE: &str = "urunit";
/// firecracker's drive id of urunit's configuration.
pub(crate) const FIRECRACKER_CONFIG_DRIVE: &str = "FC_URUNIT_CONFIG";
/// What urunc puts before every other drive id on firecracker, in the VMM's drives and in
/// urunit's block mounts alike: firecracker shows the drive id to the guest as the serial.
const FIRECRACKER_DRIVE_PREFIX: &str = "FC";
/// urunit's configuration in the VMM's work directory.
const CONFIG_FILE_NAME: &str = "urunit.conf";
/// The name of the init that reads the configuration drive.
const URUNIT: &str = "urunit";
/// FreeBSD's virtio block devices, numbered in the order the VMM attaches them.
const BLOCK_DEVICE_PREFIX: &str = "/dev/vtbd";

/// The id a drive has on `hypervisor` (urunc's `MonitorBlockCli`).
pub(crate) fn drive_id(hypervisor: Hypervisor, id: &str) -> String {
    match hypervisor {
        Hypervisor::Firecracker => format!("{FIRECRACKER_DRIVE_PREFIX}{id}"),
        _ => id.to_owned(),
    }
}

/// How the guest boots, decided once for the command line and the configuration drive.
struct Boot<'c, 'a> {
    mount_from: String,
    /// args[0], the program the kernel starts.
    init: Option<&'c GuestArg>,
    /// args[1..]: urunit's program and its arguments.
    rest: &'c [GuestArg],
    urunit: bool,
    /// Block devices attached before the configuration drive.
    disks: usize,
    network: Option<&'a GuestNetwork>,
}

fn boot<'c, 'a>(ctx: &'c GuestContext<'a>) -> Result<Boot<'c, 'a>, CoreError> {
    let config = ctx.config;
    if ctx.initrd {
        let value = config.initrd.as_deref().unwrap_or_default();
        return Err(CoreError::invalid(
            ANNOT_INITRD,
            value,
            "a freebsd guest boots from a disk or a 9p share, never from an initrd",
        ));
    }
    let (mount_from, disks) = match ctx.rootfs {
        // A `block` annotation names a UFS image; without one the disk is the rootfs block
        // device, which urunc hands over only when it is ext2.
        GuestRootfs::Block if config.block.is_some() => (format!("ufs:{BLOCK_DEVICE_PREFIX}0"), 1),
        GuestRootfs::Block => (format!("ext2fs:{BLOCK_DEVICE_PREFIX}0"), 1),
        GuestRootfs::Shared(SharedFsKind::NineP) => (format!("p9fs:{ROOT_TAG}"), 0),
        GuestRootfs::Shared(SharedFsKind::Virtiofs) => {
            return Err(CoreError::invalid(
                "shared rootfs",
                SharedFsKind::Virtiofs.as_str(),
                "a freebsd guest reads its shared rootfs over 9p only",
            ))
        }
        GuestRootfs::Initrd | GuestRootfs::None => {
            return Err(CoreError::invalid(
                ANNOT_BLOCK,
                config.block.as_deref().unwrap_or_default(),
                "a freebsd guest needs a root: a block image, the rootfs block device \
                 (devmapper) or the rootfs shared over 9p (mountRootfs=true)",
            ))
        }
    };
    let (init, rest) = match ctx.args.split_first() {
        Some((init, rest)) => (Some(init), rest),
        None => (None, &[][..]),
    };
    if let Some(init) = init {
        init_word(init)?;
    }
    let urunit =
        init.is_some_and(|init| Path::new(&init.value).file_name() == Some(OsStr::new(URUNIT)));
    if let (false, Some(dropped)) = (urunit, rest.first()) {
        return Err(CoreError::invalid(
            &dropped.field,
            &dropped.value,
            "FreeBSD starts its init without arguments: only urunit (args[0] named urunit) \
             hands arguments to a program",
        ));
    }
    Ok(Boot {
        mount_from,
        init,
        rest,
        urunit,
        disks,
        network: ctx.network,
    })
}

/// args[0] as one kernel environment value and one entry of `init_path`'s list.
fn init_word(init: &GuestArg) -> Result<(), CoreError> {
    refuse_control_chars(&init.field, &init.value)?;
    let splits = |c: char| c.is_whitespace() || matches!(c, ',' | ':' | '"' | '\'');
    if init.value.is_empty() || init.value.chars().any(splits) {
        return Err(CoreError::invalid(
            &init.field,
            &init.value,
            "FreeBSD's init_path is one word of the kernel environment and a ':'-separated \
             list: the init program must be a non-empty path without spaces, ',', ':' or quotes",
        ));
    }
    Ok(())
}

/// urunc's subnet check: the gateway is not in the pod's subnet, so urunit must add the route
/// to it before the default route.
fn gateway_outside_subnet(net: &GuestNetwork) -> bool {
    let mask = u32::from(net.netmask());
    net.gateway
        .is_some_and(|gw| u32::from(gw) & mask != u32::from(net.ipv4) & mask)
}

pub(super) fn cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    let boot = boot(ctx)?;
    let mut params = vec![format!("vfs.root.mountfrom={}", boot.mount_from)];
    if let Some(init) = boot.init {
        params.push(format!("init_path={}", init.value));
    }
    if boot.urunit {
        params.push(format!("URUNIT_CONFIG={BLOCK_DEVICE_PREFIX}{}", boot.disks));
        if boot.network.is_some_and(gateway_outside_subnet) {
            params.push("URUNIT_DEFROUTE=1".into());
        }
    }
    Ok(params.join(" "))
}

/// urunit's configuration when urunit is the init; no file otherwise.
pub(super) fn config_drive(
    ctx: &GuestContext<'_>,
    work_dir: &Path,
) -> Result<Option<PlanFile>, CoreError> {
    let boot = boot(ctx)?;
    if !boot.urunit {
        return Ok(None);
    }
    let contents = urunit::render(&UrunitConfig {
        env: ctx.env,
        uid: ctx.process.uid,
        gid: ctx.process.gid,
        cwd: &ctx.process.cwd,
        argv: boot.rest,
        // The root disk is the kernel's, not urunit's; no other volume reaches the guest.
        block_mounts: &[],
        network: boot.network,
    })?;
    Ok(Some(PlanFile {
        path: work_dir.join(CONFIG_FILE_NAME),
        contents,
    }))
}
