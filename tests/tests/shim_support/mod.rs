//! Shared by the shim's integration tests: prerequisites (skipping with a reason), the
//! private containerd with our shim, and the "nothing left" checks.

#![allow(dead_code)]

pub mod kvm_vmm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;
use urunc_tests::guests::{pvh_guest, PvhBehaviour};
use urunc_tests::sandbox::{NetSnapshot, SandboxNetns};
pub use urunc_tests::wait::eventually;
use urunc_tests::{ContainerdOptions, PrivateContainerd};

pub const RUNTIME: &str = "io.containerd.urunc.v2";
/// Where the shim keeps per-container state.
pub const STATE_ROOT: &str = "/run/urunc-rs";
/// The variable the shim reads its node configuration's path from (instead of
/// `/etc/urunc/config.toml`).
pub const NODE_CONFIG_ENV: &str = "URUNC_RS_CONFIG";

/// Checks root and the host programs `programs`; prints `SKIPPED: <reason>` and returns false
/// when something is missing.
pub fn prerequisites(test: &str, programs: &[&str]) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        urunc_tests::skipped!("SKIPPED: {test}: needs root (namespaces, mounts, containerd)");
        return false;
    }
    for program in programs {
        if urunc_tests::host_tools::which(program, "").is_err() {
            urunc_tests::skipped!("SKIPPED: {test}: {program} is not installed");
            return false;
        }
    }
    true
}

/// A private containerd with our shim on its PATH; `None` (after printing SKIPPED) when the
/// prerequisites are missing.
pub fn containerd(test: &str, extra: &[&str]) -> Option<PrivateContainerd> {
    containerd_with(test, extra, ContainerdOptions::default())
}

/// Like [`containerd`], set up as `options` say.
pub fn containerd_with(
    test: &str,
    extra: &[&str],
    options: ContainerdOptions,
) -> Option<PrivateContainerd> {
    let mut programs = vec!["containerd", "ctr", "runc"];
    programs.extend_from_slice(extra);
    if !prerequisites(test, &programs) {
        return None;
    }
    Some(PrivateContainerd::start_with(options).expect("start a private containerd"))
}

/// `ctr` with a time limit; panics with containerd's log tail when ctr itself cannot run.
pub fn ctr(ctrd: &PrivateContainerd, args: &[&str], limit: Duration) -> Output {
    ctrd.ctr_within(args, limit)
        .unwrap_or_else(|e| panic!("ctr {args:?}: {e}\n{}", ctrd.log_tail(40)))
}

/// `ctr` that must succeed; returns stdout.
pub fn ctr_ok(ctrd: &PrivateContainerd, args: &[&str]) -> String {
    let out = ctr(ctrd, args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "ctr {args:?} failed ({}): {}\n--- containerd log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        ctrd.log_tail(40)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ctr <args>` against this containerd on a terminal of its own (util-linux's `script`), as
/// `ctr run -t` needs; at most a minute.
pub fn ctr_on_a_pty(ctrd: &PrivateContainerd, args: &str) -> Output {
    let ctr_line = format!(
        "{} --address {} --namespace {} {args}",
        ctrd.ctr_program().display(),
        ctrd.address().display(),
        ctrd.namespace()
    );
    let mut script = Command::new("script");
    script.args(["-qec", &ctr_line, "/dev/null"]);
    urunc_tests::command::output_within(&mut script, Duration::from_secs(60)).expect("script")
}

/// The shim's state folder for this containerd namespace.
pub fn state_dir(ctrd: &PrivateContainerd) -> PathBuf {
    Path::new(STATE_ROOT).join(ctrd.namespace())
}

/// Processes whose command line mentions `needle` (e.g. a bundle path, `-name <id>`).
pub fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) && pid != std::process::id() as i32 {
            found.push((pid, text));
        }
    }
    found
}

/// Shim daemons serving this containerd namespace. A child the shim has forked and not yet
/// exec'd (a VMM about to start) carries the shim's command line too: it is not counted, known
/// by its parent (a shim), by the name of the thread it was forked from (not the daemon's
/// main thread, `containerd-shim`, as the kernel cuts the program's name) or by its pid
/// namespace (a VMM's own; the daemon runs in the host's).
pub fn shims_of(ctrd: &PrivateContainerd) -> Vec<(i32, String)> {
    let candidates: Vec<(i32, String)> =
        processes_mentioning(&format!("-namespace {} ", ctrd.namespace()))
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("containerd-shim-urunc-v2") && cmd.contains("-socket"))
            .collect();
    let pids: Vec<i32> = candidates.iter().map(|(pid, _)| *pid).collect();
    candidates
        .into_iter()
        .filter(|(pid, _)| {
            !urunc_tests::host_processes::parent_of(*pid)
                .is_some_and(|parent| pids.contains(&parent))
        })
        .filter(|(pid, _)| is_daemon_main_process(*pid))
        .collect()
}

