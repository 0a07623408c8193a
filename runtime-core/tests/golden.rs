//! Golden outputs: the exact argv (and firecracker JSON) for every supported
//! (unikernel, VMM) pair on one fixed container (see `common`). A change here
//! is a change of what the guest or the VMM sees: review it against urunc's
//! formats (pkg/unikontainers/{unikernels,hypervisors}) and the VMM's docs.

mod common;

use runtime_core::{
    plan_vmm, supported_pairs, Arch, GracefulStop, Hypervisor, PlanFile, UnikernelType, VmmPlan,
};
use std::path::PathBuf;

fn argv(plan: &VmmPlan) -> Vec<&str> {
    std::iter::once(plan.program.as_str())
        .chain(plan.args.iter().map(String::as_str))
        .collect()
}

fn plan(kind: UnikernelType, hypervisor: Hypervisor) -> VmmPlan {
    match plan_vmm(&common::input(kind.clone(), hypervisor)) {
        Ok(plan) => plan,
        Err(e) => panic!("{kind:?} on {hypervisor:?} must plan: {e}"),
    }
}

fn qmp() -> GracefulStop {
    GracefulStop::QmpPowerdown {
        socket: PathBuf::from("/run/urunc/c1/control.sock"),
    }
}

const LINUX_CMDLINE_QEMU: &str = "panic=-1 console=ttyS0 reboot=t root=/dev/ram0 rw \
ip=10.4.0.2::10.4.0.1:255.255.255.0:urunc:eth0:off PATH=/bin GREETING=\"hello world\" \
rdinit=/bin/app -- -p 8080";

#[test]
fn linux_on_qemu_x86_64() {
    let plan = plan(UnikernelType::Linux, Hypervisor::Qemu);
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-x86_64",
            "-M",
            "microvm",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-initrd",
            "/run/urunc/c1/rootfs/unikernel/initrd",
            "-append",
            LINUX_CMDLINE_QEMU,
            "-netdev",
            "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
            "-device",
            "virtio-net-device,netdev=n0,mac=02:42:0a:04:00:02",
            "-qmp",
            "unix:/run/urunc/c1/control.sock,server=on,wait=off",
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ]
    );
    assert_eq!(plan.guest_cmdline, LINUX_CMDLINE_QEMU);
    assert_eq!(plan.graceful_stop, qmp());
    assert!(plan.files.is_empty());
}

#[test]
fn linux_on_qemu_with_block_rootfs_and_kvm() {
    let mut input = common::input(UnikernelType::Linux, Hypervisor::Qemu);
    input.initrd = None;
    input.block = Some(PathBuf::from("/dev/mapper/snap,1"));
    input.accel = runtime_core::Accel::Kvm;
    input.control_socket = None;
    input.seccomp = false;
    if let Some(net) = input.network.as_mut() {
        net.mtu = 1450;
    }
    input.extra_kernel_args = vec!["tsc_early_khz=2000000".into()];
    let plan = plan_vmm(&input).expect("plans");
    let cmdline = "panic=-1 console=ttyS0 reboot=t root=/dev/vda rw \
ip=10.4.0.2::10.4.0.1:255.255.255.0:urunc:eth0:off tsc_early_khz=2000000 PATH=/bin \
GREETING=\"hello world\" init=/bin/app -- -p 8080";
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-x86_64",
            "-M",
            "microvm",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-append",
            cmdline,
            "-netdev",
            "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
            "-device",
            "virtio-net-device,netdev=n0,mac=02:42:0a:04:00:02,host_mtu=1450",
            "-drive",
            "file=/dev/mapper/snap,,1,if=none,id=d0,format=raw",
            "-device",
            "virtio-blk-device,drive=d0",
        ]
    );
    assert_eq!(plan.graceful_stop, GracefulStop::Signal);
}

