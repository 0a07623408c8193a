//! The VMM's own process, forked at Create and left waiting at its exec until Start.
//!
//! runc does this for a container: `runc create` leaves `runc init` waiting on an exec FIFO,
//! and `runc start` only lets it exec. Here Create forks one process, a child of the shim that
//! has not exec'd, which
//! 1. joins the container's cgroup (writing "0": the process has one thread) and namespaces,
//! 2. builds the VMM's confined root and enters it (the steps of [`super::root_helper`]),
//! 3. mounts the proc of its pid namespace, sets the spec's rlimits and identity,
//! 4. in a pid namespace of its own, splits off the forwarding init (`spawn::signal_init`),
//! 5. reports `ready` and waits on its control socket.
//!
//! All of that runs while containerd answers Create and sends Start, off Start's path. Start
//! opens the stdio and sends the three descriptors in one message; the process puts them on
//! 0, 1 and 2, installs the seccomp filter last and execs. Its report pipe is close-on-exec, so
//! its end tells Start the exec happened; a failed step writes its line there first.
//!
//! Nothing outlives the shim: the process exits at the end of its control socket, whose other
//! end only the shim holds (close-on-exec; every helper closes what it inherited). That is
//! when the shim drops it (a failed Create; Delete without Start, which also kills it and
//! waits for its exit so its cgroup can be removed) or dies (SIGKILL closes it too). Anything
//! but Start's message (one byte and three descriptors) ends it the same way.

use std::ffi::CString;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use tokio::sync::oneshot;

use super::apply::{errno_of, failed_step, failed_step_on, failure_on, Confinement};
use super::held_namespace::HeldMountNamespace;
use super::root_helper::{monotonic_ns, open_mount_namespace, pipe, report_ready, HelperReport};
use super::seccomp::SeccompFilter;
use crate::container::cpu_sample::schedstat;
use crate::error::{Result, ShimError};
use crate::reaper::{ExitCode, ExitRouter};
use crate::spawn::retitle::{argv_area, retitle, ArgvArea};
use crate::spawn::{join_cgroup, signal_init, NamespacePlan, PidNamespace};
use crate::stdio::ProcessStdio;

/// What `ps` shows for the process until it execs.
const TITLE: &[u8] = b"urunc-vmm-wait\0";
/// Start's one message: this byte, with the stdio descriptors attached.
const GO: u8 = b'g';
/// The process's control socket and report pipe, once it moved them (its stdio, until Start's).
const CONTROL_FD: RawFd = 0;
const REPORT_FD: RawFd = 1;

/// Everything the VMM's process needs besides its confinement, prepared before the fork.
pub struct VmmLaunch {
    /// The program's absolute path, visible at the same path in the confined root.
    pub program: CString,
    /// argv, starting with argv[0] (the plan's program name, as ps and the host's tools know
    /// the VMM).
    pub argv: Vec<CString>,
    /// `NAME=value` entries.
    pub env: Vec<CString>,
    /// The cgroup files it writes "0" to ([`crate::cgroup::Cgroup::join_files`]).
    pub cgroup_join: Vec<CString>,
    /// Without the mount namespace: its own is the confined root.
    pub namespaces: NamespacePlan,
    pub pid_namespace: PidNamespace,
    /// The spec's `linux.seccomp`, installed last, just before exec.
    pub seccomp: Option<SeccompFilter>,
}

/// The VMM's process between Create and Start.
pub struct WaitingVmm {
    pid: i32,
    exit: oneshot::Receiver<ExitCode>,
    router: ExitRouter,
    forked_at_ns: u64,
    report: HelperReport,
    /// Closing it (dropping this) ends the process.
    control: OwnedFd,
}

/// The process once it reported `ready`: all that is left is the exec.
pub struct ReadyVmm {
    waiting: WaitingVmm,
    namespace: std::fs::File,
    /// From the fork to `ready`.
    pub prepared_in: Duration,
    /// How long it had been ready when Start asked (zero: Start waited).
    pub ready_for: Duration,
}

/// A Start that failed (a step of the process, or its exec), with the process it failed in:
/// ending on its own, not yet reaped. [`WaitingVmm::abandon`] it before its cgroup is removed.
/// Boxed where returned: the process's descriptors and report make it large.
pub struct NotStarted {
    pub error: ShimError,
    pub process: WaitingVmm,
}

impl std::fmt::Debug for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotStarted")
            .field("error", &self.error)
            .field("pid", &self.process.pid)
            .finish()
    }
}

/// The exec'd VMM.
pub struct LaunchedVmm {
    pub pid: u32,
    pub exit: oneshot::Receiver<ExitCode>,
    /// The VMM's mount namespace, to hold until its exit was reported.
    pub namespace: HeldMountNamespace,
    /// The process's time on a CPU and waiting for one from its fork to just past its exec
    /// (its main thread's: the init's, in a pid namespace of its own), if readable.
    pub schedstat: Option<(Duration, Duration)>,
}

