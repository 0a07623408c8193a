//! The one error type of the netns crate.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while serving a sandbox namespace.
///
/// Variants carry the path, device or container they are about, so the
/// message an operator reads names the field and the value.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("netns path {path:?} does not exist")]
    NotFound { path: PathBuf },

    #[error("netns path {path:?} is not a network namespace: {reason}")]
    NotANetns { path: PathBuf, reason: String },

    #[error("{what} {path:?}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("entering network namespace {path:?} failed: {errno}")]
    Enter { path: PathBuf, errno: Errno },

    #[error("container {container_id:?} is already attached in netns {path:?}")]
    AlreadyAttached { container_id: String, path: PathBuf },

    #[error(
        "netns {path:?}: {device} is already redirected to a guest (filter {filter}); \
         one pod IP cannot serve two unikernels"
    )]
    AlreadyRedirected {
        path: PathBuf,
        device: String,
        filter: String,
    },

    #[error(
        "netns {path:?}: the static network ({address}) is already in use by another unikernel"
    )]
    StaticInUse {
        path: PathBuf,
        address: std::net::Ipv4Addr,
    },

    #[error("netns {path:?}: {command} failed: {output}")]
    Iptables {
        path: PathBuf,
        command: String,
        output: String,
    },

    #[error("netns {path:?}: {device} has no IPv4 address to give the guest")]
    NoIpv4 { path: PathBuf, device: String },

    #[error("netns {path:?}: creating tap {tap:?} failed at {step}: {errno}")]
    Tap {
        path: PathBuf,
        tap: String,
        step: &'static str,
        errno: Errno,
    },

    #[error("netns {path:?}: {op} failed: {source}")]
    Netlink {
        path: PathBuf,
        op: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("persisting the network record of container {container_id:?} failed: {source}")]
    Persist {
        container_id: String,
        #[source]
        source: std::io::Error,
    },

    #[error("netns {path:?}: teardown left {}: {}", leftovers.len(), leftovers.join("; "))]
    Leftovers {
        path: PathBuf,
        leftovers: Vec<String>,
    },

    #[error("{cause}; rolling back also failed: {rollback}")]
    RollbackFailed {
        cause: Box<NetnsError>,
        rollback: Box<NetnsError>,
    },

    #[error("the worker of netns {path:?} stopped before answering")]
    WorkerGone { path: PathBuf },

    #[error("spawning the worker thread for netns {path:?} failed: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NetnsError {
    /// The errno a netlink answer carried, if it was a kernel refusal.
    pub fn netlink_errno(source: &rtnetlink::Error) -> Option<Errno> {
        match source {
            rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| Errno::from_raw(-c.get())),
            _ => None,
        }
    }
}

pub type Result<T, E = NetnsError> = std::result::Result<T, E>;
