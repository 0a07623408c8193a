//! What an attach creates, written down before it is created (invariant 3).

use serde::{Deserialize, Serialize};

use crate::identity::NetnsIdentity;

/// The tc priority of our redirect filters. A fixed, unusual value so that our
/// filters can be told from a CNI's and removed exactly (deleting by priority
/// removes every filter of that priority on the hook).
pub const FILTER_PRIORITY: u16 = 0x7572; // "ur"

/// Everything one container's attach creates in one sandbox namespace.
///
/// It is persisted by the shim before anything exists, so a later process
/// (`containerd-shim-urunc-v2 delete` after a crash) can finish the detach
/// from disk alone. Detach treats each item as "maybe created": an item that
/// is already gone is fine, an item that survives removal is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRecord {
    pub container_id: String,
    pub netns: NetnsIdentity,
    /// The tap device (`tap<N>_urunc`); removing it removes its qdisc and filter.
    pub tap: String,
    /// The sandbox interface whose traffic is redirected (eth0).
    pub uplink: String,
    /// Whether the ingress qdisc on the uplink is ours (absent before attach).
    /// When a CNI already had an ingress or clsact qdisc there, we leave it.
    pub uplink_qdisc_added: bool,
    /// The priority of our redirect filter on the uplink's ingress hook.
    pub filter_priority: u16,
    /// Set in urunc's static mode (Knative): no redirect, the guest is routed
    /// and masqueraded through the uplink instead.
    #[serde(default)]
    pub static_nat: Option<StaticNat>,
}

/// What urunc's static network mode adds besides the tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticNat {
    /// The tap's own address (the guest's gateway), `172.16.1.1`.
    pub tap_address: std::net::Ipv4Addr,
    pub prefix_len: u8,
    /// The nat-table POSTROUTING rule we append, as iptables arguments
    /// after `-t nat -A|-C|-D POSTROUTING`.
    pub masquerade_rule: Vec<String>,
    /// Whether we switched `net.ipv4.ip_forward` on (and so switch it off).
    pub enabled_forwarding: bool,
}
