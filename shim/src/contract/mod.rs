//! containerd's shim v2 contract: the `start` and `delete` actions and the serving daemon.

pub mod bootstrap;
pub mod delete;
pub mod group;
pub mod info;
pub mod peer;
mod runc_features;
pub mod runtime_options;
pub mod serve;
pub mod start;
mod wire;

use std::io::Write;

use containerd_shim_protos::protobuf::Message;

use crate::error::{Result, ShimError};

/// The annotation CRI sets on every container of a pod: containers sharing it share one shim.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// Environment variable through which `start` tells the daemon which fd is its bound listener.
pub const LISTENER_FD_ENV: &str = "URUNC_SHIM_LISTENER_FD";

/// The listener's fd number in the daemon.
pub const LISTENER_FD: i32 = 3;

/// containerd's environment variable carrying its ttrpc address (for events).
pub const TTRPC_ADDRESS_ENV: &str = "TTRPC_ADDRESS";

/// Environment variables through which `start` tells the daemon what it answered containerd:
/// the task API version and, from 2.3+'s bootstrap parameters, containerd's version. The
/// daemon logs both, so the log says what it was started for.
pub const TASK_API_ENV: &str = "URUNC_SHIM_TASK_API";
pub const CONTAINERD_VERSION_ENV: &str = "URUNC_SHIM_CONTAINERD_VERSION";

/// A `unix://` address as a filesystem path.
pub fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Writes `message` (named `what` in errors) to stdout, where containerd reads the answer of a
/// one-shot action (`-info`, `delete`).
fn answer_on_stdout(what: &'static str, message: &impl Message) -> Result<()> {
    let bytes = message
        .write_to_bytes()
        .map_err(|e| ShimError::encode(what, e))?;
    let mut stdout = std::io::stdout();
    stdout
        .write_all(&bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| ShimError::io(format!("write {what} to stdout"), e))
}
