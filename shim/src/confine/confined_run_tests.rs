//! Real confined runs (root only): a static busybox as the "VMM" looks around from inside, then
//! qemu itself runs confined, once for `--version` and once booting a Linux kernel to its panic.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtime_core::oci::Process;
use runtime_core::Accel;

use super::host_files::HostFiles;
use super::test_reaper::{self, find_program, is_root};
use super::{elf, plan, ConfineInput, ConfineTarget, Confinement, GuestFiles};

pub(super) const BUSYBOX: &str = "/bin/busybox";
const UID: u32 = 1000;

/// uid/gid 1000, groups 1001 and 1002, CAP_NET_BIND_SERVICE only (ambient, so it survives
/// exec as a non-root user), one rlimit.
fn confined_process() -> Process {
    serde_json::from_value(serde_json::json!({
        "user": {"uid": UID, "gid": 1000, "additionalGids": [1001, 1002]},
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}]
    }))
    .expect("process")
}

/// A container-like folder: a rootfs with the guest's files and an empty directory for the
/// VMM's root. Removed on drop.
pub(super) struct Bundle {
    pub(super) dir: tempfile::TempDir,
}

impl Bundle {
    pub(super) fn new() -> Bundle {
        let dir = tempfile::tempdir().expect("tempdir");
        // The confined user must reach the guest's files, as a VMM user would in a real bundle.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let bundle = Bundle { dir };
        std::fs::create_dir(bundle.rootfs()).expect("rootfs");
        std::fs::create_dir(bundle.new_root()).expect("new root");
        bundle
    }

    pub(super) fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn new_root(&self) -> PathBuf {
        self.dir.path().join("vmm-root")
    }

    pub(super) fn guest_file(&self, name: &str, contents: &[u8], owner: Option<u32>) -> PathBuf {
        let path = self.rootfs().join(name);
        std::fs::write(&path, contents).expect("write guest file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&path, Some(uid), None).expect("chown");
        }
        path
    }
}

/// Spawns `command` confined, through the tests' shared reaper, and returns its exit code and
/// everything it printed.
async fn run_confined(
    mut command: Command,
    confinement: Confinement,
    output: &Path,
) -> (u32, String) {
    let log = File::create(output).expect("output file");
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log);
    let namespace = super::build_and_install_for_test(confinement, &mut command);
    let (child, mut exit) = test_reaper::shared()
        .spawn(&mut command)
        .expect("spawn the confined program");
    drop(command);
    let read_output = || std::fs::read_to_string(output).expect("read the output");
    let ended = tokio::time::timeout(Duration::from_secs(60), &mut exit).await;
    namespace.release();
    match ended {
        Ok(code) => (code.expect("the reaper delivers its exit"), read_output()),
        Err(_) => {
            let pid = Pid::from_raw(child.id() as i32);
            if let Err(error) = kill(pid, Signal::SIGKILL) {
                eprintln!("cannot kill the confined program {pid}: {error}");
            }
            let _ = exit.await;
            panic!(
                "the confined program did not end in time:\n{}",
                read_output()
            );
        }
    }
}

fn sections(output: &str) -> Vec<Vec<&str>> {
    output
        .split("---\n")
        .map(|section| section.lines().collect())
        .collect()
}

pub(super) fn preconditions(programs: &[&str]) -> bool {
    if !is_root() {
        skipped!("SKIPPED: confinement needs root (mount namespaces, pivot_root, setuid)");
        return false;
    }
    for program in programs {
        if find_program(program).is_none() && !Path::new(program).exists() {
            skipped!("SKIPPED: {program} is not installed");
            return false;
        }
    }
    true
}

