//! Which namespaces the container's process joins (by path) or gets fresh (unshare).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Result, ShimError};

pub struct NamespacePlan {
    /// Opened before the fork (close-on-exec: they vanish at exec).
    joins: Vec<(File, libc::c_int)>,
    unshare_flags: libc::c_int,
}

impl NamespacePlan {
    /// From the spec's `linux.namespaces`. The pid namespace is not entered here: it applies
    /// to a process's children only, so [`super::PidNamespace`] enters it before the fork. A
    /// user namespace is refused: it needs id mappings written from outside while the child
    /// waits, and the VMM confinement drops to the spec's user without one.
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Self> {
        let mut joins = Vec::new();
        let mut unshare_flags = 0;
        for namespace in namespaces {
            let flag = match namespace.typ() {
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
                LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
                LinuxNamespaceType::Pid => continue,
                LinuxNamespaceType::User => {
                    return Err(ShimError::Unimplemented {
                        operation: "linux.namespaces type \"user\" for a unikernel",
                        reason: "the VMM runs as the spec's user without a user namespace; \
                                 run the pod with hostUsers: true"
                            .to_string(),
                    })
                }
                other => {
                    tracing::info!(namespace = ?other, "namespace not applied to the VMM process");
                    continue;
                }
            };
            match namespace.path() {
                Some(path) => joins.push((open_namespace(path)?, flag)),
                None => unshare_flags |= flag,
            }
        }
        Ok(NamespacePlan {
            joins,
            unshare_flags,
        })
    }

    /// In the forked child only: join, then unshare. Async-signal-safe.
    pub(super) fn enter(&self) -> std::io::Result<()> {
        for (file, flag) in &self.joins {
            // SAFETY: setns on an fd the parent opened; this is the child process.
            if unsafe { libc::setns(file.as_raw_fd(), *flag) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if self.unshare_flags != 0 {
            // SAFETY: unshare with constant flags in the child process.
            if unsafe { libc::unshare(self.unshare_flags) } < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

fn open_namespace(path: &std::path::Path) -> Result<File> {
    File::open(path).map_err(|e| {
        ShimError::invalid(
            "linux.namespaces.path",
            PathBuf::from(path).display().to_string(),
            format!("cannot open: {e}"),
        )
    })
}

/// The network namespace path the spec asks the container to join, if any.
pub fn network_path(namespaces: &[LinuxNamespace]) -> Option<PathBuf> {
    namespaces
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::Network)
        .and_then(|ns| ns.path().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_namespace_is_refused_not_ignored() {
        let namespaces: Vec<LinuxNamespace> =
            serde_json::from_str(r#"[{"type":"network"},{"type":"user"}]"#).expect("namespaces");
        let error = NamespacePlan::from_spec(&namespaces)
            .err()
            .expect("refused");
        assert!(matches!(error, ShimError::Unimplemented { .. }), "{error}");
        assert!(error.to_string().contains("\"user\""), "{error}");
    }
}
