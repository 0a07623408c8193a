//! critest's results, read from the Ginkgo JSON report it writes
//! (`-ginkgo.json-report`), tallied per group (the top `Describe`, such as
//! `[k8s.io] Container`) and rendered as a table per runtime handler.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::error::{HarnessError, Result};

/// What became of one spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// One spec (an `It`) as critest ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecResult {
    /// The group: the outermost container's text without `[k8s.io] `.
    pub group: String,
    /// The full spec name (containers and leaf, space separated).
    pub name: String,
    pub outcome: Outcome,
    /// The failure (or skip) message's first lines, joined; empty when it passed.
    pub message: String,
    /// The whole failure (or skip) message; empty when it passed.
    pub detail: String,
}

/// How many lines of a failure message a [`SpecResult`] keeps (Gomega's
/// messages say "Expected", the value, then what was expected, on three).
const MESSAGE_LINES: usize = 3;

/// Passed, failed and skipped specs of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Reads the specs of a Ginkgo v2 JSON report (a list of suite reports).
/// Setup nodes (BeforeSuite and the like) are not specs; a failed one
/// counts as a failed spec named after it, so a broken setup shows.
pub fn read_report(path: &Path) -> Result<Vec<SpecResult>> {
    let text = std::fs::read_to_string(path).map_err(HarnessError::io("read", path))?;
    parse_report(&text).map_err(|reason| HarnessError::Invalid {
        field: "critest JSON report",
        value: path.display().to_string(),
        reason,
    })
}

