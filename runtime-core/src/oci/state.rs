//! The state of a container (runtime-spec `runtime.md#state`), as hooks read it on stdin.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// runtime-spec: required once the container is created; a VMM has none before Start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Absolute path of the bundle.
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    #[serde(deserialize_with = "super::null_as_empty")]
    pub annotations: HashMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}
