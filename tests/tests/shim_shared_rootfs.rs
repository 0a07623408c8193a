//! urunc's shared-filesystem rootfs, booted through containerd: an image with
//! `mountRootfs=true` on the overlayfs snapshotter (its rootfs is no block device) boots a
//! Linux guest on qemu/TCG whose `/` is the container rootfs over 9p (Debian's generic kernel)
//! or virtiofs (the cloud kernel, Debian's C virtiofsd). The guest's own `/sbin/init` prints a
//! file only the image has and the mount tag and filesystem on `/`; its console reaches
//! `ctr`. After kill and delete, and after a SIGKILLed shim's cleanup: no VMM, no virtiofsd,
//! no socket, no pid file, no mount, no state.

mod shim_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shim_support::{
    assert_nothing_left, containerd_with, ctr, ctr_ok, eventually, processes_mentioning, shims_of,
    state_dir, vmms_mentioning, RUNTIME,
};
use urunc_tests::containerd::{ContainerdOptions, PrivateContainerd};
use urunc_tests::guests::block_root::{booted_from_line, rooted_image_archive};
use urunc_tests::guests::shared_root::{shared_root_guest, SharedRoot, ROOT_TAG};
use urunc_tests::guests::spawn_with_console;
use urunc_tests::host_processes::parent_of;
use urunc_tests::mounts::mounts_under;

use shim_support::NODE_CONFIG_ENV as CONFIG_ENV;
/// Debian's qemu 7.2 C daemon (package qemu-system-common).
const VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// A private containerd whose shims read a node configuration naming `virtiofsd` as the
/// virtiofs daemon (a path that does not exist makes urunc's choice 9p), with the image of a
/// guest booted from `root` imported as `image`. `None` after SKIPPED.
fn setup(
    test: &str,
    dir: &Path,
    root: SharedRoot,
    virtiofsd: &str,
    image: &str,
) -> Option<PrivateContainerd> {
    let entries = match shared_root_guest(dir, root) {
        Ok(entries) => entries,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return None;
        }
    };
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("[extra_binaries.virtiofsd]\npath = {virtiofsd:?}\n"),
    )
    .expect("write config");
    let ctrd = containerd_with(
        test,
        &["qemu-system-x86_64"],
        ContainerdOptions {
            extra_env: vec![(CONFIG_ENV.to_string(), config.display().to_string())],
            ..ContainerdOptions::default()
        },
    )?;
    let archive = rooted_image_archive(dir, image, entries).expect("pack the image");
    ctrd.import(&archive).expect("import the image");
    Some(ctrd)
}

/// [`setup`] with Debian's virtiofsd; SKIPPED without it.
fn virtiofs_setup(test: &str, dir: &Path, image: &str) -> Option<PrivateContainerd> {
    if !Path::new(VIRTIOFSD).is_file() {
        urunc_tests::skipped!("SKIPPED: {test}: {VIRTIOFSD} missing (qemu-system-common)");
        return None;
    }
    setup(test, dir, SharedRoot::Virtiofs, VIRTIOFSD, image)
}

/// Where the shim puts container `id`'s virtiofsd socket, and the pid file the C daemon
/// writes for it.
fn virtiofsd_files(ctrd: &PrivateContainerd, id: &str) -> (PathBuf, PathBuf) {
    let socket = state_dir(ctrd).join(id).join("vmm/virtiofs.sock");
    let pid_file = PathBuf::from(format!(
        "/run/virtiofsd/{}.pid",
        socket.display().to_string().replace('/', ".")
    ));
    (socket, pid_file)
}

fn daemons_serving(socket: &Path) -> Vec<(i32, String)> {
    processes_mentioning(&format!("--socket-path={}", socket.display()))
}

/// The daemons the shim started: its processes whose parent is not one of them (the C
/// daemon's own `sandbox=namespace` forks once more; the shim runs it with `sandbox=chroot`,
/// which does not).
fn daemons_started(socket: &Path) -> Vec<(i32, String)> {
    let all = daemons_serving(socket);
    let pids: Vec<i32> = all.iter().map(|(pid, _)| *pid).collect();
    all.into_iter()
        .filter(|(pid, _)| !parent_of(*pid).is_some_and(|parent| pids.contains(&parent)))
        .collect()
}

