//! firecracker: `--no-api --config-file <work_dir>/fc.json`, or with the
//! shim's control socket `--api-sock <socket> --config-file ...` so that a
//! graceful stop can send Ctrl-Alt-Del (x86 only: firecracker has no such
//! action on aarch64, where the socket is not opened and the stop is a
//! signal). `--no-seccomp` when the spec has no seccomp, as urunc does.
//!
//! The JSON follows firecracker's `--config-file` schema, as urunc writes it:
//! `boot-source` (kernel_image_path, boot_args, initrd_path),
//! `machine-config` (vcpu_count, mem_size_mib, smt, track_dirty_pages),
//! `drives` (the block device as the root device), `network-interfaces`
//! (iface_id, guest_mac, host_dev_name, and `mtu` when eth0's is not 1500:
//! the guest would otherwise send frames the pod network drops; `mtu` needs
//! a firecracker recent enough to know it). Departures from urunc: the file
//! is per container (urunc writes `/tmp/fc.json` for everyone), the vCPU
//! count is the spec's, and no network interface is listed without a
//! network.
//!
//! firecracker accepts 1 vCPU or an even number up to 32 (its API schema):
//! an odd count is rounded down to the even number below it and a larger
//! one capped at 32, never up, so the guest never gets more vCPUs than the
//! spec's CPU limit (the cgroup enforces the limit either way).
//!
//! A FreeBSD guest's drives are urunc's: `FC<id>` for its disk, then
//! `FC_URUNIT_CONFIG` for urunit's configuration, none of them the root device
//! (firecracker would add Linux's `root=/dev/vda` to the boot arguments; the guest
//! finds its root in `vfs.root.mountfrom`).

use serde::Serialize;
use std::path::PathBuf;

use super::MachineTraits;
use crate::config::{Hypervisor, UnikernelType};
use crate::error::CoreError;
use crate::kinds::freebsd;
use crate::vmm::{Arch, GracefulStop, PlanFile, PreparedGuest, VmmInput, VmmPlan};

pub(super) const PROGRAM: &str = "firecracker";
/// The least severe of firecracker's own log lines it prints (see `plan`).
const LOG_LEVEL: &str = "Warning";
/// Where firecracker writes its own log lines: its stderr (see `plan`).
const LOG_PATH: &str = "/proc/self/fd/2";
const CONFIG_FILE_NAME: &str = "fc.json";
const MAX_VCPUS: u32 = 32;

#[derive(Serialize)]
struct FirecrackerConfig {
    #[serde(rename = "boot-source")]
    boot_source: BootSource,
    #[serde(rename = "machine-config")]
    machine_config: MachineConfig,
    drives: Vec<Drive>,
    #[serde(rename = "network-interfaces")]
    network_interfaces: Vec<NetworkInterface>,
}

#[derive(Serialize)]
struct BootSource {
    kernel_image_path: String,
    boot_args: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    initrd_path: Option<String>,
}

#[derive(Serialize)]
struct MachineConfig {
    vcpu_count: u32,
    mem_size_mib: u64,
    smt: bool,
    track_dirty_pages: bool,
}

#[derive(Serialize)]
struct Drive {
    drive_id: String,
    is_read_only: bool,
    is_root_device: bool,
    path_on_host: String,
}

#[derive(Serialize)]
struct NetworkInterface {
    iface_id: &'static str,
    guest_mac: String,
    host_dev_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
}

/// 1, or the largest even count not above the request, at most 32.
fn firecracker_vcpus(requested: u32) -> u32 {
    match requested.min(MAX_VCPUS) {
        0 | 1 => 1,
        n => n - n % 2,
    }
}

pub(super) fn machine(arch: Arch) -> MachineTraits {
    match arch {
        // Ctrl-Alt-Del reaches the guest through the i8042; `reboot=k` makes
        // Linux reset through it too, which firecracker turns into an exit.
        Arch::X86_64 => MachineTraits {
            console: "ttyS0",
            kernel_params: &["reboot=k"],
        },
        Arch::Aarch64 => MachineTraits {
            console: "ttyS0",
            kernel_params: &[],
        },
    }
}

