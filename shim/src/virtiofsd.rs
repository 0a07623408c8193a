//! The virtiofsd of a virtiofs rootfs (runtime-core's `shared_fs` plans its argv): spawned
//! through the reaper, ready when its vhost-user socket exists, and stopped from its persisted
//! record alone, so `delete` after a shim crash can stop it too.
//!
//! It runs confined like the VMM, through the same `confine` plan and apply: in the
//! container's cgroup (its memory counts, a Pause freezes it, `kill --all` reaches it), in a
//! mount namespace whose read-only root holds only its program and libraries, the rootfs it
//! serves, its socket's folder and its pid file's folder, as root with only the capabilities
//! runtime-core lists, and no_new_privs. The C daemon's own sandbox runs inside that
//! (`-o sandbox=chroot`, see `shared_fs`): once the guest connected it chroots into the
//! rootfs, installs its seccomp allowlist and drops to the serving capabilities. The spec's
//! seccomp profile is not stacked on it: it is written for the container's process (the VMM),
//! and the daemon's allowlist is already narrower than any runtime default profile.
//!
//! The C daemon leaves its socket and a pid file in `/run/virtiofsd` when it is killed; both
//! are removed here. Its pid file also finds a daemon whose identity was never recorded (a
//! shim that died between the spawn and the state write).

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use runtime_core::oci::{Capabilities, Process};
use runtime_core::{Accel, VirtiofsdPlan};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::confine::{self, ConfinePlan, ConfineRequest, ConfineTarget, Confinement, GuestFiles};
use crate::error::{Result, ShimError};
use crate::reaper::{ExitCode, ExitRouter};
use crate::spawn::{container_command, ChildSetup, NamespacePlan};
use crate::state::ProcessIdentity;
use crate::stdio::ProcessStdio;

/// How long the daemon may take to create its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a SIGKILLed daemon may take to be gone.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);
/// Lines of its log quoted when it fails to come up.
const LOG_TAIL_LINES: usize = 5;

/// What the persisted state records of the daemon, before it is spawned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtiofsdRecord {
    pub program: PathBuf,
    pub socket: PathBuf,
    pub pid_file: Option<PathBuf>,
    /// Recorded as soon as it is spawned.
    pub process: Option<ProcessIdentity>,
}

impl VirtiofsdRecord {
    pub fn planned(plan: &VirtiofsdPlan, socket: &Path) -> Self {
        VirtiofsdRecord {
            program: plan.program.clone(),
            socket: socket.to_path_buf(),
            pid_file: plan.pid_file.clone(),
            process: None,
        }
    }
}

/// Where the daemon runs: the empty folder its confined root is mounted on and the rootfs it
/// serves.
pub struct DaemonSite<'a> {
    pub new_root: &'a Path,
    pub served: &'a Path,
}

/// The daemon's confinement, planned with the VMM's `confine` (Create fails here, naming the
/// field, if it cannot be): its root holds the served rootfs, its socket's folder and its pid
/// file's folder, writable; it runs as root with `plan.capabilities` only.
pub fn confine(
    plan: &VirtiofsdPlan,
    socket: &Path,
    site: &DaemonSite,
) -> Result<(ConfinePlan, Confinement)> {
    let mut writable_dirs = vec![site.served.to_path_buf()];
    writable_dirs.extend(socket.parent().map(Path::to_path_buf));
    if let Some(pid_dir) = plan.pid_file.as_ref().and_then(|file| file.parent()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(pid_dir)
            .map_err(|e| ShimError::io(format!("create {}", pid_dir.display()), e))?;
        writable_dirs.push(pid_dir.to_path_buf());
    }
    let guest = GuestFiles {
        writable_dirs,
        ..GuestFiles::default()
    };
    let process = Process {
        capabilities: Capabilities {
            bounding: plan.capabilities.clone(),
            effective: plan.capabilities.clone(),
            permitted: plan.capabilities.clone(),
            ..Capabilities::default()
        },
        ..Process::default()
    };
    confine::prepare(&ConfineRequest {
        program: &plan.program.display().to_string(),
        search_path: &crate::host::vmm_search_path(),
        target: ConfineTarget {
            new_root: site.new_root,
            guest: &guest,
            accel: Accel::Tcg,
            networked: false,
            process: Some(&process),
        },
        data_dirs: None,
    })
}

