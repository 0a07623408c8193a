//! The VMM's pid namespace.
//!
//! A pid namespace applies to the children of the task that enters it, never to the task
//! itself, so unlike the others it cannot be entered by the forked child between fork and exec.
//! Instead a short-lived thread, `vmm-spawn`, enters it (a fresh one with `unshare`, the pod's
//! with `setns` on the nsfs file the spec names), forks the VMM through the exit router, and
//! ends. The VMM is then pid 1 of the fresh namespace, or a member of the pod's shared one.
//!
//! Entering a pid namespace only changes the thread's `pid_for_children`: the thread keeps its
//! own pid, network and mount namespaces, so invariant 1 (no shim thread leaves the shim's
//! network namespace) holds, and the thread is gone before the VMM runs.
//!
//! As pid 1 of its namespace, the VMM receives from the shim only the signals it handles, plus
//! SIGKILL and SIGSTOP: the same rule a container's init lives by under runc.

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::error::Result;
use runtime_core::oci::{Namespace, NamespaceType};

/// Where the VMM's pid lives, from the spec's `linux.namespaces`.
pub enum PidNamespace {
    /// The spec asks for no pid namespace: the VMM shares the shim's.
    Shim,
    /// A pid namespace without a path: the VMM is pid 1 of a new one.
    Fresh,
    /// A pid namespace with a path (a pod sharing its process namespace): opened before the
    /// spawn, so a vanished path is an error at Create, not in the child.
    Join(File),
}

impl PidNamespace {
    pub fn from_spec(namespaces: &[Namespace]) -> Result<Self> {
        let Some((index, pid)) = namespaces
            .iter()
            .enumerate()
            .find(|(_, ns)| ns.kind == NamespaceType::Pid)
        else {
            return Ok(PidNamespace::Shim);
        };
        match &pid.path {
            None => Ok(PidNamespace::Fresh),
            Some(path) => {
                super::open_namespace(index, path, libc::CLONE_NEWPID).map(PidNamespace::Join)
            }
        }
    }

    /// Runs `fork` so that the process it forks is born in this pid namespace: on a short-lived
    /// `vmm-spawn` thread that entered it, or on the caller's thread when the spec has none.
    pub fn fork_in<R: Send>(
        &self,
        fork: impl FnOnce() -> std::io::Result<R> + Send,
    ) -> std::io::Result<R> {
        if matches!(self, PidNamespace::Shim) {
            return fork();
        }
        std::thread::scope(|scope| {
            let spawner = std::thread::Builder::new()
                .name("vmm-spawn".to_string())
                .spawn_scoped(scope, || {
                    self.enter_for_children()?;
                    fork()
                })?;
            spawner
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the vmm-spawn thread panicked")))
        })
    }

    /// On the `vmm-spawn` thread only: its next child is born in the namespace.
    fn enter_for_children(&self) -> std::io::Result<()> {
        // SAFETY: plain system calls on this thread; `file` is an open nsfs descriptor.
        let rc = match self {
            PidNamespace::Shim => 0,
            PidNamespace::Fresh => unsafe { libc::unshare(libc::CLONE_NEWPID) },
            PidNamespace::Join(file) => unsafe {
                libc::setns(file.as_raw_fd(), libc::CLONE_NEWPID)
            },
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};
    use std::time::Duration;

    use tokio::sync::oneshot;

    use crate::reaper::{ExitCode, ExitRouter};

    fn spawn_in(
        plan: &PidNamespace,
        router: &ExitRouter,
        command: &mut Command,
    ) -> std::io::Result<(Child, oneshot::Receiver<ExitCode>)> {
        plan.fork_in(|| router.spawn(command))
    }

    fn spec_namespaces(json: &str) -> Vec<Namespace> {
        serde_json::from_str(json).expect("namespaces")
    }

    /// The `NSpid:` line of a process: its pid in every namespace from the host's inward.
    fn nspid(pid: u32) -> Vec<u32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .expect("NSpid line")
            .split_whitespace()
            .map(|p| p.parse().expect("pid"))
            .collect()
    }

