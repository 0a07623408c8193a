//! The seed's reproduction and its concurrent form: attach/detach cycles from
//! a multi-threaded runtime whose tasks hop threads between calls must leave
//! nothing in the sandbox and nothing changed on the host.

mod common;

use common::*;
use netns::{NetnsPool, FILTER_PRIORITY};
use urunc_tests::sandbox::{NetSnapshot, SandboxNetns, PEER_IP, PREFIX_LEN, SANDBOX_IP};

#[test]
fn fifty_cycles_in_one_pod_leave_nothing() {
    if !require_root("fifty_cycles_in_one_pod_leave_nothing") {
        return;
    }
    let host_before = NetSnapshot::take(None).unwrap();
    let sandbox = SandboxNetns::create().unwrap();
    let sandbox_before = sandbox.snapshot().unwrap();
    let eth0_mac = sandbox
        .exec("cat", &["/sys/class/net/eth0/address"])
        .unwrap_or_default();
    let persisted = Persisted::default();
    let pool = NetnsPool::new();

    runtime().block_on(async {
        for cycle in 0..50 {
            let id = format!("c{cycle}");
            let (record, guest) =
                attach_networked(&pool, &sandbox, persisted.request(&sandbox, &id)).await;
            if cycle == 0 {
                // What attach made, seen from outside the process.
                let snap = sandbox.snapshot().unwrap();
                assert_eq!(snap.urunc_taps(), vec![&record.tap]);
                assert_eq!(snap.ingress_qdiscs().len(), 2, "{:?}", snap.qdiscs);
                let tap_filters = snap
                    .filters
                    .iter()
                    .filter(|f| f.starts_with(&record.tap))
                    .count();
                let eth0_filters = snap
                    .filters
                    .iter()
                    .filter(|f| f.starts_with("eth0 ingress"))
                    .count();
                assert!(tap_filters > 0 && eth0_filters > 0, "{:?}", snap.filters);
                assert!(snap
                    .filters
                    .iter()
                    .any(|f| f.contains(&format!("pref {FILTER_PRIORITY}"))));
                assert_eq!(guest.ipv4.to_string(), SANDBOX_IP);
                assert_eq!(guest.prefix_len, PREFIX_LEN);
                assert_eq!(
                    guest.gateway.map(|g| g.to_string()).as_deref(),
                    Some(PEER_IP)
                );
                assert_eq!(guest.mac, eth0_mac.trim());
                assert_eq!(guest.tap, record.tap);
            }
            hop_threads().await;
            pool.detach(&record).await.unwrap();
            hop_threads().await;
        }
    });

    assert!(persisted.all_written_before_creation());
    assert_eq!(persisted.records.lock().unwrap().len(), 50);
    assert_sandbox_clean(&sandbox);
    assert_eq!(sandbox.snapshot().unwrap(), sandbox_before);
    assert_eq!(NetSnapshot::take(None).unwrap(), host_before);
    assert_eq!(pool.live_workers(), 0);
}

#[test]
fn thirty_two_pods_cycling_at_once_leave_nothing() {
    if !require_root("thirty_two_pods_cycling_at_once_leave_nothing") {
        return;
    }
    const PODS: usize = 32;
    const CYCLES: usize = 5;
    let host_before = NetSnapshot::take(None).unwrap();
    let sandboxes: Vec<SandboxNetns> = (0..PODS).map(|_| SandboxNetns::create().unwrap()).collect();
    let befores: Vec<NetSnapshot> = sandboxes.iter().map(|s| s.snapshot().unwrap()).collect();
    let pool = NetnsPool::new();

    runtime().block_on(async {
        let mut tasks = Vec::new();
        for (pod, sandbox) in sandboxes.iter().enumerate() {
            let pool = pool.clone();
            let path = sandbox.path();
            tasks.push(tokio::spawn(async move {
                for cycle in 0..CYCLES {
                    let id = format!("p{pod}c{cycle}");
                    let outcome = pool.attach(&path, request(&id)).await.unwrap();
                    let netns::AttachOutcome::Attached { record, .. } = outcome else {
                        panic!("pod {pod} has eth0 and must get a network");
                    };
                    hop_threads().await;
                    pool.detach(&record).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });

    for (sandbox, before) in sandboxes.iter().zip(&befores) {
        assert_sandbox_clean(sandbox);
        assert_eq!(&sandbox.snapshot().unwrap(), before);
    }
    assert_eq!(NetSnapshot::take(None).unwrap(), host_before);
    assert_eq!(pool.live_workers(), 0);
}
