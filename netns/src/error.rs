//! The one error type of the netns crate.

use std::path::PathBuf;

use nix::errno::Errno;

use crate::rtnl::IngressFilter;

/// Everything that can go wrong while serving a sandbox namespace.
///
/// Variants carry the path, device or container they are about, so the
/// message an operator reads names the field and the value.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("netns path {path:?} does not exist")]
    NotFound { path: PathBuf },

    #[error("{path:?} is not a {expected} namespace: {reason}")]
    NotANamespace {
        path: PathBuf,
        /// The kind the caller asked for (runtime-spec's name: "network", "ipc", ...).
        expected: &'static str,
        reason: String,
    },

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

    #[error(
        "netns {path:?}: teardown left {}: {}",
        leftovers.len(),
        leftovers.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Leftovers {
        path: PathBuf,
        leftovers: Vec<Leftover>,
    },

    #[error("netns {path:?}: tap {tap:?} vanished right after it was created")]
    TapVanished { path: PathBuf, tap: String },

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

/// One thing a teardown did not remove: a removal that failed, or what the namespace still
/// holds when it is read again afterwards.
#[derive(Debug, thiserror::Error)]
pub enum Leftover {
    #[error("{0}")]
    RemovalFailed(NetnsError),

    #[error("tap {name}")]
    Tap { name: String },

    #[error("filter on {device}: {filter}")]
    Filter {
        device: String,
        filter: IngressFilter,
    },

    #[error("{kind} qdisc on {device}")]
    Qdisc { device: String, kind: String },

    #[error("nat rule POSTROUTING {}", rule.join(" "))]
    MasqueradeRule { rule: Vec<String> },

    #[error("net.ipv4.ip_forward still 1")]
    Forwarding,
}

/// The kinds of failure a caller answers differently; each variant belongs to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request names something that is not a usable network namespace.
    BadInput,
    /// The namespace is valid, but what is already in it (another guest, no address) does not
    /// allow the request.
    Conflict,
    /// The namespace or the host failed us; what is left is reported.
    Failure,
}

impl NetnsError {
    /// The kind of this error. Exhaustive on purpose: a new variant must choose its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetnsError::NotFound { .. } | NetnsError::NotANamespace { .. } => ErrorKind::BadInput,
            NetnsError::AlreadyAttached { .. }
            | NetnsError::AlreadyRedirected { .. }
            | NetnsError::StaticInUse { .. }
            | NetnsError::NoIpv4 { .. } => ErrorKind::Conflict,
            NetnsError::Io { .. }
            | NetnsError::Enter { .. }
            | NetnsError::Iptables { .. }
            | NetnsError::Tap { .. }
            | NetnsError::Netlink { .. }
            | NetnsError::Persist { .. }
            | NetnsError::Leftovers { .. }
            | NetnsError::TapVanished { .. }
            | NetnsError::RollbackFailed { .. }
            | NetnsError::WorkerGone { .. }
            | NetnsError::Spawn { .. } => ErrorKind::Failure,
        }
    }

    /// The errno a netlink answer carried, if it was a kernel refusal.
    pub fn netlink_errno(source: &rtnetlink::Error) -> Option<Errno> {
        match source {
            rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| Errno::from_raw(-c.get())),
            _ => None,
        }
    }
}