#[test]
fn linux_on_qemu_aarch64() {
    let mut input = common::input(UnikernelType::Linux, Hypervisor::Qemu);
    input.arch = Arch::Aarch64;
    input.network = None;
    input.seccomp = false;
    input.control_socket = None;
    let plan = plan_vmm(&input).expect("plans");
    let cmdline = "panic=-1 console=ttyAMA0 root=/dev/ram0 rw PATH=/bin GREETING=\"hello world\" \
rdinit=/bin/app -- -p 8080";
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-aarch64",
            "-M",
            "virt",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-initrd",
            "/run/urunc/c1/rootfs/unikernel/initrd",
            "-append",
            cmdline,
        ]
    );
}

const FIRECRACKER_LINUX_JSON: &str = r#"{
  "boot-source": {
    "kernel_image_path": "/run/urunc/c1/rootfs/unikernel/kernel",
    "boot_args": "panic=-1 console=ttyS0 reboot=k root=/dev/ram0 rw ip=10.4.0.2::10.4.0.1:255.255.255.0:urunc:eth0:off PATH=/bin GREETING=\"hello world\" rdinit=/bin/app -- -p 8080",
    "initrd_path": "/run/urunc/c1/rootfs/unikernel/initrd"
  },
  "machine-config": {
    "vcpu_count": 2,
    "mem_size_mib": 512,
    "smt": false,
    "track_dirty_pages": false
  },
  "drives": [],
  "network-interfaces": [
    {
      "iface_id": "net1",
      "guest_mac": "02:42:0a:04:00:02",
      "host_dev_name": "tap0_urunc"
    }
  ]
}"#;

#[test]
fn linux_on_firecracker() {
    let plan = plan(UnikernelType::Linux, Hypervisor::Firecracker);
    assert_eq!(
        argv(&plan),
        [
            "firecracker",
            "--api-sock",
            "/run/urunc/c1/control.sock",
            "--log-path",
            "/proc/self/fd/2",
            "--level",
            "Warning",
            "--config-file",
            "/run/urunc/c1/fc.json"
        ]
    );
    assert_eq!(
        plan.files,
        [PlanFile {
            path: PathBuf::from("/run/urunc/c1/fc.json"),
            contents: FIRECRACKER_LINUX_JSON.into()
        }]
    );
    assert_eq!(
        plan.graceful_stop,
        GracefulStop::FirecrackerCtrlAltDel {
            socket: PathBuf::from("/run/urunc/c1/control.sock")
        }
    );
}

#[test]
fn firecracker_without_api_with_block_and_without_seccomp() {
    let mut input = common::input(UnikernelType::Linux, Hypervisor::Firecracker);
    input.control_socket = None;
    input.seccomp = false;
    input.initrd = None;
    input.network = None;
    input.block = Some(PathBuf::from("/dev/mapper/snap-1"));
    input.env.clear();
    input.args.clear();
    let plan = plan_vmm(&input).expect("plans");
    assert_eq!(
        argv(&plan),
        [
            "firecracker",
            "--no-api",
            "--log-path",
            "/proc/self/fd/2",
            "--level",
            "Warning",
            "--config-file",
            "/run/urunc/c1/fc.json",
            "--no-seccomp"
        ]
    );
    let expected = r#"{
  "boot-source": {
    "kernel_image_path": "/run/urunc/c1/rootfs/unikernel/kernel",
    "boot_args": "panic=-1 console=ttyS0 reboot=k root=/dev/vda rw"
  },
  "machine-config": {
    "vcpu_count": 2,
    "mem_size_mib": 512,
    "smt": false,
    "track_dirty_pages": false
  },
  "drives": [
    {
      "drive_id": "rootfs",
      "is_read_only": false,
      "is_root_device": true,
      "path_on_host": "/dev/mapper/snap-1"
    }
  ],
  "network-interfaces": []
}"#;
    assert_eq!(plan.files[0].contents, expected);
    assert_eq!(plan.graceful_stop, GracefulStop::Signal);
}

