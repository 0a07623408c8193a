//! A netns worker: one OS thread that enters one sandbox namespace when it
//! starts and never leaves it.
//!
//! The thread runs a current-thread tokio runtime for rtnetlink. That runtime
//! spawns no threads (no `spawn_blocking` here), which matters: a thread
//! created by a worker would start inside the sandbox namespace.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use tokio::sync::{mpsc, oneshot};

use crate::attach::attach;
use crate::detach::{teardown, Detached};
use crate::error::{NetnsError, Result};
use crate::identity::NetnsIdentity;
use crate::record::NetRecord;
use crate::request::{Announce, AttachOutcome, AttachRequest, NetworkMode};
use crate::rtnl::Rtnl;
use crate::sweep::{sweep, SweepReport};

/// Workers are named `ns-<inode>` so `ps -T` shows which namespace each serves.
pub const THREAD_NAME_PREFIX: &str = "ns-";
/// How often an idle worker checks that its namespace still exists.
const VANISH_CHECK: Duration = Duration::from_millis(500);
/// Workers do little; a small stack keeps an idle worker cheap.
const STACK_SIZE: usize = 256 * 1024;

pub(crate) enum Request {
    Attach(
        AttachRequest,
        NetworkMode,
        Announce,
        oneshot::Sender<Result<AttachOutcome>>,
    ),
    Detach(NetRecord, oneshot::Sender<Result<Detached>>),
    Sweep(oneshot::Sender<Result<SweepReport>>),
}

/// The pool's side of a worker.
pub(crate) struct Worker {
    sender: mpsc::UnboundedSender<Request>,
    thread: JoinHandle<()>,
    /// Containers whose network the worker removed itself because the
    /// namespace vanished under it; their later detach is already done.
    torn_down: Arc<Mutex<HashSet<String>>>,
    identity: NetnsIdentity,
}

impl Worker {
    /// Starts the thread; `netns` is the already validated nsfs file.
    pub fn spawn(netns: OwnedFd, identity: NetnsIdentity) -> Result<Self> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let torn_down = Arc::new(Mutex::new(HashSet::new()));
        let serve_identity = identity.clone();
        let serve_torn_down = torn_down.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{THREAD_NAME_PREFIX}{}", identity.ino))
            .stack_size(STACK_SIZE)
            .spawn(move || serve(netns, serve_identity, receiver, serve_torn_down))
            .map_err(|source| NetnsError::Spawn {
                path: identity.path.clone(),
                source,
            })?;
        Ok(Self {
            sender,
            thread,
            torn_down,
            identity,
        })
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<Request> {
        self.sender.clone()
    }

    pub fn identity(&self) -> &NetnsIdentity {
        &self.identity
    }

    /// Whether the worker already removed this container's network.
    pub fn tore_down(&self, container_id: &str) -> bool {
        self.torn_down
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(container_id)
    }

    /// Closes the channel; the thread ends after the requests already queued.
    pub fn retire(self) -> JoinHandle<()> {
        drop(self.sender);
        self.thread
    }
}

fn serve(
    netns: OwnedFd,
    identity: NetnsIdentity,
    mut requests: mpsc::UnboundedReceiver<Request>,
    torn_down: Arc<Mutex<HashSet<String>>>,
) {
    if let Err(errno) = setns(&netns, CloneFlags::CLONE_NEWNET) {
        tracing::error!(netns = ?identity.path, %errno, "netns worker could not enter its namespace");
        refuse_all(&identity, errno, &mut requests);
        return;
    }
    drop(netns);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(netns = ?identity.path, error = %e, "netns worker has no runtime");
            refuse_all(
                &identity,
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                &mut requests,
            );
            return;
        }
    };
    let served = runtime.block_on(async {
        // Opened after setns: the socket belongs to the sandbox namespace.
        let (connection, handle, _) = match rtnetlink::new_connection() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(netns = ?identity.path, error = %e, "netns worker has no netlink socket");
                return Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)));
            }
        };
        tokio::spawn(connection);
        let rtnl = Rtnl::new(handle, &identity.path);
        let mut attached: HashMap<String, NetRecord> = HashMap::new();
        loop {
            let request = tokio::select! {
                request = requests.recv() => request,
                _ = tokio::time::sleep(VANISH_CHECK) => {
                    if identity.path_still_names_it() {
                        continue;
                    }
                    tear_down_vanished(&rtnl, &identity, &mut attached, &torn_down).await;
                    return Ok(());
                }
            };
            let Some(request) = request else {
                return Ok(());
            };
            handle_request(&rtnl, &identity, &mut attached, request).await;
        }
    });
    drop(runtime);
    if let Err(errno) = served {
        refuse_all(&identity, errno, &mut requests);
    }
    tracing::debug!(netns = ?identity.path, "netns worker retired");
}

async fn handle_request(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    attached: &mut HashMap<String, NetRecord>,
    request: Request,
) {
    match request {
        Request::Attach(request, mode, announce, reply) => {
            let outcome = attach(rtnl, identity, request, mode, announce).await;
            if let Ok(AttachOutcome::Attached { record, .. }) = &outcome {
                attached.insert(record.container_id.clone(), record.clone());
            }
            // The caller may have stopped waiting; the record stays tracked.
            let _ = reply.send(outcome);
        }
        Request::Detach(record, reply) => {
            let result = teardown(rtnl, &record).await;
            attached.remove(&record.container_id);
            let _ = reply.send(result);
        }
        Request::Sweep(reply) => {
            let _ = reply.send(sweep(rtnl).await);
        }
    }
}

/// The namespace's path is gone (the pod was removed): nobody can attach
/// any more, so remove what our containers created and end the thread,
/// releasing the namespace.
async fn tear_down_vanished(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    attached: &mut HashMap<String, NetRecord>,
    torn_down: &Mutex<HashSet<String>>,
) {
    tracing::warn!(netns = ?identity.path, containers = attached.len(), "sandbox namespace vanished; retiring its worker");
    for (container_id, record) in attached.drain() {
        if let Err(e) = teardown(rtnl, &record).await {
            tracing::error!(container_id, error = %e, "teardown in a vanished namespace failed");
        }
        torn_down
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(container_id);
    }
}

/// A worker that could not start answers every request with why.
fn refuse_all(
    identity: &NetnsIdentity,
    errno: Errno,
    requests: &mut mpsc::UnboundedReceiver<Request>,
) {
    let error = || NetnsError::Enter {
        path: identity.path.clone(),
        errno,
    };
    while let Some(request) = requests.blocking_recv() {
        // A send fails only when the caller stopped waiting: nobody to tell.
        let _ = match request {
            Request::Attach(_, _, _, reply) => reply.send(Err(error())).is_ok(),
            Request::Detach(_, reply) => reply.send(Err(error())).is_ok(),
            Request::Sweep(reply) => reply.send(Err(error())).is_ok(),
        };
    }
}
