//! The VMM as a container process, through a real containerd 1.6: the spec's OCI hooks run at
//! their moments with the state on stdin, a failing createRuntime hook fails Create and leaves
//! nothing, a running qemu is confined (no host files, only the allowed device nodes, the
//! spec's user, groups and capabilities, no_new_privs, seccomp), and SIGTERM powers a Linux
//! guest off while SIGKILL still ends a guest that ignores the power button.
//!
//! Hooks and users cannot be asked through `ctr run`'s flags: these containers are described
//! by a whole spec (`ctr run --config`, see `urunc_tests::spec_bundle`).

mod shim_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, ctr, ctr_ok, eventually, foreground_run,
    import_pvh_unikernel, import_unikernel, processes_mentioning, sandbox_with_ns, shims_of,
    state_dir, vmms_mentioning, RUNTIME,
};
use urunc_tests::guests::linux::{HTTP_ANSWER, HTTP_PORT, POWER_BUTTON_MARKER, READY_MARKER};
use urunc_tests::guests::{linux_guest, spawn_with_console, LinuxGuest, PvhBehaviour};
use urunc_tests::sandbox::{SandboxNetns, SANDBOX_IP};
use urunc_tests::spec_bundle::{
    linux_guest_spec, linux_rootfs, recorded_hooks, recording_hook, set, write_spec,
};
use urunc_tests::PrivateContainerd;

const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A private containerd, a Linux guest and a sandbox; `None` after printing SKIPPED.
fn fixture(test: &str, dir: &Path) -> Option<(PrivateContainerd, LinuxGuest, SandboxNetns)> {
    let ctrd = containerd(test, &["qemu-system-x86_64", "ip", "tc", "busybox"])?;
    let guest = match linux_guest(dir) {
        Ok(guest) => guest,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return None;
        }
    };
    let (sandbox, _) = sandbox_with_ns();
    Some((ctrd, guest, sandbox))
}

/// A private containerd, a sandbox and a Linux guest's rootfs with its spec, for containers
/// described by a whole spec; `None` after printing SKIPPED.
struct SpecCase {
    dir: tempfile::TempDir,
    ctrd: PrivateContainerd,
    sandbox: SandboxNetns,
    rootfs: PathBuf,
    spec: Value,
}

impl SpecCase {
    fn new(test: &str) -> Option<SpecCase> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ctrd, guest, sandbox) = fixture(test, dir.path())?;
        let rootfs = linux_rootfs(dir.path(), &guest).expect("rootfs");
        let spec = linux_guest_spec(&rootfs, &sandbox.path());
        Some(SpecCase {
            dir,
            ctrd,
            sandbox,
            rootfs,
            spec,
        })
    }
}

/// After a refused Create: the sandbox holds nothing of ours and no VMM runs for the rootfs.
fn assert_refused_create_left_no_network_and_no_vmm(sandbox: &SandboxNetns, rootfs: &Path) {
    assert_sandbox_clean(sandbox, "after the refused Create");
    assert!(
        vmms_mentioning(&rootfs.display().to_string()).is_empty(),
        "a VMM runs"
    );
}

/// Container `id`'s task is gone and left no state: its record is removed, and nothing of the
/// shim's is left.
fn assert_container_gone(ctrd: &PrivateContainerd, id: &str) {
    assert!(
        !state_dir(ctrd).join(id).exists(),
        "state left in {}",
        state_dir(ctrd).display()
    );
    ctr_ok(ctrd, &["container", "rm", id]);
    assert_nothing_left(ctrd);
}

/// `ctr run -d --config <spec> id`.
fn run_spec(ctrd: &PrivateContainerd, spec: &Path, id: &str) -> std::process::Output {
    let spec = spec.display().to_string();
    ctr(
        ctrd,
        &["run", "-d", "--runtime", RUNTIME, "--config", &spec, id],
        Duration::from_secs(120),
    )
}

/// Gives `spec` one [`recording_hook`] per `(kind, exit code)`, all writing to `log`.
fn record_hooks(spec: &mut Value, log: &Path, hooks: &[(&str, i32)]) {
    for (kind, code) in hooks {
        set(
            spec,
            &format!("/hooks/{kind}"),
            json!([recording_hook(kind, log, *code)]),
        );
    }
}

