//! Invariant 5 for namespaces: bad input gets an error that names the path,
//! and nothing is left (no tap, no worker thread, no filter).

mod common;

use common::*;
use netns::{AttachOutcome, NetnsError, NetnsPool};
use urunc_tests::sandbox::{run, SandboxNetns};

fn assert_no_workers(pool: &NetnsPool) {
    assert_eq!(pool.live_workers(), 0, "a worker was left behind");
}

#[test]
fn a_regular_file_is_not_a_namespace() {
    if !require_root("a_regular_file_is_not_a_namespace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("netns");
    std::fs::write(&file, b"not a namespace").unwrap();
    let pool = NetnsPool::new();
    let err = runtime()
        .block_on(pool.attach(&file, request("bad1")))
        .unwrap_err();
    assert!(matches!(err, NetnsError::NotANamespace { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&file.display().to_string()) && message.contains("not an nsfs file"),
        "{message}"
    );
    assert_no_workers(&pool);
}

#[test]
fn a_mount_namespace_is_not_a_network_namespace() {
    if !require_root("a_mount_namespace_is_not_a_network_namespace") {
        return;
    }
    let pool = NetnsPool::new();
    let path = std::path::Path::new("/proc/self/ns/mnt");
    let err = runtime()
        .block_on(pool.attach(path, request("bad2")))
        .unwrap_err();
    assert!(matches!(err, NetnsError::NotANamespace { .. }), "{err}");
    assert!(
        err.to_string().contains("/proc/self/ns/mnt")
            && err.to_string().contains("mount namespace"),
        "{err}"
    );
    assert_no_workers(&pool);
}

#[test]
fn a_missing_path_is_refused() {
    if !require_root("a_missing_path_is_refused") {
        return;
    }
    let pool = NetnsPool::new();
    let path = std::path::Path::new("/run/netns/urunc-rs-no-such-namespace");
    let err = runtime()
        .block_on(pool.attach(path, request("bad3")))
        .unwrap_err();
    assert!(matches!(err, NetnsError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("urunc-rs-no-such-namespace"),
        "{err}"
    );
    assert_no_workers(&pool);
}

#[test]
fn a_namespace_deleted_under_its_worker_is_refused_and_released() {
    if !require_root("a_namespace_deleted_under_its_worker_is_refused_and_released") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let ino = sandbox.inode().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, _) = attach_networked(&pool, &sandbox, request("alive")).await;
        sandbox.delete_now().unwrap();
        let err = pool
            .attach(&sandbox.path(), request("late"))
            .await
            .unwrap_err();
        assert!(matches!(err, NetnsError::NotFound { .. }), "{err}");
        // The worker notices its namespace is gone, removes what it created
        // and ends, so the kernel can free the namespace.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !threads_in(ino).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "worker still holds the deleted netns"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        pool.detach(&record).await.unwrap();
    });
    assert_no_workers(&pool);
}

#[test]
fn a_foreign_device_named_like_the_next_tap_is_left_alone() {
    if !require_root("a_foreign_device_named_like_the_next_tap_is_left_alone") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    run(
        "ip",
        &[
            "-n",
            sandbox.name(),
            "link",
            "add",
            "tap0_urunc",
            "type",
            "bridge",
        ],
    )
    .unwrap();
    let before = sandbox.snapshot().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, _) = attach_networked(&pool, &sandbox, request("f1")).await;
        assert_eq!(record.tap, "tap1_urunc");
        pool.detach(&record).await.unwrap();
        // Sweep removes taps only, never a bridge that carries the name.
        let report = pool.sweep(&sandbox.path()).await.unwrap();
        assert!(report.taps.is_empty(), "{report:?}");
    });
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_no_workers(&pool);
}

#[test]
fn eth0_with_a_clsact_qdisc_works_and_keeps_it() {
    if !require_root("eth0_with_a_clsact_qdisc_works_and_keeps_it") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    run(
        "tc",
        &[
            "-n",
            sandbox.name(),
            "qdisc",
            "add",
            "dev",
            "eth0",
            "clsact",
        ],
    )
    .unwrap();
    let before = sandbox.snapshot().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, _) = attach_networked(&pool, &sandbox, request("k1")).await;
        assert!(
            !record.uplink_qdisc_added,
            "the CNI's clsact must be reused, not replaced"
        );
        let snap = sandbox.snapshot().unwrap();
        assert!(
            snap.filters.iter().any(|f| f.starts_with("eth0 ingress")),
            "{:?}",
            snap.filters
        );
        pool.detach(&record).await.unwrap();
    });
    assert_eq!(
        sandbox.snapshot().unwrap(),
        before,
        "clsact kept, our filters gone"
    );
    assert_no_workers(&pool);
}

