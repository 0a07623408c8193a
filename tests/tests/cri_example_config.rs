//! The Kubernetes examples in examples/kubernetes are what the tests run:
//! the RuntimeClass's handler, the containerd snippets' runtime table and
//! the sample pod agree; the snippet for the containerd under test, merged as
//! an operator would, and examples/containerd's config for it, imported as
//! written, each make a working `urunc` handler here.

use std::path::PathBuf;

use urunc_tests::containerd::ContainerdVersion;
use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::probes::urunc_network_leftovers;
use urunc_tests::cri::steps::{import_pvh_image, stop_and_remove_pod, LOG_POLL, PVH_MARKER_LIMIT};
use urunc_tests::cri::{
    container_config, node_with_config_or_skip, CriNode, NodeConfig, RUNTIME_HANDLER, RUNTIME_TYPE,
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

fn selected_version() -> ContainerdVersion {
    ContainerdVersion::selected().expect("URUNC_TEST_CONTAINERD")
}

#[test]
fn the_kubernetes_snippet_for_this_containerd_runs_a_unikernel_pod() {
    let test = "the_kubernetes_snippet_for_this_containerd_runs_a_unikernel_pod";
    let name = match selected_version() {
        ContainerdVersion::Debian16 => "containerd-1.6-1.7.toml",
        ContainerdVersion::V2 => "containerd-2.x.toml",
    };
    let (_, snippet) = example(name);
    let setup = NodeConfig {
        runtime_table: Some(&snippet),
        ..NodeConfig::default()
    };
    let Some(node) = node_with_config_or_skip(test, &["qemu-system-x86_64", "ip", "tc"], setup)
    else {
        return;
    };
    runs_a_unikernel_pod(node, "example-k8s");
}

/// containerd 2.x imports examples/containerd/config-2.x.toml as written (a drop-in file in
/// conf.d). containerd 1.6 cannot take its example that way: its `imports` replace a plugin's
/// whole section, so the CRI settings of the main file would be lost; there the example's
/// tables are merged into the main file, as its comment tells operators to do.
#[test]
fn the_containerd_example_config_runs_a_unikernel_pod() {
    let test = "the_containerd_example_config_runs_a_unikernel_pod";
    let example_config = |name: &str| workspace_root().join("examples/containerd").join(name);
    let merged;
    let setup = match selected_version() {
        ContainerdVersion::Debian16 => {
            let text = std::fs::read_to_string(example_config("config.toml")).expect("read");
            merged = text
                .lines()
                .filter(|line| !line.starts_with("version = "))
                .collect::<Vec<_>>()
                .join("\n");
            NodeConfig {
                runtime_table: Some(&merged),
                ..NodeConfig::default()
            }
        }
        ContainerdVersion::V2 => NodeConfig {
            // Only the example defines the urunc handler.
            runtime_table: Some(""),
            imports: vec![example_config("config-2.x.toml")],
            ..NodeConfig::default()
        },
    };
    let Some(node) = node_with_config_or_skip(test, &["qemu-system-x86_64", "ip", "tc"], setup)
    else {
        return;
    };
    runs_a_unikernel_pod(node, "example-ctrd");
}

fn runs_a_unikernel_pod(node: CriNode, pod_name: &str) {
    let version = node.client().version().expect("CRI Version");
    println!(
        "CRI: {} {} (API {})",
        version.runtime_name, version.runtime_version, version.runtime_api_version
    );
    import_pvh_image(&node, IMAGE, PvhBehaviour::HaltForever, MARKER);
    let pod = node
        .run_pod(pod_name)
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
    // CRI asks every runtime handler for its features (`-info`) when it starts.
    let complaints = node.containerd().complaints_about_shims();
    assert!(
        complaints.is_empty(),
        "containerd complained: {complaints:#?}"
    );
    node.stop().expect("nothing left when the node stops");
}
