//! The shim's one error type and its single mapping onto ttrpc status codes.
//!
//! Every fallible function of the shim returns [`ShimError`]; the Task service converts it to a
//! ttrpc status exactly once, in [`From<ShimError> for ttrpc::Error`], by variant (never by
//! looking at message text), so containerd sees a code that means what happened.

use std::io;
use std::path::PathBuf;

use containerd_shim_protos::ttrpc::{self, Code};

pub type Result<T, E = ShimError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A request or bundle field holds a value the shim refuses.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidArgument {
        field: String,
        value: String,
        reason: String,
    },

    #[error("container {id:?} not found")]
    NotFound { id: String },

    #[error("{process} of container {id:?} not found: {why}")]
    ProcessNotFound {
        id: String,
        process: crate::container::process_ref::ProcessRef,
        why: crate::container::process_ref::ProcessMissing,
    },

    #[error("container {id:?} already exists")]
    AlreadyExists { id: String },

    /// A Create in flight was cancelled (by a Kill or Delete of its id, or the shim's SIGTERM)
    /// and what it had made was torn down.
    #[error("Create of container {id:?} cancelled by {by}")]
    CreateCancelled {
        id: String,
        by: crate::service::CancelledBy,
    },

    /// A blocking step run off the reactor ended without a result (it panicked).
    #[error("{what}: {reason}")]
    BlockingStep { what: &'static str, reason: String },

    /// The request is valid but the container is not in a state that allows it.
    #[error("container {id:?}: {reason}")]
    FailedPrecondition { id: String, reason: String },

    /// An operation a unikernel (or this shim) cannot offer.
    #[error("{operation} is not supported: {reason}")]
    Unimplemented {
        operation: &'static str,
        reason: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::errno::Errno,
    },

    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("runc {args}: exit status {status}: {stderr}")]
    Runc {
        args: String,
        status: i32,
        stderr: String,
    },

    /// runc succeeded but printed something that is not what the command promises.
    #[error("runc {args}: unreadable output: {source}")]
    RuncOutput {
        args: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// The helper that builds the VMM's confined root (its mount namespace) failed; `report`
    /// is its own line naming the step and the path.
    #[error("build the VMM's confined root: {report}")]
    VmmRoot {
        report: String,
        #[source]
        source: io::Error,
    },

    #[error("urunc configuration: {0}")]
    Core(#[from] runtime_core::CoreError),

    #[error("network: {0}")]
    Netns(#[from] netns::NetnsError),

    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },

    /// The virtiofsd of a virtiofs rootfs did not come up, or did not go.
    #[error("virtiofsd {program} (pid {pid}): {reason}")]
    Virtiofsd {
        program: PathBuf,
        pid: i32,
        reason: String,
    },

    /// Several independent cleanup steps failed; each is reported, none is hidden.
    #[error("cleanup failed: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Cleanup(Vec<ShimError>),

    /// The ttrpc server that serves the Task API did not start.
    #[error("start the ttrpc server: {source}")]
    Serve {
        #[source]
        source: ttrpc::Error,
    },

    /// containerd's event service could not be reached.
    #[error("connect to containerd's events at {address}: {source}")]
    EventsConnect {
        address: String,
        #[source]
        source: ttrpc::Error,
    },

    /// A protobuf answer to containerd could not be encoded.
    #[error("encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
}

impl ShimError {
    pub fn process_not_found(
        id: &str,
        process: &crate::container::process_ref::ProcessRef,
        why: crate::container::process_ref::ProcessMissing,
    ) -> Self {
        ShimError::ProcessNotFound {
            id: id.to_string(),
            process: process.clone(),
            why,
        }
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        ShimError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn sys(context: impl Into<String>, source: nix::errno::Errno) -> Self {
        ShimError::Sys {
            context: context.into(),
            source,
        }
    }

    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ShimError::InvalidArgument {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub fn precondition(id: &str, reason: impl Into<String>) -> Self {
        ShimError::FailedPrecondition {
            id: id.to_string(),
            reason: reason.into(),
        }
    }

    /// An answer to containerd (`what`) that could not be encoded.
    pub fn encode(what: &'static str, error: impl std::fmt::Display) -> Self {
        ShimError::Encode {
            what,
            reason: error.to_string(),
        }
    }

    /// Turns a list of cleanup failures into one error, or `Ok` when the list is empty.
    pub fn from_cleanup(errors: Vec<ShimError>) -> Result<()> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.into_iter().next().expect("length checked")),
            _ => Err(ShimError::Cleanup(errors)),
        }
    }

    fn code(&self) -> Code {
        match self {
            ShimError::Core(runtime_core::CoreError::NeedsKvm { .. }) => Code::FAILED_PRECONDITION,
            ShimError::InvalidArgument { .. } | ShimError::Core(_) => Code::INVALID_ARGUMENT,
            ShimError::Netns(error) => match error.kind() {
                netns::ErrorKind::BadInput => Code::INVALID_ARGUMENT,
                netns::ErrorKind::Conflict => Code::FAILED_PRECONDITION,
                netns::ErrorKind::Failure => Code::INTERNAL,
            },
            ShimError::NotFound { .. } | ShimError::ProcessNotFound { .. } => Code::NOT_FOUND,
            ShimError::AlreadyExists { .. } => Code::ALREADY_EXISTS,
            ShimError::CreateCancelled { .. } => Code::CANCELLED,
            ShimError::FailedPrecondition { .. } => Code::FAILED_PRECONDITION,
            ShimError::Unimplemented { .. } => Code::UNIMPLEMENTED,
            ShimError::Io { .. }
            | ShimError::Sys { .. }
            | ShimError::Json { .. }
            | ShimError::Runc { .. }
            | ShimError::RuncOutput { .. }
            | ShimError::Cgroup { .. }
            | ShimError::Virtiofsd { .. }
            | ShimError::VmmRoot { .. }
            | ShimError::Cleanup(_)
            | ShimError::BlockingStep { .. }
            | ShimError::Serve { .. }
            | ShimError::EventsConnect { .. }
            | ShimError::Encode { .. } => Code::INTERNAL,
        }
    }
}

