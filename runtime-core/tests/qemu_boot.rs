//! Real boots of the plans for the `linux` kind on qemu/TCG (`-M microvm`),
//! with Debian's kernel and a busybox initramfs built here. They prove that
//! the argv `plan_vmm` writes is one qemu accepts (seccomp sandbox and QMP
//! socket included), that the guest's init receives the arguments and the
//! environment exactly as the spec gives them, spaces included, and that a
//! block device planned on microvm reaches the guest as /dev/vda.
//! Needs qemu-system-x86, busybox-static, cpio, e2fsprogs and a readable
//! /boot/vmlinuz-* (and its modules for the block boot); prints SKIPPED
//! otherwise. No root needed.

use runtime_core::{
    plan_vmm, Accel, Arch, Hypervisor, UnikernelType, UruncConfig, VmmInput, VmmPlan,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const MARKER: &str = "URUNC-RS-BOOT-OK";
/// Debian's kernel has virtio as modules; load order follows their dependencies.
const BLOCK_MODULES: [&str; 4] = [
    "virtio/virtio_ring.ko",
    "virtio/virtio.ko",
    "virtio/virtio_mmio.ko",
    "block/virtio_blk.ko",
];

/// Kills the VMM if the test ends early, so no qemu outlives it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            if let Err(e) = self.0.kill() {
                eprintln!("could not kill qemu {}: {e}", self.0.id());
            }
            if let Err(e) = self.0.wait() {
                eprintln!("could not reap qemu {}: {e}", self.0.id());
            }
        }
    }
}

/// What a boot needs from the host.
struct Host {
    qemu: PathBuf,
    busybox: PathBuf,
    kernel: PathBuf,
    tsc_khz: u64,
}

impl Host {
    /// `None` (after printing SKIPPED) when something is missing.
    fn find(extra_tools: &[&str]) -> Option<Host> {
        if !cfg!(target_arch = "x86_64") {
            urunc_test_skip::skipped_not_in_ci!("SKIPPED: the boot tests run an x86_64 guest");
            return None;
        }
        let missing: Vec<&str> = ["cpio"]
            .iter()
            .chain(extra_tools)
            .copied()
            .filter(|tool| find_in_path(tool).is_none())
            .collect();
        let found = (
            find_in_path("qemu-system-x86_64"),
            find_in_path("busybox"),
            readable_kernel(),
            tsc_khz(),
        );
        match (missing.is_empty(), found) {
            (true, (Some(qemu), Some(busybox), Some(kernel), Some(tsc_khz))) => Some(Host {
                qemu,
                busybox,
                kernel,
                tsc_khz,
            }),
            _ => {
                urunc_test_skip::skipped!(
                    "SKIPPED: needs qemu-system-x86_64, busybox, a readable /boot/vmlinuz-*, \
                     a cpu MHz line in /proc/cpuinfo and {missing:?}"
                );
                None
            }
        }
    }

    /// `/lib/modules/<version>` of the kernel, from its file name.
    fn modules_dir(&self) -> Option<PathBuf> {
        let name = self.kernel.file_name()?.to_str()?;
        let version = name.strip_prefix("vmlinuz-")?;
        Some(
            PathBuf::from("/lib/modules")
                .join(version)
                .join("kernel/drivers"),
        )
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn readable_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .filter(|p| std::fs::File::open(p).is_ok())
        .collect();
    kernels.sort();
    kernels.pop()
}

/// microvm has no HPET or PM timer for Linux to calibrate its TSC against.
fn tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz_line = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = mhz_line.split(':').nth(1)?.trim().parse().ok()?;
    Some((mhz * 1000.0) as u64)
}

fn run(command: &mut Command) -> std::io::Result<()> {
    let status = command.status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{command:?} failed: {status}"
        )))
    }
}

/// A busybox initramfs whose `/init` is `init_script`, plus `files`.
fn build_initramfs(
    dir: &Path,
    busybox: &Path,
    init_script: &str,
    files: &[(PathBuf, &str)],
) -> std::io::Result<PathBuf> {
    let root = dir.join("initramfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::copy(busybox, root.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", root.join("bin/sh"))?;
    for (source, destination) in files {
        std::fs::copy(source, root.join(destination))?;
    }
    std::fs::write(root.join("init"), init_script)?;
    let mut permissions = std::fs::metadata(root.join("init"))?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(root.join("init"), permissions)?;
    let initrd = dir.join("initrd.cpio");
    run(Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && find . | cpio -o -H newc --quiet > \"$2\"")
        .arg("sh")
        .arg(&root)
        .arg(&initrd))?;
    Ok(initrd)
}

