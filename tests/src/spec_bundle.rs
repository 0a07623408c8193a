//! A unikernel container described by a whole OCI spec, for `ctr run --config`: what a test
//! cannot ask through `ctr run`'s flags (hooks, a user with groups and capabilities, seccomp)
//! is written in the spec itself. With `--config`, containerd mounts no snapshot: the spec's
//! `root.path` is a folder the test fills with the guest's files.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{HarnessError, Result};
use crate::guests::LinuxGuest;

/// Where the guest's files sit inside the rootfs, as the urunc annotations name them.
pub const KERNEL_IN_ROOTFS: &str = "/unikernel/kernel";
pub const INITRD_IN_ROOTFS: &str = "/unikernel/initrd";

/// Writes `<dir>/rootfs` with `guest`'s kernel and initrd (world-readable, as an image's
/// files are, so a VMM running as an unprivileged user reads them) and returns its path.
pub fn linux_rootfs(dir: &Path, guest: &LinuxGuest) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let rootfs = dir.join("rootfs");
    let unikernel = rootfs.join("unikernel");
    std::fs::create_dir_all(&unikernel).map_err(HarnessError::io("create", &unikernel))?;
    for (source, inside) in [
        (&guest.kernel, KERNEL_IN_ROOTFS),
        (&guest.initrd, INITRD_IN_ROOTFS),
    ] {
        let target = rootfs.join(inside.trim_start_matches('/'));
        std::fs::copy(source, &target).map_err(HarnessError::io("copy", source))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
            .map_err(HarnessError::io("chmod", &target))?;
    }
    // Every folder on the way must be traversable by the VMM's user.
    for folder in rootfs.ancestors().take_while(|f| f.starts_with(dir)) {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755))
            .map_err(HarnessError::io("chmod", folder))?;
    }
    Ok(rootfs)
}

/// A spec running the Linux guest in `rootfs` under qemu, in the network namespace at
/// `netns`, as root with no capabilities and no hooks; tests change fields with
/// [`set`].
pub fn linux_guest_spec(rootfs: &Path, netns: &Path) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": [],
            "env": [],
            "cwd": "/"
        },
        "root": {"path": rootfs.display().to_string()},
        "hostname": "unikernel",
        "annotations": {
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": KERNEL_IN_ROOTFS,
            "com.urunc.unikernel.initrd": INITRD_IN_ROOTFS
        },
        "linux": {
            "namespaces": [
                {"type": "network", "path": netns.display().to_string()},
                {"type": "mount"},
                {"type": "ipc"},
                {"type": "uts"}
            ]
        }
    })
}

/// Sets the field at JSON `pointer` (e.g. `/process/user`), creating the objects on the way.
pub fn set(spec: &mut Value, pointer: &str, value: Value) {
    let mut current = spec;
    let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let (last, parents) = keys.split_last().expect("a non-empty pointer");
    for key in parents {
        current = current
            .as_object_mut()
            .expect("an object on the way")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    current
        .as_object_mut()
        .expect("an object to set the field in")
        .insert(last.to_string(), value);
}

/// Writes `spec` to `<dir>/config.json` and returns the path for `ctr run --config`.
pub fn write_spec(dir: &Path, spec: &Value) -> Result<PathBuf> {
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(spec).expect("a JSON value serialises");
    std::fs::write(&path, text).map_err(HarnessError::io("write", &path))?;
    Ok(path)
}

/// A hook (runtime-spec `hooks.<kind>[]` entry) that appends one line to `log`: the kind, the
/// state it read on stdin and its network namespace, `kind|<state json>|net:[inode]`; it then
/// exits with `exit_code`.
pub fn recording_hook(kind: &str, log: &Path, exit_code: i32) -> Value {
    let script = format!(
        "state=$(cat); echo \"{kind}|$state|$(readlink /proc/self/ns/net)\" >> {log}; exit {exit_code}",
        log = log.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

/// The lines a [`recording_hook`] wrote: (kind, state, netns link).
pub fn recorded_hooks(log: &Path) -> Vec<(String, Value, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(2, '|');
            let kind = parts.next().unwrap_or_default().to_string();
            let rest = parts.next().unwrap_or_default();
            let (state, netns) = rest.rsplit_once('|').unwrap_or((rest, ""));
            let state = serde_json::from_str(state)
                .unwrap_or_else(|e| panic!("hook {kind} read no JSON state ({e}): {state:?}"));
            (kind, state, netns.to_string())
        })
        .collect()
}