impl From<ShimError> for ttrpc::Error {
    fn from(error: ShimError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(error.code(), error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(error: ShimError) -> Code {
        match ttrpc::Error::from(error) {
            ttrpc::Error::RpcStatus(status) => status.code(),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn variants_map_to_the_codes_containerd_understands() {
        assert_eq!(
            code_of(ShimError::NotFound { id: "c".into() }),
            Code::NOT_FOUND
        );
        assert_eq!(
            code_of(ShimError::invalid("f", "v", "r")),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code_of(ShimError::precondition("c", "running")),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(ShimError::Unimplemented {
                operation: "Exec",
                reason: "unikernel".into()
            }),
            Code::UNIMPLEMENTED
        );
        assert_eq!(
            code_of(ShimError::AlreadyExists { id: "c".into() }),
            Code::ALREADY_EXISTS
        );
        assert_eq!(
            code_of(ShimError::CreateCancelled {
                id: "c".into(),
                by: crate::service::CancelledBy::Delete
            }),
            Code::CANCELLED
        );
        let not_a_netns = netns::NetnsError::NotANamespace {
            path: "/etc/hostname".into(),
            expected: "network",
            reason: "regular file".into(),
        };
        assert_eq!(
            code_of(ShimError::Netns(not_a_netns)),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code_of(ShimError::io("x", std::io::Error::other("y"))),
            Code::INTERNAL
        );
    }

    #[test]
    fn each_kind_of_network_error_has_one_code() {
        // netns sorts every variant into a kind (its own test covers each one); this is the
        // kind's code: the three "another guest holds this pod's network" cases answer alike.
        let path = std::path::PathBuf::from("/run/netns/pod");
        let conflicts = [
            netns::NetnsError::StaticInUse {
                path: path.clone(),
                address: std::net::Ipv4Addr::new(172, 16, 1, 1),
            },
            netns::NetnsError::AlreadyAttached {
                container_id: "c".into(),
                path: path.clone(),
            },
            netns::NetnsError::AlreadyRedirected {
                path: path.clone(),
                device: "eth0".into(),
                filter: "u32 pref 1".into(),
            },
        ];
        for conflict in conflicts {
            assert_eq!(conflict.kind(), netns::ErrorKind::Conflict);
            assert_eq!(
                code_of(ShimError::Netns(conflict)),
                Code::FAILED_PRECONDITION
            );
        }
        let bad_input = netns::NetnsError::NotFound { path: path.clone() };
        assert_eq!(code_of(ShimError::Netns(bad_input)), Code::INVALID_ARGUMENT);
        let failure = netns::NetnsError::WorkerGone { path };
        assert_eq!(failure.kind(), netns::ErrorKind::Failure);
        assert_eq!(code_of(ShimError::Netns(failure)), Code::INTERNAL);
    }

    #[test]
    fn messages_name_the_field_and_the_value() {
        let message =
            ShimError::invalid("com.urunc.unikernel.binary", "/../x", "escapes").to_string();
        assert!(message.contains("com.urunc.unikernel.binary") && message.contains("/../x"));
    }
}
