//! Applying a [`ConfinePlan`]: its root is built in a helper process at Create
//! ([`super::root_helper`]), its identity set in the forked VMM child between fork and exec.
//!
//! [`Confinement::prepare`] runs in the shim and allocates everything (paths as C strings,
//! masks, group lists); [`Confinement::build_root_and_enter`] (in the helper) and
//! [`Confinement::enter_built_root`] (in the VMM child) run in children of a multi-threaded
//! process, so they make raw system calls only: no allocation, no locks. A failing step
//! writes one line naming the step and the path to the process's stderr (the helper's report
//! pipe; the container's stderr in the VMM child) and returns the errno.
//!
//! Order matters: mounts need CAP_SYS_ADMIN, so they come first; the bounding set is dropped
//! while CAP_SETPCAP is still effective; ids change with KEEPCAPS so the permitted set survives
//! the switch to a non-root uid; capset and the ambient set come last, then no_new_privs.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::plan::{Access, CapabilitySets, ConfinePlan, Rlimit};
use crate::error::{Result, ShimError};

/// The tmpfs holds mount points only.
const TMPFS_OPTIONS: &CStr = c"mode=0755,size=1m";
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// The VMM's proc, at its host path inside the confined root.
const PROC: &CStr = c"/proc";

struct PreparedMount {
    source: CString,
    target: CString,
    directory: bool,
    access: Access,
}

/// A plan turned into what the child needs, allocated before the fork.
pub struct Confinement {
    new_root: CString,
    /// Inside the tmpfs, parents first.
    directories: Vec<CString>,
    mounts: Vec<PreparedMount>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    groups: Vec<libc::gid_t>,
    capabilities: CapabilitySets,
    last_capability: u32,
    rlimits: Vec<Rlimit>,
}

impl Confinement {
    pub fn prepare(plan: &ConfinePlan) -> Result<Self> {
        let inside = |path: &Path| -> Result<CString> {
            let relative = path.strip_prefix("/").unwrap_or(path);
            c_path(&plan.new_root.join(relative))
        };
        let mut directories = BTreeSet::new();
        let mut mounts = Vec::with_capacity(plan.mounts.len());
        for mount in &plan.mounts {
            let parents = mount
                .path
                .ancestors()
                .skip(1)
                .filter(|p| *p != Path::new("/"));
            directories.extend(parents.map(Path::to_path_buf));
            if mount.directory {
                directories.insert(mount.path.clone());
            }
            mounts.push(PreparedMount {
                source: c_path(&mount.path)?,
                target: inside(&mount.path)?,
                directory: mount.directory,
                access: mount.access,
            });
        }
        directories.insert(PathBuf::from(PROC.to_str().expect("ASCII")));
        Ok(Confinement {
            new_root: c_path(&plan.new_root)?,
            // BTreeSet order puts every parent before its children.
            directories: directories
                .iter()
                .map(|d| inside(d))
                .collect::<Result<_>>()?,
            mounts,
            uid: plan.user.uid,
            gid: plan.user.gid,
            groups: plan.user.additional_gids.clone(),
            capabilities: plan.capabilities,
            last_capability: plan.last_capability,
            rlimits: plan.rlimits.clone(),
        })
    }

    /// In the root-building helper only: a new mount namespace whose root is the confined
    /// tmpfs, the process's root and cwd in it.
    pub(super) fn build_root_and_enter(&self) -> io::Result<()> {
        self.build_root()?;
        self.enter_root()
    }

    /// In the forked VMM child only: joins the mount namespace the helper built (`namespace`, an
    /// nsfs descriptor opened before the fork), mounts the proc of the child's pid namespace,
    /// then sets the limits and the identity.
    pub(super) fn enter_built_root(&self, namespace: libc::c_int) -> io::Result<()> {
        // SAFETY (every block below): raw system calls on an fd and NUL-terminated strings
        // owned by the caller.
        check(
            unsafe { libc::setns(namespace, libc::CLONE_NEWNS) },
            "join the confined mount namespace of",
            &self.new_root,
        )?;
        check(unsafe { libc::chdir(c"/".as_ptr()) }, "chdir to", c"/")?;
        self.finish_inside()
    }

