//! What the critest test programs share: selecting groups, printing to
//! CI's log, keeping the logs of a failed run.

use std::io::Write as _;
use std::path::PathBuf;

use super::run::{critest_binary, CritestOutcome};
use crate::cri::{node_with_config_or_skip, CriNode, NodeConfig};
use crate::error::Result;

/// Prints `text` on stderr, which libtest does not capture: CI's log must
/// show the tables.
pub fn print_to_log(text: &str) {
    // Best effort: a test log that cannot be written has nowhere to report to.
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// The program `found` (a peer's binary), or `None` after printing why
/// `test` is skipped.
pub fn program_or_skip(test: &str, found: Result<PathBuf>) -> Option<PathBuf> {
    match found {
        Ok(program) => Some(program),
        Err(error) => {
            crate::skipped!("SKIPPED: {test}: {error}");
            None
        }
    }
}

/// critest and a started CRI node for `test`, its pods' host ports served
/// (critest's port mapping specs), or `None` after printing why the test
/// is skipped (see [`node_with_config_or_skip`]; `programs` are checked too).
pub fn critest_node_or_skip(test: &str, programs: &[&str]) -> Option<(PathBuf, CriNode)> {
    let critest = program_or_skip(test, critest_binary())?;
    let setup = NodeConfig {
        port_mapping: true,
        ..NodeConfig::default()
    };
    let node = node_with_config_or_skip(test, programs, setup)?;
    Some((critest, node))
}

/// A ginkgo regex matching every spec of the critest groups `groups`
/// (their `Describe` texts, such as `Container` or `Image Manager`).
pub fn group_regex(groups: &[&str]) -> String {
    let escaped: Vec<String> = groups.iter().map(|group| regex_escape(group)).collect();
    format!(r"\[k8s\.io\] ({})( |$)", escaped.join("|"))
}

fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Copies critest's reports and logs and containerd's log (which holds the
/// shims' logs) out of the node's scratch folder, which goes with the
/// node; returns the folder they are kept in.
pub fn keep_logs(node: &CriNode, outcomes: &[(&str, CritestOutcome)]) -> PathBuf {
    let kept = std::env::temp_dir().join(format!("urunc-critest-{}", std::process::id()));
    if let Err(error) = std::fs::create_dir_all(&kept) {
        print_to_log(&format!("create {}: {error}", kept.display()));
    }
    let mut files = vec![node.containerd().log_path().to_path_buf()];
    for (_, outcome) in outcomes {
        files.push(outcome.log.clone());
        files.push(outcome.log.with_extension("json"));
    }
    for file in files {
        if let Some(name) = file.file_name() {
            if let Err(error) = std::fs::copy(&file, kept.join(name)) {
                print_to_log(&format!("keep {}: {error}", file.display()));
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_regex_escapes_brackets_and_ends_at_the_group_name() {
        assert_eq!(
            group_regex(&["Image Volume [Feature:ImageVolume]", "Container"]),
            r"\[k8s\.io\] (Image Volume \[Feature:ImageVolume\]|Container)( |$)"
        );
    }
}
