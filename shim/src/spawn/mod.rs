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
    /// The cgroup files the child writes "0" to, moving itself ([`crate::cgroup::Cgroup::join_files`]).
    pub cgroup_join: Vec<CString>,
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
        cgroup_join,
    } = setup;
    // SAFETY: the closure runs in the forked child of a multi-threaded process, so it only makes
    // raw system calls on data prepared before the fork (no allocation, no locks).
    unsafe {
        command.pre_exec(move || {
            // Own session: signals aimed at the shim's group never reach the VMM.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for file in &cgroup_join {
                join_cgroup(file)?;
            }
            namespaces.enter()
        });
    }
    command
}

/// Writes "0" (the writing thread, the child's only one) to a cgroup's join file.
pub(crate) fn join_cgroup(file: &CString) -> std::io::Result<()> {
    // SAFETY: raw syscalls on a NUL-terminated path prepared by the parent.
    unsafe {
        let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Cgroup;
    use std::fs::File;
    use std::time::Duration;

    fn dev_null() -> std::os::fd::OwnedFd {
        File::open("/dev/null").expect("/dev/null").into()
    }

    /// The child joins through `tasks` on v1 (its one thread) and lands in the container's
    /// directory of every hierarchy, as a whole process; the parent's threads stay where they
    /// were.
    #[tokio::test]
    async fn the_child_joins_the_cgroup_of_every_hierarchy_and_the_shim_stays_out() {
        if !nix::unistd::geteuid().is_root() {
            skipped!("SKIPPED: creating a cgroup needs root");
            return;
        }
        let name = format!("urunc-rs-join-test-{}", std::process::id());
        let cgroup = Cgroup::from_spec_path(&format!("/{name}")).expect("resolve");
        cgroup.create().expect("create the cgroup");
        let stdio = ProcessStdio {
            stdin: dev_null(),
            stdout: dev_null(),
            stderr: dev_null(),
        };
        let setup = ChildSetup {
            namespaces: NamespacePlan::joins_only(&[]).expect("plan"),
            cgroup_join: cgroup.join_files().expect("join files"),
        };
        let mut command = container_command("/bin/sleep", &["30".to_string()], &[], stdio, setup);
        let router = crate::confine::test_reaper::shared();
        let (child, exited) = match router.spawn(&mut command) {
            Ok(spawned) => spawned,
            Err(error) => {
                cgroup.remove().expect("remove the cgroup");
                panic!("spawn: {error}");
            }
        };
        let membership =
            std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).expect("cgroup");
        let members = cgroup.pids().expect("the cgroup's pids");
        let ours: Vec<String> = std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .map(|task| {
                std::fs::read_to_string(task.expect("task").path().join("cgroup")).expect("cgroup")
            })
            .collect();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        tokio::time::timeout(Duration::from_secs(10), exited)
            .await
            .expect("exit delivered")
            .expect("exit");
        cgroup.remove().expect("remove the cgroup");
        let hierarchies: Vec<&str> = membership
            .lines()
            .filter(|line| cgroup.dirs.len() == 1 || !line.starts_with("0::"))
            .collect();
        assert_eq!(hierarchies.len(), cgroup.dirs.len(), "{membership}");
        for line in hierarchies {
            assert!(line.ends_with(&format!("/{name}")), "{line}");
        }
        assert_eq!(members, vec![child.id()], "the whole process, once");
        for task in ours {
            assert!(!task.contains(&name), "a shim thread moved: {task}");
        }
    }
}
