//! Running a helper program (iptables) inside the worker's namespace.
//!
//! The program is forked from the worker thread, so it starts in the worker's
//! namespace: no setns anywhere. A shim reaps with `waitpid(-1)`, which would
//! steal the status of any ordinary child, so the worker never has one: it
//! clones a "clone child" (exit signal 0, which `waitpid(-1)` does not
//! collect), and that child forks the program, waits for it and exits with
//! its status. (The child cannot exec the program itself: exec turns a clone
//! child back into an ordinary one.)

use std::ffi::CString;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdout, pipe2};

/// Where helper programs are looked for; the shim's PATH may lack sbin.
const SEARCH_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const CHILD_STACK: usize = 64 * 1024;

/// How a helper program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramOutput {
    /// The exit code, or 128 + signal.
    pub code: i32,
    /// Its stdout and stderr, merged.
    pub output: String,
}

impl ProgramOutput {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Finds `name` in the usual system folders.
pub fn find_program(name: &str) -> Option<PathBuf> {
    SEARCH_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

/// Runs `program args...` in the calling thread's network namespace and
/// waits for it.
pub fn run_in_current_netns(program: &Path, args: &[&str]) -> std::io::Result<ProgramOutput> {
    let to_c = |s: &str| {
        CString::new(s).map_err(|_| std::io::Error::other(format!("NUL byte in argument {s:?}")))
    };
    let path = to_c(&program.to_string_lossy())?;
    let mut argv = vec![path.clone()];
    for arg in args {
        argv.push(to_c(arg)?);
    }
    let envp = [to_c("PATH=/usr/sbin:/usr/bin:/sbin:/bin")?];
    // The pointer arrays execve takes, built before the clone: the clone child of a
    // multi-threaded process may find malloc's lock held by a thread that does not exist in
    // it, so it must not allocate.
    let argv_ptrs = null_terminated(&argv);
    let envp_ptrs = null_terminated(&envp);
    let (reader, writer) = pipe2(OFlag::O_CLOEXEC)?;
    let mut stack = vec![0u8; CHILD_STACK];
    let child = Box::new(|| {
        // Only raw system calls from here: glibc's fork() takes malloc's and other locks for
        // its atfork handlers, which can be held forever in this copy of a threaded process
        // (seen as a futex hang); the raw clone takes none.
        // SAFETY: a plain fork (SIGCHLD, no shared memory); the child only dup2s and execs.
        let forked = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
        match forked {
            0 => {
                if dup2_stdout(&writer).is_ok() && dup2_stderr(&writer).is_ok() {
                    // SAFETY: both arrays are null-terminated and outlive the call.
                    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
                }
                // SAFETY: _exit is always safe; it skips atexit handlers.
                unsafe { libc::_exit(127) }
            }
            child if child > 0 => loop {
                match waitpid(nix::unistd::Pid::from_raw(child as i32), None) {
                    Ok(WaitStatus::Exited(_, code)) => return code as isize,
                    Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as isize,
                    Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
                    Err(_) => return 125,
                }
            },
            _ => 125,
        }
    });
    // SAFETY: the child only forks (raw), waits and exits (see above); without
    // CLONE_VM it works on its own copy of memory; signal None = a clone child.
    let pid = unsafe { nix::sched::clone(child, &mut stack, CloneFlags::empty(), None) }?;
    drop(writer);
    let mut output = String::new();
    let read = std::fs::File::from(reader).read_to_string(&mut output);
    let status = loop {
        match waitpid(pid, Some(WaitPidFlag::__WCLONE)) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    read?;
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        other => {
            return Err(std::io::Error::other(format!(
                "unexpected wait status {other:?}"
            )))
        }
    };
    Ok(ProgramOutput { code, output })
}

/// The `char *const[]` execve takes: pointers into `strings`, then NULL.
fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A shim-like reaper calling `waitpid(-1)` in a tight loop must not
    /// steal the helper's status, and the helper's output and exit code
    /// must come back intact.
    #[test]
    fn a_waitpid_all_reaper_cannot_steal_the_status() {
        let stop = Arc::new(AtomicBool::new(false));
        let reaper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG));
                }
            })
        };
        let sh = find_program("sh").expect("sh exists");
        for round in 0..20 {
            let out = run_in_current_netns(&sh, &["-c", &format!("echo round{round}; exit 3")])
                .expect("helper runs");
            assert_eq!(out.code, 3);
            assert_eq!(out.output.trim(), format!("round{round}"));
        }
        stop.store(true, Ordering::Relaxed);
        reaper.join().unwrap();
    }

    /// The clone child is a copy of a threaded process: a thread that held malloc's lock at
    /// the clone does not exist in it, so the child must take no lock (glibc's fork() takes
    /// malloc's for its atfork handlers, and hung on the futex forever).
    #[test]
    fn a_thread_allocating_meanwhile_cannot_hang_the_helper() {
        let stop = Arc::new(AtomicBool::new(false));
        let allocator = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(vec![0u8; 4096]);
                }
            })
        };
        let sh = find_program("sh").expect("sh exists");
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..200 {
                let out = run_in_current_netns(&sh, &["-c", "exit 0"]).expect("helper runs");
                assert_eq!(out.code, 0);
            }
            let _ = done.send(());
        });
        let outcome = finished.recv_timeout(std::time::Duration::from_secs(60));
        stop.store(true, Ordering::Relaxed);
        allocator.join().unwrap();
        assert!(
            outcome.is_ok(),
            "200 helpers did not all end within 60 s: one hung"
        );
    }
}