/// Spawns the daemon confined, in its own session, its stdout and stderr appended to `log`.
pub fn spawn(
    router: &ExitRouter,
    plan: &VirtiofsdPlan,
    (confined, confinement): (ConfinePlan, Confinement),
    cgroup_join: Vec<CString>,
    log: &Path,
) -> Result<(ProcessIdentity, oneshot::Receiver<ExitCode>)> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| ShimError::io(format!("open {}", log.display()), e))?;
    let stderr = log_file
        .try_clone()
        .map_err(|e| ShimError::io(format!("dup {}", log.display()), e))?;
    let stdin = std::fs::File::open("/dev/null")
        .map_err(|e| ShimError::io("open /dev/null".to_string(), e))?;
    let stdio = ProcessStdio {
        stdin: OwnedFd::from(stdin),
        stdout: OwnedFd::from(log_file),
        stderr: OwnedFd::from(stderr),
    };
    let setup = ChildSetup {
        namespaces: NamespacePlan::joins_only(&[])?,
        cgroup_join,
    };
    let program = confined.program.display().to_string();
    let mut command = container_command(&program, &plan.args, &[], stdio, setup);
    // The root is built in a helper process, as the VMM's is; the daemon's child joins it
    // after the cgroup step container_command registered (that needs the privileges the
    // confinement drops). Once the daemon runs, its own process holds the namespace.
    let root = confinement.start_building(router)?.finish()?;
    let _held_until_spawned = root.install(&mut command)?;
    let (child, exit) = router.spawn(&mut command).map_err(|e| {
        ShimError::io(
            format!(
                "start {} confined (its log {} has the failed step)",
                program,
                log.display()
            ),
            e,
        )
    })?;
    let pid = child.id() as i32;
    match ProcessIdentity::of(pid) {
        Some(identity) => Ok((identity, exit)),
        // Gone before its identity could be read: the reaper has its status, or soon will.
        None => Err(ShimError::Virtiofsd {
            program: plan.program.clone(),
            pid,
            reason: format!("{} at once; it said: {}", exit_status(exit), tail(log)),
        }),
    }
}

/// How a daemon that already ended ended, once the reaper reports it (a blocking wait: it
/// runs on the Create's blocking steps, and the reaper reports a reaped child at once).
fn exit_status(mut exit: oneshot::Receiver<ExitCode>) -> String {
    let started = Instant::now();
    loop {
        match exit.try_recv() {
            Ok(code) => return format!("exited with status {code}"),
            Err(oneshot::error::TryRecvError::Closed) => return "was lost by the reaper".into(),
            Err(oneshot::error::TryRecvError::Empty) if started.elapsed() > EXIT_TIMEOUT => {
                return format!("exited (no status reported within {EXIT_TIMEOUT:?})")
            }
            Err(oneshot::error::TryRecvError::Empty) => std::thread::sleep(POLL),
        }
    }
}

