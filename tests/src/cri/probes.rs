//! What a pod can leave behind, read from the host: shim daemons, VMMs,
//! urunc taps and tc state in a pod's namespace, state folders.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};
use crate::host_processes::{other_processes, processes_referring_to};
use crate::sandbox::NetSnapshot;

/// The shim binary's name as it appears in a process's command line.
const SHIM_PROGRAM: &str = "containerd-shim-urunc-v2";
/// Where the shim keeps per-container state, per containerd namespace.
pub const SHIM_STATE_ROOT: &str = "/run/urunc-rs";
/// Where runc keeps container state, per containerd namespace.
pub const RUNC_STATE_ROOT: &str = "/run/containerd/runc";

/// A serving shim daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimProcess {
    pub pid: i32,
    /// Its `-id`: the first container of its group (a pod's sandbox id).
    pub id: String,
    pub cmdline: String,
}

/// The serving shims (started with `-socket`) of the containerd whose gRPC
/// socket is `containerd_socket`.
pub fn shims_of(containerd_socket: &Path) -> Vec<ShimProcess> {
    let address = containerd_socket.display().to_string();
    let mut shims = Vec::new();
    for (pid, proc_dir) in other_processes() {
        // A process can exit between listing and reading: unreadable means gone.
        let Ok(raw) = std::fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|byte| *byte == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        let flag = |name: &str| {
            args.iter()
                .position(|arg| arg == name)
                .and_then(|at| args.get(at + 1))
                .cloned()
        };
        let is_our_daemon = args
            .first()
            .is_some_and(|program| program.ends_with(SHIM_PROGRAM))
            && flag("-socket").is_some()
            && flag("-address").as_deref() == Some(address.as_str());
        if is_our_daemon {
            shims.push(ShimProcess {
                pid,
                id: flag("-id").unwrap_or_default(),
                cmdline: args.join(" "),
            });
        }
    }
    shims.sort_by_key(|shim| shim.pid);
    shims
}

/// qemu processes started for the containerd living in `containerd_dir`
/// (their command lines name files in its bundles).
pub fn vmms_of(containerd_dir: &Path) -> Vec<(i32, String)> {
    processes_referring_to(containerd_dir)
        .into_iter()
        .filter(|(_, cmdline)| cmdline.starts_with("qemu-system"))
        .collect()
}

/// What urunc left in network namespace `netns_name` (an `ip netns` name):
/// urunc taps, tc filters, ingress/clsact qdiscs. Empty means clean.
pub fn urunc_network_leftovers(netns_name: &str) -> Result<Vec<String>> {
    let snapshot = NetSnapshot::take(Some(netns_name)).map_err(|error| HarnessError::Invalid {
        field: "pod network namespace",
        value: netns_name.to_string(),
        reason: format!("cannot read links and tc state: {error:#}"),
    })?;
    let mut leftovers: Vec<String> = snapshot
        .urunc_taps()
        .into_iter()
        .map(|tap| format!("tap {tap}"))
        .collect();
    leftovers.extend(
        snapshot
            .filters
            .iter()
            .map(|filter| format!("filter {filter}")),
    );
    leftovers.extend(
        snapshot
            .ingress_qdiscs()
            .into_iter()
            .map(|qdisc| format!("qdisc {qdisc}")),
    );
    Ok(leftovers)
}

/// The state folders of container or sandbox `id` (containerd's bundle,
/// the shim's state, runc's state) that exist, for the containerd whose
/// state folder is `containerd_state` and namespace `namespace`.
pub fn state_leftovers(containerd_state: &Path, namespace: &str, id: &str) -> Vec<PathBuf> {
    let candidates = [
        containerd_state
            .join("io.containerd.runtime.v2.task")
            .join(namespace)
            .join(id),
        Path::new(SHIM_STATE_ROOT).join(namespace).join(id),
        Path::new(RUNC_STATE_ROOT).join(namespace).join(id),
    ];
    candidates
        .into_iter()
        .filter(|path| path.exists())
        .collect()
}

/// Threads (as `pid/tid`) of any process that are in the network namespace
/// with inode `inode`: while one exists the kernel cannot free it.
pub fn threads_in_netns(inode: u64) -> Vec<String> {
    let wanted = format!("net:[{inode}]");
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for process in processes.flatten() {
        let pid = process.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        // A process or thread can exit between listing and reading: skip it.
        let Ok(threads) = std::fs::read_dir(process.path().join("task")) else {
            continue;
        };
        for thread in threads.flatten() {
            let link = std::fs::read_link(thread.path().join("ns/net"));
            if link.is_ok_and(|target| target.as_os_str() == wanted.as_str()) {
                found.push(format!("{pid}/{}", thread.file_name().to_string_lossy()));
            }
        }
    }
    found
}
