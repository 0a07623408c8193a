//! The confinement of one VMM, as data: what its root contains, who it runs as, what it may do.
//!
//! Pure: the host files were found by `host_files`, the guest's files were resolved inside the
//! rootfs by the shim. Every mount appears in the new root at the same absolute path it has on
//! the host, so the VMM's argv (which names host paths) needs no rewriting; nothing else of the
//! host, and nothing else of the container rootfs, is visible.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use runtime_core::oci::{capability_number, Capabilities, Process, RlimitType, CAPABILITY_NAMES};
use runtime_core::Accel;

use super::host_files::HostFiles;
use crate::error::{Result, ShimError};

/// How a path is exposed in the new root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only, executable (the program and its libraries, qemu's modules).
    Exec,
    /// Read-only, not executable (firmware, kernel, initrd, config files).
    ReadOnly,
    /// Writable, not executable (the block image, the control socket's directory).
    ReadWrite,
    /// A device node: writable, no exec.
    Device,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path; also the path inside the new root.
    pub path: PathBuf,
    pub directory: bool,
    pub access: Access,
}

/// The guest's files, already resolved inside the rootfs by the shim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestFiles {
    /// `None` for a program that boots no guest (virtiofsd).
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// A block image in the rootfs, or the rootfs block device.
    pub block: Option<PathBuf>,
    pub block_is_device: bool,
    /// Files the VMM reads (its config file).
    pub read_only: Vec<PathBuf>,
    /// Directories the VMM writes (where it creates its control socket).
    pub writable_dirs: Vec<PathBuf>,
}

/// What is confined and how: the part of the confinement the caller decides (the request to
/// [`super::prepare`] and the plan's input both carry it).
#[derive(Clone, Copy)]
pub struct ConfineTarget<'a> {
    /// An empty directory owned by the shim; the VMM's tmpfs root is mounted on it, in the
    /// VMM's own mount namespace only.
    pub new_root: &'a Path,
    pub guest: &'a GuestFiles,
    pub accel: Accel,
    pub networked: bool,
    /// The spec's `process` (user, capabilities, rlimits); `None` runs as root without
    /// capabilities.
    pub process: Option<&'a Process>,
}

