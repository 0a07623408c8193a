//! The Task service containerd calls over ttrpc. It owns the containers of this shim and routes
//! each request to the right one; what a container does lives in `container/`.

mod create;
#[cfg(test)]
mod create_race_tests;
mod in_flight;
mod stats;
mod task_api;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use containerd_shim::Flags;
use tokio::sync::Notify;

use crate::container::{Container, ShimContext};
use crate::error::Result;
use crate::events::{EventSender, ExitGate};
use crate::mounts::RequestMount;
use crate::node_config::NodeConfigSource;
use crate::reaper::ExitRouter;
use crate::stdio::StdioPaths;
pub use in_flight::CancelledBy;
use in_flight::Registry;

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
    /// The containers served and the Creates in flight (see `in_flight`).
    registry: Registry,
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
            registry: Registry::default(),
            shutdown: Arc::new(Notify::new()),
        }
    }

    /// Notified once, when containerd asks the shim to shut down and no container remains.
    pub fn shutdown_signal(&self) -> Arc<Notify> {
        self.shutdown.clone()
    }

    /// How many containers (or Creates in flight) the shim holds.
    pub fn container_count(&self) -> usize {
        self.registry.count()
    }

    /// Cancels every Create in flight (see `in_flight`); returns how many were.
    pub async fn cancel_creates(&self, by: CancelledBy) -> usize {
        self.registry.cancel_all_creates(by).await
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.registry.table()
    }

    fn container(&self, id: &str) -> Result<Arc<Container>> {
        self.registry.container(id)
    }

    /// Create: reserves the id, then builds the container in a task of its own (see `create`).
    async fn create_container(
        &self,
        id: &str,
        bundle: PathBuf,
        mounts: Vec<RequestMount>,
        stdio: StdioPaths,
        node_config: NodeConfigSource,
    ) -> Result<Arc<Container>> {
        let reservation = self.registry.reserve(id)?;
        let request = create::CreateRequest {
            id: id.to_string(),
            bundle,
            mounts,
            stdio,
            node_config,
        };
        create::run(self.context.clone(), reservation, request).await
    }
}
