//! Invariant 1 and 4: only workers leave the original namespace, each worker
//! sits in the namespace its name says, and a retired worker holds nothing.

mod common;

use common::*;
use netns::{NetnsPool, THREAD_NAME_PREFIX};
use urunc_tests::sandbox::SandboxNetns;

#[test]
fn only_workers_leave_the_original_namespace() {
    if !require_root("only_workers_leave_the_original_namespace") {
        return;
    }
    let sandboxes: Vec<SandboxNetns> = (0..3).map(|_| SandboxNetns::create().unwrap()).collect();
    let pool = NetnsPool::new();
    let original = original_netns_ino();
    runtime().block_on(async {
        let mut records = Vec::new();
        for (i, sandbox) in sandboxes.iter().enumerate() {
            let (record, _) = attach_networked(&pool, sandbox, request(&format!("t{i}"))).await;
            records.push(record);
            hop_threads().await;
        }
        let threads = netns::thread_netns_audit(std::process::id() as i32).unwrap();
        for thread in &threads {
            if thread.is_worker() {
                let named: u64 = thread.name[THREAD_NAME_PREFIX.len()..].parse().unwrap();
                assert_eq!(
                    thread.netns_ino, named,
                    "worker {thread:?} is not where its name says"
                );
            } else {
                assert_eq!(
                    thread.netns_ino, original,
                    "non-worker thread {thread:?} left the original netns"
                );
            }
        }
        for sandbox in &sandboxes {
            let ino = sandbox.inode().unwrap();
            let holders = threads_in(ino);
            assert_eq!(
                holders.len(),
                1,
                "exactly one worker per sandbox: {holders:?}"
            );
            assert!(holders[0].is_worker());
        }
        for record in &records {
            pool.detach(record).await.unwrap();
        }
    });
    for sandbox in &sandboxes {
        assert!(threads_in(sandbox.inode().unwrap()).is_empty());
        assert_sandbox_clean(sandbox);
    }
}

#[test]
fn retired_worker_releases_the_namespace() {
    if !require_root("retired_worker_releases_the_namespace") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let ino = sandbox.inode().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, _) = attach_networked(&pool, &sandbox, request("r1")).await;
        let holders = threads_in(ino);
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].name, format!("{THREAD_NAME_PREFIX}{ino}"));
        pool.detach(&record).await.unwrap();
    });
    assert_eq!(pool.live_workers(), 0);
    sandbox.delete_now().unwrap();
    assert!(
        threads_in(ino).is_empty(),
        "a retired worker still holds netns {ino}"
    );
}

#[test]
fn a_detach_answered_before_its_worker_ends_is_clean_and_its_retirement_releases_the_namespace() {
    let name = "a_detach_answered_before_its_worker_ends_is_clean_and_its_retirement_releases_the_namespace";
    if !require_root(name) {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let ino = sandbox.inode().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, _) = attach_networked(&pool, &sandbox, request("e1")).await;
        let (detached, retirement) = pool.detach_before_retirement(&record).await;
        let detached = detached.unwrap();
        assert!(
            detached.tap_deletion.is_some(),
            "the tap's deletion is timed: {detached:?}"
        );
        // Verified clean when answered, whether or not the thread has ended yet.
        assert_sandbox_clean(&sandbox);
        assert_eq!(pool.live_workers(), 0, "the worker left the pool at once");
        retirement.wait().await;
    });
    assert!(
        threads_in(ino).is_empty(),
        "the waited retirement left a thread in netns {ino}"
    );
}
