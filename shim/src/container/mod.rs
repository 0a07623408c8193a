//! A container served by the shim: a unikernel (the shim runs its VMM) or a plain container
//! delegated to runc. The service speaks to both through [`Container`].

pub mod blocking;
pub mod phase_timer;
pub mod prepared;
pub mod process;
pub mod runc;
pub mod teardown;
pub mod unikernel;

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim_protos::api::{ExecProcessRequest, ProcessInfo, UpdateTaskRequest};

use crate::error::Result;
use crate::events::ExitGate;
use crate::reaper::ExitRouter;
use process::Process;

/// What every container needs from the shim around it.
#[derive(Clone)]
pub struct ShimContext {
    pub namespace: String,
    pub router: ExitRouter,
    /// Where containers report exits and OOM kills; they publish no event themselves.
    pub exits: Arc<ExitGate>,
    /// The netns workers (one per sandbox namespace), owned by the service.
    pub pool: netns::NetnsPool,
}

#[async_trait]
pub trait Container: Send + Sync {
    fn bundle(&self) -> &str;
    /// The init process for an empty `exec_id`, else that exec.
    fn process(&self, exec_id: &str) -> Result<Arc<Process>>;
    /// Starts the init process (empty `exec_id`) or a registered exec; returns its pid.
    async fn start(&self, exec_id: &str) -> Result<u32>;
    async fn kill(&self, exec_id: &str, signal: u32, all: bool) -> Result<()>;
    /// Registers an exec process (started later by `start`).
    async fn exec(&self, request: &ExecProcessRequest) -> Result<()>;
    /// Forgets a stopped exec process.
    async fn delete_exec(&self, exec_id: &str) -> Result<()>;
    /// Removes everything the container made (mounts, cgroup, network, state). Called once the
    /// init process is stopped or was never started.
    async fn teardown(&self) -> Result<()>;
    async fn pause(&self) -> Result<()>;
    async fn resume(&self) -> Result<()>;
    async fn pids(&self) -> Result<Vec<ProcessInfo>>;
    async fn update(&self, request: &UpdateTaskRequest) -> Result<()>;
    async fn close_io(&self, exec_id: &str) -> Result<()>;
    async fn resize_pty(&self, exec_id: &str, width: u32, height: u32) -> Result<()>;
}
