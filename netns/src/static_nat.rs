//! urunc's static network mode, used for Knative's `user-container`.
//!
//! Knative's queue-proxy, in the same pod, must reach the user container at
//! a fixed address. urunc gives the tap `172.16.1.1/24`, the guest
//! `172.16.1.2`, turns on forwarding and masquerades the guest's traffic out
//! of eth0. Unlike urunc we record all of it and remove all of it on exit.

use std::net::Ipv4Addr;

use runtime_core::GuestNetwork;

use crate::attach::{
    create_tap, ensure_no_guest_network, persist_then_create, AttachOutcome, AttachRequest, UPLINK,
};
use crate::error::{Leftover, NetnsError, Result};
use crate::identity::NetnsIdentity;
use crate::program::{find_program, run_in_current_netns};
use crate::record::{NetRecord, StaticNat, FILTER_PRIORITY};
use crate::rtnl::Rtnl;
use crate::tap::{first_free_tap_name, format_mac, TapDevice};

/// The tap's address and the guest's gateway (urunc's constants).
pub const STATIC_TAP_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
/// The guest's address; Knative's queue-proxy is pointed at it.
pub const STATIC_GUEST_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 2);
pub const STATIC_PREFIX_LEN: u8 = 24;
const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";

pub(crate) async fn attach_static(
    rtnl: &Rtnl,
    identity: &NetnsIdentity,
    request: AttachRequest,
) -> Result<AttachOutcome> {
    let Some(uplink) = rtnl.link_by_name(UPLINK).await? else {
        return Ok(AttachOutcome::NoNetwork);
    };
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
    persist_then_create(rtnl, &record, request.persist, async {
        let tap_link = create_tap(rtnl, identity, &tap, uplink.mtu).await?;
        rtnl.add_ipv4(&tap_link, nat.tap_address, nat.prefix_len)
            .await?;
        if nat.enabled_forwarding {
            set_forwarding(identity, true)?;
        }
        iptables(identity, "-A", &nat.masquerade_rule)
    })
    .await?;
    let guest = GuestNetwork {
        tap: record.tap.clone(),
        mac: format_mac(uplink.mac.unwrap_or_default()),
        ipv4: STATIC_GUEST_IP,
        prefix_len: STATIC_PREFIX_LEN,
        gateway: Some(STATIC_TAP_IP),
        mtu: uplink.mtu,
    };
    Ok(AttachOutcome::Attached { record, guest })
}

/// Removes the static parts of a record (the tap goes with the common part).
pub(crate) fn remove(identity: &NetnsIdentity, nat: &StaticNat, problems: &mut Vec<Leftover>) {
    match masquerade_present(identity, nat) {
        Ok(true) => {
            if let Err(e) = iptables(identity, "-D", &nat.masquerade_rule) {
                problems.push(Leftover::RemovalFailed(e));
            }
        }
        Ok(false) => {}
        Err(e) => problems.push(Leftover::RemovalFailed(e)),
    }
    if nat.enabled_forwarding {
        if let Err(e) = set_forwarding(identity, false) {
            problems.push(Leftover::RemovalFailed(e));
        }
    }
}

/// What of the static parts the namespace still holds.
pub(crate) fn leftovers(identity: &NetnsIdentity, nat: &StaticNat) -> Result<Vec<Leftover>> {
    let mut found = Vec::new();
    if masquerade_present(identity, nat)? {
        found.push(Leftover::MasqueradeRule {
            rule: nat.masquerade_rule.clone(),
        });
    }
    if nat.enabled_forwarding && forwarding_enabled(identity)? {
        found.push(Leftover::Forwarding);
    }
    Ok(found)
}

fn masquerade_rule(uplink: &str) -> Vec<String> {
    let source = format!(
        "{}/{STATIC_PREFIX_LEN}",
        Ipv4Addr::from(u32::from(STATIC_TAP_IP) & !0xff)
    );
    ["-s", &source, "-o", uplink, "-j", "MASQUERADE"]
        .map(String::from)
        .to_vec()
}

fn masquerade_present(identity: &NetnsIdentity, nat: &StaticNat) -> Result<bool> {
    Ok(iptables_status(identity, "-C", &nat.masquerade_rule)?.success())
}

fn iptables(identity: &NetnsIdentity, action: &str, rule: &[String]) -> Result<()> {
    let output = iptables_status(identity, action, rule)?;
    if output.success() {
        Ok(())
    } else {
        Err(NetnsError::Iptables {
            path: identity.path.clone(),
            command: format!("iptables -t nat {action} POSTROUTING {}", rule.join(" ")),
            output: output.output.trim().to_string(),
        })
    }
}

fn iptables_status(
    identity: &NetnsIdentity,
    action: &str,
    rule: &[String],
) -> Result<crate::program::ProgramOutput> {
    let program = find_program("iptables").ok_or_else(|| NetnsError::Iptables {
        path: identity.path.clone(),
        command: "iptables".into(),
        output: "not installed (the static network mode needs it)".into(),
    })?;
    let mut args = vec!["-w", "5", "-t", "nat", action, "POSTROUTING"];
    args.extend(rule.iter().map(String::as_str));
    run_in_current_netns(&program, &args).map_err(|source| NetnsError::Io {
        what: "running iptables in netns",
        path: identity.path.clone(),
        source,
    })
}

fn forwarding_enabled(identity: &NetnsIdentity) -> Result<bool> {
    // /proc/sys/net resolves to the namespace of the calling thread: ours.
    std::fs::read_to_string(FORWARDING)
        .map(|v| v.trim() == "1")
        .map_err(|source| NetnsError::Io {
            what: "reading net.ipv4.ip_forward of netns",
            path: identity.path.clone(),
            source,
        })
}

fn set_forwarding(identity: &NetnsIdentity, on: bool) -> Result<()> {
    std::fs::write(FORWARDING, if on { "1" } else { "0" }).map_err(|source| NetnsError::Io {
        what: "writing net.ipv4.ip_forward of netns",
        path: identity.path.clone(),
        source,
    })
}
