//! The error type of the harness modules (private containerd, guests, images).

use std::path::PathBuf;

/// Everything the harness can fail at, naming the command, path or value.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A host program could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },

    /// A host program ran and failed.
    #[error("{command} failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },

    /// A file or directory operation failed.
    #[error("{action} {path:?}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// Something the harness needs is not on this machine.
    #[error("{what} not found: {hint}")]
    Missing { what: String, hint: String },

    /// A wait ran out of time.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },

    /// A value read from the host or given by a test is unusable.
    #[error("{field} = {value:?} is invalid: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },

    /// Packing an image failed.
    #[error(transparent)]
    Pack(#[from] urunc_pack::PackError),

    /// Several cleanup steps failed; each is listed.
    #[error("cleanup failed: {}", .0.join("; "))]
    Cleanup(Vec<String>),
}

impl HarnessError {
    /// An `Io` error for `action` on `path`, for `map_err`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| HarnessError::Io {
            action,
            path,
            source,
        }
    }
}

/// The harness's result type.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
