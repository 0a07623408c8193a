//! examples/kubernetes/crictl: the crictl commands an operator pastes
//! (`crictl.sh`, with `pod.json` and `container.json`) run as written
//! against our shim: runp, create, start, ps, logs, stop, rm, stopp, rmp of
//! a Linux unikernel pod. Afterwards no pod, VMM, shim or state is left.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use urunc_tests::command;
use urunc_tests::cri::node_or_skip;
use urunc_tests::cri::steps::import_linux_guest_or_skip;
use urunc_tests::critest::{crictl_binary, program_or_skip};
use urunc_tests::shim_binary::workspace_root;
use urunc_tests::wait::eventually;

/// The image `container.json` names.
const IMAGE: &str = "docker.io/library/hello-linux:latest";
/// The log directory `pod.json` names (shared by every run of the example).
const LOG_DIRECTORY: &str = "/tmp/urunc-crictl-example";
const SHIM_EXIT_LIMIT: Duration = Duration::from_secs(10);
const SCRIPT_LIMIT: Duration = Duration::from_secs(240);
/// What a Linux guest prints first on its console.
const KERNEL_BANNER: &str = "Linux version";

/// Removes the example's log directory however the test ends.
struct LogDirectory;

impl Drop for LogDirectory {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(LOG_DIRECTORY) {
            if error.kind() != std::io::ErrorKind::NotFound {
                eprintln!("remove {LOG_DIRECTORY}: {error}");
            }
        }
    }
}

#[test]
fn the_crictl_example_runs_as_written_and_leaves_nothing() {
    let test = "the_crictl_example_runs_as_written_and_leaves_nothing";
    let Some(crictl) = program_or_skip(test, crictl_binary()) else {
        return;
    };
    assert!(
        !Path::new(LOG_DIRECTORY).exists(),
        "{LOG_DIRECTORY} exists: another run of the example is under way or left it"
    );
    let Some(node) = node_or_skip(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    if !import_linux_guest_or_skip(&node, test, IMAGE) {
        return;
    }
    let _log_directory = LogDirectory;
    let endpoint = format!("unix://{}", node.containerd().address().display());
    let crictl_dir = crictl.parent().expect("crictl's folder");
    let path = format!(
        "{}:{}",
        crictl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = workspace_root().join("examples/kubernetes/crictl/crictl.sh");
    let output = command::output_within(
        Command::new("sh")
            .arg(&script)
            .env("PATH", path)
            .env("CONTAINER_RUNTIME_ENDPOINT", &endpoint)
            .env("IMAGE_SERVICE_ENDPOINT", &endpoint),
        SCRIPT_LIMIT,
    )
    .expect("run crictl.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "crictl.sh: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\ncontainerd:\n{}",
        output.status,
        node.containerd().log_tail(40)
    );
    // The guest's serial console reached the container log: the kernel's banner.
    assert!(
        stdout.contains(KERNEL_BANNER),
        "no {KERNEL_BANNER:?} in crictl logs:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("Running") && stdout.contains("hello"),
        "crictl ps did not list container hello running:\n{stdout}"
    );
    let pod_id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("pod: "))
        .expect("crictl.sh prints the pod id")
        .to_string();
    let pods = node.client().list_pod_sandboxes().expect("ListPodSandbox");
    assert!(pods.is_empty(), "pods left: {pods:?}");
    assert_eq!(node.vmms(), Vec::new(), "VMMs left");
    // The pod's shim exits with its last container, a moment after RemovePodSandbox.
    assert!(
        eventually(SHIM_EXIT_LIMIT, || node.shims().is_empty()),
        "shims left: {:?}",
        node.shims().iter().map(|shim| shim.pid).collect::<Vec<_>>()
    );
    assert_eq!(
        node.state_leftovers(&pod_id),
        Vec::<std::path::PathBuf>::new(),
        "state left"
    );
    node.stop().expect("node teardown");
}