pub struct ConfineInput<'a> {
    pub target: ConfineTarget<'a>,
    pub host: &'a HostFiles,
    /// `/proc/sys/kernel/cap_last_cap` of this host.
    pub last_capability: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Capability sets as bit masks (bit n = capability number n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// A `libc::RLIMIT_*` number.
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfinePlan {
    pub new_root: PathBuf,
    /// The absolute program path to exec (visible at the same path in the new root).
    pub program: PathBuf,
    /// Parents before children; no path lies inside a mounted directory.
    pub mounts: Vec<BindMount>,
    pub user: User,
    pub capabilities: CapabilitySets,
    pub rlimits: Vec<Rlimit>,
    /// All capability numbers this kernel knows, for dropping the bounding set.
    pub last_capability: u32,
}

/// Device nodes every VMM gets: qemu and firecracker read randomness and map zero pages.
const BASE_DEVICES: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/urandom"];

pub fn plan(input: &ConfineInput) -> Result<ConfinePlan> {
    let target = &input.target;
    checked_path("confine.new_root", target.new_root)?;
    let mut mounts = Vec::new();
    let mut add = |path: &Path, directory: bool, access: Access, field: &str| -> Result<()> {
        checked_path(field, path)?;
        mounts.push(BindMount {
            path: path.to_path_buf(),
            directory,
            access,
        });
        Ok(())
    };
    let host = input.host;
    add(&host.program, false, Access::Exec, "VMM program")?;
    for library in &host.libraries {
        add(library, false, Access::Exec, "VMM library")?;
    }
    for dir in &host.data_dirs {
        add(dir, true, Access::Exec, "VMM data directory")?;
    }
    if let Some(cache) = &host.loader_cache {
        add(cache, false, Access::ReadOnly, "loader cache")?;
    }
    let guest = target.guest;
    if let Some(kernel) = &guest.kernel {
        add(
            kernel,
            false,
            Access::ReadOnly,
            "com.urunc.unikernel.binary",
        )?;
    }
    if let Some(initrd) = &guest.initrd {
        add(
            initrd,
            false,
            Access::ReadOnly,
            "com.urunc.unikernel.initrd",
        )?;
    }
    if let Some(block) = &guest.block {
        let access = if guest.block_is_device {
            Access::Device
        } else {
            Access::ReadWrite
        };
        add(block, false, access, "com.urunc.unikernel.block")?;
    }
    for file in &guest.read_only {
        add(file, false, Access::ReadOnly, "VMM config file")?;
    }
    for dir in &guest.writable_dirs {
        add(dir, true, Access::ReadWrite, "VMM writable directory")?;
    }
    for device in BASE_DEVICES {
        add(Path::new(device), false, Access::Device, "device")?;
    }
    if target.accel == Accel::Kvm {
        add(Path::new("/dev/kvm"), false, Access::Device, "device")?;
    }
    if target.networked {
        add(Path::new("/dev/net/tun"), false, Access::Device, "device")?;
    }
    for mount in &mounts {
        if target.new_root.starts_with(&mount.path) || mount.path.starts_with(target.new_root) {
            return Err(ShimError::invalid(
                "confine.new_root",
                target.new_root.display().to_string(),
                format!("overlaps the mounted path {}", mount.path.display()),
            ));
        }
    }

    let process = target.process;
    Ok(ConfinePlan {
        new_root: target.new_root.to_path_buf(),
        program: host.program.clone(),
        mounts: without_covered(mounts),
        user: process.map(user_of).transpose()?.unwrap_or_default(),
        capabilities: match process {
            Some(process) => capability_sets(&process.capabilities, input.last_capability)?,
            None => CapabilitySets::default(),
        },
        rlimits: match process {
            Some(process) => process
                .rlimits
                .iter()
                .enumerate()
                .map(|(index, l)| rlimit(index, &l.kind, l.soft, l.hard))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        },
        last_capability: input.last_capability,
    })
}

/// Absolute, normal components only: the shim resolved every path, so `..` means a bug or an
/// attack, and `/` itself would expose the whole host.
fn checked_path(field: &str, path: &Path) -> Result<()> {
    let normal = path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)));
    if !normal || path == Path::new("/") {
        return Err(ShimError::invalid(
            field,
            path.display().to_string(),
            "must be an absolute path without `.` or `..`, and not `/`",
        ));
    }
    Ok(())
}

/// Drops duplicates and paths inside a mounted directory (already visible through it, and a
/// mount point there would have to be created in the host directory), then orders parents
/// before children.
fn without_covered(mounts: Vec<BindMount>) -> Vec<BindMount> {
    let dirs: Vec<PathBuf> = mounts
        .iter()
        .filter(|m| m.directory)
        .map(|m| m.path.clone())
        .collect();
    let mut seen = HashSet::new();
    let mut kept: Vec<BindMount> = mounts
        .into_iter()
        .filter(|m| !dirs.iter().any(|d| m.path != *d && m.path.starts_with(d)))
        .filter(|m| seen.insert(m.path.clone()))
        .collect();
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    kept
}

/// `(uid_t)-1` means "leave unchanged" to setresuid/setresgid and is no one's id.
const NO_ID: u32 = u32::MAX;

fn user_of(process: &Process) -> Result<User> {
    let user = &process.user;
    let checked = |field: &str, id: u32| {
        if id == NO_ID {
            Err(ShimError::invalid(
                field,
                id.to_string(),
                "(uid_t)-1 is not an id: setresuid/setresgid read it as \"unchanged\"",
            ))
        } else {
            Ok(id)
        }
    };
    checked("process.user.uid", user.uid)?;
    checked("process.user.gid", user.gid)?;
    for gid in &user.additional_gids {
        checked("process.user.additionalGids", *gid)?;
    }
    Ok(User {
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids.clone(),
    })
}

