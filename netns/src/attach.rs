//! attach: wire a container's tap to the sandbox's eth0, with tc redirects or in the static
//! mode (`static_nat`).

use crate::error::{NetnsError, Result};
use crate::identity::NetnsIdentity;
use crate::record::{NetRecord, FILTER_PRIORITY};
use crate::request::{
    Announce, AttachOutcome, AttachRequest, GuestAttachment, NetworkMode, UPLINK,
};
use crate::rtnl::{Link, Rtnl};
use crate::setup::{create_tap, ensure_no_guest_network, persist_then_create};
use crate::static_nat::attach_static;
use crate::tap::{first_free_tap_name, format_mac, TapDevice};

/// Runs on the worker of `identity`'s namespace: a namespace without eth0 has no network to
/// give the guest, whatever the mode.
pub(crate) async fn attach(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    request: AttachRequest,
    mode: NetworkMode,
    announce: Announce,
) -> Result<AttachOutcome> {
    let Some(uplink) = rtnl.link_by_name(UPLINK).await? else {
        return Ok(AttachOutcome::NoNetwork);
    };
    match mode {
        NetworkMode::Redirect => attach_redirect(rtnl, identity, request, uplink, announce).await,
        NetworkMode::StaticNat => attach_static(rtnl, identity, request, uplink, announce).await,
    }
}

/// The redirect mode: the guest takes eth0's address, and tc moves every frame between eth0
/// and the tap.
async fn attach_redirect(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    request: AttachRequest,
    uplink: Link,
    announce: Announce,
) -> Result<AttachOutcome> {
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
    let guest = GuestAttachment {
        tap: record.tap.clone(),
        mac: format_mac(uplink.mac.unwrap_or_default()),
        ipv4,
        prefix_len,
        gateway,
        mtu: uplink.mtu,
    };
    let persist = (request.persist, announce, &guest);
    persist_then_create(rtnl, &record, persist, async {
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
    Ok(AttachOutcome::Attached { record, guest })
}
