//! The VMM's confined root, built at Create by a helper process so that Start's child only
//! joins it.
//!
//! Building the root costs ~300 system calls (a mount point, a bind mount and its flags for
//! each of qemu's ~110 files) and detaching the old root one RCU grace period (0.1-13 ms on
//! these 2-core VMs). Done by the VMM child, all of it sat between Start's fork and exec. Now
//! Create forks a helper (a child of the shim that never execs) that unshares a mount
//! namespace, builds and enters the root, reports `ready` on a pipe and then only waits; Start
//! reads that report (the helper is normally done long before: it ran while containerd answered
//! Create and sent Start), opens the helper's namespace, releases the helper, and its VMM child
//! `setns`es into the namespace before exec.
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
use std::time::Duration;

use super::apply::{decimal, Confinement, DECIMAL_DIGITS};
use super::held_namespace::HeldMountNamespace;
use crate::container::cpu_sample::schedstat;
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
    forked_at_ns: u64,
    report: File,
    /// Closing it (dropping this) ends the helper.
    _release: OwnedFd,
}

/// A built root, held open, and what the VMM child still does before exec.
pub struct BuiltRoot {
    confinement: Confinement,
    namespace: File,
    /// From the helper's fork to its `ready`.
    pub build: Duration,
    /// How long the root had been ready when Start asked for it (zero: Start waited).
    pub ready_for: Duration,
    /// The helper's time on a CPU and waiting for one (`/proc/<pid>/schedstat`), if readable.
    pub helper_schedstat: Option<(Duration, Duration)>,
}

impl Confinement {
    /// Forks the helper that builds this confinement's root; returns at once.
    pub fn start_building(self, router: &ExitRouter) -> Result<RootInProgress> {
        let (report, report_end) = pipe()?;
        let (release_end, release) = pipe()?;
        let args = argv_area();
        let forked_at_ns = monotonic_ns();
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
            forked_at_ns,
            report: File::from(report),
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
        let asked_at_ns = monotonic_ns();
        let mut text = Vec::new();
        let mut chunk = [0u8; 512];
        let ready_at_ns = loop {
            if let Some(at) = ready_time(&text) {
                break at;
            }
            match self.report.read(&mut chunk) {
                Ok(0) => return Err(failed(&text)),
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ShimError::io("read the VMM root helper's report", e)),
            }
        };
        let path = format!("/proc/{}/ns/mnt", self.pid);
        let namespace = File::open(&path)
            .map_err(|e| ShimError::io(format!("open the VMM's built root {path}"), e))?;
        let helper_schedstat = schedstat(self.pid);
        Ok(BuiltRoot {
            confinement: self.confinement,
            namespace,
            build: Duration::from_nanos(ready_at_ns.saturating_sub(self.forked_at_ns)),
            ready_for: Duration::from_nanos(asked_at_ns.saturating_sub(ready_at_ns)),
            helper_schedstat,
        })
        // Dropping the release end here ends the helper; the shim's file now holds the root.
    }
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
                let mut digits = [0u8; DECIMAL_DIGITS];
                let at = decimal(monotonic_ns(), &mut digits);
                for part in [READY, at, b"\n"] {
                    libc::write(libc::STDOUT_FILENO, part.as_ptr().cast(), part.len());
                }
                // Until the shim opened the namespace and closed its end (or died).
                let mut byte = 0u8;
                while libc::read(libc::STDIN_FILENO, (&mut byte as *mut u8).cast(), 1) < 0
                    && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                }
                0
            }
            Err(error) => error.raw_os_error().unwrap_or(libc::EIO),
        };
        libc::_exit(code)
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

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
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
fn monotonic_ns() -> u64 {
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
