//! A pod mixing a unikernel with a plain sidecar (busybox), as Knative's
//! queue-proxy or a log shipper would sit next to it: one shim serves the
//! pause container, the sidecar (both on runc) and the unikernel. `kubectl
//! exec` (CRI ExecSync) works in the sidecar with its output and exit code,
//! and is refused in the unikernel with an error that says why.

use std::time::{Duration, Instant};

use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::steps::{stop_and_remove_pod, LOG_POLL, PVH_MARKER_LIMIT};
use urunc_tests::cri::{container_config, node_or_skip, CriNode, Pod};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::images::busybox_image;
use urunc_tests::unikernel_images::pvh_image;

const UNIKERNEL_IMAGE: &str = "localhost/urunc-rs/pvh-halt:sidecar";
const SIDECAR_IMAGE: &str = "localhost/urunc-rs/busybox:sidecar";
const MARKER: &str = "URUNC-PVH-CRI-SIDECAR";
const SIDECAR_READY: &str = "SIDECAR-READY";
const GRACE_SECONDS: i64 = 10;

fn wait_for_log(pod: &Pod, container: &str, text: &str) {
    let log = pod.log_dir.join(container_log_path(container, 0));
    assert!(
        wait_for_logged(&log, text, PVH_MARKER_LIMIT, LOG_POLL),
        "no {text} in {}: {:?}",
        log.display(),
        logged_text(&log)
    );
}

fn start(node: &CriNode, pod: &Pod, config: &k8s_cri::v1::ContainerConfig) -> String {
    let id = node
        .create_container(pod, config)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", node.containerd().log_tail(30)));
    node.client()
        .start_container(&id)
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", node.containerd().log_tail(30)));
    id
}

#[test]
fn a_sidecar_shares_the_pods_shim_and_execs_while_the_unikernel_refuses_exec() {
    let test = "a_sidecar_shares_the_pods_shim_and_execs_while_the_unikernel_refuses_exec";
    let Some(node) = node_or_skip(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let scratch = node.scratch_dir();
    let archive = pvh_image(&scratch, UNIKERNEL_IMAGE, PvhBehaviour::HaltForever, MARKER)
        .expect("pack the PVH image");
    node.import_image(&archive, UNIKERNEL_IMAGE)
        .expect("import the PVH image");
    let archive = busybox_image(&scratch, SIDECAR_IMAGE).expect("pack the busybox image");
    node.import_image(&archive, SIDECAR_IMAGE)
        .expect("import the busybox image");
    let pod = node.run_pod("sidecar").expect("RunPodSandbox");

    let unikernel = start(
        &node,
        &pod,
        &container_config("unikernel", 0, UNIKERNEL_IMAGE),
    );
    let mut sidecar_config = container_config("sidecar", 0, SIDECAR_IMAGE);
    sidecar_config.command = vec![
        "sh".into(),
        "-c".into(),
        format!("trap 'exit 0' TERM; echo {SIDECAR_READY}; while :; do sleep 1; done"),
    ];
    let sidecar = start(&node, &pod, &sidecar_config);
    wait_for_log(&pod, "unikernel", MARKER);
    wait_for_log(&pod, "sidecar", SIDECAR_READY);

    let shims = node.shims();
    assert!(
        shims.len() == 1 && shims[0].id == pod.id,
        "one shim serves the pause container, the sidecar and the unikernel: {shims:?}"
    );
    assert_eq!(
        node.vmms().len(),
        1,
        "only the unikernel is a VMM: {:?}",
        node.vmms()
    );

    let echoed = node
        .client()
        .exec_sync(&sidecar, &["echo", "hello-from-exec"], 10)
        .expect("ExecSync in the sidecar");
    assert_eq!(
        (
            echoed.exit_code,
            String::from_utf8_lossy(&echoed.stdout).trim()
        ),
        (0, "hello-from-exec"),
        "{echoed:?}"
    );
    let failed = node
        .client()
        .exec_sync(&sidecar, &["sh", "-c", "echo oops >&2; exit 3"], 10)
        .expect("ExecSync of a failing command");
    assert_eq!(
        (
            failed.exit_code,
            String::from_utf8_lossy(&failed.stderr).trim()
        ),
        (3, "oops"),
        "{failed:?}"
    );
    let stats = node
        .client()
        .container_stats(&sidecar)
        .expect("ContainerStats of the sidecar");
    assert!(stats.memory.is_some(), "{stats:?}");

    let refusal = node
        .client()
        .exec_sync(&unikernel, &["sh"], 10)
        .expect_err("ExecSync into a unikernel must fail")
        .to_string();
    assert!(
        refusal.contains("unikernel") && refusal.contains("exec"),
        "the refusal must say why: {refusal}"
    );
    let status = node
        .client()
        .container_status(&unikernel, false)
        .expect("ContainerStatus")
        .status
        .expect("a status");
    assert_eq!(
        status.state,
        k8s_cri::v1::ContainerState::ContainerRunning as i32,
        "a refused exec must not harm the unikernel: {status:?}"
    );

    node.client()
        .stop_container(&sidecar, GRACE_SECONDS)
        .expect("StopContainer of the sidecar");
    node.client()
        .remove_container(&sidecar)
        .expect("RemoveContainer of the sidecar");
    let attached = urunc_tests::cri::probes::urunc_network_leftovers(&pod.network.netns_name())
        .expect("read the pod netns");
    assert!(
        attached.iter().any(|item| item.starts_with("tap ")),
        "removing the sidecar must not touch the unikernel's network: {attached:?}"
    );
    stop_and_remove_pod(&node, &pod);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.shims().is_empty() {
        assert!(Instant::now() < deadline, "shims left: {:?}", node.shims());
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in [&pod.id, &unikernel, &sidecar] {
        let state = node.state_leftovers(id);
        assert!(state.is_empty(), "state left for {id}: {state:?}");
    }
    node.stop().expect("nothing left when the node stops");
}
