//! firecracker and cloud-hypervisor boot through containerd and our shim as each kind they
//! are paired with (linux, unikraft and freebsd on firecracker, linux on cloud-hypervisor), in
//! a pod whose eth0 has MTU 1400; the binaries come from `URUNC_TEST_FIRECRACKER` /
//! `URUNC_TEST_CLOUD_HYPERVISOR` or PATH (SKIPPED without them: CI installs neither).
//!
//! The guest is the PVH stand-in (`urunc_tests::guests::pvh`), not a Linux or Unikraft
//! guest: Linux guests crash under these VMMs on this nested KVM (KVM_EXIT_INTERNAL_ERROR,
//! the host's fault), and no Unikraft guest can be built here. The stand-in ignores its
//! command line, its initrd and its disk, so one guest serves every kind; what is checked is
//! what the VMM does with what the shim gives it:
//!
//! * the guest's marker reaches `ctr run`'s stdout (COM1 is the VMM's stdout);
//! * the VMM holds the pod's tap open and the tap has eth0's MTU (1400): the VMM accepted
//!   it (cloud-hypervisor is not given `mtu=`, which made it set the tap's MTU itself and
//!   fail with EPERM);
//! * linux: the VMM holds the block image open; unikraft (initrd only): the VMM started with
//!   the initrd in its plan;
//! * SIGTERM ends the VMM within [`GRACE`] (it runs as pid 2 of its pid namespace, under the
//!   shim's forwarding init); SIGKILL ends it;
//! * no tap, qdisc, filter, VMM process, shim or state folder is left.

mod shim_support;

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use shim_support::kvm_vmm::{kvm_vmm_containerd, KvmVmmContainerd};
use shim_support::{
    assert_nothing_left, assert_sandbox_clean, ctr_ok, eventually, foreground_run_with,
    import_unikernel_files,
};
use urunc_tests::guests::{pvh_guest, spawn_with_console, PvhBehaviour};
use urunc_tests::host_processes::{open_files, open_taps};
use urunc_tests::kvm_vmms::{KvmVmm, CLOUD_HYPERVISOR, FIRECRACKER};
use urunc_tests::sandbox::{SandboxNetns, SANDBOX_IF};

/// How long a stop may take: a fraction of the kubelet's default grace period (30 s).
const GRACE: Duration = Duration::from_secs(10);
const POD_MTU: u32 = 1400;
const BOOT_LIMIT: Duration = Duration::from_secs(60);
const KERNEL: &str = "/unikernel/kernel";
const BLOCK: &str = "/unikernel/disk.img";
const INITRD: &str = "/unikernel/initrd";

/// What the image gives the guest besides its kernel.
#[derive(Clone, Copy)]
enum Storage {
    /// A disk image (`block`), which the VMM must hold open.
    Block,
    /// An initrd (`initrd`), which the VMM loads into guest memory at its start.
    Initrd,
}

struct Pair {
    vmm: KvmVmm,
    kind: &'static str,
    storage: Storage,
    /// The container's process arguments (the freebsd kind starts args[0] as its init).
    args: &'static [&'static str],
}

#[test]
fn linux_boots_on_firecracker_in_a_1400_mtu_pod_and_stops() {
    boots_and_stops(
        "linux_boots_on_firecracker_in_a_1400_mtu_pod_and_stops",
        Pair {
            vmm: FIRECRACKER,
            kind: "linux",
            storage: Storage::Block,
            args: &[],
        },
    );
}

#[test]
fn unikraft_boots_on_firecracker_in_a_1400_mtu_pod_and_stops() {
    boots_and_stops(
        "unikraft_boots_on_firecracker_in_a_1400_mtu_pod_and_stops",
        Pair {
            vmm: FIRECRACKER,
            kind: "unikraft",
            storage: Storage::Initrd,
            args: &[],
        },
    );
}

#[test]
fn linux_boots_on_cloud_hypervisor_in_a_1400_mtu_pod_and_stops() {
    boots_and_stops(
        "linux_boots_on_cloud_hypervisor_in_a_1400_mtu_pod_and_stops",
        Pair {
            vmm: CLOUD_HYPERVISOR,
            kind: "linux",
            storage: Storage::Block,
            args: &[],
        },
    );
}

/// urunc's FreeBSD guest on firecracker: the stand-in plays the kernel, so what is checked is
/// that firecracker accepts the freebsd plan (its two drives, `FCrootfs` and
/// `FC_URUNIT_CONFIG`, and the FreeBSD boot arguments) and holds the disk.
#[test]
fn freebsd_boots_on_firecracker_in_a_1400_mtu_pod_and_stops() {
    boots_and_stops(
        "freebsd_boots_on_firecracker_in_a_1400_mtu_pod_and_stops",
        Pair {
            vmm: FIRECRACKER,
            kind: "freebsd",
            storage: Storage::Block,
            args: &["/urunit", "/bin/app"],
        },
    );
}

