//! qemu.
//!
//! Machine: a Linux guest on x86_64 gets `-M microvm` (no PCI, no firmware:
//! the fastest boot qemu has; virtio devices are `virtio-*-device` on
//! virtio-mmio); a FreeBSD guest gets urunc's
//! `-M microvm,acpi=on,pic=on,pit=on,rtc=on` (FreeBSD reads the ACPI tables, it
//! has no MP table to fall back on, and urunc saw qemu 8.2/9.1 crash with
//! `pic=off` once FreeBSD set up the I/O APIC), its disks as urunc names them
//! (`serial=<id>`, which the guest sees) with urunit's configuration drive
//! last; the other kinds get `-M pc` with virtio-pci devices, which
//! is what their images expect (urunc uses qemu's default `pc` machine);
//! aarch64 gets `-M virt`. Departures from urunc, each for a reason:
//!
//! * `-accel tcg` with `-cpu max` when KVM is not usable; KVM uses `-cpu host`
//!   (urunc's choice, the fastest guest). On nested, paravirtual KVM such as
//!   these test machines, `-cpu host` aborts at the first vCPU reset ("failed
//!   to set MSR 0x10a"); hiding `arch-capabilities` avoids that but makes
//!   every Linux guest on real Intel hardware assume it is vulnerable and turn
//!   on costly mitigations, so a feature is turned off (`-cpu host,-<f>`) only
//!   when the shim's probe of qemu saw this host's KVM refuse it (`accel`).
//! * `-nodefaults -no-user-config -nographic -serial stdio`: no default
//!   devices or config files, the serial console on the container's stdio.
//! * `-no-reboot` for every kind, so a guest reboot (or a Linux panic with
//!   `panic=-1`) ends the VMM and the container exits.
//! * `-m <MiB>M` with the exact limit (urunc: MB read as MiB).
//! * `-netdev tap,...,vnet_hdr=on`: the tap is created with a vnet header.
//!   The guest MAC is eth0's, so frames the tc redirect brings are accepted;
//!   `host_mtu` tells the guest eth0's MTU when it is not 1500.
//! * Block device paths are escaped for qemu's option parser (`,` → `,,`).
//! * A shared rootfs (9p, virtiofs) gets the devices `shared_fs` plans.
//! * `-L <data_path>/qemu` only when the node configuration sets `data_path`
//!   (urunc always passes `-L /usr/share/qemu`, the folder it mounts the data
//!   at; here the folder keeps its host path in the confined root).
//! * `-qmp unix:<socket>,server=on,wait=off` when the shim wants a graceful
//!   stop: QMP `system_powerdown` presses the ACPI power button.

use std::path::Path;

use super::MachineTraits;
use crate::config::UnikernelType;
use crate::kinds::freebsd;
use crate::shared_fs::qemu_escaped;
use crate::vmm::{Accel, Arch, GracefulStop, PreparedGuest, VmmInput, VmmPlan};

const SECCOMP_SANDBOX: &str =
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Machine {
    Microvm,
    /// microvm with its legacy PC devices and ACPI on, for FreeBSD.
    MicrovmAcpi,
    Pc,
    Virt,
}

impl Machine {
    fn for_guest(kind: &UnikernelType, arch: Arch) -> Machine {
        match (arch, kind) {
            (Arch::Aarch64, _) => Machine::Virt,
            (Arch::X86_64, UnikernelType::Linux) => Machine::Microvm,
            (Arch::X86_64, UnikernelType::Freebsd) => Machine::MicrovmAcpi,
            (Arch::X86_64, _) => Machine::Pc,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm",
            Machine::MicrovmAcpi => "microvm,acpi=on,pic=on,pit=on,rtc=on",
            Machine::Pc => "pc",
            Machine::Virt => "virt",
        }
    }

    /// microvm's virtio-mmio transport or PCI.
    fn device_suffix(self) -> &'static str {
        match self {
            Machine::Microvm | Machine::MicrovmAcpi => "device",
            Machine::Pc | Machine::Virt => "pci",
        }
    }
}

pub(super) fn machine(kind: &UnikernelType, arch: Arch) -> MachineTraits {
    match Machine::for_guest(kind, arch) {
        // microvm has neither ACPI reset nor a keyboard controller a Linux
        // reboot could use: a triple fault is the reset it does have.
        Machine::Microvm => MachineTraits {
            console: "ttyS0",
            kernel_params: &["reboot=t"],
        },
        Machine::MicrovmAcpi | Machine::Pc => MachineTraits {
            console: "ttyS0",
            kernel_params: &[],
        },
        Machine::Virt => MachineTraits {
            console: "ttyAMA0",
            kernel_params: &[],
        },
    }
}

/// The qemu binary for a guest of `arch` (the host's: no cross-architecture emulation).
pub fn program(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Aarch64 => "qemu-system-aarch64",
    }
}

