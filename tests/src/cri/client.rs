//! A CRI client (runtime.v1, which containerd 1.6 serves next to v1alpha2)
//! over containerd's unix socket, with blocking methods so tests can call it
//! from plain threads. Every call has a time limit: a wedged runtime must
//! fail the test, not hang it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerFilter, ContainerStats, ContainerStatsRequest,
    ContainerStatusRequest, ContainerStatusResponse, CreateContainerRequest, ExecSyncRequest,
    ExecSyncResponse, ImageSpec, ImageStatusRequest, ListContainersRequest, ListPodSandboxRequest,
    PodSandbox, PodSandboxConfig, PodSandboxStatusRequest, PodSandboxStatusResponse,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest,
    StopContainerRequest, StopPodSandboxRequest, VersionRequest, VersionResponse,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{HarnessError, Result};

/// How long one CRI call may take. StopPodSandbox with a running unikernel
/// waits for the VMM, the network teardown and the CNI DEL.
pub const CRI_CALL_LIMIT: Duration = Duration::from_secs(120);

/// A CRI client; cheap to share between threads (`&self` everywhere).
pub struct CriClient {
    runtime: Arc<tokio::runtime::Runtime>,
    channel: Channel,
    socket: PathBuf,
}

impl CriClient {
    /// Connects to containerd's gRPC socket.
    pub fn connect(socket: &Path) -> Result<Self> {
        // One worker drives the connection; callers block on their own thread.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cri-client")
            .enable_all()
            .build()
            .map_err(HarnessError::io(
                "build a tokio runtime for the CRI client of",
                socket,
            ))?;
        let path = socket.to_path_buf();
        let connector = tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        });
        // The URI is a placeholder: the connector above ignores it.
        let endpoint = Endpoint::from_static("http://[::]:50051").timeout(CRI_CALL_LIMIT);
        let channel = runtime
            .block_on(endpoint.connect_with_connector(connector))
            .map_err(|error| HarnessError::Io {
                action: "connect a CRI client to",
                path: socket.to_path_buf(),
                source: std::io::Error::other(error),
            })?;
        Ok(CriClient {
            runtime: Arc::new(runtime),
            channel,
            socket: socket.to_path_buf(),
        })
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn runtime_service(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone())
    }

    /// Runs one CRI call named `method` (for errors) on the client's runtime.
    fn call<T, F>(&self, method: &str, target: &str, call: F) -> Result<T>
    where
        F: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(CRI_CALL_LIMIT, call).await });
        match answer {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(HarnessError::CommandFailed {
                command: format!("CRI {method} {target}"),
                status: format!("{:?}", status.code()),
                stderr: status.message().to_string(),
            }),
            Err(_) => Err(HarnessError::Timeout {
                what: format!("CRI {method} {target}"),
                seconds: CRI_CALL_LIMIT.as_secs(),
            }),
        }
    }

    /// `Version`: the runtime's name and CRI version.
    pub fn version(&self) -> Result<VersionResponse> {
        let mut service = self.runtime_service();
        self.call("Version", "", async move {
            service.version(VersionRequest::default()).await
        })
    }

    /// `ImageStatus`: true when the CRI image store holds `image`.
    pub fn has_image(&self, image: &str) -> Result<bool> {
        let mut service = ImageServiceClient::new(self.channel.clone());
        let request = ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        let status = self.call("ImageStatus", image, async move {
            service.image_status(request).await
        })?;
        Ok(status.image.is_some())
    }

    /// `RunPodSandbox` with `runtime_handler`; returns the sandbox id.
    pub fn run_pod_sandbox(
        &self,
        config: &PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        let mut service = self.runtime_service();
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: runtime_handler.to_string(),
        };
        let target = pod_name(config);
        self.call("RunPodSandbox", &target, async move {
            service.run_pod_sandbox(request).await
        })
        .map(|response| response.pod_sandbox_id)
    }

    /// `StopPodSandbox`.
    pub fn stop_pod_sandbox(&self, pod_id: &str) -> Result<()> {
        let mut service = self.runtime_service();
        let request = StopPodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        };
        self.call("StopPodSandbox", pod_id, async move {
            service.stop_pod_sandbox(request).await
        })
        .map(drop)
    }

    /// `RemovePodSandbox`.
    pub fn remove_pod_sandbox(&self, pod_id: &str) -> Result<()> {
        let mut service = self.runtime_service();
        let request = RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.to_string(),
        };
        self.call("RemovePodSandbox", pod_id, async move {
            service.remove_pod_sandbox(request).await
        })
        .map(drop)
    }

    /// `PodSandboxStatus`; `verbose` adds containerd's `info` (pid, spec).
    pub fn pod_sandbox_status(
        &self,
        pod_id: &str,
        verbose: bool,
    ) -> Result<PodSandboxStatusResponse> {
        let mut service = self.runtime_service();
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.to_string(),
            verbose,
        };
        self.call("PodSandboxStatus", pod_id, async move {
            service.pod_sandbox_status(request).await
        })
    }

    /// `ListPodSandbox` without a filter.
    pub fn list_pod_sandboxes(&self) -> Result<Vec<PodSandbox>> {
        let mut service = self.runtime_service();
        self.call("ListPodSandbox", "", async move {
            service
                .list_pod_sandbox(ListPodSandboxRequest::default())
                .await
        })
        .map(|response| response.items)
    }

    /// `CreateContainer` in pod `pod_id` (created from `sandbox_config`);
    /// returns the container id.
    pub fn create_container(
        &self,
        pod_id: &str,
        config: &ContainerConfig,
        sandbox_config: &PodSandboxConfig,
    ) -> Result<String> {
        let mut service = self.runtime_service();
        let request = CreateContainerRequest {
            pod_sandbox_id: pod_id.to_string(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox_config.clone()),
        };
        let target = format!("{pod_id}/{}", container_name(config));
        self.call("CreateContainer", &target, async move {
            service.create_container(request).await
        })
        .map(|response| response.container_id)
    }

    /// `StartContainer`.
    pub fn start_container(&self, container_id: &str) -> Result<()> {
        let mut service = self.runtime_service();
        let request = StartContainerRequest {
            container_id: container_id.to_string(),
        };
        self.call("StartContainer", container_id, async move {
            service.start_container(request).await
        })
        .map(drop)
    }

    /// `StopContainer` with a grace period of `timeout_seconds` (SIGTERM,
    /// then SIGKILL), as the kubelet sends it.
    pub fn stop_container(&self, container_id: &str, timeout_seconds: i64) -> Result<()> {
        let mut service = self.runtime_service();
        let request = StopContainerRequest {
            container_id: container_id.to_string(),
            timeout: timeout_seconds,
        };
        self.call("StopContainer", container_id, async move {
            service.stop_container(request).await
        })
        .map(drop)
    }

    /// `RemoveContainer`.
    pub fn remove_container(&self, container_id: &str) -> Result<()> {
        let mut service = self.runtime_service();
        let request = RemoveContainerRequest {
            container_id: container_id.to_string(),
        };
        self.call("RemoveContainer", container_id, async move {
            service.remove_container(request).await
        })
        .map(drop)
    }

    /// `ContainerStatus`.
    pub fn container_status(
        &self,
        container_id: &str,
        verbose: bool,
    ) -> Result<ContainerStatusResponse> {
        let mut service = self.runtime_service();
        let request = ContainerStatusRequest {
            container_id: container_id.to_string(),
            verbose,
        };
        self.call("ContainerStatus", container_id, async move {
            service.container_status(request).await
        })
    }

    /// `ListContainers`, restricted to pod `pod_id` when given.
    pub fn list_containers(&self, pod_id: Option<&str>) -> Result<Vec<k8s_cri::v1::Container>> {
        let mut service = self.runtime_service();
        let request = ListContainersRequest {
            filter: pod_id.map(|pod_id| ContainerFilter {
                pod_sandbox_id: pod_id.to_string(),
                ..ContainerFilter::default()
            }),
        };
        self.call("ListContainers", pod_id.unwrap_or(""), async move {
            service.list_containers(request).await
        })
        .map(|response| response.containers)
    }

    /// `ExecSync` (`kubectl exec` without a terminal): runs `command` in
    /// container `container_id` and returns its output and exit code.
    pub fn exec_sync(
        &self,
        container_id: &str,
        command: &[&str],
        timeout_seconds: i64,
    ) -> Result<ExecSyncResponse> {
        let mut service = self.runtime_service();
        let request = ExecSyncRequest {
            container_id: container_id.to_string(),
            cmd: command.iter().map(|arg| arg.to_string()).collect(),
            timeout: timeout_seconds,
        };
        self.call("ExecSync", container_id, async move {
            service.exec_sync(request).await
        })
    }

    /// `ContainerStats`.
    pub fn container_stats(&self, container_id: &str) -> Result<ContainerStats> {
        let mut service = self.runtime_service();
        let request = ContainerStatsRequest {
            container_id: container_id.to_string(),
        };
        let stats = self.call("ContainerStats", container_id, async move {
            service.container_stats(request).await
        })?;
        stats.stats.ok_or_else(|| HarnessError::Invalid {
            field: "ContainerStatsResponse.stats",
            value: container_id.to_string(),
            reason: "the runtime answered no stats".into(),
        })
    }
}

/// An `ImageSpec` naming `image`.
pub fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.to_string(),
        ..ImageSpec::default()
    }
}

fn pod_name(config: &PodSandboxConfig) -> String {
    config
        .metadata
        .as_ref()
        .map(|metadata| metadata.name.clone())
        .unwrap_or_default()
}

fn container_name(config: &ContainerConfig) -> String {
    config
        .metadata
        .as_ref()
        .map(|metadata| metadata.name.clone())
        .unwrap_or_default()
}
