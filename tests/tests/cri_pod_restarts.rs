//! The seed's realistic trigger through containerd's real CRI plugin: one
//! pod whose network namespace (held by the pause container) outlives 50
//! restarts of a unikernel container, each driven like the kubelet drives a
//! liveness restart: CreateContainer, StartContainer, StopContainer with a
//! grace period, RemoveContainer. After every round the pod namespace holds
//! no urunc tap, no filter, no ingress qdisc, and the pause container runs.

use std::time::{Duration, Instant};

use k8s_cri::v1::ContainerState;
use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::urunc_network_leftovers;
use urunc_tests::cri::steps::{
    pvh_node_or_skip, status_of, stop_and_remove_pod, LOG_POLL, PVH_MARKER_LIMIT,
};
use urunc_tests::cri::{container_config, CriNode, Pod};
use urunc_tests::guests::PvhBehaviour;

const ROUNDS: u32 = 50;
const IMAGE: &str = "localhost/urunc-rs/pvh-halt:cri";
const MARKER: &str = "URUNC-PVH-CRI-ROUND";
/// The kubelet's StopContainer grace period: SIGTERM first, SIGKILL after. The PVH guest
/// has no ACPI, so the power button SIGTERM presses goes unheard and the SIGKILL ends it:
/// short, so fifty rounds do not each wait a kubelet-sized grace period.
const GRACE_SECONDS: i64 = 2;

#[test]
fn fifty_unikernel_restarts_in_one_pod_leave_the_pod_network_clean() {
    let test = "fifty_unikernel_restarts_in_one_pod_leave_the_pod_network_clean";
    let Some(node) = pvh_node_or_skip(test, IMAGE, PvhBehaviour::HaltForever, MARKER) else {
        return;
    };
    let pod = node.run_pod("restarts").expect("RunPodSandbox");
    let clean = node.pod_leftovers(&pod).expect("read the pod netns");
    assert!(
        clean.is_empty(),
        "the pod is not clean before any unikernel ran: {clean:?}"
    );

    let started = Instant::now();
    for round in 0..ROUNDS {
        run_one_round(&node, &pod, round);
        let leftovers = node.pod_leftovers(&pod).expect("read the pod netns");
        assert!(
            leftovers.is_empty(),
            "round {round}: left in pod {}: {leftovers:?}\n{}",
            pod.id,
            node.containerd().log_tail(30)
        );
    }
    println!("{ROUNDS} rounds in {:?}", started.elapsed());

    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}