fn linux_input(host: &Host, work_dir: &Path, initrd: PathBuf) -> VmmInput {
    VmmInput {
        config: UruncConfig {
            unikernel_type: UnikernelType::Linux,
            unikernel_version: None,
            binary: "/kernel".into(),
            cmdline: String::new(),
            hypervisor: Hypervisor::Qemu,
            initrd: Some("/initrd".into()),
            block: None,
            blk_mnt_point: None,
            use_dm_block: None,
            mount_rootfs: false,
            solo5_net_dev: None,
            solo5_blk_dev: None,
        },
        kernel: host.kernel.clone(),
        initrd: Some(initrd),
        block: None,
        network: None,
        memory_limit_bytes: Some(128 * 1024 * 1024),
        vcpus: Some(1),
        env: vec!["GREETING=hello world".into()],
        args: vec!["/init".into(), "a b".into(), "c".into()],
        guest_process: runtime_core::GuestProcess::default(),
        accel: Accel::Tcg,
        arch: Arch::X86_64,
        cpu_features_off: Vec::new(),
        solo5_manifest: None,
        shared_rootfs: None,
        firmware_dir: None,
        seccomp: true,
        control_socket: Some(work_dir.join("qmp.sock")),
        work_dir: work_dir.to_path_buf(),
        extra_kernel_args: vec![format!("tsc_early_khz={}", host.tsc_khz)],
    }
}

/// Runs the plan to completion and returns the guest console.
fn boot(qemu: &Path, plan: &VmmPlan) -> String {
    let mut child = KillOnDrop(
        Command::new(qemu)
            .args(&plan.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu starts"),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("qemu can be waited for") {
            break status;
        }
        assert!(
            started.elapsed() < BOOT_TIMEOUT,
            "the guest did not power off within {BOOT_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut console = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.0.stdout.take() {
        out.read_to_string(&mut console)
            .expect("qemu's stdout is readable");
    }
    if let Some(mut err) = child.0.stderr.take() {
        err.read_to_string(&mut stderr)
            .expect("qemu's stderr is readable");
    }
    assert!(
        status.success(),
        "qemu exited with {status}; stderr: {stderr}; console: {console}"
    );
    println!("booted and powered off in {:?}", started.elapsed());
    console
}

#[test]
fn linux_initrd_guest_gets_its_args_and_env() {
    let Some(host) = Host::find(&[]) else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let init = format!(
        "#!/bin/sh\n/bin/busybox echo \"{MARKER} argv=[$1][$2] greeting=[$GREETING]\"\n/bin/busybox poweroff -f\n"
    );
    let initrd =
        build_initramfs(dir.path(), &host.busybox, &init, &[]).expect("the initramfs builds");
    let plan =
        plan_vmm(&linux_input(&host, dir.path(), initrd)).expect("the boot configuration plans");
    let console = boot(&host.qemu, &plan);
    let expected = format!("{MARKER} argv=[a b][c] greeting=[hello world]");
    assert!(
        console.contains(&expected),
        "console lacks {expected:?}; console: {console}"
    );
}

#[test]
fn linux_guest_sees_the_planned_block_device_as_vda() {
    let Some(host) = Host::find(&["mkfs.ext4"]) else {
        return;
    };
    let Some(modules) = host
        .modules_dir()
        .filter(|dir| BLOCK_MODULES.iter().all(|m| dir.join(m).is_file()))
    else {
        urunc_test_skip::skipped!(
            "SKIPPED: the kernel's virtio modules ({BLOCK_MODULES:?}) are not under /lib/modules"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let disk_root = dir.path().join("disk");
    std::fs::create_dir_all(&disk_root).expect("the disk tree is created");
    std::fs::write(disk_root.join("marker"), "from-the-block-device\n")
        .expect("the marker is written");
    let disk = dir.path().join("disk.ext4");
    run(
        Command::new(find_in_path("mkfs.ext4").expect("found above"))
            .args(["-q", "-F", "-d"])
            .arg(&disk_root)
            .arg(&disk)
            .arg("16M"),
    )
    .expect("mkfs.ext4 builds the disk");
    // The kernel runs /init from the initramfs whatever `root=` says; /init
    // loads the virtio drivers the Debian kernel has as modules, then looks
    // for the disk where `root=/dev/vda` says it is.
    let files: Vec<(PathBuf, &str)> = BLOCK_MODULES
        .iter()
        .map(|m| (modules.join(m), m.rsplit('/').next().unwrap_or(m)))
        .collect();
    let init = format!(
        "#!/bin/sh\n\
         /bin/busybox mkdir -p /dev /disk\n\
         /bin/busybox mount -t devtmpfs dev /dev\n\
         for m in virtio_ring virtio virtio_mmio virtio_blk; do /bin/busybox insmod /$m.ko; done\n\
         for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; /bin/busybox sleep 1; done\n\
         /bin/busybox mount -t ext4 /dev/vda /disk && /bin/busybox echo \"{MARKER} $(/bin/busybox cat /disk/marker)\"\n\
         /bin/busybox poweroff -f\n"
    );
    let initrd =
        build_initramfs(dir.path(), &host.busybox, &init, &files).expect("the initramfs builds");
    let mut input = linux_input(&host, dir.path(), initrd);
    input.block = Some(disk);
    input.args.clear();
    let plan = plan_vmm(&input).expect("the boot configuration plans");
    assert!(
        plan.guest_cmdline.contains("root=/dev/vda rw"),
        "{}",
        plan.guest_cmdline
    );
    let console = boot(&host.qemu, &plan);
    let expected = format!("{MARKER} from-the-block-device");
    assert!(
        console.contains(&expected),
        "console lacks {expected:?}; console: {console}"
    );
}