/// The pointer arrays execve takes, built before the fork (the child may not allocate).
struct ExecArrays {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl ExecArrays {
    fn of(launch: &VmmLaunch) -> Self {
        let terminated = |strings: &[CString]| {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Self {
            argv: terminated(&launch.argv),
            envp: terminated(&launch.env),
        }
    }
}

impl WaitingVmm {
    /// Forks the VMM's process (in the spec's pid namespace) and returns at once.
    pub fn fork(
        confinement: &Confinement,
        launch: &VmmLaunch,
        router: &ExitRouter,
    ) -> Result<Self> {
        let (report, report_end) = pipe()?;
        let (control, control_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| ShimError::sys("create the VMM process's control socket", e))?;
        let mut keep = launch.namespaces.fds();
        keep.sort_unstable();
        keep.dedup();
        let args = argv_area();
        let ends = (control_end.as_raw_fd(), report_end.as_raw_fd());
        let forked_at_ns = monotonic_ns();
        let (pid, exit) = launch
            .pid_namespace
            .fork_in(|| {
                let exec = ExecArrays::of(launch);
                // SAFETY: the child makes raw system calls on memory allocated before the fork
                // (`confinement`, `launch`, `exec`, `keep`) and ends with `_exit` or execve.
                unsafe {
                    router
                        .fork_helper(|| vmm_process(confinement, launch, &exec, ends, &keep, args))
                }
            })
            .map_err(|e| ShimError::io("fork the VMM's process", e))?;
        Ok(WaitingVmm {
            pid,
            exit,
            router: router.clone(),
            forked_at_ns,
            report: HelperReport::new(report),
            control,
        })
    }

    /// Blocks until the process reported `ready` (normally long before: it ran while
    /// containerd answered Create), then opens its mount namespace; a failed step is the
    /// error, with its line (step and path).
    pub fn ready(mut self) -> Result<ReadyVmm, Box<NotStarted>> {
        let asked_at_ns = monotonic_ns();
        let opened = self
            .report
            .wait_ready()
            .and_then(|ready_at_ns| Ok((ready_at_ns, open_mount_namespace(self.pid)?)));
        let (ready_at_ns, namespace) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                return Err(Box::new(NotStarted {
                    error,
                    process: self,
                }))
            }
        };
        Ok(ReadyVmm {
            prepared_in: Duration::from_nanos(ready_at_ns.saturating_sub(self.forked_at_ns)),
            ready_for: Duration::from_nanos(asked_at_ns.saturating_sub(ready_at_ns)),
            waiting: self,
            namespace,
        })
    }

    #[cfg(test)]
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Never started (Delete): kills the process and waits for its exit, so that its cgroup
    /// is empty when the teardown removes it.
    pub async fn abandon(self) {
        let WaitingVmm {
            pid,
            exit,
            router,
            control,
            ..
        } = self;
        router.kill_unreaped(pid, libc::SIGKILL);
        drop(control);
        // An Err is a process already reaped, its receiver answered by then.
        let _ = exit.await;
    }
}

impl ReadyVmm {
    /// Hands the process its stdio and blocks until it exec'd the VMM (its report pipe ended)
    /// or reported the step that failed. The shim's copies of `stdio` are closed: the VMM
    /// holds the only write ends of its output pipes.
    pub fn exec(self, stdio: ProcessStdio) -> Result<LaunchedVmm, Box<NotStarted>> {
        let ReadyVmm {
            mut waiting,
            namespace,
            ..
        } = self;
        let fds = [
            stdio.stdin.as_raw_fd(),
            stdio.stdout.as_raw_fd(),
            stdio.stderr.as_raw_fd(),
        ];
        let handed = sendmsg::<()>(
            waiting.control.as_raw_fd(),
            &[IoSlice::new(&[GO])],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| ShimError::sys("hand the VMM's process its stdio", e));
        drop(stdio);
        if let Err(error) = handed.and_then(|_| waiting.report.wait_end()) {
            return Err(Box::new(NotStarted {
                error,
                process: waiting,
            }));
        }
        Ok(LaunchedVmm {
            pid: waiting.pid as u32,
            schedstat: schedstat(waiting.pid),
            exit: waiting.exit,
            namespace: HeldMountNamespace::from_file(namespace),
        })
    }
}

/// The process's whole life, in the forked child: moves its control socket and report pipe
/// to 0, 1 and 2 and closes every other descriptor but the namespaces it joins; prepares;
/// reports `ready`; waits for Start. Ends in execve or `_exit`.
unsafe fn vmm_process(
    confinement: &Confinement,
    launch: &VmmLaunch,
    exec: &ExecArrays,
    (control, report): (RawFd, RawFd),
    keep: &[RawFd],
    args: ArgvArea,
) -> ! {
    // Nothing can be reported before the report pipe is in place: a failed move is the exit
    // status alone (Start then reads the pipe's end without a `ready`).
    for (from, to) in [
        (control, CONTROL_FD),
        (report, REPORT_FD),
        (report, libc::STDERR_FILENO),
    ] {
        if libc::dup2(from, to) < 0 {
            libc::_exit(errno_of(&std::io::Error::last_os_error()));
        }
    }
    close_all_above_stdio_but(keep);
    retitle(TITLE, args);
    let code = match prepare(confinement, launch, args) {
        Ok(()) => {
            report_ready();
            wait_and_exec(launch, exec)
        }
        Err(error) => errno_of(&error),
    };
    libc::_exit(code)
}

