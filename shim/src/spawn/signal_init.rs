//! A pid 1 that does not hide signals, for a VMM in a pid namespace of its own.
//!
//! pid 1 of a pid namespace gets only the signals it installed a handler for: firecracker and
//! solo5-spt install none for SIGTERM, so as pid 1 they never see the caller's SIGTERM and
//! every stop waits for the whole grace period. So the child forks once more between fork and
//! exec (after the confinement, before the VMM's seccomp filter): the VMM becomes pid 2, where
//! SIGTERM has its default effect, and pid 1 stays behind as a minimal init that forwards
//! every signal it receives to the VMM and exits with the VMM's status (128 + the signal when
//! a signal ended it, containerd's encoding). The init has every signal blocked and takes
//! them with `sigwaitinfo`: a blocked signal is queued even for pid 1. It closes every file
//! descriptor it inherited (it never execs, so close-on-exec would not close them): it pins
//! nothing, and the VMM's stdio reaches EOF when the VMM ends. Only async-signal-safe calls.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// What `ps` shows for the init: it never execs, so without this its command line would be
/// the shim's own (and tools counting shims by command line would count it).
/// NUL-terminated, as `PR_SET_NAME` reads it (at most 16 bytes).
const TITLE: &[u8] = b"urunc-vmm-init\0";

/// Registers the fork on `command`; call after the confinement was installed.
pub fn install(command: &mut Command) {
    let args = argv_area();
    // SAFETY: the closure only calls async-signal-safe functions (sigprocmask, fork, prctl,
    // close_range, sigwaitinfo, waitpid, kill, _exit), writes only its own argv memory and
    // allocates nothing.
    unsafe {
        command.pre_exec(move || split_off_init(args));
    }
}

/// This process's argv strings (`arg_start`, `arg_end` of /proc/self/stat), read before the
/// fork; `None` when unreadable (the init then keeps the shim's command line).
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49; `rest` starts at field 3.
    let start = fields.get(45)?.parse().ok()?;
    let end = fields.get(46)?.parse().ok()?;
    (end > start).then_some((start, end))
}

fn split_off_init(args: Option<(usize, usize)>) -> std::io::Result<()> {
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
        retitle(args);
        forward_until_exit(vmm, &all)
    }
}

/// Overwrites this (forked, copy-on-write) process's argv strings and name with [`TITLE`].
unsafe fn retitle(args: Option<(usize, usize)>) {
    libc::prctl(
        libc::PR_SET_NAME,
        TITLE.as_ptr().cast::<libc::c_char>() as libc::c_ulong,
        0,
        0,
        0,
    );
    let Some((start, end)) = args else {
        return;
    };
    let area = std::slice::from_raw_parts_mut(start as *mut u8, end - start);
    // The argv area ends with its own NUL; the title's terminator is kept too.
    let n = TITLE.len().min(area.len());
    area.fill(0);
    area[..n].copy_from_slice(&TITLE[..n]);
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
