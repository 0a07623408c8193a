//! Invariant 3 from the netns side: a fresh pool (a new process after a shim
//! crash) finishes a detach from the record alone, even when the recorded
//! path died with the pause process while the namespace lives on.

mod common;

use std::process::{Command, Stdio};

use common::*;
use netns::NetnsPool;
use urunc_tests::sandbox::SandboxNetns;

#[test]
fn a_fresh_pool_detaches_from_the_record_alone() {
    if !require_root("a_fresh_pool_detaches_from_the_record_alone") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let before = sandbox.snapshot().unwrap();
    let rt = runtime();
    let record = {
        let crashed = NetnsPool::new();
        let (record, _) = rt.block_on(attach_networked(&crashed, &sandbox, request("crash1")));
        record
        // The pool is dropped without detaching, like a SIGKILLed shim.
    };
    let json = serde_json::to_string(&record).unwrap();
    let from_disk: netns::NetRecord = serde_json::from_str(&json).unwrap();
    let fresh = NetnsPool::new();
    rt.block_on(fresh.detach(&from_disk)).unwrap();
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_eq!(fresh.live_workers(), 0);
}

#[test]
fn a_vanished_proc_path_is_replaced_by_the_pinned_one() {
    if !require_root("a_vanished_proc_path_is_replaced_by_the_pinned_one") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let before = sandbox.snapshot().unwrap();
    // The "pause container": a process inside the sandbox. containerd hands
    // containers /proc/<pause pid>/ns/net as their netns path.
    let mut pause = Command::new("ip")
        .args(["netns", "exec", sandbox.name(), "sleep", "600"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let proc_path = std::path::PathBuf::from(format!("/proc/{}/ns/net", pause.id()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while netns::netns_inode_of(&proc_path).ok() != Some(sandbox.inode().unwrap()) {
        assert!(
            std::time::Instant::now() < deadline,
            "pause never entered the sandbox"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let rt = runtime();
    let record = {
        let crashed = NetnsPool::new();
        let outcome = rt
            .block_on(crashed.attach(&proc_path, request("crash2")))
            .unwrap();
        let netns::AttachOutcome::Attached { record, .. } = outcome else {
            panic!("the sandbox has eth0");
        };
        record
    };
    assert_eq!(record.netns.path, proc_path);
    pause.kill().unwrap();
    pause.wait().unwrap();
    assert!(!record.netns.path_still_names_it());

    let fresh = NetnsPool::new();
    rt.block_on(fresh.detach(&record)).unwrap();
    assert_eq!(
        sandbox.snapshot().unwrap(),
        before,
        "tap and rules removed through /run/netns"
    );
}
