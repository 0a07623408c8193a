//! Finding and killing the processes a test left behind.
//!
//! A containerd shim outlives containerd (it is re-parented to init) and a
//! VMM outlives its shim when the shim dies badly. Everything a private
//! containerd starts refers to its private folder: shims run with their
//! bundle (under the state folder) as cwd, VMMs name files in the rootfs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{HarnessError, Result};

/// Every process but this one, as its pid and its `/proc/<pid>` folder.
/// Processes can exit right after being listed: readers of the folder must
/// treat unreadable files as "gone".
pub fn other_processes() -> Vec<(i32, PathBuf)> {
    let own_pid = std::process::id() as i32;
    let Ok(proc_entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<i32>().ok()?;
            (pid != own_pid).then(|| (pid, entry.path()))
        })
        .collect()
}

/// Processes (other than this one) whose command line or cwd mentions `dir`.
pub fn processes_referring_to(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for (pid, proc_dir) in other_processes() {
        // A process can exit between listing and reading: unreadable means gone.
        let cmdline = std::fs::read(proc_dir.join("cmdline"))
            .map(|raw| {
                String::from_utf8_lossy(&raw)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let cwd = std::fs::read_link(proc_dir.join("cwd"))
            .map(|path| path.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cmdline.contains(&needle) || cwd.starts_with(&needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// SIGKILLs every process referring to `dir` and waits until they are gone;
/// returns what it killed, so a caller can report that cleanup was needed.
pub fn kill_processes_referring_to(dir: &Path) -> Result<Vec<(i32, String)>> {
    let stragglers = processes_referring_to(dir);
    for (pid, _) in &stragglers {
        // ESRCH: it exited on its own meanwhile, which is what we want.
        match kill(Pid::from_raw(*pid), Signal::SIGKILL) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(errno) => {
                return Err(HarnessError::Invalid {
                    field: "pid",
                    value: pid.to_string(),
                    reason: format!("SIGKILL failed: {errno}"),
                })
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive: Vec<i32> = stragglers
            .iter()
            .map(|(pid, _)| *pid)
            .filter(|pid| is_alive(*pid))
            .collect();
        if alive.is_empty() {
            return Ok(stragglers);
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                what: format!("killed processes {alive:?} to exit"),
                seconds: 10,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True while `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// The parent of process `pid`, while it exists.
pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: the fields start after its `)`.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `ancestor` is the parent of `pid` or the parent of its parent: a VMM in a pid
/// namespace of its own runs under the shim's forwarding init, the shim's child.
pub fn child_or_grandchild_of(pid: i32, ancestor: i32) -> bool {
    let parent = parent_of(pid);
    parent == Some(ancestor) || parent.and_then(parent_of) == Some(ancestor)
}

/// Processes executing `binary` (their `/proc/<pid>/exe`) whose command line mentions
/// `needle`: the VMMs one private containerd started (their argv names its state folder or
/// its namespace).
pub fn processes_running(binary: &Path, needle: &str) -> Vec<(i32, String)> {
    other_processes()
        .into_iter()
        .filter(|(_, proc_dir)| {
            std::fs::read_link(proc_dir.join("exe")).is_ok_and(|exe| exe == binary)
        })
        .filter_map(|(pid, proc_dir)| {
            let cmdline = std::fs::read(proc_dir.join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some((pid, cmdline))
        })
        .collect()
}

/// The tap (or tun) devices process `pid` holds open: the `iff:` line the kernel writes in
/// the fdinfo of a file descriptor attached to one.
pub fn open_taps(pid: i32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("iff:"))
                .map(|name| name.trim().to_string())
        })
        .collect()
}

/// The files process `pid` holds open, as the kernel names them.
pub fn open_files(pid: i32) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .collect()
}
