//! A stalled Create through a real containerd: it must stall nothing else, and it must always
//! be cancellable, leaving nothing.
//!
//! - A sibling whose Create is stuck (in a `createRuntime` hook that does not return) does not
//!   hold up State and Kill of the other container of its shim (each answered within 50 ms),
//!   nor that container's exit reaching containerd. Kill then cancels the stuck Create.
//! - A Create stuck in a `createRuntime` hook that does not return is cancelled by the Delete
//!   containerd sends when its own Create call gave up (`ctr --timeout`), by a Kill of its id,
//!   and by the shim's SIGTERM: the hook is killed, and no process, mount or state is left.
//!
//! State and Kill go straight to the shim's socket (`task_client`): they time the shim, not
//! ctr's start-up.

mod shim_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, containerd_with, ctr, ctr_ok,
    eventually, import_pvh_unikernel, processes_mentioning, run_detached_in, sandbox_with_ns,
    shims_of, state_dir, RUNTIME,
};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::task_client::{self, kill_request, shim_socket, state_request};
use urunc_tests::{ContainerdOptions, PrivateContainerd};

const HOLDER_IMAGE: &str = "docker.io/library/pvh-halt-stalled-sibling:test";

/// What the brief asks of the shim's answers while a sibling's Create is stalled.
const ANSWER_BUDGET: Duration = Duration::from_millis(50);
/// How long a call to the shim may take before the test calls the shim wedged.
const WEDGED: Duration = Duration::from_secs(5);
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// gRPC's OK and CANCELLED.
const OK: u64 = 0;
const CANCELLED: u64 = 1;

/// The spec of a linux-on-qemu unikernel that never boots (its Create never gets that far),
/// in shim group `group`, with `namespaces` and `hooks`.
fn stalling_spec(dir: &Path, group: &str, namespaces: Value, hooks: Value) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("unikernel")).expect("rootfs");
    std::fs::write(rootfs.join("unikernel/kernel"), b"never booted").expect("kernel");
    for folder in [rootfs.join("unikernel"), rootfs.clone()] {
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": false, "user": {"uid": 0, "gid": 0}, "args": [], "cwd": "/"},
        "root": {"path": rootfs.display().to_string()},
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/unikernel/kernel",
            SANDBOX_ID: group,
        },
        "linux": {"namespaces": namespaces},
        "hooks": hooks,
    });
    urunc_tests::spec_bundle::write_spec(dir, &spec).expect("spec")
}

/// A `createRuntime` hook that does not return in the test's lifetime: `sleep` with a
/// duration no other process has on its command line (`marker`).
fn endless_hook(marker: &str) -> Value {
    let sleep = urunc_tests::host_tools::which("sleep", "coreutils").expect("sleep");
    json!({"createRuntime": [{"path": sleep.display().to_string(), "args": ["sleep", marker]}]})
}

fn unique_marker(test: usize) -> String {
    format!("86400.{}{test}", std::process::id())
}

/// `ctr [global] run -d --runtime urunc --config spec id`, running in the background; killed
/// (and reaped) if the test ends before it does.
struct CtrRun(Option<Child>);

impl CtrRun {
    fn start(ctrd: &PrivateContainerd, global: &[&str], spec: &Path, id: &str) -> Self {
        let spec = spec.display().to_string();
        let mut args: Vec<&str> = global.to_vec();
        args.extend(["run", "-d", "--runtime", RUNTIME, "--config", &spec, id]);
        let child = ctrd
            .ctr_command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ctr run");
        CtrRun(Some(child))
    }

    fn running(&mut self) -> bool {
        let child = self.0.as_mut().expect("not yet waited for");
        matches!(child.try_wait(), Ok(None))
    }

    /// Waits (at most `limit`) for ctr to end; its output.
    fn finished(&mut self, limit: Duration) -> Output {
        assert!(
            eventually(limit, || !self.running()),
            "ctr run is still running after {limit:?}"
        );
        self.0
            .take()
            .expect("not yet waited for")
            .wait_with_output()
            .expect("ctr's output")
    }
}

impl Drop for CtrRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the hook with `marker` runs; panics with containerd's log when it does not.
fn wait_for_hook(ctrd: &PrivateContainerd, marker: &str) {
    assert!(
        eventually(Duration::from_secs(30), || !processes_mentioning(marker)
            .is_empty()),
        "the endless hook never started\n{}",
        ctrd.log_tail(40)
    );
}

/// The state folder of container `id`.
fn container_state(ctrd: &PrivateContainerd, id: &str) -> PathBuf {
    state_dir(ctrd).join(id)
}

