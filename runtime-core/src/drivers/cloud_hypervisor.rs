//! cloud-hypervisor (not in urunc): its documented CLI,
//!
//! ```text
//! cloud-hypervisor --kernel <k> [--initramfs <i>] --cmdline <c>
//!   --memory size=<MiB>M --cpus boot=<n> [--net tap=<tap>,mac=<mac>]
//!   [--disk path=<p>] --serial tty --console off [--seccomp false]
//! ```
//!
//! Its option values are comma-separated `key=value` lists with no escape, so
//! a host path with a comma is refused. The console is the serial port on the
//! container's stdio. cloud-hypervisor confines itself with seccomp by
//! default; like the other VMMs it does so only when the spec asks.
//! A graceful stop would need its REST API (`power-button`); not wired yet,
//! so the stop is a signal.

use super::MachineTraits;
use crate::error::CoreError;
use crate::vmm::host_path::refuse_comma;
use crate::vmm::{Arch, GracefulStop, PreparedGuest, VmmInput, VmmPlan};

pub(super) const PROGRAM: &str = "cloud-hypervisor";

pub(super) fn machine(arch: Arch) -> MachineTraits {
    MachineTraits {
        console: match arch {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        },
        kernel_params: &[],
    }
}

pub(super) fn plan(input: &VmmInput, guest: &PreparedGuest) -> Result<VmmPlan, CoreError> {
    let mut args = vec!["--kernel".into(), input.kernel.display().to_string()];
    if let Some(initrd) = &input.initrd {
        args.extend(["--initramfs".into(), initrd.display().to_string()]);
    }
    args.extend([
        "--cmdline".into(),
        guest.guest_cmdline.clone(),
        "--memory".into(),
        format!("size={}M", guest.memory_mib),
        "--cpus".into(),
        format!("boot={}", guest.vcpus),
    ]);
    if let Some(net) = &input.network {
        // No `mtu=`: cloud-hypervisor would set the tap's MTU itself (EPERM without
        // CAP_NET_ADMIN). The tap already has eth0's MTU, and cloud-hypervisor advertises the
        // tap's MTU to the guest (VIRTIO_NET_F_MTU).
        args.extend(["--net".into(), format!("tap={},mac={}", net.tap, net.mac)]);
    }
    if let Some(block) = &input.block {
        refuse_comma("block", block)?;
        args.extend(["--disk".into(), format!("path={}", block.display())]);
    }
    args.extend(["--serial", "tty", "--console", "off"].map(String::from));
    if !input.seccomp {
        args.extend(["--seccomp".into(), "false".into()]);
    }
    Ok(VmmPlan {
        program: PROGRAM.into(),
        args,
        files: Vec::new(),
        graceful_stop: GracefulStop::Signal,
        guest_cmdline: guest.guest_cmdline.clone(),
    })
}