    /// In a process inside the built root and the VMM's pid namespace (the VMM's own process,
    /// [`super::WaitingVmm`], or the child of [`Self::enter_built_root`]): mounts the proc of
    /// that pid namespace, then sets the limits and the identity.
    pub(super) fn finish_inside(&self) -> io::Result<()> {
        // proc shows the pid namespace of whoever mounts it: only a process in the VMM's may.
        // SAFETY: a raw mount(2) of static NUL-terminated strings.
        check(
            unsafe {
                libc::mount(
                    c"proc".as_ptr(),
                    PROC.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                )
            },
            "mount proc on",
            PROC,
        )?;
        self.set_limits()?;
        self.set_identity()
    }

    fn build_root(&self) -> io::Result<()> {
        let none: *const libc::c_char = std::ptr::null();
        // SAFETY (every block below): raw system calls on NUL-terminated strings owned by self.
        check(
            unsafe { libc::unshare(libc::CLONE_NEWNS) },
            "unshare the mount namespace",
            c"",
        )?;
        change_mount(
            c"/",
            libc::MS_REC | libc::MS_PRIVATE,
            "make the mounts private",
            c"/",
        )?;
        check(
            unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    self.new_root.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    TMPFS_OPTIONS.as_ptr().cast(),
                )
            },
            "mount the tmpfs root on",
            &self.new_root,
        )?;
        for dir in &self.directories {
            if unsafe { libc::mkdir(dir.as_ptr(), 0o755) } < 0 && errno() != libc::EEXIST {
                return Err(failure("create the directory", dir));
            }
        }
        for mount in &self.mounts {
            if !mount.directory {
                let fd = unsafe {
                    libc::open(
                        mount.target.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                        0o600,
                    )
                };
                check(fd, "create the mount point", &mount.target)?;
                unsafe { libc::close(fd) };
            }
            check(
                unsafe {
                    libc::mount(
                        mount.source.as_ptr(),
                        mount.target.as_ptr(),
                        none,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    )
                },
                "bind-mount",
                &mount.source,
            )?;
        }
        self.restrict_mounts()
    }

    /// Makes every bind mount read-only, nosuid and nodev with one recursive
    /// `mount_setattr`, then relaxes the few that are not program files (guest files,
    /// writable directories, devices): 10-20 calls instead of one remount per mount (~100
    /// for qemu). Kernels before 5.12 lack `mount_setattr`: one remount per mount there.
    fn restrict_mounts(&self) -> io::Result<()> {
        let program_files = MountAttributes::of(Access::Exec);
        // SAFETY: mount_setattr on NUL-terminated paths owned by self and a stack struct.
        let all =
            unsafe { program_files.apply(&self.new_root, libc::AT_RECURSIVE as libc::c_uint) };
        if all < 0 && errno() == libc::ENOSYS {
            return self.remount_each();
        }
        check(all, "restrict the mounts under", &self.new_root)?;
        for mount in &self.mounts {
            if mount.access == Access::Exec {
                continue;
            }
            let attributes = MountAttributes::of(mount.access);
            // SAFETY: as above.
            let set = unsafe { attributes.apply(&mount.target, 0) };
            check(set, "restrict the mount of", &mount.source)?;
        }
        Ok(())
    }

    fn remount_each(&self) -> io::Result<()> {
        for mount in &self.mounts {
            change_mount(
                &mount.target,
                libc::MS_BIND | libc::MS_REMOUNT | remount_flags(mount.access),
                "restrict the mount of",
                &mount.source,
            )?;
        }
        Ok(())
    }

    /// pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the
    /// tmpfs, which is then made read-only.
    fn enter_root(&self) -> io::Result<()> {
        // SAFETY (every block below): raw system calls on NUL-terminated strings.
        check(
            unsafe { libc::chdir(self.new_root.as_ptr()) },
            "chdir to",
            &self.new_root,
        )?;
        let pivoted = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
        check(pivoted as libc::c_int, "pivot_root into", &self.new_root)?;
        check(
            unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) },
            "detach the old root",
            c"/",
        )?;
        check(unsafe { libc::chdir(c"/".as_ptr()) }, "chdir to", c"/")?;
        change_mount(
            c"/",
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            "make the root read-only",
            c"/",
        )
    }

    fn set_limits(&self) -> io::Result<()> {
        for limit in &self.rlimits {
            let value = libc::rlimit {
                rlim_cur: limit.soft,
                rlim_max: limit.hard,
            };
            // SAFETY: prlimit on this process with a stack value.
            let set = unsafe {
                libc::syscall(
                    libc::SYS_prlimit64,
                    0,
                    limit.resource as libc::c_long,
                    &value,
                    std::ptr::null::<libc::rlimit>(),
                )
            };
            check(set as libc::c_int, "set an rlimit", c"")?;
        }
        Ok(())
    }

    fn set_identity(&self) -> io::Result<()> {
        let caps = self.capabilities;
        // SAFETY (every block below): prctl, setgroups, setres[ug]id and capset with values and
        // buffers owned by self or on the stack.
        for cap in 0..=self.last_capability {
            if caps.bounding & (1 << cap) == 0 {
                let dropped =
                    unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
                check(dropped, "drop a capability from the bounding set", c"")?;
            }
        }
        check(
            unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) },
            "keep capabilities",
            c"",
        )?;
        check(
            unsafe { libc::setgroups(self.groups.len(), self.groups.as_ptr()) },
            "set the additional groups",
            c"",
        )?;
        check(
            unsafe { libc::setresgid(self.gid, self.gid, self.gid) },
            "set the gid",
            c"",
        )?;
        check(
            unsafe { libc::setresuid(self.uid, self.uid, self.uid) },
            "set the uid",
            c"",
        )?;
        check(
            unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) },
            "stop keeping capabilities",
            c"",
        )?;
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData::from_masks(caps, 0), CapData::from_masks(caps, 32)];
        let set = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
        check(set as libc::c_int, "set the capabilities", c"")?;
        let cleared = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        check(cleared, "clear the ambient capabilities", c"")?;
        for cap in 0..=self.last_capability {
            if caps.ambient & (1 << cap) != 0 {
                let raised = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        cap as libc::c_ulong,
                        0,
                        0,
                    )
                };
                check(raised, "raise an ambient capability", c"")?;
            }
        }
        // A VMM never needs to gain privileges through exec, whatever the spec says.
        check(
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
            "set no_new_privs",
            c"",
        )
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