fn run_one_round(node: &CriNode, pod: &Pod, round: u32) {
    let client = node.client();
    let config = container_config("unikernel", round, IMAGE);
    let id = node.create_container(pod, &config).unwrap_or_else(|e| {
        panic!(
            "round {round}: CreateContainer: {e}\n{}",
            node.containerd().log_tail(30)
        )
    });
    client.start_container(&id).unwrap_or_else(|e| {
        panic!(
            "round {round}: StartContainer: {e}\n{}",
            node.containerd().log_tail(30)
        )
    });

    let status = status_of(node, &id);
    assert_eq!(
        status.state,
        ContainerState::ContainerRunning as i32,
        "round {round}: {status:?}"
    );
    let log = pod.log_dir.join(container_log_path("unikernel", round));
    assert!(
        status.started_at > 0 && status.log_path == log.display().to_string(),
        "round {round}: start time and log path ({}) in {status:?}",
        log.display()
    );
    let started_at = status.started_at;
    let shims = node.shims();
    assert!(
        shims.len() == 1 && shims[0].id == pod.id,
        "round {round}: the pod must be served by exactly one shim (id {}): {shims:?}",
        pod.id
    );
    // The guest really is on the pod network: its tap and redirect exist now.
    let attached = urunc_network_leftovers(&pod.network.netns_name()).expect("read the pod netns");
    assert!(
        attached.iter().any(|item| item.starts_with("tap ")) && attached.iter().any(|item| item.starts_with("filter ")),
        "round {round}: no urunc tap and filters in the pod netns while the unikernel runs: {attached:?}"
    );
    if round == 0 {
        let listed = client
            .list_containers(Some(&pod.id))
            .expect("ListContainers");
        assert!(
            listed
                .iter()
                .any(|c| c.id == id && c.state == ContainerState::ContainerRunning as i32),
            "ListContainers does not show {id} running: {listed:?}"
        );
        let stats = client.container_stats(&id).expect("ContainerStats");
        assert!(
            stats
                .memory
                .as_ref()
                .and_then(|m| m.working_set_bytes.as_ref())
                .is_some_and(|w| w.value > 0),
            "ContainerStats has no memory working set for a running VMM: {stats:?}"
        );
    }
    assert!(
        wait_for_logged(&log, MARKER, PVH_MARKER_LIMIT, LOG_POLL),
        "round {round}: no {MARKER} in {}: {:?}",
        log.display(),
        logged_text(&log)
    );

    client
        .stop_container(&id, GRACE_SECONDS)
        .unwrap_or_else(|e| {
            panic!(
                "round {round}: StopContainer: {e}\n{}",
                node.containerd().log_tail(30)
            )
        });
    let status = status_of(node, &id);
    assert_eq!(
        status.state,
        ContainerState::ContainerExited as i32,
        "round {round}: {status:?}"
    );
    assert!(
        status.finished_at >= started_at && status.started_at == started_at,
        "round {round}: start and finish times in {status:?}"
    );
    client
        .remove_container(&id)
        .unwrap_or_else(|e| panic!("round {round}: RemoveContainer: {e}"));
    assert!(
        node.vmms().is_empty(),
        "round {round}: VMMs left: {:?}",
        node.vmms()
    );
    let state = node.state_leftovers(&id);
    assert!(
        state.is_empty(),
        "round {round}: state left for {id}: {state:?}"
    );
}

const POWER_OFF_IMAGE: &str = "localhost/urunc-rs/pvh-poweroff:cri";
const POWER_OFF_ROUNDS: u32 = 10;

/// A unikernel that ends by itself (a Job, a CronJob replay, a crash the
/// kubelet restarts): CRI learns of the exit from the shim's TaskExit with
/// status 0, and the pod network is already clean before RemoveContainer:
/// the teardown belongs to the exit, not to the deletion.
#[test]
fn unikernels_that_power_off_by_themselves_leave_the_pod_clean_before_removal() {
    let test = "unikernels_that_power_off_by_themselves_leave_the_pod_clean_before_removal";
    let Some(node) = pvh_node_or_skip(test, POWER_OFF_IMAGE, PvhBehaviour::PowerOff, MARKER) else {
        return;
    };
    let pod = node.run_pod("power-off").expect("RunPodSandbox");
    for round in 0..POWER_OFF_ROUNDS {
        let config = container_config("job", round, POWER_OFF_IMAGE);
        let id = node
            .create_container(&pod, &config)
            .unwrap_or_else(|e| panic!("round {round}: CreateContainer: {e}"));
        node.client()
            .start_container(&id)
            .unwrap_or_else(|e| panic!("round {round}: StartContainer: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            let status = status_of(&node, &id);
            if status.state == ContainerState::ContainerExited as i32 {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the guest never exited: {status:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            (status.exit_code, status.reason.as_str()),
            (0, "Completed"),
            "round {round}: {status:?}"
        );
        let log = pod.log_dir.join(container_log_path("job", round));
        assert!(
            logged_text(&log).is_ok_and(|text| text.contains(MARKER)),
            "round {round}: no {MARKER} in {}",
            log.display()
        );
        let leftovers = node.pod_leftovers(&pod).expect("read the pod netns");
        assert!(
            leftovers.is_empty(),
            "round {round}: the exited unikernel left, before RemoveContainer: {leftovers:?}"
        );
        node.client()
            .remove_container(&id)
            .unwrap_or_else(|e| panic!("round {round}: RemoveContainer: {e}"));
        let state = node.state_leftovers(&id);
        assert!(
            state.is_empty(),
            "round {round}: state left for {id}: {state:?}"
        );
    }
    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}
