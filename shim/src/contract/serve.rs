//! The serving daemon: child subreaper, one reaper, one event publisher, the Task service.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::Flags;
use containerd_shim_protos::shim_async::create_task;
use containerd_shim_protos::ttrpc::r#async::Server;
use tokio::signal::unix::{signal, SignalKind};

use super::group::ShimGroup;
use super::{
    socket_path, CONTAINERD_VERSION_ENV, LISTENER_FD, LISTENER_FD_ENV, TASK_API_ENV,
    TTRPC_ADDRESS_ENV,
};
use crate::error::{Result, ShimError};
use crate::events::EventSender;
use crate::reaper::ExitRouter;
use crate::service::{CancelledBy, ServiceConfig, TaskService};

pub fn run(flags: &Flags) -> Result<()> {
    if flags.socket.is_empty() {
        return Err(ShimError::invalid(
            "-socket",
            "",
            "the serving shim needs its address",
        ));
    }
    // The listener first: it must be adopted before any other open could reuse its fd number.
    let listener = inherited_listener()?;
    // containerd starts the serving shim in the bundle it was started for.
    crate::logging::init_fifo(Path::new("."), flags.debug)?;
    crate::heap_policy::keep_heap_small();
    set_child_subreaper()?;

    // One thread serves everything; blocking work goes to tokio's small blocking pool. The
    // shim's footprint matters more than parallelism: it mostly waits.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("shim-blocking")
        .build()
        .map_err(|e| ShimError::io("build tokio runtime", e))?;
    let served = runtime.block_on(serve(flags, listener));
    // A blocking step of a cancelled Create may still be stuck (in `open()` of a FIFO): it
    // must not keep the shim from exiting.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    served
}

/// How long the exiting shim waits for its blocking threads.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

async fn serve(flags: &Flags, listener: UnixListener) -> Result<()> {
    // The reaper subscribes to SIGCHLD before anything is spawned.
    let router = ExitRouter::start()?;
    let ttrpc_address = std::env::var(TTRPC_ADDRESS_ENV).map_err(|_| {
        ShimError::invalid(TTRPC_ADDRESS_ENV, "", "containerd sets it; it is missing")
    })?;
    let events = EventSender::connect(&ttrpc_address, flags.namespace.clone()).await?;
    let config = ServiceConfig::from_flags(flags);
    let group = ShimGroup::from_env()?;
    let service = Arc::new(TaskService::new(config, router, events));
    let shutdown = service.shutdown_signal();

    let accepted = Arc::new(AtomicU64::new(0));
    let listener = super::peer::same_user_only(listener, accepted.clone())
        .map_err(|e| ShimError::io("adopt the inherited listener", e))?;
    let mut server = Server::new()
        .add_listener(listener)
        .register_service(task_services(service.clone()));
    server
        .start()
        .await
        .map_err(|source| ShimError::Serve { source })?;
    let task_api = std::env::var(TASK_API_ENV).unwrap_or_else(|_| "2".into());
    let containerd = std::env::var(CONTAINERD_VERSION_ENV).unwrap_or_else(|_| "1.x-2.2".into());
    tracing::info!(
        id = %flags.id,
        namespace = %flags.namespace,
        pid = std::process::id(),
        task_api = %format!("v{task_api}"),
        containerd = %containerd,
        group = ?group,
        "shim serving containerd.task.v2.Task and containerd.task.v3.Task; started for task API v{task_api}"
    );

    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| ShimError::io("subscribe to SIGTERM", e))?;
    let mut sigpipe =
        signal(SignalKind::pipe()).map_err(|e| ShimError::io("subscribe to SIGPIPE", e))?;
    loop {
        tokio::select! {
            _ = shutdown.notified() => {
                if group == ShimGroup::Pod || stays_idle(&service, &accepted).await {
                    break;
                }
            }
            _ = sigterm.recv() => {
                if stops_on_sigterm(&service).await {
                    break;
                }
            }
            _ = sigpipe.recv() => {}
        }
    }
    tracing::info!("shutting down");
    if let Err(error) = server.shutdown().await {
        tracing::warn!(%error, "ttrpc server shutdown");
    }
    let path = socket_path(&flags.socket);
    if let Err(error) = std::fs::remove_file(path) {
        tracing::warn!(%error, path, "removing the shim socket failed");
    }
    Ok(())
}