#[test]
fn linux_on_cloud_hypervisor() {
    let plan = plan(UnikernelType::Linux, Hypervisor::CloudHypervisor);
    let cmdline = "panic=-1 console=ttyS0 root=/dev/ram0 rw \
ip=10.4.0.2::10.4.0.1:255.255.255.0:urunc:eth0:off PATH=/bin GREETING=\"hello world\" \
rdinit=/bin/app -- -p 8080";
    assert_eq!(
        argv(&plan),
        [
            "cloud-hypervisor",
            "--kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "--initramfs",
            "/run/urunc/c1/rootfs/unikernel/initrd",
            "--cmdline",
            cmdline,
            "--memory",
            "size=512M",
            "--cpus",
            "boot=2",
            "--net",
            "tap=tap0_urunc,mac=02:42:0a:04:00:02",
            "--serial",
            "tty",
            "--console",
            "off",
        ]
    );
    assert_eq!(plan.graceful_stop, GracefulStop::Signal);
}

const UNIKRAFT_CMDLINE: &str = "/bin/app env.vars=[ PATH=/bin GREETING=\"hello world\" ] \
netdev.ip=10.4.0.2/24:10.4.0.1:8.8.8.8 vfs.fstab=[ \"initrd0:/:extract:::\" ] -- -p 8080";

#[test]
fn unikraft_on_qemu() {
    let plan = plan(UnikernelType::Unikraft, Hypervisor::Qemu);
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-initrd",
            "/run/urunc/c1/rootfs/unikernel/initrd",
            "-append",
            UNIKRAFT_CMDLINE,
            "-netdev",
            "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
            "-device",
            "virtio-net-pci,netdev=n0,mac=02:42:0a:04:00:02",
            "-qmp",
            "unix:/run/urunc/c1/control.sock,server=on,wait=off",
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ]
    );
}

#[test]
fn unikraft_before_0_16_1_uses_the_old_parameters() {
    let mut input = common::input(UnikernelType::Unikraft, Hypervisor::Qemu);
    input.config.unikernel_version = Some("0.15.0".into());
    input.env.clear();
    let plan = plan_vmm(&input).expect("plans");
    assert_eq!(
        plan.guest_cmdline,
        "/bin/app netdev.ipv4_addr=10.4.0.2 netdev.ipv4_gw_addr=10.4.0.1 \
netdev.ipv4_subnet_mask=255.255.255.0 vfs.rootfs=initrd -- -p 8080"
    );
}

#[test]
fn unikraft_on_firecracker() {
    let plan = plan(UnikernelType::Unikraft, Hypervisor::Firecracker);
    assert_eq!(
        argv(&plan),
        [
            "firecracker",
            "--api-sock",
            "/run/urunc/c1/control.sock",
            "--log-path",
            "/proc/self/fd/2",
            "--level",
            "Warning",
            "--config-file",
            "/run/urunc/c1/fc.json"
        ]
    );
    let boot_args = serde_json::to_string(UNIKRAFT_CMDLINE).expect("a string serialises");
    let expected = format!(
        r#"{{
  "boot-source": {{
    "kernel_image_path": "/run/urunc/c1/rootfs/unikernel/kernel",
    "boot_args": {boot_args},
    "initrd_path": "/run/urunc/c1/rootfs/unikernel/initrd"
  }},
  "machine-config": {{
    "vcpu_count": 2,
    "mem_size_mib": 512,
    "smt": false,
    "track_dirty_pages": false
  }},
  "drives": [],
  "network-interfaces": [
    {{
      "iface_id": "net1",
      "guest_mac": "02:42:0a:04:00:02",
      "host_dev_name": "tap0_urunc"
    }}
  ]
}}"#
    );
    assert_eq!(plan.files[0].contents, expected);
}

const RUMPRUN_CMDLINE: &str = r#"{"cmdline":"/bin/app -p 8080","net":{"if":"ukvmif0","cloner":"True","type":"inet","method":"static","addr":"10.4.0.2","mask":"1","gw":"10.4.0.1"},"blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}"#;

