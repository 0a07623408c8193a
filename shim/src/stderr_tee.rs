//! The VMM's stderr passes through the shim, which keeps its last lines.
//!
//! A VMM that dies right after its start says why only on its stderr. The VMM writes into a
//! pipe; a plain thread (it never enters a namespace) copies every byte on to the container's
//! stderr and keeps the tail (runtime-core's `LineTail`). When the pipe ends the thread hands
//! the container's stderr back, so the exit path can add one line of its own ("qemu ended with
//! status 134 ... its stderr ended with ...") before closing it: the reader (`ctr`, the CRI
//! log) sees EOF only after that line.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime_core::LineTail;
use tokio::sync::oneshot;

use crate::error::{Result, ShimError};

/// How long the exit path waits for the pipe to drain after the VMM died (a process the VMM
/// left behind could hold the pipe open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

pub struct StderrTee {
    tail: Arc<Mutex<LineTail>>,
    drained: Mutex<Option<oneshot::Receiver<File>>>,
}

/// Starts the copy from a new pipe to `destination`; the returned fd is the VMM's stderr.
pub fn interpose(id: &str, destination: OwnedFd) -> Result<(OwnedFd, StderrTee)> {
    let (mut reader, writer) =
        std::io::pipe().map_err(|e| ShimError::io("create the VMM's stderr pipe", e))?;
    let tail = Arc::new(Mutex::new(LineTail::new()));
    let (done, drained) = oneshot::channel();
    let kept = Arc::clone(&tail);
    let mut destination = File::from(destination);
    let name = id.to_owned();
    std::thread::Builder::new()
        .name(format!("stderr-{}", id.chars().take(8).collect::<String>()))
        .spawn(move || {
            let mut buffer = [0u8; 8192];
            let mut write_failed = false;
            loop {
                let n = match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        tracing::error!(id = %name, %error, "reading the VMM's stderr failed");
                        break;
                    }
                };
                kept.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(&buffer[..n]);
                if !write_failed {
                    if let Err(error) = destination.write_all(&buffer[..n]) {
                        // Keep draining: a VMM blocked on a full pipe would hang.
                        tracing::warn!(id = %name, %error, "the container's stderr no longer takes the VMM's stderr");
                        write_failed = true;
                    }
                }
            }
            // The exit path may have stopped waiting; then the stderr just closes here.
            let _ = done.send(destination);
        })
        .map_err(|e| ShimError::io("start the VMM's stderr copy", e))?;
    Ok((
        OwnedFd::from(writer),
        StderrTee {
            tail,
            drained: Mutex::new(Some(drained)),
        },
    ))
}

impl StderrTee {
    /// After the VMM exited: waits for the copy to end, then writes `message` (when there is
    /// one) to the container's stderr and closes it. Returns the tail of what the VMM wrote.
    pub async fn finish(&self, message: impl FnOnce(&[String]) -> Option<String>) -> Vec<String> {
        let drained = self
            .drained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let destination = match drained {
            Some(drained) => tokio::time::timeout(DRAIN_TIMEOUT, drained)
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        let lines = self.tail.lock().unwrap_or_else(|p| p.into_inner()).lines();
        if let (Some(text), Some(mut destination)) = (message(&lines), destination) {
            let line = format!("urunc-rs: {text}\n");
            if let Err(error) = destination.write_all(line.as_bytes()) {
                tracing::warn!(%error, "could not add the exit report to the container's stderr");
            }
        }
        lines
    }
}
