//! The KVM-only VMMs (firecracker, cloud-hypervisor) the boot tests run. CI installs neither:
//! a test finds one through its environment variable (a path to the binary) or on PATH, and
//! is skipped without it.

use std::path::PathBuf;

use crate::error::{HarnessError, Result};

/// A VMM the shim drives that has no TCG mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmVmm {
    /// Its `com.urunc.unikernel.hypervisor` value, also its `[monitors.<name>]` section.
    pub hypervisor: &'static str,
    /// The program looked up on PATH.
    pub program: &'static str,
    /// The variable naming the binary to test.
    pub env: &'static str,
    /// How the VMM ends on SIGTERM: firecracker installs no handler and dies of it (128 + 15);
    /// cloud-hypervisor handles it, shuts the VM down and exits 0.
    pub sigterm_exit: i32,
}

pub const FIRECRACKER: KvmVmm = KvmVmm {
    hypervisor: "firecracker",
    program: "firecracker",
    env: "URUNC_TEST_FIRECRACKER",
    sigterm_exit: 128 + 15,
};

pub const CLOUD_HYPERVISOR: KvmVmm = KvmVmm {
    hypervisor: "cloud-hypervisor",
    program: "cloud-hypervisor",
    env: "URUNC_TEST_CLOUD_HYPERVISOR",
    sigterm_exit: 0,
};

impl KvmVmm {
    /// The binary `$env` names, else `program` on PATH.
    pub fn locate(&self) -> Result<PathBuf> {
        let Some(path) = std::env::var_os(self.env) else {
            return crate::host_tools::which(
                self.program,
                &format!("build it from its sources and set {}", self.env),
            );
        };
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(HarnessError::Invalid {
                field: self.env,
                value: path.display().to_string(),
                reason: "is not a file".into(),
            });
        }
        path.canonicalize()
            .map_err(HarnessError::io("resolve", path.clone()))
    }

    /// The binary's `--version` line, for the test's output.
    pub fn version(&self, binary: &std::path::Path) -> Result<String> {
        let out = crate::command::checked(std::process::Command::new(binary).arg("--version"))?;
        Ok(out.lines().next().unwrap_or_default().trim().to_string())
    }
}
