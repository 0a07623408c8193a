//! Shared pieces of the netns integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::{Arc, Mutex};

use netns::{AttachOutcome, AttachRequest, GuestAttachment, NetRecord, NetnsPool};
use urunc_tests::sandbox::{run, SandboxNetns};

/// These tests need root (namespaces, taps, tc). Without it they say so.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    urunc_test_skip::skipped!("SKIPPED: {test}: needs root for network namespaces and tap devices");
    false
}

/// Records persisted by attach, and whether the tap already existed when the
/// record was written (it must not: records come before creation).
#[derive(Clone, Default)]
pub struct Persisted {
    pub records: Arc<Mutex<Vec<(NetRecord, bool)>>>,
}

impl Persisted {
    pub fn request(&self, sandbox: &SandboxNetns, container_id: &str) -> AttachRequest {
        let records = self.records.clone();
        let netns = sandbox.name().to_string();
        AttachRequest {
            container_id: container_id.to_string(),
            owner_uid: 0,
            owner_gid: 0,
            persist: Box::new(move |record| {
                let tap_existed = run("ip", &["-n", &netns, "link", "show", &record.tap]).is_ok();
                records.lock().unwrap().push((record.clone(), tap_existed));
                Ok(())
            }),
        }
    }

    pub fn all_written_before_creation(&self) -> bool {
        self.records
            .lock()
            .unwrap()
            .iter()
            .all(|(_, existed)| !existed)
    }
}

/// A request whose persistence is not checked.
pub fn request(container_id: &str) -> AttachRequest {
    AttachRequest {
        container_id: container_id.to_string(),
        owner_uid: 0,
        owner_gid: 0,
        persist: Box::new(|_| Ok(())),
    }
}

/// Attaches and expects a network.
pub async fn attach_networked(
    pool: &NetnsPool,
    sandbox: &SandboxNetns,
    request: AttachRequest,
) -> (NetRecord, GuestAttachment) {
    match pool.attach(&sandbox.path(), request).await {
        Ok(AttachOutcome::Attached { record, guest }) => (record, guest),
        other => panic!(
            "attach in {} should give a network, got {other:?}",
            sandbox.name()
        ),
    }
}

/// The sandbox holds no urunc tap, no ingress/clsact qdisc and no filter.
pub fn assert_sandbox_clean(sandbox: &SandboxNetns) {
    let snap = sandbox.snapshot().expect("snapshot of sandbox");
    assert!(
        snap.urunc_taps().is_empty(),
        "taps left in {}: {:?}",
        sandbox.name(),
        snap.urunc_taps()
    );
    assert!(
        snap.ingress_qdiscs().is_empty(),
        "qdiscs left in {}: {:?}",
        sandbox.name(),
        snap.ingress_qdiscs()
    );
    assert!(
        snap.filters.is_empty(),
        "filters left in {}: {:?}",
        sandbox.name(),
        snap.filters
    );
}

/// A multi-threaded runtime like the shim's, with several threads so tasks
/// really hop between OS threads.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Moves the rest of the caller onto another task (and likely another thread).
pub async fn hop_threads() {
    tokio::task::yield_now().await;
    tokio::spawn(async { tokio::task::yield_now().await })
        .await
        .expect("hop task");
}

/// The network namespace inode of this process's main thread.
pub fn original_netns_ino() -> u64 {
    let main = format!("/proc/self/task/{}/ns/net", std::process::id());
    netns::netns_inode_of(std::path::Path::new(&main)).expect("main thread netns")
}

/// Threads of this process whose network namespace is `ino`.
pub fn threads_in(ino: u64) -> Vec<netns::ThreadNetns> {
    netns::thread_netns_audit(std::process::id() as i32)
        .expect("audit threads")
        .into_iter()
        .filter(|t| t.netns_ino == ino)
        .collect()
}