#[test]
fn rumprun_on_solo5_hvt_and_spt() {
    for (hypervisor, program) in [
        (Hypervisor::Hvt, "solo5-hvt"),
        (Hypervisor::Spt, "solo5-spt"),
    ] {
        let plan = plan(UnikernelType::Rumprun, hypervisor);
        assert_eq!(
            argv(&plan),
            [
                program,
                "--mem=512",
                "--net:tap=tap0_urunc",
                "--net-mac:tap=02:42:0a:04:00:02",
                "--block:rootfs=/run/urunc/c1/rootfs/unikernel/disk.img",
                "/run/urunc/c1/rootfs/unikernel/kernel",
                RUMPRUN_CMDLINE,
            ]
        );
        assert_eq!(plan.graceful_stop, GracefulStop::Signal);
    }
}

#[test]
fn rumprun_without_network_leaves_net_out() {
    let mut input = common::input(UnikernelType::Rumprun, Hypervisor::Hvt);
    input.network = None;
    let plan = plan_vmm(&input).expect("plans");
    assert_eq!(
        plan.guest_cmdline,
        r#"{"cmdline":"/bin/app -p 8080","blk":{"source":"etfs","path":"/dev/ld0a","fstype":"blk","mountpoint":"/data"}}"#
    );
}

const MIRAGE_CMDLINE: &str = "--ipv4=10.4.0.2/24 --ipv4-gateway=10.4.0.1 /bin/app -p 8080";

#[test]
fn mirage_on_solo5_hvt_and_spt() {
    for (hypervisor, program) in [
        (Hypervisor::Hvt, "solo5-hvt"),
        (Hypervisor::Spt, "solo5-spt"),
    ] {
        let plan = plan(UnikernelType::Mirage, hypervisor);
        assert_eq!(
            argv(&plan),
            [
                program,
                "--mem=512",
                "--net:service=tap0_urunc",
                "--net-mac:service=02:42:0a:04:00:02",
                "--block:storage=/run/urunc/c1/rootfs/unikernel/disk.img",
                "/run/urunc/c1/rootfs/unikernel/kernel",
                MIRAGE_CMDLINE,
            ]
        );
    }
}

#[test]
fn mirage_on_qemu() {
    let plan = plan(UnikernelType::Mirage, Hypervisor::Qemu);
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-append",
            MIRAGE_CMDLINE,
            "-netdev",
            "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
            "-device",
            "virtio-net-pci,netdev=n0,mac=02:42:0a:04:00:02",
            "-drive",
            "file=/run/urunc/c1/rootfs/unikernel/disk.img,if=none,id=d0,format=raw",
            "-device",
            "virtio-blk-pci,drive=d0",
            "-qmp",
            "unix:/run/urunc/c1/control.sock,server=on,wait=off",
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ]
    );
}

#[test]
fn mewz_on_qemu() {
    let plan = plan(UnikernelType::Mewz, Hypervisor::Qemu);
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-append",
            "ip=10.4.0.2/24 gateway=10.4.0.1",
            "-netdev",
            "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
            "-device",
            "virtio-net-pci,netdev=n0,mac=02:42:0a:04:00:02,disable-legacy=on,disable-modern=off",
            "-device",
            "isa-debug-exit,iobase=0x501,iosize=2",
            "-qmp",
            "unix:/run/urunc/c1/control.sock,server=on,wait=off",
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ]
    );
}

