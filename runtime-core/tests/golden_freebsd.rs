//! Golden outputs of the `freebsd` kind (urunc's unikernels/freebsd.go and its tests): the
//! qemu argv and firecracker JSON, the boot arguments for each root, and the exact bytes of
//! urunit's configuration drive, on the fixed container of `common`.

mod common;

use runtime_core::{
    plan_vmm, Arch, Hypervisor, PlanFile, SharedRootfs, UnikernelType, VmmInput, VmmPlan,
    ANNOT_BLOCK, ANNOT_INITRD,
};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::PathBuf;

const CONFIG_PATH: &str = "/run/urunc/c1/urunit.conf";
const DISK: &str = "/run/urunc/c1/rootfs/unikernel/disk.img";
const SECTOR: usize = 512;

/// The common container as urunc's FreeBSD images run it: urunit as init, a UFS disk image
/// named by the `block` annotation.
fn input(hypervisor: Hypervisor) -> VmmInput {
    let mut input = common::input(UnikernelType::Freebsd, hypervisor);
    input.config.block = Some("/unikernel/disk.img".into());
    input.block = Some(PathBuf::from(DISK));
    input.args.insert(0, "/urunit".into());
    input
}

fn plan(input: &VmmInput) -> VmmPlan {
    plan_vmm(input).unwrap_or_else(|e| panic!("plans: {e}"))
}

fn refusal(input: &VmmInput) -> String {
    plan_vmm(input).expect_err("refused").to_string()
}

fn argv(plan: &VmmPlan) -> Vec<&str> {
    std::iter::once(plan.program.as_str())
        .chain(plan.args.iter().map(String::as_str))
        .collect()
}

/// `head` followed by newlines up to one whole sector.
fn padded(head: &str) -> String {
    assert!(head.len() <= SECTOR, "{head}");
    format!("{head}{}", "\n".repeat(SECTOR - head.len()))
}

/// urunit's configuration for the common container: its environment, user 1000:1000 in
/// /srv, the program after `/urunit`, no volume, the pod's network.
fn common_config() -> String {
    padded(
        "UES\nPATH=/bin\nGREETING=hello world\nUEE\n\
UCS\nUID:1000\nGID:1000\nWD:/srv\nARC:3\nARV:/bin/app\nARV:-p\nARV:8080\nUCE\n\
UBS\nUBE\n\
UNS\nIP:10.4.0.2\nGW:10.4.0.1\nMSK:255.255.255.0\nUNE\n\
PAD\n",
    )
}

const CMDLINE_UFS: &str = "vfs.root.mountfrom=ufs:/dev/vtbd0 init_path=/urunit \
URUNIT_CONFIG=/dev/vtbd1";

/// The plan of the same container as another kind's guest, for what FreeBSD does not change.
fn other_kind(kind: UnikernelType, hypervisor: Hypervisor) -> VmmPlan {
    plan(&common::input(kind, hypervisor))
}

/// urunc's machine and drives; the CPU, memory, console and stop options are those of every
/// x86 guest on qemu (`golden.rs`), Hermit's here.
#[test]
fn freebsd_on_qemu() {
    let kind = UnikernelType::parse("com.urunc.unikernel.unikernelType", "freebsd");
    assert_eq!(kind.expect("urunc's spelling"), UnikernelType::Freebsd);
    let plan = plan(&input(Hypervisor::Qemu));
    let args = argv(&plan);
    let other = other_kind(UnikernelType::Hermit, Hypervisor::Qemu);
    let other = argv(&other);
    let kernel = |argv: &[&str]| argv.iter().position(|a| *a == "-kernel").expect("-kernel");
    let (at, other_at) = (kernel(&args), kernel(&other));
    assert_eq!(
        args[..3],
        [
            "qemu-system-x86_64",
            "-M",
            "microvm,acpi=on,pic=on,pit=on,rtc=on"
        ]
    );
    assert_eq!(args[3..at], other[3..other_at]);
    let own = [
        "-kernel",
        "/run/urunc/c1/rootfs/unikernel/kernel",
        "-append",
        CMDLINE_UFS,
        "-netdev",
        "tap,id=n0,ifname=tap0_urunc,script=no,downscript=no,vnet_hdr=on",
        "-device",
        "virtio-net-device,netdev=n0,mac=02:42:0a:04:00:02",
        "-device",
        "virtio-blk-device,serial=rootfs,drive=rootfs",
        "-drive",
        "format=raw,if=none,id=rootfs,file=/run/urunc/c1/rootfs/unikernel/disk.img",
        "-device",
        "virtio-blk-device,serial=urunit,drive=urunit",
        "-drive",
        "format=raw,if=none,id=urunit,file=/run/urunc/c1/urunit.conf",
    ];
    assert_eq!(args[at..at + own.len()], own);
    // Then QMP and qemu's own seccomp sandbox, as for every guest.
    assert_eq!(args[at + own.len()..], other[other.len() - 4..]);
    assert_eq!(plan.guest_cmdline, CMDLINE_UFS);
    assert_eq!(
        plan.files,
        [PlanFile {
            path: PathBuf::from(CONFIG_PATH),
            contents: common_config(),
        }]
    );
}

