//! A terminal for the container's process (`ctr run -t`): the process gets the pty's slave side
//! as its stdio; a `console-*` thread copies the master side to containerd's stdout FIFO and a
//! stdin pump copies the stdin FIFO to it.
//!
//! The copy threads are plain OS threads, never entering any namespace. They end when the
//! process closes the terminal (reading the master answers EIO).

use std::fs::{File, OpenOptions};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::error::{Result, ShimError};
use crate::stdin_pump::StdinPump;
use crate::stdio::StdioPaths;

/// How long to wait for runc to send the pty master once its command returned.
const CONSOLE_WAIT_MS: u16 = 10_000;

/// The master side of a container's terminal.
#[derive(Clone)]
pub struct Console {
    master: Arc<File>,
}

impl Console {
    /// Opens a new pty; returns the console (master) and the slave for the process.
    pub fn open() -> Result<(Console, OwnedFd)> {
        let pty = openpty(None::<&Winsize>, None).map_err(|e| ShimError::sys("open a pty", e))?;
        Ok((Console::from_master(pty.master), pty.slave))
    }

    /// A master received from elsewhere (runc's `--console-socket`).
    pub fn from_master(master: OwnedFd) -> Console {
        Console {
            master: Arc::new(File::from(master)),
        }
    }

    /// Copies the master to the stdout FIFO and the stdin FIFO to the master, until either
    /// side closes. Returns the stdin pump, for CloseIO.
    pub fn start_copying(&self, id: &str, stdio: &StdioPaths) -> Result<Option<StdinPump>> {
        let pump = if stdio.stdin.is_empty() {
            None
        } else {
            Some(StdinPump::start(
                id,
                &stdio.stdin,
                self.master.try_clone_file()?,
            )?)
        };
        let mut out = if stdio.stdout.is_empty() {
            None
        } else {
            Some(open_fifo("stdout", &stdio.stdout)?)
        };
        let mut master = self.master.try_clone_file()?;
        // When the terminal is gone, the stdin pump (which never sees EOF on a FIFO it holds
        // open) is stopped too.
        let stdin = pump.clone();
        spawn_copy(format!("console-{id}"), move || {
            let _ = copy_until_closed(&mut master, out.as_mut());
            if let Some(stdin) = stdin {
                stdin.close();
            }
        })?;
        Ok(pump)
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let size = Winsize {
            ws_row: u16::try_from(height)
                .map_err(|_| ShimError::invalid("height", height.to_string(), "above 65535"))?,
            ws_col: u16::try_from(width)
                .map_err(|_| ShimError::invalid("width", width.to_string(), "above 65535"))?,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which outlives the call.
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
            return Err(ShimError::io(
                "resize the terminal",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

trait TryCloneFile {
    fn try_clone_file(&self) -> Result<File>;
}

impl TryCloneFile for Arc<File> {
    fn try_clone_file(&self) -> Result<File> {
        self.as_ref()
            .try_clone()
            .map_err(|e| ShimError::io("duplicate the pty master", e))
    }
}

fn open_fifo(field: &str, path: &str) -> Result<File> {
    // O_RDWR: opens at once whatever the order containerd's client opens its end in.
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| ShimError::io(format!("open {field} {path}"), e))
}

fn spawn_copy(name: String, body: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(body)
        .map(drop)
        .map_err(|e| ShimError::io(format!("spawn {name}"), e))
}

/// Master to stdout (or nowhere, draining it) until the terminal closes.
fn copy_until_closed(master: &mut File, mut to: Option<&mut File>) -> std::io::Result<()> {
    let mut buffer = [0u8; 4096];
    loop {
        let read = match master.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO on the master: the last slave fd closed (the process ended).
            Err(e) => return Err(e),
        };
        if let Some(to) = to.as_mut() {
            to.write_all(&buffer[..read])?;
        }
    }
}

/// The socket runc sends a container's pty master on (`runc create --console-socket`).
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a socket in `dir` (kept short: socket paths are limited to 107 bytes).
    /// The directory is removed again when its last socket goes (see Drop).
    pub fn bind(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(format!("{name}.console.sock"));
        let mut attempts = 0;
        loop {
            std::fs::create_dir_all(dir)
                .map_err(|e| ShimError::io(format!("create {}", dir.display()), e))?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ShimError::io(format!("remove stale {}", path.display()), e)),
            }
            match UnixListener::bind(&path) {
                Ok(listener) => return Ok(ConsoleSocket { path, listener }),
                // Another shim removed the directory as its last socket went: make it again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                Err(e) => return Err(ShimError::io(format!("bind {}", path.display()), e)),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master runc sent. runc connects and sends it before `runc create`/`exec` returns,
    /// so a short wait is only a safety net against a runc that never does.
    pub fn receive(&self) -> Result<Console> {
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(CONSOLE_WAIT_MS))
            .map_err(|e| ShimError::sys("wait for runc's console", e))?;
        if ready == 0 {
            return Err(ShimError::precondition(
                &self.path.display().to_string(),
                "runc sent no console",
            ));
        }
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| ShimError::io("accept runc's console connection", e))?;
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let message = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| ShimError::sys("receive runc's console", e))?;
        for control in message
            .cmsgs()
            .map_err(|e| ShimError::sys("read runc's console message", e))?
        {
            if let ControlMessageOwned::ScmRights(fds) = control {
                if let Some(&fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS just installed this fd in our table; we own it now.
                    let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                    return Ok(Console::from_master(master));
                }
            }
        }
        Err(ShimError::precondition(
            &self.path.display().to_string(),
            "runc's console message carried no fd",
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "removing the console socket failed");
        }
        // The shared directory goes with its last socket; while other consoles use it, it stays.
        let Some(dir) = self.path.parent() else {
            return;
        };
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
            Err(error) => {
                tracing::warn!(path = %dir.display(), %error, "removing the console directory failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_directory_goes_with_its_last_socket() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(".console");
        let first = ConsoleSocket::bind(&dir, "a").expect("bind a");
        let second = ConsoleSocket::bind(&dir, "b").expect("bind b");
        assert!(first.path().exists() && second.path().exists());
        drop(first);
        assert!(dir.is_dir(), "removed while b still uses it");
        assert!(second.path().exists());
        drop(second);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
