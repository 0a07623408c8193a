//! VMM drivers: each turns a prepared guest into its VMM's invocation, in the
//! format urunc uses (pkg/unikontainers/hypervisors/*.go) unless its doc says
//! why not.

mod cloud_hypervisor;
mod firecracker;
pub(crate) mod qemu;
mod solo5;
mod solo5_devices;

use crate::config::{Hypervisor, UnikernelType};
use crate::error::CoreError;
use crate::vmm::{Arch, PreparedGuest, VmmInput, VmmPlan};

/// What the VMM's virtual machine looks like to a Linux guest.
pub(crate) struct MachineTraits {
    pub console: &'static str,
    pub kernel_params: &'static [&'static str],
}

pub(crate) fn machine(hypervisor: Hypervisor, kind: &UnikernelType, arch: Arch) -> MachineTraits {
    match hypervisor {
        Hypervisor::Qemu => qemu::machine(kind, arch),
        Hypervisor::Firecracker => firecracker::machine(arch),
        Hypervisor::CloudHypervisor => cloud_hypervisor::machine(arch),
        // solo5 guests are never Linux; nothing reads these.
        Hypervisor::Hvt | Hypervisor::Spt => MachineTraits {
            console: "ttyS0",
            kernel_params: &[],
        },
    }
}

/// The program each VMM's plan runs, looked up in the VMM's PATH.
pub fn vmm_program(hypervisor: Hypervisor, arch: Arch) -> &'static str {
    match hypervisor {
        Hypervisor::Qemu => qemu::program(arch),
        Hypervisor::Firecracker => firecracker::PROGRAM,
        Hypervisor::CloudHypervisor => cloud_hypervisor::PROGRAM,
        Hypervisor::Hvt | Hypervisor::Spt => solo5::program(hypervisor),
    }
}

pub(crate) fn plan(input: &VmmInput, guest: &PreparedGuest) -> Result<VmmPlan, CoreError> {
    match input.config.hypervisor {
        Hypervisor::Qemu => Ok(qemu::plan(input, guest)),
        Hypervisor::Firecracker => firecracker::plan(input, guest),
        Hypervisor::Hvt | Hypervisor::Spt => solo5::plan(input, guest),
        Hypervisor::CloudHypervisor => cloud_hypervisor::plan(input, guest),
    }
}
