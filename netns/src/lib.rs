//! Network namespace workers: the only code of urunc-rs that touches a
//! sandbox's network namespace.
//!
//! A [`NetnsPool`] keeps one worker per sandbox namespace (keyed by the
//! namespace's device and inode). A worker is an OS thread named
//! `ns-<inode>` that enters its namespace once, when spawned, opens its
//! netlink socket there, and serves attach/detach/sweep requests from a
//! channel until it is retired; it never leaves and never serves another
//! namespace. Callers are async and never call setns themselves, so no
//! goroutine-style thread migration can run netlink in the wrong namespace.
//!
//! - [`NetnsPool::attach`] creates a container's tap (`tap<N>_urunc`) and the
//!   tc redirect between it and `eth0`, persisting a [`NetRecord`] first.
//! - [`NetnsPool::detach`] removes exactly what a record lists and verifies.
//! - [`NetnsPool::attach_in_mode`] with [`NetworkMode::StaticNat`] is
//!   urunc's static mode for Knative: tap 172.16.1.1/24, guest 172.16.1.2,
//!   forwarding and masquerade out of eth0, all recorded and all removed.
//! - [`NetnsPool::sweep`] removes every urunc tap and redirect (recovery).
//! - [`create_pinned`] makes a fresh namespace pinned by a bind mount (a container whose
//!   spec asks for a new one, before its VMM exists); [`remove_pinned`] releases it.

mod attach;
mod audit;
mod detach;
mod error;
mod identity;
mod nat_rules;
mod nsfs;
mod pinned;
mod pool;
mod program;
mod record;
mod request;
mod retirement;
mod rtnl;
mod setup;
mod static_nat;
mod sweep;
mod tap;
mod worker;

pub use audit::{netns_inode_of, thread_netns_audit, ThreadNetns};
pub use detach::Detached;
pub use error::{ErrorKind, Leftover, NetnsError};
pub use identity::{open_netns, NetnsIdentity};
pub use nat_rules::{STATIC_GUEST_IP, STATIC_PREFIX_LEN, STATIC_TAP_IP};
pub use nsfs::{kind_name as namespace_kind_name, open_namespace};
pub use pinned::{create_pinned, remove_pinned, NEW_NETNS_THREAD};
pub use pool::NetnsPool;
pub use record::{NetRecord, StaticNat, FILTER_PRIORITY};
pub use request::{
    AttachOutcome, AttachRequest, GuestAttachment, NetworkMode, PersistRecord, UPLINK,
};
pub use retirement::Retirement;
pub use rtnl::IngressFilter;
pub use sweep::SweepReport;
pub use tap::{is_urunc_tap_name, tap_name};
pub use worker::THREAD_NAME_PREFIX;
