//! The guest's network: attached through the sandbox's netns worker at Create, in the mode
//! urunc's rule picks (`runtime_core::network_mode`), detached (and verified) when the VMM
//! exits or the container is torn down. When the spec asks for a new network namespace, the
//! shim makes it first (see `netns::create_pinned`), so the hooks that set up the network at
//! Create (nerdctl's CNI hook) have a namespace to configure before the tap is attached.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use runtime_core::oci::NamespaceType;

use netns::{AttachOutcome, AttachRequest, GuestAttachment, NetRecord, NetworkMode, Retirement};
use runtime_core::oci::Spec;
use runtime_core::{GuestNetwork, GuestNetworkMode};

use super::create::vmm_owner;
use super::lock;
use crate::container::prepared::{Prepared, StateWrite};
use crate::container::ShimContext;
use crate::error::{Result, ShimError};
use crate::spawn::asks_new_network;

/// The OCI state annotation nerdctl's hook takes the container's netns path from before
/// `state.pid` (which a unikernel lacks at Create); nerdctl meant it for VM runtimes.
pub const NETNS_ANNOTATION: &str = "nerdctl/network-namespace";
/// The fresh network namespace's pin, in the container's state directory.
const FRESH_NETNS_PIN: &str = "netns";

/// When the spec asks for a new network namespace: records its pin in the state, makes it, and
/// points the spec's `network` entry (the hooks, the attach and the VMM join it by path) and
/// the hooks' [`NETNS_ANNOTATION`] at it. The teardown removes it after the poststop hooks.
pub(super) async fn make_fresh_netns(prepared: &Mutex<Prepared>) -> Result<()> {
    let pin = {
        let p = lock(prepared);
        if !asks_new_network(&p.spec.linux.namespaces) {
            return Ok(());
        }
        p.store.dir().join(FRESH_NETNS_PIN)
    };
    Prepared::persist_change(prepared, |state| state.fresh_netns = Some(pin.clone()))?;
    let target = pin.clone();
    let identity = tokio::task::spawn_blocking(move || netns::create_pinned(&target))
        .await
        .map_err(|e| ShimError::io("make a fresh netns", std::io::Error::other(e)))??;
    let mut p = lock(prepared);
    tracing::info!(id = %p.id, netns = %pin.display(), inode = identity.ino, "fresh network namespace");
    for namespace in &mut p.spec.linux.namespaces {
        if namespace.kind == NamespaceType::Network && namespace.path.is_none() {
            namespace.path = Some(pin.clone());
        }
    }
    p.spec
        .annotations
        .insert(NETNS_ANNOTATION.to_string(), pin.display().to_string());
    Ok(())
}

/// A network attach whose guest side is decided while the worker still makes it.
pub(super) struct PendingNetwork<'a> {
    /// What the VMM plan needs of the network (`None`: the guest runs without one).
    pub guest: Option<GuestNetwork>,
    /// The rest of the attach: the record persisted, then the tap, its qdiscs and filters
    /// made. The worker does it whether or not this is polled; awaiting it is learning that
    /// the network exists, or why it does not.
    rest: Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>,
}

impl PendingNetwork<'_> {
    /// An attach already over: nothing is left to wait for.
    fn done(guest: Option<GuestNetwork>) -> Self {
        PendingNetwork {
            guest,
            rest: Box::pin(std::future::ready(Ok(()))),
        }
    }

    /// Waits until the network exists (its failure leaves nothing of it: see netns).
    pub async fn ready(self) -> Result<()> {
        self.rest.await
    }
}

/// Starts the attach of the sandbox at `netns_path` and returns as soon as the worker has
/// decided the guest's side (before the tap exists): Create plans the VMM, confines it and
/// forks its process while the worker makes the network, and waits for it before the
/// `createContainer` hooks. The worker persists the record (as a change of the container's
/// state, so Create's steps that run meanwhile and record their own changes keep theirs)
/// before it creates anything.
pub(super) async fn attach_network<'a>(
    context: &'a ShimContext,
    prepared: &'a Arc<Mutex<Prepared>>,
    spec: &Spec,
    netns_path: PathBuf,
) -> Result<PendingNetwork<'a>> {
    let mode = match runtime_core::network_mode(&spec.annotations) {
        GuestNetworkMode::Redirect => NetworkMode::Redirect,
        GuestNetworkMode::StaticNat => NetworkMode::StaticNat,
    };
    let (announce, announced) = oneshot::channel();
    let mut attach = Box::pin(attach_announcing(
        context,
        prepared,
        (vmm_owner(spec), mode),
        netns_path,
        announce,
    ));
    tokio::select! {
        // An attach that ends first (without a network, or failing before deciding) says so.
        biased;
        finished = &mut attach => Ok(PendingNetwork::done(finished?)),
        announced = announced => match announced {
            Ok(guest) => Ok(PendingNetwork {
                guest: Some(guest_network(guest)),
                rest: Box::pin(async move { attach.await.map(|_| ()) }),
            }),
            // Dropped unannounced: the attach ended without a guest; its outcome says how.
            Err(_) => Ok(PendingNetwork::done(attach.await?)),
        },
    }
}

