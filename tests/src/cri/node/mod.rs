//! A CRI node: a private containerd with its CRI plugin set up for urunc-rs,
//! a private CNI network, the pause image, and a CRI client. It plays the
//! node; tests play the kubelet.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_cri::v1::{ContainerConfig, PodSandboxConfig};

use super::client::CriClient;
use super::cni::CniNetwork;
use super::config::{render_cri_config, CriConfig, RUNTIME_HANDLER};
use super::pause_image::{pause_image, PAUSE_IMAGE};
use super::pod::{pod_config, PodNetwork};
use super::probes::{self, ShimProcess};
use crate::command;
use crate::containerd::{ContainerdOptions, ContainerdVersion, PrivateContainerd};
use crate::error::{HarnessError, Result};
use crate::host_processes::is_alive;
use crate::host_tools::which;

mod teardown;

/// The containerd namespace CRI works in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// How long CRI may take to see an image `ctr` imported.
const IMAGE_VISIBLE_LIMIT: Duration = Duration::from_secs(30);

/// A pod the node runs.
#[derive(Debug, Clone)]
pub struct Pod {
    pub id: String,
    pub config: PodSandboxConfig,
    pub network: PodNetwork,
    /// The pod's log directory (container logs go below it).
    pub log_dir: PathBuf,
}

/// See the module doc. Dropping it removes every pod, stops containerd and
/// removes what is left on the host; [`CriNode::stop`] returns the failures.
pub struct CriNode {
    client: Option<CriClient>,
    containerd: Option<PrivateContainerd>,
    network: Option<CniNetwork>,
    scratch: Option<tempfile::TempDir>,
    /// Every pod and container id made through the node: runc and the shim
    /// keep state for them in folders shared with other containerds.
    known_ids: Mutex<BTreeSet<String>>,
    /// Pinned pod namespaces, shared with other containerds too.
    netns_paths: Mutex<BTreeSet<PathBuf>>,
}

/// How a node's containerd is configured beyond the defaults.
#[derive(Debug, Default, Clone)]
pub struct NodeConfig<'a> {
    /// The urunc runtime handler's table as an operator writes it (see
    /// [`CriConfig::runtime_table`]); `Some("")` renders none.
    pub runtime_table: Option<&'a str>,
    /// Config files containerd imports as written.
    pub imports: Vec<PathBuf>,
    /// Environment added to containerd's (and its shims').
    pub extra_env: Vec<(String, String)>,
    /// Serve pods' host ports (chains CNI's portmap plugin; see
    /// [`PORTMAP_PLUGIN`](super::cni::PORTMAP_PLUGIN)).
    pub port_mapping: bool,
}

impl CriNode {
    /// Starts the node: CNI network, containerd with CRI, the pause image.
    pub fn start() -> Result<Self> {
        Self::start_with_config(NodeConfig::default())
    }

    /// Like [`start`](Self::start), configured as `setup` says.
    pub fn start_with_config(setup: NodeConfig) -> Result<Self> {
        let version = ContainerdVersion::selected()?;
        version.programs()?;
        which("runc", "apt-get install runc")?;
        let mut node = CriNode {
            client: None,
            containerd: None,
            network: Some(CniNetwork::create_with(setup.port_mapping)?),
            scratch: Some(
                tempfile::Builder::new()
                    .prefix("urunc-cri-node-")
                    .tempdir()
                    .map_err(HarnessError::io(
                        "create temporary folder in",
                        std::env::temp_dir(),
                    ))?,
            ),
            known_ids: Mutex::new(BTreeSet::new()),
            netns_paths: Mutex::new(BTreeSet::new()),
        };
        let cri_section = render_cri_config(
            &CriConfig {
                sandbox_image: PAUSE_IMAGE,
                cni_conf_dir: &node.network().conf_dir(),
                runtime_table: setup.runtime_table,
            },
            version,
        );
        node.containerd = Some(PrivateContainerd::start_with(ContainerdOptions {
            cri: true,
            extra_config: cri_section,
            version: Some(version),
            imports: setup.imports,
            extra_env: setup.extra_env,
            ..ContainerdOptions::default()
        })?);
        node.client = Some(CriClient::connect(node.containerd().address())?);
        let pause = pause_image(&node.scratch_dir())?;
        node.import_image(&pause, PAUSE_IMAGE)?;
        Ok(node)
    }

    /// The CRI client.
    pub fn client(&self) -> &CriClient {
        self.client
            .as_ref()
            .expect("the client lives until teardown")
    }

