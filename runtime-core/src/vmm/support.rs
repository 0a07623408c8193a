//! Which unikernel kinds each VMM runs: urunc's table (README "Supported
//! platforms", hermit on qemu included), FreeBSD on qemu and firecracker (the two VMMs
//! urunc's `FreeBSD.MonitorBlockCli` attaches its drives for; its README has no row for it
//! yet), plus cloud-hypervisor for Linux, which urunc lacks.
//! `SUPPORT.md` at the crate root shows the same table; a test keeps them equal.

use super::Arch;
use crate::config::{Hypervisor, UnikernelType};
use crate::error::CoreError;

static SUPPORTED_PAIRS: [(UnikernelType, Hypervisor); 14] = [
    (UnikernelType::Linux, Hypervisor::Qemu),
    (UnikernelType::Linux, Hypervisor::Firecracker),
    (UnikernelType::Linux, Hypervisor::CloudHypervisor),
    (UnikernelType::Unikraft, Hypervisor::Qemu),
    (UnikernelType::Unikraft, Hypervisor::Firecracker),
    (UnikernelType::Rumprun, Hypervisor::Hvt),
    (UnikernelType::Rumprun, Hypervisor::Spt),
    (UnikernelType::Mirage, Hypervisor::Qemu),
    (UnikernelType::Mirage, Hypervisor::Hvt),
    (UnikernelType::Mirage, Hypervisor::Spt),
    (UnikernelType::Mewz, Hypervisor::Qemu),
    (UnikernelType::Hermit, Hypervisor::Qemu),
    (UnikernelType::Freebsd, Hypervisor::Qemu),
    (UnikernelType::Freebsd, Hypervisor::Firecracker),
];

/// The support table: every (unikernel kind, VMM) pair `plan_vmm` accepts.
pub fn supported_pairs() -> &'static [(UnikernelType, Hypervisor)] {
    &SUPPORTED_PAIRS
}

/// Unikraft, Mewz and Hermit images exist for x86_64 only (urunc's table); FreeBSD boots
/// through its x86 PVH entry point (qemu's microvm is x86 only).
pub(crate) fn supports_arch(kind: &UnikernelType, arch: Arch) -> bool {
    match kind {
        UnikernelType::Unikraft
        | UnikernelType::Mewz
        | UnikernelType::Hermit
        | UnikernelType::Freebsd => arch == Arch::X86_64,
        UnikernelType::Linux | UnikernelType::Rumprun | UnikernelType::Mirage => true,
    }
}

pub(crate) fn check(
    kind: &UnikernelType,
    hypervisor: Hypervisor,
    arch: Arch,
) -> Result<(), CoreError> {
    let unsupported = |reason: String| CoreError::UnsupportedPair {
        unikernel_type: kind.as_str().to_owned(),
        hypervisor: hypervisor.as_str().to_owned(),
        reason,
    };
    if !SUPPORTED_PAIRS
        .iter()
        .any(|(k, h)| k == kind && *h == hypervisor)
    {
        let runs_on: Vec<&str> = SUPPORTED_PAIRS
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, h)| h.as_str())
            .collect();
        return Err(unsupported(format!(
            "{} runs on: {}",
            kind.as_str(),
            runs_on.join(", ")
        )));
    }
    if !supports_arch(kind, arch) {
        return Err(unsupported(format!(
            "{} guests exist for x86_64 only, not {arch:?}",
            kind.as_str()
        )));
    }
    Ok(())
}
