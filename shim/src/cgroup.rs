//! The container's cgroup, for the VMM the shim spawns itself: cgroup v1 (one directory per
//! mounted hierarchy, as on this hybrid machine) and v2 (one unified directory).
//!
//! The spawned child moves itself in by writing "0" to a file of every hierarchy before it
//! execs, so the VMM never runs a single instruction outside its cgroup. On v1 that file is
//! `tasks`, not `cgroup.procs`: the child is single-threaded between fork and exec, so moving
//! its one thread moves the process, and the kernel moves the writing thread without taking the
//! threadgroup lock for write, whose RCU grace period `cgroup.procs` pays on every first write
//! of a burst (8 hierarchies here: 5-24 ms through `cgroup.procs`, 0.3-0.4 ms through `tasks`).
//! v2 moves only whole processes outside threaded subtrees, so there it stays `cgroup.procs`.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, ShimError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

#[derive(Debug, Clone)]
pub struct Cgroup {
    pub version: CgroupVersion,
    /// One directory per hierarchy (v1) or the single unified directory (v2).
    pub dirs: Vec<PathBuf>,
}

impl Cgroup {
    /// Resolves the spec's `linux.cgroupsPath` on the host's hierarchies.
    pub fn from_spec_path(cgroups_path: &str) -> Result<Self> {
        let relative = relative_path(cgroups_path)?;
        let mounts = fs::read_to_string("/proc/self/mounts")
            .map_err(|e| ShimError::io("read /proc/self/mounts", e))?;
        let v1: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() > 3 && fields[2] == "cgroup").then(|| PathBuf::from(fields[1]))
            })
            .collect();
        if !v1.is_empty() {
            return Ok(Cgroup {
                version: CgroupVersion::V1,
                dirs: v1.iter().map(|mount| mount.join(&relative)).collect(),
            });
        }
        let unified = mounts.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 3 && fields[2] == "cgroup2").then(|| PathBuf::from(fields[1]))
        });
        match unified {
            Some(mount) => Ok(Cgroup {
                version: CgroupVersion::V2,
                dirs: vec![mount.join(&relative)],
            }),
            None => Err(ShimError::Cgroup {
                path: PathBuf::from("/proc/self/mounts"),
                reason: "no cgroup hierarchy is mounted".to_string(),
            }),
        }
    }

    /// The directories recorded in a persisted state (for removal only).
    pub fn from_dirs(dirs: Vec<PathBuf>) -> Self {
        let version = if dirs.len() == 1 {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        };
        Cgroup { version, dirs }
    }

    pub fn create(&self) -> Result<()> {
        for dir in &self.dirs {
            fs::create_dir_all(dir)
                .map_err(|e| ShimError::io(format!("create cgroup {}", dir.display()), e))?;
            if self.version == CgroupVersion::V1 && dir.join("cpuset.cpus").exists() {
                inherit_cpuset(dir)?;
            }
        }
        Ok(())
    }

    /// The files a forked, still single-threaded child writes "0" to, to join the cgroup
    /// (`tasks` on v1, `cgroup.procs` on v2; see the module's note), ready for the child, which
    /// must not allocate.
    pub fn join_files(&self) -> Result<Vec<CString>> {
        let name = match self.version {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.procs",
        };
        self.dirs
            .iter()
            .map(|dir| {
                let file = dir.join(name);
                CString::new(file.as_os_str().as_bytes()).map_err(|_| {
                    ShimError::invalid(
                        "cgroupsPath",
                        file.display().to_string(),
                        "contains a NUL byte",
                    )
                })
            })
            .collect()
    }

    pub fn pids(&self) -> Result<Vec<u32>> {
        let Some(dir) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let file = dir.join("cgroup.procs");
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ShimError::io(format!("read {}", file.display()), e)),
        };
        text.lines()
            .map(|line| {
                line.trim().parse().map_err(|_| ShimError::Cgroup {
                    path: file.clone(),
                    reason: format!("not a pid: {line:?}"),
                })
            })
            .collect()
    }

    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let (file, value) = match self.version {
            CgroupVersion::V1 => {
                let dir = self
                    .dirs
                    .iter()
                    .find(|dir| dir.starts_with("/sys/fs/cgroup/freezer"))
                    .ok_or_else(|| ShimError::Cgroup {
                        path: PathBuf::from("/sys/fs/cgroup/freezer"),
                        reason: "the freezer hierarchy is not mounted".to_string(),
                    })?;
                (
                    dir.join("freezer.state"),
                    if frozen { "FROZEN" } else { "THAWED" },
                )
            }
            CgroupVersion::V2 => (
                self.dirs[0].join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
            ),
        };
        fs::write(&file, value)
            .map_err(|e| ShimError::io(format!("write {value} to {}", file.display()), e))
    }

    /// Whether the kernel's OOM killer killed a task of this cgroup (v1 `memory.oom_control`,
    /// v2 `memory.events`: the `oom_kill` counter).
    pub fn oom_killed(&self) -> bool {
        let file = match self.version {
            CgroupVersion::V1 => self
                .dirs
                .iter()
                .find(|dir| dir.starts_with("/sys/fs/cgroup/memory"))
                .map(|dir| dir.join(V1_OOM_COUNTER)),
            CgroupVersion::V2 => self.dirs.first().map(|dir| dir.join(V2_OOM_COUNTER)),
        };
        file.is_some_and(|file| oom_kills_counted(&file))
    }

    /// Removes the directories; a cgroup whose last task just died can stay busy for a moment.
    pub fn remove(&self) -> Result<()> {
        let mut failures = Vec::new();
        for dir in &self.dirs {
            if let Err(error) = remove_dir_retrying(dir) {
                failures.push(ShimError::io(
                    format!("remove cgroup {}", dir.display()),
                    error,
                ));
            }
        }
        ShimError::from_cleanup(failures)
    }
}