    /// The private containerd.
    pub fn containerd(&self) -> &PrivateContainerd {
        self.containerd
            .as_ref()
            .expect("containerd lives until teardown")
    }

    /// The CNI network.
    pub fn network(&self) -> &CniNetwork {
        self.network
            .as_ref()
            .expect("the network lives until teardown")
    }

    /// A private folder for images and logs, removed with the node.
    pub fn scratch_dir(&self) -> PathBuf {
        self.scratch.as_ref().map_or_else(
            || PathBuf::from("/nonexistent"),
            |dir| dir.path().to_path_buf(),
        )
    }

    /// Imports an image archive into CRI's namespace and waits until CRI
    /// lists image `name`.
    pub fn import_image(&self, archive: &Path, name: &str) -> Result<()> {
        command::checked(
            Command::new(self.containerd().ctr_program())
                .arg("--address")
                .arg(self.containerd().address())
                .args(["--namespace", CRI_NAMESPACE, "images", "import"])
                .arg(archive),
        )?;
        let deadline = Instant::now() + IMAGE_VISIBLE_LIMIT;
        while !self.client().has_image(name)? {
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    what: format!("CRI to list imported image {name}"),
                    seconds: IMAGE_VISIBLE_LIMIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// RunPodSandbox `name` with the urunc runtime handler; returns the pod
    /// with its network as read from its pause container.
    pub fn run_pod(&self, name: &str) -> Result<Pod> {
        self.run_pod_with_annotations(name, HashMap::new())
    }

    /// Like [`run_pod`](Self::run_pod), with pod `annotations` (what a pod
    /// manifest's `metadata.annotations` become).
    pub fn run_pod_with_annotations(
        &self,
        name: &str,
        annotations: HashMap<String, String>,
    ) -> Result<Pod> {
        let log_dir = self.scratch_dir().join("pods").join(name);
        std::fs::create_dir_all(&log_dir).map_err(HarnessError::io("create", &log_dir))?;
        let mut config = pod_config(name, &log_dir);
        config.annotations = annotations;
        let id = self.client().run_pod_sandbox(&config, RUNTIME_HANDLER)?;
        self.remember(&id);
        let network = PodNetwork::of(self.client(), &id)?;
        self.netns_paths
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(network.netns_path.clone());
        Ok(Pod {
            id,
            config,
            network,
            log_dir,
        })
    }

    /// CreateContainer in `pod`; returns the container id.
    pub fn create_container(&self, pod: &Pod, config: &ContainerConfig) -> Result<String> {
        let log_path = pod.log_dir.join(&config.log_path);
        if let Some(parent) = log_path.parent() {
            std::fs::create_dir_all(parent).map_err(HarnessError::io("create", parent))?;
        }
        let id = self
            .client()
            .create_container(&pod.id, config, &pod.config)?;
        self.remember(&id);
        Ok(id)
    }

    fn remember(&self, id: &str) {
        self.known_ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id.to_string());
    }

    /// The serving shims of this node's containerd.
    pub fn shims(&self) -> Vec<ShimProcess> {
        probes::shims_of(self.containerd().address())
    }

    /// The VMMs this node's containerd started that still run.
    pub fn vmms(&self) -> Vec<(i32, String)> {
        probes::vmms_of(self.containerd().dir())
    }

    /// What is wrong with `pod` between two containers: urunc taps, tc
    /// filters or ingress qdiscs in its namespace, or a pause container
    /// that stopped running. Empty when the pod is as the CNI left it.
    pub fn pod_leftovers(&self, pod: &Pod) -> Result<Vec<String>> {
        let mut problems = probes::urunc_network_leftovers(&pod.network.netns_name())?;
        if !is_alive(pod.network.pause_pid) {
            problems.push(format!("pause process {} is gone", pod.network.pause_pid));
        }
        match PodNetwork::of(self.client(), &pod.id) {
            Ok(now) if now == pod.network => {}
            Ok(now) => problems.push(format!("pod network changed: {now:?}")),
            Err(error) => problems.push(format!("pod not ready: {error}")),
        }
        Ok(problems)
    }

    /// State folders of pod or container `id` that still exist.
    pub fn state_leftovers(&self, id: &str) -> Vec<PathBuf> {
        probes::state_leftovers(&self.containerd().state_dir(), CRI_NAMESPACE, id)
    }

    /// Tears the node down and returns every step that failed.
    pub fn stop(mut self) -> Result<()> {
        self.teardown()
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("CriNode: {error}");
        }
    }
}
