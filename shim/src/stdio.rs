//! The container process's stdio, from the FIFOs containerd names in the request.
//!
//! The process gets the stdout and stderr FIFOs themselves as its fds (no copy loop in the
//! shim), opened O_RDWR: that never blocks whatever order containerd's client opens its ends in,
//! and the process holding the only write end means the reader sees EOF exactly when the
//! process dies. Stdin goes through a pipe fed by a [`StdinPump`], so CloseIO can end it.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::path::Path;

use crate::error::{Result, ShimError};
use crate::stdin_pump::StdinPump;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

pub struct ProcessStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl ProcessStdio {
    /// The slave side of a terminal as stdin, stdout and stderr.
    pub fn terminal(slave: OwnedFd) -> Result<Self> {
        let duplicate = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| ShimError::io("duplicate the pty slave", e))
        };
        Ok(ProcessStdio {
            stdin: duplicate(&slave)?,
            stdout: duplicate(&slave)?,
            stderr: slave,
        })
    }

    /// /dev/null everywhere (runc's own stdio when the container has a terminal).
    pub fn null() -> Result<Self> {
        Ok(ProcessStdio {
            stdin: open_end("stdin", "")?,
            stdout: open_end("stdout", "")?,
            stderr: open_end("stderr", "")?,
        })
    }
}

impl StdioPaths {
    /// Stdio for a process without a terminal: the stdout and stderr FIFOs themselves, and a
    /// pipe fed from the stdin FIFO by a [`StdinPump`] (returned, for CloseIO).
    pub fn open(&self, name: &str) -> Result<(ProcessStdio, Option<StdinPump>)> {
        if self.terminal {
            return Err(ShimError::invalid(
                "terminal",
                "true",
                "a terminal process gets a pty, not the FIFOs",
            ));
        }
        let (stdin, pump) = if self.stdin.is_empty() {
            (open_end("stdin", "")?, None)
        } else {
            let (reader, writer) =
                std::io::pipe().map_err(|e| ShimError::io("create the stdin pipe", e))?;
            let pump = StdinPump::start(
                name,
                &self.stdin,
                std::fs::File::from(OwnedFd::from(writer)),
            )?;
            (OwnedFd::from(reader), Some(pump))
        };
        let stdio = ProcessStdio {
            stdin,
            stdout: open_end("stdout", &self.stdout)?,
            stderr: open_end("stderr", &self.stderr)?,
        };
        Ok((stdio, pump))
    }
}

fn open_end(field: &str, path: &str) -> Result<OwnedFd> {
    let target = if path.is_empty() { "/dev/null" } else { path };
    if !path.is_empty() && !Path::new(path).is_absolute() {
        // containerd can also pass binary:// or file:// URIs (logging plugins); not supported.
        return Err(ShimError::invalid(
            field,
            path,
            "only FIFO paths are supported",
        ));
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .map(OwnedFd::from)
        .map_err(|e| ShimError::io(format!("open {field} {target}"), e))
}
