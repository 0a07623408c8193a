//! In a pod whose eth0 has a 1400 MTU, the worker creates the tap with that MTU and tells the
//! guest: a VMM that reads the tap's MTU (cloud-hypervisor, solo5) or is told it (qemu's
//! host_mtu, firecracker's mtu) needs no privilege to give the guest eth0's MTU.

mod common;

use common::*;
use netns::NetnsPool;
use urunc_tests::sandbox::{run, SandboxNetns};

const POD_MTU: &str = "1400";

#[test]
fn the_tap_has_eth0s_mtu_in_a_1400_mtu_pod() {
    if !require_root("the_tap_has_eth0s_mtu_in_a_1400_mtu_pod") {
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    run(
        "ip",
        &["-n", sandbox.name(), "link", "set", "eth0", "mtu", POD_MTU],
    )
    .unwrap();
    let before = sandbox.snapshot().unwrap();
    let persisted = Persisted::default();
    let pool = NetnsPool::new();
    runtime().block_on(async {
        let (record, guest) =
            attach_networked(&pool, &sandbox, persisted.request(&sandbox, "mtu")).await;
        assert_eq!(guest.mtu.to_string(), POD_MTU);
        let tap_mtu = sandbox
            .exec("cat", &[&format!("/sys/class/net/{}/mtu", record.tap)])
            .unwrap();
        assert_eq!(tap_mtu.trim(), POD_MTU, "the tap's MTU");
        pool.detach(&record).await.unwrap();
    });
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_eq!(pool.live_workers(), 0, "a worker was left behind");
}