/// firecracker's invocation and machine are every guest's (`golden.rs`, Linux's here); the boot
/// source and the drives are urunc's for FreeBSD.
#[test]
fn freebsd_on_firecracker() {
    let plan = plan(&input(Hypervisor::Firecracker));
    let other = other_kind(UnikernelType::Linux, Hypervisor::Firecracker);
    assert_eq!(plan.args, other.args);
    assert_eq!(plan.graceful_stop, other.graceful_stop);
    let [json, config] = &plan.files[..] else {
        panic!("fc.json and urunit's drive: {:?}", plan.files);
    };
    assert_eq!(json.path, other.files[0].path);
    let ours: Value = serde_json::from_str(&json.contents).expect("JSON");
    let theirs: Value = serde_json::from_str(&other.files[0].contents).expect("JSON");
    for key in ["machine-config", "network-interfaces"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let expected = json!({
        "boot-source": {
            "kernel_image_path": "/run/urunc/c1/rootfs/unikernel/kernel",
            "boot_args": CMDLINE_UFS
        },
        "drives": [
            {
                "drive_id": "FCrootfs",
                "is_read_only": false,
                "is_root_device": false,
                "path_on_host": DISK
            },
            {
                "drive_id": "FC_URUNIT_CONFIG",
                "is_read_only": false,
                "is_root_device": false,
                "path_on_host": CONFIG_PATH
            }
        ]
    });
    for key in ["boot-source", "drives"] {
        assert_eq!(ours[key], expected[key], "{key}");
    }
    assert_eq!(
        ours.as_object().map(|o| o.len()),
        Some(4),
        "no other section: {ours}"
    );
    assert_eq!(
        *config,
        PlanFile {
            path: PathBuf::from(CONFIG_PATH),
            contents: common_config(),
        }
    );
}

/// The rootfs block device (devmapper, no `block` annotation) is ext2, read by ext2fs.
#[test]
fn the_rootfs_block_device_is_mounted_as_ext2fs() {
    let mut input = input(Hypervisor::Qemu);
    input.config.block = None;
    input.block = Some(PathBuf::from("/dev/mapper/snap-1"));
    let plan = plan(&input);
    assert_eq!(
        plan.guest_cmdline,
        "vfs.root.mountfrom=ext2fs:/dev/vtbd0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd1"
    );
}

/// A 9p rootfs (`mountRootfs=true`): no disk, so urunit's drive is vtbd0; the share is
/// urunc's FreeBSD form, `multidevs=remap`.
#[test]
fn a_9p_rootfs_puts_the_configuration_drive_first() {
    let mut input = input(Hypervisor::Qemu);
    input.config.block = None;
    input.config.mount_rootfs = true;
    input.block = None;
    input.network = None;
    input.control_socket = None;
    input.seccomp = false;
    input.shared_rootfs = Some(SharedRootfs::NineP {
        dir: PathBuf::from("/run/containerd/c1/rootfs"),
    });
    let plan = plan(&input);
    let cmdline = "vfs.root.mountfrom=p9fs:fs0 init_path=/urunit URUNIT_CONFIG=/dev/vtbd0";
    let args = argv(&plan);
    let kernel = args.iter().position(|a| *a == "-kernel").expect("-kernel");
    assert_eq!(
        args[kernel..],
        [
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-append",
            cmdline,
            "-device",
            "virtio-blk-device,serial=urunit,drive=urunit",
            "-drive",
            "format=raw,if=none,id=urunit,file=/run/urunc/c1/urunit.conf",
            "-fsdev",
            "local,id=rootfs9p,security_model=none,multidevs=remap,path=/run/containerd/c1/rootfs",
            "-device",
            "virtio-9p-device,fsdev=rootfs9p,mount_tag=fs0",
        ]
    );
    // Without a network, urunit is told none.
    let contents = &plan.files[0].contents;
    assert!(
        contents.contains("UNS\nIP:\nGW:\nMSK:\nUNE\nPAD\n"),
        "{contents}"
    );
}

/// A gateway outside the pod's subnet (Calico's 169.254.1.1) asks urunit for the default
/// route through it; one inside, or none at all, does not.
#[test]
fn a_gateway_outside_the_subnet_asks_for_the_default_route() {
    let mut input = input(Hypervisor::Qemu);
    let net = input.network.as_mut().expect("network");
    net.gateway = Some(Ipv4Addr::new(169, 254, 1, 1));
    let outside = plan(&input);
    assert_eq!(
        outside.guest_cmdline,
        format!("{CMDLINE_UFS} URUNIT_DEFROUTE=1")
    );
    assert!(outside.files[0].contents.contains("GW:169.254.1.1\n"));
    let net = input.network.as_mut().expect("network");
    net.gateway = None;
    assert_eq!(plan(&input).guest_cmdline, CMDLINE_UFS);
}

/// An image whose own program is init: no urunit, so no configuration drive and no URUNIT_*.
#[test]
fn without_urunit_there_is_no_configuration_drive() {
    let mut input = input(Hypervisor::Firecracker);
    input.args = vec!["/sbin/init".into()];
    let plan = plan(&input);
    assert_eq!(
        plan.guest_cmdline,
        "vfs.root.mountfrom=ufs:/dev/vtbd0 init_path=/sbin/init"
    );
    assert_eq!(plan.files.len(), 1, "only fc.json");
    assert!(!plan.files[0].contents.contains("URUNIT"));
}

/// Arguments FreeBSD would not hand to a plain init are refused, not lost.
#[test]
fn arguments_without_urunit_are_refused_naming_the_first() {
    let mut input = input(Hypervisor::Qemu);
    input.args = vec!["/sbin/init".into(), "-s".into()];
    let error = refusal(&input);
    assert!(
        error.contains("process.args[1]") && error.contains("\"-s\""),
        "{error}"
    );
}

/// What the kernel would split (init_path is a ':' list, tokens split on ',' and spaces).
#[test]
fn an_init_path_the_kernel_would_split_is_refused() {
    for hostile in ["/bin/a:/bin/b", "/bin/a,b", "/bin/my init", ""] {
        let mut input = input(Hypervisor::Qemu);
        input.args = vec![hostile.into()];
        let error = refusal(&input);
        assert!(error.contains("process.args[0]"), "{hostile}: {error}");
    }
    let mut input = input(Hypervisor::Qemu);
    input.args.push("two\nlines".into());
    let error = refusal(&input);
    assert!(error.contains("process.args[4]"), "{error}");
}

/// FreeBSD boots from a disk or a 9p share only, as urunc's `Init` insists.
#[test]
fn unsupported_storage_is_refused_naming_the_field_and_the_value() {
    let mut with_initrd = input(Hypervisor::Qemu);
    with_initrd.config.initrd = Some("/unikernel/initrd".into());
    with_initrd.initrd = Some(PathBuf::from("/run/urunc/c1/rootfs/unikernel/initrd"));
    let error = refusal(&with_initrd);
    assert!(
        error.contains(ANNOT_INITRD) && error.contains("\"/unikernel/initrd\""),
        "{error}"
    );
    let mut no_root = input(Hypervisor::Qemu);
    no_root.config.block = None;
    no_root.block = None;
    let error = refusal(&no_root);
    assert!(error.contains(ANNOT_BLOCK), "{error}");
    let mut virtiofs = no_root.clone();
    virtiofs.config.mount_rootfs = true;
    virtiofs.shared_rootfs = Some(SharedRootfs::Virtiofs {
        socket: PathBuf::from("/run/urunc/c1/virtiofs.sock"),
    });
    let error = refusal(&virtiofs);
    assert!(error.contains("virtiofs"), "{error}");
}

/// qemu and firecracker on x86_64 only.
#[test]
fn freebsd_elsewhere_is_refused_naming_both_values() {
    for hypervisor in [
        Hypervisor::CloudHypervisor,
        Hypervisor::Hvt,
        Hypervisor::Spt,
    ] {
        let error = refusal(&input(hypervisor));
        assert!(
            error.contains("freebsd runs on: qemu, firecracker"),
            "{error}"
        );
    }
    let mut input = input(Hypervisor::Qemu);
    input.arch = Arch::Aarch64;
    assert!(refusal(&input).contains("x86_64 only"));
}