/// Waits until the daemon's socket exists; fails, quoting its log, if it exits first or
/// takes longer than [`READY_TIMEOUT`].
pub async fn wait_ready(
    record: &VirtiofsdRecord,
    pid: i32,
    exit: &mut oneshot::Receiver<ExitCode>,
    log: &Path,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if record.socket.exists() {
            return Ok(());
        }
        let failure = match exit.try_recv() {
            Ok(code) => Some(format!("exited with status {code}")),
            Err(oneshot::error::TryRecvError::Closed) => Some("was lost by the reaper".into()),
            Err(oneshot::error::TryRecvError::Empty) if started.elapsed() > READY_TIMEOUT => {
                Some(format!("did not listen within {READY_TIMEOUT:?}"))
            }
            Err(oneshot::error::TryRecvError::Empty) => None,
        };
        if let Some(failure) = failure {
            return Err(ShimError::Virtiofsd {
                program: record.program.clone(),
                pid,
                reason: format!(
                    "{failure} before its socket {} appeared; it said: {}",
                    record.socket.display(),
                    tail(log)
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops the daemon `record` names, if that very process still runs (SIGKILL: it holds no
/// state worth a graceful stop once the guest is gone), and removes its socket and pid file.
pub fn stop(record: &VirtiofsdRecord) -> Result<()> {
    let process = record.process.or_else(|| unrecorded_daemon(record));
    if let Some(process) = process {
        kill_and_wait(record, process)?;
    }
    for leftover in std::iter::once(&record.socket).chain(record.pid_file.as_ref()) {
        match std::fs::remove_file(leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ShimError::io(format!("remove {}", leftover.display()), e)),
        }
    }
    Ok(())
}

fn kill_and_wait(record: &VirtiofsdRecord, process: ProcessIdentity) -> Result<()> {
    if process.has_ended() {
        return Ok(());
    }
    match kill(Pid::from_raw(process.pid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => {
            return Err(ShimError::sys(
                format!("kill virtiofsd pid {}", process.pid),
                error,
            ))
        }
    }
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while !process.has_ended() {
        if Instant::now() > deadline {
            return Err(ShimError::Virtiofsd {
                program: record.program.clone(),
                pid: process.pid,
                reason: format!("survived SIGKILL for {EXIT_TIMEOUT:?}"),
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The daemon of a record written before its identity was: the pid in its pid file, if that
/// process's command line names this record's socket.
fn unrecorded_daemon(record: &VirtiofsdRecord) -> Option<ProcessIdentity> {
    let text = std::fs::read_to_string(record.pid_file.as_ref()?).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let socket_arg = format!("--socket-path={}", record.socket.display());
    cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == socket_arg.as_bytes())
        .then(|| ProcessIdentity::of(pid))
        .flatten()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn stop_removes_what_a_killed_daemon_leaves_and_finds_it_by_its_pid_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("virtiofs.sock");
        let pid_file = dir.path().join("daemon.pid");
        // A stand-in daemon whose command line names the socket, as virtiofsd's does.
        let socket_arg = format!("--socket-path={}", socket.display());
        // A loop, not one command the shell would exec in its place (and lose the argument).
        let mut child = Command::new("sh")
            .args(["-c", "while :; do sleep 0.1; done", "sh", &socket_arg])
            .spawn()
            .expect("spawn");
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_to_string(&cmdline).is_ok_and(|c| c.contains(&socket_arg)) {
            assert!(Instant::now() < deadline, "the stand-in never ran");
            std::thread::sleep(POLL);
        }
        std::fs::write(&socket, b"").expect("socket stand-in");
        std::fs::write(&pid_file, format!("{}\n", child.id())).expect("pid file");
        let record = VirtiofsdRecord {
            program: "sh".into(),
            socket: socket.clone(),
            pid_file: Some(pid_file.clone()),
            process: None,
        };
        let stopped = stop(&record);
        let status = child.wait();
        stopped.expect("stops");
        match status {
            Ok(status) => assert!(!status.success(), "it was killed"),
            // Another test of this binary reaps with waitpid(-1) and took the status; stop()
            // returned only after it saw the process end.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {}
            Err(e) => panic!("wait: {e}"),
        }
        assert!(!socket.exists() && !pid_file.exists());
        // Again: nothing left to do is not an error.
        stop(&record).expect("idempotent");
    }

    #[test]
    fn a_pid_file_naming_another_process_is_not_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("daemon.pid");
        std::fs::write(&pid_file, format!("{}\n", std::process::id())).expect("pid file");
        let record = VirtiofsdRecord {
            program: "virtiofsd".into(),
            socket: dir.path().join("virtiofs.sock"),
            pid_file: Some(pid_file),
            process: None,
        };
        assert_eq!(unrecorded_daemon(&record), None);
    }
}
