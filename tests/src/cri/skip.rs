//! Starting a node only where one can run: a test that cannot run here
//! prints `SKIPPED: <reason>` and returns instead of passing silently.

use super::node::{CriNode, NodeOptions};
use crate::error::HarnessError;
use crate::host_tools::which;

/// A started [`CriNode`] for `test`, or `None` after printing why the test
/// is skipped: not root, a program of `programs` (or containerd, runc, the
/// CNI plugins, busybox-static) missing. Any other failure to start panics:
/// a broken setup must fail the test, not skip it.
pub fn node_or_skip(test: &str, programs: &[&str]) -> Option<CriNode> {
    node_with_runtime_table_or_skip(test, programs, None)
}

/// Like [`node_or_skip`], the urunc runtime handler's table given as an
/// operator writes it (see [`CriNode::start_with_runtime_table`]).
pub fn node_with_runtime_table_or_skip(
    test: &str,
    programs: &[&str],
    runtime_table: Option<&str>,
) -> Option<CriNode> {
    node_with_options_or_skip(
        test,
        programs,
        &NodeOptions {
            runtime_table,
            ..NodeOptions::default()
        },
    )
}

/// Like [`node_or_skip`], the node set up as `options` say.
pub fn node_with_options_or_skip(
    test: &str,
    programs: &[&str],
    options: &NodeOptions,
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
    match CriNode::start_with(options) {
        Ok(node) => Some(node),
        Err(error @ HarnessError::Missing { .. }) => {
            crate::skipped!("SKIPPED: {test}: {error}");
            None
        }
        Err(error) => panic!("{test}: cannot start a CRI node: {error}"),
    }
}
