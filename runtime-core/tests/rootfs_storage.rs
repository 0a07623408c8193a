//! urunc's devmapper path: when the rootfs block device becomes the guest's
//! root disk, and the plans that follow for every VMM that can take it.

mod common;

use std::path::PathBuf;

use runtime_core::{
    boot_files, plan_vmm, rootfs_storage, Hypervisor, RootfsMount, RootfsStorage, SharedFsKind,
    UnikernelType, UruncConfig,
};

const DEVICE: &str = "/dev/dm-3";

fn devmapper_mount(fs_type: &str) -> RootfsMount {
    RootfsMount {
        fs_type: fs_type.into(),
        source: PathBuf::from(DEVICE),
        source_is_block_device: true,
    }
}

fn linux() -> UruncConfig {
    common::config(UnikernelType::Linux, Hypervisor::Qemu)
}

fn is_block(storage: &RootfsStorage) -> bool {
    matches!(storage, RootfsStorage::BlockDevice { device, .. } if device == &PathBuf::from(DEVICE))
}

#[test]
fn a_block_device_rootfs_is_the_guest_disk_unless_told_otherwise() {
    let ext4 = [devmapper_mount("ext4")];
    // Nothing set anywhere: urunc's default is yes.
    assert!(is_block(
        &rootfs_storage(&linux(), None, &ext4, false).unwrap()
    ));
    assert!(is_block(
        &rootfs_storage(&linux(), Some(""), &ext4, false).unwrap()
    ));
    // The runtime's environment sets the default...
    assert!(!is_block(
        &rootfs_storage(&linux(), Some("false"), &ext4, false).unwrap()
    ));
    // ...and the container's own setting wins over it, both ways.
    let mut on = linux();
    on.use_dm_block = Some(true);
    assert!(is_block(
        &rootfs_storage(&on, Some("false"), &ext4, false).unwrap()
    ));
    let mut off = linux();
    off.use_dm_block = Some(false);
    assert_eq!(
        rootfs_storage(&off, Some("true"), &ext4, false).unwrap(),
        RootfsStorage::Mounted {
            reason: "useDMBlock is false"
        }
    );
}

#[test]
fn the_rootfs_stays_mounted_when_it_cannot_be_the_guest_disk() {
    let ext4 = [devmapper_mount("ext4")];
    let mounted = |config: &UruncConfig, mounts: &[RootfsMount]| {
        !is_block(&rootfs_storage(config, None, mounts, false).unwrap())
    };
    let mut with_block_annotation = linux();
    with_block_annotation.block = Some("/disk.img".into());
    assert!(
        mounted(&with_block_annotation, &ext4),
        "block annotation wins"
    );
    for kind in [UnikernelType::Unikraft, UnikernelType::Mewz] {
        assert!(mounted(&common::config(kind, Hypervisor::Qemu), &ext4));
    }
    // MirageOS reads no filesystem; rumprun only ext2.
    assert!(mounted(
        &common::config(UnikernelType::Mirage, Hypervisor::Hvt),
        &ext4
    ));
    let rumprun = common::config(UnikernelType::Rumprun, Hypervisor::Hvt);
    assert!(mounted(&rumprun, &ext4));
    assert!(!mounted(&rumprun, &[devmapper_mount("ext2")]));
    // overlayfs (urunc handed `overlay` to the VMM here), no mount, two mounts.
    let overlay = RootfsMount {
        fs_type: "overlay".into(),
        source: PathBuf::from("overlay"),
        source_is_block_device: false,
    };
    assert!(mounted(&linux(), &[overlay]));
    assert!(mounted(&linux(), &[]));
    assert!(mounted(&linux(), &[ext4[0].clone(), ext4[0].clone()]));
}

#[test]
fn an_unparsable_runtime_default_is_refused_naming_the_variable() {
    let error = rootfs_storage(
        &linux(),
        Some("yes please"),
        &[devmapper_mount("ext4")],
        false,
    )
    .expect_err("refused")
    .to_string();
    assert!(
        error.contains("USE_DEVMAPPER_AS_BLOCK") && error.contains("yes please"),
        "{error}"
    );
}

#[test]
fn the_kernel_and_initrd_are_copied_under_fixed_names() {
    let mut config = linux();
    config.initrd = Some("/unikernel/kernel".into());
    let files = boot_files(&config);
    let names: Vec<_> = files
        .iter()
        .map(|f| (f.field, f.rootfs_path, f.copy_name))
        .collect();
    assert_eq!(
        names,
        [
            (
                "com.urunc.unikernel.binary",
                "/unikernel/kernel",
                "rootfs-kernel"
            ),
            (
                "com.urunc.unikernel.initrd",
                "/unikernel/kernel",
                "rootfs-initrd"
            ),
        ]
    );
}