/// `ctr run` of `spec` as `id` fails, its error naming the `kind` hook and its exit `code`.
fn assert_create_fails_in_hook(
    ctrd: &PrivateContainerd,
    dir: &Path,
    spec: &Value,
    id: &str,
    kind: &str,
    code: i32,
) {
    let config = write_spec(dir, spec).expect("spec");
    let out = run_spec(ctrd, &config, id);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "Create succeeded despite the hook");
    assert!(
        stderr.contains(kind) && stderr.contains(&format!("exit status {code}")),
        "the error does not name the hook and its status: {stderr}"
    );
}

/// The task's pid as `ctr task ls` shows it.
fn task_pid(ctrd: &PrivateContainerd, id: &str) -> u32 {
    let list = ctr_ok(ctrd, &["task", "ls"]);
    list.lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.first() == Some(&id)).then(|| fields.get(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no task {id} in:\n{list}"))
}

fn stop_and_delete(ctrd: &PrivateContainerd, id: &str) {
    ctr_ok(ctrd, &["task", "kill", "-s", "SIGKILL", id]);
    assert!(
        eventually(Duration::from_secs(30), || ctr_ok(ctrd, &["task", "ls"])
            .contains("STOPPED")),
        "task {id} did not stop: {}",
        ctr_ok(ctrd, &["task", "ls"])
    );
    ctr_ok(ctrd, &["task", "delete", id]);
}

fn own_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .expect("own netns")
        .display()
        .to_string()
}

/// Asks the guest's HTTP responder from the peer namespace until it answers.
fn guest_answers(sandbox: &SandboxNetns) -> bool {
    let request =
        format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {SANDBOX_IP} {HTTP_PORT}");
    eventually(Duration::from_secs(120), || {
        sandbox
            .exec_peer("sh", &["-c", &request])
            .is_ok_and(|answer| answer.contains(HTTP_ANSWER))
    })
}

#[test]
fn every_hook_kind_runs_once_at_its_moment_with_the_state_it_should_see() {
    let test = "every_hook_kind_runs_once_at_its_moment_with_the_state_it_should_see";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs: _,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    let log = dir.path().join("hooks.log");
    for kind in HOOK_KINDS {
        set(
            &mut spec,
            &format!("/hooks/{kind}"),
            json!([recording_hook(kind, &log, 0)]),
        );
    }
    let config = write_spec(dir.path(), &spec).expect("spec");
    let id = "hooked";

    let out = run_spec(&ctrd, &config, id);
    assert!(
        out.status.success(),
        "ctr run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ctrd.log_tail(40)
    );
    let pid = task_pid(&ctrd, id);
    // poststart runs before Start answers, so every hook but poststop already ran.
    let before_delete = recorded_hooks(&log);
    let kinds: Vec<&str> = before_delete.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, HOOK_KINDS[..5], "hooks ran out of order or twice");

    let sandbox_netns = format!("net:[{}]", sandbox.inode().expect("sandbox inode"));
    let host_netns = own_netns();
    let expected = [
        ("creating", None, &host_netns),
        ("creating", None, &host_netns),
        ("creating", None, &sandbox_netns),
        ("created", None, &sandbox_netns),
        ("running", Some(pid), &host_netns),
    ];
    for ((kind, state, netns), (status, pid, expected_netns)) in before_delete.iter().zip(expected)
    {
        assert_eq!(state["status"], status, "{kind}: {state}");
        assert_eq!(state["id"], id, "{kind}: {state}");
        assert_eq!(
            state.get("pid").and_then(Value::as_u64),
            pid.map(u64::from),
            "{kind}: {state}"
        );
        assert_eq!(
            state["annotations"]["com.urunc.unikernel.hypervisor"], "qemu",
            "{kind}: {state}"
        );
        assert!(
            state["bundle"].as_str().is_some_and(|b| b.ends_with(id)),
            "{kind}: {state}"
        );
        assert_eq!(netns, expected_netns, "{kind} ran in the wrong netns");
    }

    stop_and_delete(&ctrd, id);
    let after_delete = recorded_hooks(&log);
    assert_eq!(after_delete.len(), 6, "{after_delete:?}");
    let (kind, state, netns) = &after_delete[5];
    assert_eq!(kind, "poststop");
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(pid)), "{state}");
    assert_eq!(netns, &host_netns);
    assert_sandbox_clean(&sandbox, "after delete");
    ctr_ok(&ctrd, &["container", "rm", id]);
    assert_nothing_left(&ctrd);
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    let test = "a_failing_create_runtime_hook_fails_create_and_leaves_nothing";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    let log = dir.path().join("hooks.log");
    record_hooks(
        &mut spec,
        &log,
        &[
            ("prestart", 0),
            ("createRuntime", 3),
            ("createContainer", 0),
        ],
    );
    assert_create_fails_in_hook(&ctrd, dir.path(), &spec, "refused", "createRuntime", 3);
    let kinds: Vec<String> = recorded_hooks(&log).into_iter().map(|(k, ..)| k).collect();
    assert_eq!(kinds, ["prestart", "createRuntime"]);
    assert_refused_create_left_no_network_and_no_vmm(&sandbox, &rootfs);
    assert_container_gone(&ctrd, "refused");
}

