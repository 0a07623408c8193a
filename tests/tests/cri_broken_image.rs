//! A pod whose unikernel image is broken (its urunc configuration names a
//! binary the image does not hold): CRI answers an error that says why, the
//! failed container leaves nothing (no tap, no VMM, no state), the pod still
//! runs a good unikernel afterwards, and it is removed cleanly.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use urunc_pack::UnikernelImage;
use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::{RUNC_STATE_ROOT, SHIM_STATE_ROOT};
use urunc_tests::cri::steps::{import_pvh_image, stop_and_remove_pod, LOG_POLL, PVH_MARKER_LIMIT};
use urunc_tests::cri::{container_config, node_or_skip, CRI_NAMESPACE};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::unikernel_images::{linux_on_qemu, write_unikernel_archive, KERNEL_PATH};

const BROKEN_IMAGE: &str = "localhost/urunc-rs/missing-binary:cri";
const GOOD_IMAGE: &str = "localhost/urunc-rs/pvh-halt:broken-neighbour";
const MARKER: &str = "URUNC-PVH-CRI-AFTER-BROKEN";

/// The entries of the runc and shim state folders of CRI's namespace.
fn shared_state_entries() -> BTreeSet<String> {
    let mut entries = BTreeSet::new();
    for root in [RUNC_STATE_ROOT, SHIM_STATE_ROOT] {
        let dir = Path::new(root).join(CRI_NAMESPACE);
        if let Ok(listing) = std::fs::read_dir(&dir) {
            entries.extend(
                listing
                    .flatten()
                    .map(|entry| entry.path().display().to_string()),
            );
        }
    }
    entries
}

#[test]
fn a_unikernel_with_a_missing_binary_is_refused_and_its_pod_removed_cleanly() {
    let test = "a_unikernel_with_a_missing_binary_is_refused_and_its_pod_removed_cleanly";
    let Some(node) = node_or_skip(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    // The configuration names KERNEL_PATH; the image holds no file at all.
    let broken = UnikernelImage {
        name: BROKEN_IMAGE.to_string(),
        files: Vec::new(),
        urunc: linux_on_qemu(false, &[]),
        labels_as_annotations: false,
    };
    let archive =
        write_unikernel_archive(&node.scratch_dir(), &broken).expect("pack the broken image");
    node.import_image(&archive, BROKEN_IMAGE)
        .expect("import the broken image");
    let pod = node.run_pod("broken").expect("RunPodSandbox");
    let before = shared_state_entries();

    let config = container_config("broken", 0, BROKEN_IMAGE);
    let refusal = match node.create_container(&pod, &config) {
        Err(error) => error.to_string(),
        Ok(id) => match node.client().start_container(&id) {
            Err(error) => error.to_string(),
            Ok(()) => panic!("a unikernel whose binary is missing started: {id}"),
        },
    };
    assert!(
        refusal.contains("binary") && refusal.contains(KERNEL_PATH),
        "the CRI error must name the field and the missing file: {refusal}"
    );
    println!("CRI refused the broken unikernel: {refusal}");

    let leftovers = node.pod_leftovers(&pod).expect("read the pod netns");
    assert!(
        leftovers.is_empty(),
        "the refused container left: {leftovers:?}"
    );
    assert!(node.vmms().is_empty(), "VMMs left: {:?}", node.vmms());
    let after = shared_state_entries();
    let added: Vec<_> = after.difference(&before).collect();
    assert!(
        added.is_empty(),
        "the refused container left state: {added:?}"
    );
    for container in node
        .client()
        .list_containers(Some(&pod.id))
        .expect("ListContainers")
    {
        let state = node.state_leftovers(&container.id);
        assert!(
            state.is_empty(),
            "state of {} left: {state:?}",
            container.id
        );
        node.client()
            .remove_container(&container.id)
            .expect("RemoveContainer of the refused container");
    }

    // The pod is unharmed: a good unikernel runs in it.
    import_pvh_image(&node, GOOD_IMAGE, PvhBehaviour::HaltForever, MARKER);
    let good = node
        .create_container(&pod, &container_config("good", 0, GOOD_IMAGE))
        .expect("CreateContainer after a refusal");
    node.client()
        .start_container(&good)
        .expect("StartContainer after a refusal");
    let log = pod.log_dir.join(container_log_path("good", 0));
    assert!(
        wait_for_logged(&log, MARKER, PVH_MARKER_LIMIT, LOG_POLL),
        "the good unikernel never printed {MARKER}: {:?}",
        logged_text(&log)
    );

    stop_and_remove_pod(&node, &pod);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.shims().is_empty() {
        assert!(Instant::now() < deadline, "shims left: {:?}", node.shims());
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in [&pod.id, &good] {
        let state = node.state_leftovers(id);
        assert!(state.is_empty(), "state left for {id}: {state:?}");
    }
    node.stop().expect("nothing left when the node stops");
}