/// The device the decision picked, planned on each VMM that takes a root
/// disk: the Linux guest is told `root=/dev/vda rw` and keeps `init=` even
/// with an initrd (urunc's RootFSType "block" wins over "initrd").
#[test]
fn the_rootfs_device_reaches_every_vmm_as_the_root_disk() {
    let with_device = |kind: UnikernelType, hypervisor: Hypervisor| {
        let mut input = common::input(kind.clone(), hypervisor);
        let storage =
            rootfs_storage(&input.config, None, &[devmapper_mount("ext2")], false).unwrap();
        let RootfsStorage::BlockDevice { device, .. } = storage else {
            panic!("{kind:?} on {hypervisor:?}: not a block rootfs: {storage:?}");
        };
        input.block = Some(device);
        input.network = None;
        plan_vmm(&input).expect("plans")
    };

    let qemu = with_device(UnikernelType::Linux, Hypervisor::Qemu);
    assert!(
        qemu.args.windows(4).any(|w| w
            == [
                "-drive",
                "file=/dev/dm-3,if=none,id=d0,format=raw",
                "-device",
                "virtio-blk-device,drive=d0"
            ]),
        "{:?}",
        qemu.args
    );
    assert!(qemu.args.windows(2).any(|w| w[0] == "-initrd"));
    assert_eq!(
        qemu.guest_cmdline,
        "panic=-1 console=ttyS0 reboot=t root=/dev/vda rw PATH=/bin GREETING=\"hello world\" \
         init=/bin/app -- -p 8080"
    );

    let cloud_hypervisor = with_device(UnikernelType::Linux, Hypervisor::CloudHypervisor);
    assert!(
        cloud_hypervisor
            .args
            .windows(2)
            .any(|w| w == ["--disk", "path=/dev/dm-3"]),
        "{:?}",
        cloud_hypervisor.args
    );
    assert!(cloud_hypervisor.guest_cmdline.contains("root=/dev/vda rw"));

    let firecracker = with_device(UnikernelType::Linux, Hypervisor::Firecracker);
    let config = &firecracker.files[0].contents;
    let json: serde_json::Value = serde_json::from_str(config).expect("firecracker JSON");
    assert_eq!(
        json["drives"],
        serde_json::json!([{
            "drive_id": "rootfs",
            "is_read_only": false,
            "is_root_device": true,
            "path_on_host": "/dev/dm-3",
        }])
    );
    assert!(json["boot-source"]["boot_args"]
        .as_str()
        .is_some_and(|a| a.contains("root=/dev/vda rw")));

    for hypervisor in [Hypervisor::Hvt, Hypervisor::Spt] {
        let solo5 = with_device(UnikernelType::Rumprun, hypervisor);
        assert!(
            solo5.args.contains(&"--block:rootfs=/dev/dm-3".to_string()),
            "{:?}",
            solo5.args
        );
    }
}

#[test]
fn mount_rootfs_is_honoured_or_refused_never_ignored() {
    let ext4 = [devmapper_mount("ext4")];
    let mut demand = linux();
    demand.mount_rootfs = true;
    assert!(is_block(
        &rootfs_storage(&demand, None, &ext4, false).unwrap()
    ));

    let overlay = [RootfsMount {
        fs_type: "overlay".into(),
        source: PathBuf::from("overlay"),
        source_is_block_device: false,
    }];
    // urunc's order when the rootfs cannot be a disk: virtiofs if its daemon exists, else 9p.
    assert_eq!(
        rootfs_storage(&demand, None, &overlay, true).unwrap(),
        RootfsStorage::SharedFs(SharedFsKind::Virtiofs)
    );
    assert_eq!(
        rootfs_storage(&demand, None, &overlay, false).unwrap(),
        RootfsStorage::SharedFs(SharedFsKind::NineP)
    );
    demand.use_dm_block = Some(false);
    assert_eq!(
        rootfs_storage(&demand, None, &ext4, false).unwrap(),
        RootfsStorage::SharedFs(SharedFsKind::NineP)
    );

    // Neither a disk nor a shared filesystem: refused with both reasons.
    let mut on_firecracker = common::config(UnikernelType::Linux, Hypervisor::Firecracker);
    on_firecracker.mount_rootfs = true;
    let error = rootfs_storage(&on_firecracker, None, &overlay, true)
        .expect_err("firecracker shares no filesystem")
        .to_string();
    assert!(error.contains("com.urunc.unikernel.mountRootfs"), "{error}");
    assert!(error.contains("not a block device"), "{error}");
    assert!(
        error.contains("firecracker shares no filesystem"),
        "{error}"
    );
    let mut unikraft = common::config(UnikernelType::Unikraft, Hypervisor::Qemu);
    unikraft.mount_rootfs = true;
    let error = rootfs_storage(&unikraft, None, &overlay, true)
        .expect_err("unikraft reads no shared rootfs here")
        .to_string();
    assert!(error.contains("reads neither 9p nor virtiofs"), "{error}");
}

#[test]
fn without_mount_rootfs_nothing_is_shared() {
    let overlay = [RootfsMount {
        fs_type: "overlay".into(),
        source: PathBuf::from("overlay"),
        source_is_block_device: false,
    }];
    assert!(matches!(
        rootfs_storage(&linux(), None, &overlay, true).unwrap(),
        RootfsStorage::Mounted { .. }
    ));
}
