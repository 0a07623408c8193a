//! critest, the Kubernetes community's CRI conformance suite, against
//! containerd's CRI plugin: once with runtime handler `runc` (containerd's
//! Go shim, the baseline) and once with `urunc` (pods served by our shim,
//! the pause and busybox/nginx containers through its runc delegation), in
//! one run on one node. Prints passed / failed / skipped per critest group
//! per handler, and fails when a spec passes under runc but not under urunc
//! (unless it is listed in [`KNOWN_DIFFERENCES`] with its reason).
//!
//!     sudo cargo test -p urunc-tests --test critest_conformance -- --nocapture
//!
//! `URUNC_CRITEST_FOCUS` narrows the run to a ginkgo focus regex.

use std::time::Duration;

use urunc_tests::cri::RUNTIME_HANDLER;
use urunc_tests::critest::{
    conformance_images, critest_node_or_skip, group_regex, keep_logs, print_to_log, regressions,
    render_table, run_critest, CritestRun, Outcome,
};

/// The baseline handler: containerd's own runc shim.
const BASELINE_HANDLER: &str = "runc";
/// Groups left out, for a reason that holds for both handlers: they test
/// CRI's image service, and every spec pulls (or removes and pulls again)
/// images from the registries critest names, which these machines cannot reach.
const SKIPPED_GROUPS: &[(&str, &str)] = &[
    (
        "Image Manager",
        "always pulls from a registry; none is reachable",
    ),
    (
        "Image Consistency",
        "removes and pulls again from a registry; none is reachable",
    ),
    (
        "Image Identifier Consistency",
        "pulls from a registry; none is reachable",
    ),
    (
        "Image Volume [Feature:ImageVolume]",
        "pulls from a registry; none is reachable",
    ),
];
/// Specs that pass under runc and not under urunc (a name, or the start of
/// the names of several), with the reason.
/// None remain: containerd 2.x's "listing pod sandbox metrics" needed the OOM counters in the
/// shim's task metrics, and its recursive read-only mount specs the delegate runc's mount
/// options in `-info`.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];
/// One critest run may take this long.
const RUN_LIMIT: Duration = Duration::from_secs(20 * 60);

#[test]
fn urunc_passes_every_critest_spec_runc_passes() {
    let test = "urunc_passes_every_critest_spec_runc_passes";
    let Some((critest, node)) = critest_node_or_skip(test, &["ip", "iptables", "ipcmk"]) else {
        return;
    };
    let scratch = node.scratch_dir();
    for (name, archive) in conformance_images(&scratch).expect("pack critest's images") {
        node.import_image(&archive, &name)
            .unwrap_or_else(|e| panic!("import {name}: {e}"));
    }
    let version = node.client().version().expect("CRI Version");
    let focus = std::env::var("URUNC_CRITEST_FOCUS").unwrap_or_default();
    let skipped: Vec<&str> = SKIPPED_GROUPS.iter().map(|(group, _)| *group).collect();
    let skip = group_regex(&skipped);
    let mut outcomes = Vec::new();
    for handler in [BASELINE_HANDLER, RUNTIME_HANDLER] {
        let out_dir = scratch.join(format!("critest-{handler}"));
        std::fs::create_dir_all(&out_dir).expect("critest output folder");
        let outcome = run_critest(
            &critest,
            &CritestRun {
                socket: node.containerd().address(),
                handler,
                focus: &focus,
                skip: &skip,
                images_file: None,
                out_dir: &out_dir,
                limit: RUN_LIMIT,
            },
        )
        .unwrap_or_else(|e| panic!("critest -runtime-handler {handler}: {e}"));
        print_to_log(&format!(
            "critest -runtime-handler {handler}: {} specs in {:.0} s",
            outcome.specs.len(),
            outcome.took.as_secs_f64()
        ));
        outcomes.push((handler, outcome));
    }
    let runs: Vec<(&str, &[_])> = outcomes
        .iter()
        .map(|(handler, outcome)| (*handler, outcome.specs.as_slice()))
        .collect();
    print_to_log(&format!(
        "critest on {} {} (CRI {})\n{}",
        version.runtime_name,
        version.runtime_version,
        version.runtime_api_version,
        render_table(&runs, SKIPPED_GROUPS)
    ));
    for (handler, outcome) in &outcomes {
        for spec in outcome
            .specs
            .iter()
            .filter(|spec| spec.outcome == Outcome::Failed)
        {
            print_to_log(&format!(
                "{handler} FAILED: {}: {}",
                spec.name, spec.message
            ));
        }
    }
    let baseline = &outcomes[0].1;
    let ours = &outcomes[1].1;
    let unexplained: Vec<String> = regressions(&baseline.specs, &ours.specs)
        .into_iter()
        .filter(|spec| {
            !KNOWN_DIFFERENCES
                .iter()
                .any(|(name, _)| spec.name.starts_with(name))
        })
        .map(|spec| format!("{}: {}", spec.name, spec.message))
        .collect();
    for (name, reason) in KNOWN_DIFFERENCES {
        print_to_log(&format!("known difference: {name}: {reason}"));
    }
    if !unexplained.is_empty() {
        let kept = keep_logs(&node, &outcomes);
        panic!(
            "specs passing under runc but not under urunc (logs kept in {}):\n{}",
            kept.display(),
            unexplained.join("\n")
        );
    }
    node.stop().expect("node teardown");
}
