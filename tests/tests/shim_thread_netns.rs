//! Invariant 1 seen from outside: while a unikernel runs, every thread of the shim other than
//! its `ns-*` netns workers is in the host network namespace, and each worker is in the sandbox.

mod shim_support;

use shim_support::{
    containerd, ctr_ok, import_pvh_unikernel, run_detached_in, sandbox_with_ns, shims_of,
};
use urunc_tests::guests::PvhBehaviour;

const IMAGE: &str = "docker.io/library/pvh-halt:test";

fn netns_of(path: &str) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .display()
        .to_string()
}

#[test]
fn shim_threads_stay_in_the_host_netns_while_a_unikernel_runs() {
    let test = "shim_threads_stay_in_the_host_netns_while_a_unikernel_runs";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let _guest_dir =
        import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "pvh-halt-ready");
    let (sandbox, with_ns) = sandbox_with_ns();
    run_detached_in(&ctrd, &with_ns, IMAGE, "audit");

    // The test runs where containerd and its shims run: the host netns.
    let host = netns_of("/proc/self/ns/net");
    let sandbox_ns = format!("net:[{}]", sandbox.inode().expect("sandbox inode"));
    let shims = shims_of(&ctrd);
    assert_eq!(shims.len(), 1, "{shims:?}");
    let pid = shims[0].0;
    let mut workers = 0;
    let mut others = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list shim threads")
        .flatten()
    {
        let tid = entry.file_name().to_string_lossy().into_owned();
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let netns = netns_of(&format!("/proc/{pid}/task/{tid}/ns/net"));
        if name.starts_with("ns-") {
            workers += 1;
            assert_eq!(
                netns, sandbox_ns,
                "worker {name} ({tid}) is not in the sandbox netns"
            );
        } else {
            others += 1;
            assert_eq!(
                netns, host,
                "shim thread {name} ({tid}) left the host netns"
            );
        }
    }
    assert!(others >= 1, "the shim has its main thread");
    assert_eq!(workers, 1, "one worker serves the one sandbox");

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "audit"]);
    shim_support::eventually(std::time::Duration::from_secs(20), || {
        ctr_ok(&ctrd, &["task", "ls"]).contains("STOPPED")
    });
    ctr_ok(&ctrd, &["task", "delete", "audit"]);
    ctr_ok(&ctrd, &["container", "rm", "audit"]);
    shim_support::assert_nothing_left(&ctrd);
}
