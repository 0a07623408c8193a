//! A confined root built at Create by a helper process, for a process spawned later (virtiofsd)
//! that only joins it; and the report pipe such children (this helper, the VMM's own waiting
//! process in [`super::waiting_vmm`]) write their steps and `ready` to.
//!
//! Building the root costs ~300 system calls (a mount point, a bind mount and its flags for
//! each of qemu's ~110 files) and detaching the old root one RCU grace period (0.1-13 ms on
//! these 2-core VMs): off Start's path. Create forks a helper (a child of the shim that never
//! execs) that unshares a mount namespace, builds and enters the root, reports `ready` on a
//! pipe and then only waits; the caller reads that report, opens the helper's namespace,
//! releases the helper, and its child `setns`es into the namespace before exec.
//!
//! Nothing outlives the shim: the helper's only link is its `release` pipe, whose write end
//! only the shim holds (close-on-exec, and every other helper closes what it inherited), so the
//! helper exits at the end of the pipe, when the shim drops it (Delete without Start, a failed
//! Create) or dies (SIGKILL). The namespace is freed with its last holder, the helper or the
//! shim's open file; nothing of it is on disk, and its mounts are private to it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::apply::{decimal, errno_of, Confinement, DECIMAL_DIGITS};
use super::held_namespace::HeldMountNamespace;
use crate::error::{Result, ShimError};
use crate::reaper::ExitRouter;
use crate::spawn::retitle::{argv_area, retitle};

/// What `ps` shows for the helper.
const TITLE: &[u8] = b"urunc-vmm-root\0";
/// The helper's last line once its root is built, followed by the CLOCK_MONOTONIC time (ns)
/// at which it was.
const READY: &[u8] = b"ready ";

/// A root being built: the helper's pid, its report and the end of its release pipe.
pub struct RootInProgress {
    confinement: Confinement,
    pid: i32,
    report: HelperReport,
    /// Closing it (dropping this) ends the helper.
    _release: OwnedFd,
}

/// A built root, held open, and what the child still does before exec.
pub struct BuiltRoot {
    confinement: Confinement,
    namespace: File,
}

impl Confinement {
    /// Forks the helper that builds this confinement's root; returns at once.
    pub fn start_building(self, router: &ExitRouter) -> Result<RootInProgress> {
        let (report, report_end) = pipe()?;
        let (release_end, release) = pipe()?;
        let args = argv_area();
        let child_report = report_end.as_raw_fd();
        let child_release = release_end.as_raw_fd();
        let confinement = &self;
        // SAFETY: the helper makes raw system calls on memory allocated before the fork and
        // ends with `_exit`.
        let (pid, _exit) = unsafe {
            router.fork_helper(|| helper(confinement, child_release, child_report, args))
        }
        .map_err(|e| ShimError::io("fork the helper that builds the VMM's root", e))?;
        Ok(RootInProgress {
            confinement: self,
            pid,
            report: HelperReport::new(report),
            _release: release,
        })
    }
}

impl RootInProgress {
    /// The helper's pid.
    #[cfg(test)]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the helper's report (blocking); on `ready`, opens its namespace and lets the
    /// helper go. The helper's failure is returned with its own line (step and path).
    pub fn finish(mut self) -> Result<BuiltRoot> {
        self.report.wait_ready()?;
        Ok(BuiltRoot {
            namespace: open_mount_namespace(self.pid)?,
            confinement: self.confinement,
        })
        // Dropping the release end here ends the helper; the shim's file now holds the root.
    }
}

/// The read end of a helper's report pipe: its `ready` line, or the line of its failed step.
pub(super) struct HelperReport {
    file: File,
    text: Vec<u8>,
}

impl HelperReport {
    pub(super) fn new(file: OwnedFd) -> Self {
        Self {
            file: File::from(file),
            text: Vec::new(),
        }
    }

    /// Blocks until the `ready` line (its CLOCK_MONOTONIC time in ns); the end of the pipe
    /// before it is the helper's failure, with its line.
    pub(super) fn wait_ready(&mut self) -> Result<u64> {
        loop {
            if let Some(at) = ready_time(&self.text) {
                return Ok(at);
            }
            if !self.read_more()? {
                return Err(failed(&self.text));
            }
        }
    }

    /// Blocks until the pipe's end (every writer closed it, or exec'd: its copies are
    /// close-on-exec); what the helper wrote after its `ready` line is a failed step's line.
    pub(super) fn wait_end(&mut self) -> Result<()> {
        while self.read_more()? {}
        let after_ready = match self.text.iter().position(|&b| b == b'\n') {
            Some(end) => &self.text[end + 1..],
            None => &self.text[..],
        };
        if after_ready.is_empty() {
            Ok(())
        } else {
            Err(failed(after_ready))
        }
    }

