//! A network teardown that fails on the live path keeps the persisted record: Delete fails
//! saying what is left, the state stays, and once the obstacle is gone `delete` after a shim
//! SIGKILL finishes the teardown from disk.
//!
//! The obstacle is real: a foreign tc filter at the shim's own priority in another chain of
//! eth0's ingress hook, under an ingress qdisc that a CNI put there (so the shim leaves the
//! qdisc, and the filter with it). The shim's filter delete (chain 0) cannot remove it, and the
//! verification that follows finds it.

mod shim_support;

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, ctr, ctr_ok, eventually,
    import_pvh_unikernel, run_detached_in, sandbox_with_ns, shims_of, state_dir, vmms_mentioning,
};
use urunc_tests::guests::PvhBehaviour;

const IMAGE: &str = "docker.io/library/pvh-halt-retry:test";
/// The shim's redirect filter priority ("ur"), netns's `FILTER_PRIORITY`.
const SHIM_FILTER_PRIORITY: &str = "0x7572";

/// `tc -n <sandbox> qdisc <verb> dev eth0 ingress`: the CNI's qdisc.
fn cni_qdisc(sandbox: &str, verb: &str) -> std::process::Output {
    Command::new("tc")
        .args(["-n", sandbox, "qdisc", verb, "dev", "eth0", "ingress"])
        .output()
        .expect("run tc")
}

fn assert_ran(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `tc -n <sandbox> filter <verb> dev eth0 ingress chain 1 prio <ours> ...`.
fn foreign_filter(sandbox: &str, verb: &str) -> std::process::Output {
    let mut tc = Command::new("tc");
    tc.args(["-n", sandbox, "filter", verb, "dev", "eth0", "ingress"])
        .args([
            "chain",
            "1",
            "prio",
            SHIM_FILTER_PRIORITY,
            "protocol",
            "all",
        ]);
    if verb == "add" {
        tc.args(["u32", "match", "u32", "0", "0"]);
    }
    tc.output().expect("run tc")
}

#[test]
fn a_failed_live_detach_keeps_the_record_and_delete_after_a_crash_finishes_it() {
    let test = "a_failed_live_detach_keeps_the_record_and_delete_after_a_crash_finishes_it";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "retry-ready");
    let (sandbox, with_ns) = sandbox_with_ns();
    assert_ran("tc qdisc add", &cni_qdisc(sandbox.name(), "add"));
    run_detached_in(&ctrd, &with_ns, IMAGE, "retry");
    let state_file = state_dir(&ctrd).join("retry").join("state.json");

    assert_ran("tc filter add", &foreign_filter(sandbox.name(), "add"));
    let outcome = std::panic::catch_unwind(|| {
        ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "retry"]);
        let needle = ctrd.bundle_dir("retry").display().to_string();
        assert!(
            eventually(Duration::from_secs(30), || vmms_mentioning(&needle)
                .is_empty()),
            "the VMM survived SIGKILL"
        );
        // TaskExit is out once the exit path's (failed) detach is done.
        assert!(
            eventually(Duration::from_secs(30), || {
                ctr(&ctrd, &["task", "ls"], Duration::from_secs(20))
                    .stdout
                    .split(|b| *b == b'\n')
                    .any(|line| {
                        let line = String::from_utf8_lossy(line);
                        line.starts_with("retry ") && line.contains("STOPPED")
                    })
            }),
            "the task never stopped\n{}",
            ctrd.log_tail(30)
        );
        // The exit path's detach failed (and was logged); Delete tries again and fails too.
        let deleted = ctr(&ctrd, &["task", "delete", "retry"], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&deleted.stderr).to_string();
        assert!(
            !deleted.status.success(),
            "Delete succeeded with a leftover"
        );
        assert!(
            stderr.contains("filter"),
            "Delete does not say what is left: {stderr}"
        );
        let state = std::fs::read_to_string(&state_file)
            .unwrap_or_else(|e| panic!("the state went with a failed teardown ({e}): {stderr}"));
        let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
        assert!(
            state["net"].is_object(),
            "the state lost its network record: {state}"
        );
    });
    let removed = foreign_filter(sandbox.name(), "del");
    if let Err(panic) = outcome {
        assert_ran("tc qdisc del", &cni_qdisc(sandbox.name(), "del"));
        std::panic::resume_unwind(panic);
    }
    assert_ran("tc filter del", &removed);

    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "one shim: {shims:?}");
    kill(Pid::from_raw(shims[0].0), Signal::SIGKILL).expect("kill -9 the shim");
    // containerd sees the shim die and runs `containerd-shim-urunc-v2 delete` in the bundle.
    assert!(
        eventually(Duration::from_secs(30), || !state_file.exists()),
        "delete after the crash did not finish the teardown\n{}",
        ctrd.log_tail(40)
    );
    let deleted = ctr(&ctrd, &["task", "delete", "retry"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        deleted.status.success() || stderr.contains("not found"),
        "task delete: {stderr}"
    );
    ctr_ok(&ctrd, &["container", "rm", "retry"]);
    assert_ran("tc qdisc del", &cni_qdisc(sandbox.name(), "del"));
    assert_sandbox_clean(&sandbox, "after delete finished the teardown");
    assert_nothing_left(&ctrd);
}