impl CapData {
    fn from_masks(caps: CapabilitySets, shift: u32) -> Self {
        CapData {
            effective: (caps.effective >> shift) as u32,
            permitted: (caps.permitted >> shift) as u32,
            inheritable: (caps.inheritable >> shift) as u32,
        }
    }
}

/// The per-mount flags of each access, as `mount_setattr` sets them: the attributes to set,
/// and those to clear from what the recursive pass set on every mount.
struct MountAttributes {
    set: u64,
    clear: u64,
}

impl MountAttributes {
    fn of(access: Access) -> Self {
        let (set, clear) = match access {
            Access::Exec => (
                libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
                0,
            ),
            Access::ReadOnly => (libc::MOUNT_ATTR_NOEXEC, 0),
            Access::ReadWrite => (libc::MOUNT_ATTR_NOEXEC, libc::MOUNT_ATTR_RDONLY),
            Access::Device => (
                libc::MOUNT_ATTR_NOEXEC,
                libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV,
            ),
        };
        MountAttributes { set, clear }
    }

    /// `mount_setattr(2)` on `path` (not following a final symlink); the raw result.
    ///
    /// # Safety
    /// A raw system call: async-signal-safe, on a NUL-terminated path.
    unsafe fn apply(&self, path: &CStr, flags: libc::c_uint) -> libc::c_int {
        let attributes = libc::mount_attr {
            attr_set: self.set,
            attr_clr: self.clear,
            propagation: 0,
            userns_fd: 0,
        };
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
            &attributes,
            std::mem::size_of::<libc::mount_attr>(),
        ) as libc::c_int
    }
}

