//! CRI with the node-wide shim (`URUNC_RS_SHIM_GROUP=node`): eight pods, each with a
//! unikernel, run at once and are all served by one shim, the parent of every pause process
//! and every VMM. Removing the pods (their unikernels still running) leaves nothing: the shim
//! exits after its last container, every pod netns is freed.

use std::time::{Duration, Instant};

use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::steps::{import_pvh_image, stop_and_remove_pod};
use urunc_tests::cri::{container_config, node_with_config_or_skip, NodeConfig, Pod};
use urunc_tests::guests::PvhBehaviour;

const PODS: usize = 8;
const IMAGE: &str = "localhost/urunc-rs/pvh-halt:node-wide";
const MARKER: &str = "URUNC-PVH-CRI-NODE-WIDE";

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn eight_pods_are_served_by_one_shim_and_removing_them_leaves_nothing() {
    let test = "eight_pods_are_served_by_one_shim_and_removing_them_leaves_nothing";
    let setup = NodeConfig {
        extra_env: vec![("URUNC_RS_SHIM_GROUP".into(), "node".into())],
        ..NodeConfig::default()
    };
    let Some(node) = node_with_config_or_skip(test, &["qemu-system-x86_64", "ip", "tc"], setup)
    else {
        return;
    };
    import_pvh_image(&node, IMAGE, PvhBehaviour::HaltForever, MARKER);

    let pods: Vec<Pod> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PODS)
            .map(|index| {
                let node = &node;
                scope.spawn(move || {
                    let pod = node
                        .run_pod(&format!("node-wide-{index}"))
                        .expect("RunPodSandbox");
                    let id = node
                        .create_container(&pod, &container_config("unikernel", 0, IMAGE))
                        .expect("CreateContainer");
                    node.client().start_container(&id).expect("StartContainer");
                    let log = pod.log_dir.join(container_log_path("unikernel", 0));
                    assert!(
                        wait_for_logged(
                            &log,
                            MARKER,
                            Duration::from_secs(60),
                            Duration::from_millis(50)
                        ),
                        "pod {}: no {MARKER}",
                        pod.id
                    );
                    pod
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a pod worker panicked"))
            .collect()
    });

    let shims = node.shims();
    assert_eq!(shims.len(), 1, "one shim for {PODS} pods: {shims:?}");
    let shim = shims[0].pid;
    let vmms = node.vmms();
    assert_eq!(vmms.len(), PODS, "one VMM per pod: {vmms:?}");
    for (vmm, _) in &vmms {
        assert_eq!(
            parent_of(*vmm),
            Some(shim),
            "VMM {vmm} is not the shim's child"
        );
    }
    for pod in &pods {
        assert_eq!(
            parent_of(pod.network.pause_pid),
            Some(shim),
            "pod {}: its pause process is not the shim's child",
            pod.id
        );
    }

    std::thread::scope(|scope| {
        for pod in &pods {
            let node = &node;
            scope.spawn(move || stop_and_remove_pod(node, pod));
        }
    });
    // The node-wide shim lingers 5 s after its last container (see the shim's serve.rs).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node.shims().is_empty() || !node.vmms().is_empty() {
        assert!(
            Instant::now() < deadline,
            "left: shims {:?}, VMMs {:?}",
            node.shims(),
            node.vmms()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for pod in &pods {
        assert!(
            !pod.network.netns_path.exists(),
            "netns {} left",
            pod.network.netns_path.display()
        );
        let state = node.state_leftovers(&pod.id);
        assert!(state.is_empty(), "state left for pod {}: {state:?}", pod.id);
    }
    node.stop().expect("nothing left when the node stops");
}
