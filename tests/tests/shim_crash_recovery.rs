//! The shim killed with SIGKILL while a unikernel runs: containerd's cleanup (`delete` run in
//! the bundle, then `ctr task delete` / `ctr container rm`) leaves no tap, no VMM, no state.

mod shim_support;

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shim_support::{
    assert_nothing_left, containerd, ctr, ctr_ok, eventually, import_unikernel, shims_of,
    vmms_mentioning, RUNTIME,
};
use urunc_tests::guests::{pvh_guest, PvhBehaviour};
use urunc_tests::sandbox::{NetSnapshot, SandboxNetns};

const IMAGE: &str = "docker.io/library/pvh-halt:test";

#[test]
fn shim_sigkill_then_containerd_cleanup_leaves_nothing() {
    let test = "shim_sigkill_then_containerd_cleanup_leaves_nothing";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel =
        pvh_guest(dir.path(), PvhBehaviour::HaltForever, "pvh-halt-ready").expect("pvh guest");
    import_unikernel(&ctrd, dir.path(), IMAGE, &kernel, None, &[]);
    let host_before = NetSnapshot::take(None).expect("host snapshot");
    let sandbox = SandboxNetns::create().expect("sandbox netns");
    let with_ns = format!("network:{}", sandbox.path().display());

    ctr_ok(
        &ctrd,
        &[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--with-ns",
            &with_ns,
            IMAGE,
            "crash",
        ],
    );
    let needle = ctrd.bundle_dir("crash").display().to_string();
    assert_eq!(vmms_mentioning(&needle).len(), 1, "one VMM runs");
    assert_eq!(
        NetSnapshot::take(Some(sandbox.name()))
            .expect("snapshot")
            .urunc_taps()
            .len(),
        1
    );
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    kill(Pid::from_raw(shims[0].0), Signal::SIGKILL).expect("kill -9 the shim");

    // containerd sees the shim die and runs `containerd-shim-urunc-v2 delete` in the bundle.
    assert!(
        eventually(Duration::from_secs(30), || vmms_mentioning(&needle)
            .is_empty()),
        "the VMM survived the shim's cleanup: {:?}\n{}",
        vmms_mentioning(&needle),
        ctrd.log_tail(40)
    );
    // The task may already be gone from containerd's view; deleting it must not fail otherwise.
    let deleted = ctr(&ctrd, &["task", "delete", "crash"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        deleted.status.success() || stderr.contains("not found"),
        "task delete: {stderr}"
    );
    ctr_ok(&ctrd, &["container", "rm", "crash"]);

    let snapshot = NetSnapshot::take(Some(sandbox.name())).expect("snapshot");
    assert!(
        snapshot.urunc_taps().is_empty(),
        "taps left: {:?}",
        snapshot.urunc_taps()
    );
    assert!(
        snapshot.ingress_qdiscs().is_empty(),
        "qdiscs left: {:?}",
        snapshot.ingress_qdiscs()
    );
    assert!(
        snapshot.filters.is_empty(),
        "filters left: {:?}",
        snapshot.filters
    );
    assert_eq!(
        NetSnapshot::take(None).expect("host snapshot"),
        host_before,
        "host netns changed"
    );
    assert_nothing_left(&ctrd);
}
