//! solo5-hvt and solo5-spt (urunc's hvt.go / spt.go):
//!
//! ```text
//! solo5-hvt --mem=<MiB> [--net:<name>=<tap> --net-mac:<name>=<mac>]
//!           [--block:<name>=<path>] <kernel> [<guest cmdline>]
//! ```
//!
//! Device names are the ones the unikernel's manifest declares
//! (`solo5_devices`); without a manifest, the usual ones of each kind: rumprun
//! `tap` and `rootfs`, MirageOS `service` and `storage` (urunc's MonitorNetCli /
//! MonitorBlockCli). `--net-mac` is ours: the guest must answer as eth0, with
//! eth0's MAC, for the tc redirect to deliver the pod's traffic to it.
//! The guest command line is one argv element: solo5 joins everything after
//! the kernel with spaces, so this gives the guest the same string urunc's
//! space-split gave it, and solo5 stops parsing options at the kernel path
//! (always absolute), so a guest argument starting with `-` stays the guest's.
//! solo5 guests have one vCPU; the spec's vCPU count is not applicable.
//! Seccomp: spt always confines itself; for hvt the shim installs the filter
//! (urunc does it in-process before exec), nothing goes on the argv.

use super::solo5_devices;
use crate::config::{Hypervisor, UnikernelType};
use crate::error::CoreError;
use crate::vmm::{GracefulStop, PreparedGuest, VmmInput, VmmPlan};

struct DeviceNames {
    net: &'static str,
    block: &'static str,
}

fn device_names(kind: &UnikernelType) -> Result<DeviceNames, CoreError> {
    match kind {
        UnikernelType::Rumprun => Ok(DeviceNames {
            net: "tap",
            block: "rootfs",
        }),
        UnikernelType::Mirage => Ok(DeviceNames {
            net: "service",
            block: "storage",
        }),
        other => Err(CoreError::UnsupportedPair {
            unikernel_type: other.as_str().into(),
            hypervisor: "hvt/spt".into(),
            reason: "only rumprun and mirage are built for solo5".into(),
        }),
    }
}

/// The solo5 tender for `hypervisor` (hvt or spt).
pub(super) fn program(hypervisor: Hypervisor) -> &'static str {
    match hypervisor {
        Hypervisor::Spt => "solo5-spt",
        _ => "solo5-hvt",
    }
}

pub(super) fn plan(input: &VmmInput, guest: &PreparedGuest) -> Result<VmmPlan, CoreError> {
    let defaults = device_names(&input.config.unikernel_type)?;
    let attach = solo5_devices::choose(
        &input.config,
        input.solo5_manifest.as_ref(),
        (defaults.net, defaults.block),
        input.network.is_some(),
        input.block.is_some(),
    )?;
    let program = program(input.config.hypervisor);
    let mut args = vec![format!("--mem={}", guest.memory_mib)];
    if let (Some(net), Some(name)) = (&input.network, &attach.net) {
        args.push(format!("--net:{name}={}", net.tap));
        args.push(format!("--net-mac:{name}={}", net.mac));
    }
    if let (Some(block), Some(name)) = (&input.block, &attach.block) {
        args.push(format!("--block:{name}={}", block.display()));
    }
    args.push(input.kernel.display().to_string());
    if !guest.guest_cmdline.is_empty() {
        args.push(guest.guest_cmdline.clone());
    }
    Ok(VmmPlan {
        program: program.into(),
        args,
        files: Vec::new(),
        graceful_stop: GracefulStop::Signal,
        guest_cmdline: guest.guest_cmdline.clone(),
    })
}
