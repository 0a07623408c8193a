//! The shim killed with SIGKILL while a unikernel runs: containerd's cleanup (`delete` run in
//! the bundle, then `ctr task delete` / `ctr container rm`) leaves no tap, no VMM, no state.

mod shim_support;

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, ctr, ctr_ok, eventually,
    import_pvh_unikernel, run_detached_in, sandbox_with_ns, shims_of, vmms_mentioning,
};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::sandbox::NetSnapshot;

const IMAGE: &str = "docker.io/library/pvh-halt:test";

#[test]
fn shim_sigkill_then_containerd_cleanup_leaves_nothing() {
    let test = "shim_sigkill_then_containerd_cleanup_leaves_nothing";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let _guest_dir =
        import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "pvh-halt-ready");
    let host_before = NetSnapshot::take(None).expect("host snapshot");
    let (sandbox, with_ns) = sandbox_with_ns();

    run_detached_in(&ctrd, &with_ns, IMAGE, "crash");
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

    assert_sandbox_clean(&sandbox, "after containerd's cleanup");
    assert_eq!(
        NetSnapshot::take(None).expect("host snapshot"),
        host_before,
        "host netns changed"
    );
    assert_nothing_left(&ctrd);
}
