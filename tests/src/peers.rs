//! The Go-built peers (containerd 2.x, cri-tools, nerdctl) that
//! `.ci/install-go-peers` builds into `$URUNC_PEERS_DIR/<name>-<version>/bin`
//! (default `/opt/urunc-rs-peers`); a folder counts once it holds `.complete`.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};
use crate::host_tools::which;

/// The variable naming the peers' folder.
pub const PEERS_DIR_ENV: &str = "URUNC_PEERS_DIR";
/// Where the peers are when the variable is not set.
pub const DEFAULT_PEERS_DIR: &str = "/opt/urunc-rs-peers";

/// The peers' folder.
pub fn peers_dir() -> PathBuf {
    std::env::var_os(PEERS_DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_PEERS_DIR), PathBuf::from)
}

/// `program` of peer `name` (`cri-tools`, `nerdctl`, `containerd`): from a
/// complete `<name>-<version>` folder (the newest version when several are
/// there), else from PATH.
pub fn peer_program(name: &str, program: &str) -> Result<PathBuf> {
    if let Some(found) = complete_peer_bin(&peers_dir(), name)
        .map(|bin| bin.join(program))
        .filter(|path| path.is_file())
    {
        return Ok(found);
    }
    which(program, "").map_err(|_| HarnessError::Missing {
        what: format!("{program} (peer {name})"),
        hint: format!(
            "bash .ci/install-go-peers builds it into {}/{name}-<version>/bin",
            peers_dir().display()
        ),
    })
}

fn complete_peer_bin(dir: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("{name}-v");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|file| file.to_string_lossy().starts_with(&prefix))
        })
        .filter(|path| path.join(".complete").is_file())
        .collect();
    folders.sort();
    folders.pop().map(|folder| folder.join("bin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_complete_folder_counts() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("cri-tools-v1.37.0/bin")).expect("mkdir");
        assert_eq!(complete_peer_bin(dir.path(), "cri-tools"), None);
        std::fs::write(dir.path().join("cri-tools-v1.37.0/.complete"), "x").expect("mark");
        assert_eq!(
            complete_peer_bin(dir.path(), "cri-tools"),
            Some(dir.path().join("cri-tools-v1.37.0/bin"))
        );
        assert_eq!(complete_peer_bin(dir.path(), "nerdctl"), None);
    }
}
