//! The container rootfs shared with the guest as a filesystem (9p or virtiofs), as Go urunc
//! 2026 offers it (pkg/unikontainers/rootfs.go `tryContainerSharedFS`,
//! hypervisors/qemu.go, unikernels/linux.go).
//!
//! urunc's choice, kept here: only when `mountRootfs` is true and the rootfs cannot be the
//! guest's block device, virtiofs first (the kind reads virtiofs, the VMM has vhost-user-fs,
//! and the virtiofsd binary of `[extra_binaries.virtiofsd]` exists on the host), else 9p
//! (the kind reads 9p, the VMM has virtio-9p). Of urunc's kinds Linux reads both, FreeBSD
//! 9p only; of its VMMs only qemu shares a filesystem.
//!
//! What each one becomes, as data: qemu's devices, the guest's `root=` parameters (urunc's,
//! both with the mount tag `fs0`), and for virtiofs the daemon's argv. Departures from urunc,
//! each for a reason:
//!
//! * virtiofs memory is a `memory-backend-memfd` (`share=on`) made the machine's RAM, where
//!   urunc maps a file under `/tmp` and a NUMA node: a memfd needs no tmpfs sized to the guest
//!   in the VMM's root, and qemu's microvm has no NUMA. microvm's virtio-mmio devices must be
//!   modern (`force-legacy=false`): vhost-user-fs has no legacy mode.
//! * The vhost-user socket is in the container's VMM directory, not urunc's fixed
//!   `/tmp/vhostqemu`, so two guests never share one.
//! * The daemon's options: urunc's defaults (`--cache always --sandbox none`) are those of
//!   the Rust virtiofsd; the C virtiofsd Debian ships (qemu 7.2's `/usr/lib/qemu/virtiofsd`)
//!   takes `-o source=`, `-o cache=`, `-o sandbox=`. The plan writes the C form when the
//!   binary is the C daemon's path and the Rust form otherwise; the configured `options` are
//!   appended word by word, except that urunc's (Rust) default options become `-o
//!   cache=always` for the C daemon.
//! * The daemon runs confined like the VMM (the shim's `confine`: a root holding only its
//!   files, what it serves and its socket's folder; the container's cgroup; no_new_privs;
//!   only [`VIRTIOFSD_CAPABILITIES`]). The C daemon's own sandbox stays on inside it, as
//!   `-o sandbox=chroot` (written last, so it wins over the configured options): its default
//!   (`namespace`: new mount, pid and net namespaces and a pivot_root) needs CAP_SYS_ADMIN,
//!   which the confinement does not give; chroot needs only CAP_SYS_CHROOT and still narrows
//!   its view to the shared folder after it has made its socket. Its seccomp allowlist stays
//!   its own. `-o modcaps=-mknod:-setfcap` (last too) makes the set it keeps match the one
//!   granted: device nodes are useless on the confined nodev mount, and file capabilities
//!   need xattrs, off by default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Hypervisor, UnikernelType, UruncConfig};
use crate::error::CoreError;

/// The guest's mount tag for its root, as urunc names it.
pub const ROOT_TAG: &str = "fs0";
/// Where Debian's qemu 7.2 installs its C virtiofsd.
pub const C_VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";
/// Where the C daemon writes its pid file (`qemu_get_local_state_dir()/run/virtiofsd`); a
/// writable folder of its confined root.
pub const C_VIRTIOFSD_PID_DIR: &str = "/var/run/virtiofsd";
/// The node configuration's name for the daemon (`[extra_binaries.virtiofsd]`).
pub const VIRTIOFSD: &str = "virtiofsd";

/// Which shared filesystem carries the rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedFsKind {
    Virtiofs,
    #[serde(rename = "9p")]
    NineP,
}

impl SharedFsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SharedFsKind::Virtiofs => "virtiofs",
            SharedFsKind::NineP => "9p",
        }
    }
}

/// What the plan needs to share the rootfs: the host directory and, for virtiofs, the
/// vhost-user socket the daemon listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedRootfs {
    NineP { dir: PathBuf },
    Virtiofs { socket: PathBuf },
}

