//! `containerd-shim-urunc-v2 check`: measures what this node can run and prints the table
//! runtime-core's `node_check` builds from it (modelled on `kata-runtime check`). Exit status 0
//! when nothing found is unusable, 1 otherwise.
//!
//! The VMMs are looked up as Create looks them up (the PATH the shim gets), asked for their
//! version, and given the accelerator Create would give them, KVM probe included.

use std::fs::OpenOptions;
use std::process::Command;
use std::time::Duration;

use runtime_core::{NodeFacts, VmmFact, CHECKED_VMMS};

use crate::error::{Result, ShimError};
use crate::reaper::ExitRouter;
use crate::{accel_probe, captured, confine, host};

const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints the table on stdout; `Ok(false)` when something is unusable.
pub fn run() -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ShimError::io("start the check's runtime", e))?;
    let facts = runtime.block_on(gather())?;
    let (rows, usable) = runtime_core::evaluate_node(&facts);
    print!("{}", runtime_core::render_node_check(&rows));
    Ok(usable)
}

async fn gather() -> Result<NodeFacts> {
    let router = ExitRouter::start()?;
    let search_path = host::vmm_search_path();
    let arch = host::arch();
    let mut vmms = Vec::new();
    for hypervisor in CHECKED_VMMS {
        let program = runtime_core::vmm_program(hypervisor, arch);
        let found = match confine::locate_program(program, &search_path) {
            Err(_) => None,
            Ok(path) => Some(version(&router, &path.display().to_string()).await),
        };
        let accel = if found.is_some() {
            accel_probe::choose(&router, hypervisor, program)
                .await
                .map_err(|e| e.to_string())
        } else {
            Err("not installed".to_owned())
        };
        vmms.push(VmmFact {
            hypervisor,
            program: program.to_owned(),
            found,
            accel,
        });
    }
    Ok(NodeFacts {
        kvm_device: accel_probe::kvm_device(),
        vmms,
        tun: OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map(drop)
            .map_err(|e| format!("open /dev/net/tun: {e}")),
        cgroup: cgroup_version(),
        seccomp: seccomp(),
    })
}

/// The first line `<program> --version` prints, or why it did not run.
async fn version(router: &ExitRouter, program: &str) -> std::result::Result<String, String> {
    let mut command = Command::new(program);
    command.arg("--version");
    let (code, output) = captured::run(router, &mut command, b"", VERSION_TIMEOUT).await?;
    let first = output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned();
    if code == 0 && !first.is_empty() {
        Ok(first)
    } else {
        Err(format!(
            "{program} --version: exit status {code}: {}",
            runtime_core::last_lines(&output, 2)
        ))
    }
}

/// The host's cgroup layout as the mount table shows it (hybrid is told apart from v1: the
/// shim places VMMs in the v1 controllers either way, but an operator reading `check` needs
/// to know the node also has a unified tree).
fn cgroup_version() -> std::result::Result<runtime_core::CgroupLayout, String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(|e| format!("read /proc/self/mounts: {e}"))?;
    runtime_core::CgroupLayout::from_mounts(&mounts)
        .ok_or_else(|| "no cgroup hierarchy is mounted (/proc/self/mounts)".to_owned())
}

/// The kernel's seccomp support, as the kernel shows it for this process.
fn seccomp() -> std::result::Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("read /proc/self/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    match (field("Seccomp:"), field("Seccomp_filters:")) {
        (Some(_), filters) => Ok(format!(
            "filters supported{}",
            filters
                .map(|n| format!(" ({n} on this process)"))
                .unwrap_or_default()
        )),
        (None, _) => Err("the kernel has no seccomp (no Seccomp: in /proc/self/status)".into()),
    }
}
