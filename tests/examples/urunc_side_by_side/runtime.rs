//! One of the two runtimes under comparison, and what the bench does with a container of it
//! through `ctr`: run it detached in a sandbox, see its VMM up, find its shim and the shim's
//! resident memory, kill and remove it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use urunc_tests::wait::eventually;
use urunc_tests::PrivateContainerd;

/// How long a VMM gets to be up after `ctr run -d` returned (Go urunc's Start returns before
/// its VMM's exec).
const VMM_UP: Duration = Duration::from_secs(5);
/// How long a VMM that started must still run to count as up.
const STAYS_UP: Duration = Duration::from_secs(1);
/// How long a killed task gets to stop.
const STOP: Duration = Duration::from_secs(20);

/// A runtime registered in the private containerd.
pub struct Runtime {
    /// How the table names it.
    pub label: &'static str,
    /// containerd's runtime name (`ctr run --runtime`).
    pub name: &'static str,
    /// The shim daemon's program, as `/proc/<pid>/exe` shows it.
    pub shim_binary: PathBuf,
    /// A file its VMMs' stderr goes to, when there is one.
    pub vmm_stderr: Option<PathBuf>,
}

impl Runtime {
    /// `ctr run -d` of `image` as `id` in the network namespace `with_ns` names.
    pub fn run_detached(
        &self,
        ctrd: &PrivateContainerd,
        with_ns: &str,
        image: &str,
        id: &str,
    ) -> Result<()> {
        ctrd.ctr_ok(&[
            "run",
            "-d",
            "--runtime",
            self.name,
            "--with-ns",
            with_ns,
            image,
            id,
        ])
        .with_context(|| format!("{}: ctr run -d {id}", self.label))?;
        Ok(())
    }

    /// Waits until task `id`'s process or its child is qemu (the VMM exec'd) and still is a
    /// second later. `None` when it is; otherwise what the task's process is doing, the OCI runtime's log and containerd's.
    pub fn wait_vmm_up(&self, ctrd: &PrivateContainerd, id: &str) -> Option<String> {
        let vmm_runs = || {
            task_pid(ctrd, id)
                .is_ok_and(|pid| is_qemu(pid) || children(pid).into_iter().any(is_qemu))
        };
        // A qemu that aborts at once (a CPU feature KVM cannot set, a firmware it cannot find)
        // is gone a moment later.
        if eventually(VMM_UP, vmm_runs) && {
            std::thread::sleep(STAYS_UP);
            vmm_runs()
        } {
            return None;
        }
        let process = task_pid(ctrd, id).map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            )
        });
        // The OCI runtime's log (runc's and Go urunc's `--log`), in the bundle.
        let runtime_log =
            urunc_tests::command::file_tail(&ctrd.bundle_dir(id).join("log.json"), 20);
        let vmm_stderr = self
            .vmm_stderr
            .as_ref()
            .map(|path| urunc_tests::command::file_tail(path, 10))
            .unwrap_or_default();
        Some(format!(
            "{}: the VMM of {id} is not up {}s after ctr run -d (task process {process:?}; \
             tasks: {}); OCI runtime log:\n{runtime_log}\nVMM stderr:\n{vmm_stderr}\n\
             containerd's log:\n{}",
            self.label,
            VMM_UP.as_secs(),
            ctrd.ctr_ok(&["task", "ls"]).unwrap_or_default().trim(),
            ctrd.log_tail(40)
        ))
    }

    /// VmRSS in KiB of the shim daemon serving `id`.
    pub fn shim_rss(&self, ctrd: &PrivateContainerd, id: &str) -> Result<u64> {
        let pid = self.shim_pid(ctrd, id)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
    }

    /// The shim daemon serving `id`: the one process running [`Runtime::shim_binary`] with
    /// `-namespace <ours>` and `-id <id>` (the `start` invocation that spawned it has left).
    fn shim_pid(&self, ctrd: &PrivateContainerd, id: &str) -> Result<i32> {
        let binary = self.shim_binary.canonicalize()?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if std::fs::read_link(entry.path().join("exe")).ok().as_ref() != Some(&binary) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|byte| *byte == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            let has =
                |flag: &str, value: &str| args.windows(2).any(|w| w[0] == flag && w[1] == value);
            if has("-namespace", ctrd.namespace())
                && has("-id", id)
                && !args.iter().any(|arg| arg == "start")
            {
                found.push(pid);
            }
        }
        match found.as_slice() {
            [pid] => Ok(*pid),
            _ => bail!(
                "{}: expected one shim daemon ({}) serving {id}, found pids {found:?}",
                self.label,
                binary.display()
            ),
        }
    }

    /// SIGKILL of the task, its stop awaited, then `task delete` and `container rm`: the
    /// lifecycle test's round.
    pub fn kill_and_remove(&self, ctrd: &PrivateContainerd, id: &str) -> Result<()> {
        ctrd.ctr_ok(&["task", "kill", "-s", "SIGKILL", id])
            .with_context(|| format!("{}: kill {id}", self.label))?;
        if !eventually(STOP, || {
            task_status(ctrd, id).is_ok_and(|status| status == "STOPPED")
        }) {
            bail!(
                "{}: task {id} did not stop {}s after SIGKILL: {}",
                self.label,
                STOP.as_secs(),
                ctrd.ctr_ok(&["task", "ls"]).unwrap_or_default().trim()
            );
        }
        ctrd.ctr_ok(&["task", "delete", id])
            .with_context(|| format!("{}: task delete {id}", self.label))?;
        ctrd.ctr_ok(&["container", "rm", id])
            .with_context(|| format!("{}: container rm {id}", self.label))?;
        Ok(())
    }
}

/// Whether process `pid` runs qemu.
fn is_qemu(pid: i32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| exe.to_string_lossy().contains("qemu-system-x86_64"))
}

/// The children of process `pid` (urunc-rs's task process is the init of the VMM's pid
/// namespace, the VMM its child; Go urunc's task process becomes the VMM).
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// Column `column` (1: pid, 2: status) of task `id`'s line in `ctr task ls`.
fn task_column(ctrd: &PrivateContainerd, id: &str, column: usize) -> Result<String> {
    let listing = ctrd.ctr_ok(&["task", "ls"])?;
    listing
        .lines()
        .find_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            (columns.first() == Some(&id))
                .then(|| columns.get(column).map(|value| value.to_string()))?
        })
        .with_context(|| format!("task {id} not in {listing}"))
}

fn task_pid(ctrd: &PrivateContainerd, id: &str) -> Result<i32> {
    Ok(task_column(ctrd, id, 1)?.parse()?)
}

fn task_status(ctrd: &PrivateContainerd, id: &str) -> Result<String> {
    task_column(ctrd, id, 2)
}