/// urunc's Hermit.CommandString: the network, `--`, the arguments; its net device is
/// modern-only (`disable-legacy=on`).
#[test]
fn hermit_on_qemu() {
    let kind = UnikernelType::parse("com.urunc.unikernel.unikernelType", "hermit");
    assert_eq!(kind.expect("urunc's spelling"), UnikernelType::Hermit);
    let plan = plan(UnikernelType::Hermit, Hypervisor::Qemu);
    assert_eq!(
        argv(&plan),
        [
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "512M",
            "-smp",
            "2",
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-append",
            "ip=10.4.0.2/24 gateway=10.4.0.1 -- /bin/app -p 8080",
            "-netdev",
            "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
            "-device",
            "virtio-net-pci,netdev=n0,mac=02:42:0a:04:00:02,disable-legacy=on",
            "-qmp",
            "unix:/run/urunc/c1/control.sock,server=on,wait=off",
            "-sandbox",
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
        ]
    );
}

/// Without a network there is nothing to separate: the arguments alone.
#[test]
fn hermit_without_network_writes_only_the_arguments() {
    let mut input = common::input(UnikernelType::Hermit, Hypervisor::Qemu);
    input.network = None;
    let plan = plan_vmm(&input).expect("plans");
    assert_eq!(plan.guest_cmdline, "/bin/app -p 8080");
}

/// urunc runs Hermit on qemu only, and on x86_64 only: any other pair is refused naming
/// the kind, the VMM and where it runs.
#[test]
fn hermit_elsewhere_is_refused_naming_both_values() {
    for hypervisor in [
        Hypervisor::Firecracker,
        Hypervisor::CloudHypervisor,
        Hypervisor::Hvt,
        Hypervisor::Spt,
    ] {
        let error = plan_vmm(&common::input(UnikernelType::Hermit, hypervisor))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("hermit") && error.contains(hypervisor.as_str()),
            "{error}"
        );
        assert!(error.contains("hermit runs on: qemu"), "{error}");
    }
    let mut input = common::input(UnikernelType::Hermit, Hypervisor::Qemu);
    input.arch = Arch::Aarch64;
    let error = plan_vmm(&input).expect_err("refused").to_string();
    assert!(error.contains("x86_64 only"), "{error}");
}

/// Every pair in the table has a golden test (above, or in its kind's file); this guards the
/// table itself so that adding a pair without a golden test fails here.
#[test]
fn every_supported_pair_has_a_golden_test() {
    let covered = [
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
        // In golden_freebsd.rs.
        (UnikernelType::Freebsd, Hypervisor::Qemu),
        (UnikernelType::Freebsd, Hypervisor::Firecracker),
    ];
    assert_eq!(supported_pairs(), covered);
}

/// SUPPORT.md shows the same table as `supported_pairs`.
#[test]
fn support_md_matches_the_table() {
    let markdown = include_str!("../SUPPORT.md");
    for (kind, hypervisor) in supported_pairs() {
        let row = format!("| {} | {} |", kind.as_str(), hypervisor.as_str());
        assert!(markdown.contains(&row), "SUPPORT.md lacks the row {row}");
    }
    let rows = markdown
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" | "))
        .count();
    // header + one row per pair
    assert_eq!(
        rows,
        supported_pairs().len() + 1,
        "SUPPORT.md has extra or missing rows"
    );
}

/// KVM with the features the probe saw this host's KVM refuse: `-cpu host,-<feature>`.
#[test]
fn qemu_on_kvm_turns_off_the_cpu_features_the_probe_found() {
    let mut input = common::input(UnikernelType::Unikraft, Hypervisor::Qemu);
    input.accel = runtime_core::Accel::Kvm;
    input.cpu_features_off = vec!["arch-capabilities".into()];
    let plan = plan_vmm(&input).expect("plans");
    let args = argv(&plan);
    let cpu = args.iter().position(|a| *a == "-cpu").expect("-cpu");
    assert_eq!(args[cpu + 1], "host,-arch-capabilities");
    input.cpu_features_off.clear();
    let plan = plan_vmm(&input).expect("plans");
    let args = argv(&plan);
    assert_eq!(args[cpu + 1], "host");
}

