//! One fixed container, shared by the integration tests, so that golden
//! outputs differ only by what the test varies.

use runtime_core::{
    supports_block, Accel, Arch, GuestNetwork, GuestProcess, Hypervisor, UnikernelType,
    UruncConfig, VmmInput,
};
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub fn network() -> GuestNetwork {
    GuestNetwork {
        tap: "tap0_urunc".into(),
        mac: "02:42:0a:04:00:02".into(),
        ipv4: Ipv4Addr::new(10, 4, 0, 2),
        prefix_len: 24,
        gateway: Some(Ipv4Addr::new(10, 4, 0, 1)),
        mtu: 1500,
    }
}

pub fn config(kind: UnikernelType, hypervisor: Hypervisor) -> UruncConfig {
    UruncConfig {
        unikernel_type: kind,
        unikernel_version: None,
        binary: "/unikernel/kernel".into(),
        cmdline: String::new(),
        hypervisor,
        initrd: None,
        block: None,
        blk_mnt_point: None,
        use_dm_block: None,
        mount_rootfs: false,
        solo5_net_dev: None,
        solo5_blk_dev: None,
    }
}

/// The fixed input: network, 512 MiB, 2 vCPUs, an initrd for the kinds
/// that boot from one (Linux, Unikraft), a block device for those that take
/// one, seccomp, a control socket, TCG on x86_64 where the VMM has it.
pub fn input(kind: UnikernelType, hypervisor: Hypervisor) -> VmmInput {
    let uses_initrd = matches!(kind, UnikernelType::Linux | UnikernelType::Unikraft);
    let uses_block = supports_block(&kind) && kind != UnikernelType::Linux;
    VmmInput {
        config: config(kind, hypervisor),
        kernel: PathBuf::from("/run/urunc/c1/rootfs/unikernel/kernel"),
        initrd: uses_initrd.then(|| PathBuf::from("/run/urunc/c1/rootfs/unikernel/initrd")),
        block: uses_block.then(|| PathBuf::from("/run/urunc/c1/rootfs/unikernel/disk.img")),
        network: Some(network()),
        memory_limit_bytes: Some(512 * 1024 * 1024),
        vcpus: Some(2),
        env: vec!["PATH=/bin".into(), "GREETING=hello world".into()],
        args: vec!["/bin/app".into(), "-p".into(), "8080".into()],
        guest_process: GuestProcess {
            uid: 1000,
            gid: 1000,
            cwd: "/srv".into(),
        },
        // TCG where the VMM has it; the others have no TCG mode.
        accel: if runtime_core::has_tcg(hypervisor) {
            Accel::Tcg
        } else {
            Accel::Kvm
        },
        arch: Arch::X86_64,
        cpu_features_off: Vec::new(),
        solo5_manifest: None,
        shared_rootfs: None,
        firmware_dir: None,
        seccomp: true,
        control_socket: Some(PathBuf::from("/run/urunc/c1/control.sock")),
        work_dir: PathBuf::from("/run/urunc/c1"),
        extra_kernel_args: vec![],
    }
}