/// The daemon's main thread names the process `containerd-shim` (the program's name, cut by
/// the kernel) and it runs in the host's pid namespace; a child forked from another thread, or
/// a VMM in its own pid namespace before its exec, fails one or the other.
fn is_daemon_main_process(pid: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    field("Name:") == "containerd-shim" && field("NSpid:").split_whitespace().count() == 1
}

/// Asserts nothing of ours is left for this containerd namespace: no state folder, no shim.
pub fn assert_nothing_left(ctrd: &PrivateContainerd) {
    let state = state_dir(ctrd);
    assert!(
        eventually(Duration::from_secs(10), || !state.exists()),
        "state folder {} left: {:?}",
        state.display(),
        std::fs::read_dir(&state).map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
    assert!(
        eventually(Duration::from_secs(10), || shims_of(ctrd).is_empty()),
        "shim processes left: {:?}",
        shims_of(ctrd)
    );
}

/// Packs `kernel` (and `initrd`) as a `linux`-on-qemu unikernel image named `name`, imports it.
pub fn import_unikernel(
    ctrd: &PrivateContainerd,
    dir: &Path,
    name: &str,
    kernel: &Path,
    initrd: Option<&Path>,
    extra_urunc: &[(&str, &str)],
) {
    let mut files = vec![("/unikernel/kernel", kernel)];
    let mut urunc = vec![
        ("unikernelType", "linux"),
        ("hypervisor", "qemu"),
        ("binary", "/unikernel/kernel"),
    ];
    if let Some(initrd) = initrd {
        files.push(("/unikernel/initrd", initrd));
        urunc.push(("initrd", "/unikernel/initrd"));
    }
    for (key, value) in extra_urunc {
        urunc.retain(|(k, _)| k != key);
        urunc.push((*key, *value));
    }
    import_unikernel_files(ctrd, dir, name, &files, &urunc);
}

/// Packs `files` (rootfs path, host file) with urunc's configuration `urunc` as unikernel image
/// `name` (the archive in `dir`), imports it.
pub fn import_unikernel_files(
    ctrd: &PrivateContainerd,
    dir: &Path,
    name: &str,
    files: &[(&str, &Path)],
    urunc: &[(&str, &str)],
) {
    let image = urunc_pack::UnikernelImage {
        name: name.to_string(),
        files: files
            .iter()
            .map(|(to, from)| (to.to_string(), from.to_path_buf()))
            .collect(),
        urunc: urunc
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        labels_as_annotations: false,
    };
    let archive = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    urunc_pack::write_oci_archive(&image, &archive).expect("pack unikernel image");
    ctrd.import(&archive).expect("import unikernel image");
}

/// qemu processes whose command line mentions `needle`.
pub fn vmms_mentioning(needle: &str) -> Vec<(i32, String)> {
    processes_mentioning(needle)
        .into_iter()
        .filter(|(_, cmd)| cmd.starts_with("qemu-system"))
        .collect()
}

/// Writes a PVH guest behaving as `behaviour` (printing `marker`) and
/// imports it as unikernel image `image`. The returned folder holds the
/// guest: keep it until the test ends.
pub fn import_pvh_unikernel(
    ctrd: &PrivateContainerd,
    image: &str,
    behaviour: PvhBehaviour,
    marker: &str,
) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = pvh_guest(dir.path(), behaviour, marker).expect("pvh guest");
    import_unikernel(ctrd, dir.path(), image, &kernel, None, &[]);
    dir
}

/// A fresh sandbox network namespace (as a pause container would hold)
/// and the `ctr run --with-ns` value that puts a container in it.
pub fn sandbox_with_ns() -> (SandboxNetns, String) {
    let sandbox = SandboxNetns::create().expect("sandbox netns");
    let with_ns = format!("network:{}", sandbox.path().display());
    (sandbox, with_ns)
}

/// `ctr run -d` of unikernel image `image` as container `id` in the
/// network namespace named by `with_ns` (from [`sandbox_with_ns`]).
pub fn run_detached_in(ctrd: &PrivateContainerd, with_ns: &str, image: &str, id: &str) {
    run_detached_with(ctrd, with_ns, &[], image, id, &[]);
}

/// Like [`run_detached_in`], with `ctr run` options `flags` (e.g. `--cwd /srv`) and the
/// process args `command` instead of the image's.
pub fn run_detached_with(
    ctrd: &PrivateContainerd,
    with_ns: &str,
    flags: &[&str],
    image: &str,
    id: &str,
    command: &[&str],
) {
    let mut args = vec!["run", "-d", "--runtime", RUNTIME, "--with-ns", with_ns];
    args.extend_from_slice(flags);
    args.extend([image, id]);
    args.extend_from_slice(command);
    ctr_ok(ctrd, &args);
}