/// Steps 1-4 of the module's list; a failed one has written its line to the report pipe.
unsafe fn prepare(
    confinement: &Confinement,
    launch: &VmmLaunch,
    args: ArgvArea,
) -> std::io::Result<()> {
    // Own session: signals aimed at the shim's group never reach the VMM.
    if libc::setsid() < 0 {
        return Err(failed_step(
            &std::io::Error::last_os_error(),
            "start a session for",
            &launch.program,
        ));
    }
    // Before the root: the cgroup files are host paths.
    for file in &launch.cgroup_join {
        join_cgroup(file).map_err(|e| failed_step(&e, "join the cgroup through", file))?;
    }
    launch
        .namespaces
        .enter()
        .map_err(|e| failed_step(&e, "join the container's namespaces for", &launch.program))?;
    // The namespace files are joined: nothing of the shim's stays open past here.
    libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    confinement.build_root_and_enter()?;
    confinement.finish_inside()?;
    if matches!(launch.pid_namespace, PidNamespace::Fresh) {
        signal_init::split_off_init(args).map_err(|e| {
            failed_step(&e, "fork the init of the pid namespace of", &launch.program)
        })?;
    }
    Ok(())
}

/// Step 5: on Start's message, stdio in place, seccomp, exec. Returns the exit code when it
/// does not exec: 0 when the shim let it go, the errno of a failed step otherwise.
unsafe fn wait_and_exec(launch: &VmmLaunch, exec: &ExecArrays) -> libc::c_int {
    let Some(stdio) = receive_stdio() else {
        return 0;
    };
    // The report moves off stdout, close-on-exec: its end is the exec's success.
    let report = libc::fcntl(REPORT_FD, libc::F_DUPFD_CLOEXEC, 3);
    if report < 0 {
        return libc::EIO;
    }
    for (target, fd) in stdio.iter().enumerate() {
        if libc::dup2(*fd, target as RawFd) < 0 {
            return errno_of(&failure_on(
                report,
                "put in place the stdio of",
                &launch.program,
            ));
        }
    }
    for fd in stdio {
        libc::close(fd);
    }
    // As std's Command leaves a child: no signal blocked, SIGPIPE at its default action.
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    if let Some(filter) = &launch.seccomp {
        // Last: the profile may forbid what the steps before it do.
        if let Err(error) = filter.install() {
            return errno_of(&failed_step_on(
                report,
                &error,
                "install the seccomp filter of",
                &launch.program,
            ));
        }
    }
    libc::execve(
        launch.program.as_ptr(),
        exec.argv.as_ptr(),
        exec.envp.as_ptr(),
    );
    errno_of(&failure_on(report, "exec", &launch.program))
}

/// Start's message on the control socket: its three descriptors (close-on-exec until moved),
/// or `None` at the socket's end or on anything else.
unsafe fn receive_stdio() -> Option<[RawFd; 3]> {
    const FDS: usize = 3;
    // Room for one SCM_RIGHTS header and three descriptors, aligned for cmsghdr.
    #[repr(C, align(8))]
    struct Control([u8; 64]);
    let mut control = Control([0; 64]);
    let mut byte = 0u8;
    let mut iov = libc::iovec {
        iov_base: (&mut byte as *mut u8).cast(),
        iov_len: 1,
    };
    let mut message: libc::msghdr = std::mem::zeroed();
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = libc::CMSG_SPACE((FDS * size_of::<RawFd>()) as u32) as _;
    let received = loop {
        let n = libc::recvmsg(CONTROL_FD, &mut message, libc::MSG_CMSG_CLOEXEC);
        if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break n;
        }
    };
    let header = libc::CMSG_FIRSTHDR(&message);
    if received != 1 || byte != GO || header.is_null() {
        return None;
    }
    let header = &*header;
    let expected = libc::CMSG_LEN((FDS * size_of::<RawFd>()) as u32) as usize;
    if header.cmsg_level != libc::SOL_SOCKET
        || header.cmsg_type != libc::SCM_RIGHTS
        || header.cmsg_len as usize != expected
    {
        return None;
    }
    let data = libc::CMSG_DATA(header).cast::<RawFd>();
    Some([
        data.read_unaligned(),
        data.add(1).read_unaligned(),
        data.add(2).read_unaligned(),
    ])
}

/// Closes every descriptor from 3 up except `keep` (sorted, deduplicated, all above 2).
unsafe fn close_all_above_stdio_but(keep: &[RawFd]) {
    let mut from = 3u32;
    for &fd in keep {
        let fd = fd as u32;
        if fd > from {
            libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32);
        }
        from = from.max(fd + 1);
    }
    libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32);
}
