//! Loads urunc's node configuration file (`/etc/urunc/config.toml`; runtime-core parses it).
//!
//! `URUNC_RS_CONFIG` names another file; [`load_from`] takes a path from elsewhere (containerd
//! 2.x runtime options' `ConfigPath`). A missing file means urunc's defaults; an unreadable or
//! invalid one fails the Create that needed it, naming the key and the value.

use std::path::{Path, PathBuf};

use runtime_core::NodeConfig;

use crate::error::{Result, ShimError};

/// Names the node configuration file instead of `/etc/urunc/config.toml`.
pub const CONFIG_ENV: &str = "URUNC_RS_CONFIG";

/// The file this shim reads: `URUNC_RS_CONFIG`, else urunc's path.
pub fn path() -> PathBuf {
    std::env::var_os(CONFIG_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(runtime_core::NODE_CONFIG_PATH))
}

/// Where a container's node configuration comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NodeConfigSource {
    /// The node's file ([`path`]); urunc's defaults when it does not exist.
    #[default]
    Node,
    /// A file the runtime options name (`ConfigPath`): it must exist.
    File(PathBuf),
    /// The runtime options' `ConfigBody`: CRI's `options` table for the runtime, as TOML.
    Inline(String),
}

/// [`load_from`] the file [`path`] names.
pub fn load() -> Result<NodeConfig> {
    load_from(&path())
}

/// The node configuration from `source`.
pub fn load_source(source: &NodeConfigSource) -> Result<NodeConfig> {
    match source {
        NodeConfigSource::Node => load(),
        NodeConfigSource::File(file) if !file.is_file() => Err(ShimError::invalid(
            "runtime option ConfigPath",
            file.display().to_string(),
            "no such file (the runtime's options name urunc's configuration file)",
        )),
        NodeConfigSource::File(file) => load_from(file),
        NodeConfigSource::Inline(text) => parse_logged("runtime options ConfigBody", text),
    }
}

/// Reads and parses the file at `path`; logs the keys this runtime does not know.
pub fn load_from(path: &Path) -> Result<NodeConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "no node configuration file: urunc's defaults apply");
            return Ok(NodeConfig::default());
        }
        Err(error) => {
            return Err(ShimError::io(
                format!("read the node configuration {}", path.display()),
                error,
            ))
        }
    };
    parse_logged(&path.display().to_string(), &text)
}

/// Parses `text` (from `origin`); logs the keys this runtime does not know.
fn parse_logged(origin: &str, text: &str) -> Result<NodeConfig> {
    let parsed = NodeConfig::parse(origin, text)?;
    tracing::trace!(origin, config = ?parsed.config, "node configuration read");
    if !parsed.unknown_keys.is_empty() {
        tracing::warn!(origin, unknown = ?parsed.unknown_keys, "node configuration keys this runtime does not know are ignored");
    }
    Ok(parsed.config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_gives_the_defaults_and_a_bad_one_is_refused_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("none.toml");
        assert_eq!(
            load_from(&missing).expect("defaults"),
            NodeConfig::default()
        );
        let bad = dir.path().join("config.toml");
        std::fs::write(&bad, "[monitors.qemu]\ndefault_vcpus = 0\n").expect("write");
        let error = load_from(&bad).expect_err("refused").to_string();
        assert!(error.contains("monitors.qemu.default_vcpus=0"), "{error}");
        std::fs::write(&bad, "[monitors.qemu]\ndefault_vcpus = 2\nfoo = 1\n").expect("write");
        let config = load_from(&bad).expect("unknown keys are only logged");
        assert_eq!(
            config.monitor(runtime_core::Hypervisor::Qemu).default_vcpus,
            2
        );
    }
}
