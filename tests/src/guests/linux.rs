//! A Linux guest: Debian's cloud kernel (virtio drivers as modules) and a
//! busybox initramfs that loads them, configures eth0 from the command
//! line's `ip=`, prints a ready marker and answers HTTP on port 8080.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::initramfs::build_initramfs;
use super::kernel_modules::modules_with_dependencies;
use crate::error::{HarnessError, Result};
use crate::host_tools::static_busybox;

pub use super::initramfs::{HTTP_ANSWER, HTTP_PORT, POWER_BUTTON_MARKER, READY_MARKER};

/// The modules the guest needs: virtio over MMIO (qemu microvm) and PCI
/// (q35), the network and block drivers, and the ACPI power button with the
/// input device /init watches (a QMP `system_powerdown` powers it off).
pub const GUEST_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "button",
    "evdev",
];
/// Overrides the kernel choice: a path to a `vmlinuz-<release>` whose
/// modules are in `/lib/modules/<release>`.
pub const KERNEL_ENV: &str = "URUNC_TEST_KERNEL";

/// A bootable Linux guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxGuest {
    /// The kernel image (a bzImage; qemu `-kernel`).
    pub kernel: PathBuf,
    /// The initramfs written by [`linux_guest`] (uncompressed newc cpio).
    pub initrd: PathBuf,
    /// The kernel's release, e.g. "6.1.0-56-cloud-amd64".
    pub kernel_release: String,
}

/// The guest's network settings, as the kernel's `ip=` parameter says them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestNetwork {
    pub address: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
    pub hostname: String,
    pub device: String,
}

impl GuestNetwork {
    /// `ip=<client>::<gateway>:<netmask>:<hostname>:<device>:off`.
    pub fn ip_parameter(&self) -> String {
        let mask = match self.prefix_len {
            0 => 0,
            len => u32::MAX << (32 - u32::from(len.min(32))),
        };
        format!(
            "ip={}::{}:{}:{}:{}:off",
            self.address,
            self.gateway,
            Ipv4Addr::from(mask),
            self.hostname,
            self.device
        )
    }
}

/// Finds the kernel (see [`find_kernel`]) and writes `<dir>/initrd.cpio` with
/// the static busybox, /init and the [`GUEST_MODULES`] of that kernel.
pub fn linux_guest(dir: &Path) -> Result<LinuxGuest> {
    let (kernel, kernel_release) = find_kernel()?;
    let modules_dir = Path::new("/lib/modules").join(&kernel_release);
    let modules = modules_with_dependencies(&modules_dir, GUEST_MODULES)?;
    let initramfs = build_initramfs(&static_busybox()?, &modules)?;
    let initrd = dir.join("initrd.cpio");
    std::fs::write(&initrd, initramfs).map_err(HarnessError::io("write", &initrd))?;
    Ok(LinuxGuest {
        kernel,
        initrd,
        kernel_release,
    })
}

/// The kernel named by `$URUNC_TEST_KERNEL`, else the newest
/// `/boot/vmlinuz-*-cloud-amd64` (package linux-image-cloud-amd64) whose
/// modules are installed. Returns its path and release.
pub fn find_kernel() -> Result<(PathBuf, String)> {
    if let Some(explicit) = std::env::var_os(KERNEL_ENV) {
        let kernel = PathBuf::from(explicit);
        let release = release_of(&kernel).ok_or_else(|| HarnessError::Invalid {
            field: KERNEL_ENV,
            value: kernel.display().to_string(),
            reason: "the file name must be vmlinuz-<release>".into(),
        })?;
        return Ok((kernel, release));
    }
    let boot = std::fs::read_dir("/boot").map_err(HarnessError::io("list", "/boot"))?;
    let mut candidates: Vec<(PathBuf, String)> = boot
        .flatten()
        .map(|entry| entry.path())
        .filter_map(|path| release_of(&path).map(|release| (path, release)))
        .filter(|(_, release)| release.ends_with("-cloud-amd64"))
        .filter(|(_, release)| {
            Path::new("/lib/modules")
                .join(release)
                .join("modules.dep")
                .is_file()
        })
        .collect();
    candidates.sort_by_key(|(_, release)| version_key(release));
    candidates.pop().ok_or_else(|| HarnessError::Missing {
        what: "/boot/vmlinuz-*-cloud-amd64 with its /lib/modules".into(),
        hint: format!("apt-get install linux-image-cloud-amd64, or set {KERNEL_ENV}"),
    })
}

fn release_of(kernel: &Path) -> Option<String> {
    kernel
        .file_name()?
        .to_str()?
        .strip_prefix("vmlinuz-")
        .map(String::from)
}

/// "6.1.0-56-cloud-amd64" -> [6, 1, 0, 56]: numeric parts, for ordering.
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(['.', '-'])
        .map_while(|part| part.parse().ok())
        .collect()
}

/// A kernel command line for this guest under qemu: serial console, no
/// reboot on panic, `tsc_early_khz` (qemu microvm has neither HPET nor a PM
/// timer to calibrate the TSC against), then `ip=` and `urunc.poweroff=1`
/// when asked.
pub fn kernel_cmdline(network: Option<&GuestNetwork>, power_off: bool) -> Result<String> {
    let mut cmdline = format!(
        "console=ttyS0 panic=-1 reboot=t tsc_early_khz={}",
        crate::host_tools::host_tsc_khz()?
    );
    if let Some(network) = network {
        cmdline.push(' ');
        cmdline.push_str(&network.ip_parameter());
    }
    if power_off {
        cmdline.push_str(" urunc.poweroff=1");
    }
    Ok(cmdline)
}

/// The MAC the tests give a directly booted guest.
pub const GUEST_MAC: &str = "02:75:72:00:00:01";

/// The qemu argv (after the program name) for `guest` on microvm/TCG, the
/// way the tests boot it without the shim; `tap` wires a virtio-net NIC.
pub fn microvm_qemu_args(guest: &LinuxGuest, cmdline: &str, tap: Option<&str>) -> Vec<String> {
    let mut args = super::microvm::microvm_tcg_args(256);
    args.push(guest.kernel.display().to_string());
    args.push("-initrd".into());
    args.push(guest.initrd.display().to_string());
    args.push("-append".into());
    args.push(cmdline.into());
    if let Some(tap) = tap {
        args.push("-netdev".into());
        args.push(format!(
            "tap,id=net0,ifname={tap},script=no,downscript=no,vnet_hdr=on"
        ));
        args.push("-device".into());
        args.push(format!("virtio-net-device,netdev=net0,mac={GUEST_MAC}"));
    }
    args
}

#[cfg(test)]
mod self_test;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_parameter_has_the_kernel_layout() {
        let network = GuestNetwork {
            address: "10.200.0.2".parse().unwrap(),
            gateway: "10.200.0.1".parse().unwrap(),
            prefix_len: 24,
            hostname: "guest".into(),
            device: "eth0".into(),
        };
        assert_eq!(
            network.ip_parameter(),
            "ip=10.200.0.2::10.200.0.1:255.255.255.0:guest:eth0:off"
        );
    }

    #[test]
    fn orders_releases_numerically() {
        assert!(version_key("6.1.0-56-cloud-amd64") > version_key("6.1.0-9-cloud-amd64"));
    }
}
