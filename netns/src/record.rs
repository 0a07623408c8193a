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
}
