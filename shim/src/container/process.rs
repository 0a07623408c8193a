//! The lifecycle of one process of a container (its init, or an exec): created, running,
//! paused, stopped with an exit status. Waiters watch it; it only moves forward.

use std::sync::OnceLock;
use std::time::SystemTime;

use tokio::sync::watch;

use super::process_ref::{ProcessMissing, ProcessRef};
use crate::console::Console;
use crate::error::{Result, ShimError};
use crate::stdin_pump::StdinPump;
use crate::stdio::StdioPaths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running,
    Paused,
    Stopped,
}

#[derive(Debug, Clone)]
pub struct Exit {
    pub status: u32,
    pub at: SystemTime,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub pid: u32,
    pub phase: Phase,
    pub exit: Option<Exit>,
}

impl Snapshot {
    /// Why a signal cannot reach the process now: it has no pid yet, or it is gone.
    pub fn missing(&self) -> Option<ProcessMissing> {
        match self.phase {
            Phase::Created => Some(ProcessMissing::NotStarted),
            Phase::Stopped => Some(ProcessMissing::Exited),
            Phase::Running | Phase::Paused => None,
        }
    }
}

pub struct Process {
    pub which: ProcessRef,
    pub stdio: StdioPaths,
    state: watch::Sender<Snapshot>,
    /// The pty master, when the process has a terminal.
    console: OnceLock<Console>,
    /// What feeds the process's stdin from containerd's FIFO, when it has one.
    stdin: OnceLock<StdinPump>,
}

impl Process {
    pub fn new(which: ProcessRef, stdio: StdioPaths) -> Self {
        let (state, _) = watch::channel(Snapshot {
            pid: 0,
            phase: Phase::Created,
            exit: None,
        });
        Process {
            which,
            stdio,
            state,
            console: OnceLock::new(),
            stdin: OnceLock::new(),
        }
    }

    /// Records how the process's stdin is fed (from [`StdioPaths::open`] or a console).
    pub fn set_stdin(&self, pump: Option<StdinPump>) {
        if let Some(pump) = pump {
            if self.stdin.set(pump).is_err() {
                tracing::warn!(process = %self.which, "the process already had a stdin pump");
            }
        }
    }

    /// CloseIO: the process reads EOF on its stdin.
    pub fn close_stdin(&self) {
        if let Some(pump) = self.stdin.get() {
            pump.close();
        }
    }

    pub fn set_console(&self, console: Console) {
        if self.console.set(console).is_err() {
            tracing::warn!(process = %self.which, "the process already had a console");
        }
    }

    /// ResizePty: only a process with a terminal has a size.
    pub fn resize(&self, id: &str, width: u32, height: u32) -> Result<()> {
        match self.console.get() {
            Some(console) => console.resize(width, height),
            None => Err(ShimError::precondition(
                id,
                format!("{} has no terminal to resize", self.which),
            )),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.borrow().clone()
    }

    pub fn set_pid(&self, pid: u32) {
        self.state.send_modify(|s| s.pid = pid);
    }

    pub fn set_running(&self, pid: u32) {
        self.state.send_modify(|s| {
            if s.phase != Phase::Stopped {
                s.pid = pid;
                s.phase = Phase::Running;
            }
        });
    }

    pub fn set_paused(&self, paused: bool) {
        self.state.send_modify(|s| match (s.phase, paused) {
            (Phase::Running, true) => s.phase = Phase::Paused,
            (Phase::Paused, false) => s.phase = Phase::Running,
            _ => {}
        });
    }

    pub fn set_stopped(&self, status: u32) -> Exit {
        self.close_stdin();
        let exit = Exit {
            status,
            at: SystemTime::now(),
        };
        self.state.send_modify(|s| {
            s.phase = Phase::Stopped;
            s.exit = Some(exit.clone());
        });
        exit
    }

    /// Resolves when the process has stopped (at once if it already has).
    pub async fn wait(&self) -> Exit {
        let mut watcher = self.state.subscribe();
        loop {
            if let Some(exit) = watcher.borrow_and_update().exit.clone() {
                return exit;
            }
            if watcher.changed().await.is_err() {
                // The sender lives as long as `self`; this cannot end while we borrow it.
                return Exit {
                    status: 255,
                    at: SystemTime::now(),
                };
            }
        }
    }
}

/// Kill's signal number, for a process the shim signals itself.
pub fn signal(number: u32) -> Result<nix::sys::signal::Signal> {
    nix::sys::signal::Signal::try_from(number as i32)
        .map_err(|_| ShimError::invalid("signal", number.to_string(), "not a signal"))
}
