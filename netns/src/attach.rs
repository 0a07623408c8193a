//! attach: wire a container's tap to the sandbox's eth0 with tc redirects.

use runtime_core::GuestNetwork;

use crate::detach::teardown;
use crate::error::{NetnsError, Result};
use crate::identity::NetnsIdentity;
use crate::record::{NetRecord, FILTER_PRIORITY};
use crate::rtnl::{Link, Rtnl};
use crate::static_nat::STATIC_TAP_IP;
use crate::tap::{first_free_tap_name, format_mac, TapDevice};

/// The interface a CNI gives a pod; its traffic becomes the guest's.
pub const UPLINK: &str = "eth0";

/// Persists a record before anything in it exists (invariant 3). It runs on
/// the worker thread; an error aborts the attach with nothing created.
pub type PersistRecord = Box<dyn FnOnce(&NetRecord) -> std::io::Result<()> + Send>;

/// What a container asks of its sandbox's network.
pub struct AttachRequest {
    pub container_id: String,
    /// Owner of the tap, so the VMM can open it without privilege.
    pub owner_uid: u32,
    pub owner_gid: u32,
    pub persist: PersistRecord,
}

impl std::fmt::Debug for AttachRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachRequest")
            .field("container_id", &self.container_id)
            .field("owner_uid", &self.owner_uid)
            .field("owner_gid", &self.owner_gid)
            .finish_non_exhaustive()
    }
}

/// How the guest gets the pod's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// urunc's dynamic mode: the guest takes over eth0's address; all of
    /// eth0's traffic is redirected to the tap and back (tc mirred).
    #[default]
    Redirect,
    /// urunc's static mode (Knative `user-container`): the guest is
    /// 172.16.1.2 behind the tap, masqueraded out of eth0.
    StaticNat,
}

/// The result of an attach.
// Made once per container and moved straight into its state: boxing the
// large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachOutcome {
    /// The tap exists and is redirected; `guest` is what the VMM plan needs.
    Attached {
        record: NetRecord,
        guest: GuestNetwork,
    },
    /// The namespace has no eth0 (a plain `ctr run`): the guest runs offline.
    NoNetwork,
}

/// Runs on the worker of `identity`'s namespace.
pub(crate) async fn attach(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    request: AttachRequest,
) -> Result<AttachOutcome> {
    let Some(uplink) = rtnl.link_by_name(UPLINK).await? else {
        return Ok(AttachOutcome::NoNetwork);
    };
    let (ipv4, prefix_len) = rtnl
        .ipv4_of(&uplink)
        .await?
        .ok_or_else(|| NetnsError::NoIpv4 {
            path: identity.path.clone(),
            device: uplink.name.clone(),
        })?;
    let gateway = rtnl.default_gateway().await?;
    ensure_no_guest_network(rtnl, identity, &uplink).await?;
    let uplink_has_ingress = rtnl.ingress_qdisc_kind(&uplink).await?.is_some();
    let links = rtnl.links().await?;
    let tap_name = first_free_tap_name(links.iter().map(|l| l.name.as_str()));

    let record = NetRecord {
        container_id: request.container_id.clone(),
        netns: identity.clone(),
        tap: tap_name.clone(),
        uplink: uplink.name.clone(),
        uplink_qdisc_added: !uplink_has_ingress,
        filter_priority: FILTER_PRIORITY,
        static_nat: None,
    };
    let tap = TapDevice {
        name: tap_name,
        owner_uid: request.owner_uid,
        owner_gid: request.owner_gid,
    };
    persist_then_create(rtnl, &record, request.persist, async {
        let tap_link = create_tap(rtnl, identity, &tap, uplink.mtu).await?;
        rtnl.add_ingress_qdisc(&tap_link).await?;
        if record.uplink_qdisc_added {
            rtnl.add_ingress_qdisc(&uplink).await?;
        }
        rtnl.add_redirect_filter(&tap_link, &uplink, record.filter_priority)
            .await?;
        rtnl.add_redirect_filter(&uplink, &tap_link, record.filter_priority)
            .await
    })
    .await?;
    let guest = GuestNetwork {
        tap: record.tap.clone(),
        mac: format_mac(uplink.mac.unwrap_or_default()),
        ipv4,
        prefix_len,
        gateway,
        mtu: uplink.mtu,
    };
    Ok(AttachOutcome::Attached { record, guest })
}

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

/// Persists `record` (invariant 3), then runs `create`; when creating fails
/// halfway, removes whatever of the record exists before returning the error.
pub(crate) async fn persist_then_create(
    rtnl: &Rtnl,
    record: &NetRecord,
    persist: PersistRecord,
    create: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    persist(record).map_err(|source| NetnsError::Persist {
        container_id: record.container_id.clone(),
        source,
    })?;
    let Err(cause) = create.await else {
        return Ok(());
    };
    Err(match teardown(rtnl, record).await {
        Ok(()) => cause,
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
