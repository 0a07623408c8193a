//! Pod and container configurations as the kubelet sends them, and where a
//! pod's network lives (found through its pause container).

use std::path::{Path, PathBuf};

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, LinuxContainerConfig, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PodSandboxState, PodSandboxStatusResponse,
};

use super::client::{image_spec, CriClient};
use crate::error::{HarnessError, Result};

/// The kubelet's defaults: network and IPC shared by the pod, a pid
/// namespace per container.
fn namespace_options() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..NamespaceOption::default()
    }
}

/// A pod `name` (uid derived from it, Kubernetes namespace `default`) whose
/// container logs go under `log_directory`.
pub fn pod_config(name: &str, log_directory: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        log_directory: log_directory.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options()),
                ..LinuxSandboxSecurityContext::default()
            }),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    }
}

/// Container `name` (restart count `attempt`) from `image`, logging to
/// `<pod log directory>/<name>/<attempt>.log` like the kubelet.
pub fn container_config(name: &str, attempt: u32, image: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt,
        }),
        image: Some(image_spec(image)),
        log_path: container_log_path(name, attempt),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespace_options()),
                ..LinuxContainerSecurityContext::default()
            }),
            ..LinuxContainerConfig::default()
        }),
        ..ContainerConfig::default()
    }
}

/// The log path the kubelet gives container `name`, relative to the pod's
/// log directory.
pub fn container_log_path(name: &str, attempt: u32) -> String {
    format!("{name}/{attempt}.log")
}

/// Where a running pod's network is, read from PodSandboxStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    pub pod_id: String,
    /// The pause container's pid (it holds the pod's namespaces).
    pub pause_pid: i32,
    /// The pinned network namespace (`/var/run/netns/cni-...`).
    pub netns_path: PathBuf,
    /// The pod IP the CNI gave eth0.
    pub ip: String,
}

impl PodNetwork {
    /// Reads pod `pod_id`'s status (verbose, for the pause pid and spec).
    pub fn of(client: &CriClient, pod_id: &str) -> Result<Self> {
        Self::from_status(pod_id, client.pod_sandbox_status(pod_id, true)?)
    }

    /// Reads the network out of a verbose PodSandboxStatus answer: the IP
    /// from the status, the pause pid and the pinned namespace from
    /// containerd's `info` (its JSON holds `pid` and the sandbox's
    /// `runtimeSpec`).
    pub fn from_status(pod_id: &str, response: PodSandboxStatusResponse) -> Result<Self> {
        let invalid = |field: &'static str, reason: &str| HarnessError::Invalid {
            field,
            value: pod_id.to_string(),
            reason: reason.to_string(),
        };
        let status = response
            .status
            .ok_or_else(|| invalid("PodSandboxStatusResponse.status", "missing"))?;
        if status.state != PodSandboxState::SandboxReady as i32 {
            return Err(invalid("PodSandboxStatus.state", "the pod is not ready"));
        }
        let ip = status.network.map(|network| network.ip).unwrap_or_default();
        let info_text = response.info.get("info").ok_or_else(|| {
            invalid(
                "PodSandboxStatusResponse.info[\"info\"]",
                "missing (verbose status)",
            )
        })?;
        let info: serde_json::Value =
            serde_json::from_str(info_text).map_err(|error| HarnessError::Invalid {
                field: "PodSandboxStatusResponse.info[\"info\"]",
                value: info_text.clone(),
                reason: error.to_string(),
            })?;
        let pause_pid = info
            .get("pid")
            .and_then(serde_json::Value::as_i64)
            .and_then(|pid| i32::try_from(pid).ok())
            .filter(|pid| *pid > 0)
            .ok_or_else(|| invalid("info.pid", "no pause pid"))?;
        let netns_path = info
            .pointer("/runtimeSpec/linux/namespaces")
            .and_then(serde_json::Value::as_array)
            .and_then(|namespaces| {
                namespaces.iter().find(|namespace| {
                    namespace.get("type").and_then(serde_json::Value::as_str) == Some("network")
                })
            })
            .and_then(|namespace| namespace.get("path"))
            .and_then(serde_json::Value::as_str)
            .map(PathBuf::from)
            .ok_or_else(|| invalid("info.runtimeSpec.linux.namespaces[network].path", "missing"))?;
        Ok(PodNetwork {
            pod_id: pod_id.to_string(),
            pause_pid,
            netns_path,
            ip,
        })
    }

    /// The namespace's name for `ip -n` (CRI pins it in /var/run/netns).
    pub fn netns_name(&self) -> String {
        self.netns_path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_cri::v1::{PodSandboxNetworkStatus, PodSandboxStatus};

    use super::*;

    fn response(state: PodSandboxState, info: &str) -> PodSandboxStatusResponse {
        PodSandboxStatusResponse {
            status: Some(PodSandboxStatus {
                state: state as i32,
                network: Some(PodSandboxNetworkStatus {
                    ip: "10.88.7.2".into(),
                    ..PodSandboxNetworkStatus::default()
                }),
                ..PodSandboxStatus::default()
            }),
            info: [("info".to_string(), info.to_string())].into(),
            ..PodSandboxStatusResponse::default()
        }
    }

    /// The shape of containerd 1.6's verbose sandbox info, trimmed.
    const INFO: &str = r#"{"pid": 4242, "processStatus": "running",
        "runtimeSpec": {"linux": {"namespaces": [
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
            {"type": "network", "path": "/var/run/netns/cni-0b7c"}]}}}"#;

    #[test]
    fn reads_pause_pid_netns_and_ip() {
        let network =
            PodNetwork::from_status("p1", response(PodSandboxState::SandboxReady, INFO)).unwrap();
        assert_eq!(
            network,
            PodNetwork {
                pod_id: "p1".into(),
                pause_pid: 4242,
                netns_path: "/var/run/netns/cni-0b7c".into(),
                ip: "10.88.7.2".into(),
            }
        );
        assert_eq!(network.netns_name(), "cni-0b7c");
    }

    #[test]
    fn refuses_a_pod_that_is_not_ready_or_has_no_network_namespace() {
        let not_ready =
            PodNetwork::from_status("p1", response(PodSandboxState::SandboxNotready, INFO));
        assert!(not_ready.unwrap_err().to_string().contains("not ready"));
        let no_netns = PodNetwork::from_status(
            "p1",
            response(
                PodSandboxState::SandboxReady,
                r#"{"pid": 1, "runtimeSpec": {}}"#,
            ),
        );
        assert!(no_netns
            .unwrap_err()
            .to_string()
            .contains("namespaces[network]"));
        let no_pid = PodNetwork::from_status(
            "p1",
            response(PodSandboxState::SandboxReady, r#"{"runtimeSpec": {}}"#),
        );
        assert!(no_pid.unwrap_err().to_string().contains("info.pid"));
    }
}
