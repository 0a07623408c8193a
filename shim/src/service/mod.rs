//! The Task service containerd calls over ttrpc. It owns the containers of this shim and routes
//! each request to the right one; what a container does lives in `container/`.

#[cfg(test)]
mod create_race_tests;
mod stats;
mod task_api;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_shim::Flags;
use tokio::sync::Notify;

use crate::container::phase_timer::PhaseTimer;
use crate::container::prepared::{with_undo, Prepared};
use crate::container::runc::RuncContainer;
use crate::container::unikernel::UnikernelContainer;
use crate::container::{Container, ShimContext};
use crate::error::{Result, ShimError};
use crate::events::{EventSender, ExitGate};
use crate::node_config::NodeConfigSource;
use crate::reaper::ExitRouter;
use crate::rootfs_file;
use crate::stdio::StdioPaths;

pub struct ServiceConfig {
    pub namespace: String,
}

impl ServiceConfig {
    pub fn from_flags(flags: &Flags) -> Self {
        ServiceConfig {
            namespace: flags.namespace.clone(),
        }
    }
}

pub struct TaskService {
    context: ShimContext,
    /// The service publishes every event; containers report to `context.exits`.
    events: EventSender,
    containers: Mutex<HashMap<String, Arc<dyn Container>>>,
    /// Ids whose Create is in flight: reserved before Create's first await, so a second Create
    /// of the id is refused instead of sharing its state directory.
    creating: Mutex<HashSet<String>>,
    shutdown: Arc<Notify>,
}

impl TaskService {
    pub fn new(config: ServiceConfig, router: ExitRouter, events: EventSender) -> Self {
        TaskService {
            context: ShimContext {
                namespace: config.namespace,
                router,
                exits: ExitGate::new(events.clone()),
                pool: netns::NetnsPool::new(),
            },
            events,
            containers: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
            shutdown: Arc::new(Notify::new()),
        }
    }

    /// Notified once, when containerd asks the shim to shut down and no container remains.
    pub fn shutdown_signal(&self) -> Arc<Notify> {
        self.shutdown.clone()
    }

    /// How many containers (or Creates in flight) the shim holds.
    pub fn container_count(&self) -> usize {
        self.table().len()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Arc<dyn Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container(&self, id: &str) -> Result<Arc<dyn Container>> {
        self.table()
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound { id: id.to_string() })
    }

    /// Reserves `id` for one Create until the guard drops (after the container is in the
    /// table, or when Create failed); an id taken or being created is refused.
    fn reserve(&self, id: &str) -> Result<Reservation<'_>> {
        let table = self.table();
        let mut creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        if table.contains_key(id) || !creating.insert(id.to_string()) {
            return Err(ShimError::AlreadyExists { id: id.to_string() });
        }
        Ok(Reservation {
            creating: &self.creating,
            id: id.to_string(),
        })
    }

    /// Create: mount, decide unikernel or runc, build the container.
    async fn create_container(
        &self,
        id: &str,
        bundle: PathBuf,
        mounts: &[containerd_shim_protos::api::Mount],
        stdio: StdioPaths,
        node_config: NodeConfigSource,
    ) -> Result<Arc<dyn Container>> {
        let _reserved = self.reserve(id)?;
        let mut timer = PhaseTimer::start();
        let mut prepared = Prepared::new(&self.context.namespace, id, bundle, mounts, stdio)?;
        prepared.node_config = node_config;
        let config = match urunc_config(&prepared) {
            Ok(config) => config,
            Err(error) => return Err(with_undo(error, prepared.undo())),
        };
        timer.mark("bundle_config");
        let container: Arc<dyn Container> = match config {
            Some(config) => {
                tracing::info!(%id, unikernel = config.unikernel_type.as_str(), hypervisor = config.hypervisor.as_str(), "unikernel container");
                Arc::new(
                    UnikernelContainer::create(self.context.clone(), prepared, config, timer)
                        .await?,
                )
            }
            None => {
                tracing::info!(%id, "no urunc configuration: running with runc");
                Arc::new(RuncContainer::create(self.context.clone(), prepared).await?)
            }
        };
        self.table().insert(id.to_string(), container.clone());
        crate::logging::add_container(id, Path::new(container.bundle()));
        Ok(container)
    }
}

/// An id held for the Create in flight.
struct Reservation<'a> {
    creating: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.creating
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// The urunc configuration from the spec's annotations, else `/urunc.json` in the rootfs.
/// The annotation CRI sets to `sandbox` on a pod's pause container.
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

fn urunc_config(prepared: &Prepared) -> Result<Option<runtime_core::UruncConfig>> {
    let annotations = prepared.spec.annotations.clone();
    // CRI copies the pod's annotations into the sandbox (pause) container's spec too: with
    // urunc's keys on the pod, the pause container must still run with runc.
    if annotations.get(CRI_CONTAINER_TYPE).map(String::as_str) == Some("sandbox") {
        return Ok(None);
    }
    let urunc_json = rootfs_file::read_urunc_json(&prepared.rootfs)?;
    Ok(runtime_core::UruncConfig::resolve(
        &annotations,
        urunc_json.as_deref(),
    )?)
}
