//! A pid 1 that does not hide signals, for a VMM in a pid namespace of its own.
//!
//! pid 1 of a pid namespace gets only the signals it installed a handler for: firecracker and
//! solo5-spt install none for SIGTERM, so as pid 1 they never see the caller's SIGTERM and
//! every stop waits for the whole grace period. So the child forks once more between fork and
//! exec (after the confinement, before the VMM's seccomp filter and its stdio): the VMM
//! becomes pid 2, where SIGTERM has its default effect, and pid 1 stays behind as a minimal
//! init that forwards every signal it receives to the VMM and exits with the VMM's status
//! (128 + the signal when a signal ended it, containerd's encoding). The init has every signal blocked and takes
//! them with `sigwaitinfo`: a blocked signal is queued even for pid 1. It closes every file
//! descriptor it inherited (it never execs, so close-on-exec would not close them): it pins
//! nothing, and the VMM's stdio reaches EOF when the VMM ends. Only async-signal-safe calls.

use super::retitle::{retitle, ArgvArea};

/// What `ps` shows for the init (see [`retitle`]).
const TITLE: &[u8] = b"urunc-vmm-init\0";

/// In the VMM's process, after its confinement and before its seccomp filter: forks; returns
/// in the child, which goes on to become the VMM, while this process stays behind as pid 1.
///
/// # Safety
/// In a forked child of the shim only, with `args` read before that fork: it only calls
/// async-signal-safe functions (sigprocmask, fork, prctl, close_range, sigwaitinfo, waitpid,
/// kill, _exit), writes only its own argv memory and allocates nothing.
pub(crate) unsafe fn split_off_init(args: ArgvArea) -> std::io::Result<()> {
    // SAFETY: plain system calls on local, initialised signal sets.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        if libc::sigprocmask(libc::SIG_SETMASK, &all, &mut previous) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let vmm = libc::fork();
        if vmm < 0 {
            let error = std::io::Error::last_os_error();
            libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
            return Err(error);
        }
        if vmm == 0 {
            // The VMM: the signal mask it had, then on to exec.
            if libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            return Ok(());
        }
        retitle(TITLE, args);
        forward_until_exit(vmm, &all)
    }
}

/// pid 1's whole life: forward signals to `vmm` until it exits, then exit with its status.
unsafe fn forward_until_exit(vmm: libc::pid_t, all: &libc::sigset_t) -> ! {
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    loop {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let signal = libc::sigwaitinfo(all, &mut info);
        if signal == libc::SIGCHLD {
            // Reap whatever ended (the VMM, or an orphan it left); exit with the VMM.
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == vmm {
                    let code = if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        libc::WEXITSTATUS(status)
                    };
                    libc::_exit(code);
                }
            }
        } else if signal > 0 {
            libc::kill(vmm, signal);
        }
    }
}
