//! Which network namespace each thread of a process is in.
//!
//! Invariant 1 says only `ns-*` workers ever leave the original namespace;
//! this is how tests (and operators, through the same /proc files) check it.

use std::path::Path;

/// One thread of a process and the inode of its network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadNetns {
    pub tid: i32,
    pub name: String,
    pub netns_ino: u64,
}

impl ThreadNetns {
    /// Whether this thread is a netns worker (by the name the pool gives them).
    pub fn is_worker(&self) -> bool {
        self.name.starts_with(crate::worker::THREAD_NAME_PREFIX)
    }
}

/// Every thread of `pid` with its netns inode. Threads that exit while we
/// read are skipped.
pub fn thread_netns_audit(pid: i32) -> std::io::Result<Vec<ThreadNetns>> {
    let task_dir = Path::new("/proc").join(pid.to_string()).join("task");
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(task_dir)? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let (Ok(name), Ok(ino)) = (
            std::fs::read_to_string(entry.path().join("comm")),
            netns_inode_of(&entry.path().join("ns/net")),
        ) else {
            continue;
        };
        threads.push(ThreadNetns {
            tid,
            name: name.trim_end().to_string(),
            netns_ino: ino,
        });
    }
    threads.sort_by_key(|t| t.tid);
    Ok(threads)
}

/// The inode in a `net:[4026531840]` link.
pub fn netns_inode_of(ns_link: &Path) -> std::io::Result<u64> {
    let target = std::fs::read_link(ns_link)?;
    let text = target.to_string_lossy();
    text.strip_prefix("net:[")
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{ns_link:?} points to {text:?}, not net:[inode]"),
            )
        })
}