/// A VMM without TCG is never planned with TCG: the refusal names it.
#[test]
fn kvm_only_vmms_are_not_planned_under_tcg() {
    for (kind, hypervisor) in [
        (UnikernelType::Linux, Hypervisor::Firecracker),
        (UnikernelType::Linux, Hypervisor::CloudHypervisor),
        (UnikernelType::Rumprun, Hypervisor::Hvt),
    ] {
        let mut input = common::input(kind, hypervisor);
        input.accel = runtime_core::Accel::Tcg;
        let error = plan_vmm(&input).expect_err("refused").to_string();
        assert!(error.contains(hypervisor.as_str()), "{error}");
        assert!(error.contains("needs KVM"), "{error}");
    }
}

/// The solo5 tender gets the device names the unikernel's manifest declares (solo5's own
/// test_net calls its device `service0`), read from real ELF bytes.
#[test]
fn solo5_device_names_come_from_the_manifest() {
    use runtime_core::{elf_with_manifest, Solo5DeviceKind, Solo5Manifest};
    let elf = elf_with_manifest(&[
        ("service0", Solo5DeviceKind::Net),
        ("disk0", Solo5DeviceKind::Block),
    ]);
    let mut input = common::input(UnikernelType::Mirage, Hypervisor::Hvt);
    input.solo5_manifest = Solo5Manifest::from_elf("/unikernel/kernel", &elf).expect("valid");
    let plan = plan_vmm(&input).expect("plans");
    let args = argv(&plan);
    assert!(
        args.iter().any(|a| a.starts_with("--net:service0=")),
        "{args:?}"
    );
    assert!(
        args.iter().any(|a| a.starts_with("--net-mac:service0=")),
        "{args:?}"
    );
    assert!(
        args.iter().any(|a| a.starts_with("--block:disk0=")),
        "{args:?}"
    );
    // A manifest without a net device: the pod's network is not attached.
    let elf = elf_with_manifest(&[("disk0", Solo5DeviceKind::Block)]);
    input.solo5_manifest = Solo5Manifest::from_elf("/unikernel/kernel", &elf).expect("valid");
    let plan = plan_vmm(&input).expect("plans");
    assert!(
        !plan.args.iter().any(|a| a.starts_with("--net")),
        "{:?}",
        plan.args
    );
}

/// In a 1400-MTU pod each VMM gets what it needs to give the guest eth0's MTU and nothing
/// that needs privilege: qemu and firecracker are told it, cloud-hypervisor and solo5 read it
/// from the tap (created with eth0's MTU), so cloud-hypervisor gets no `mtu=` (it would set
/// the tap's MTU itself and fail with EPERM when confined).
#[test]
fn a_1400_mtu_pod_gives_every_vmm_what_it_needs_and_no_more() {
    let with_mtu = |kind: UnikernelType, hypervisor: Hypervisor| {
        let mut input = common::input(kind, hypervisor);
        input.network.as_mut().expect("network").mtu = 1400;
        plan_vmm(&input).expect("plans")
    };
    let ch = with_mtu(UnikernelType::Linux, Hypervisor::CloudHypervisor);
    let net = ch.args.iter().position(|a| a == "--net").expect("--net");
    assert!(!ch.args[net + 1].contains("mtu"), "{}", ch.args[net + 1]);
    let qemu = with_mtu(UnikernelType::Unikraft, Hypervisor::Qemu);
    assert!(
        qemu.args.iter().any(|a| a.ends_with(",host_mtu=1400")),
        "{:?}",
        qemu.args
    );
    let fc = with_mtu(UnikernelType::Linux, Hypervisor::Firecracker);
    assert!(
        fc.files[0].contents.contains("\"mtu\": 1400")
            || fc.files[0].contents.contains("\"mtu\":1400"),
        "{}",
        fc.files[0].contents
    );
    for hypervisor in [Hypervisor::Hvt, Hypervisor::Spt] {
        let solo5 = with_mtu(UnikernelType::Rumprun, hypervisor);
        assert!(
            !solo5.args.iter().any(|a| a.contains("mtu")),
            "{:?}",
            solo5.args
        );
    }
}