/// The spec asks for a new network namespace: the shim makes one at Create, pinned in the
/// container's state folder and named to the hooks by `nerdctl/network-namespace` (as nerdctl's
/// CNI hook needs). A Create that fails after that (here in a createContainer hook, which runs
/// in that namespace) leaves neither the pin nor the namespace.
#[test]
fn a_create_failing_after_its_fresh_netns_was_made_leaves_no_netns_or_pin() {
    let test = "a_create_failing_after_its_fresh_netns_was_made_leaves_no_netns_or_pin";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    set(
        &mut spec,
        "/linux/namespaces",
        json!([{"type": "network"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]),
    );
    let log = dir.path().join("hooks.log");
    record_hooks(
        &mut spec,
        &log,
        &[("createRuntime", 0), ("createContainer", 3)],
    );
    assert_create_fails_in_hook(
        &ctrd,
        dir.path(),
        &spec,
        "fresh-refused",
        "createContainer",
        3,
    );
    let hooks = recorded_hooks(&log);
    let kinds: Vec<&str> = hooks.iter().map(|(kind, ..)| kind.as_str()).collect();
    assert_eq!(kinds, ["createRuntime", "createContainer"]);
    let pin = hooks[0].1["annotations"]["nerdctl/network-namespace"]
        .as_str()
        .unwrap_or_else(|| panic!("no nerdctl/network-namespace for the hooks: {}", hooks[0].1))
        .to_string();
    assert!(
        pin.starts_with(&state_dir(&ctrd).display().to_string()),
        "the pin {pin} is not in the state folder"
    );
    let fresh = &hooks[1].2;
    assert_ne!(fresh, &own_netns(), "createContainer ran in the host netns");
    assert!(fresh.starts_with("net:["), "{fresh}");

    assert!(!Path::new(&pin).exists(), "the pin {pin} was left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let state_root = format!("{}/", shim_support::STATE_ROOT);
    let pinned: Vec<&str> = mounts
        .lines()
        .filter(|line| line.contains(fresh.as_str()) || line.contains(&pin))
        .filter(|line| {
            line.split(' ')
                .nth(4)
                .is_some_and(|at| at.starts_with(&state_root))
        })
        .collect();
    assert!(
        pinned.is_empty(),
        "the fresh netns is still mounted: {pinned:?}"
    );
    assert_refused_create_left_no_network_and_no_vmm(&sandbox, &rootfs);
    ctr_ok(&ctrd, &["container", "rm", "fresh-refused"]);
    assert_nothing_left(&ctrd);
}

#[test]
fn an_impossible_capability_set_fails_create_naming_the_field_and_leaves_nothing() {
    let test = "an_impossible_capability_set_fails_create_naming_the_field_and_leaves_nothing";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    set(
        &mut spec,
        "/process/capabilities",
        json!({"bounding": ["CAP_NET_ADMIN"], "effective": ["CAP_NET_ADMIN"], "permitted": []}),
    );
    let config = write_spec(dir.path(), &spec).expect("spec");
    let out = run_spec(&ctrd, &config, "impossible");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "Create accepted the capabilities");
    assert!(
        stderr.contains("process.capabilities.effective") && stderr.contains("CAP_NET_ADMIN"),
        "the error does not name the field and the value: {stderr}"
    );
    assert_refused_create_left_no_network_and_no_vmm(&sandbox, &rootfs);
    ctr_ok(&ctrd, &["container", "rm", "impossible"]);
    assert_nothing_left(&ctrd);
}

/// What `ps` shows for the VMM's process between Create and Start.
const WAITING_VMM: &str = "urunc-vmm-wait";

/// `net:[inode]`, as /proc/<pid>/ns/net links name the sandbox's namespace.
fn netns_link(sandbox: &SandboxNetns) -> String {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(sandbox.path())
        .expect("the sandbox's netns")
        .ino();
    format!("net:[{inode}]")
}

/// VMM processes waiting at their exec in `sandbox` (other tests' run beside this one).
fn waiting_vmms_in(sandbox: &SandboxNetns) -> Vec<(i32, String)> {
    let netns = netns_link(sandbox);
    processes_mentioning(WAITING_VMM)
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|link| link.display().to_string() == netns)
        })
        .collect()
}