/// A foreground `ctr run` of unikernel image `image` as container `id` in
/// the network namespace named by `with_ns`: the guest's console is its
/// stdout and it returns when the task exits.
pub fn foreground_run(ctrd: &PrivateContainerd, with_ns: &str, image: &str, id: &str) -> Command {
    foreground_run_with(ctrd, with_ns, image, id, &[])
}

/// Like [`foreground_run`], with the container's process arguments `args`.
pub fn foreground_run_with(
    ctrd: &PrivateContainerd,
    with_ns: &str,
    image: &str,
    id: &str,
    args: &[&str],
) -> Command {
    let mut command = vec!["run", "--runtime", RUNTIME, "--with-ns", with_ns, image, id];
    command.extend_from_slice(args);
    ctrd.ctr_command(&command)
}

/// Asserts the sandbox netns holds no urunc tap, ingress qdisc or tc
/// filter; `context` says when, in the failure message.
pub fn assert_sandbox_clean(sandbox: &SandboxNetns, context: &str) {
    let snapshot = NetSnapshot::take(Some(sandbox.name())).expect("snapshot sandbox");
    assert!(
        snapshot.urunc_taps().is_empty(),
        "{context}: taps left: {:?}",
        snapshot.urunc_taps()
    );
    assert!(
        snapshot.ingress_qdiscs().is_empty(),
        "{context}: qdiscs left: {:?}",
        snapshot.ingress_qdiscs()
    );
    assert!(
        snapshot.filters.is_empty(),
        "{context}: filters left: {:?}",
        snapshot.filters
    );
}

const HOLDER_IMAGE: &str = "docker.io/library/urunc-busybox-holder:test";

/// Runs a busybox `sleep` (the runc path) as container `id` in shim group `group` (CRI's
/// sandbox-id annotation, so later containers of the group reach the same shim); returns the
/// pid of the shim serving it. `dir` must outlive the test.
pub fn run_holder(ctrd: &PrivateContainerd, dir: &Path, id: &str, group: &str) -> i32 {
    ctrd.import(&urunc_tests::images::busybox_image(dir, HOLDER_IMAGE).expect("busybox image"))
        .expect("import");
    let annotation = format!("io.kubernetes.cri.sandbox-id={group}");
    ctr_ok(
        ctrd,
        &[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--annotation",
            &annotation,
            HOLDER_IMAGE,
            id,
            "sleep",
            "600",
        ],
    );
    let shims = shims_of(ctrd);
    assert_eq!(shims.len(), 1, "one shim serves {id}: {shims:?}");
    shims[0].0
}

/// Kills and removes the container [`run_holder`] started.
pub fn remove_holder(ctrd: &PrivateContainerd, id: &str) {
    ctr_ok(ctrd, &["task", "kill", "-s", "SIGKILL", id]);
    assert!(
        eventually(Duration::from_secs(20), || {
            ctr(ctrd, &["task", "delete", id], Duration::from_secs(20))
                .status
                .success()
        }),
        "the task of {id} was not deleted"
    );
    ctr_ok(ctrd, &["container", "rm", id]);
}

/// SIGKILL to task `id`, wait until containerd sees it stopped, delete the task and the
/// container.
pub fn kill_and_remove(ctrd: &PrivateContainerd, id: &str) {
    ctr_ok(ctrd, &["task", "kill", "-s", "SIGKILL", id]);
    let stopped = || {
        ctr_ok(ctrd, &["task", "ls"])
            .lines()
            .any(|line| line.starts_with(&format!("{id} ")) && line.contains("STOPPED"))
    };
    assert!(
        eventually(Duration::from_secs(30), stopped),
        "{id} did not stop"
    );
    ctr_ok(ctrd, &["task", "delete", id]);
    ctr_ok(ctrd, &["container", "rm", id]);
}

/// The network namespace (`net:[inode]`) that `/proc/<path>` links to.
pub fn netns_of(path: &str) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .display()
        .to_string()
}

/// Every thread of process `pid`: its name and its network namespace.
pub fn threads_and_netns(pid: i32) -> Vec<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list the threads")
        .flatten()
        .map(|entry| {
            let tid = entry.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_to_string(entry.path().join("comm"))
                .unwrap_or_default()
                .trim()
                .to_string();
            let netns = netns_of(&format!("/proc/{pid}/task/{tid}/ns/net"));
            (format!("{name} ({tid})"), netns)
        })
        .collect()
}
