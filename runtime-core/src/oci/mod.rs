//! The OCI runtime-spec (1.x) `config.json` and hook state, as plain serde types: only the
//! fields urunc-rs reads, with the spec's camelCase names.
//!
//! Why not the `oci-spec` crate: its `Spec` validates `process.execCPUAffinity` with a regular
//! expression, which links the whole `regex` engine, and derives code for every OCI type; the
//! shim is a daemon per pod whose resident memory follows its binary size.
//!
//! How a config.json is read, so that every config.json containerd or CRI writes loads (the
//! shim reads it for every container, also for those runc runs):
//! * fields not listed here are ignored;
//! * an absent field reads as Go's zero value (empty, 0, `None`), as runc reads it, and so does
//!   a `null` list or map (Go writes a nil one so when its field lacks `omitempty`);
//! * a name from one of runtime-spec's lists (a namespace type, a seccomp action...) that the
//!   list does not have is kept as `Unknown(name)`; the code acting on it refuses it, naming
//!   the field and the value;
//! * a value of the wrong JSON type (a string for a uid) fails the load.

mod hooks;
mod linux;
mod names;
mod process;
mod seccomp;
mod spec;
mod state;

#[cfg(test)]
mod tests;

pub use hooks::{Hook, Hooks};
pub use linux::{Cpu, Linux, Memory, Namespace, NamespaceType, Resources};
pub use process::{
    capability_number, Capabilities, Process, Rlimit, RlimitType, User, CAPABILITY_NAMES,
};
pub use seccomp::{
    Seccomp, SeccompAction, SeccompArch, SeccompArg, SeccompFlag, SeccompOperator, Syscall,
};
pub use spec::{Root, Spec};
pub use state::{State, Status};

/// A list or map that Go wrote as `null` (nil) reads as empty, as Go reads it back.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize as _;
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}
