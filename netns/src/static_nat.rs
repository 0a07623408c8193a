//! urunc's static network mode, used for Knative's `user-container`.
//!
//! Knative's queue-proxy, in the same pod, must reach the user container at
//! a fixed address. urunc gives the tap `172.16.1.1/24`, the guest
//! `172.16.1.2`, turns on forwarding and masquerades the guest's traffic out
//! of eth0. Unlike urunc we record all of it and remove all of it on exit.

use crate::error::Result;
use crate::identity::NetnsIdentity;
use crate::nat_rules::{
    forwarding_enabled, iptables, masquerade_rule, set_forwarding, STATIC_GUEST_IP,
    STATIC_PREFIX_LEN, STATIC_TAP_IP,
};
use crate::record::{NetRecord, StaticNat, FILTER_PRIORITY};
use crate::request::{Announce, AttachOutcome, AttachRequest, GuestAttachment};
use crate::rtnl::{Link, Rtnl};
use crate::setup::{create_tap, ensure_no_guest_network, persist_then_create};
use crate::tap::{first_free_tap_name, format_mac, TapDevice};

/// Runs on the worker of `identity`'s namespace (see `attach`): the static mode's attach to
/// eth0 (`uplink`).
pub(crate) async fn attach_static(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    request: AttachRequest,
    uplink: Link,
    announce: Announce,
) -> Result<AttachOutcome> {
    ensure_no_guest_network(rtnl, identity, &uplink).await?;
    let links = rtnl.links().await?;
    let nat = StaticNat {
        tap_address: STATIC_TAP_IP,
        prefix_len: STATIC_PREFIX_LEN,
        masquerade_rule: masquerade_rule(&uplink.name),
        enabled_forwarding: !forwarding_enabled(identity)?,
    };
    let record = NetRecord {
        container_id: request.container_id.clone(),
        netns: identity.clone(),
        tap: first_free_tap_name(links.iter().map(|l| l.name.as_str())),
        uplink: uplink.name.clone(),
        uplink_qdisc_added: false,
        filter_priority: FILTER_PRIORITY,
        static_nat: Some(nat.clone()),
    };
    let tap = TapDevice {
        name: record.tap.clone(),
        owner_uid: request.owner_uid,
        owner_gid: request.owner_gid,
    };
    let guest = GuestAttachment {
        tap: record.tap.clone(),
        mac: format_mac(uplink.mac.unwrap_or_default()),
        ipv4: STATIC_GUEST_IP,
        prefix_len: STATIC_PREFIX_LEN,
        gateway: Some(STATIC_TAP_IP),
        mtu: uplink.mtu,
    };
    let persist = (request.persist, announce, &guest);
    persist_then_create(rtnl, &record, persist, async {
        let tap_link = create_tap(rtnl, identity, &tap, uplink.mtu).await?;
        rtnl.add_ipv4(&tap_link, nat.tap_address, nat.prefix_len)
            .await?;
        if nat.enabled_forwarding {
            set_forwarding(identity, true)?;
        }
        iptables(identity, "-A", &nat.masquerade_rule)
    })
    .await?;
    Ok(AttachOutcome::Attached { record, guest })
}
