//! Create → VMM exec phase by phase, as the shim itself timed it: its `Create phases` and
//! `VMM started` log lines (`phases_us=name=µs ...`, shim/src/container/phase_timer.rs),
//! read from containerd's log, which copies every shim's log.

use anyhow::{ensure, Context, Result};
use urunc_tests::PrivateContainerd;

/// The shim's line at the end of Create and its line when Start exec'd the VMM.
const CREATE_LINE: &str = "Create phases";
const START_LINE: &str = "VMM started";

/// Prints the median of each phase over the containers `ids`, Create's then Start's, and
/// the shim's total share of Create → exec.
pub fn print_phases(ctrd: &PrivateContainerd, ids: &[String]) -> Result<()> {
    let log = std::fs::read_to_string(ctrd.log_path())?;
    let mut total = vec![0u64; ids.len()];
    println!(
        "  the shim's Create -> VMM exec by phase (qemu, median of {} rounds, µs):",
        ids.len()
    );
    for (request, marker) in [("Create", CREATE_LINE), ("Start", START_LINE)] {
        let rounds: Vec<Vec<(String, u64)>> = ids
            .iter()
            .map(|id| phases_of(&log, marker, id))
            .collect::<Result<_>>()?;
        let names: Vec<String> = rounds[0].iter().map(|(name, _)| name.clone()).collect();
        for name in &names {
            let mut values: Vec<u64> = rounds
                .iter()
                .map(|round| {
                    round
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, us)| *us)
                        .with_context(|| format!("{request} phase {name} missing in a round"))
                })
                .collect::<Result<_>>()?;
            values.sort_unstable();
            println!(
                "    {request:<6} {name:<16} {:>7}  (min {}, max {})",
                values[values.len() / 2],
                values[0],
                values[values.len() - 1]
            );
        }
        for (sum, round) in total.iter_mut().zip(&rounds) {
            *sum += round.iter().map(|(_, us)| us).sum::<u64>();
        }
    }
    total.sort_unstable();
    println!(
        "    shim's share (Create + Start phases): median {} µs, min {}, max {}",
        total[total.len() / 2],
        total[0],
        total[total.len() - 1]
    );
    Ok(())
}

/// The `phases_us=` fields of the `marker` line of container `id`.
fn phases_of(log: &str, marker: &str, id: &str) -> Result<Vec<(String, u64)>> {
    let field = format!("id={id} ");
    let line = log
        .lines()
        .find(|l| l.contains(marker) && l.contains(&field))
        .with_context(|| {
            let about: Vec<&str> = log.lines().filter(|l| l.contains(id)).take(20).collect();
            format!(
                "no '{marker}' line for {id} in containerd's log; its lines about {id}:\n{}",
                about.join("\n")
            )
        })?;
    let fields = line
        .split_once("phases_us=")
        .with_context(|| format!("no phases_us in {line}"))?
        .1;
    let phases: Vec<(String, u64)> = fields
        .split_whitespace()
        .map_while(|f| {
            let (name, us) = f.split_once('=')?;
            Some((name.to_string(), us.trim_matches('"').parse().ok()?))
        })
        .collect();
    ensure!(!phases.is_empty(), "no phases in {line}");
    Ok(phases)
}