/// The attach through the sandbox's worker, announcing the guest's side on `announce`;
/// its record is the container's state's once it is made.
async fn attach_announcing(
    context: &ShimContext,
    prepared: &Arc<Mutex<Prepared>>,
    ((uid, gid), mode): ((u32, u32), NetworkMode),
    netns_path: PathBuf,
    announce: oneshot::Sender<GuestAttachment>,
) -> Result<Option<GuestNetwork>> {
    let id = lock(prepared).id.clone();
    let shared = Arc::clone(prepared);
    let request = AttachRequest {
        container_id: id.clone(),
        owner_uid: uid,
        owner_gid: gid,
        persist: Box::new(move |record: &NetRecord| {
            Prepared::persist_change(&shared, |state| state.net = Some(record.clone()))
                .map_err(std::io::Error::other)
        }),
    };
    match context
        .pool
        .attach_announcing(&netns_path, request, mode, announce)
        .await?
    {
        AttachOutcome::Attached { record, guest } => {
            lock(prepared).state.net = Some(record);
            Ok(Some(guest_network(guest)))
        }
        AttachOutcome::NoNetwork => {
            tracing::info!(%id, netns = %netns_path.display(), "sandbox has no eth0: the guest runs without network");
            Ok(None)
        }
    }
}

/// netns's answer as the VMM plan's input: the one place the two crates' types meet.
fn guest_network(attachment: GuestAttachment) -> GuestNetwork {
    GuestNetwork {
        tap: attachment.tap,
        mac: attachment.mac,
        ipv4: attachment.ipv4,
        prefix_len: attachment.prefix_len,
        gateway: attachment.gateway,
        mtu: attachment.mtu,
    }
}

pub(super) fn log_network(id: &str, network: Option<&GuestNetwork>) {
    if let Some(net) = network {
        tracing::info!(%id, tap = %net.tap, ip = %net.ipv4, prefix = net.prefix_len, mac = %net.mac, "guest network");
    }
}

/// A network detached and verified gone, with what is left of the detach after TaskExit.
pub(super) struct DetachedNetwork {
    /// The tap's deletion, the kernel's part of the detach (see `netns::Detached`).
    pub tap_deletion: Option<Duration>,
    record_write: StateWrite,
    retirement: Retirement,
}

impl DetachedNetwork {
    /// The rest of the detach, once TaskExit is out: the record written without the network
    /// (until then it still lists a network already gone, which a crash cleanup finds gone),
    /// and the end of the worker this container was the last of.
    pub async fn settle(self, id: String) {
        let write = tokio::task::spawn_blocking(move || self.record_write.write()).await;
        match write {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%id, %error, "recording the network's removal failed; the record still lists it")
            }
            Err(error) => tracing::error!(%id, %error, "recording the network's removal failed"),
        }
        self.retirement.wait().await;
    }
}

/// Detaches (and verifies) the container's network and forgets it in the container's state;
/// the state's write and the worker's end are left to [`DetachedNetwork::settle`]. `None`:
/// there was no network.
pub(super) async fn detach_network(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
) -> Result<Option<DetachedNetwork>> {
    let record = lock(prepared).state.net.clone();
    let Some(record) = record else {
        return Ok(None);
    };
    let (detached, retirement) = context.pool.detach_before_retirement(&record).await;
    let forgotten = detached.map_err(ShimError::from).and_then(|detached| {
        let write = Prepared::change_then_write_later(prepared, |state| state.net = None)?;
        Ok((detached, write))
    });
    match forgotten {
        Ok((detached, record_write)) => Ok(Some(DetachedNetwork {
            tap_deletion: detached.tap_deletion,
            record_write,
            retirement,
        })),
        Err(error) => {
            retirement.wait().await;
            Err(error)
        }
    }
}
