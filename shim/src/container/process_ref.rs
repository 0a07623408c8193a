//! Which process of a container a request means: its init, or one of its execs. containerd
//! says "the init" with an empty exec id; the shim says it with [`ProcessRef`], converted once,
//! at the service edge.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProcessRef {
    Init,
    Exec(String),
}

impl ProcessRef {
    /// From containerd's exec id (empty: the init process).
    pub fn from_exec_id(exec_id: &str) -> Self {
        match exec_id {
            "" => ProcessRef::Init,
            exec => ProcessRef::Exec(exec.to_string()),
        }
    }

    /// containerd's exec id: empty for the init process.
    pub fn exec_id(&self) -> &str {
        match self {
            ProcessRef::Init => "",
            ProcessRef::Exec(exec) => exec,
        }
    }

    pub fn is_init(&self) -> bool {
        matches!(self, ProcessRef::Init)
    }
}

impl fmt::Display for ProcessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessRef::Init => f.write_str("the init process"),
            ProcessRef::Exec(exec) => write!(f, "exec {exec:?}"),
        }
    }
}

/// Why a process a request names cannot be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessMissing {
    /// The container has no such process.
    Unknown,
    /// It was never started.
    NotStarted,
    /// It has exited.
    Exited,
}

impl fmt::Display for ProcessMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProcessMissing::Unknown => "no such process",
            ProcessMissing::NotStarted => "it was never started",
            ProcessMissing::Exited => "it has exited",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_exec_id_is_the_init_and_round_trips() {
        assert_eq!(ProcessRef::from_exec_id(""), ProcessRef::Init);
        let exec = ProcessRef::from_exec_id("probe");
        assert_eq!(exec, ProcessRef::Exec("probe".into()));
        assert_eq!(exec.exec_id(), "probe");
        assert_eq!(ProcessRef::Init.exec_id(), "");
        assert_eq!(exec.to_string(), "exec \"probe\"");
    }
}