/// No process of ours is left waiting at its exec, no VMM runs, the sandbox is clean.
fn assert_failed_start_left_no_process(sandbox: &SandboxNetns, rootfs: &Path) {
    assert!(
        eventually(Duration::from_secs(10), || waiting_vmms_in(sandbox)
            .is_empty()),
        "the VMM's process outlived the failed Start: {:?}",
        waiting_vmms_in(sandbox)
    );
    assert_sandbox_clean(sandbox, "after the failed Start");
    assert!(
        vmms_mentioning(&rootfs.display().to_string()).is_empty(),
        "a VMM runs"
    );
}

/// Create forks the VMM's process and leaves it waiting at its exec; a Start that fails before
/// the exec (here in a `startContainer` hook) leaves the task created, and its Delete ends the
/// process: no process, no network, no state. The hook sees the waiting process (Create made it, Start did not).
#[test]
fn a_start_failing_before_the_exec_ends_the_waiting_vmm_process_and_leaves_nothing() {
    let test = "a_start_failing_before_the_exec_ends_the_waiting_vmm_process_and_leaves_nothing";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    let seen = dir.path().join("waiting.log");
    // The network namespace of every process titled as the waiting VMM.
    let list = format!(
        "cat >/dev/null; for f in $(grep -l '^{WAITING_VMM}' /proc/[0-9]*/cmdline); do \
         readlink ${{f%cmdline}}ns/net; done > {}; exit 3",
        seen.display()
    );
    set(
        &mut spec,
        "/hooks/startContainer",
        json!([{"path": "/bin/sh", "args": ["sh", "-c", list]}]),
    );
    assert_create_fails_in_hook(&ctrd, dir.path(), &spec, "unstarted", "startContainer", 3);
    // `ctr run -d` leaves a task whose Start failed as it is, created: its Delete ends it.
    ctr_ok(&ctrd, &["task", "delete", "unstarted"]);
    let seen = std::fs::read_to_string(&seen).expect("the hook's list");
    let netns = netns_link(&sandbox);
    assert_eq!(
        seen.lines().filter(|l| *l == netns).count(),
        1,
        "waiting VMM processes in {netns} when the hook ran: {seen}"
    );
    assert_failed_start_left_no_process(&sandbox, &rootfs);
    assert_container_gone(&ctrd, "unstarted");
}

