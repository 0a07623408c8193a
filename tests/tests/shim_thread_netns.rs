//! Invariant 1 seen from outside: while a unikernel runs, every thread of the shim other than
//! its `ns-*` netns workers is in the host network namespace, and each worker is in the sandbox.
//! Also: the VMM is pid 1 of the pid namespace `ctr run`'s spec asks for, while the shim's own
//! pid namespace is untouched.

mod shim_support;

use shim_support::{
    containerd, ctr_ok, import_pvh_unikernel, run_detached_in, sandbox_with_ns, shims_of,
    vmms_mentioning,
};
use urunc_tests::guests::PvhBehaviour;

const IMAGE: &str = "docker.io/library/pvh-halt:test";

fn namespace_of(path: &str) -> String {
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
    let host = namespace_of("/proc/self/ns/net");
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
        let netns = namespace_of(&format!("/proc/{pid}/task/{tid}/ns/net"));
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

    let vmms = vmms_mentioning(&ctrd.dir().display().to_string());
    assert_eq!(vmms.len(), 1, "{vmms:?}");
    let vmm = vmms[0].0;
    let status = std::fs::read_to_string(format!("/proc/{vmm}/status")).expect("VMM status");
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .expect("NSpid")
        .split_whitespace()
        .collect::<Vec<_>>();
    // pid 2: pid 1 is the shim's forwarding init, so the VMM sees the caller's SIGTERM.
    assert_eq!(nspid, [vmm.to_string().as_str(), "2"], "VMM NSpid");
    let init = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .expect("PPid")
        .trim()
        .to_owned();
    let init_status = std::fs::read_to_string(format!("/proc/{init}/status")).expect("init status");
    assert!(
        init_status.contains("Name:\turunc-vmm-init"),
        "pid 1 of the VMM's namespace: {init_status}"
    );
    assert!(
        init_status
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")),
        "{init_status}"
    );
    let init_cmdline = std::fs::read(format!("/proc/{init}/cmdline")).expect("init cmdline");
    assert!(
        init_cmdline.starts_with(b"urunc-vmm-init\0"),
        "{:?}",
        String::from_utf8_lossy(&init_cmdline)
    );
    assert_ne!(
        namespace_of(&format!("/proc/{vmm}/ns/pid")),
        namespace_of(&format!("/proc/{pid}/ns/pid")),
        "the VMM has its own pid namespace"
    );
    assert_eq!(
        namespace_of(&format!("/proc/{pid}/ns/pid")),
        namespace_of("/proc/self/ns/pid"),
        "the shim stays in the host pid namespace"
    );

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "audit"]);
    shim_support::eventually(std::time::Duration::from_secs(20), || {
        ctr_ok(&ctrd, &["task", "ls"]).contains("STOPPED")
    });
    ctr_ok(&ctrd, &["task", "delete", "audit"]);
    ctr_ok(&ctrd, &["container", "rm", "audit"]);
    shim_support::assert_nothing_left(&ctrd);
}