/// Where a running process's cgroup lives, for reading its statistics: each v1 controller's
/// directory, or the one v2 directory. A host with any v1 hierarchy mounted is read as v1 (the
/// controllers live there; a hybrid host's unified tree holds none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessCgroup {
    V1(Vec<(String, PathBuf)>),
    V2(PathBuf),
}

impl ProcessCgroup {
    pub fn of_pid(pid: u32) -> Result<Self> {
        let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let membership = fs::read_to_string(&file)
            .map_err(|e| ShimError::io(format!("read {}", file.display()), e))?;
        let mounts = fs::read_to_string("/proc/self/mounts")
            .map_err(|e| ShimError::io("read /proc/self/mounts", e))?;
        Self::resolve(&membership, &mounts)
            .map_err(|reason| ShimError::Cgroup { path: file, reason })
    }

    /// `membership` is /proc/<pid>/cgroup (`id:controllers:path` lines), `mounts` /proc/self/mounts.
    fn resolve(membership: &str, mounts: &str) -> std::result::Result<Self, String> {
        let mounted: Vec<(&str, &str, &str)> = mounts
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() > 3).then(|| (fields[1], fields[2], fields[3]))
            })
            .collect();
        let entries = membership.lines().filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            Some((parts.next()?, parts.next()?, parts.next()?))
        });
        let v1_mounts: Vec<(&str, &str)> = mounted
            .iter()
            .filter(|(_, fs_type, _)| *fs_type == "cgroup")
            .map(|(target, _, options)| (*target, *options))
            .collect();
        if v1_mounts.is_empty() {
            let (_, _, path) = entries
                .into_iter()
                .find(|(id, controllers, _)| *id == "0" && controllers.is_empty())
                .ok_or("no `0::` (cgroup v2) line")?;
            let (root, _, _) = mounted
                .iter()
                .find(|(_, fs_type, _)| *fs_type == "cgroup2")
                .ok_or("no cgroup2 file system is mounted")?;
            return Ok(ProcessCgroup::V2(below(root, path)?));
        }
        let mut dirs = Vec::new();
        for (_, controllers, path) in entries {
            for controller in controllers.split(',').filter(|c| !c.is_empty()) {
                let mount = v1_mounts
                    .iter()
                    .find(|(_, options)| options.split(',').any(|option| option == controller));
                if let Some((root, _)) = mount {
                    dirs.push((controller.to_string(), below(root, path)?));
                }
            }
        }
        if dirs.is_empty() {
            return Err("no v1 controller of the process is mounted".to_string());
        }
        Ok(ProcessCgroup::V1(dirs))
    }

    /// The file holding the kernel's count of OOM kills in this cgroup (see
    /// [`oom_kills_counted`]), if the memory controller is mounted.
    pub fn oom_counter(&self) -> Option<PathBuf> {
        match self {
            ProcessCgroup::V1(_) => self.v1_dir("memory").map(|dir| dir.join(V1_OOM_COUNTER)),
            ProcessCgroup::V2(dir) => Some(dir.join(V2_OOM_COUNTER)),
        }
    }

    /// The v1 directory of `controller`, if that controller is mounted.
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        match self {
            ProcessCgroup::V1(dirs) => dirs
                .iter()
                .find(|(name, _)| name == controller)
                .map(|(_, dir)| dir.as_path()),
            ProcessCgroup::V2(_) => None,
        }
    }
}

