//! From a resolved configuration and what the shim found on the host to the
//! exact VMM invocation: program, argv, config files, how to stop it.

pub(crate) mod host_path;
mod resources;
mod support;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::config::UruncConfig;
use crate::drivers;
use crate::error::CoreError;
use crate::kinds::{self, GuestContext, GuestRootfs};
use crate::net::GuestNetwork;

pub use resources::{DEFAULT_MEMORY_MIB, MAX_MEMORY_MIB, MAX_VCPUS, MIN_MEMORY_MIB};
pub use support::supported_pairs;

/// How the VMM runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// The guest (and host) architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// What the shim knows when it is about to start the VMM. Host paths are
/// already resolved beneath the rootfs by the shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmmInput {
    pub config: UruncConfig,
    /// Host path of the guest kernel (urunc's `binary`).
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// A block image from the rootfs or the rootfs block device.
    pub block: Option<PathBuf>,
    pub network: Option<GuestNetwork>,
    /// The OCI spec's `linux.resources.memory.limit`; `None` or `<= 0` means
    /// the default of 256 MiB.
    pub memory_limit_bytes: Option<i64>,
    /// From the spec's CPU quota/period or cpuset; `None` means 1.
    pub vcpus: Option<u32>,
    /// `process.env`, `KEY=VALUE`.
    pub env: Vec<String>,
    /// `process.args`; when empty the cmdline annotation is used, as in urunc.
    pub args: Vec<String>,
    /// The spec's process user and working directory, for a guest whose init reads them.
    pub guest_process: GuestProcess,
    pub accel: Accel,
    /// qemu CPU features this host's KVM cannot set, turned off (`-cpu host,-<feature>`);
    /// see `AccelChoice`.
    pub cpu_features_off: Vec<String>,
    pub arch: Arch,
    /// The spec has `linux.seccomp`: the VMM is asked to confine itself too.
    pub seccomp: bool,
    /// qemu's QMP socket or firecracker's API socket, for a graceful stop.
    pub control_socket: Option<PathBuf>,
    /// Where the shim writes the files the plan lists.
    pub work_dir: PathBuf,
    /// Linux kernel parameters the shim measured, e.g. `tsc_early_khz=...`.
    pub extra_kernel_args: Vec<String>,
    /// A solo5 unikernel's device manifest, read from its binary by the shim; `None` for
    /// other VMMs or a binary without one (then the kind's usual names apply).
    pub solo5_manifest: Option<crate::solo5_manifest::Solo5Manifest>,
    /// The container rootfs shared with the guest as its root (`RootfsStorage::SharedFs`).
    pub shared_rootfs: Option<crate::shared_fs::SharedRootfs>,
    /// qemu's data folder from the node configuration's `data_path` (`-L`); `None`: qemu's
    /// built-in folder.
    pub firmware_dir: Option<PathBuf>,
}

/// Who the guest's program runs as and where: the spec's `process.user.uid`, `.gid` and
/// `process.cwd`. Only a guest whose init takes them from the host (FreeBSD's urunit) reads
/// them; the others run their program as the image built it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestProcess {
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
}

/// A file the shim must write (mode 0600, owned by the VMM's user) before it
/// starts the VMM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    pub path: PathBuf,
    pub contents: String,
}

/// How to ask the guest to power off before the shim resorts to SIGKILL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GracefulStop {
    /// Send QMP `system_powerdown` on this socket: it presses the ACPI power
    /// button. A Linux guest powers off only if its userspace acts on the
    /// button (acpid, systemd-logind, an init that listens); otherwise the
    /// caller's grace period ends in SIGKILL.
    QmpPowerdown { socket: PathBuf },
    /// `PUT /actions {"action_type": "SendCtrlAltDel"}` on firecracker's API
    /// socket (x86 only).
    FirecrackerCtrlAltDel { socket: PathBuf },
    /// No guest-level channel: deliver the signal to the VMM.
    Signal,
}