pub(super) fn plan(input: &VmmInput, guest: &PreparedGuest) -> Result<VmmPlan, CoreError> {
    let config = FirecrackerConfig {
        boot_source: BootSource {
            kernel_image_path: input.kernel.display().to_string(),
            boot_args: guest.guest_cmdline.clone(),
            initrd_path: input.initrd.as_ref().map(|p| p.display().to_string()),
        },
        machine_config: MachineConfig {
            vcpu_count: firecracker_vcpus(guest.vcpus),
            mem_size_mib: guest.memory_mib,
            smt: false,
            track_dirty_pages: false,
        },
        drives: drives(input, guest),
        network_interfaces: input
            .network
            .iter()
            .map(|net| NetworkInterface {
                iface_id: "net1",
                guest_mac: net.mac.clone(),
                host_dev_name: net.tap.clone(),
                mtu: (net.mtu != 1500).then_some(net.mtu),
            })
            .collect(),
    };
    let contents = serde_json::to_string_pretty(&config).map_err(|e| {
        CoreError::invalid("firecracker config", &guest.guest_cmdline, e.to_string())
    })?;
    let config_path: PathBuf = input.work_dir.join(CONFIG_FILE_NAME);
    let api_socket = input
        .control_socket
        .as_ref()
        .filter(|_| input.arch == Arch::X86_64);
    let mut args: Vec<String> = match api_socket {
        Some(socket) => vec!["--api-sock".into(), socket.display().to_string()],
        None => vec!["--no-api".into()],
    };
    // firecracker's logger writes to its stdout, which is the guest's serial console as
    // containerd sees it: its lines landed in the middle of the guest's (at its default level,
    // Info, every start-up; a warning such as "Requested a vCPU run with immediate_exit
    // enabled" in 3 of 12 boots here). Its stderr instead: the container's stderr, where the
    // shim's early-exit report reads them too. The confined root always has its proc.
    args.extend([
        "--log-path".into(),
        LOG_PATH.into(),
        "--level".into(),
        LOG_LEVEL.into(),
        "--config-file".into(),
        config_path.display().to_string(),
    ]);
    if !input.seccomp {
        args.push("--no-seccomp".into());
    }
    let graceful_stop = match api_socket {
        Some(socket) => GracefulStop::FirecrackerCtrlAltDel {
            socket: socket.clone(),
        },
        None => GracefulStop::Signal,
    };
    Ok(VmmPlan {
        program: PROGRAM.into(),
        args,
        files: vec![PlanFile {
            path: config_path,
            contents,
        }],
        graceful_stop,
        guest_cmdline: guest.guest_cmdline.clone(),
    })
}

/// The block device as the root device; for FreeBSD, urunc's drives (see the module).
fn drives(input: &VmmInput, guest: &PreparedGuest) -> Vec<Drive> {
    let drive = |drive_id: String, is_root_device: bool, path: &std::path::Path| Drive {
        drive_id,
        is_read_only: false,
        is_root_device,
        path_on_host: path.display().to_string(),
    };
    if input.config.unikernel_type != UnikernelType::Freebsd {
        return input
            .block
            .iter()
            .map(|block| drive("rootfs".into(), true, block.as_path()))
            .collect();
    }
    let disk_id = freebsd::drive_id(Hypervisor::Firecracker, freebsd::ROOT_DRIVE);
    let disks = input
        .block
        .iter()
        .map(|block| drive(disk_id.clone(), false, block.as_path()));
    let config = guest
        .config_drive
        .iter()
        .map(|c| drive(freebsd::FIRECRACKER_CONFIG_DRIVE.into(), false, c.as_path()));
    disks.chain(config).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpus_are_one_or_even_and_never_rounded_up() {
        let expected = [
            (1, 1),
            (2, 2),
            (3, 2),
            (7, 6),
            (32, 32),
            (33, 32),
            (255, 32),
        ];
        for (requested, given) in expected {
            assert_eq!(
                firecracker_vcpus(requested),
                given,
                "{requested} vCPUs requested"
            );
        }
    }
}
