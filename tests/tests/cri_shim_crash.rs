//! Pods whose shim dies (SIGKILL: an OOM kill, a bug) while their unikernel
//! runs. containerd notices, runs `containerd-shim-urunc-v2 delete` for each
//! of the pod's tasks (the pause container and the unikernel, in no fixed
//! order), and CRI reports the containers exited; the kubelet then removes
//! the pods. Nothing may survive: no VMM, no pause process, no tap or tc rule
//! in a pod namespace, no state, and the CNI DEL still succeeds.
//!
//! Several pods crash at once so that both orders of the two `delete` runs
//! are exercised in one test run.

use std::time::Duration;

use k8s_cri::v1::ContainerState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::netns_hold::NetnsHold;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::{threads_in_netns, urunc_network_leftovers};
use urunc_tests::cri::steps::pvh_node_or_skip;
use urunc_tests::cri::{container_config, CriNode, Pod};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::host_processes::is_alive;
use urunc_tests::wait::eventually;

const IMAGE: &str = "localhost/urunc-rs/pvh-halt:shim-crash";
const MARKER: &str = "URUNC-PVH-CRI-SHIM-CRASH";
const PODS: usize = 4;

/// A pod with a running unikernel, its namespace held open for inspection.
struct CrashingPod {
    pod: Pod,
    container: String,
    hold: NetnsHold,
}

fn pod_with_unikernel(node: &CriNode, index: usize) -> CrashingPod {
    let pod = node
        .run_pod(&format!("shim-crash-{index}"))
        .expect("RunPodSandbox");
    let container = node
        .create_container(&pod, &container_config("unikernel", 0, IMAGE))
        .expect("CreateContainer");
    node.client()
        .start_container(&container)
        .expect("StartContainer");
    let log = pod.log_dir.join(container_log_path("unikernel", 0));
    assert!(
        eventually(Duration::from_secs(30), || logged_text(&log)
            .is_ok_and(|text| text.contains(MARKER))),
        "pod {index}: the guest never printed {MARKER}"
    );
    // Keeps the namespace readable after CRI unpins it, to look for taps and filters.
    let hold = NetnsHold::hold(&pod.network.netns_path).expect("hold the pod netns");
    CrashingPod {
        pod,
        container,
        hold,
    }
}

fn has_exited(node: &CriNode, container: &str) -> bool {
    node.client()
        .container_status(container, false)
        .ok()
        .and_then(|response| response.status)
        .is_some_and(|status| status.state == ContainerState::ContainerExited as i32)
}

#[test]
fn pods_whose_shim_was_killed_are_removed_without_leftovers() {
    let test = "pods_whose_shim_was_killed_are_removed_without_leftovers";
    let Some(node) = pvh_node_or_skip(test, IMAGE, PvhBehaviour::HaltForever, MARKER) else {
        return;
    };
    let pods: Vec<CrashingPod> = (0..PODS)
        .map(|index| pod_with_unikernel(&node, index))
        .collect();
    let shims = node.shims();
    assert_eq!(shims.len(), PODS, "one shim per pod: {shims:?}");
    assert_eq!(node.vmms().len(), PODS, "{:?}", node.vmms());

    for shim in &shims {
        kill(Pid::from_raw(shim.pid), Signal::SIGKILL).expect("SIGKILL a pod's shim");
    }
    for crashed in &pods {
        assert!(
            eventually(Duration::from_secs(30), || has_exited(
                &node,
                &crashed.container
            )),
            "CRI never saw {} exit after its shim died: {:?}\n{}",
            crashed.container,
            node.client().container_status(&crashed.container, false),
            node.containerd().log_tail(40)
        );
    }
    for crashed in &pods {
        let pod_id = &crashed.pod.id;
        node.client().stop_pod_sandbox(pod_id).unwrap_or_else(|e| {
            panic!(
                "StopPodSandbox {pod_id}: {e}\n{}",
                node.containerd().log_tail(40)
            )
        });
        node.client()
            .remove_pod_sandbox(pod_id)
            .unwrap_or_else(|e| {
                panic!(
                    "RemovePodSandbox {pod_id}: {e}\n{}",
                    node.containerd().log_tail(40)
                )
            });
    }

    assert!(
        eventually(Duration::from_secs(10), || node.vmms().is_empty()),
        "VMMs outlived their dead shims and pods: {:?}",
        node.vmms()
    );
    assert!(node.shims().is_empty(), "shims: {:?}", node.shims());
    assert!(
        node.network()
            .bridge_ports()
            .expect("bridge ports")
            .is_empty(),
        "the CNI DEL left veths"
    );
    let mut leaks = Vec::new();
    for crashed in pods {
        let pod_id = crashed.pod.id.clone();
        if is_alive(crashed.pod.network.pause_pid) {
            leaks.push(format!(
                "pod {pod_id}: pause process {} alive",
                crashed.pod.network.pause_pid
            ));
        }
        let left = urunc_network_leftovers(crashed.hold.name()).expect("read a held netns");
        if !left.is_empty() {
            leaks.push(format!("pod {pod_id}: left in its netns: {left:?}"));
        }
        let inode = crashed.hold.inode();
        crashed.hold.release().expect("release a held netns");
        if !eventually(Duration::from_secs(10), || {
            threads_in_netns(inode).is_empty()
        }) {
            leaks.push(format!(
                "pod {pod_id}: threads in its netns: {:?}",
                threads_in_netns(inode)
            ));
        }
        for removed in [&pod_id, &crashed.container] {
            let state = node.state_leftovers(removed);
            if !state.is_empty() {
                leaks.push(format!("state left for {removed}: {state:?}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "after {PODS} shim crashes:\n{}",
        leaks.join("\n")
    );
    node.stop().expect("nothing left when the node stops");
}
