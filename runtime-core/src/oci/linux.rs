//! `linux`: namespaces, resources and the cgroup path.

use std::path::PathBuf;

use serde::Deserialize;

use super::names::spec_names;
use super::seccomp::Seccomp;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Linux {
    #[serde(deserialize_with = "super::null_as_empty")]
    pub namespaces: Vec<Namespace>,
    pub resources: Resources,
    /// As written: a path, or systemd's `slice:prefix:name`.
    pub cgroups_path: Option<String>,
    /// Present: the container is confined with seccomp.
    pub seccomp: Option<Seccomp>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: NamespaceType,
    /// Join this namespace (an nsfs file); `None`: a new one.
    pub path: Option<PathBuf>,
}

spec_names! {
    /// `linux.namespaces[].type`.
    NamespaceType, "namespace type", {
        Pid = "pid",
        Network = "network",
        Mount = "mount",
        Ipc = "ipc",
        Uts = "uts",
        User = "user",
        Cgroup = "cgroup",
        Time = "time",
    }
}

/// `linux.resources`, the parts that size the VMM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub memory: Memory,
    pub cpu: Cpu,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// Bytes.
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Cpu {
    /// CFS quota in µs per `period`; -1 or absent: unlimited.
    pub quota: Option<i64>,
    pub period: Option<u64>,
    /// A cpuset list such as `0-3,8`.
    pub cpus: Option<String>,
}
