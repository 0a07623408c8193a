//! Which containers one serving shim serves: its group, the key of its socket.
//!
//! - `pod` (the default): the containers of one CRI pod (`io.kubernetes.cri.sandbox-id`), or a
//!   container on its own outside CRI. A shim crash takes one pod's containers with it.
//! - `node` (`URUNC_RS_SHIM_GROUP=node` in containerd's environment): every container of a
//!   containerd namespace, one netns worker per pod namespace in its pool. One shim's memory
//!   for the whole node; a crash of that shim ends every container of the namespace (each is
//!   then torn down from its persisted state by containerd's `delete`, as in `pod` mode).

use std::fs;
use std::path::Path;

use super::SANDBOX_ID_ANNOTATION;
use crate::error::{Result, ShimError};

/// The variable, in containerd's environment, that chooses the group.
pub const SHIM_GROUP_ENV: &str = "URUNC_RS_SHIM_GROUP";
/// The group key of the node-wide shim (the socket is also keyed by containerd's address and
/// namespace, so one node-wide shim serves one containerd namespace).
pub const NODE_GROUP_KEY: &str = "urunc-rs-node-wide";

/// See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimGroup {
    Pod,
    Node,
}

impl ShimGroup {
    /// From the variable's value (`None` when unset).
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value {
            None | Some("") | Some("pod") => Ok(ShimGroup::Pod),
            Some("node") => Ok(ShimGroup::Node),
            Some(other) => Err(ShimError::invalid(
                SHIM_GROUP_ENV,
                other,
                "expected pod (one shim per pod, the default) or node (one shim per containerd namespace)",
            )),
        }
    }

    /// From containerd's environment, which `start` inherits.
    pub fn from_env() -> Result<Self> {
        Self::parse(std::env::var(SHIM_GROUP_ENV).ok().as_deref())
    }

    /// The group key of container `id` whose spec is `config`.
    pub fn key(self, config: &Path, id: &str) -> Result<String> {
        match self {
            ShimGroup::Node => Ok(NODE_GROUP_KEY.to_string()),
            ShimGroup::Pod => pod_of(config, id),
        }
    }
}

/// CRI's sandbox id when present, else the container's own id.
fn pod_of(config: &Path, id: &str) -> Result<String> {
    let bytes = match fs::read(config) {
        Ok(bytes) => bytes,
        // Not every caller gives a bundle with a config (containerd always does).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(id.to_string()),
        Err(e) => return Err(ShimError::io(format!("read {}", config.display()), e)),
    };
    let spec: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| ShimError::Json {
            path: config.to_path_buf(),
            source,
        })?;
    Ok(spec
        .get("annotations")
        .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or(id)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_is_the_default_and_a_typo_is_refused_by_name() {
        assert_eq!(ShimGroup::parse(None).unwrap(), ShimGroup::Pod);
        assert_eq!(ShimGroup::parse(Some("pod")).unwrap(), ShimGroup::Pod);
        assert_eq!(ShimGroup::parse(Some("node")).unwrap(), ShimGroup::Node);
        let error = ShimGroup::parse(Some("nodes")).unwrap_err().to_string();
        assert!(
            error.contains(SHIM_GROUP_ENV) && error.contains("nodes"),
            "{error}"
        );
    }

    #[test]
    fn pods_group_by_sandbox_id_and_the_node_groups_everything() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            format!(r#"{{"annotations":{{"{SANDBOX_ID_ANNOTATION}":"pod-1"}}}}"#),
        )
        .unwrap();
        assert_eq!(ShimGroup::Pod.key(&config, "c1").unwrap(), "pod-1");
        let bare = dir.path().join("missing.json");
        assert_eq!(ShimGroup::Pod.key(&bare, "c2").unwrap(), "c2");
        assert_eq!(ShimGroup::Node.key(&config, "c1").unwrap(), NODE_GROUP_KEY);
        assert_eq!(ShimGroup::Node.key(&bare, "c2").unwrap(), NODE_GROUP_KEY);
    }
}