#[tokio::test]
async fn busybox_sees_only_its_confinement() {
    if !preconditions(&[BUSYBOX]) {
        return;
    }
    let needs = elf::read_needs(Path::new(BUSYBOX)).expect("read busybox");
    if needs.interpreter.is_some() {
        skipped!("SKIPPED: {BUSYBOX} is not static (apt-get install busybox-static)");
        return;
    }
    let bundle = Bundle::new();
    let kernel = bundle.guest_file("kernel", b"pretend kernel\n", None);
    let block = bundle.guest_file("disk.img", b"", Some(UID));
    let guest = GuestFiles {
        kernel: Some(kernel.clone()),
        block: Some(block.clone()),
        ..GuestFiles::default()
    };
    let host = HostFiles {
        program: PathBuf::from(BUSYBOX),
        ..HostFiles::default()
    };
    let process = confined_process();
    let new_root = bundle.new_root();
    let plan = plan(&ConfineInput {
        target: ConfineTarget {
            new_root: &new_root,
            guest: &guest,
            accel: Accel::Tcg,
            networked: true,
            process: Some(&process),
        },
        host: &host,
        last_capability: super::kernel_last_capability().expect("cap_last_cap"),
    })
    .expect("plan");
    let confinement = Confinement::prepare(&plan).expect("prepare");

    let script = format!(
        "bb={BUSYBOX}; $bb ls -1 /; echo ---; $bb ls -1 /dev; echo ---; $bb ls -1 /dev/net; echo ---; \
         $bb id; echo ---; $bb grep -E '^(NoNewPrivs|CapEff|CapBnd|CapAmb)' /proc/self/status; echo ---; \
         $bb cat {kernel}; echo ---; \
         if (echo x >> {kernel}) 2>/dev/null; then echo kernel-writable; else echo kernel-read-only; fi; \
         if echo y >> {block}; then echo block-writable; fi; \
         if $bb touch /new-file 2>/dev/null; then echo root-writable; else echo root-read-only; fi; \
         ulimit -n; echo ---; $bb awk '{{print $5, $6}}' /proc/self/mountinfo",
        kernel = kernel.display(),
        block = block.display(),
    );
    let mut command = Command::new(&plan.program);
    command.args(["sh", "-c", &script]);
    let (code, output) = run_confined(command, confinement, &bundle.dir.path().join("out")).await;
    assert_eq!(code, 0, "confined busybox failed:\n{output}");

    let parts = sections(&output);
    assert_eq!(parts.len(), 8, "{output}");
    let top = bundle
        .dir
        .path()
        .components()
        .nth(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .expect("tempdir under a top-level directory");
    let mut expected_root = vec!["bin".to_string(), "dev".into(), "proc".into(), top];
    expected_root.sort();
    assert_eq!(
        parts[0], expected_root,
        "the root shows host files:\n{output}"
    );
    assert_eq!(parts[1], ["net", "null", "urandom", "zero"], "{output}");
    assert_eq!(parts[2], ["tun"], "{output}");
    assert_eq!(parts[3], ["uid=1000 gid=1000 groups=1001,1002"], "{output}");
    let status: Vec<&str> = parts[4].to_vec();
    for expected in [
        "CapEff:\t0000000000000400",
        "CapBnd:\t0000000000000400",
        "CapAmb:\t0000000000000400",
        "NoNewPrivs:\t1",
    ] {
        assert!(
            status.contains(&expected),
            "missing {expected:?} in {status:?}"
        );
    }
    assert_eq!(parts[5], ["pretend kernel"], "{output}");
    assert_eq!(
        parts[6],
        [
            "kernel-read-only",
            "block-writable",
            "root-read-only",
            "512"
        ],
        "{output}"
    );
    // Each mount's own flags (`/proc/self/mountinfo`'s per-mount options).
    let flags_of = |path: &str| -> Vec<String> {
        let line = parts[7]
            .iter()
            .find(|line| line.split(' ').next() == Some(path))
            .unwrap_or_else(|| panic!("no mount at {path}:\n{output}"));
        line.split(' ')
            .nth(1)
            .unwrap_or("")
            .split(',')
            .map(str::to_string)
            .collect()
    };
    for (path, present, absent) in [
        (
            BUSYBOX.to_string(),
            &["ro", "nosuid", "nodev"][..],
            &["noexec"][..],
        ),
        (
            kernel.display().to_string(),
            &["ro", "nosuid", "nodev", "noexec"],
            &[],
        ),
        (
            block.display().to_string(),
            &["rw", "nosuid", "nodev", "noexec"],
            &[],
        ),
        (
            "/dev/null".to_string(),
            &["rw", "nosuid", "noexec"],
            &["nodev"],
        ),
    ] {
        let flags = flags_of(&path);
        for flag in present {
            assert!(
                flags.iter().any(|f| f == flag),
                "{path} lacks {flag}: {flags:?}"
            );
        }
        for flag in absent {
            assert!(
                !flags.iter().any(|f| f == flag),
                "{path} has {flag}: {flags:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read_to_string(&kernel).expect("kernel"),
        "pretend kernel\n"
    );
    assert_eq!(std::fs::read_to_string(&block).expect("block"), "y\n");
    let left = std::fs::read_dir(bundle.new_root())
        .expect("new root")
        .count();
    assert_eq!(
        left, 0,
        "the VMM's mounts leaked into the host's view of its root"
    );
}

#[tokio::test]
async fn a_failed_step_is_reported_with_its_path() {
    if !preconditions(&[BUSYBOX]) {
        return;
    }
    let bundle = Bundle::new();
    let error = busybox_root(&bundle, bundle.rootfs().join("absent-kernel"))
        .finish()
        .err()
        .expect("the bind mount of a missing file fails");
    match error {
        crate::error::ShimError::VmmRoot { report, source } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT), "{report}");
            assert!(
                report.contains("bind-mount") && report.contains("absent-kernel"),
                "{report}"
            );
        }
        other => panic!("not the root helper's failure: {other}"),
    }
}

