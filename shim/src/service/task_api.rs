//! containerd's Task API (v2), method by method. Every method is implemented: the generated
//! default answers NOT_FOUND, which containerd would misread as "no such task".

use async_trait::async_trait;
use containerd_shim_protos::api::Status;
use containerd_shim_protos::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ProcessInfo, ResizePtyRequest, ResumeRequest,
    ShutdownRequest, StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest,
    StatsResponse, UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::shim_async::Task;
use containerd_shim_protos::ttrpc::r#async::TtrpcContext;
use containerd_shim_protos::ttrpc::Result as TtrpcResult;

use super::{CancelledBy, TaskService};
use crate::container::process::{Phase, Process};
use crate::container::process_ref::ProcessRef;
use crate::container::{ExecRequest, UpdateRequest};
use crate::error::{Result, ShimError};
use crate::events::ExitReport;
use crate::mounts::RequestMount;
use crate::proto_time::proto_timestamp;
use crate::stdio::StdioPaths;

impl TaskService {
    /// A Kill or Delete of the init process of an id whose Create is in flight cancels that
    /// Create and waits until it has torn down what it made; false when none was in flight.
    async fn cancel_create(&self, id: &str, exec_id: &str, by: CancelledBy) -> bool {
        ProcessRef::from_exec_id(exec_id).is_init() && self.registry.cancel_create(id, by).await
    }
}

/// Delete's answer for a container whose Create it cancelled: it never had a process, and
/// containerd is told it was killed, as for a task whose exit the shim could not see.
fn cancelled_create_deleted() -> DeleteResponse {
    DeleteResponse {
        pid: 0,
        exit_status: crate::contract::delete::KILLED_STATUS,
        exited_at: proto_timestamp(std::time::SystemTime::now()),
        ..Default::default()
    }
}

/// State's answer for `process` of container `id`.
fn state_response(process: &Process, id: &str, bundle: &str) -> StateResponse {
    let snapshot = process.snapshot();
    let status = match snapshot.phase {
        Phase::Created => Status::CREATED,
        Phase::Running => Status::RUNNING,
        Phase::Paused => Status::PAUSED,
        Phase::Stopped => Status::STOPPED,
    };
    StateResponse {
        id: id.to_string(),
        bundle: bundle.to_string(),
        pid: snapshot.pid,
        status: status.into(),
        stdin: process.stdio.stdin.clone(),
        stdout: process.stdio.stdout.clone(),
        stderr: process.stdio.stderr.clone(),
        terminal: process.stdio.terminal,
        exit_status: snapshot.exit.as_ref().map_or(0, |e| e.status),
        exited_at: snapshot
            .exit
            .map_or_else(MessageField::none, |e| proto_timestamp(e.at)),
        exec_id: process.which.exec_id().to_string(),
        ..Default::default()
    }
}

/// Exec's request in the shim's terms.
fn exec_request(req: &ExecProcessRequest) -> ExecRequest {
    ExecRequest {
        exec_id: req.exec_id.clone(),
        stdio: StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        },
        spec: req.spec.value.clone(),
    }
}

