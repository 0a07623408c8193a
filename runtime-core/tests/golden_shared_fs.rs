//! Golden outputs of the shared-filesystem rootfs (urunc's 9p and virtiofs for Linux on qemu):
//! the exact qemu argv, the guest's root parameters and the virtiofsd argv.

mod common;

use std::path::{Path, PathBuf};

use runtime_core::{
    plan_vmm, virtiofsd_plan, Arch, Hypervisor, SharedRootfs, UnikernelType, VmmInput, VmmPlan,
    C_VIRTIOFSD,
};

const ROOTFS: &str = "/run/containerd/c1/rootfs";
const SOCKET: &str = "/run/urunc-rs/ns/c1/vmm/virtiofs.sock";

fn shared(shared: SharedRootfs) -> VmmInput {
    let mut input = common::input(UnikernelType::Linux, Hypervisor::Qemu);
    input.config.mount_rootfs = true;
    input.shared_rootfs = Some(shared);
    input.network = None;
    input.control_socket = None;
    input.seccomp = false;
    input
}

fn args(plan: &VmmPlan) -> Vec<&str> {
    plan.args.iter().map(String::as_str).collect()
}

/// Everything after `-serial stdio`: the kernel, initrd, command line and devices.
fn devices(plan: &VmmPlan) -> Vec<&str> {
    let args = args(plan);
    let at = args.iter().position(|a| *a == "-kernel").expect("-kernel");
    args[at..].to_vec()
}

#[test]
fn linux_on_qemu_with_a_9p_rootfs() {
    let plan = plan_vmm(&shared(SharedRootfs::NineP {
        dir: PathBuf::from(ROOTFS),
    }))
    .expect("plans");
    let cmdline = "panic=-1 console=ttyS0 reboot=t root=fs0 rw rootfstype=9p \
rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl PATH=/bin \
GREETING=\"hello world\" init=/bin/app -- -p 8080";
    assert_eq!(&args(&plan)[..2], ["-M", "microvm"]);
    assert_eq!(
        devices(&plan),
        [
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-initrd",
            "/run/urunc/c1/rootfs/unikernel/initrd",
            "-append",
            cmdline,
            "-fsdev",
            "local,id=rootfs9p,security_model=none,path=/run/containerd/c1/rootfs",
            "-device",
            "virtio-9p-device,fsdev=rootfs9p,mount_tag=fs0",
        ]
    );
    assert_eq!(plan.guest_cmdline, cmdline);
}

#[test]
fn linux_on_qemu_with_a_virtiofs_rootfs() {
    let mut input = shared(SharedRootfs::Virtiofs {
        socket: PathBuf::from(SOCKET),
    });
    input.initrd = None;
    let plan = plan_vmm(&input).expect("plans");
    let cmdline = "panic=-1 console=ttyS0 reboot=t root=fs0 rw rootfstype=virtiofs PATH=/bin \
GREETING=\"hello world\" init=/bin/app -- -p 8080";
    assert_eq!(&args(&plan)[..2], ["-M", "microvm,memory-backend=mem"]);
    assert_eq!(
        devices(&plan),
        [
            "-kernel",
            "/run/urunc/c1/rootfs/unikernel/kernel",
            "-append",
            cmdline,
            "-object",
            "memory-backend-memfd,id=mem,size=512M,share=on",
            "-chardev",
            "socket,id=rootfsvfs,path=/run/urunc-rs/ns/c1/vmm/virtiofs.sock",
            "-device",
            "vhost-user-fs-device,chardev=rootfsvfs,tag=fs0,queue-size=1024",
            "-global",
            "virtio-mmio.force-legacy=false",
        ]
    );
}

#[test]
fn aarch64_uses_pci_devices_and_no_mmio_global() {
    let mut input = shared(SharedRootfs::Virtiofs {
        socket: PathBuf::from(SOCKET),
    });
    input.arch = Arch::Aarch64;
    let plan = plan_vmm(&input).expect("plans");
    assert_eq!(&args(&plan)[..2], ["-M", "virt,memory-backend=mem"]);
    assert!(plan
        .args
        .contains(&"vhost-user-fs-pci,chardev=rootfsvfs,tag=fs0,queue-size=1024".to_owned()));
    assert!(!plan.args.iter().any(|a| a.contains("force-legacy")));
}

#[test]
fn a_shared_rootfs_is_refused_where_urunc_has_none() {
    let mut input = shared(SharedRootfs::NineP {
        dir: PathBuf::from(ROOTFS),
    });
    input.config = common::config(UnikernelType::Linux, Hypervisor::Firecracker);
    input.accel = runtime_core::Accel::Kvm;
    let error = plan_vmm(&input).expect_err("firecracker").to_string();
    assert!(error.contains("shared rootfs"), "{error}");
    assert!(error.contains("9p"), "{error}");

    let mut input = shared(SharedRootfs::NineP {
        dir: PathBuf::from(ROOTFS),
    });
    input.block = Some(PathBuf::from("/dev/dm-1"));
    let error = plan_vmm(&input).expect_err("a disk beside it").to_string();
    assert!(error.contains("/dev/dm-1"), "{error}");
}

#[test]
fn virtiofsd_argv_for_the_c_and_the_rust_daemon() {
    let dir = Path::new(ROOTFS);
    let socket = Path::new(SOCKET);
    let c_daemon = virtiofsd_plan(
        Path::new(C_VIRTIOFSD),
        "--cache always --sandbox none",
        dir,
        socket,
    )
    .expect("plans");
    assert_eq!(
        c_daemon.args,
        [
            "--socket-path=/run/urunc-rs/ns/c1/vmm/virtiofs.sock",
            "-o",
            "source=/run/containerd/c1/rootfs",
            "-o",
            "cache=always",
            // Last, so they win: the daemon's own sandbox inside the shim's confinement.
            "-o",
            "sandbox=chroot",
            "-o",
            "modcaps=-mknod:-setfcap",
        ]
    );
    assert_eq!(
        c_daemon.capabilities.join(" "),
        "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_FSETID CAP_SETGID CAP_SETUID \
         CAP_SETPCAP CAP_SYS_CHROOT"
    );
    assert_eq!(
        c_daemon.pid_file,
        Some(PathBuf::from(
            "/var/run/virtiofsd/.run.urunc-rs.ns.c1.vmm.virtiofs.sock.pid"
        ))
    );
    let configured = virtiofsd_plan(
        Path::new(C_VIRTIOFSD),
        "-o cache=none -o sandbox=namespace",
        dir,
        socket,
    )
    .expect("plans");
    assert_eq!(
        configured.args[3..],
        [
            "-o",
            "cache=none",
            "-o",
            "sandbox=namespace",
            "-o",
            "sandbox=chroot",
            "-o",
            "modcaps=-mknod:-setfcap"
        ]
    );
    let rust_daemon = virtiofsd_plan(
        Path::new("/usr/libexec/virtiofsd"),
        "--cache always --sandbox none",
        dir,
        socket,
    )
    .expect("plans");
    assert_eq!(
        rust_daemon.args,
        [
            "--socket-path=/run/urunc-rs/ns/c1/vmm/virtiofs.sock",
            "--shared-dir=/run/containerd/c1/rootfs",
            "--cache",
            "always",
            "--sandbox",
            "none",
        ]
    );
    assert_eq!(rust_daemon.pid_file, None);
    let error = virtiofsd_plan(Path::new(C_VIRTIOFSD), "", Path::new("/a,b"), socket)
        .expect_err("a comma")
        .to_string();
    assert!(error.contains("/a,b"), "{error}");
}
