//! Which namespaces the container's process joins (by path) or gets fresh (unshare).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use runtime_core::oci::{Namespace, NamespaceType};

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
    /// waits, and the VMM confinement drops to the spec's user without one. A type
    /// runtime-spec does not define is refused, naming it.
    pub fn from_spec(namespaces: &[Namespace]) -> Result<Self> {
        Self::from_entries(namespaces.iter().enumerate())
    }

    /// `from_spec` of some of the spec's entries, each with its index in `linux.namespaces`.
    fn from_entries<'a>(namespaces: impl Iterator<Item = (usize, &'a Namespace)>) -> Result<Self> {
        let mut joins = Vec::new();
        let mut unshare_flags = 0;
        for (index, namespace) in namespaces {
            let flag = match &namespace.kind {
                NamespaceType::Pid => continue,
                NamespaceType::User => {
                    return Err(ShimError::Unimplemented {
                        operation: "linux.namespaces type \"user\" for a unikernel",
                        reason: "the VMM runs as the spec's user without a user namespace; \
                                 run the pod with hostUsers: true"
                            .to_string(),
                    })
                }
                NamespaceType::Time => {
                    tracing::info!("the time namespace is not applied to the VMM process");
                    continue;
                }
                other => clone_flag(index, other)?,
            };
            match &namespace.path {
                Some(path) => joins.push((open_namespace(index, path, flag)?, flag)),
                None => unshare_flags |= flag,
            }
        }
        Ok(NamespacePlan {
            joins,
            unshare_flags,
        })
    }

    /// The namespaces the spec names by path, to join without creating any: where a hook runs
    /// "in the container namespace". The mount namespace is left out: the hook's path and
    /// everything it opens are host paths, not the VMM's confined root.
    pub fn joins_only(namespaces: &[Namespace]) -> Result<Self> {
        let named = namespaces
            .iter()
            .enumerate()
            .filter(|(_, ns)| ns.path.is_some() && ns.kind != NamespaceType::Mount);
        let mut plan = Self::from_entries(named)?;
        plan.unshare_flags = 0;
        Ok(plan)
    }

    /// Without the mount namespace: the VMM's is the one its confinement built at Create.
    pub fn without_mount(mut self) -> Self {
        self.joins.retain(|(_, flag)| *flag != libc::CLONE_NEWNS);
        self.unshare_flags &= !libc::CLONE_NEWNS;
        self
    }

    /// The descriptors of the namespaces to join, which the child must keep open until then.
    pub(crate) fn fds(&self) -> Vec<std::os::fd::RawFd> {
        self.joins
            .iter()
            .map(|(file, _)| file.as_raw_fd())
            .collect()
    }

    /// In the forked child only: join, then unshare. Async-signal-safe.
    pub(crate) fn enter(&self) -> std::io::Result<()> {
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

/// The `CLONE_NEW*` flag of the type of entry `index` of `linux.namespaces`; a type
/// runtime-spec does not define is refused, naming it.
fn clone_flag(index: usize, kind: &NamespaceType) -> Result<libc::c_int> {
    Ok(match kind {
        NamespaceType::Network => libc::CLONE_NEWNET,
        NamespaceType::Ipc => libc::CLONE_NEWIPC,
        NamespaceType::Uts => libc::CLONE_NEWUTS,
        NamespaceType::Mount => libc::CLONE_NEWNS,
        NamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        NamespaceType::Pid => libc::CLONE_NEWPID,
        NamespaceType::User => libc::CLONE_NEWUSER,
        NamespaceType::Time => libc::CLONE_NEWTIME,
        NamespaceType::Unknown(name) => {
            return Err(ShimError::invalid(
                format!("linux.namespaces[{index}].type"),
                name,
                NamespaceType::unknown_reason(),
            ))
        }
    })
}

/// Opens `path`, entry `index` of `linux.namespaces`, as a namespace of type `flag`: never
/// blocking (a FIFO there answers at once) and refusing anything but an nsfs file of that type.
pub fn open_namespace(index: usize, path: &Path, flag: libc::c_int) -> Result<File> {
    netns::open_namespace(path, flag).map_err(|error| {
        ShimError::invalid(
            format!("linux.namespaces[{index}].path"),
            path.display().to_string(),
            error.to_string(),
        )
    })
}

/// Opens every path the spec's `linux.namespaces` names and proves it is a namespace of its
/// entry's type, before Create makes anything: whichever kind of container it becomes, a FIFO,
/// device, regular file or socket there is refused at once, naming the entry and the path.
pub fn check_paths(namespaces: &[Namespace]) -> Result<()> {
    for (index, namespace) in namespaces.iter().enumerate() {
        if let Some(path) = &namespace.path {
            open_namespace(index, path, clone_flag(index, &namespace.kind)?)?;
        }
    }
    Ok(())
}

/// Whether the spec asks for a new network namespace (a `network` entry without a path).
pub fn asks_new_network(namespaces: &[Namespace]) -> bool {
    namespaces
        .iter()
        .any(|ns| ns.kind == NamespaceType::Network && ns.path.is_none())
}

/// The network namespace path the spec asks the container to join, if any.
pub fn network_path(namespaces: &[Namespace]) -> Option<PathBuf> {
    namespaces
        .iter()
        .find(|ns| ns.kind == NamespaceType::Network)
        .and_then(|ns| ns.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_namespace_is_refused_not_ignored() {
        let namespaces: Vec<Namespace> =
            serde_json::from_str(r#"[{"type":"network"},{"type":"user"}]"#).expect("namespaces");
        let error = NamespacePlan::from_spec(&namespaces)
            .err()
            .expect("refused");
        assert!(matches!(error, ShimError::Unimplemented { .. }), "{error}");
        assert!(error.to_string().contains("\"user\""), "{error}");
    }

    #[test]
    fn an_unknown_namespace_type_is_refused_naming_field_and_value() {
        let namespaces: Vec<Namespace> =
            serde_json::from_str(r#"[{"type":"network"},{"type":"net"}]"#).expect("namespaces");
        let error = NamespacePlan::from_spec(&namespaces)
            .err()
            .expect("refused");
        let message = error.to_string();
        assert!(
            matches!(error, ShimError::InvalidArgument { .. }),
            "{message}"
        );
        assert!(
            message.contains("linux.namespaces[1].type") && message.contains("\"net\""),
            "{message}"
        );
    }

    fn namespace(kind: NamespaceType, path: Option<&str>) -> Namespace {
        Namespace {
            kind,
            path: path.map(PathBuf::from),
        }
    }

    #[test]
    fn hooks_join_only_the_named_namespaces_and_never_the_mount_namespace() {
        let spec = [
            namespace(NamespaceType::Network, Some("/proc/self/ns/net")),
            namespace(NamespaceType::Uts, Some("/proc/self/ns/uts")),
            namespace(NamespaceType::Mount, Some("/proc/self/ns/mnt")),
            namespace(NamespaceType::Ipc, None),
        ];
        let hooks = NamespacePlan::joins_only(&spec).expect("plan");
        let flags: Vec<libc::c_int> = hooks.joins.iter().map(|(_, flag)| *flag).collect();
        assert_eq!(flags, [libc::CLONE_NEWNET, libc::CLONE_NEWUTS]);
        assert_eq!(hooks.unshare_flags, 0);

        let vmm = NamespacePlan::from_spec(&spec).expect("plan");
        assert_eq!(vmm.joins.len(), 3);
        assert_eq!(vmm.unshare_flags, libc::CLONE_NEWIPC);
        let confined = vmm.without_mount();
        let flags: Vec<libc::c_int> = confined.joins.iter().map(|(_, flag)| *flag).collect();
        assert_eq!(flags, [libc::CLONE_NEWNET, libc::CLONE_NEWUTS]);
        let fresh = NamespacePlan::from_spec(&[namespace(NamespaceType::Mount, None)])
            .expect("plan")
            .without_mount();
        assert_eq!(fresh.unshare_flags, 0);
    }

    #[test]
    fn a_fifo_as_a_namespace_path_is_refused_at_once_naming_the_entry_and_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("ipc");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let fifo_text = fifo.display().to_string();
        let spec = [
            namespace(NamespaceType::Uts, Some("/proc/self/ns/uts")),
            namespace(NamespaceType::Ipc, Some(&fifo_text)),
        ];
        let started = std::time::Instant::now();
        let error = check_paths(&spec).expect_err("refused");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let message = error.to_string();
        assert!(
            matches!(error, ShimError::InvalidArgument { .. })
                && message.contains("linux.namespaces[1].path")
                && message.contains(&fifo_text)
                && message.contains("a FIFO"),
            "{message}"
        );
        let error = NamespacePlan::from_spec(&spec).err().expect("refused too");
        assert!(
            error.to_string().contains("linux.namespaces[1].path"),
            "{error}"
        );
        check_paths(&spec[..1]).expect("a uts namespace is one");
    }
}
