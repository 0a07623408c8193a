//! The host side of urunc's static network mode: its addresses, the masquerade rule and
//! forwarding, set up for an attach and removed (and checked) by a detach. Everything here runs
//! on the namespace's worker thread.

use std::net::Ipv4Addr;

use crate::error::{Leftover, NetnsError, Result};
use crate::identity::NetnsIdentity;
use crate::program::{find_program, run_in_current_netns};
use crate::record::StaticNat;

/// The tap's address and the guest's gateway (urunc's constants).
pub const STATIC_TAP_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 1);
/// The guest's address; Knative's queue-proxy is pointed at it.
pub const STATIC_GUEST_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 2);
pub const STATIC_PREFIX_LEN: u8 = 24;
const FORWARDING: &str = "/proc/sys/net/ipv4/ip_forward";

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

pub(crate) fn masquerade_rule(uplink: &str) -> Vec<String> {
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

pub(crate) fn iptables(identity: &NetnsIdentity, action: &str, rule: &[String]) -> Result<()> {
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

pub(crate) fn forwarding_enabled(identity: &NetnsIdentity) -> Result<bool> {
    // /proc/sys/net resolves to the namespace of the calling thread: ours.
    std::fs::read_to_string(FORWARDING)
        .map(|v| v.trim() == "1")
        .map_err(|source| NetnsError::Io {
            what: "reading net.ipv4.ip_forward of netns",
            path: identity.path.clone(),
            source,
        })
}

pub(crate) fn set_forwarding(identity: &NetnsIdentity, on: bool) -> Result<()> {
    std::fs::write(FORWARDING, if on { "1" } else { "0" }).map_err(|source| NetnsError::Io {
        what: "writing net.ipv4.ip_forward of netns",
        path: identity.path.clone(),
        source,
    })
}