/// The complete, side-effect-free description of a VMM start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmmPlan {
    /// Program to execute, looked up in the VMM's PATH (e.g. `qemu-system-x86_64`).
    pub program: String,
    /// Arguments after argv[0].
    pub args: Vec<String>,
    pub files: Vec<PlanFile>,
    pub graceful_stop: GracefulStop,
    /// The guest command line, also embedded in `args` or `files`; for logs.
    pub guest_cmdline: String,
}

/// What every driver receives besides the input: numbers already checked and
/// the guest command line already built.
#[derive(Debug, Clone)]
pub(crate) struct PreparedGuest {
    pub guest_cmdline: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    /// A raw drive the guest's init reads its configuration from (FreeBSD's urunit),
    /// attached after every other block device; the plan's files hold its contents.
    pub config_drive: Option<PathBuf>,
}

/// Builds the guest command line (unikernel kind) and the VMM invocation
/// (driver). Refuses unsupported kind/VMM/architecture combinations, host
/// paths the VMM argv could misread, absurd resources, and configuration
/// values that could change the structure of the guest command line.
pub fn plan_vmm(input: &VmmInput) -> Result<VmmPlan, CoreError> {
    let config = &input.config;
    support::check(&config.unikernel_type, config.hypervisor, input.arch)?;
    if input.accel == Accel::Tcg && !crate::accel::has_tcg(config.hypervisor) {
        return Err(CoreError::NeedsKvm {
            hypervisor: config.hypervisor.as_str().to_owned(),
            reason: "the plan asks for TCG".to_owned(),
        });
    }
    host_path::check_input_paths(input)?;
    if let Some(net) = &input.network {
        net.validate()?;
    }
    if input.block.is_some() && !kinds::supports_block(&config.unikernel_type) {
        return Err(CoreError::invalid(
            "block",
            &path_text(input.block.as_ref()),
            format!(
                "a {} guest cannot use a block device",
                config.unikernel_type.as_str()
            ),
        ));
    }
    let memory_mib = resources::memory_mib(input.memory_limit_bytes)?;
    let vcpus = resources::vcpus(input.vcpus)?;
    if let Some(shared) = &input.shared_rootfs {
        check_shared_rootfs(input, shared)?;
    }
    let rootfs = if let Some(shared) = &input.shared_rootfs {
        GuestRootfs::Shared(shared.kind())
    } else if input.block.is_some() {
        GuestRootfs::Block
    } else if input.initrd.is_some() {
        GuestRootfs::Initrd
    } else {
        GuestRootfs::None
    };
    let machine = drivers::machine(config.hypervisor, &config.unikernel_type, input.arch);
    let ctx = GuestContext {
        config,
        network: input.network.as_ref(),
        env: &input.env,
        args: kinds::guest_args(&input.args, config),
        rootfs,
        initrd: input.initrd.is_some(),
        process: &input.guest_process,
        console: machine.console,
        machine_params: machine.kernel_params,
        extra_kernel_args: &input.extra_kernel_args,
    };
    let config_drive = kinds::config_drive(&ctx, &input.work_dir)?;
    let prepared = PreparedGuest {
        guest_cmdline: kinds::guest_cmdline(&ctx)?,
        memory_mib,
        vcpus,
        config_drive: config_drive.as_ref().map(|file| file.path.clone()),
    };
    let mut plan = drivers::plan(input, &prepared)?;
    plan.files.extend(config_drive);
    Ok(plan)
}

/// A shared rootfs only where urunc's choice allows one, never beside a block root disk.
fn check_shared_rootfs(
    input: &VmmInput,
    shared: &crate::shared_fs::SharedRootfs,
) -> Result<(), CoreError> {
    let config = &input.config;
    if let Err(reason) = crate::shared_fs::choose(config, true) {
        return Err(CoreError::invalid(
            "shared rootfs",
            shared.kind().as_str(),
            reason,
        ));
    }
    if input.block.is_some() {
        return Err(CoreError::invalid(
            "block",
            &path_text(input.block.as_ref()),
            "the guest's root is the shared rootfs: it cannot also have a root disk",
        ));
    }
    Ok(())
}

fn path_text(path: Option<&PathBuf>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}
