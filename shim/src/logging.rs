//! Logs of the serving shim go through `tracing` into the bundle's `log` FIFO, which containerd
//! reads and copies into its own log.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing::Level;

use crate::error::{Result, ShimError};

/// Opens `log_fifo` (std, never tokio::fs: a FIFO would block runtime shutdown) and installs the
/// global subscriber. `debug` raises the level from INFO to DEBUG.
pub fn init_fifo(log_fifo: &Path, debug: bool) -> Result<()> {
    // containerd may open its read end after the shim starts: O_RDWR opens at once whatever
    // the order. O_NONBLOCK stays on: when nobody drains the FIFO, log lines are dropped
    // instead of the shim blocking on a full pipe.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(log_fifo)
        .map_err(|e| ShimError::io(format!("open log {}", log_fifo.display()), e))?;
    install(Mutex::new(file), debug);
    Ok(())
}

/// Logs to stderr, for the short-lived `start` and `delete` actions.
pub fn init_stderr(debug: bool) {
    install(Mutex::new(std::io::stderr()), debug);
}

fn install<W>(writer: Mutex<W>, debug: bool)
where
    W: std::io::Write + Send + 'static,
{
    let level = if debug { Level::DEBUG } else { Level::INFO };
    let installed = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(level)
        .with_target(false)
        .try_init();
    if let Err(error) = installed {
        eprintln!("containerd-shim-urunc-v2: logging already initialised: {error}");
    }
}
