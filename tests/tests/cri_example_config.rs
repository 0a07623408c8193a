//! The Kubernetes examples in examples/kubernetes are what the tests run:
//! the RuntimeClass's handler, the containerd snippets' runtime table and
//! the sample pod agree, and the containerd 1.6/1.7 snippet, loaded as an
//! operator would merge it, makes a working `urunc` handler here.

use std::path::PathBuf;

use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::urunc_network_leftovers;
use urunc_tests::cri::steps::{import_pvh_image, stop_and_remove_pod, LOG_POLL, PVH_MARKER_LIMIT};
use urunc_tests::cri::{
    container_config, node_with_runtime_table_or_skip, RUNTIME_HANDLER, RUNTIME_TYPE,
    URUNC_ANNOTATIONS,
};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::shim_binary::workspace_root;

const IMAGE: &str = "localhost/urunc-rs/pvh-halt:example-config";
const MARKER: &str = "URUNC-PVH-CRI-EXAMPLE";

fn example(name: &str) -> (PathBuf, String) {
    let path = workspace_root().join("examples/kubernetes").join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    (path, text)
}

#[test]
fn the_examples_agree_on_the_handler_the_runtime_type_and_the_annotations() {
    let (_, runtime_class) = example("runtimeclass.yaml");
    assert!(
        runtime_class
            .lines()
            .any(|line| line.trim() == format!("handler: {RUNTIME_HANDLER}")),
        "{runtime_class}"
    );
    let (_, pod) = example("pod-unikernel.yaml");
    assert!(
        pod.lines()
            .any(|line| line.trim() == format!("runtimeClassName: {RUNTIME_HANDLER}")),
        "{pod}"
    );
    for (snippet, plugin) in [
        (
            "containerd-1.6-1.7.toml",
            r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes"#,
        ),
        (
            "containerd-2.x.toml",
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes",
        ),
    ] {
        let (path, text) = example(snippet);
        let table = format!("{plugin}.{RUNTIME_HANDLER}]");
        for expected in [
            table.as_str(),
            &format!("runtime_type = \"{RUNTIME_TYPE}\""),
            &format!("container_annotations = [\"{URUNC_ANNOTATIONS}\"]"),
            &format!("pod_annotations = [\"{URUNC_ANNOTATIONS}\"]"),
        ] {
            assert!(
                text.contains(expected),
                "{} lacks {expected}:\n{text}",
                path.display()
            );
        }
    }
}

#[test]
fn the_containerd_1_6_snippet_runs_a_unikernel_pod() {
    let test = "the_containerd_1_6_snippet_runs_a_unikernel_pod";
    let (_, snippet) = example("containerd-1.6-1.7.toml");
    let Some(node) =
        node_with_runtime_table_or_skip(test, &["qemu-system-x86_64", "ip", "tc"], Some(&snippet))
    else {
        return;
    };
    let version = node.client().version().expect("CRI Version");
    println!(
        "CRI: {} {} (API {})",
        version.runtime_name, version.runtime_version, version.runtime_api_version
    );
    import_pvh_image(&node, IMAGE, PvhBehaviour::HaltForever, MARKER);
    let pod = node
        .run_pod("example-config")
        .expect("RunPodSandbox with the example's handler");
    let id = node
        .create_container(&pod, &container_config("unikernel", 0, IMAGE))
        .expect("CreateContainer");
    node.client().start_container(&id).expect("StartContainer");
    let log = pod.log_dir.join(container_log_path("unikernel", 0));
    assert!(
        wait_for_logged(&log, MARKER, PVH_MARKER_LIMIT, LOG_POLL),
        "the unikernel never printed {MARKER}: {:?}",
        logged_text(&log)
    );
    let attached = urunc_network_leftovers(&pod.network.netns_name()).expect("read the pod netns");
    assert!(
        attached.iter().any(|item| item.starts_with("tap ")),
        "the unikernel is not on the pod network: {attached:?}"
    );
    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}
