//! Starting a node only where one can run: a test that cannot run here
//! prints `SKIPPED: <reason>` and returns instead of passing silently.

use super::node::{CriNode, NodeConfig};
use crate::error::HarnessError;
use crate::host_tools::which;

/// A started [`CriNode`] for `test`, or `None` after printing why the test
/// is skipped: not root, a program of `programs` (or containerd, runc, the
/// CNI plugins, busybox-static) missing. Any other failure to start panics:
/// a broken setup must fail the test, not skip it.
pub fn node_or_skip(test: &str, programs: &[&str]) -> Option<CriNode> {
    node_with_config_or_skip(test, programs, NodeConfig::default())
}

/// Like [`node_or_skip`], the node configured as `setup` says (see
/// [`CriNode::start_with_config`]).
pub fn node_with_config_or_skip(
    test: &str,
    programs: &[&str],
    setup: NodeConfig,
) -> Option<CriNode> {
    if !nix::unistd::Uid::effective().is_root() {
        crate::skipped!("SKIPPED: {test}: needs root (namespaces, mounts, containerd)");
        return None;
    }
    for program in programs {
        if let Err(error) = which(program, "") {
            crate::skipped!("SKIPPED: {test}: {error}");
            return None;
        }
    }
    match CriNode::start_with_config(setup) {
        Ok(node) => Some(node),
        Err(error @ HarnessError::Missing { .. }) => {
            crate::skipped!("SKIPPED: {test}: {error}");
            None
        }
        Err(error) => panic!("{test}: cannot start a CRI node: {error}"),
    }
}