/// A spec whose seccomp profile forbids execve: the filter is installed last, so the exec
/// itself fails. Start's error names the step, the program and the errno the profile gave,
/// and nothing is left.
#[test]
fn an_exec_the_seccomp_profile_forbids_fails_start_naming_it_and_leaves_nothing() {
    let test = "an_exec_the_seccomp_profile_forbids_fails_start_naming_it_and_leaves_nothing";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    set(
        &mut spec,
        "/linux/seccomp",
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}),
    );
    let config = write_spec(dir.path(), &spec).expect("spec");
    let out = run_spec(&ctrd, &config, "no-exec");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "Start succeeded without its exec");
    assert!(
        stderr.contains("exec /") && stderr.contains("qemu-system-x86_64: errno 13"),
        "the error does not name the exec, the program and the errno: {stderr}"
    );
    ctr_ok(&ctrd, &["task", "delete", "no-exec"]);
    assert_failed_start_left_no_process(&sandbox, &rootfs);
    ctr_ok(&ctrd, &["container", "rm", "no-exec"]);
    assert_nothing_left(&ctrd);
}

#[test]
fn poststop_runs_from_the_delete_command_after_the_shim_died() {
    let test = "poststop_runs_from_the_delete_command_after_the_shim_died";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    let log = dir.path().join("hooks.log");
    set(
        &mut spec,
        "/hooks/poststop",
        json!([recording_hook("poststop", &log, 0)]),
    );
    let config = write_spec(dir.path(), &spec).expect("spec");
    let out = run_spec(&ctrd, &config, "orphaned");
    assert!(
        out.status.success(),
        "ctr run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = task_pid(&ctrd, "orphaned");
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    kill(Pid::from_raw(shims[0].0), Signal::SIGKILL).expect("kill -9 the shim");

    // containerd runs `containerd-shim-urunc-v2 delete` in the bundle.
    assert!(
        eventually(Duration::from_secs(30), || !recorded_hooks(&log).is_empty()),
        "no poststop after the shim died\n{}",
        ctrd.log_tail(40)
    );
    let recorded = recorded_hooks(&log);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let (kind, state, _) = &recorded[0];
    assert_eq!(kind, "poststop");
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(state["pid"].as_u64(), Some(u64::from(pid)), "{state}");
    assert!(
        vmms_mentioning(&rootfs.display().to_string()).is_empty(),
        "the VMM survived"
    );
    let deleted = ctr(
        &ctrd,
        &["task", "delete", "orphaned"],
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        deleted.status.success() || stderr.contains("not found"),
        "task delete: {stderr}"
    );
    ctr_ok(&ctrd, &["container", "rm", "orphaned"]);
    assert_eq!(recorded_hooks(&log).len(), 1, "poststop ran twice");
    assert_sandbox_clean(&sandbox, "after containerd's cleanup");
    assert_nothing_left(&ctrd);
}

/// One `Key:\tvalue` line of /proc/<pid>/status.
fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}:")))
        .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no {key} in:\n{status}"))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_running_qemu_is_confined_as_the_spec_says_and_the_guest_still_answers() {
    let test = "the_running_qemu_is_confined_as_the_spec_says_and_the_guest_still_answers";
    let Some(SpecCase {
        dir,
        ctrd,
        sandbox,
        rootfs,
        mut spec,
    }) = SpecCase::new(test)
    else {
        return;
    };
    set(
        &mut spec,
        "/process/user",
        json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 44]}),
    );
    let net_bind = json!(["CAP_NET_BIND_SERVICE"]);
    set(
        &mut spec,
        "/process/capabilities",
        json!({"bounding": net_bind, "effective": net_bind, "permitted": net_bind,
               "inheritable": net_bind, "ambient": net_bind}),
    );
    // containerd's own default profile (RuntimeDefault in Kubernetes), as the shim's unit
    // tests use it: the VMM gets it, then qemu's `-sandbox` on top.
    let profile: serde_json::Value = serde_json::from_str(include_str!(
        "../../runtime-core/src/oci/testdata/containerd_default_seccomp_amd64.json"
    ))
    .expect("containerd's default seccomp profile");
    set(&mut spec, "/linux/seccomp", profile);
    let config = write_spec(dir.path(), &spec).expect("spec");
    let id = "confined";
    let out = run_spec(&ctrd, &config, id);
    assert!(
        out.status.success(),
        "ctr run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ctrd.log_tail(40)
    );
    assert!(
        guest_answers(&sandbox),
        "the confined guest did not answer from the peer\n{}",
        ctrd.log_tail(40)
    );

    let pid = task_pid(&ctrd, id);
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    for host_file in ["etc/hostname", "etc/passwd", "home", "root", "var", "sbin"] {
        assert!(
            !root.join(host_file).exists(),
            "the VMM sees the host's /{host_file}: / has {:?}",
            names_in(&root)
        );
    }
    let mut devices = names_in(&root.join("dev"));
    devices.retain(|d| d != "kvm");
    assert_eq!(devices, ["net", "null", "urandom", "zero"]);
    assert_eq!(names_in(&root.join("dev/net")), ["tun"]);
    assert!(
        root.join(rootfs.strip_prefix("/").expect("absolute"))
            .join("unikernel/kernel")
            .exists(),
        "the guest kernel is not visible to the VMM"
    );

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert_eq!(status_field(&status, "Uid"), "1000 1000 1000 1000");
    assert_eq!(status_field(&status, "Gid"), "1000 1000 1000 1000");
    assert_eq!(status_field(&status, "Groups"), "44 1000");
    assert_eq!(status_field(&status, "CapEff"), "0000000000000400");
    assert_eq!(status_field(&status, "CapBnd"), "0000000000000400");
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    let filters: u32 = status_field(&status, "Seccomp_filters")
        .parse()
        .expect("Seccomp_filters");
    assert!(
        filters >= 2,
        "the spec's filter and qemu's own -sandbox filter are both installed: {filters}"
    );

    // qemu opened /dev/net/tun as uid 1000 without CAP_NET_ADMIN: the tap is the user's.
    let snapshot = sandbox.snapshot().expect("sandbox snapshot");
    let taps = snapshot.urunc_taps();
    assert_eq!(taps.len(), 1, "{snapshot:?}");
    for (attribute, expected) in [("owner", "1000"), ("group", "1000")] {
        // `ip netns exec` mounts the sandbox's own sysfs.
        let file = format!("/sys/class/net/{}/{attribute}", taps[0]);
        let value = sandbox.exec("cat", &[&file]).expect("read the tap's owner");
        assert_eq!(value.trim(), expected, "{file}");
    }

    stop_and_delete(&ctrd, id);
    assert_sandbox_clean(&sandbox, "after delete");
    ctr_ok(&ctrd, &["container", "rm", id]);
    assert_nothing_left(&ctrd);
}

