//! Every unikernel kind qemu is paired with, booted through containerd and our shim under the
//! accelerator the shim picks (KVM, or TCG after a logged fallback): unikraft, mirage, mewz
//! and hermit on `-M pc` (the linux and freebsd kinds have tests of their own). No guest of
//! those kinds can be built here, so the PVH stand-in (`urunc_tests::guests::pvh`) plays each:
//! qemu boots it through its PVH note on `-M pc` as on microvm, and it ignores its command
//! line and storage. What is checked is what the shim gives qemu for the kind:
//!
//! * qemu starts with the kind's plan and the guest's marker reaches `ctr run`'s stdout
//!   (COM1 is qemu's stdio);
//! * qemu holds the pod's tap open;
//! * the kind's storage reached qemu: the block image held open (mirage), the initrd named
//!   on its command line (unikraft, hermit);
//! * SIGTERM ends it within [`GRACE`] (no power-button path for these kinds: qemu gets the
//!   signal) with the status qemu ends with on SIGTERM, SIGKILL ends it with 137;
//! * no tap, qdisc, filter, VMM, shim or state folder is left.

mod shim_support;

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, ctr_ok, eventually, foreground_run,
    import_unikernel_files, vmms_mentioning,
};
use urunc_tests::guests::{pvh_guest, spawn_with_console, PvhBehaviour};
use urunc_tests::host_processes::{open_files, open_taps};
use urunc_tests::sandbox::SandboxNetns;
use urunc_tests::PrivateContainerd;

/// How long a stop may take: a third of the kubelet's default grace period (30 s).
const GRACE: Duration = Duration::from_secs(10);
/// TCG on a loaded CI machine.
const BOOT_LIMIT: Duration = Duration::from_secs(90);
const KERNEL: &str = "/unikernel/kernel";
const BLOCK: &str = "/unikernel/disk.img";
const INITRD: &str = "/unikernel/initrd";
/// qemu's status when SIGTERM ends it: it exits 0 ("terminating on signal 15").
const QEMU_SIGTERM_EXIT: i32 = 0;

/// What the image gives the guest besides its kernel.
#[derive(Clone, Copy)]
enum Storage {
    Block,
    Initrd,
    /// Mewz's application is the kernel itself.
    None,
}

#[test]
fn unikraft_boots_on_qemu_and_stops() {
    boots_and_stops(
        "unikraft_boots_on_qemu_and_stops",
        "unikraft",
        Storage::Initrd,
    );
}

#[test]
fn mirage_boots_on_qemu_and_stops() {
    boots_and_stops("mirage_boots_on_qemu_and_stops", "mirage", Storage::Block);
}

#[test]
fn mewz_boots_on_qemu_and_stops() {
    boots_and_stops("mewz_boots_on_qemu_and_stops", "mewz", Storage::None);
}

#[test]
fn hermit_boots_on_qemu_and_stops() {
    boots_and_stops("hermit_boots_on_qemu_and_stops", "hermit", Storage::Initrd);
}

fn boots_and_stops(test: &str, kind: &str, storage: Storage) {
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = format!("{kind}-on-qemu-ready");
    let image = format!("docker.io/library/pvh-{kind}-qemu:test");
    import_kind(&ctrd, dir.path(), &image, &marker, kind, storage);
    let sandbox = SandboxNetns::create().expect("sandbox netns");
    let run = |id: &str, signal: &str| {
        boot_then_signal(&ctrd, &sandbox, &image, &marker, storage, id, signal)
    };

    let (status, took) = run(&format!("{kind}-term"), "SIGTERM");
    println!(
        "{test}: SIGTERM -> ctr run exit {:?} after {took:?}",
        status.code()
    );
    assert!(
        took < GRACE,
        "SIGTERM took {took:?}; the shim log:\n{}",
        ctrd.log_tail(80)
    );
    assert_eq!(
        status.code(),
        Some(QEMU_SIGTERM_EXIT),
        "SIGTERM did not end qemu as it ends on SIGTERM"
    );

    let (status, took) = run(&format!("{kind}-kill"), "SIGKILL");
    println!(
        "{test}: SIGKILL -> ctr run exit {:?} after {took:?}",
        status.code()
    );
    assert_eq!(status.code(), Some(128 + 9), "SIGKILL did not end qemu");

    assert_sandbox_clean(&sandbox, "after both runs");
    assert_nothing_left(&ctrd);
}

