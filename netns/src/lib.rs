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
//! - [`NetnsPool::sweep`] removes every urunc tap and redirect (recovery).

mod attach;
mod audit;
mod detach;
mod error;
mod identity;
mod pool;
mod record;
mod rtnl;
mod sweep;
mod tap;
mod worker;

pub use attach::{AttachOutcome, AttachRequest, PersistRecord, UPLINK};
pub use audit::{netns_inode_of, thread_netns_audit, ThreadNetns};
pub use error::NetnsError;
pub use identity::{open_netns, NetnsIdentity};
pub use pool::NetnsPool;
pub use record::{NetRecord, FILTER_PRIORITY};
pub use runtime_core::GuestNetwork;
pub use sweep::SweepReport;
pub use tap::{is_urunc_tap_name, tap_name};
pub use worker::THREAD_NAME_PREFIX;
