//! Steps many CRI tests take the same way, failing the test with the same
//! messages wherever they are taken.

use std::time::Duration;

use k8s_cri::v1::{ContainerState, ContainerStatus};

use crate::guests::{linux_guest, PvhBehaviour};
use crate::unikernel_images::{linux_image, pvh_image};

use super::{node_or_skip, CriNode, Pod};

/// How long a PVH guest may take from StartContainer to its marker in the
/// CRI log.
pub const PVH_MARKER_LIMIT: Duration = Duration::from_secs(30);
/// How often the tests re-read a CRI log while waiting for a PVH marker.
pub const LOG_POLL: Duration = Duration::from_millis(20);

/// A CRI node with PVH image `image` imported (see [`import_pvh_image`]),
/// or None after printing `SKIPPED` for `test` when this host cannot run
/// unikernels on a pod network (qemu, ip, tc).
pub fn pvh_node_or_skip(
    test: &str,
    image: &str,
    behaviour: PvhBehaviour,
    marker: &str,
) -> Option<CriNode> {
    let node = node_or_skip(test, &["qemu-system-x86_64", "ip", "tc"])?;
    import_pvh_image(&node, image, behaviour, marker);
    Some(node)
}

/// Packs a PVH unikernel image named `image` (a guest behaving as
/// `behaviour`, printing `marker`) and imports it into `node`'s containerd.
pub fn import_pvh_image(node: &CriNode, image: &str, behaviour: PvhBehaviour, marker: &str) {
    let archive =
        pvh_image(&node.scratch_dir(), image, behaviour, marker).expect("pack the PVH image");
    node.import_image(&archive, image)
        .expect("import the PVH image");
}

/// Packs the Linux guest as image `image` and imports it into `node`'s
/// containerd; false (after printing `SKIPPED` for `test`) when no
/// bootable Linux guest can be built here.
pub fn import_linux_guest_or_skip(node: &CriNode, test: &str, image: &str) -> bool {
    let guest = match linux_guest(&node.scratch_dir()) {
        Ok(guest) => guest,
        Err(error) => {
            crate::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return false;
        }
    };
    let archive =
        linux_image(&node.scratch_dir(), image, &guest, &[]).expect("pack the Linux guest");
    node.import_image(&archive, image)
        .expect("import the Linux guest");
    true
}

/// What ContainerStatus reports for container `id` now.
pub fn status_of(node: &CriNode, id: &str) -> ContainerStatus {
    node.client()
        .container_status(id, false)
        .expect("ContainerStatus")
        .status
        .expect("a status")
}

/// Asserts container `id` has exited and prints its exit code and reason,
/// which depend on how the guest took the stop signal and so are only shown.
pub fn assert_exited(node: &CriNode, id: &str) {
    let status = status_of(node, id);
    assert_eq!(
        status.state,
        ContainerState::ContainerExited as i32,
        "{status:?}"
    );
    println!(
        "after the stop: exit code {}, reason {:?}",
        status.exit_code, status.reason
    );
}

/// StopPodSandbox then RemovePodSandbox for `pod`, as the kubelet deletes a pod.
pub fn stop_and_remove_pod(node: &CriNode, pod: &Pod) {
    node.client()
        .stop_pod_sandbox(&pod.id)
        .expect("StopPodSandbox");
    node.client()
        .remove_pod_sandbox(&pod.id)
        .expect("RemovePodSandbox");
}
