//! What each kind of container (unikernel, runc) does its own way. A kind holds the
//! [`ContainerCore`](super::core::ContainerCore) it was built with; what every container does
//! alike (process lookup, the exec table, CloseIO, ResizePty, signalling an exec, reporting
//! exits) is the core's, and [`Container`](super::Container) routes each request to one or
//! the other. Requests arrive in the shim's own types, never containerd's protos.

use async_trait::async_trait;

use super::core::Exec;
use super::UpdateRequest;
use crate::error::Result;

#[async_trait]
pub trait Kind: Send + Sync {
    /// Starts the init process, which Create made and nothing started yet; returns its pid.
    async fn start_init(&self) -> Result<u32>;

    /// Whether this kind runs exec processes: the refusal of Exec when it does not.
    fn check_exec(&self) -> Result<()>;

    /// Starts a registered exec process; returns its pid.
    async fn start_exec(&self, exec: &Exec) -> Result<u32>;

    /// Signals the init process; with `all`, every process of the container.
    async fn kill_init(&self, signal: u32, all: bool) -> Result<()>;

    /// Removes everything the container made (mounts, cgroup, network, state). Called once the
    /// init process is stopped or was never started.
    async fn teardown(&self) -> Result<()>;

    /// Freezes (Pause) or thaws (Resume) the container's processes.
    async fn freeze(&self, frozen: bool) -> Result<()>;

    /// The pids of the container's processes.
    async fn pids(&self) -> Result<Vec<u32>>;

    async fn update(&self, request: UpdateRequest) -> Result<()>;
}
