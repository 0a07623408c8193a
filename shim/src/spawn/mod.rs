//! Starting the container's process (the VMM) as a new process in the container's namespaces
//! and cgroup, with the container's stdio.
//!
//! Invariant 1: no shim thread ever calls setns. Every namespace file is opened here, in the
//! shim, before the fork; only the forked child joins them (and unshares the others) between
//! fork and exec, with async-signal-safe system calls only.

mod namespaces;
mod pid_namespace;
pub mod retitle;
pub mod signal_init;

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

pub use namespaces::{asks_new_network, check_paths, network_path, open_namespace, NamespacePlan};
pub use pid_namespace::PidNamespace;

use crate::stdio::ProcessStdio;

/// Everything the child does to itself before exec, prepared by the parent.
pub struct ChildSetup {
    pub namespaces: NamespacePlan,
    /// `cgroup.procs` files the child writes "0" to (moving itself).
    pub cgroup_procs: Vec<CString>,
}

/// Builds the command that becomes the container's process.
pub fn container_command(
    program: &str,
    args: &[String],
    env: &[(String, String)],
    stdio: ProcessStdio,
    setup: ChildSetup,
) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdio.stdin))
        .stdout(Stdio::from(stdio.stdout))
        .stderr(Stdio::from(stdio.stderr));
    let ChildSetup {
        namespaces,
        cgroup_procs,
    } = setup;
    // SAFETY: the closure runs in the forked child of a multi-threaded process, so it only makes
    // raw system calls on data prepared before the fork (no allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            // Own session: signals aimed at the shim's group never reach the VMM.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for procs in &cgroup_procs {
                join_cgroup(procs)?;
            }
            namespaces.enter()
        });
    }
    command
}

/// Writes "0" (the writing process) to a `cgroup.procs` file.
fn join_cgroup(procs: &CString) -> std::io::Result<()> {
    // SAFETY: raw syscalls on a NUL-terminated path prepared by the parent.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(error);
        }
    }
    Ok(())
}
