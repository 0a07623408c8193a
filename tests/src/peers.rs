//! The Go-built peers `.ci/install-deps` builds (containerd 2.x, cri-tools, nerdctl), read from the one
//! list that pins them, `.ci/go-peers.tsv`.

use std::path::PathBuf;

use crate::error::{HarnessError, Result};

/// The pinned list, as `.ci/install-go-peers` reads it.
const PEERS: &str = include_str!("../../.ci/go-peers.tsv");
/// Where `.ci/install-go-peers` builds them unless told otherwise.
pub const DEFAULT_PEERS_DIR: &str = "/opt/urunc-rs-peers";
/// The variable that moves them.
pub const PEERS_DIR_ENV: &str = "URUNC_PEERS_DIR";

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub module: String,
    pub version: String,
}

impl Peer {
    /// The pinned peer called `name` (a row of `.ci/go-peers.tsv`).
    pub fn pinned(name: &str) -> Result<Peer> {
        PEERS
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(|line| line.split('\t').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&name))
            .map(|fields| Peer {
                name: name.to_string(),
                module: fields.get(1).copied().unwrap_or_default().to_string(),
                version: fields.get(2).copied().unwrap_or_default().to_string(),
            })
            .ok_or_else(|| HarnessError::Missing {
                what: format!("peer {name} in .ci/go-peers.tsv"),
                hint: "add its row".into(),
            })
    }

    /// The folder its binaries are built into.
    pub fn bin_dir(&self) -> PathBuf {
        let root = std::env::var_os(PEERS_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PEERS_DIR));
        root.join(format!("{}-{}", self.name, self.version))
            .join("bin")
    }

    /// Its program `program`, which must have been built.
    pub fn program(&self, program: &str) -> Result<PathBuf> {
        let path = self.bin_dir().join(program);
        if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::Missing {
                what: path.display().to_string(),
                hint: format!(
                    "{} {} is built by `bash .ci/install-deps`",
                    self.module, self.version
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_2_cri_tools_and_nerdctl_are_pinned() {
        let containerd = Peer::pinned("containerd").unwrap();
        assert_eq!(containerd.module, "github.com/containerd/containerd/v2");
        assert!(containerd.version.starts_with("v2."), "{containerd:?}");
        let cri_tools = Peer::pinned("cri-tools").unwrap();
        assert_eq!(cri_tools.module, "sigs.k8s.io/cri-tools");
        // The v1 module: no served nerdctl v2 builds from the proxy (see .ci/go-peers.tsv).
        let nerdctl = Peer::pinned("nerdctl").unwrap();
        assert_eq!(nerdctl.module, "github.com/containerd/nerdctl");
        assert!(Peer::pinned("no-such-peer").is_err());
    }
}