/// The sets as masks, refusing what the kernel would refuse at capset (with an errno and no
/// name) so the error can name the field: effective and ambient capabilities must be
/// permitted, ambient ones inheritable too.
fn capability_sets(caps: &Capabilities, last: u32) -> Result<CapabilitySets> {
    let sets = CapabilitySets {
        bounding: mask("process.capabilities.bounding", &caps.bounding, last)?,
        effective: mask("process.capabilities.effective", &caps.effective, last)?,
        permitted: mask("process.capabilities.permitted", &caps.permitted, last)?,
        inheritable: mask("process.capabilities.inheritable", &caps.inheritable, last)?,
        ambient: mask("process.capabilities.ambient", &caps.ambient, last)?,
    };
    let not_within = |field: &str, set: u64, allowed: u64, reason: &str| -> Result<()> {
        let extra = set & !allowed;
        if extra == 0 {
            return Ok(());
        }
        let names: Vec<&str> = (0..64)
            .filter(|n| extra & (1 << n) != 0)
            .map(|n| CAPABILITY_NAMES.get(n).copied().unwrap_or("?"))
            .collect();
        Err(ShimError::invalid(field, names.join(","), reason))
    };
    not_within(
        "process.capabilities.effective",
        sets.effective,
        sets.permitted,
        "an effective capability must also be permitted",
    )?;
    not_within(
        "process.capabilities.ambient",
        sets.ambient,
        sets.permitted & sets.inheritable,
        "an ambient capability must also be permitted and inheritable",
    )?;
    Ok(sets)
}

/// One set as a mask. A capability this kernel does not know is left out with a warning, as
/// runc does (specs are written for many kernels); a name that is no Linux capability at all
/// (a typo, `SYS_ADMIN` without `CAP_`) is refused rather than guessed at.
fn mask(field: &str, names: &[String], last: u32) -> Result<u64> {
    let mut mask = 0u64;
    for name in names {
        match capability_number(name) {
            Some(n) if n <= last => mask |= 1 << n,
            Some(_) => {
                tracing::warn!(capability = %name, last_known = last, "capability unknown to this kernel; not granted");
            }
            None => {
                return Err(ShimError::invalid(
                    field,
                    name,
                    "not a Linux capability name as runtime-spec spells them (CAP_CHOWN to CAP_CHECKPOINT_RESTORE)",
                ))
            }
        }
    }
    Ok(mask)
}

