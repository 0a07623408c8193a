//! urunc's configuration reaching the shim through Kubernetes annotations
//! rather than the image's `/urunc.json`: CRI passes `com.urunc.unikernel.*`
//! on because the runtime handler lists it in `container_annotations` and
//! `pod_annotations`, as urunc's installation guide configures it.
//!
//! The image here holds only the kernel: without the annotations it would
//! be a plain (and unrunnable) container.

use std::collections::HashMap;

use urunc_pack::{host_architecture, LayerEntry, OciImage};
use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::urunc_network_leftovers;
use urunc_tests::cri::steps::{stop_and_remove_pod, LOG_POLL, PVH_MARKER_LIMIT};
use urunc_tests::cri::{container_config, node_or_skip, CriNode, Pod};
use urunc_tests::guests::{pvh_guest, PvhBehaviour};
use urunc_tests::images::archive_file_name;
use urunc_tests::unikernel_images::{GUEST_INIT, KERNEL_PATH};

const IMAGE: &str = "localhost/urunc-rs/pvh-bare:annotations";
const MARKER: &str = "URUNC-PVH-CRI-ANNOTATIONS";

/// urunc's configuration of the PVH guest, as annotations.
fn urunc_annotations() -> HashMap<String, String> {
    [
        ("com.urunc.unikernel.unikernelType", "linux"),
        ("com.urunc.unikernel.hypervisor", "qemu"),
        ("com.urunc.unikernel.binary", KERNEL_PATH),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect()
}

/// A node with an image holding only the PVH kernel (no `/urunc.json`).
fn node_with_bare_image(test: &str) -> Option<CriNode> {
    let node = node_or_skip(test, &["qemu-system-x86_64", "ip", "tc"])?;
    let kernel = pvh_guest(&node.scratch_dir(), PvhBehaviour::HaltForever, MARKER)
        .expect("write the PVH guest");
    let image = OciImage {
        name: IMAGE.to_string(),
        architecture: host_architecture().to_string(),
        entries: vec![LayerEntry::HostFile {
            path: KERNEL_PATH.to_string(),
            host: kernel,
        }],
        cmd: vec![GUEST_INIT.to_string()],
        ..OciImage::default()
    };
    let archive = node.scratch_dir().join(archive_file_name(IMAGE));
    image.write_archive(&archive).expect("pack the bare image");
    node.import_image(&archive, IMAGE)
        .expect("import the bare image");
    Some(node)
}

/// Runs the unikernel in `pod` with container annotations `annotations`,
/// checks it boots on the pod network, stops and removes it.
fn run_unikernel(node: &CriNode, pod: &Pod, annotations: HashMap<String, String>) {
    let mut config = container_config("unikernel", 0, IMAGE);
    config.annotations = annotations;
    let id = node
        .create_container(pod, &config)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", node.containerd().log_tail(30)));
    node.client()
        .start_container(&id)
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", node.containerd().log_tail(30)));
    let log = pod.log_dir.join(container_log_path("unikernel", 0));
    assert!(
        wait_for_logged(&log, MARKER, PVH_MARKER_LIMIT, LOG_POLL),
        "the unikernel never printed {MARKER}: {:?}",
        logged_text(&log)
    );
    let attached = urunc_network_leftovers(&pod.network.netns_name()).expect("read the pod netns");
    assert!(
        attached.iter().any(|item| item.starts_with("tap ")),
        "no tap: {attached:?}"
    );
    assert_eq!(node.vmms().len(), 1, "one VMM: {:?}", node.vmms());
    node.client()
        .stop_container(&id, 10)
        .expect("StopContainer");
    node.client()
        .remove_container(&id)
        .expect("RemoveContainer");
    let leftovers = node.pod_leftovers(pod).expect("read the pod netns");
    assert!(leftovers.is_empty(), "left: {leftovers:?}");
}

#[test]
fn container_annotations_make_a_bare_image_a_unikernel() {
    let test = "container_annotations_make_a_bare_image_a_unikernel";
    let Some(node) = node_with_bare_image(test) else {
        return;
    };
    let pod = node
        .run_pod("container-annotations")
        .expect("RunPodSandbox");
    run_unikernel(&node, &pod, urunc_annotations());
    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}

/// CRI copies pod annotations into the pause container's spec as well: the
/// shim must still run the pause container with runc (CRI marks it with
/// `io.kubernetes.cri.container-type: sandbox`), and the pod's containers
/// as unikernels.
#[test]
fn pod_annotations_reach_the_unikernel_and_spare_the_pause_container() {
    let test = "pod_annotations_reach_the_unikernel_and_spare_the_pause_container";
    let Some(node) = node_with_bare_image(test) else {
        return;
    };
    let pod = node
        .run_pod_with_annotations("pod-annotations", urunc_annotations())
        .unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox with urunc pod annotations: {e}\n{}",
                node.containerd().log_tail(30)
            )
        });
    assert!(
        node.vmms().is_empty(),
        "the pause container runs as a VMM: {:?}",
        node.vmms()
    );
    run_unikernel(&node, &pod, HashMap::new());
    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}