#[test]
fn a_namespace_without_eth0_has_no_network() {
    if !require_root("a_namespace_without_eth0_has_no_network") {
        return;
    }
    let sandbox = SandboxNetns::create_bare().unwrap();
    let before = sandbox.snapshot().unwrap();
    let persisted = Persisted::default();
    let pool = NetnsPool::new();
    let outcome = runtime()
        .block_on(pool.attach(&sandbox.path(), persisted.request(&sandbox, "n1")))
        .unwrap();
    assert_eq!(outcome, AttachOutcome::NoNetwork);
    assert!(
        persisted.records.lock().unwrap().is_empty(),
        "nothing to record"
    );
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_no_workers(&pool);
}

#[test]
fn a_second_networked_unikernel_in_one_pod_is_refused() {
    if !require_root("a_second_networked_unikernel_in_one_pod_is_refused") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, _) = attach_networked(&pool, &sandbox, request("first")).await;
        let with_one = sandbox.snapshot().unwrap();
        let err = pool
            .attach(&sandbox.path(), request("second"))
            .await
            .unwrap_err();
        assert!(matches!(err, NetnsError::AlreadyRedirected { .. }), "{err}");
        assert!(
            err.to_string().contains("eth0") && err.to_string().contains("two unikernels"),
            "{err}"
        );
        assert_eq!(
            sandbox.snapshot().unwrap(),
            with_one,
            "the refused attach created nothing"
        );
        pool.detach(&record).await.unwrap();
    });
    assert_sandbox_clean(&sandbox);
    assert_no_workers(&pool);
}

#[test]
fn a_failed_persist_aborts_with_nothing_created() {
    if !require_root("a_failed_persist_aborts_with_nothing_created") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let before = sandbox.snapshot().unwrap();
    let pool = NetnsPool::new();
    let request = netns::AttachRequest {
        container_id: "p1".into(),
        owner_uid: 0,
        owner_gid: 0,
        persist: Box::new(|_| Err(std::io::Error::other("disk full"))),
    };
    let err = runtime()
        .block_on(pool.attach(&sandbox.path(), request))
        .unwrap_err();
    assert!(matches!(err, NetnsError::Persist { .. }), "{err}");
    assert!(
        err.to_string().contains("\"p1\"") && err.to_string().contains("disk full"),
        "{err}"
    );
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_no_workers(&pool);
}

#[test]
fn sweep_removes_leaked_taps_and_redirects() {
    if !require_root("sweep_removes_leaked_taps_and_redirects") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let before = sandbox.snapshot().unwrap();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        // Leak: attach, then lose the record (as a crashed Go urunc would).
        let (_lost, _) = attach_networked(&pool, &sandbox, request("leaky")).await;
        let report = pool.sweep(&sandbox.path()).await.unwrap();
        assert_eq!(report.taps, vec!["tap0_urunc".to_string()]);
        assert_eq!(
            report.uplink_filter_priorities,
            vec![netns::FILTER_PRIORITY]
        );
        assert!(report.uplink_qdisc);
    });
    assert_eq!(sandbox.snapshot().unwrap(), before);
}

#[test]
fn an_attach_failing_halfway_removes_what_it_created() {
    if !require_root("an_attach_failing_halfway_removes_what_it_created") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    // A tap's MTU tops out at 65521: copying eth0's 65535 fails after the
    // tap exists, so the rollback has something to remove.
    run(
        "ip",
        &["-n", sandbox.name(), "link", "set", "eth0", "mtu", "65535"],
    )
    .unwrap();
    let before = sandbox.snapshot().unwrap();
    let persisted = Persisted::default();
    let pool = NetnsPool::new();
    let err = runtime()
        .block_on(pool.attach(&sandbox.path(), persisted.request(&sandbox, "half")))
        .unwrap_err();
    assert!(matches!(err, NetnsError::Netlink { .. }), "{err}");
    assert!(err.to_string().contains("set mtu 65535"), "{err}");
    assert_eq!(
        persisted.records.lock().unwrap().len(),
        1,
        "recorded before creating"
    );
    assert_eq!(
        sandbox.snapshot().unwrap(),
        before,
        "the half-made tap was removed"
    );
    assert_no_workers(&pool);
}
