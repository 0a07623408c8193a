//! The container process's stdio, from the FIFOs containerd names in the request.
//!
//! The process gets the stdout and stderr FIFOs themselves as its fds (no copy loop in the
//! shim), opened O_RDWR: that never blocks whatever order containerd's client opens its ends in,
//! and the process holding the only write end means the reader sees EOF exactly when the
//! process dies. Stdin goes through a pipe fed by a [`StdinPump`], so CloseIO can end it.
//! containerd's logging URIs are honoured as its shims honour them: `file://` is a file the
//! process appends to, `binary://` a logging program whose pipes the process writes to (see
//! `log_binary`).

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::path::Path;

use runtime_core::StdioTarget;

use crate::error::{Result, ShimError};
use crate::log_binary::LoggerInputs;
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
        self.open_with(name, None)
    }

    /// The logging program stdout names (`binary://`), with its arguments. containerd's shims
    /// read the URI from stdout alone and give the program both streams.
    pub fn log_binary(&self) -> Result<Option<(String, Vec<String>)>> {
        if self.terminal {
            return Ok(None);
        }
        Ok(match StdioTarget::parse("stdout", &self.stdout)? {
            StdioTarget::Binary { program, args } => Some((program, args)),
            _ => None,
        })
    }

    /// Like [`StdioPaths::open`]; with `logger`, stdout and stderr are a logging binary's
    /// pipes (what [`StdioPaths::log_binary`] named, started by the caller).
    pub fn open_with(
        &self,
        name: &str,
        logger: Option<LoggerInputs>,
    ) -> Result<(ProcessStdio, Option<StdinPump>)> {
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
        let (stdout, stderr) = match logger {
            Some(inputs) => (inputs.stdout, inputs.stderr),
            None => (
                open_output("stdout", &self.stdout)?,
                open_output("stderr", &self.stderr)?,
            ),
        };
        let stdio = ProcessStdio {
            stdin,
            stdout,
            stderr,
        };
        Ok((stdio, pump))
    }
}

/// stdout's or stderr's end: a FIFO, a `file://` log, or /dev/null.
fn open_output(field: &str, value: &str) -> Result<OwnedFd> {
    match StdioTarget::parse(field, value)? {
        StdioTarget::Path(path) => open_end(field, &path),
        StdioTarget::File(path) => open_log_file(field, &path),
        StdioTarget::Binary { .. } => Err(ShimError::invalid(
            field,
            value,
            "a logging binary is supported for unikernels only (stdout names it for both streams)",
        )),
    }
}

/// A `file://` log: created with its folders if missing, appended to (as containerd's shims do).
fn open_log_file(field: &str, path: &str) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(folder) = Path::new(path).parent() {
        std::fs::create_dir_all(folder)
            .map_err(|e| ShimError::io(format!("create the folder of {field} {path}"), e))?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| ShimError::io(format!("open {field} {path}"), e))
}

fn open_end(field: &str, path: &str) -> Result<OwnedFd> {
    let target = if path.is_empty() { "/dev/null" } else { path };
    if !path.is_empty() && !Path::new(path).is_absolute() {
        return Err(ShimError::invalid(
            field,
            path,
            "a stdio path must be absolute",
        ));
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .map(OwnedFd::from)
        .map_err(|e| ShimError::io(format!("open {field} {target}"), e))
}
