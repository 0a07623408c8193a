//! Taking a private containerd down without leaving anything behind.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::PrivateContainerd;
use crate::error::{HarnessError, Result};
use crate::host_processes::kill_processes_referring_to;
use crate::mounts::unmount_all_under;

/// Per `ctr` call during teardown: a wedged shim must not wedge the test.
const CTR_LIMIT: Duration = Duration::from_secs(20);
/// How long containerd gets to exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Where runc keeps container state, per containerd namespace, whichever
/// containerd started it.
const RUNC_STATE_ROOT: &str = "/run/containerd/runc";

impl PrivateContainerd {
    /// Every step runs even when an earlier one failed; failures are printed
    /// as they happen and returned together.
    pub(super) fn teardown(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        let namespace = self.namespace.clone();
        let mut note = |step: &str, outcome: Result<()>| {
            if let Err(error) = outcome {
                eprintln!("PrivateContainerd({namespace}): {step}: {error}");
                failures.push(format!("{step}: {error}"));
            }
        };
        if self.child.is_some() {
            note("remove tasks", self.remove_tasks());
            note("remove containers", self.remove_containers());
            note("stop containerd", self.stop_containerd());
        }
        note("kill leftover processes", self.kill_leftovers());
        note("unmount leftovers", self.unmount_leftovers());
        note("remove runc state", self.remove_runc_state());
        note("remove folder", self.remove_folder());
        if failures.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Cleanup(failures))
        }
    }

    fn list(&self, kind: &str) -> Result<Vec<String>> {
        let out = self.ctr_within(&[kind, "ls", "-q"], CTR_LIMIT)?;
        if !out.status.success() {
            return Err(HarnessError::CommandFailed {
                command: format!("ctr {kind} ls -q"),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(String::from)
            .collect())
    }

    fn ctr_step(&self, args: &[&str]) -> Result<()> {
        let out = self.ctr_within(args, CTR_LIMIT)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HarnessError::CommandFailed {
                command: format!("ctr {}", args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn remove_tasks(&self) -> Result<()> {
        let mut failures = Vec::new();
        for task in self.list("tasks")? {
            // `delete --force` kills a running task and deletes it once dead.
            if let Err(error) = self.ctr_step(&["tasks", "delete", "--force", &task]) {
                failures.push(format!("task {task}: {error}"));
            }
        }
        collect(failures)
    }

    fn remove_containers(&self) -> Result<()> {
        let mut failures = Vec::new();
        for container in self.list("containers")? {
            if let Err(error) = self.ctr_step(&["containers", "rm", &container]) {
                failures.push(format!("container {container}: {error}"));
            }
        }
        collect(failures)
    }

    fn stop_containerd(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(child.id() as i32);
        if let Err(errno) = kill(pid, Signal::SIGTERM) {
            eprintln!(
                "PrivateContainerd({}): SIGTERM containerd: {errno}",
                self.namespace
            );
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            if child
                .try_wait()
                .map_err(HarnessError::io("wait for containerd", &self.dir_path))?
                .is_some()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                child
                    .kill()
                    .map_err(HarnessError::io("SIGKILL containerd of", &self.dir_path))?;
                child
                    .wait()
                    .map_err(HarnessError::io("reap containerd of", &self.dir_path))?;
                return Err(HarnessError::Timeout {
                    what: "containerd to exit on SIGTERM (it was SIGKILLed)".into(),
                    seconds: STOP_GRACE.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Shims and VMMs that survived task deletion (a broken shim, a test
    /// that killed one) refer to this folder; they must not outlive it.
    fn kill_leftovers(&self) -> Result<()> {
        let killed = kill_processes_referring_to(&self.dir_path)?;
        for (pid, cmdline) in &killed {
            eprintln!(
                "PrivateContainerd({}): killed leftover {pid}: {cmdline}",
                self.namespace
            );
        }
        Ok(())
    }

    fn unmount_leftovers(&self) -> Result<()> {
        for mount_point in unmount_all_under(&self.dir_path)? {
            eprintln!(
                "PrivateContainerd({}): unmounted leftover {}",
                self.namespace,
                mount_point.display()
            );
        }
        Ok(())
    }

    fn remove_runc_state(&self) -> Result<()> {
        let runc_state = std::path::Path::new(RUNC_STATE_ROOT).join(&self.namespace);
        match std::fs::remove_dir_all(&runc_state) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(HarnessError::io("remove", runc_state)(error))
            }
            _ => Ok(()),
        }
    }

    fn remove_folder(&mut self) -> Result<()> {
        match self.dir.take() {
            Some(dir) => dir
                .close()
                .map_err(HarnessError::io("remove", self.dir_path.clone())),
            None => Ok(()),
        }
    }
}

fn collect(failures: Vec<String>) -> Result<()> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Cleanup(failures))
    }
}