#[test]
fn sigterm_powers_a_linux_guest_off_and_sigkill_ends_a_guest_that_ignores_it() {
    let test = "sigterm_powers_a_linux_guest_off_and_sigkill_ends_a_guest_that_ignores_it";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((ctrd, guest, sandbox)) = fixture(test, dir.path()) else {
        return;
    };
    let with_ns = format!("network:{}", sandbox.path().display());

    // A Linux guest acts on the ACPI power button: a clean poweroff, exit status 0.
    let image = "docker.io/library/linux-guest:test";
    import_unikernel(
        &ctrd,
        dir.path(),
        image,
        &guest.kernel,
        Some(&guest.initrd),
        &[],
    );
    let mut run = foreground_run(&ctrd, &with_ns, image, "graceful");
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let boot = console.wait_for(READY_MARKER, Duration::from_secs(120));
    assert!(
        boot.is_ok(),
        "no ready marker: {boot:?}\n{}",
        console.text()
    );
    ctr_ok(&ctrd, &["task", "kill", "graceful"]);
    let pressed = console.wait_for(POWER_BUTTON_MARKER, Duration::from_secs(30));
    assert!(
        pressed.is_ok(),
        "the guest saw no power button after SIGTERM: {pressed:?}\n{}\n{}",
        console.text(),
        ctrd.log_tail(30)
    );
    let status = run
        .wait_within(Duration::from_secs(60))
        .expect("ctr run ends once TaskExit arrives");
    assert_eq!(
        status.code(),
        Some(0),
        "the guest did not power off cleanly:\n{}",
        console.text()
    );
    ctr_ok(&ctrd, &["container", "rm", "graceful"]);

    // A guest with no ACPI ignores the button; the caller's SIGKILL ends it at once.
    let deaf_image = "docker.io/library/pvh-halt:test";
    let _deaf_dir =
        import_pvh_unikernel(&ctrd, deaf_image, PvhBehaviour::HaltForever, "pvh-halt-up");
    let mut run = foreground_run(&ctrd, &with_ns, deaf_image, "deaf");
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let boot = console.wait_for("pvh-halt-up", Duration::from_secs(60));
    assert!(boot.is_ok(), "no marker: {boot:?}\n{}", console.text());
    ctr_ok(&ctrd, &["task", "kill", "deaf"]);
    // Kill answers once the shim pressed the button or sent qemu the signal; its log (which
    // containerd copies into its own) says which, for this container.
    let pressed = |ctrd: &PrivateContainerd| {
        std::fs::read_to_string(ctrd.log_path())
            .unwrap_or_default()
            .lines()
            .any(|line| line.contains("asked the guest to power off") && line.contains("deaf"))
    };
    assert!(
        eventually(Duration::from_secs(10), || pressed(&ctrd)),
        "the shim did not press the power button for SIGTERM:\n{}",
        ctrd.log_tail(30)
    );
    assert!(
        ctr_ok(&ctrd, &["task", "ls"]).contains("RUNNING"),
        "SIGTERM ended the VMM instead of pressing the guest's power button"
    );
    let killed_at = Instant::now();
    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "deaf"]);
    let status = run
        .wait_within(Duration::from_secs(30))
        .expect("ctr run ends");
    assert_eq!(status.code(), Some(137));
    assert!(
        killed_at.elapsed() < Duration::from_secs(10),
        "SIGKILL took {:?}",
        killed_at.elapsed()
    );
    ctr_ok(&ctrd, &["container", "rm", "deaf"]);
    assert_nothing_left(&ctrd);
}