/// Boots the guest in the foreground, checks its console and what runs beside it, kills and
/// removes it, and checks nothing is left.
fn boot_and_remove(ctrd: &PrivateContainerd, image: &str, id: &str, root: SharedRoot) {
    let mut run = ctrd.ctr_command(&["run", "--runtime", RUNTIME, image, id]);
    let started = Instant::now();
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let booted = console.wait_for(&booted_from_line(ROOT_TAG, root.fs_type()), BOOT_TIMEOUT);
    eprintln!(
        "{} rootfs: from ctr run to the guest's init on it in {:?} (TCG)",
        root.fs_type(),
        started.elapsed()
    );
    assert!(
        booted.is_ok(),
        "the guest did not run from its {} rootfs: {booted:?}\nconsole:\n{}\ncontainerd:\n{}",
        root.fs_type(),
        console.text(),
        ctrd.log_tail(60)
    );
    let (socket, pid_file) = virtiofsd_files(ctrd, id);
    let daemons = daemons_started(&socket);
    match root {
        SharedRoot::Virtiofs => {
            assert_eq!(daemons.len(), 1, "one virtiofsd: {daemons:?}");
            let vmms = vmms_mentioning(id);
            assert_eq!(vmms.len(), 1, "one VMM: {vmms:?}");
            assert_confined_like_the_vmm(&daemons[0], vmms[0].0);
        }
        SharedRoot::NineP => assert!(daemons.is_empty(), "9p needs no daemon: {daemons:?}"),
    }

    ctr_ok(ctrd, &["task", "kill", "-s", "SIGKILL", id]);
    let status = run
        .wait_within(Duration::from_secs(60))
        .expect("ctr run ends");
    assert_eq!(status.code(), Some(137));
    ctr_ok(ctrd, &["container", "rm", id]);
    assert_gone(ctrd, id, &socket, &pid_file);
}

/// The daemon serving a booted guest runs in the VMM's cgroup, in a mount namespace of its
/// own whose root is the served rootfs, with the serving capabilities runtime-core lists and no
/// others (its own sandbox dropped the two it used once), under no_new_privs and a seccomp
/// filter (its own).
fn assert_confined_like_the_vmm((pid, cmdline): &(i32, String), vmm: i32) {
    let cgroup = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    assert_eq!(
        cgroup(*pid),
        cgroup(vmm),
        "virtiofsd is in the VMM's cgroup"
    );
    assert_ne!(
        cgroup(*pid),
        cgroup(std::process::id() as i32),
        "the container's cgroup is not the test's"
    );

    let served = cmdline
        .split(' ')
        .find_map(|word| word.strip_prefix("source="))
        .expect("-o source= in its command line");
    // Its own chroot (inside the confinement) leaves it the served rootfs as its root, in a
    // mount namespace that is not the host's.
    let root = std::fs::read_link(format!("/proc/{pid}/root")).expect("its root");
    assert_eq!(root, Path::new(served), "virtiofsd's root");
    let mount_ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).expect("ns");
    assert_ne!(
        mount_ns(*pid),
        mount_ns(std::process::id() as i32),
        "its own mount namespace"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:\t")))
            .unwrap_or_else(|| panic!("{name} missing from {status}"))
            .to_string()
    };
    let mask = |names: &[&str]| {
        names.iter().fold(0u64, |mask, name| {
            mask | 1 << runtime_core::oci::capability_number(name).expect("a capability")
        })
    };
    let serving = mask(&runtime_core::VIRTIOFSD_SERVING_CAPABILITIES);
    let granted = serving | mask(&runtime_core::VIRTIOFSD_SANDBOX_CAPABILITIES);
    let caps = |name: &str| u64::from_str_radix(&field(name), 16).expect("hex");
    assert_eq!(caps("CapEff"), serving, "CapEff: {}", field("CapEff"));
    assert_eq!(caps("CapPrm"), serving, "CapPrm: {}", field("CapPrm"));
    assert_eq!(caps("CapBnd") & !granted, 0, "CapBnd: {}", field("CapBnd"));
    assert_eq!(field("NoNewPrivs"), "1");
    assert_eq!(field("Seccomp"), "2", "its own seccomp filter");
    eprintln!(
        "virtiofsd pid {pid}: CapEff {} CapBnd {}, root {}",
        field("CapEff"),
        field("CapBnd"),
        root.display()
    );
}

fn assert_gone(ctrd: &PrivateContainerd, id: &str, socket: &Path, pid_file: &Path) {
    assert!(
        eventually(Duration::from_secs(10), || daemons_serving(socket)
            .is_empty()),
        "virtiofsd left: {:?}",
        daemons_serving(socket)
    );
    assert!(vmms_mentioning(id).is_empty(), "{:?}", vmms_mentioning(id));
    assert!(!socket.exists(), "socket left: {}", socket.display());
    assert!(!pid_file.exists(), "pid file left: {}", pid_file.display());
    assert!(
        mounts_under(ctrd.dir()).expect("mountinfo").is_empty(),
        "{:?}",
        mounts_under(ctrd.dir())
    );
    assert_nothing_left(ctrd);
}

