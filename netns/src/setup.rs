//! The steps both attach modes share: refusing a second guest, persisting before creating
//! (and rolling back a half-made attach), creating the tap.

use crate::detach::teardown;
use crate::error::{NetnsError, Result};
use crate::identity::NetnsIdentity;
use crate::nat_rules::STATIC_TAP_IP;
use crate::record::{NetRecord, FILTER_PRIORITY};
use crate::request::{Announce, GuestAttachment, PersistRecord};
use crate::rtnl::{Link, Rtnl};
use crate::tap::TapDevice;

/// One pod IP cannot serve two guests: refuse when eth0 is already
/// redirected (dynamic mode) or the static network is in use.
pub(crate) async fn ensure_no_guest_network(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    uplink: &Link,
) -> Result<()> {
    if let Some(redirect) = rtnl
        .ingress_filters(uplink)
        .await?
        .into_iter()
        .find(|f| f.redirects_to.is_some() || f.priority == FILTER_PRIORITY)
    {
        return Err(NetnsError::AlreadyRedirected {
            path: identity.path.clone(),
            device: uplink.name.clone(),
            filter: redirect.to_string(),
        });
    }
    if rtnl.has_ipv4(STATIC_TAP_IP).await? {
        return Err(NetnsError::StaticInUse {
            path: identity.path.clone(),
            address: STATIC_TAP_IP,
        });
    }
    Ok(())
}

/// Announces `guest` (the attach's caller may plan with it from here on: nothing in it
/// depends on what is still to be made), persists `record` (invariant 3), then runs
/// `create`; when creating fails halfway, removes whatever of the record exists before
/// returning the error.
pub(crate) async fn persist_then_create(
    rtnl: &Rtnl,
    record: &NetRecord,
    (persist, announce, guest): (PersistRecord, Announce, &GuestAttachment),
    create: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    if let Some(announce) = announce {
        // The caller may have stopped listening; the attach's outcome still reaches it.
        let _ = announce.send(guest.clone());
    }
    persist(record).map_err(|source| NetnsError::Persist {
        container_id: record.container_id.clone(),
        source,
    })?;
    let Err(cause) = create.await else {
        return Ok(());
    };
    Err(match teardown(rtnl, record).await {
        Ok(_) => cause,
        Err(rollback) => NetnsError::RollbackFailed {
            cause: Box::new(cause),
            rollback: Box::new(rollback),
        },
    })
}

/// Creates the tap and brings it up with the uplink's MTU.
pub(crate) async fn create_tap(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    tap: &TapDevice,
    mtu: u32,
) -> Result<Link> {
    tap.create().map_err(|(step, errno)| NetnsError::Tap {
        path: identity.path.clone(),
        tap: tap.name.clone(),
        step,
        errno,
    })?;
    let link = rtnl
        .link_by_name(&tap.name)
        .await?
        .ok_or_else(|| NetnsError::TapVanished {
            path: identity.path.clone(),
            tap: tap.name.clone(),
        })?;
    rtnl.set_mtu_and_up(&link, mtu).await?;
    Ok(link)
}
