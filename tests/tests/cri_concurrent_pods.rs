//! Eight pods at once, each with a unikernel, created, restarted and deleted
//! concurrently from eight threads (a node under a rollout). While they all
//! run, each pod has exactly one shim whose `-id` is the pod's sandbox id and
//! which is the parent of that pod's pause process and VMM, and of no other
//! pod's. Afterwards nothing is left: no shim, no VMM, no tap or filter in
//! any pod netns (checked after every restart), no veth, no IP, no state.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::steps::{pvh_node_or_skip, stop_and_remove_pod};
use urunc_tests::cri::{container_config, CriNode, Pod};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::host_processes::{child_or_grandchild_of, parent_of};

const PODS: usize = 8;
/// Restarts per pod after the first unikernel.
const RESTARTS: u32 = 3;
const IMAGE: &str = "localhost/urunc-rs/pvh-halt:concurrent";
const MARKER: &str = "URUNC-PVH-CRI-CONCURRENT";
/// StopContainer's grace period. The PVH guest has no ACPI: SIGTERM's power button goes
/// unheard and the SIGKILL after this period ends it.
const GRACE_SECONDS: i64 = 2;

/// Creates and starts unikernel `attempt` in `pod`, waits for its console.
fn start_unikernel(node: &CriNode, pod: &Pod, attempt: u32) -> String {
    let config = container_config("unikernel", attempt, IMAGE);
    let id = node
        .create_container(pod, &config)
        .unwrap_or_else(|e| panic!("pod {}: CreateContainer {attempt}: {e}", pod.id));
    node.client()
        .start_container(&id)
        .unwrap_or_else(|e| panic!("pod {}: StartContainer {attempt}: {e}", pod.id));
    let log = pod.log_dir.join(container_log_path("unikernel", attempt));
    assert!(
        wait_for_logged(
            &log,
            MARKER,
            Duration::from_secs(60),
            Duration::from_millis(50)
        ),
        "pod {}: no {MARKER} in {}",
        pod.id,
        log.display()
    );
    id
}

/// StopContainer + RemoveContainer, then the pod netns must be clean.
fn stop_unikernel(node: &CriNode, pod: &Pod, id: &str) {
    node.client()
        .stop_container(id, GRACE_SECONDS)
        .unwrap_or_else(|e| panic!("pod {}: StopContainer {id}: {e}", pod.id));
    node.client()
        .remove_container(id)
        .unwrap_or_else(|e| panic!("pod {}: RemoveContainer {id}: {e}", pod.id));
    let leftovers = node.pod_leftovers(pod).expect("read the pod netns");
    assert!(
        leftovers.is_empty(),
        "pod {}: left after removing {id}: {leftovers:?}",
        pod.id
    );
    let state = node.state_leftovers(id);
    assert!(
        state.is_empty(),
        "pod {}: state left for {id}: {state:?}",
        pod.id
    );
}

#[test]
fn eight_pods_restarted_and_deleted_concurrently_leave_nothing() {
    let test = "eight_pods_restarted_and_deleted_concurrently_leave_nothing";
    let Some(node) = pvh_node_or_skip(test, IMAGE, PvhBehaviour::HaltForever, MARKER) else {
        return;
    };

    let started: Vec<(Pod, String)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PODS)
            .map(|index| {
                let node = &node;
                scope.spawn(move || {
                    let pod = node
                        .run_pod(&format!("concurrent-{index}"))
                        .expect("RunPodSandbox");
                    let id = start_unikernel(node, &pod, 0);
                    (pod, id)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a pod worker panicked"))
            .collect()
    });

    let shims = node.shims();
    let shim_of_pod: BTreeMap<String, i32> = shims
        .iter()
        .map(|shim| (shim.id.clone(), shim.pid))
        .collect();
    let pod_ids: BTreeSet<String> = started.iter().map(|(pod, _)| pod.id.clone()).collect();
    assert_eq!(shims.len(), PODS, "one shim per pod: {shims:?}");
    assert_eq!(
        shim_of_pod.keys().cloned().collect::<BTreeSet<_>>(),
        pod_ids,
        "shim ids are the pod sandbox ids: {shims:?}"
    );
    let vmms = node.vmms();
    assert_eq!(vmms.len(), PODS, "one VMM per pod: {vmms:?}");
    for (pod, container) in &started {
        let shim = shim_of_pod[&pod.id];
        assert_eq!(
            parent_of(pod.network.pause_pid),
            Some(shim),
            "pod {}: its pause process is not its shim's child",
            pod.id
        );
        let own_vmms: Vec<_> = vmms
            .iter()
            .filter(|(_, cmdline)| cmdline.contains(container.as_str()))
            .collect();
        assert_eq!(
            own_vmms.len(),
            1,
            "pod {}: VMMs of container {container}: {own_vmms:?}",
            pod.id
        );
        assert!(
            child_or_grandchild_of(own_vmms[0].0, shim),
            "pod {}: its VMM does not descend from its shim",
            pod.id
        );
    }
    let pod_ips: BTreeSet<&str> = started
        .iter()
        .map(|(pod, _)| pod.network.ip.as_str())
        .collect();
    assert_eq!(pod_ips.len(), PODS, "each pod has its own IP: {pod_ips:?}");

    std::thread::scope(|scope| {
        let workers: Vec<_> = started
            .iter()
            .map(|(pod, first)| {
                let node = &node;
                scope.spawn(move || {
                    stop_unikernel(node, pod, first);
                    for attempt in 1..=RESTARTS {
                        let id = start_unikernel(node, pod, attempt);
                        stop_unikernel(node, pod, &id);
                    }
                    // The last unikernel is still running when the pod goes.
                    start_unikernel(node, pod, RESTARTS + 1);
                    stop_and_remove_pod(node, pod);
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a pod worker panicked");
        }
    });

    let deadline = Instant::now() + Duration::from_secs(15);
    while !node.shims().is_empty() || !node.vmms().is_empty() {
        assert!(
            Instant::now() < deadline,
            "left: shims {:?}, VMMs {:?}",
            node.shims(),
            node.vmms()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pod, _) in &started {
        assert!(
            !pod.network.netns_path.exists(),
            "netns {} left",
            pod.network.netns_path.display()
        );
        let state = node.state_leftovers(&pod.id);
        assert!(state.is_empty(), "state left for pod {}: {state:?}", pod.id);
    }
    assert!(
        node.network()
            .bridge_ports()
            .expect("bridge ports")
            .is_empty(),
        "veths left"
    );
    assert!(
        node.network()
            .allocated_ips()
            .expect("IPAM records")
            .is_empty(),
        "IPs left allocated"
    );
    assert!(node
        .client()
        .list_pod_sandboxes()
        .expect("ListPodSandbox")
        .is_empty());
    node.stop().expect("nothing left when the node stops");
}
