//! critest, the Kubernetes community's CRI conformance suite (cri-tools),
//! against a [`CriNode`](crate::cri::CriNode): the images it expects built
//! offline, a run per runtime handler, and its results per group.

pub mod images;
pub mod report;
pub mod run;
pub mod suite;

pub use images::conformance_images;
pub use report::{read_report, regressions, render_table, tally, Outcome, SpecResult, Tally};
pub use run::{crictl_binary, critest_binary, run_critest, CritestOutcome, CritestRun};
pub use suite::{critest_node_or_skip, group_regex, keep_logs, print_to_log, program_or_skip};