fn boots_and_stops(test: &str, pair: Pair) {
    let Some(env) = kvm_vmm_containerd(test, pair.vmm) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = format!("{}-on-{}-ready", pair.kind, pair.vmm.hypervisor);
    let image = format!(
        "docker.io/library/pvh-{}-{}:test",
        pair.kind, pair.vmm.hypervisor
    );
    import_pair(&env, dir.path(), &image, &marker, &pair);
    let sandbox = SandboxNetns::create().expect("sandbox netns");
    sandbox.set_mtu(POD_MTU).expect("set the pod's MTU");
    let run = |id: &str, signal: &str| {
        boot_then_signal(&env, &sandbox, &image, &marker, &pair, id, signal)
    };

    let (status, took) = run("term", "SIGTERM");
    println!(
        "{test}: {} SIGTERM -> ctr run exit {:?} after {took:?} ({})",
        pair.vmm.hypervisor,
        status.code(),
        env.version
    );
    assert!(
        took < GRACE,
        "SIGTERM took {took:?}; the shim log:\n{}",
        env.ctrd.log_tail(80)
    );
    assert_eq!(
        status.code(),
        Some(pair.vmm.sigterm_exit),
        "SIGTERM did not end the VMM as it ends on SIGTERM"
    );

    let (status, took) = run("kill", "SIGKILL");
    println!(
        "{test}: {} SIGKILL -> ctr run exit {:?} after {took:?}",
        pair.vmm.hypervisor,
        status.code()
    );
    assert_eq!(status.code(), Some(128 + 9), "SIGKILL did not end the VMM");

    assert_sandbox_clean(&sandbox, "after both runs");
    assert!(
        env.vmm_processes().is_empty(),
        "VMMs left: {:?}",
        env.vmm_processes()
    );
    assert_nothing_left(&env.ctrd);
}

fn import_pair(env: &KvmVmmContainerd, dir: &Path, image: &str, marker: &str, pair: &Pair) {
    let kernel = pvh_guest(dir, PvhBehaviour::HaltForever, marker).expect("pvh guest");
    let storage = dir.join("storage.img");
    std::fs::write(&storage, vec![0u8; 1 << 20]).expect("write the storage file");
    let (storage_key, storage_path) = match pair.storage {
        Storage::Block => ("block", BLOCK),
        Storage::Initrd => ("initrd", INITRD),
    };
    import_unikernel_files(
        &env.ctrd,
        dir,
        image,
        &[(KERNEL, &kernel), (storage_path, &storage)],
        &[
            ("unikernelType", pair.kind),
            ("hypervisor", pair.vmm.hypervisor),
            ("binary", KERNEL),
            (storage_key, storage_path),
        ],
    );
}

/// Runs `image` as container `id` in the pod, checks the boot, sends `signal`; returns how
/// `ctr run` ended and how long after the signal. The container is removed.
fn boot_then_signal(
    env: &KvmVmmContainerd,
    sandbox: &SandboxNetns,
    image: &str,
    marker: &str,
    pair: &Pair,
    id: &str,
    signal: &str,
) -> (ExitStatus, Duration) {
    let ctrd = &env.ctrd;
    let with_ns = format!("network:{}", sandbox.path().display());
    let mut run = foreground_run_with(ctrd, &with_ns, image, id, pair.args);
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    console
        .wait_for(marker, BOOT_LIMIT)
        .unwrap_or_else(|e| panic!("{e:?}\n{}\n{}", console.text(), ctrd.log_tail(80)));
    let vmms = env.vmm_processes();
    assert_eq!(vmms.len(), 1, "one VMM runs: {vmms:?}");
    assert_network_attached(sandbox, vmms[0].0);
    assert_storage_given(env, pair, id, vmms[0].clone());

    let asked = Instant::now();
    ctr_ok(ctrd, &["task", "kill", "-s", signal, id]);
    let status = run
        .wait_within(GRACE + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{signal}: {e:?}\n{}", ctrd.log_tail(80)));
    let took = asked.elapsed();
    assert!(
        eventually(Duration::from_secs(10), || env.vmm_processes().is_empty()),
        "the VMM outlived its task: {:?}",
        env.vmm_processes()
    );
    ctr_ok(ctrd, &["container", "rm", id]);
    (status, took)
}

/// The pod has one urunc tap, with eth0's MTU, and the VMM holds it open.
fn assert_network_attached(sandbox: &SandboxNetns, vmm: i32) {
    assert_eq!(sandbox.mtu_of(SANDBOX_IF).expect("eth0's MTU"), POD_MTU);
    let snapshot = sandbox.snapshot().expect("snapshot the pod");
    let taps = snapshot.urunc_taps();
    assert_eq!(taps.len(), 1, "one tap in the pod: {:?}", snapshot.links);
    let tap = taps[0].as_str();
    assert_eq!(
        sandbox.mtu_of(tap).expect("the tap's MTU"),
        POD_MTU,
        "{tap}"
    );
    let held = open_taps(vmm);
    assert!(
        held.iter().any(|name| name == tap),
        "the VMM holds no fd on {tap}: {held:?}"
    );
}

/// linux: the VMM holds the disk image (in the container's rootfs) open. unikraft (firecracker
/// only): the VMM's configuration file names the initrd, which firecracker loads into guest
/// memory before the guest runs (so it is not held) and without which it does not start.
fn assert_storage_given(env: &KvmVmmContainerd, pair: &Pair, id: &str, vmm: (i32, String)) {
    let rootfs = env.ctrd.bundle_dir(id).join("rootfs");
    let (pid, cmdline) = vmm;
    match pair.storage {
        Storage::Block => {
            let disk = rootfs.join(BLOCK.trim_start_matches('/'));
            let held = open_files(pid);
            assert!(
                held.contains(&disk),
                "the VMM does not hold {}: {held:?}",
                disk.display()
            );
        }
        Storage::Initrd => {
            let config = cmdline
                .split_whitespace()
                .skip_while(|arg| *arg != "--config-file")
                .nth(1)
                .unwrap_or_else(|| panic!("no --config-file: {cmdline}"));
            let text = std::fs::read_to_string(config).expect("the VMM's config file");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let initrd = rootfs.join(INITRD.trim_start_matches('/'));
            assert_eq!(
                json["boot-source"]["initrd_path"].as_str(),
                Some(&*initrd.display().to_string()),
                "{text}"
            );
        }
    }
}
