//! The one error type of runtime-core. Every variant carries the field it is
//! about and the offending value, so an operator reading a Create failure in
//! containerd's log knows which annotation or spec entry to fix.

/// Everything runtime-core can refuse.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A value that is present but not acceptable.
    #[error("{field}={value:?} is invalid: {reason}")]
    InvalidValue {
        field: String,
        value: String,
        reason: String,
    },
    /// A value announced as base64 (or read from a source where urunc requires
    /// base64) that does not decode.
    #[error("{field}={value:?} is not valid base64: {reason}")]
    InvalidBase64 {
        field: String,
        value: String,
        reason: String,
    },
    /// A required urunc key is absent although other urunc keys are present.
    #[error("{field} is missing (value \"\"): a unikernel configuration needs it")]
    MissingField { field: String },
    /// `unikernelType` names a kind urunc does not know.
    #[error("{field}={value:?} is not a known unikernel type (expected one of: linux, unikraft, rumprun, mirage, mewz, hermit, freebsd)")]
    UnknownUnikernelType { field: String, value: String },
    /// `hypervisor` names a VMM urunc does not know.
    #[error("{field}={value:?} is not a known hypervisor (expected one of: qemu, firecracker, hvt, spt, cloud-hypervisor)")]
    UnknownHypervisor { field: String, value: String },
    /// A path from the configuration that would leave the container rootfs.
    #[error("{field}={value:?} escapes the container rootfs: {reason}")]
    PathEscapesRootfs {
        field: String,
        value: String,
        reason: String,
    },
    /// `/urunc.json` is not the JSON object urunc writes.
    #[error("{field}={value:?} is not a valid urunc.json: {reason}")]
    InvalidUruncJson {
        field: String,
        value: String,
        reason: String,
    },
    /// The unikernel kind cannot run on the chosen VMM (see `supported_pairs`).
    #[error("com.urunc.unikernel.unikernelType={unikernel_type:?} cannot run on com.urunc.unikernel.hypervisor={hypervisor:?}: {reason}")]
    UnsupportedPair {
        unikernel_type: String,
        hypervisor: String,
        reason: String,
    },
    /// A VMM without a TCG mode (firecracker, cloud-hypervisor, solo5-hvt) while KVM is not
    /// usable or TCG is forced.
    #[error(
        "com.urunc.unikernel.hypervisor={hypervisor:?} needs KVM and has no TCG mode: {reason}"
    )]
    NeedsKvm { hypervisor: String, reason: String },
    /// A key of urunc's node configuration file with a value this runtime refuses.
    #[error("{path}: {key}={value} is invalid: {reason}")]
    InvalidNodeConfig {
        path: String,
        key: String,
        value: String,
        reason: String,
    },
    /// A number outside the range a VMM can honour.
    #[error("{field}={value} is out of range: {reason}")]
    OutOfRange {
        field: String,
        value: i128,
        reason: String,
    },
}

impl CoreError {
    /// Shorthand for the most common refusal.
    pub(crate) fn invalid(field: &str, value: &str, reason: impl Into<String>) -> Self {
        CoreError::InvalidValue {
            field: field.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}