fn parse_report(text: &str) -> std::result::Result<Vec<SpecResult>, String> {
    let suites: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
    let suites = suites.as_array().ok_or("is not a list of suite reports")?;
    let mut specs = Vec::new();
    for suite in suites {
        let reports = suite["SpecReports"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        for report in reports {
            let state = report["State"].as_str().unwrap_or("");
            let kind = report["LeafNodeType"].as_str().unwrap_or("");
            let outcome = match state {
                "passed" => Outcome::Passed,
                "skipped" | "pending" => Outcome::Skipped,
                _ => Outcome::Failed,
            };
            if kind != "It" && outcome != Outcome::Failed {
                continue;
            }
            let containers: Vec<&str> = report["ContainerHierarchyTexts"]
                .as_array()
                .map_or(Vec::new(), |texts| {
                    texts.iter().filter_map(Value::as_str).collect()
                });
            let leaf = report["LeafNodeText"].as_str().unwrap_or("");
            let group = containers
                .first()
                .map_or_else(|| kind.to_string(), |text| text.to_string());
            let group = group.trim_start_matches("[k8s.io] ").to_string();
            let mut name = containers.join(" ");
            if !leaf.is_empty() {
                name = format!("{name} {leaf}").trim().to_string();
            }
            if name.is_empty() {
                name = kind.to_string();
            }
            let detail = report["Failure"]["Message"].as_str().unwrap_or("");
            let message = detail
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .take(MESSAGE_LINES)
                .collect::<Vec<_>>()
                .join(" ");
            specs.push(SpecResult {
                group,
                name,
                outcome,
                message: if outcome == Outcome::Passed {
                    String::new()
                } else {
                    message
                },
                detail: if outcome == Outcome::Passed {
                    String::new()
                } else {
                    detail.to_string()
                },
            });
        }
    }
    Ok(specs)
}

/// The tally of every group.
pub fn tally(specs: &[SpecResult]) -> BTreeMap<String, Tally> {
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for spec in specs {
        let entry = groups.entry(spec.group.clone()).or_default();
        match spec.outcome {
            Outcome::Passed => entry.passed += 1,
            Outcome::Failed => entry.failed += 1,
            Outcome::Skipped => entry.skipped += 1,
        }
    }
    groups
}

/// One table: a row per group (of any handler), passed/failed/skipped per
/// handler, then a total row. `skipped_groups` are groups left out of the
/// run on purpose, with the reason: listed below the table, not in it.
pub fn render_table(runs: &[(&str, &[SpecResult])], skipped_groups: &[(&str, &str)]) -> String {
    let tallies: Vec<BTreeMap<String, Tally>> =
        runs.iter().map(|(_, specs)| tally(specs)).collect();
    let mut groups: Vec<&String> = tallies
        .iter()
        .flat_map(BTreeMap::keys)
        .filter(|group| !skipped_groups.iter().any(|(skipped, _)| skipped == group))
        .collect();
    groups.sort();
    groups.dedup();
    let width = groups
        .iter()
        .map(|group| group.len())
        .chain(["group".len(), "total".len()])
        .max()
        .unwrap_or(5);
    let mut out = String::new();
    let _ = write!(out, "| {:width$} |", "group");
    for (handler, _) in runs {
        let _ = write!(out, " {handler} passed | failed | skipped |");
    }
    out.push('\n');
    let _ = write!(out, "|{}|", "-".repeat(width + 2));
    for (handler, _) in runs {
        let _ = write!(out, "{}|--------|---------|", "-".repeat(handler.len() + 9));
    }
    out.push('\n');
    let mut totals = vec![Tally::default(); runs.len()];
    for group in groups {
        let _ = write!(out, "| {group:width$} |");
        for (index, (handler, _)) in runs.iter().enumerate() {
            let count = tallies[index].get(group).copied().unwrap_or_default();
            totals[index].passed += count.passed;
            totals[index].failed += count.failed;
            totals[index].skipped += count.skipped;
            write_counts(&mut out, handler.len(), count);
        }
        out.push('\n');
    }
    let _ = write!(out, "| {:width$} |", "total");
    for (index, (handler, _)) in runs.iter().enumerate() {
        write_counts(&mut out, handler.len(), totals[index]);
    }
    out.push('\n');
    for (group, reason) in skipped_groups {
        let _ = writeln!(out, "not run: {group}: {reason}");
    }
    out
}

fn write_counts(out: &mut String, handler_width: usize, count: Tally) {
    let passed_width = handler_width + 7;
    let _ = write!(
        out,
        " {:>passed_width$} | {:>6} | {:>7} |",
        count.passed, count.failed, count.skipped
    );
}

/// Specs that passed under `baseline` and did not pass under `candidate`.
pub fn regressions<'a>(
    baseline: &[SpecResult],
    candidate: &'a [SpecResult],
) -> Vec<&'a SpecResult> {
    candidate
        .iter()
        .filter(|spec| spec.outcome != Outcome::Passed)
        .filter(|spec| {
            baseline
                .iter()
                .any(|base| base.name == spec.name && base.outcome == Outcome::Passed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"[{"SuiteDescription":"CRI validation","SpecReports":[
      {"ContainerHierarchyTexts":null,"LeafNodeType":"BeforeSuite","LeafNodeText":"","State":"passed"},
      {"ContainerHierarchyTexts":["[k8s.io] Container","runtime should support basic operations"],
       "LeafNodeType":"It","LeafNodeText":"runtime should support creating container","State":"passed"},
      {"ContainerHierarchyTexts":["[k8s.io] Container"],"LeafNodeType":"It",
       "LeafNodeText":"runtime should support exec","State":"failed",
       "Failure":{"Message":"\nExpected\n  <int>: 1\nto equal 0"}},
      {"ContainerHierarchyTexts":["[k8s.io] Networking"],"LeafNodeType":"It",
       "LeafNodeText":"runtime should support DNS config","State":"skipped"}
    ]}]"#;

    #[test]
    fn tallies_specs_per_group_and_ignores_passed_setup_nodes() {
        let specs = parse_report(REPORT).expect("parse");
        assert_eq!(specs.len(), 3, "{specs:?}");
        assert_eq!(specs[1].message, "Expected <int>: 1 to equal 0");
        let groups = tally(&specs);
        assert_eq!(
            groups["Container"],
            Tally {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
        assert_eq!(groups["Networking"].skipped, 1);
    }

    #[test]
    fn a_failed_setup_node_is_a_failed_spec() {
        let specs = parse_report(
            r#"[{"SpecReports":[{"LeafNodeType":"BeforeSuite","State":"failed",
                "Failure":{"Message":"cannot connect"}}]}]"#,
        )
        .expect("parse");
        assert_eq!(specs[0].group, "BeforeSuite");
        assert_eq!(specs[0].outcome, Outcome::Failed);
    }

    #[test]
    fn regressions_are_specs_only_the_baseline_passed() {
        let runc = parse_report(REPORT).expect("parse");
        let mut urunc = runc.clone();
        urunc[0].outcome = Outcome::Failed;
        let found = regressions(&runc, &urunc);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, runc[0].name);
        let table = render_table(
            &[("runc", &runc), ("urunc", &urunc)],
            &[("Image Manager", "pulls")],
        );
        assert!(table.contains("| Container "), "{table}");
        let without = render_table(&[("runc", &runc)], &[("Networking", "pulls")]);
        assert!(!without.contains("| Networking"), "{without}");
        assert!(table.contains("not run: Image Manager: pulls"), "{table}");
    }
}
