//! `process`: who the container's process (for a unikernel, the VMM) runs as and what it may do.

use serde::Deserialize;

use super::names::spec_names;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Process {
    pub user: User,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub args: Vec<String>,
    /// `KEY=VALUE` entries.
    #[serde(deserialize_with = "super::null_as_empty")]
    pub env: Vec<String>,
    /// The working directory, absolute in the container; a guest whose init reads it
    /// (FreeBSD's urunit) starts the program there.
    #[serde(deserialize_with = "super::null_as_empty")]
    pub cwd: String,
    pub capabilities: Capabilities,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub rlimits: Vec<Rlimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub additional_gids: Vec<u32>,
}

/// Capability names as runtime-spec spells them (`CAP_NET_ADMIN`), per set; an absent set is
/// empty. Names stay strings: [`capability_number`] knows Linux's, the caller decides what to
/// do with one it does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    #[serde(deserialize_with = "super::null_as_empty")]
    pub bounding: Vec<String>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub effective: Vec<String>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub inheritable: Vec<String>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub permitted: Vec<String>,
    #[serde(deserialize_with = "super::null_as_empty")]
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: RlimitType,
    pub soft: u64,
    pub hard: u64,
}

spec_names! {
    /// `process.rlimits[].type`: the POSIX resource limits (setrlimit(2)).
    RlimitType, "rlimit type", {
        Cpu = "RLIMIT_CPU",
        Fsize = "RLIMIT_FSIZE",
        Data = "RLIMIT_DATA",
        Stack = "RLIMIT_STACK",
        Core = "RLIMIT_CORE",
        Rss = "RLIMIT_RSS",
        Nproc = "RLIMIT_NPROC",
        Nofile = "RLIMIT_NOFILE",
        Memlock = "RLIMIT_MEMLOCK",
        As = "RLIMIT_AS",
        Locks = "RLIMIT_LOCKS",
        Sigpending = "RLIMIT_SIGPENDING",
        Msgqueue = "RLIMIT_MSGQUEUE",
        Nice = "RLIMIT_NICE",
        Rtprio = "RLIMIT_RTPRIO",
        Rttime = "RLIMIT_RTTIME",
    }
}

/// Capability names by number (linux/capability.h, up to Linux 6.x).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Linux's number for a capability name spelled as runtime-spec does (`CAP_` and upper case);
/// `None` for any other name.
pub fn capability_number(name: &str) -> Option<u32> {
    CAPABILITY_NAMES
        .iter()
        .position(|known| *known == name)
        .map(|number| number as u32)
}