pub(super) fn plan(input: &VmmInput, guest: &PreparedGuest) -> VmmPlan {
    let kind = &input.config.unikernel_type;
    let machine = Machine::for_guest(kind, input.arch);
    let program = program(input.arch);
    let (accel, cpu) = match input.accel {
        Accel::Kvm => (
            "kvm",
            std::iter::once("host".to_owned())
                .chain(input.cpu_features_off.iter().map(|f| format!("-{f}")))
                .collect::<Vec<_>>()
                .join(","),
        ),
        Accel::Tcg => ("tcg", "max".to_owned()),
    };
    let (machine_props, shared_args) = match &input.shared_rootfs {
        Some(shared) => {
            crate::shared_fs::qemu_args(shared, kind, machine.device_suffix(), guest.memory_mib)
        }
        None => (Vec::new(), Vec::new()),
    };
    let machine_arg = std::iter::once(machine.name().to_owned())
        .chain(machine_props)
        .collect::<Vec<_>>()
        .join(",");
    let mut args: Vec<String> = ["-M", &machine_arg, "-accel", accel, "-cpu", &cpu]
        .map(String::from)
        .to_vec();
    if let Some(dir) = &input.firmware_dir {
        args.extend(["-L".into(), dir.display().to_string()]);
    }
    args.extend([
        "-m".into(),
        format!("{}M", guest.memory_mib),
        "-smp".into(),
        guest.vcpus.to_string(),
    ]);
    args.extend(
        [
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
        ]
        .map(String::from),
    );
    args.extend(["-kernel".into(), input.kernel.display().to_string()]);
    if let Some(initrd) = &input.initrd {
        args.extend(["-initrd".into(), initrd.display().to_string()]);
    }
    args.extend(["-append".into(), guest.guest_cmdline.clone()]);
    if let Some(net) = &input.network {
        args.extend([
            "-netdev".into(),
            format!(
                "tap,id=n0,ifname={},script=no,downscript=no,vnet_hdr=on",
                net.tap
            ),
        ]);
        let mut device = format!(
            "virtio-net-{},netdev=n0,mac={}",
            machine.device_suffix(),
            net.mac
        );
        match kind {
            // Mewz drives only a modern (virtio 1.0) device, as urunc configures it.
            UnikernelType::Mewz => device.push_str(",disable-legacy=on,disable-modern=off"),
            // So does Hermit (urunc's Hermit.MonitorNetCli).
            UnikernelType::Hermit => device.push_str(",disable-legacy=on"),
            _ => {}
        }
        if net.mtu != 1500 {
            device.push_str(&format!(",host_mtu={}", net.mtu));
        }
        args.extend(["-device".into(), device]);
    }
    if *kind == UnikernelType::Freebsd {
        let disks = input.block.iter().map(|block| (freebsd::ROOT_DRIVE, block));
        let config = guest.config_drive.iter();
        for (id, path) in disks.chain(config.map(|c| (freebsd::QEMU_CONFIG_DRIVE, c))) {
            args.extend(serial_drive(id, path, machine.device_suffix()));
        }
    } else if let Some(block) = &input.block {
        let escaped = qemu_escaped(block);
        args.extend([
            "-drive".into(),
            format!("file={escaped},if=none,id=d0,format=raw"),
            "-device".into(),
            format!("virtio-blk-{},drive=d0", machine.device_suffix()),
        ]);
    }
    args.extend(shared_args);
    if *kind == UnikernelType::Mewz {
        // Mewz powers off by writing to this port, as urunc configures it.
        args.extend([
            "-device".into(),
            "isa-debug-exit,iobase=0x501,iosize=2".into(),
        ]);
    }
    let graceful_stop = match &input.control_socket {
        Some(socket) => {
            args.extend([
                "-qmp".into(),
                format!("unix:{},server=on,wait=off", socket.display()),
            ]);
            GracefulStop::QmpPowerdown {
                socket: socket.clone(),
            }
        }
        None => GracefulStop::Signal,
    };
    if input.seccomp {
        args.extend(["-sandbox".into(), SECCOMP_SANDBOX.into()]);
    }
    VmmPlan {
        program: program.into(),
        args,
        files: Vec::new(),
        graceful_stop,
        guest_cmdline: guest.guest_cmdline.clone(),
    }
}

/// A disk the guest tells apart by its serial, in urunc's form (`qemuMMIOBlock`).
fn serial_drive(id: &str, path: &Path, device_suffix: &str) -> [String; 4] {
    [
        "-device".into(),
        format!("virtio-blk-{device_suffix},serial={id},drive={id}"),
        "-drive".into(),
        format!("format=raw,if=none,id={id},file={}", qemu_escaped(path)),
    ]
}
