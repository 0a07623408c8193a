//! The top of config.json: what the shim reads of it.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::hooks::Hooks;
use super::linux::Linux;
use super::process::Process;

/// runtime-spec's `config.json` (1.x), the parts urunc-rs reads; every other field is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Spec {
    /// Handed on to hooks in their state.
    pub oci_version: String,
    pub root: Option<Root>,
    /// `None`: the VMM runs as root without capabilities.
    pub process: Option<Process>,
    pub hooks: Hooks,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub annotations: HashMap<String, String>,
    pub linux: Linux,
}

impl Spec {
    /// Parses a config.json. Absent fields read as Go's zero values, as runc reads them.
    pub fn from_json(bytes: &[u8]) -> Result<Spec, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Root {
    /// The container's root filesystem, relative to the bundle unless absolute.
    pub path: PathBuf,
}
