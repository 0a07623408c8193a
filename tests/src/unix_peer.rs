//! A Unix socket peer of another user, for tests of who a server lets in.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Connects to the socket at `path` as user `uid`, group `gid` (needs root): the connect runs
/// on a thread of its own whose credentials alone are changed (raw syscalls, so not the whole
/// process's), and the kernel records them as the peer's (`SO_PEERCRED`). It goes through an
/// `O_PATH` descriptor opened here, so a private directory holding the socket is not in the
/// way; the socket file's own mode still is.
pub fn connect_as(path: &Path, uid: u32, gid: u32) -> io::Result<UnixStream> {
    let target = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let via = format!("/proc/self/fd/{}", target.as_raw_fd());
    std::thread::spawn(move || {
        // SAFETY: plain syscalls on this thread's credentials; the thread ends right after.
        unsafe {
            if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        UnixStream::connect(&via)
    })
    .join()
    .map_err(|_| io::Error::other("the connecting thread panicked"))?
}
