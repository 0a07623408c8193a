//! A KVM-only VMM (firecracker, cloud-hypervisor) under a private containerd. The binary is
//! found through its variable or on PATH (`urunc_tests::kvm_vmms`; SKIPPED without it, as CI
//! installs neither) and named to the shim by the node configuration's `[monitors.<vmm>]
//! path`, the way an operator points urunc at a VMM; the shim probes the accelerator, as these
//! VMMs have no TCG mode.

use std::path::PathBuf;

use tempfile::TempDir;
use urunc_tests::containerd::{ContainerdOptions, ACCEL_ENV};
use urunc_tests::host_processes::processes_running;
use urunc_tests::kvm_vmms::KvmVmm;
use urunc_tests::PrivateContainerd;

use super::{prerequisites, NODE_CONFIG_ENV};

pub struct KvmVmmContainerd {
    pub vmm: KvmVmm,
    /// The VMM's binary, canonical (as `/proc/<pid>/exe` names it).
    pub binary: PathBuf,
    /// `<binary> --version`.
    pub version: String,
    pub ctrd: PrivateContainerd,
    /// Holds the node configuration file.
    _config_dir: TempDir,
}

/// A private containerd whose shim runs `vmm`; `None` after printing SKIPPED when the VMM,
/// /dev/kvm or a host program is missing.
pub fn kvm_vmm_containerd(test: &str, vmm: KvmVmm) -> Option<KvmVmmContainerd> {
    let binary = match vmm.locate() {
        Ok(binary) => binary,
        Err(missing) => {
            urunc_tests::skipped_not_in_ci!("SKIPPED: {test}: {missing}");
            return None;
        }
    };
    if let Err(error) = std::fs::File::open("/dev/kvm") {
        urunc_tests::skipped_not_in_ci!("SKIPPED: {test}: {} needs /dev/kvm: {error}", vmm.program);
        return None;
    }
    if !prerequisites(test, &["containerd", "ctr", "runc", "ip", "tc"]) {
        return None;
    }
    let version = vmm.version(&binary).expect("the VMM's --version");
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[monitors.{}]\npath = \"{}\"\n",
            vmm.hypervisor,
            binary.display()
        ),
    )
    .expect("write the node configuration");
    let ctrd = PrivateContainerd::start_with(ContainerdOptions {
        extra_env: vec![
            (NODE_CONFIG_ENV.to_string(), config.display().to_string()),
            (ACCEL_ENV.to_string(), "auto".to_string()),
        ],
        ..ContainerdOptions::default()
    })
    .expect("start a private containerd");
    eprintln!("{test}: {version} ({})", binary.display());
    Some(KvmVmmContainerd {
        vmm,
        binary,
        version,
        ctrd,
        _config_dir: config_dir,
    })
}

impl KvmVmmContainerd {
    /// The VMM processes of this containerd: their argv names its folder (the rootfs) or its
    /// namespace (the shim's state folder).
    pub fn vmm_processes(&self) -> Vec<(i32, String)> {
        let mut found = processes_running(&self.binary, &self.ctrd.dir().display().to_string());
        for process in processes_running(&self.binary, self.ctrd.namespace()) {
            if !found.contains(&process) {
                found.push(process);
            }
        }
        found
    }
}
