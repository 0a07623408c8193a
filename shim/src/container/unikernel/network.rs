//! The guest's network: attached through the sandbox's netns worker at Create, in the mode
//! urunc's rule picks (`runtime_core::network_mode`), detached (and verified) when the VMM
//! exits or the container is torn down.

use std::sync::Mutex;

use netns::{AttachOutcome, AttachRequest, GuestAttachment, NetRecord, NetworkMode};
use runtime_core::oci::Spec;
use runtime_core::{GuestNetwork, GuestNetworkMode};

use super::create::vmm_owner;
use super::lock;
use crate::container::prepared::Prepared;
use crate::container::ShimContext;
use crate::error::Result;

/// Creates the tap and redirect in the sandbox at `netns_path` through its netns worker. The
/// worker persists the record (through the state store) before it creates anything.
pub(super) async fn attach_network(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
    spec: &Spec,
    netns_path: &std::path::Path,
) -> Result<Option<GuestNetwork>> {
    let (id, store, mut state) = {
        let p = lock(prepared);
        (p.id.clone(), p.store.clone(), p.state.clone())
    };
    let (uid, gid) = vmm_owner(spec);
    let request = AttachRequest {
        container_id: id.clone(),
        owner_uid: uid,
        owner_gid: gid,
        persist: Box::new(move |record: &NetRecord| {
            state.net = Some(record.clone());
            store.write(&state)
        }),
    };
    let mode = match runtime_core::network_mode(&spec.annotations) {
        GuestNetworkMode::Redirect => NetworkMode::Redirect,
        GuestNetworkMode::StaticNat => NetworkMode::StaticNat,
    };
    match context
        .pool
        .attach_in_mode(netns_path, request, mode)
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

/// Detaches (and verifies) the container's network; forgets the record once it is gone.
pub(super) async fn detach_network(
    context: &ShimContext,
    prepared: &Mutex<Prepared>,
) -> Result<()> {
    let record = lock(prepared).state.net.clone();
    let Some(record) = record else {
        return Ok(());
    };
    context.pool.detach(&record).await?;
    Prepared::persist_change(prepared, |state| state.net = None)
}