impl SharedRootfs {
    pub fn kind(&self) -> SharedFsKind {
        match self {
            SharedRootfs::NineP { .. } => SharedFsKind::NineP,
            SharedRootfs::Virtiofs { .. } => SharedFsKind::Virtiofs,
        }
    }
}

/// urunc's `SupportsFS("9pfs" | "virtiofs")`.
fn kind_reads(kind: &UnikernelType, fs: SharedFsKind) -> bool {
    match (kind, fs) {
        (UnikernelType::Linux, _) => true,
        (UnikernelType::Freebsd, fs) => fs == SharedFsKind::NineP,
        (
            UnikernelType::Unikraft
            | UnikernelType::Rumprun
            | UnikernelType::Mirage
            | UnikernelType::Mewz
            | UnikernelType::Hermit,
            _,
        ) => false,
    }
}

/// urunc's `SupportsSharedfs`: qemu has both; firecracker, cloud-hypervisor (in urunc) and
/// solo5 none.
fn vmm_shares(hypervisor: Hypervisor) -> bool {
    hypervisor == Hypervisor::Qemu
}

/// urunc's choice (see the module): virtiofs when `virtiofsd_found` (the configured binary
/// exists), else 9p; `Err` with the reason when neither can carry this guest's rootfs.
pub fn choose(config: &UruncConfig, virtiofsd_found: bool) -> Result<SharedFsKind, String> {
    let kind = &config.unikernel_type;
    if !vmm_shares(config.hypervisor) {
        return Err(format!(
            "{} shares no filesystem with its guest",
            config.hypervisor.as_str()
        ));
    }
    if kind_reads(kind, SharedFsKind::Virtiofs) && virtiofsd_found {
        return Ok(SharedFsKind::Virtiofs);
    }
    if kind_reads(kind, SharedFsKind::NineP) {
        return Ok(SharedFsKind::NineP);
    }
    Err(format!(
        "a {} guest reads neither 9p nor virtiofs",
        kind.as_str()
    ))
}

/// The guest's root parameters (urunc's `Linux.CommandString`).
pub(crate) fn root_params(fs: SharedFsKind) -> String {
    match fs {
        SharedFsKind::NineP => format!(
            "root={ROOT_TAG} rw rootfstype=9p \
             rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl"
        ),
        SharedFsKind::Virtiofs => format!("root={ROOT_TAG} rw rootfstype=virtiofs"),
    }
}

/// qemu's arguments for the shared rootfs. `device_suffix` is the machine's virtio transport
/// (`device` for microvm's virtio-mmio, `pci`); `memory_mib` the guest's RAM, which virtiofs
/// needs shared with the daemon. Returns the machine properties to add to `-M` and the other
/// arguments.
///
/// A FreeBSD guest's 9p share gets `multidevs=remap`, as urunc's `FreeBSD.MonitorSharedfsCli`
/// writes it: the rootfs spans several host devices (overlay layers, bind mounts) whose inode
/// numbers would otherwise collide in the guest. Linux's keeps urunc's Linux form.
pub(crate) fn qemu_args(
    shared: &SharedRootfs,
    kind: &UnikernelType,
    device_suffix: &str,
    memory_mib: u64,
) -> (Vec<String>, Vec<String>) {
    let multidevs = match kind {
        UnikernelType::Freebsd => "multidevs=remap,",
        _ => "",
    };
    match shared {
        SharedRootfs::NineP { dir } => (
            Vec::new(),
            vec![
                "-fsdev".into(),
                format!(
                    "local,id=rootfs9p,security_model=none,{multidevs}path={}",
                    qemu_escaped(dir)
                ),
                "-device".into(),
                format!("virtio-9p-{device_suffix},fsdev=rootfs9p,mount_tag={ROOT_TAG}"),
            ],
        ),
        SharedRootfs::Virtiofs { socket } => {
            let mut args = vec![
                "-object".into(),
                format!("memory-backend-memfd,id=mem,size={memory_mib}M,share=on"),
                "-chardev".into(),
                format!("socket,id=rootfsvfs,path={}", qemu_escaped(socket)),
                "-device".into(),
                format!(
                    "vhost-user-fs-{device_suffix},chardev=rootfsvfs,tag={ROOT_TAG},queue-size=1024"
                ),
            ];
            if device_suffix == "device" {
                args.extend(["-global".into(), "virtio-mmio.force-legacy=false".into()]);
            }
            (vec!["memory-backend=mem".into()], args)
        }
    }
}