/// Logs a failed request with its method, then hands the error to ttrpc (mapped in `error.rs`).
fn answer<T>(method: &str, id: &str, result: Result<T>) -> TtrpcResult<T> {
    result.map_err(|error| {
        tracing::warn!(method, id, %error, "request failed");
        error.into()
    })
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        tracing::info!(id = %req.id, bundle = %req.bundle, "Create");
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let result = async {
            // containerd copies the runtime options into every Create (CRI's, `ctr run
            // --runtime-config-path`): they name the node configuration.
            let node_config =
                crate::contract::runtime_options::node_config_source(req.options.as_ref())?;
            if !req.checkpoint.is_empty() {
                return Err(ShimError::Unimplemented {
                    operation: "Create from checkpoint",
                    reason: "urunc-rs does not restore checkpoints".to_string(),
                });
            }
            let container = self
                .create_container(
                    &req.id,
                    req.bundle.clone().into(),
                    req.rootfs.iter().map(request_mount).collect(),
                    stdio,
                    node_config,
                )
                .await?;
            let pid = container.process(&ProcessRef::Init)?.snapshot().pid;
            self.events.task_create(
                &req.id,
                &req.bundle,
                pid,
                [&req.stdin, &req.stdout, &req.stderr],
                req.terminal,
            );
            Ok(CreateTaskResponse {
                pid,
                ..Default::default()
            })
        }
        .await;
        answer("Create", &req.id, result)
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        tracing::info!(id = %req.id, exec_id = %req.exec_id, "Start");
        let result = async {
            let container = self.container(&req.id)?;
            // Exits reaped before TaskStart is out wait for it (or for the failure).
            let in_flight = self.context.exits.starting(&req.id, &req.exec_id);
            let pid = container
                .start(&ProcessRef::from_exec_id(&req.exec_id))
                .await?;
            in_flight.started(pid);
            Ok(StartResponse {
                pid,
                ..Default::default()
            })
        }
        .await;
        answer("Start", &req.id, result)
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        tracing::info!(id = %req.id, exec_id = %req.exec_id, "Delete");
        let result = async {
            let container = match self.container(&req.id) {
                Ok(container) => container,
                Err(error) => {
                    return match self
                        .cancel_create(&req.id, &req.exec_id, CancelledBy::Delete)
                        .await
                    {
                        true => Ok(cancelled_create_deleted()),
                        false => Err(error),
                    }
                }
            };
            let which = ProcessRef::from_exec_id(&req.exec_id);
            let process = container.process(&which)?;
            let snapshot = process.snapshot();
            if matches!(snapshot.phase, Phase::Running | Phase::Paused) {
                return Err(ShimError::precondition(
                    &req.id,
                    format!("cannot delete {which}: it is still running"),
                ));
            }
            let exit = snapshot
                .exit
                .unwrap_or_else(|| crate::container::process::Exit {
                    status: 0,
                    at: std::time::SystemTime::now(),
                });
            if let ProcessRef::Exec(exec_id) = &which {
                container.delete_exec(exec_id)?;
            } else {
                container.teardown().await?;
                self.table().remove(&req.id);
                crate::logging::remove_container(&req.id);
                self.events.task_delete(&ExitReport {
                    container_id: req.id.clone(),
                    exec_id: String::new(),
                    pid: snapshot.pid,
                    exit_status: exit.status,
                    exited_at: exit.at,
                });
            }
            Ok(DeleteResponse {
                pid: snapshot.pid,
                exit_status: exit.status,
                exited_at: proto_timestamp(exit.at),
                ..Default::default()
            })
        }
        .await;
        answer("Delete", &req.id, result)
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let result = async {
            let processes = self
                .container(&req.id)?
                .pids()
                .await?
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect();
            Ok(PidsResponse {
                processes,
                ..Default::default()
            })
        }
        .await;
        answer("Pids", &req.id, result)
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        let result = async {
            self.container(&req.id)?.pause().await?;
            self.events.task_paused(&req.id);
            Ok(Empty::new())
        }
        .await;
        answer("Pause", &req.id, result)
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        let result = async {
            self.container(&req.id)?.resume().await?;
            self.events.task_resumed(&req.id);
            Ok(Empty::new())
        }
        .await;
        answer("Resume", &req.id, result)
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        let result = self.container(&req.id).and_then(|_| {
            Err(ShimError::Unimplemented {
                operation: "Checkpoint",
                reason: "urunc-rs cannot checkpoint a VMM or a runc container".to_string(),
            })
        });
        answer("Checkpoint", &req.id, result)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        tracing::info!(id = %req.id, exec_id = %req.exec_id, signal = req.signal, all = req.all, "Kill");
        let result = async {
            match self.container(&req.id) {
                Ok(container) => {
                    let which = ProcessRef::from_exec_id(&req.exec_id);
                    container.kill(&which, req.signal, req.all).await?
                }
                Err(error) => {
                    if !self
                        .cancel_create(&req.id, &req.exec_id, CancelledBy::Kill)
                        .await
                    {
                        return Err(error);
                    }
                }
            }
            Ok(Empty::new())
        }
        .await;
        answer("Kill", &req.id, result)
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        tracing::info!(id = %req.id, exec_id = %req.exec_id, "Exec");
        let result = async {
            self.container(&req.id)?.exec(exec_request(&req))?;
            self.events.task_exec_added(&req.id, &req.exec_id);
            Ok(Empty::new())
        }
        .await;
        answer("Exec", &req.id, result)
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        let result = async {
            self.container(&req.id)?.resize_pty(
                &ProcessRef::from_exec_id(&req.exec_id),
                req.width,
                req.height,
            )?;
            Ok(Empty::new())
        }
        .await;
        answer("ResizePty", &req.id, result)
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        tracing::info!(id = %req.id, exec_id = %req.exec_id, stdin = req.stdin, "CloseIO");
        let result = async {
            self.container(&req.id)?
                .close_io(&ProcessRef::from_exec_id(&req.exec_id))?;
            Ok(Empty::new())
        }
        .await;
        answer("CloseIO", &req.id, result)
    }

    async fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        let result = async {
            self.container(&req.id)?
                .update(UpdateRequest {
                    resources: req.resources.as_ref().map(|r| r.value.clone()),
                    has_annotations: !req.annotations.is_empty(),
                })
                .await?;
            Ok(Empty::new())
        }
        .await;
        answer("Update", &req.id, result)
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let result = async {
            let process = self
                .container(&req.id)?
                .process(&ProcessRef::from_exec_id(&req.exec_id))?;
            let exit = process.wait().await;
            Ok(WaitResponse {
                exit_status: exit.status,
                exited_at: proto_timestamp(exit.at),
                ..Default::default()
            })
        }
        .await;
        answer("Wait", &req.id, result)
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let result = self.container(&req.id).and_then(|container| {
            let process = container.process(&ProcessRef::from_exec_id(&req.exec_id))?;
            Ok(state_response(&process, &req.id, container.bundle()))
        });
        answer("State", &req.id, result)
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        let result = self.container(&req.id).and_then(|container| {
            let snapshot = container.process(&ProcessRef::Init)?.snapshot();
            if snapshot.pid == 0 || snapshot.phase == Phase::Stopped {
                return Err(ShimError::precondition(
                    &req.id,
                    "the container is not running",
                ));
            }
            super::stats::collect(snapshot.pid)
        });
        answer(
            "Stats",
            &req.id,
            result.map(|stats| StatsResponse {
                stats: MessageField::some(stats),
                ..Default::default()
            }),
        )
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> TtrpcResult<ConnectResponse> {
        let result = self.container(&req.id).and_then(|container| {
            Ok(ConnectResponse {
                shim_pid: std::process::id(),
                task_pid: container.process(&ProcessRef::Init)?.snapshot().pid,
                version: env!("CARGO_PKG_VERSION").to_string(),
                ..Default::default()
            })
        });
        answer("Connect", &req.id, result)
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        let remaining = self.container_count();
        tracing::info!(id = %req.id, now = req.now, remaining, "Shutdown");
        // The shim serves a whole group (a pod): it only exits with its last container.
        if remaining == 0 {
            self.shutdown.notify_one();
        }
        Ok(Empty::new())
    }
}

/// A Create request's rootfs mount in the shim's terms (proto types stop at this edge).
fn request_mount(mount: &containerd_shim_protos::api::Mount) -> RequestMount {
    RequestMount {
        fs_type: mount.type_.clone(),
        source: mount.source.clone(),
        options: mount.options.clone(),
    }
}
