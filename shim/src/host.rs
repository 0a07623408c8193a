//! What the shim measures on the host for a VMM plan: the accelerator and the TSC frequency.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

use runtime_core::{Accel, Arch};

use crate::error::{Result, ShimError};

/// Forces the accelerator: `kvm` or `tcg`.
pub const ACCEL_ENV: &str = "URUNC_RS_ACCEL";

/// KVM when `/dev/kvm` opens and creates a VM, TCG otherwise; `URUNC_RS_ACCEL` overrides.
pub fn accelerator() -> Result<Accel> {
    match std::env::var(ACCEL_ENV).as_deref() {
        Ok("kvm") => return Ok(Accel::Kvm),
        Ok("tcg") => return Ok(Accel::Tcg),
        Ok(other) => return Err(ShimError::invalid(ACCEL_ENV, other, "expected kvm or tcg")),
        Err(_) => {}
    }
    Ok(if kvm_usable() { Accel::Kvm } else { Accel::Tcg })
}

fn kvm_usable() -> bool {
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    let Ok(kvm) = OpenOptions::new().read(true).write(true).open("/dev/kvm") else {
        return false;
    };
    // SAFETY: KVM_CREATE_VM takes an integer machine type and returns a new fd or -1.
    let vm = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return false;
    }
    // SAFETY: `vm` is the fd the ioctl just returned.
    unsafe { libc::close(vm) };
    true
}

pub fn arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    }
}

/// `tsc_early_khz=<kHz>` for a Linux guest: qemu's microvm has no HPET or PM timer to calibrate
/// the TSC against. `None` when /proc/cpuinfo gives no frequency (not x86).
pub fn tsc_early_khz_arg() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    tsc_khz_from_cpuinfo(&cpuinfo).map(|khz| format!("tsc_early_khz={khz}"))
}

fn tsc_khz_from_cpuinfo(cpuinfo: &str) -> Option<u64> {
    let line = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    (mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_frequency_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\ncpu MHz\t\t: 2399.998\ncache size\t: 1 KB\n";
        assert_eq!(tsc_khz_from_cpuinfo(cpuinfo), Some(2_399_998));
        assert_eq!(tsc_khz_from_cpuinfo("processor : 0\n"), None);
    }
}