fn import_kind(
    ctrd: &PrivateContainerd,
    dir: &Path,
    image: &str,
    marker: &str,
    kind: &str,
    storage: Storage,
) {
    let kernel = pvh_guest(dir, PvhBehaviour::HaltForever, marker).expect("pvh guest");
    let storage_file = dir.join("storage.img");
    std::fs::write(&storage_file, vec![0u8; 1 << 20]).expect("write the storage file");
    let mut files = vec![(KERNEL, kernel.as_path())];
    let mut config = vec![
        ("unikernelType", kind),
        ("hypervisor", "qemu"),
        ("binary", KERNEL),
    ];
    match storage {
        Storage::Block => {
            files.push((BLOCK, &storage_file));
            config.push(("block", BLOCK));
        }
        Storage::Initrd => {
            files.push((INITRD, &storage_file));
            config.push(("initrd", INITRD));
        }
        Storage::None => {}
    }
    import_unikernel_files(ctrd, dir, image, &files, &config);
}

/// Runs `image` as container `id` in the pod, checks the boot, sends `signal`; returns how
/// `ctr run` ended and how long after the signal. The container is removed.
fn boot_then_signal(
    ctrd: &PrivateContainerd,
    sandbox: &SandboxNetns,
    image: &str,
    marker: &str,
    storage: Storage,
    id: &str,
    signal: &str,
) -> (ExitStatus, Duration) {
    let with_ns = format!("network:{}", sandbox.path().display());
    let mut run = foreground_run(ctrd, &with_ns, image, id);
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    console
        .wait_for(marker, BOOT_LIMIT)
        .unwrap_or_else(|e| panic!("{e:?}\n{}\n{}", console.text(), ctrd.log_tail(80)));
    let bundle = ctrd.bundle_dir(id);
    let vmms = vmms_mentioning(&bundle.display().to_string());
    assert_eq!(vmms.len(), 1, "one VMM runs: {vmms:?}");
    let (pid, cmdline) = vmms[0].clone();
    assert_tap_held(sandbox, pid);
    assert_storage_given(&bundle.join("rootfs"), storage, pid, &cmdline);

    let asked = Instant::now();
    ctr_ok(ctrd, &["task", "kill", "-s", signal, id]);
    let status = run
        .wait_within(GRACE + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{signal}: {e:?}\n{}", ctrd.log_tail(80)));
    let took = asked.elapsed();
    let bundle_text = bundle.display().to_string();
    assert!(
        eventually(Duration::from_secs(10), || vmms_mentioning(&bundle_text)
            .is_empty()),
        "qemu outlived its task: {:?}",
        vmms_mentioning(&bundle_text)
    );
    ctr_ok(ctrd, &["container", "rm", id]);
    (status, took)
}

/// The pod has one urunc tap and qemu holds it open.
fn assert_tap_held(sandbox: &SandboxNetns, vmm: i32) {
    let snapshot = sandbox.snapshot().expect("snapshot the pod");
    let taps = snapshot.urunc_taps();
    assert_eq!(taps.len(), 1, "one tap in the pod: {:?}", snapshot.links);
    let held = open_taps(vmm);
    assert!(
        held.iter().any(|name| name == taps[0]),
        "qemu holds no fd on {}: {held:?}",
        taps[0]
    );
}

/// mirage: qemu holds the disk image open; unikraft and hermit: qemu was started with the
/// initrd (it reads it into guest memory at its start, so it does not hold it).
fn assert_storage_given(rootfs: &Path, storage: Storage, pid: i32, cmdline: &str) {
    match storage {
        Storage::Block => {
            let disk = rootfs.join(BLOCK.trim_start_matches('/'));
            let held = open_files(pid);
            assert!(
                held.contains(&disk),
                "qemu does not hold {}: {held:?}",
                disk.display()
            );
        }
        Storage::Initrd => {
            let initrd = rootfs.join(INITRD.trim_start_matches('/'));
            let given = cmdline
                .split_whitespace()
                .skip_while(|arg| *arg != "-initrd")
                .nth(1);
            assert_eq!(
                given,
                Some(&*initrd.display().to_string()),
                "qemu's -initrd: {cmdline}"
            );
        }
        Storage::None => {}
    }
}