fn rlimit(index: usize, kind: &RlimitType, soft: u64, hard: u64) -> Result<Rlimit> {
    let resource = match kind {
        RlimitType::Cpu => libc::RLIMIT_CPU,
        RlimitType::Fsize => libc::RLIMIT_FSIZE,
        RlimitType::Data => libc::RLIMIT_DATA,
        RlimitType::Stack => libc::RLIMIT_STACK,
        RlimitType::Core => libc::RLIMIT_CORE,
        RlimitType::Rss => libc::RLIMIT_RSS,
        RlimitType::Nproc => libc::RLIMIT_NPROC,
        RlimitType::Nofile => libc::RLIMIT_NOFILE,
        RlimitType::Memlock => libc::RLIMIT_MEMLOCK,
        RlimitType::As => libc::RLIMIT_AS,
        RlimitType::Locks => libc::RLIMIT_LOCKS,
        RlimitType::Sigpending => libc::RLIMIT_SIGPENDING,
        RlimitType::Msgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitType::Nice => libc::RLIMIT_NICE,
        RlimitType::Rtprio => libc::RLIMIT_RTPRIO,
        RlimitType::Rttime => libc::RLIMIT_RTTIME,
        RlimitType::Unknown(name) => {
            return Err(ShimError::invalid(
                format!("process.rlimits[{index}].type"),
                name,
                RlimitType::unknown_reason(),
            ))
        }
    };
    let name = kind.name();
    if soft > hard {
        return Err(ShimError::invalid(
            format!("process.rlimits[{name}]"),
            format!("soft {soft} hard {hard}"),
            "the soft limit exceeds the hard limit",
        ));
    }
    Ok(Rlimit {
        resource,
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFiles {
        HostFiles {
            program: "/usr/bin/qemu-system-x86_64".into(),
            libraries: vec![
                "/lib64/ld-linux-x86-64.so.2".into(),
                "/lib/x86_64-linux-gnu/libc.so.6".into(),
                "/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so".into(),
            ],
            data_dirs: vec![
                "/usr/share/qemu".into(),
                "/usr/lib/x86_64-linux-gnu/qemu".into(),
            ],
            loader_cache: Some("/etc/ld.so.cache".into()),
        }
    }

    fn guest() -> GuestFiles {
        GuestFiles {
            kernel: Some("/run/c/rootfs/kernel".into()),
            initrd: Some("/run/c/rootfs/initrd".into()),
            block: Some("/dev/mapper/thin-1".into()),
            block_is_device: true,
            read_only: vec![],
            writable_dirs: vec!["/run/urunc/c".into()],
        }
    }

    fn process() -> Process {
        serde_json::from_value(serde_json::json!({
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [1001, 1002]},
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                "effective": ["CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_NET_BIND_SERVICE"],
                "inheritable": ["CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}]
        }))
        .expect("process")
    }

    /// The input of a plan for `guest` under TCG, without network, as root, in `new_root`.
    fn tcg_input<'a>(
        new_root: &'a Path,
        host: &'a HostFiles,
        guest: &'a GuestFiles,
    ) -> ConfineInput<'a> {
        ConfineInput {
            target: ConfineTarget {
                new_root,
                guest,
                accel: Accel::Tcg,
                networked: false,
                process: None,
            },
            host,
            last_capability: 40,
        }
    }

    fn plan_for(accel: Accel, networked: bool, process: Option<&Process>) -> Result<ConfinePlan> {
        let (host, guest) = (host(), guest());
        let mut input = tcg_input(Path::new("/run/urunc/c-root"), &host, &guest);
        input.target = ConfineTarget {
            accel,
            networked,
            process,
            ..input.target
        };
        plan(&input)
    }

    #[test]
    fn mounts_cover_the_vmm_the_guest_and_only_the_devices_asked_for() {
        let process = process();
        let plan = plan_for(Accel::Tcg, true, Some(&process)).expect("plan");
        let paths: Vec<&str> = plan
            .mounts
            .iter()
            .map(|m| m.path.to_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            paths,
            [
                "/dev/mapper/thin-1",
                "/dev/net/tun",
                "/dev/null",
                "/dev/urandom",
                "/dev/zero",
                "/etc/ld.so.cache",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
                "/run/c/rootfs/initrd",
                "/run/c/rootfs/kernel",
                "/run/urunc/c",
                "/usr/bin/qemu-system-x86_64",
                // the module library is covered by its directory
                "/usr/lib/x86_64-linux-gnu/qemu",
                "/usr/share/qemu",
            ]
        );
        let access = |p: &str| {
            plan.mounts
                .iter()
                .find(|m| m.path == Path::new(p))
                .map(|m| m.access)
        };
        assert_eq!(access("/run/c/rootfs/kernel"), Some(Access::ReadOnly));
        assert_eq!(access("/dev/mapper/thin-1"), Some(Access::Device));
        assert_eq!(access("/usr/bin/qemu-system-x86_64"), Some(Access::Exec));
        assert_eq!(access("/run/urunc/c"), Some(Access::ReadWrite));

        let with_kvm = plan_for(Accel::Kvm, false, None).expect("plan");
        let devices: Vec<_> = with_kvm
            .mounts
            .iter()
            .filter(|m| m.path.starts_with("/dev/") && !m.path.starts_with("/dev/mapper"))
            .map(|m| m.path.display().to_string())
            .collect();
        assert_eq!(
            devices,
            ["/dev/kvm", "/dev/null", "/dev/urandom", "/dev/zero"]
        );
    }

    #[test]
    fn the_user_capabilities_and_rlimits_come_from_the_spec() {
        let process = process();
        let plan = plan_for(Accel::Tcg, false, Some(&process)).expect("plan");
        assert_eq!(
            plan.user,
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![1001, 1002]
            }
        );
        let net_bind = 1 << 10;
        assert_eq!(plan.capabilities.bounding, net_bind | (1 << 5));
        assert_eq!(plan.capabilities.effective, net_bind);
        assert_eq!(plan.capabilities.ambient, net_bind);
        assert_eq!(plan.capabilities.inheritable, net_bind);
        assert_eq!(
            plan.rlimits,
            [Rlimit {
                resource: libc::RLIMIT_NOFILE,
                soft: 1024,
                hard: 4096
            }]
        );
        let bare = plan_for(Accel::Tcg, false, None).expect("plan");
        assert_eq!(bare.user, User::default());
        assert_eq!(bare.capabilities, CapabilitySets::default());
    }

    #[test]
    fn capabilities_unknown_to_the_kernel_are_left_out() {
        let process = process();
        let (host, guest) = (host(), guest());
        let mut input = tcg_input(Path::new("/run/urunc/c-root"), &host, &guest);
        input.target.process = Some(&process);
        input.last_capability = 9;
        let plan = plan(&input).expect("plan");
        assert_eq!(plan.capabilities.bounding, 1 << 5);
    }

    #[test]
    fn hostile_paths_are_refused_naming_the_field() {
        let (host, mut guest) = (host(), guest());
        guest.kernel = Some("/run/c/rootfs/../../etc/shadow".into());
        let error =
            plan(&tcg_input(Path::new("/run/urunc/c-root"), &host, &guest)).expect_err("dot-dot");
        assert!(
            error.to_string().contains("com.urunc.unikernel.binary"),
            "{error}"
        );

        let guest = GuestFiles {
            kernel: Some("/run/c/rootfs/kernel".into()),
            ..GuestFiles::default()
        };
        let error = plan(&tcg_input(Path::new("/usr/share/qemu/root"), &host, &guest))
            .expect_err("root inside a mounted directory");
        assert!(error.to_string().contains("confine.new_root"), "{error}");
    }

    #[test]
    fn impossible_users_and_capabilities_are_refused_naming_the_field() {
        let mut bad_uid = process();
        bad_uid.user =
            serde_json::from_value(serde_json::json!({"uid": u32::MAX, "gid": 0})).expect("user");
        let error = plan_for(Accel::Tcg, false, Some(&bad_uid)).expect_err("uid -1");
        let message = error.to_string();
        assert!(
            message.contains("process.user.uid") && message.contains("4294967295"),
            "{message}"
        );

        let mut bad_caps = process();
        bad_caps.capabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_NET_ADMIN", "CAP_KILL"],
            "effective": ["CAP_NET_ADMIN"],
            "permitted": ["CAP_KILL"]
        }))
        .expect("capabilities");
        let error = plan_for(Accel::Tcg, false, Some(&bad_caps)).expect_err("not permitted");
        let message = error.to_string();
        assert!(
            message.contains("process.capabilities.effective") && message.contains("CAP_NET_ADMIN"),
            "{message}"
        );
    }

    /// Not a capability runtime-spec names (misspelt, or without `CAP_`): refused, not
    /// guessed at, whichever set it is in.
    #[test]
    fn unknown_capability_names_are_refused_naming_field_and_value() {
        for (set, name) in [
            ("bounding", "CAP_NET_ADMINN"),
            ("permitted", "SYS_ADMIN"),
            ("ambient", "cap_kill"),
        ] {
            let mut process = process();
            process.capabilities =
                serde_json::from_value(serde_json::json!({ set: [name] })).expect("capabilities");
            let message = plan_for(Accel::Tcg, false, Some(&process))
                .expect_err("unknown capability")
                .to_string();
            assert!(
                message.contains(&format!("process.capabilities.{set}"))
                    && message.contains(&format!("{name:?}")),
                "{message}"
            );
        }
    }

    #[test]
    fn an_inverted_rlimit_is_refused() {
        let process = Process {
            rlimits: vec![serde_json::from_value(
                serde_json::json!({"type": "RLIMIT_CORE", "soft": 10, "hard": 1}),
            )
            .expect("rlimit")],
            ..Process::default()
        };
        let error = plan_for(Accel::Tcg, false, Some(&process)).expect_err("soft > hard");
        assert!(error.to_string().contains("RLIMIT_CORE"), "{error}");
    }

    #[test]
    fn an_unknown_rlimit_type_is_refused_naming_field_and_value() {
        let process: Process = serde_json::from_value(serde_json::json!({
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                {"type": "RLIMIT_FILES", "soft": 1, "hard": 1}
            ]
        }))
        .expect("process");
        let message = plan_for(Accel::Tcg, false, Some(&process))
            .expect_err("unknown rlimit")
            .to_string();
        assert!(
            message.contains("process.rlimits[1].type") && message.contains("\"RLIMIT_FILES\""),
            "{message}"
        );
    }
}
