//! Confining the VMM like a container process.
//!
//! The forked VMM child, after joining the container's namespaces and cgroup, gets its own
//! mount namespace whose root is a read-only tmpfs holding only the VMM program, its libraries,
//! its data directories, the guest's files and a minimal `/dev` (null, zero, urandom, kvm when
//! KVM is used, net/tun when networked, the block device), each bind-mounted at its host path;
//! then the spec's rlimits, groups, gid, uid and capabilities, and no_new_privs; the spec's
//! seccomp filter last, just before exec (and qemu's own `-sandbox` on top, chosen by
//! runtime-core's driver when the spec has seccomp).
//!
//! * [`host_files`]: what the VMM program needs from the host (ELF closure, data dirs), read in
//!   the shim before the fork; [`host_cache`] reuses it per binary while its files are unchanged.
//! * [`plan`]: the confinement as data (pure).
//! * [`apply`]: prepared in the shim; the root built and entered, the identity applied, in a
//!   forked child that has not exec'd yet.
//! * [`waiting_vmm`]: the VMM's own process, forked at Create, confined and left waiting at its
//!   exec until Start hands it its stdio (as `runc create` leaves `runc init`).
//! * [`root_helper`]: a helper process that builds a mount namespace at Create for a process
//!   spawned later (virtiofsd), and the report pipe every such child writes its steps to.
//! * [`held_namespace`]: the VMM's mount namespace, held until its exit was reported.
//!
//! Wiring (`container::unikernel`): Create calls [`prepare`] (so an impossible user or
//! capability set fails Create, naming the field), with the new root and the VMM's writable
//! directory (its QMP socket) in the container's state directory, and forks the
//! [`WaitingVmm`] with its [`VmmLaunch`] (program, argv, env, cgroup, namespaces, the spec's
//! seccomp filter), for every VMM kind. Start waits for its `ready` ([`WaitingVmm::ready`]),
//! opens the stdio and lets it exec; Delete of a container never started kills it
//! ([`WaitingVmm::abandon`]).

mod apply;
mod elf;
mod held_namespace;
mod host_cache;
mod host_files;
mod plan;
mod root_helper;
pub mod seccomp;
mod waiting_vmm;

pub use host_files::{locate as locate_program, HostFiles};

#[cfg(test)]
mod confined_run_tests;
#[cfg(test)]
pub(crate) mod test_reaper;
#[cfg(test)]
mod waiting_vmm_tests;

use std::path::PathBuf;

pub use apply::Confinement;
pub use held_namespace::HeldMountNamespace;
pub use plan::{plan, ConfineInput, ConfinePlan, ConfineTarget, GuestFiles};
pub use waiting_vmm::{NotStarted, VmmLaunch, WaitingVmm};

use crate::error::{Result, ShimError};

const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// Everything the shim knows at Create about the VMM it is about to confine.
pub struct ConfineRequest<'a> {
    /// The VMM plan's program (a name looked up in `search_path`, or an absolute path).
    pub program: &'a str,
    pub search_path: &'a str,
    /// Its new root (an empty directory the shim created for this container, removed at
    /// Delete), its guest's files, its accelerator, network and process.
    pub target: ConfineTarget<'a>,
    /// The VMM's data folders from the node configuration (`data_path`), mounted instead of
    /// the host's; `None`: the host's.
    pub data_dirs: Option<&'a [PathBuf]>,
}

/// Finds the VMM's host files, plans and prepares the confinement. The caller execs
/// `plan.program` (absolute) and calls [`Confinement::install`] on its command after the
/// namespace and cgroup setup.
pub fn prepare(request: &ConfineRequest) -> Result<(ConfinePlan, Confinement)> {
    let host = host_files(request.program, request.search_path, request.data_dirs)?;
    prepare_for(&request.target, &host)
}

/// What the VMM program needs from the host (reused per binary while its files are unchanged),
/// with the node's data folders (`data_path`) in place of the host's when given. Create finds
/// them while the network is attached, before it knows the rest of the confinement.
pub fn host_files(
    program: &str,
    search_path: &str,
    data_dirs: Option<&[PathBuf]>,
) -> Result<HostFiles> {
    let host = host_cache::discover_cached(program, search_path)?;
    Ok(match data_dirs {
        Some(dirs) => host.with_data_dirs(dirs),
        None => host,
    })
}

/// Plans and prepares the confinement of `target` for a program whose host files are `host`.
pub fn prepare_for(target: &ConfineTarget, host: &HostFiles) -> Result<(ConfinePlan, Confinement)> {
    let plan = plan(&ConfineInput {
        target: *target,
        host,
        last_capability: kernel_last_capability()?,
    })?;
    let confinement = Confinement::prepare(&plan)?;
    Ok((plan, confinement))
}

/// The highest capability number this kernel knows.
pub fn kernel_last_capability() -> Result<u32> {
    let text = std::fs::read_to_string(CAP_LAST_CAP)
        .map_err(|e| ShimError::io(format!("read {CAP_LAST_CAP}"), e))?;
    text.trim()
        .parse()
        .map_err(|_| ShimError::invalid(CAP_LAST_CAP, text.trim(), "not a number"))
}

/// Tests: prepares qemu-system-x86_64 (TCG, no network) confined as `process`, the way Start
/// prepares a VMM.
#[cfg(test)]
pub(crate) fn prepare_test_qemu(
    new_root: &std::path::Path,
    guest: &GuestFiles,
    process: &runtime_core::oci::Process,
) -> (ConfinePlan, Confinement) {
    prepare(&ConfineRequest {
        program: "qemu-system-x86_64",
        search_path: "/usr/bin:/bin",
        target: ConfineTarget {
            new_root,
            guest,
            accel: runtime_core::Accel::Tcg,
            networked: false,
            process: Some(process),
        },
        data_dirs: None,
    })
    .expect("prepare qemu")
}

/// Tests: builds `confinement`'s root (waiting for its helper) and installs it on `command`;
/// the namespace is held until the returned value is dropped.
#[cfg(test)]
pub(crate) fn build_and_install_for_test(
    confinement: Confinement,
    command: &mut std::process::Command,
) -> HeldMountNamespace {
    confinement
        .start_building(&test_reaper::shared())
        .expect("fork the root helper")
        .finish()
        .expect("the root is built")
        .install(command)
        .expect("install the root")
}
