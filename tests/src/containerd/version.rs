//! Which containerd the tests run against: one switch, `URUNC_TEST_CONTAINERD`, for every test
//! that talks to containerd (a private containerd, a CRI node, the benches).
//!
//! - unset or `1.6`: Debian's containerd 1.6.20 (`/usr/bin`), task API v2;
//! - `2`: the containerd 2.x `.ci/install-deps` builds (`.ci/go-peers.tsv`), task API v3.

use std::path::PathBuf;

use crate::error::{HarnessError, Result};
use crate::host_tools::which;
use crate::peers::Peer;

/// The switch.
pub const CONTAINERD_ENV: &str = "URUNC_TEST_CONTAINERD";

/// A containerd the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerdVersion {
    /// Debian 12's containerd 1.6.20.
    Debian16,
    /// The pinned containerd 2.x.
    V2,
}

/// Where one containerd's programs are.
#[derive(Debug, Clone)]
pub struct ContainerdPrograms {
    pub containerd: PathBuf,
    pub ctr: PathBuf,
    /// Put first on containerd's PATH, so it finds its own `containerd-shim-runc-v2`.
    pub bin_dir: Option<PathBuf>,
}

impl ContainerdVersion {
    /// The one `URUNC_TEST_CONTAINERD` selects.
    pub fn selected() -> Result<Self> {
        match std::env::var(CONTAINERD_ENV).as_deref() {
            Err(_) | Ok("") | Ok("1.6") => Ok(ContainerdVersion::Debian16),
            Ok("2") | Ok("2.x") => Ok(ContainerdVersion::V2),
            Ok(other) => Err(HarnessError::Invalid {
                field: CONTAINERD_ENV,
                value: other.to_string(),
                reason: "expected 1.6 (Debian's containerd) or 2 (the pinned 2.x build)".into(),
            }),
        }
    }

    /// Its programs; an error names what is missing and how to get it.
    pub fn programs(self) -> Result<ContainerdPrograms> {
        match self {
            ContainerdVersion::Debian16 => Ok(ContainerdPrograms {
                containerd: which("containerd", "apt-get install containerd")?,
                ctr: which("ctr", "apt-get install containerd")?,
                bin_dir: None,
            }),
            ContainerdVersion::V2 => {
                let peer = Peer::pinned("containerd")?;
                Ok(ContainerdPrograms {
                    containerd: peer.program("containerd")?,
                    ctr: peer.program("ctr")?,
                    bin_dir: Some(peer.bin_dir()),
                })
            }
        }
    }

    /// The config file version it reads (2.x migrates version 2, but CRI's sections moved).
    pub fn config_version(self) -> u32 {
        match self {
            ContainerdVersion::Debian16 => 2,
            ContainerdVersion::V2 => 3,
        }
    }

    /// The task API version the shim must answer it with.
    pub fn task_api(self) -> u32 {
        match self {
            ContainerdVersion::Debian16 => 2,
            ContainerdVersion::V2 => 3,
        }
    }

    /// For test output: `containerd 1.6` / `containerd v2.4.2`.
    pub fn label(self) -> String {
        match self {
            ContainerdVersion::Debian16 => "containerd 1.6 (Debian)".into(),
            ContainerdVersion::V2 => match Peer::pinned("containerd") {
                Ok(peer) => format!("containerd {}", peer.version),
                Err(_) => "containerd 2.x".into(),
            },
        }
    }
}
