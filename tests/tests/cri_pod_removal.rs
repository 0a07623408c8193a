//! `kubectl delete pod` / eviction / scale-to-zero while a unikernel runs:
//! StopPodSandbox then RemovePodSandbox. The unikernel is stopped, its tap
//! and tc rules are removed, the pod's shim exits, the CNI DEL succeeds (the
//! veth is gone, the IP released), no thread pins the pod namespace, and
//! nothing is left under containerd's, runc's or the shim's state folders.

use std::time::Duration;

use urunc_tests::cri::container_config;
use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::netns_hold::NetnsHold;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::{threads_in_netns, urunc_network_leftovers};
use urunc_tests::cri::steps::{assert_exited, pvh_node_or_skip};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::host_processes::is_alive;
use urunc_tests::wait::eventually;

const IMAGE: &str = "localhost/urunc-rs/pvh-halt:removal";
const MARKER: &str = "URUNC-PVH-CRI-REMOVAL";

#[test]
fn removing_a_pod_with_a_running_unikernel_leaves_nothing() {
    let test = "removing_a_pod_with_a_running_unikernel_leaves_nothing";
    let Some(node) = pvh_node_or_skip(test, IMAGE, PvhBehaviour::HaltForever, MARKER) else {
        return;
    };
    let pod = node.run_pod("removal").expect("RunPodSandbox");
    let config = container_config("unikernel", 0, IMAGE);
    let id = node
        .create_container(&pod, &config)
        .expect("CreateContainer");
    node.client().start_container(&id).expect("StartContainer");
    let log = pod.log_dir.join(container_log_path("unikernel", 0));
    assert!(
        eventually(Duration::from_secs(30), || logged_text(&log)
            .is_ok_and(|text| text.contains(MARKER))),
        "the guest's console never reached {}: {:?}",
        log.display(),
        logged_text(&log)
    );

    let shims = node.shims();
    assert_eq!(shims.len(), 1, "one shim per pod: {shims:?}");
    let shim_pid = shims[0].pid;
    let vmms = node.vmms();
    assert_eq!(vmms.len(), 1, "one VMM: {vmms:?}");
    let veths = node.network().bridge_ports().expect("bridge ports");
    assert_eq!(
        veths.len(),
        1,
        "one veth on the bridge for the pod: {veths:?}"
    );
    assert_eq!(
        node.network().allocated_ips().expect("IPAM records"),
        vec![pod.network.ip.clone()]
    );
    // Keeps the namespace readable after CRI unpins it, to look for taps and filters.
    let hold = NetnsHold::hold(&pod.network.netns_path).expect("hold the pod netns");
    let attached = urunc_network_leftovers(hold.name()).expect("read the pod netns");
    assert!(
        attached.iter().any(|item| item.starts_with("tap ")),
        "no tap while the unikernel runs: {attached:?}"
    );

    node.client()
        .stop_pod_sandbox(&pod.id)
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", node.containerd().log_tail(40)));
    assert!(
        node.vmms().is_empty(),
        "the VMM survived StopPodSandbox: {:?}",
        node.vmms()
    );
    assert_exited(&node, &id);
    let left = urunc_network_leftovers(hold.name()).expect("read the held netns");
    assert!(
        left.is_empty(),
        "tap or tc rules left in the pod netns after StopPodSandbox: {left:?}"
    );
    assert!(
        !pod.network.netns_path.exists(),
        "CRI did not unpin {}",
        pod.network.netns_path.display()
    );
    assert!(
        node.network()
            .bridge_ports()
            .expect("bridge ports")
            .is_empty(),
        "the CNI DEL left the veth"
    );
    assert!(
        node.network()
            .allocated_ips()
            .expect("IPAM records")
            .is_empty(),
        "the CNI DEL left the IP allocated"
    );
    let inode = hold.inode();
    hold.release().expect("release the held netns");
    assert!(
        eventually(Duration::from_secs(10), || threads_in_netns(inode)
            .is_empty()),
        "threads still in the pod netns (it cannot be freed): {:?}",
        threads_in_netns(inode)
    );

    // The kubelet repeats StopPodSandbox until it succeeds; a stopped pod answers OK again.
    node.client()
        .stop_pod_sandbox(&pod.id)
        .expect("a second StopPodSandbox");
    node.client()
        .remove_pod_sandbox(&pod.id)
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", node.containerd().log_tail(40)));
    assert!(
        eventually(Duration::from_secs(10), || !is_alive(shim_pid)),
        "the pod's shim {shim_pid} did not exit after RemovePodSandbox"
    );
    assert!(node.shims().is_empty(), "shims left: {:?}", node.shims());
    for removed in [&pod.id, &id] {
        let state = node.state_leftovers(removed);
        assert!(state.is_empty(), "state left for {removed}: {state:?}");
    }
    assert!(node
        .client()
        .list_containers(None)
        .expect("ListContainers")
        .is_empty());
    assert!(node
        .client()
        .list_pod_sandboxes()
        .expect("ListPodSandbox")
        .is_empty());
    node.stop().expect("nothing left when the node stops");
}
