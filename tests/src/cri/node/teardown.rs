//! Taking a CRI node down: its pods through CRI, then containerd, then what
//! containerd, runc and the CNI plugins keep in folders shared with other
//! nodes (only this node's own entries).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::CriNode;
use crate::command;
use crate::cri::client::CriClient;
use crate::cri::node::CRI_NAMESPACE;
use crate::cri::probes;
use crate::error::{HarnessError, Result};

impl CriNode {
    /// Every step runs even when an earlier one failed.
    pub(super) fn teardown(&mut self) -> Result<()> {
        let mut failures = Vec::new();
        if let Some(client) = self.client.take() {
            failures.extend(remove_all_pods(&client));
        }
        if let Some(containerd) = self.containerd.take() {
            if let Err(error) = containerd.stop() {
                failures.push(format!("stop containerd: {error}"));
            }
        }
        let known_ids =
            std::mem::take(&mut *self.known_ids.lock().unwrap_or_else(|p| p.into_inner()));
        failures.extend(remove_shared_state(&known_ids));
        let netns_paths =
            std::mem::take(&mut *self.netns_paths.lock().unwrap_or_else(|p| p.into_inner()));
        failures.extend(remove_pinned_namespaces(&netns_paths));
        if let Some(network) = self.network.take() {
            if let Err(error) = network.remove() {
                failures.push(format!("remove CNI network: {error}"));
            }
        }
        if let Some(scratch) = self.scratch.take() {
            let path = scratch.path().to_path_buf();
            if let Err(error) = scratch.close() {
                failures.push(format!("remove {}: {error}", path.display()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Cleanup(failures))
        }
    }
}

/// Stops and removes every pod CRI lists (which removes their containers),
/// as the kubelet does when a node is drained; returns what failed.
fn remove_all_pods(client: &CriClient) -> Vec<String> {
    let pods = match client.list_pod_sandboxes() {
        Ok(pods) => pods,
        Err(error) => return vec![format!("list pods: {error}")],
    };
    let mut failures = Vec::new();
    for pod in pods {
        if let Err(error) = client.stop_pod_sandbox(&pod.id) {
            failures.push(format!("stop pod {}: {error}", pod.id));
        }
        if let Err(error) = client.remove_pod_sandbox(&pod.id) {
            failures.push(format!("remove pod {}: {error}", pod.id));
        }
    }
    failures
}

/// runc's and the shim's state of this node's pods and containers that is
/// still there (a leak, reported) is removed: those folders are shared by
/// every containerd using CRI's namespace.
fn remove_shared_state(ids: &BTreeSet<String>) -> Vec<String> {
    let mut failures = Vec::new();
    for id in ids {
        for root in [probes::RUNC_STATE_ROOT, probes::SHIM_STATE_ROOT] {
            let leftover = Path::new(root).join(CRI_NAMESPACE).join(id);
            if leftover.exists() {
                failures.push(format!("state left: {}", leftover.display()));
                if let Err(error) = std::fs::remove_dir_all(&leftover) {
                    failures.push(format!("remove {}: {error}", leftover.display()));
                }
            }
        }
    }
    failures
}

/// Pod namespaces CRI did not unpin (a leak, reported) are deleted.
fn remove_pinned_namespaces(paths: &BTreeSet<PathBuf>) -> Vec<String> {
    let mut failures = Vec::new();
    for netns in paths.iter().filter(|path| path.exists()) {
        failures.push(format!("pod netns left: {}", netns.display()));
        let name = netns
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(error) = command::checked(Command::new("ip").args(["netns", "del", &name])) {
            failures.push(format!("delete netns {name}: {error}"));
        }
    }
    failures
}