pub type Result<T, E = NetnsError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> PathBuf {
        PathBuf::from("/run/netns/pod")
    }

    fn io() -> std::io::Error {
        std::io::Error::other("boom")
    }

    /// Every variant with the kind its case must have (`kind`'s match is exhaustive, so a new
    /// variant is a compile error there; its line here and the count below follow).
    fn every_variant() -> Vec<(NetnsError, ErrorKind)> {
        let leftover = || NetnsError::Leftovers {
            path: path(),
            leftovers: vec![Leftover::Tap {
                name: "tap0_urunc".into(),
            }],
        };
        vec![
            (NetnsError::NotFound { path: path() }, ErrorKind::BadInput),
            (
                NetnsError::NotANamespace {
                    path: path(),
                    expected: "network",
                    reason: "a regular file".into(),
                },
                ErrorKind::BadInput,
            ),
            (
                NetnsError::AlreadyAttached {
                    container_id: "c".into(),
                    path: path(),
                },
                ErrorKind::Conflict,
            ),
            (
                NetnsError::AlreadyRedirected {
                    path: path(),
                    device: "eth0".into(),
                    filter: "u32 pref 1".into(),
                },
                ErrorKind::Conflict,
            ),
            (
                NetnsError::StaticInUse {
                    path: path(),
                    address: std::net::Ipv4Addr::new(172, 16, 1, 1),
                },
                ErrorKind::Conflict,
            ),
            (
                NetnsError::NoIpv4 {
                    path: path(),
                    device: "eth0".into(),
                },
                ErrorKind::Conflict,
            ),
            (
                NetnsError::Io {
                    what: "reading",
                    path: path(),
                    source: io(),
                },
                ErrorKind::Failure,
            ),
            (
                NetnsError::Enter {
                    path: path(),
                    errno: Errno::EPERM,
                },
                ErrorKind::Failure,
            ),
            (
                NetnsError::Iptables {
                    path: path(),
                    command: "iptables -t nat -A POSTROUTING".into(),
                    output: "no chain".into(),
                },
                ErrorKind::Failure,
            ),
            (
                NetnsError::Tap {
                    path: path(),
                    tap: "tap0_urunc".into(),
                    step: "TUNSETIFF",
                    errno: Errno::EBUSY,
                },
                ErrorKind::Failure,
            ),
            (
                NetnsError::Netlink {
                    path: path(),
                    op: "link add".into(),
                    source: rtnetlink::Error::RequestFailed,
                },
                ErrorKind::Failure,
            ),
            (
                NetnsError::Persist {
                    container_id: "c".into(),
                    source: io(),
                },
                ErrorKind::Failure,
            ),
            (leftover(), ErrorKind::Failure),
            (
                NetnsError::TapVanished {
                    path: path(),
                    tap: "tap0_urunc".into(),
                },
                ErrorKind::Failure,
            ),
            (
                NetnsError::RollbackFailed {
                    cause: Box::new(NetnsError::NoIpv4 {
                        path: path(),
                        device: "eth0".into(),
                    }),
                    rollback: Box::new(leftover()),
                },
                ErrorKind::Failure,
            ),
            (NetnsError::WorkerGone { path: path() }, ErrorKind::Failure),
            (
                NetnsError::Spawn {
                    path: path(),
                    source: io(),
                },
                ErrorKind::Failure,
            ),
        ]
    }

    #[test]
    fn every_variant_has_the_kind_of_its_case() {
        let variants = every_variant();
        // One entry per variant: the count is that of the enum's variants.
        assert_eq!(variants.len(), 17);
        for (error, kind) in variants {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }

    #[test]
    fn leftovers_keep_each_item_and_name_it() {
        let error = NetnsError::Leftovers {
            path: path(),
            leftovers: vec![
                Leftover::Filter {
                    device: "eth0".into(),
                    filter: IngressFilter {
                        priority: 49152,
                        kind: "u32".into(),
                        redirects_to: Some(7),
                    },
                },
                Leftover::RemovalFailed(NetnsError::Iptables {
                    path: path(),
                    command: "iptables -t nat -D POSTROUTING".into(),
                    output: "busy".into(),
                }),
                Leftover::Forwarding,
            ],
        };
        let text = error.to_string();
        assert!(text.contains("teardown left 3"), "{text}");
        assert!(
            text.contains("filter on eth0: u32 pref 49152 mirred redirect to ifindex 7"),
            "{text}"
        );
        assert!(
            text.contains("busy") && text.contains("ip_forward"),
            "{text}"
        );
        let NetnsError::Leftovers { leftovers, .. } = error else {
            unreachable!("built above")
        };
        assert!(matches!(
            leftovers[1],
            Leftover::RemovalFailed(NetnsError::Iptables { .. })
        ));
    }
}