    /// One read; false at the end of the pipe.
    fn read_more(&mut self) -> Result<bool> {
        let mut chunk = [0u8; 512];
        loop {
            match self.file.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.text.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ShimError::io(
                        "read the report of the VMM's helper process",
                        e,
                    ))
                }
            }
        }
    }
}

/// The helper's mount namespace, the VMM's confined root, opened to be held.
pub(super) fn open_mount_namespace(pid: i32) -> Result<File> {
    let path = format!("/proc/{pid}/ns/mnt");
    File::open(&path).map_err(|e| ShimError::io(format!("open the VMM's built root {path}"), e))
}

impl BuiltRoot {
    /// Makes the child of `command` join the root and confine itself just before exec, after
    /// the hooks registered earlier (joining namespaces and the cgroup must happen while still
    /// privileged). Returns the namespace, to hold until the VMM's exit was reported.
    pub fn install(self, command: &mut Command) -> Result<HeldMountNamespace> {
        // The child's copy: close-on-exec, closed in the shim when `command` is dropped.
        let for_child = self
            .namespace
            .try_clone()
            .map_err(|e| ShimError::io("duplicate the VMM's root namespace file", e))?;
        let confinement = self.confinement;
        // SAFETY: `enter_built_root` makes only raw system calls on memory allocated before the
        // fork.
        unsafe {
            command.pre_exec(move || confinement.enter_built_root(for_child.as_raw_fd()));
        }
        Ok(HeldMountNamespace::from_file(self.namespace))
    }
}

/// The helper's whole life, in the forked child: stdin is the release pipe, stdout and stderr
/// the report pipe, every other descriptor closed; build, report, wait for the release.
fn helper(
    confinement: &Confinement,
    release: RawFd,
    report: RawFd,
    args: Option<(usize, usize)>,
) -> ! {
    // SAFETY: async-signal-safe system calls on descriptors and memory of this process.
    unsafe {
        libc::dup2(release, libc::STDIN_FILENO);
        libc::dup2(report, libc::STDOUT_FILENO);
        libc::dup2(report, libc::STDERR_FILENO);
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        retitle(TITLE, args);
        let code = match confinement.build_root_and_enter() {
            Ok(()) => {
                report_ready();
                // Until the shim opened the namespace and closed its end (or died).
                let mut byte = 0u8;
                while libc::read(libc::STDIN_FILENO, (&mut byte as *mut u8).cast(), 1) < 0
                    && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                }
                0
            }
            Err(error) => errno_of(&error),
        };
        libc::_exit(code)
    }
}

/// In a helper: writes its `ready` line, with the time, to its stdout (the report pipe).
/// Async-signal-safe.
pub(super) fn report_ready() {
    let mut digits = [0u8; DECIMAL_DIGITS];
    let at = decimal(monotonic_ns(), &mut digits);
    for part in [READY, at, b"\n"] {
        // SAFETY: write(2) from live buffers.
        unsafe { libc::write(libc::STDOUT_FILENO, part.as_ptr().cast(), part.len()) };
    }
}

/// The time in the helper's `ready` line, once the line is whole.
fn ready_time(text: &[u8]) -> Option<u64> {
    let at = text.windows(READY.len()).position(|w| w == READY)?;
    let rest = &text[at + READY.len()..];
    let end = rest.iter().position(|&b| b == b'\n')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The helper ended without `ready`: its line names the step, the path and the errno.
fn failed(text: &[u8]) -> ShimError {
    let report = String::from_utf8_lossy(text).trim().to_string();
    let errno = report
        .rsplit_once("errno ")
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(libc::EIO);
    let report = report
        .strip_prefix("urunc-rs: confining the VMM: ")
        .unwrap_or(&report)
        .to_string();
    ShimError::VmmRoot {
        report: if report.is_empty() {
            "the helper ended without a report".to_string()
        } else {
            report
        },
        source: io::Error::from_raw_os_error(errno),
    }
}

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors that nothing else owns.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(ShimError::io(
            "create a pipe to the VMM root helper",
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: both are fresh descriptors owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// CLOCK_MONOTONIC in ns (async-signal-safe: a vDSO call).
pub(super) fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills a stack value.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_is_read_only_once_whole_and_a_failure_keeps_step_path_and_errno() {
        assert_eq!(ready_time(b"ready 12"), None);
        assert_eq!(ready_time(b"ready 12\n"), Some(12));
        let error = failed(b"urunc-rs: confining the VMM: bind-mount /k: errno 2\n");
        match error {
            ShimError::VmmRoot { report, source } => {
                assert_eq!(report, "bind-mount /k: errno 2");
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("{other}"),
        }
    }
}