/// SIGTERM cancels the Creates in flight (tearing down what they made); the shim then stops
/// only if it holds no container: containerd stops a shim through Shutdown, and a stray SIGTERM
/// must not orphan VMMs.
async fn stops_on_sigterm(service: &TaskService) -> bool {
    let cancelled = service.cancel_creates(CancelledBy::Sigterm).await;
    let remaining = service.container_count();
    if remaining == 0 {
        tracing::info!(cancelled, "SIGTERM: no container remains; stopping");
        return true;
    }
    tracing::info!(
        cancelled,
        remaining,
        "SIGTERM: containers remain; containerd ends the shim with Shutdown"
    );
    false
}

/// How long a node-wide shim left without containers waits before it exits.
const NODE_LINGER: Duration = Duration::from_secs(5);

/// A node-wide shim serves pods that come and go independently: the moment its last container
/// goes, another pod's `start` may just have found it alive and told containerd to connect. So
/// it exits only after `NODE_LINGER` in which it had no container and accepted no connection
/// (`start`'s liveness probe is one). `false`: a container arrived; its Delete's Shutdown asks
/// again.
async fn stays_idle(service: &TaskService, accepted: &AtomicU64) -> bool {
    loop {
        let seen = accepted.load(Ordering::Relaxed);
        tokio::time::sleep(NODE_LINGER).await;
        if service.container_count() > 0 {
            return false;
        }
        if accepted.load(Ordering::Relaxed) == seen {
            return true;
        }
    }
}

/// The task service names containerd calls, v2 (1.6, 1.7; 2.x through its bridge) and v3
/// (2.x natively). Their messages are the same on the wire, field for field (runtime/task/v2 and
/// v3 shim.proto differ only in their package), so one implementation serves both.
pub const TASK_SERVICE_V2: &str = "containerd.task.v2.Task";
pub const TASK_SERVICE_V3: &str = "containerd.task.v3.Task";

fn task_services(
    service: Arc<TaskService>,
) -> std::collections::HashMap<String, containerd_shim_protos::ttrpc::r#async::Service> {
    let mut services = create_task(service.clone());
    let v3 = create_task(service)
        .remove(TASK_SERVICE_V2)
        .expect("the generated task service is named containerd.task.v2.Task");
    services.insert(TASK_SERVICE_V3.to_string(), v3);
    services
}

fn inherited_listener() -> Result<UnixListener> {
    let declared = std::env::var(LISTENER_FD_ENV).unwrap_or_default();
    if declared != LISTENER_FD.to_string() {
        return Err(ShimError::invalid(
            LISTENER_FD_ENV,
            declared,
            "the serving shim is started by `start`, which passes its listener as fd 3",
        ));
    }
    std::env::remove_var(LISTENER_FD_ENV);
    let is_socket =
        nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(LISTENER_FD) })
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
            .unwrap_or(false);
    if !is_socket {
        return Err(ShimError::invalid(
            "fd 3",
            LISTENER_FD.to_string(),
            "is not the listening socket `start` passes",
        ));
    }
    // SAFETY: `start` placed the bound listener at this fd just before exec (checked above to be
    // a socket); nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(LISTENER_FD) };
    let listener = UnixListener::from(fd);
    // Our own children must not inherit the listener.
    nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| ShimError::sys("set FD_CLOEXEC on the listener", e))?;
    Ok(listener)
}

fn set_child_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(ShimError::io(
            "become a child subreaper",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
