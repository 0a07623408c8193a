//! urunc's devmapper path, booted for real on qemu/TCG: an image's whole
//! rootfs as an ext4 block device (a loop device here, as the devmapper
//! snapshotter's thin device would be), mounted as Create mounts it, with the
//! configuration read from its `/urunc.json`. runtime-core decides the device
//! is the guest's root disk, the kernel and initrd are copied out, the device
//! is unmounted and the planned qemu argv boots the guest with
//! `root=/dev/vda rw`: the disk's own `/sbin/init` prints a file only the
//! image has and that `/dev/vda` is mounted on `/`.
//!
//! The shim's side of the same steps (`shim/src/block_rootfs.rs`) is tested on
//! a loop device in the shim's unit tests; through containerd's devmapper
//! snapshotter in `shim_devmapper.rs` where the kernel has device-mapper.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime_core::{
    boot_files, plan_vmm, rootfs_relative, rootfs_storage, Accel, Arch, RootfsMount, RootfsStorage,
    UruncConfig, VmmInput,
};
use urunc_tests::block_devices::{ext4_image, LoopDevice};
use urunc_tests::command::checked;
use urunc_tests::guests::block_root::{
    block_root_guest, booted_from_vda_line, write_tree, DISK_INIT,
};
use urunc_tests::host_tools::{host_tsc_khz, which};
use urunc_tests::mounts::unmount_all_under;

const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// Unmounts what the test mounted under its folder, even when it fails.
struct UnmountOnDrop<'a>(&'a Path);

impl Drop for UnmountOnDrop<'_> {
    fn drop(&mut self) {
        if let Err(error) = unmount_all_under(self.0) {
            eprintln!("cleanup: unmount under {}: {error}", self.0.display());
        }
    }
}

#[test]
fn linux_guest_boots_from_the_rootfs_block_device_as_vda() {
    let test = "linux_guest_boots_from_the_rootfs_block_device_as_vda";
    if !nix::unistd::geteuid().is_root() {
        urunc_tests::skipped!("SKIPPED: {test}: needs root for loop devices and mounts");
        return;
    }
    for program in [
        "qemu-system-x86_64",
        "mkfs.ext4",
        "losetup",
        "mount",
        "umount",
    ] {
        if let Err(missing) = which(program, "") {
            urunc_tests::skipped!("SKIPPED: {test}: {missing}");
            return;
        }
    }
    let tsc_khz = match host_tsc_khz() {
        Ok(khz) => khz,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: {error}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = match block_root_guest(dir.path()) {
        Ok(entries) => entries,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return;
        }
    };
    // The image rootfs, urunc.json included, as one ext4 filesystem.
    let tree = dir.path().join("tree");
    write_tree(&tree, &entries).expect("image tree");
    let image = dir.path().join("rootfs.ext4");
    ext4_image(&tree, &image, "160M").expect("mkfs.ext4");
    let device = LoopDevice::attach(&image).expect("loop device");

    // Create: mount the rootfs, read the configuration from it.
    let mounts_dir = dir.path().join("mnt");
    let rootfs = mounts_dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("rootfs dir");
    let _unmount = UnmountOnDrop(&mounts_dir);
    checked(
        Command::new("mount")
            .args(["-t", "ext4"])
            .arg(&device.path)
            .arg(&rootfs),
    )
    .expect("mount the rootfs device");
    let json = std::fs::read(rootfs.join("urunc.json")).expect("read urunc.json");
    let config = UruncConfig::resolve(&HashMap::new(), Some(&json))
        .expect("configuration")
        .expect("a unikernel");
    let found = [RootfsMount {
        fs_type: "ext4".into(),
        source: device.path.clone(),
        source_is_block_device: true,
    }];
    let storage = rootfs_storage(&config, None, &found, false).expect("decides");
    assert_eq!(
        storage,
        RootfsStorage::BlockDevice {
            device: device.path.clone(),
            fs_type: "ext4".into()
        }
    );
    let private = dir.path().join("state");
    std::fs::create_dir_all(&private).expect("state dir");
    let mut copies = HashMap::new();
    for file in boot_files(&config) {
        let relative = rootfs_relative(file.field, file.rootfs_path).expect("relative");
        let copy = private.join(file.copy_name);
        std::fs::copy(rootfs.join(relative), &copy).expect("copy a boot file out");
        copies.insert(file.field, copy);
    }
    checked(Command::new("umount").arg(&rootfs)).expect("unmount the rootfs");

    let input = VmmInput {
        kernel: copies[runtime_core::ANNOT_BINARY].clone(),
        initrd: copies.get(runtime_core::ANNOT_INITRD).cloned(),
        block: Some(device.path.clone()),
        config,
        network: None,
        memory_limit_bytes: Some(256 * 1024 * 1024),
        vcpus: Some(1),
        env: vec![],
        args: vec![DISK_INIT.into(), "poweroff".into()],
        guest_process: runtime_core::GuestProcess::default(),
        accel: Accel::Tcg,
        arch: Arch::X86_64,
        cpu_features_off: Vec::new(),
        solo5_manifest: None,
        shared_rootfs: None,
        firmware_dir: None,
        seccomp: true,
        control_socket: None,
        work_dir: private.clone(),
        extra_kernel_args: vec![format!("tsc_early_khz={tsc_khz}")],
    };
    let plan = plan_vmm(&input).expect("plans");
    assert!(
        plan.guest_cmdline.contains("root=/dev/vda rw")
            && plan
                .guest_cmdline
                .contains(&format!("init={DISK_INIT} -- poweroff")),
        "{}",
        plan.guest_cmdline
    );

    let started = Instant::now();
    let mut qemu = Command::new(&plan.program)
        .args(&plan.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu starts");
    let status = loop {
        if let Some(status) = qemu.try_wait().expect("wait qemu") {
            break Some(status);
        }
        if started.elapsed() > BOOT_TIMEOUT {
            let _ = qemu.kill();
            let _ = qemu.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut console = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = qemu.stdout.take() {
        out.read_to_string(&mut console).expect("console");
    }
    if let Some(mut err) = qemu.stderr.take() {
        err.read_to_string(&mut stderr).expect("stderr");
    }
    let expected = booted_from_vda_line();
    assert!(
        console.contains(&expected),
        "console lacks {expected:?} (qemu {status:?}, stderr {stderr}):\n{console}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "qemu: {status:?} {stderr}"
    );
    println!(
        "booted from {} as /dev/vda and powered off in {:?}",
        device.path.display(),
        started.elapsed()
    );
}
