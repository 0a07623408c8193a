//! The CRI sections that make urunc-rs a CRI runtime handler: one
//! `io.containerd.grpc.v1.cri` section for containerd 1.6/1.7 (config version
//! 2), the `io.containerd.cri.v1.{runtime,images}` and
//! `io.containerd.grpc.v1.cri` sections for 2.x (config version 3).

use std::path::Path;

use super::cni::CNI_BIN_DIR;
use crate::containerd::ContainerdVersion;

/// The runtime handler pods ask for (a RuntimeClass's `handler`).
pub const RUNTIME_HANDLER: &str = "urunc";
/// The shim's runtime type.
pub const RUNTIME_TYPE: &str = "io.containerd.urunc.v2";
/// Pod and container annotations CRI passes on to the runtime: urunc's.
pub const URUNC_ANNOTATIONS: &str = "com.urunc.unikernel.*";

/// What the CRI section depends on.
pub struct CriConfig<'a> {
    /// The pause image, already imported into the `k8s.io` namespace.
    pub sandbox_image: &'a str,
    /// The private CNI conf dir.
    pub cni_conf_dir: &'a Path,
    /// The runtime handler's table as an operator writes it (e.g. the
    /// snippet in examples/kubernetes); `None` renders [`urunc_runtime_table`].
    pub runtime_table: Option<&'a str>,
}

/// The plugin holding the runtime handlers: `plugins.<this>.containerd.runtimes`.
pub fn runtimes_plugin(version: ContainerdVersion) -> &'static str {
    match version {
        ContainerdVersion::Debian16 => r#""io.containerd.grpc.v1.cri""#,
        ContainerdVersion::V2 => "'io.containerd.cri.v1.runtime'",
    }
}

/// The `containerd.runtimes.urunc` table: runtime type and annotations.
pub fn urunc_runtime_table(version: ContainerdVersion) -> String {
    let plugin = runtimes_plugin(version);
    format!(
        r#"[plugins.{plugin}.containerd.runtimes.{RUNTIME_HANDLER}]
  runtime_type = {RUNTIME_TYPE:?}
  container_annotations = [{URUNC_ANNOTATIONS:?}]
  pod_annotations = [{URUNC_ANNOTATIONS:?}]
"#
    )
}

/// Renders the CRI plugin's section, to append to containerd's config.
///
/// `restrict_oom_score_adj`: CRI gives the pause container oom_score_adj
/// -998, which runc cannot set without CAP_SYS_RESOURCE ("can't get final
/// child's PID from pipe: EOF"). `stream_server_port = "0"`: several nodes
/// run at once and the default port (10010) would collide.
pub fn render_cri_config(config: &CriConfig, version: ContainerdVersion) -> String {
    let runtime_table = config
        .runtime_table
        .map_or_else(|| urunc_runtime_table(version), str::to_string);
    match version {
        ContainerdVersion::Debian16 => render_1_6(config, &runtime_table),
        ContainerdVersion::V2 => render_2(config, &runtime_table),
    }
}

fn render_1_6(config: &CriConfig, runtime_table: &str) -> String {
    format!(
        r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = {sandbox_image:?}
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {bin_dir:?}
    conf_dir = {conf_dir:?}
    max_conf_num = 1

{runtime_table}
"#,
        sandbox_image = config.sandbox_image,
        bin_dir = CNI_BIN_DIR,
        conf_dir = config.cni_conf_dir.display().to_string(),
    )
}

/// containerd 2.x split CRI into an images plugin (the sandbox image is a
/// pinned image there), a runtime plugin (runtimes, CNI, OOM score) and the
/// gRPC server plugin (the streaming server).
fn render_2(config: &CriConfig, runtime_table: &str) -> String {
    format!(
        r#"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = {sandbox_image:?}
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [{bin_dir:?}]
    conf_dir = {conf_dir:?}
    max_conf_num = 1
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

{runtime_table}
"#,
        sandbox_image = config.sandbox_image,
        bin_dir = CNI_BIN_DIR,
        conf_dir = config.cni_conf_dir.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_handler_the_annotations_and_the_cni_dirs() {
        let rendered = render_cri_config(
            &CriConfig {
                sandbox_image: "localhost/pause:1",
                cni_conf_dir: Path::new("/t/net.d"),
                runtime_table: None,
            },
            ContainerdVersion::Debian16,
        );
        for expected in [
            r#"sandbox_image = "localhost/pause:1""#,
            r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.urunc]"#,
            r#"runtime_type = "io.containerd.urunc.v2""#,
            r#"container_annotations = ["com.urunc.unikernel.*"]"#,
            r#"pod_annotations = ["com.urunc.unikernel.*"]"#,
            "restrict_oom_score_adj = true",
            r#"conf_dir = "/t/net.d""#,
            r#"bin_dir = "/usr/lib/cni""#,
        ] {
            assert!(
                rendered.contains(expected),
                "missing {expected} in:\n{rendered}"
            );
        }
    }

    #[test]
    fn containerd_2_gets_the_split_plugins_and_a_pinned_sandbox_image() {
        let rendered = render_cri_config(
            &CriConfig {
                sandbox_image: "localhost/pause:1",
                cni_conf_dir: Path::new("/t/net.d"),
                runtime_table: None,
            },
            ContainerdVersion::V2,
        );
        for expected in [
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.urunc]",
            "[plugins.'io.containerd.cri.v1.images'.pinned_images]",
            r#"sandbox = "localhost/pause:1""#,
            r#"bin_dirs = ["/usr/lib/cni"]"#,
            "restrict_oom_score_adj = true",
        ] {
            assert!(
                rendered.contains(expected),
                "missing {expected} in:\n{rendered}"
            );
        }
        assert!(!rendered.contains("grpc.v1.cri\".containerd"), "{rendered}");
    }
}
