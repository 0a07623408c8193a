//! Unikernel kinds: each one turns the container's configuration into the
//! command line its guest parses, in the format urunc builds
//! (pkg/unikontainers/unikernels/*.go).

pub(crate) mod freebsd;
mod hermit;
mod linux;
mod mewz;
mod mirage;
mod rumprun;
mod unikraft;
mod urunit;
mod words;

use crate::config::{UnikernelType, UruncConfig, ANNOT_CMDLINE};
use crate::error::CoreError;
use crate::net::GuestNetwork;
use crate::vmm::{GuestProcess, PlanFile};

/// Where the guest's root filesystem comes from, as urunc's `RootFSType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GuestRootfs {
    /// The guest lives in its kernel image (or brings its own storage).
    None,
    Initrd,
    /// A virtio block device; wins over an initrd, as in urunc.
    Block,
    /// The container rootfs over 9p or virtiofs; like a block device, it wins over an
    /// initrd, which is then the guest's early userspace (it loads the filesystem's modules
    /// and mounts `root=`).
    Shared(crate::shared_fs::SharedFsKind),
}

/// One argument of the guest's program with the spec field it came from, so
/// that a refusal can name `process.args[2]` or the cmdline annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuestArg {
    pub field: String,
    pub value: String,
}

/// Everything a kind needs from the plan to write its command line.
#[derive(Debug, Clone)]
pub(crate) struct GuestContext<'a> {
    pub config: &'a UruncConfig,
    pub network: Option<&'a GuestNetwork>,
    pub env: &'a [String],
    pub args: Vec<GuestArg>,
    pub rootfs: GuestRootfs,
    /// An initrd is configured (when a disk or a share is the root, it is early userspace).
    pub initrd: bool,
    pub process: &'a GuestProcess,
    /// The serial console device the VMM's machine provides (`ttyS0`,
    /// `ttyAMA0`); only Linux needs to be told.
    pub console: &'static str,
    /// Kernel parameters the machine needs (e.g. how to reboot); Linux only.
    pub machine_params: &'static [&'static str],
    /// Parameters the shim measured (e.g. `tsc_early_khz=`); Linux only, as
    /// they are Linux kernel parameters.
    pub extra_kernel_args: &'a [String],
}

/// The guest's arguments as urunc takes them: the spec's `process.args` when
/// there are any, otherwise the cmdline annotation split on whitespace.
pub(crate) fn guest_args(process_args: &[String], config: &UruncConfig) -> Vec<GuestArg> {
    if !process_args.is_empty() {
        return process_args
            .iter()
            .enumerate()
            .map(|(i, value)| GuestArg {
                field: format!("process.args[{i}]"),
                value: value.clone(),
            })
            .collect();
    }
    config
        .cmdline
        .split_whitespace()
        .map(|word| GuestArg {
            field: ANNOT_CMDLINE.to_owned(),
            value: word.to_owned(),
        })
        .collect()
}

/// Builds the guest command line for the configured kind.
pub(crate) fn guest_cmdline(ctx: &GuestContext<'_>) -> Result<String, CoreError> {
    match ctx.config.unikernel_type {
        UnikernelType::Linux => linux::cmdline(ctx),
        UnikernelType::Unikraft => unikraft::cmdline(ctx),
        UnikernelType::Rumprun => rumprun::cmdline(ctx),
        UnikernelType::Mirage => mirage::cmdline(ctx),
        UnikernelType::Mewz => Ok(mewz::cmdline(ctx)),
        UnikernelType::Hermit => hermit::cmdline(ctx),
        UnikernelType::Freebsd => freebsd::cmdline(ctx),
    }
}

/// The file the guest's init reads its configuration from, as a raw drive the VMM attaches
/// after every other block device, in `work_dir`; `None` for the kinds whose command line
/// carries everything.
pub(crate) fn config_drive(
    ctx: &GuestContext<'_>,
    work_dir: &std::path::Path,
) -> Result<Option<PlanFile>, CoreError> {
    match ctx.config.unikernel_type {
        UnikernelType::Freebsd => freebsd::config_drive(ctx, work_dir),
        UnikernelType::Linux
        | UnikernelType::Unikraft
        | UnikernelType::Rumprun
        | UnikernelType::Mirage
        | UnikernelType::Mewz
        | UnikernelType::Hermit => Ok(None),
    }
}

/// Whether the kind can use a block device (urunc's `SupportsBlock`). The
/// shim asks before it offers the container rootfs as a block device.
pub fn supports_block(kind: &UnikernelType) -> bool {
    match kind {
        UnikernelType::Linux
        | UnikernelType::Rumprun
        | UnikernelType::Mirage
        | UnikernelType::Freebsd => true,
        UnikernelType::Unikraft | UnikernelType::Mewz | UnikernelType::Hermit => false,
    }
}