#[test]
fn sigterm_goes_to_qemu_itself_when_qmp_is_unreachable() {
    let test = "sigterm_goes_to_qemu_itself_when_qmp_is_unreachable";
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((ctrd, guest, sandbox)) = fixture(test, dir.path()) else {
        return;
    };
    let with_ns = format!("network:{}", sandbox.path().display());
    let image = "docker.io/library/linux-guest:test";
    import_unikernel(
        &ctrd,
        dir.path(),
        image,
        &guest.kernel,
        Some(&guest.initrd),
        &[],
    );
    let id = "no-qmp";
    let mut run = foreground_run(&ctrd, &with_ns, image, id);
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let boot = console.wait_for(READY_MARKER, Duration::from_secs(120));
    assert!(
        boot.is_ok(),
        "no ready marker: {boot:?}\n{}",
        console.text()
    );

    // The control socket vanishes (a cleaner, an operator): the power button cannot be pressed.
    let socket = state_dir(&ctrd).join(id).join("vmm").join("qmp.sock");
    std::fs::remove_file(&socket)
        .unwrap_or_else(|e| panic!("remove the QMP socket {}: {e}", socket.display()));
    let asked_at = Instant::now();
    ctr_ok(&ctrd, &["task", "kill", id]);
    let status = run
        .wait_within(Duration::from_secs(30))
        .expect("SIGTERM reached qemu: ctr run ends");
    assert!(
        asked_at.elapsed() < Duration::from_secs(15),
        "the VMM took {:?} to end on SIGTERM",
        asked_at.elapsed()
    );
    assert!(
        !console.text().contains(POWER_BUTTON_MARKER),
        "the guest saw a power button although QMP was gone:\n{}",
        console.text()
    );
    // qemu handles SIGTERM by shutting down: its own clean exit, not a signal death.
    assert_eq!(status.code(), Some(0), "{}", console.text());
    let log = ctrd.log_tail(200);
    assert!(
        log.contains("QMP unreachable"),
        "the fallback was not logged:\n{log}"
    );
    assert_sandbox_clean(&sandbox, "after the VMM ended");
    ctr_ok(&ctrd, &["container", "rm", id]);
    assert_nothing_left(&ctrd);
}