fn remount_flags(access: Access) -> libc::c_ulong {
    match access {
        Access::Exec => libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        Access::ReadOnly => libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Access::ReadWrite => libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Access::Device => libc::MS_NOSUID | libc::MS_NOEXEC,
    }
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        ShimError::invalid(
            "confine path",
            path.display().to_string(),
            "contains a NUL byte",
        )
    })
}

fn errno() -> libc::c_int {
    errno_of(&io::Error::last_os_error())
}

/// The errno `error` carries; EIO for one that carries none. A forked child's exit code.
pub(super) fn errno_of(error: &io::Error) -> libc::c_int {
    error.raw_os_error().unwrap_or(libc::EIO)
}

/// mount(2) with flags only (no source, type or data): a propagation change or a remount of
/// `target`; a failure is reported as `step` on `named`. Async-signal-safe, as [`check`].
fn change_mount(target: &CStr, flags: libc::c_ulong, step: &str, named: &CStr) -> io::Result<()> {
    let none: *const libc::c_char = std::ptr::null();
    // SAFETY: a raw mount(2) of a NUL-terminated path; every other pointer is null.
    let changed = unsafe { libc::mount(none, target.as_ptr(), none, flags, std::ptr::null()) };
    check(changed, step, named)
}

fn check(result: libc::c_int, step: &str, path: &CStr) -> io::Result<()> {
    if result < 0 {
        Err(failure(step, path))
    } else {
        Ok(())
    }
}

/// Reports a failed step on the child's stderr and returns its errno. Async-signal-safe: the
/// message is written piecewise from static and pre-allocated bytes, the number from the stack.
fn failure(step: &str, path: &CStr) -> io::Error {
    failure_on(libc::STDERR_FILENO, step, path)
}

/// [`failure`] of a step whose error came back as `error` (errno may since have changed).
pub(super) fn failed_step(error: &io::Error, step: &str, path: &CStr) -> io::Error {
    failed_step_on(libc::STDERR_FILENO, error, step, path)
}

/// [`failed_step`], written to `fd`.
pub(super) fn failed_step_on(
    fd: libc::c_int,
    error: &io::Error,
    step: &str,
    path: &CStr,
) -> io::Error {
    report_on(fd, errno_of(error), step, path)
}

/// [`failure`] (of the step that just set errno), written to `fd`.
pub(super) fn failure_on(fd: libc::c_int, step: &str, path: &CStr) -> io::Error {
    report_on(fd, errno(), step, path)
}

/// Writes the line of step `step` on `path` failed with errno `code` to `fd`; that error.
fn report_on(fd: libc::c_int, code: libc::c_int, step: &str, path: &CStr) -> io::Error {
    let mut digits = [0u8; DECIMAL_DIGITS];
    let digits = decimal(code.unsigned_abs().into(), &mut digits);
    for part in [
        b"urunc-rs: confining the VMM: ".as_slice(),
        step.as_bytes(),
        b" ",
        path.to_bytes(),
        b": errno ",
        digits,
        b"\n",
    ] {
        // SAFETY: write(2) from a live buffer; a failed diagnostic cannot be reported.
        unsafe { libc::write(fd, part.as_ptr().cast(), part.len()) };
    }
    io::Error::from_raw_os_error(code)
}

/// Enough for any u64 in decimal.
pub(super) const DECIMAL_DIGITS: usize = 20;

/// `value` in decimal, written into `buffer` without allocating (async-signal-safe).
pub(super) fn decimal(value: u64, buffer: &mut [u8; DECIMAL_DIGITS]) -> &[u8] {
    let mut at = buffer.len();
    let mut rest = value;
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buffer[at..]
}
