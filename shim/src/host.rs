//! What the shim measures on the host for a VMM plan: the architecture and the TSC frequency
//! (the accelerator is `accel_probe`'s).

use runtime_core::Arch;

/// Where the VMM programs are looked up: the shim's PATH (containerd's), or the usual one.
pub fn vmm_search_path() -> String {
    std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".to_string())
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
