//! Copies containerd's stdin FIFO into the container process's stdin (a pipe, or a pty master)
//! until CloseIO, the FIFO's writer going away, or the process ending.
//!
//! The pump opens the FIFO O_RDONLY|O_NONBLOCK (never blocks, whatever order containerd's client
//! opens its end in) and polls it: data is copied; POLLHUP (the client's writer came and went)
//! is EOF; a close request ends it within one poll period. Before any writer has connected, a
//! FIFO reports neither data nor hang-up, so an early open is not mistaken for EOF.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Result, ShimError};

/// How often the pump checks whether it was asked to stop.
const POLL_MS: u16 = 200;

/// A running pump; [`StdinPump::close`] (CloseIO, or the process ended) stops it, which closes
/// the process's stdin.
#[derive(Clone)]
pub struct StdinPump {
    closed: Arc<AtomicBool>,
}

impl StdinPump {
    /// Starts a thread copying the FIFO at `fifo` into `to`.
    pub fn start(name: &str, fifo: &str, mut to: File) -> Result<Self> {
        let mut from = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .map_err(|e| ShimError::io(format!("open stdin {fifo}"), e))?;
        let pump = StdinPump {
            closed: Arc::new(AtomicBool::new(false)),
        };
        let closed = pump.closed.clone();
        let thread: String = format!("stdin-{name}").chars().take(15).collect();
        let logged = thread.clone();
        std::thread::Builder::new()
            .name(thread.clone())
            .spawn(move || {
                if let Err(error) = copy_until_closed(&mut from, &mut to, &closed) {
                    tracing::debug!(%error, thread = logged, "stdin copy ended");
                }
            })
            .map_err(|e| ShimError::io(format!("spawn {thread}"), e))?;
        Ok(pump)
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

fn copy_until_closed(from: &mut File, to: &mut File, closed: &AtomicBool) -> std::io::Result<()> {
    let mut buffer = [0u8; 4096];
    while !closed.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(POLL_MS)).map_err(std::io::Error::from)? == 0 {
            continue;
        }
        let events = fds[0].revents().unwrap_or(PollFlags::empty());
        if events.contains(PollFlags::POLLIN) {
            match from.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => to.write_all(&buffer[..read])?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        } else if events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            // The client's writer closed: EOF for the process.
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bytes_flow_until_close_then_the_reader_sees_eof() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("stdin");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let (reader, writer) = std::io::pipe().expect("pipe");
        let pump = StdinPump::start(
            "t",
            fifo.to_str().expect("utf-8"),
            File::from(std::os::fd::OwnedFd::from(writer)),
        )
        .expect("start");
        let mut client = OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open writer");
        client.write_all(b"hello\n").expect("write");
        let mut reader = File::from(std::os::fd::OwnedFd::from(reader));
        let mut got = [0u8; 6];
        reader.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello\n");
        pump.close();
        // read_to_end returns at the EOF the pump's close gives.
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).expect("EOF after close");
        assert!(rest.is_empty());
    }

    #[test]
    fn the_client_closing_its_end_is_eof_for_the_process() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("stdin");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let (reader, writer) = std::io::pipe().expect("pipe");
        let _pump = StdinPump::start(
            "t",
            fifo.to_str().expect("utf-8"),
            File::from(std::os::fd::OwnedFd::from(writer)),
        )
        .expect("start");
        // Before any writer connects, nothing is EOF yet: after two polls of the pump, the
        // process's stdin has nothing to read, and is not at its end.
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        std::thread::sleep(Duration::from_millis(2 * u64::from(POLL_MS)));
        assert_eq!(
            pending_read(&reader).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "stdin ended (or had data) before any client connected"
        );
        let mut client = OpenOptions::new()
            .write(true)
            .open(&fifo)
            .expect("open writer");
        client.write_all(b"last words").expect("write");
        drop(client);
        let mut all = String::new();
        let mut reader = reader;
        reader.read_to_string(&mut all).expect("read to EOF");
        assert_eq!(all, "last words");
    }

    /// One non-blocking read of `file`: the byte count, or WouldBlock when nothing is there.
    fn pending_read(file: &File) -> std::io::Result<usize> {
        let mut buf = [0u8; 16];
        let flags = nix::fcntl::OFlag::from_bits_truncate(
            nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_GETFL).expect("F_GETFL"),
        );
        nix::fcntl::fcntl(
            file,
            nix::fcntl::FcntlArg::F_SETFL(flags | nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("F_SETFL");
        let read = (&*file).read(&mut buf);
        nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETFL(flags)).expect("F_SETFL");
        read
    }
}