/// Delete without Start (or the shim's death, which closes the same descriptor): the helper
/// that built the root ends by itself, and `ps` never shows it as a shim.
#[tokio::test]
async fn a_root_never_used_ends_its_helper_when_dropped() {
    if !preconditions(&[BUSYBOX]) {
        return;
    }
    let bundle = Bundle::new();
    let new_root = bundle.new_root();
    let building = busybox_root(&bundle, bundle.guest_file("kernel", b"kernel", None));
    let proc_dir = PathBuf::from(format!("/proc/{}", building.pid()));
    let titled = wait_for(|| {
        std::fs::read(proc_dir.join("cmdline")).is_ok_and(|c| c.starts_with(b"urunc-vmm-root"))
    })
    .await;
    let mounts_here = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    drop(building);
    let ended = wait_for(|| !proc_dir.exists()).await;
    assert!(titled, "the helper is not titled urunc-vmm-root");
    assert!(ended, "the helper outlived its RootInProgress");
    assert!(
        !mounts_here.contains(&new_root.display().to_string()),
        "the helper's mounts leaked into the caller's namespace"
    );
}

/// The root of the static busybox as the VMM program (as root, without network) with
/// `kernel` as the guest's one file, being built in `bundle`.
fn busybox_root(bundle: &Bundle, kernel: PathBuf) -> super::root_helper::RootInProgress {
    busybox_confinement(bundle, kernel)
        .start_building(&test_reaper::shared())
        .expect("fork the root helper")
}

/// The confinement of the static busybox as the VMM program (as root, without network) with
/// `kernel` as the guest's one file, its root in `bundle`.
pub(super) fn busybox_confinement(bundle: &Bundle, kernel: PathBuf) -> Confinement {
    let host = HostFiles {
        program: PathBuf::from(BUSYBOX),
        ..HostFiles::default()
    };
    let guest = GuestFiles {
        kernel: Some(kernel),
        ..GuestFiles::default()
    };
    let plan = plan(&ConfineInput {
        target: ConfineTarget {
            new_root: &bundle.new_root(),
            guest: &guest,
            accel: Accel::Tcg,
            networked: false,
            process: None,
        },
        host: &host,
        last_capability: super::kernel_last_capability().expect("cap_last_cap"),
    })
    .expect("plan");
    Confinement::prepare(&plan).expect("prepare")
}

/// Polls `done` for up to 10 s.
pub(super) async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn qemu_runs_confined_with_its_libraries() {
    if !preconditions(&["qemu-system-x86_64"]) {
        return;
    }
    let bundle = Bundle::new();
    let kernel = bundle.guest_file("kernel", b"unused\n", None);
    let guest = GuestFiles {
        kernel: Some(kernel),
        ..GuestFiles::default()
    };
    let process = confined_process();
    let new_root = bundle.new_root();
    let (plan, confinement) = super::prepare_test_qemu(&new_root, &guest, &process);
    let mut command = Command::new(&plan.program);
    command.arg("--version");
    let (code, output) = run_confined(command, confinement, &bundle.dir.path().join("out")).await;
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("QEMU emulator version"), "{output}");
}

/// The strongest check that nothing qemu needs is missing: firmware (microvm's qboot), the TCG
/// accelerator module and the kernel are all read from inside the confinement.
#[tokio::test]
async fn qemu_boots_a_linux_kernel_confined() {
    if !preconditions(&["qemu-system-x86_64"]) {
        return;
    }
    let Some(host_kernel) = debian_kernel() else {
        skipped!("SKIPPED: no /boot/vmlinuz-* kernel to boot");
        return;
    };
    let bundle = Bundle::new();
    let kernel = bundle.guest_file(
        "vmlinuz",
        &std::fs::read(&host_kernel).expect("read the host kernel"),
        None,
    );
    let guest = GuestFiles {
        kernel: Some(kernel.clone()),
        ..GuestFiles::default()
    };
    let process = confined_process();
    let new_root = bundle.new_root();
    let (plan, confinement) = super::prepare_test_qemu(&new_root, &guest, &process);
    let mut command = Command::new(&plan.program);
    command
        .args([
            "-M", "microvm", "-accel", "tcg", "-cpu", "max", "-m", "256M",
        ])
        .args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"])
        .args(["-serial", "stdio", "-kernel"])
        .arg(&kernel)
        .arg("-append")
        .arg(guest_cmdline());
    let (code, output) = run_confined(command, confinement, &bundle.dir.path().join("out")).await;
    assert!(
        output.contains("Linux version"),
        "the kernel did not boot (exit {code}):\n{output}"
    );
    assert!(
        output.contains("Kernel panic"),
        "the kernel did not reach its expected panic (no root):\n{output}"
    );
    assert_eq!(
        code, 0,
        "qemu exits cleanly on the guest's reboot:\n{output}"
    );
}

/// microvm has no HPET or PM timer: without the TSC frequency a loaded host makes the guest's
/// calibration fail and the boot stall (the shim adds the same argument).
fn guest_cmdline() -> String {
    let mut cmdline = "console=ttyS0 panic=-1 reboot=t".to_string();
    if let Some(tsc) = crate::host::tsc_early_khz_arg() {
        cmdline.push(' ');
        cmdline.push_str(&tsc);
    }
    cmdline
}

fn debian_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}