/// A Create's failure leaves containerd's container record (ctr makes it before the task).
fn remove_container_record(ctrd: &PrivateContainerd, id: &str) {
    let removed = ctr(ctrd, &["container", "rm", id], Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&removed.stderr);
    assert!(
        removed.status.success() || stderr.contains("not found"),
        "ctr container rm {id}: {stderr}"
    );
}

/// Asserts what a cancelled Create must leave: no hook, no state, no shim, no mount.
fn assert_cancelled_create_left_nothing(ctrd: &PrivateContainerd, id: &str, marker: &str) {
    assert!(
        eventually(Duration::from_secs(10), || processes_mentioning(marker)
            .is_empty()),
        "the hook outlived its cancelled Create: {:?}",
        processes_mentioning(marker)
    );
    let bundle = ctrd.bundle_dir(id).display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&bundle),
        "a mount of {bundle} is left:\n{mounts}"
    );
    remove_container_record(ctrd, id);
    assert_nothing_left(ctrd);
}

#[test]
fn state_and_kill_answer_within_50ms_while_a_siblings_create_is_stuck() {
    let test = "state_and_kill_answer_within_50ms_while_a_siblings_create_is_stuck";
    // Node-wide: the running unikernel and its stuck sibling share one shim (a unikernel,
    // so Kill is the shim's own signal, not a `runc kill`).
    let Some(ctrd) = containerd_with(
        test,
        &["qemu-system-x86_64", "ip", "tc", "sleep"],
        ContainerdOptions {
            extra_env: vec![("URUNC_RS_SHIM_GROUP".into(), "node".into())],
            ..ContainerdOptions::default()
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let group = "stalled-sibling";
    let _guest = import_pvh_unikernel(
        &ctrd,
        HOLDER_IMAGE,
        PvhBehaviour::HaltForever,
        "holder-ready",
    );
    let (sandbox, with_ns) = sandbox_with_ns();
    run_detached_in(&ctrd, &with_ns, HOLDER_IMAGE, "holder");
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim serves the holder: {shims:?}");
    let holder_socket = shim_socket(&ctrd.bundle_dir("holder")).expect("holder's shim address");
    let marker = unique_marker(0);
    let spec = stalling_spec(
        dir.path(),
        group,
        json!([{"type": "mount"}]),
        endless_hook(&marker),
    );
    let mut run = CtrRun::start(&ctrd, &[], &spec, "stalled");
    wait_for_hook(&ctrd, &marker);
    assert_eq!(
        shims_of(&ctrd),
        shims,
        "the sibling's Create must run in the holder's shim"
    );
    assert!(
        run.running(),
        "the sibling's Create ended: {:?}",
        run.finished(WEDGED)
    );

    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let answer = task_client::call(&holder_socket, "State", &state_request("holder"), WEDGED)
            .unwrap_or_else(|e| panic!("State of the holder while its sibling is stuck: {e}"));
        assert_eq!(answer.code, OK, "State: {}", answer.message);
        slowest = slowest.max(answer.took);
    }
    let killed = task_client::call(&holder_socket, "Kill", &kill_request("holder", 9), WEDGED)
        .unwrap_or_else(|e| panic!("Kill of the holder while its sibling is stuck: {e}"));
    assert_eq!(killed.code, OK, "Kill: {}", killed.message);
    println!(
        "while the sibling's Create is stuck: State at most {slowest:?} (5 calls), Kill {:?}",
        killed.took
    );
    assert!(slowest < ANSWER_BUDGET, "State took {slowest:?}");
    assert!(killed.took < ANSWER_BUDGET, "Kill took {:?}", killed.took);
    // The reaper and the event forwarding still run: containerd learns of the exit.
    assert!(
        eventually(Duration::from_secs(10), || ctr_ok(&ctrd, &["task", "ls"])
            .lines()
            .any(|l| l.starts_with("holder ") && l.contains("STOPPED"))),
        "containerd never saw the holder exit\n{}",
        ctrd.log_tail(40)
    );
    assert!(
        !processes_mentioning(&marker).is_empty(),
        "the sibling's Create is no longer stuck"
    );

    // A Kill of the stuck sibling cancels its Create, though its step still waits.
    let socket = shim_socket(&ctrd.bundle_dir("stalled")).expect("the sibling's shim address");
    let cancel = task_client::call(&socket, "Kill", &kill_request("stalled", 9), WEDGED)
        .unwrap_or_else(|e| panic!("Kill of the stuck sibling: {e}"));
    assert_eq!(
        cancel.code, OK,
        "Kill of the stuck sibling: {}",
        cancel.message
    );
    let out = run.finished(Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cancelled"),
        "ctr run of the cancelled sibling: {}: {stderr}",
        out.status
    );
    assert!(
        !container_state(&ctrd, "stalled").exists(),
        "the cancelled sibling's state is left"
    );
    ctr_ok(&ctrd, &["task", "delete", "holder"]);
    assert_sandbox_clean(&sandbox, "after the holder's exit");
    ctr_ok(&ctrd, &["container", "rm", "holder"]);
    assert_cancelled_create_left_nothing(&ctrd, "stalled", &marker);
}

/// A Create of container `hooked` stuck in its endless hook (ctr run with `global` flags);
/// `None` (after SKIPPED) when the prerequisites are missing. Keep it until the test ends.
struct StuckCreate {
    ctrd: PrivateContainerd,
    _dir: tempfile::TempDir,
    marker: String,
    run: CtrRun,
}

fn stuck_create(test: &str, index: usize, global: &[&str]) -> Option<StuckCreate> {
    let ctrd = containerd(test, &["qemu-system-x86_64", "sleep"])?;
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = unique_marker(index);
    let spec = stalling_spec(
        dir.path(),
        "hooked",
        json!([{"type": "mount"}]),
        endless_hook(&marker),
    );
    let run = CtrRun::start(&ctrd, global, &spec, "hooked");
    wait_for_hook(&ctrd, &marker);
    Some(StuckCreate {
        ctrd,
        _dir: dir,
        marker,
        run,
    })
}

#[test]
fn a_create_stuck_in_a_hook_is_cancelled_by_containerds_delete_and_leaves_nothing() {
    let test = "a_create_stuck_in_a_hook_is_cancelled_by_containerds_delete_and_leaves_nothing";
    // ctr gives up after 5 s; containerd then deletes the task it could not create.
    let Some(StuckCreate {
        ctrd,
        _dir,
        marker,
        mut run,
    }) = stuck_create(test, 1, &["--timeout", "5s"])
    else {
        return;
    };
    let out = run.finished(Duration::from_secs(30));
    assert!(
        !out.status.success(),
        "ctr run succeeded despite the endless hook"
    );
    assert!(
        eventually(Duration::from_secs(20), || !container_state(
            &ctrd, "hooked"
        )
        .exists()),
        "containerd's Delete did not cancel the stuck Create\n{}",
        ctrd.log_tail(40)
    );
    assert_cancelled_create_left_nothing(&ctrd, "hooked", &marker);
}

#[test]
fn a_create_stuck_in_a_hook_is_cancelled_by_a_kill_and_leaves_nothing() {
    let test = "a_create_stuck_in_a_hook_is_cancelled_by_a_kill_and_leaves_nothing";
    let Some(StuckCreate {
        ctrd,
        _dir,
        marker,
        mut run,
    }) = stuck_create(test, 2, &[])
    else {
        return;
    };
    let socket = shim_socket(&ctrd.bundle_dir("hooked")).expect("the shim's address");
    let cancel = task_client::call(&socket, "Kill", &kill_request("hooked", 9), WEDGED)
        .unwrap_or_else(|e| panic!("Kill of the stuck Create: {e}"));
    assert_eq!(
        cancel.code, OK,
        "Kill of the stuck Create: {}",
        cancel.message
    );
    assert!(
        !container_state(&ctrd, "hooked").exists(),
        "Kill answered before the cancelled Create was torn down"
    );
    let out = run.finished(Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cancelled by a Kill"),
        "ctr run of the cancelled Create: {}: {stderr}",
        out.status
    );
    // A second Kill finds nothing: the id is free again.
    let again = task_client::call(&socket, "Kill", &kill_request("hooked", 9), WEDGED);
    assert!(
        again
            .as_ref()
            .map_or(true, |a| a.code != OK && a.code != CANCELLED),
        "a Kill after the cancellation: {again:?}"
    );
    assert_cancelled_create_left_nothing(&ctrd, "hooked", &marker);
}

#[test]
fn a_create_stuck_in_a_hook_is_cancelled_by_the_shims_sigterm_and_leaves_nothing() {
    let test = "a_create_stuck_in_a_hook_is_cancelled_by_the_shims_sigterm_and_leaves_nothing";
    let Some(StuckCreate {
        ctrd,
        _dir,
        marker,
        mut run,
    }) = stuck_create(test, 3, &[])
    else {
        return;
    };
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    kill(Pid::from_raw(shims[0].0), Signal::SIGTERM).expect("SIGTERM to the shim");
    let out = run.finished(Duration::from_secs(20));
    assert!(
        !out.status.success(),
        "ctr run succeeded though the shim was stopped"
    );
    println!(
        "ctr run after SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert_cancelled_create_left_nothing(&ctrd, "hooked", &marker);
}