/// The v1 memory controller's file with the `oom_kill` counter.
pub const V1_OOM_COUNTER: &str = "memory.oom_control";
/// The v2 file with the `oom_kill` counter.
pub const V2_OOM_COUNTER: &str = "memory.events";

/// Whether the `oom_kill` counter in `file` (v1 `memory.oom_control`, v2 `memory.events`) is
/// above zero. An unreadable file (the cgroup is gone) counts none.
pub fn oom_kills_counted(file: &Path) -> bool {
    let Ok(text) = fs::read_to_string(file) else {
        return false;
    };
    text.lines().any(|line| {
        line.strip_prefix("oom_kill ")
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
}

fn below(root: &str, path: &str) -> std::result::Result<PathBuf, String> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!("cgroup path {path:?} leaves its hierarchy"));
    }
    Ok(Path::new(root).join(relative))
}

/// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and the kernel refuses tasks
/// (ENOSPC) until both are set: copy them down from the nearest ancestor, level by level.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let mut chain: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| d.join("cpuset.cpus").exists())
        .collect();
    chain.reverse();
    for pair in chain.windows(2) {
        let (parent, child) = (pair[0], pair[1]);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = fs::read_to_string(child.join(file))
                .map_err(|e| ShimError::io(format!("read {}", child.join(file).display()), e))?;
            if current.trim().is_empty() {
                let inherited = fs::read_to_string(parent.join(file)).map_err(|e| {
                    ShimError::io(format!("read {}", parent.join(file).display()), e)
                })?;
                fs::write(child.join(file), inherited.trim()).map_err(|e| {
                    ShimError::io(format!("write {}", child.join(file).display()), e)
                })?;
            }
        }
    }
    Ok(())
}

fn remove_dir_retrying(dir: &Path) -> std::io::Result<()> {
    let mut attempt = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 50 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `cgroupsPath` as a path relative to a hierarchy's root: cgroupfs form (`/a/b`) as is, the
/// systemd form (`slice:prefix:name`) as systemd lays it out (`slice/prefix-name.scope`).
fn relative_path(cgroups_path: &str) -> Result<PathBuf> {
    let refuse = |reason: &str| ShimError::invalid("linux.cgroupsPath", cgroups_path, reason);
    let relative = if cgroups_path.starts_with('/') {
        PathBuf::from(cgroups_path.trim_start_matches('/'))
    } else {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(refuse("expected /path or slice:prefix:name"));
        };
        PathBuf::from(slice).join(format!("{prefix}-{name}.scope"))
    };
    if relative.as_os_str().is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(refuse(
            "must name a cgroup below the hierarchy root, without `..`",
        ));
    }
    Ok(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_and_systemd_paths() {
        assert_eq!(
            relative_path("/default/c1").expect("ok"),
            PathBuf::from("default/c1")
        );
        assert_eq!(
            relative_path("kubepods.slice:cri-containerd:abc").expect("ok"),
            PathBuf::from("kubepods.slice/cri-containerd-abc.scope")
        );
        for bad in ["/", "/a/../../etc", "nocolon", ""] {
            assert!(relative_path(bad).is_err(), "{bad} accepted");
        }
    }

    const HYBRID_MOUNTS: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
";

    #[test]
    fn a_v1_process_cgroup_maps_each_controller_to_its_hierarchy() {
        let membership = "12:pids:/default/c1\n5:cpu,cpuacct:/default/c1\n4:memory:/default/c1\n1:name=systemd:/x\n0::/x\n";
        let cgroup = ProcessCgroup::resolve(membership, HYBRID_MOUNTS).expect("v1");
        assert_eq!(
            cgroup.v1_dir("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/default/c1"))
        );
        assert_eq!(
            cgroup.v1_dir("memory"),
            Some(Path::new("/sys/fs/cgroup/memory/default/c1"))
        );
        assert_eq!(
            cgroup.v1_dir("pids"),
            Some(Path::new("/sys/fs/cgroup/pids/default/c1"))
        );
        assert_eq!(cgroup.v1_dir("blkio"), None);
    }

    #[test]
    fn a_unified_host_gives_the_v2_directory() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        assert_eq!(
            ProcessCgroup::resolve("0::/kubepods/pod1/c1\n", mounts),
            Ok(ProcessCgroup::V2(PathBuf::from(
                "/sys/fs/cgroup/kubepods/pod1/c1"
            )))
        );
        let escape = ProcessCgroup::resolve("0::/../../etc\n", mounts).expect_err("escape");
        assert!(escape.contains("leaves its hierarchy"), "{escape}");
        assert!(ProcessCgroup::resolve("", mounts).is_err());
        assert!(ProcessCgroup::resolve("0::/a\n", "proc /proc proc rw 0 0\n").is_err());
    }
}