/// qemu's option parser splits on `,`; a literal comma is written twice.
pub(crate) fn qemu_escaped(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// What the daemon keeps to serve a rootfs as root: the C daemon's own file-server set
/// less CAP_MKNOD and CAP_SETFCAP (see the module). Measured here: it serves the guest's boot
/// with exactly these effective (`/proc/<pid>/status` CapEff 0xdb).
pub const VIRTIOFSD_SERVING_CAPABILITIES: [&str; 6] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_SETGID",
    "CAP_SETUID",
];
/// What the C daemon's own sandbox uses once, after the guest connected, and then drops:
/// chroot(2) into the shared folder, and CAP_SETPCAP to empty its bounding set (without it,
/// libcap-ng's drop fails after the daemon's seccomp filter is on and it dies by SIGSYS).
pub const VIRTIOFSD_SANDBOX_CAPABILITIES: [&str; 2] = ["CAP_SETPCAP", "CAP_SYS_CHROOT"];
/// The C daemon's options that make its own sandbox fit the confinement (see the module).
const C_DAEMON_CONFINED_OPTIONS: [&str; 4] =
    ["-o", "sandbox=chroot", "-o", "modcaps=-mknod:-setfcap"];

/// The virtiofsd invocation: program, argv after argv[0].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtiofsdPlan {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// What its confinement grants (bounding, permitted, effective): the serving and the
    /// sandbox capabilities.
    pub capabilities: Vec<String>,
    /// The pid file the C daemon writes and leaves behind when it is killed: in
    /// [`C_VIRTIOFSD_PID_DIR`], the socket path with every `/` turned into `.`; that folder
    /// must be writable in its confined root.
    pub pid_file: Option<PathBuf>,
}

/// The daemon that serves `dir` on `socket` (see the module for the two option forms).
/// `options` is `[extra_binaries.virtiofsd] options`; a word with a control character is
/// refused naming the key.
pub fn virtiofsd_plan(
    program: &Path,
    options: &str,
    dir: &Path,
    socket: &Path,
) -> Result<VirtiofsdPlan, CoreError> {
    for path in [dir, socket] {
        let text = path.display().to_string();
        if text.contains(',') || text.chars().any(char::is_control) {
            return Err(CoreError::invalid(
                "virtiofsd path",
                &text,
                "virtiofsd's option parser cannot take a path with ',' or a control character",
            ));
        }
    }
    if options
        .chars()
        .any(|c| c.is_control() && c != ' ' && c != '\t')
    {
        return Err(CoreError::invalid(
            "extra_binaries.virtiofsd.options",
            options,
            "control characters are not allowed",
        ));
    }
    let c_daemon = program == Path::new(C_VIRTIOFSD);
    let mut args = vec![format!("--socket-path={}", socket.display())];
    if c_daemon {
        args.extend(["-o".into(), format!("source={}", dir.display())]);
    } else {
        args.push(format!("--shared-dir={}", dir.display()));
    }
    let default_options = crate::NodeConfig::default()
        .extra_binaries
        .get(VIRTIOFSD)
        .map(|binary| binary.options.clone())
        .unwrap_or_default();
    if c_daemon && options == default_options {
        // urunc's default options are the Rust daemon's; the C daemon's equivalent of its
        // cache mode (its own namespace sandbox stays on).
        args.extend(["-o".into(), "cache=always".into()]);
    } else {
        args.extend(options.split_whitespace().map(String::from));
    }
    if c_daemon {
        args.extend(C_DAEMON_CONFINED_OPTIONS.map(String::from));
    }
    let pid_file = c_daemon.then(|| {
        PathBuf::from(format!(
            "{C_VIRTIOFSD_PID_DIR}/{}.pid",
            socket.display().to_string().replace('/', ".")
        ))
    });
    Ok(VirtiofsdPlan {
        program: program.to_path_buf(),
        args,
        capabilities: VIRTIOFSD_SERVING_CAPABILITIES
            .into_iter()
            .chain(VIRTIOFSD_SANDBOX_CAPABILITIES)
            .map(String::from)
            .collect(),
        pid_file,
    })
}