#[test]
fn linux_guest_boots_from_a_9p_rootfs_and_leaves_nothing() {
    let test = "linux_guest_boots_from_a_9p_rootfs_and_leaves_nothing";
    let dir = tempfile::tempdir().expect("tempdir");
    let image = "docker.io/library/linux-9p-root:test";
    let no_virtiofsd = dir.path().join("no-virtiofsd").display().to_string();
    let Some(ctrd) = setup(test, dir.path(), SharedRoot::NineP, &no_virtiofsd, image) else {
        return;
    };
    boot_and_remove(&ctrd, image, "root-9p", SharedRoot::NineP);
}

#[test]
fn linux_guest_boots_from_a_virtiofs_rootfs_and_leaves_nothing() {
    let image = "docker.io/library/linux-virtiofs-root:test";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(ctrd) = virtiofs_setup(
        "linux_guest_boots_from_a_virtiofs_rootfs_and_leaves_nothing",
        dir.path(),
        image,
    ) else {
        return;
    };
    boot_and_remove(&ctrd, image, "root-vfs", SharedRoot::Virtiofs);
}

#[test]
fn a_sigkilled_shims_cleanup_stops_virtiofsd_and_removes_its_files() {
    let image = "docker.io/library/linux-virtiofs-crash:test";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(ctrd) = virtiofs_setup(
        "a_sigkilled_shims_cleanup_stops_virtiofsd_and_removes_its_files",
        dir.path(),
        image,
    ) else {
        return;
    };
    let id = "vfs-crash";
    ctr_ok(&ctrd, &["run", "-d", "--runtime", RUNTIME, image, id]);
    let (socket, pid_file) = virtiofsd_files(&ctrd, id);
    assert_eq!(daemons_started(&socket).len(), 1, "one virtiofsd runs");
    assert!(socket.exists() && pid_file.exists());
    assert_eq!(vmms_mentioning(id).len(), 1, "one VMM runs");
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    kill(Pid::from_raw(shims[0].0), Signal::SIGKILL).expect("kill -9 the shim");

    // containerd sees the shim die and runs `containerd-shim-urunc-v2 delete` in the bundle.
    assert!(
        eventually(Duration::from_secs(30), || daemons_serving(&socket)
            .is_empty()),
        "virtiofsd survived the dead shim's cleanup: {:?}\n{}",
        daemons_serving(&socket),
        ctrd.log_tail(40)
    );
    let deleted = ctr(&ctrd, &["task", "delete", id], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        deleted.status.success() || stderr.contains("not found"),
        "task delete: {stderr}"
    );
    ctr_ok(&ctrd, &["container", "rm", id]);
    assert_gone(&ctrd, id, &socket, &pid_file);
}

#[test]
fn a_virtiofsd_that_dies_fails_create_naming_it_and_leaves_nothing() {
    let test = "a_virtiofsd_that_dies_fails_create_naming_it_and_leaves_nothing";
    let dir = tempfile::tempdir().expect("tempdir");
    // A program that starts confined and dies at once saying why: static busybox called by a
    // name that is none of its applets. (A script would not start: its interpreter is not in
    // the daemon's confined root.)
    let Ok(busybox) = urunc_tests::host_tools::which("busybox", "busybox-static") else {
        urunc_tests::skipped!("SKIPPED: {test}: busybox is not installed");
        return;
    };
    let fake = dir.path().join("virtiofsd");
    std::fs::copy(&busybox, &fake).expect("copy busybox as the failing daemon");
    let image = "docker.io/library/linux-virtiofs-dies:test";
    let fake_text = fake.display().to_string();
    let Some(ctrd) = setup(test, dir.path(), SharedRoot::Virtiofs, &fake_text, image) else {
        return;
    };
    let id = "vfs-dies";
    let out = ctr(
        &ctrd,
        &["run", "-d", "--runtime", RUNTIME, image, id],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "Create must fail");
    eprintln!("ctr run says: {stderr}");
    for expected in [
        fake_text.as_str(),
        "exited with status 127",
        "virtiofsd: applet not found",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in: {stderr}");
    }
    let (socket, pid_file) = virtiofsd_files(&ctrd, id);
    // ctr leaves the container record after a failed task create.
    let _ = ctr(&ctrd, &["container", "rm", id], Duration::from_secs(30));
    assert_gone(&ctrd, id, &socket, &pid_file);
}
