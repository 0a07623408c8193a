//! A container served by the shim: a unikernel (the shim runs its VMM) or a plain container
//! delegated to runc. The service speaks to both through [`Container`].

pub mod blocking;
pub mod cpu_sample;
pub mod phase_timer;
pub mod prepared;
pub mod process;
pub mod process_ref;
pub mod runc;
pub mod teardown;
pub mod unikernel;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::events::ExitGate;
use crate::reaper::ExitRouter;
use process::Process;
use process_ref::ProcessRef;

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

/// An exec process to register, in the shim's terms (converted from containerd's request at
/// the service edge).
pub struct ExecRequest {
    pub exec_id: String,
    pub stdio: crate::stdio::StdioPaths,
    /// The OCI process spec, as JSON.
    pub spec: Vec<u8>,
}

/// Update's request in the shim's terms.
pub struct UpdateRequest {
    /// The OCI LinuxResources, as JSON (containerd's typeurl encoding of the Go struct).
    pub resources: Option<Vec<u8>>,
    pub has_annotations: bool,
}

/// What each kind of container (unikernel, runc) does its own way; what both do alike
/// (CloseIO, ResizePty) is written once, here.
#[async_trait]
pub trait Container: Send + Sync {
    fn id(&self) -> &str;
    fn bundle(&self) -> &str;
    fn process(&self, process: &ProcessRef) -> Result<Arc<Process>>;
    /// Starts the init process or a registered exec; returns its pid.
    async fn start(&self, process: &ProcessRef) -> Result<u32>;
    async fn kill(&self, process: &ProcessRef, signal: u32, all: bool) -> Result<()>;
    /// Registers an exec process (started later by `start`).
    async fn exec(&self, request: ExecRequest) -> Result<()>;
    /// Forgets a stopped exec process.
    async fn delete_exec(&self, exec_id: &str) -> Result<()>;
    /// Removes everything the container made (mounts, cgroup, network, state). Called once the
    /// init process is stopped or was never started.
    async fn teardown(&self) -> Result<()>;
    async fn pause(&self) -> Result<()>;
    async fn resume(&self) -> Result<()>;
    /// The pids of the container's processes.
    async fn pids(&self) -> Result<Vec<u32>>;
    async fn update(&self, request: UpdateRequest) -> Result<()>;

    /// CloseIO: the process reads EOF on its stdin.
    fn close_io(&self, process: &ProcessRef) -> Result<()> {
        self.process(process)?.close_stdin();
        Ok(())
    }

    fn resize_pty(&self, process: &ProcessRef, width: u32, height: u32) -> Result<()> {
        self.process(process)?.resize(self.id(), width, height)
    }
}