    fn sleeper() -> Command {
        let mut command = Command::new("sleep");
        command.arg("30");
        command
    }

    #[tokio::test]
    async fn a_pid_namespace_without_path_makes_the_process_pid_1_of_a_new_one() {
        if !nix::unistd::geteuid().is_root() {
            skipped!("SKIPPED: creating a pid namespace needs root");
            return;
        }
        let router = crate::confine::test_reaper::shared();
        let plan = PidNamespace::from_spec(&spec_namespaces(r#"[{"type":"pid"}]"#)).unwrap();
        assert!(matches!(plan, PidNamespace::Fresh));
        let (child, exited) = spawn_in(&plan, &router, &mut sleeper()).expect("spawn");
        let ids = nspid(child.id());
        let own = std::fs::read_link("/proc/self/ns/pid").unwrap();
        let its = std::fs::read_link(format!("/proc/{}/ns/pid", child.id())).unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), exited)
            .await
            .expect("exit delivered")
            .expect("exit");
        assert_eq!(ids, vec![child.id(), 1], "host pid then pid 1 inside");
        assert_ne!(own, its, "the child has its own pid namespace");
        assert_eq!(
            status,
            128 + 9,
            "SIGKILL from the parent namespace reaches pid 1"
        );
        // The spawning thread is gone and the shim's own pid namespace is untouched.
        let after = std::fs::read_link("/proc/self/ns/pid_for_children").unwrap();
        assert_eq!(own, after);
    }

    #[tokio::test]
    async fn a_pid_namespace_path_is_joined() {
        if !nix::unistd::geteuid().is_root() {
            skipped!("SKIPPED: joining a pid namespace needs root");
            return;
        }
        let router = crate::confine::test_reaper::shared();
        // A pod's shared pid namespace: one made by a first process (its pause).
        let fresh = PidNamespace::Fresh;
        let (pause, pause_exit) = spawn_in(&fresh, &router, &mut sleeper()).expect("spawn pause");
        let path = format!("/proc/{}/ns/pid", pause.id());
        let plan = PidNamespace::from_spec(&spec_namespaces(&format!(
            r#"[{{"type":"pid","path":"{path}"}}]"#
        )))
        .unwrap();
        let (member, member_exit) = spawn_in(&plan, &router, &mut sleeper()).expect("spawn member");
        let joined = std::fs::read_link(format!("/proc/{}/ns/pid", member.id())).unwrap();
        let target = std::fs::read_link(&path).unwrap();
        let member_ids = nspid(member.id());
        for (child, exit) in [(member, member_exit), (pause, pause_exit)] {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            tokio::time::timeout(Duration::from_secs(10), exit)
                .await
                .expect("exit delivered")
                .expect("exit");
        }
        assert_eq!(joined, target, "the member is in the pod's pid namespace");
        assert_eq!(member_ids.len(), 2);
        assert_ne!(
            member_ids[1], 1,
            "pid 1 of the pod namespace is its first process"
        );
    }

    #[test]
    fn a_pid_namespace_path_that_cannot_be_opened_names_field_and_value() {
        let error = PidNamespace::from_spec(&spec_namespaces(
            r#"[{"type":"pid","path":"/nonexistent/ns/pid"}]"#,
        ))
        .err()
        .expect("refused");
        let text = error.to_string();
        assert!(text.contains("linux.namespaces[0].path"), "{text}");
        assert!(text.contains("/nonexistent/ns/pid"), "{text}");
    }

    #[test]
    fn no_pid_namespace_in_the_spec_keeps_the_shims() {
        let plan = PidNamespace::from_spec(&spec_namespaces(r#"[{"type":"network"}]"#)).unwrap();
        assert!(matches!(plan, PidNamespace::Shim));
    }
}
