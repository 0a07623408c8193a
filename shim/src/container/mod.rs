//! A container served by the shim: a unikernel (the shim runs its VMM) or a plain container
//! delegated to runc. The service speaks to both through [`Container`]: the [`ContainerCore`]
//! both kinds share (id, bundle, init and exec processes, exit reporting) and the [`Kind`]
//! (what a unikernel and a runc container each do their own way).

pub mod blocking;
pub mod core;
pub mod cpu_sample;
pub mod kind;
pub mod phase_timer;
pub mod prepared;
pub mod process;
pub mod process_ref;
pub mod runc;
pub mod teardown;
pub mod unikernel;

use std::sync::Arc;

use self::core::ContainerCore;
use crate::error::{Result, ShimError};
use crate::events::ExitGate;
use crate::reaper::ExitRouter;
use kind::Kind;
use process::{Phase, Process};
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

/// A container the service serves: its [`ContainerCore`] and its [`Kind`]. Each request goes
/// to the one that owns what it touches.
pub struct Container {
    core: Arc<ContainerCore>,
    kind: Box<dyn Kind>,
}

impl Container {
    /// `kind` holds `core` too (its processes, its id).
    pub fn new(core: Arc<ContainerCore>, kind: Box<dyn Kind>) -> Self {
        Container { core, kind }
    }

    pub fn id(&self) -> &str {
        self.core.id()
    }

    pub fn bundle(&self) -> &str {
        self.core.bundle()
    }

    pub fn process(&self, which: &ProcessRef) -> Result<Arc<Process>> {
        self.core.process(which)
    }

    /// Starts the init process or a registered exec; returns its pid.
    pub async fn start(&self, which: &ProcessRef) -> Result<u32> {
        match which {
            ProcessRef::Init => {
                if self.core.init().snapshot().phase != Phase::Created {
                    return Err(ShimError::precondition(
                        self.id(),
                        "the container was already started",
                    ));
                }
                self.kind.start_init().await
            }
            ProcessRef::Exec(exec_id) => {
                self.kind.check_exec()?;
                let exec = self.core.exec(exec_id)?;
                if exec.process.snapshot().phase != Phase::Created {
                    return Err(ShimError::precondition(
                        self.id(),
                        format!("{which} was already started"),
                    ));
                }
                self.kind.start_exec(&exec).await
            }
        }
    }

    pub async fn kill(&self, which: &ProcessRef, signal: u32, all: bool) -> Result<()> {
        match which {
            ProcessRef::Init => self.kind.kill_init(signal, all).await,
            ProcessRef::Exec(exec_id) => self.core.kill_exec(exec_id, signal),
        }
    }

    /// Registers an exec process (started later by `start`).
    pub fn exec(&self, request: ExecRequest) -> Result<()> {
        self.kind.check_exec()?;
        self.core.add_exec(request)
    }

    /// Forgets a stopped exec process.
    pub fn delete_exec(&self, exec_id: &str) -> Result<()> {
        self.core.remove_exec(exec_id)
    }

    /// Removes everything the container made (see [`Kind::teardown`]).
    pub async fn teardown(&self) -> Result<()> {
        self.kind.teardown().await
    }

    pub async fn pause(&self) -> Result<()> {
        self.kind.freeze(true).await?;
        self.core.init().set_paused(true);
        Ok(())
    }

    pub async fn resume(&self) -> Result<()> {
        self.kind.freeze(false).await?;
        self.core.init().set_paused(false);
        Ok(())
    }

    pub async fn pids(&self) -> Result<Vec<u32>> {
        self.kind.pids().await
    }

    pub async fn update(&self, request: UpdateRequest) -> Result<()> {
        self.kind.update(request).await
    }

    /// CloseIO: the process reads EOF on its stdin.
    pub fn close_io(&self, which: &ProcessRef) -> Result<()> {
        self.core.close_io(which)
    }

    pub fn resize_pty(&self, which: &ProcessRef, width: u32, height: u32) -> Result<()> {
        self.core.resize_pty(which, width, height)
    }
}
