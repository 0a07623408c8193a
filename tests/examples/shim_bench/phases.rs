//! Create → VMM exec phase by phase, as the shim itself timed it: its `Create phases` and
//! `VMM started` log lines (`phases_us=name=µs ...`, shim/src/container/phase_timer.rs),
//! read from containerd's log, which copies every shim's log; then VMM exit → TaskExit from
//! its `VMM exited` lines.

use anyhow::{ensure, Context, Result};
use urunc_tests::PrivateContainerd;

/// The shim's line at the end of Create, its line when Start exec'd the VMM, and its line
/// once it published the VMM's exit.
const CREATE_LINE: &str = "Create phases";
const START_LINE: &str = "VMM started";
const EXIT_LINE: &str = "VMM exited";
/// The exit phase that is the tap's deletion (the kernel's RCU barrier).
const TAP_DELETE: &str = "tap_delete";

/// Prints the median of each phase over the containers `ids`, Create's then Start's, and
/// the shim's total share of Create → exec; then the exit path's phases and total.
pub fn print_phases(ctrd: &PrivateContainerd, ids: &[String]) -> Result<()> {
    let log = std::fs::read_to_string(ctrd.log_path())?;
    // A node-wide shim's line can miss containerd's log (it went to a log FIFO containerd
    // had stopped reading): such rounds are left out, and counted.
    let logged: Vec<String> = ids
        .iter()
        .filter(|id| {
            [CREATE_LINE, START_LINE]
                .iter()
                .all(|marker| phases_of(&log, marker, id).is_ok())
        })
        .cloned()
        .collect();
    ensure!(
        !logged.is_empty(),
        "no round's phase lines reached containerd's log"
    );
    let ids = logged.as_slice();
    let mut total = vec![0u64; ids.len()];
    println!(
        "  the shim's Create -> VMM exec by phase (qemu, median of {} rounds, µs):",
        ids.len()
    );
    for (request, marker) in [("Create", CREATE_LINE), ("Start", START_LINE)] {
        let sums = print_request(&log, ids, request, marker)?;
        for (sum, round) in total.iter_mut().zip(sums) {
            *sum += round;
        }
    }
    print_spread("shim's share (Create + Start phases)", total);
    print_cpu(&log, ids)?;
    // Shims built before the exit path was timed log no phases there (a "before" run).
    let exit_timed = log
        .lines()
        .any(|l| l.contains(EXIT_LINE) && l.contains("phases_us="));
    if !exit_timed {
        println!("  (this shim does not time its exit path)");
        return Ok(());
    }
    println!("  the shim's VMM exit -> TaskExit by phase (µs):");
    let exited: Vec<String> = ids
        .iter()
        .filter(|id| phases_of(&log, EXIT_LINE, id).is_ok())
        .cloned()
        .collect();
    ensure!(
        !exited.is_empty(),
        "no round's exit line reached containerd's log"
    );
    let exit = print_request(&log, &exited, "Exit", EXIT_LINE)?;
    // The kernel's part, timed inside the detach: against it, the rest is the shim's own,
    // round by round (a tap's deletion moves by several ms between rounds).
    let tap_deletions: Vec<u64> = exited
        .iter()
        .filter_map(|id| {
            let phases = phases_of(&log, EXIT_LINE, id).ok()?;
            phases
                .iter()
                .find(|(n, _)| n == TAP_DELETE)
                .map(|(_, us)| *us)
        })
        .collect();
    let own: Vec<u64> = exit
        .iter()
        .zip(&tap_deletions)
        .map(|(total, tap)| total - tap)
        .collect();
    let every_round_timed_its_tap = tap_deletions.len() == exited.len();
    print_spread("exit path (Exit phases)", exit);
    if every_round_timed_its_tap {
        print_spread("exit path less its own tap deletion (the shim's part)", own);
    } else {
        println!("    (this shim does not time its tap deletion apart)");
    }
    Ok(())
}

/// Prints the median of each phase of `request` over `ids`; returns each round's sum.
fn print_request(log: &str, ids: &[String], request: &str, marker: &str) -> Result<Vec<u64>> {
    let rounds: Vec<Vec<(String, u64)>> = ids
        .iter()
        .map(|id| phases_of(log, marker, id))
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
        print_row(request, name, &mut values);
    }
    Ok(rounds
        .iter()
        .map(|round| round.iter().map(|(_, us)| us).sum())
        .collect())
}

/// The CPU side of the same rounds, from the `<name>_us=` fields the shim logs before its
/// phases: the shim's user and system time and its threads' wait for a CPU in each request,
/// the VMM child's until its exec, the root helper's (a build without them prints none).
fn print_cpu(log: &str, ids: &[String]) -> Result<()> {
    let mut shim_cpu = vec![0u64; ids.len()];
    let mut shim_runq = vec![0u64; ids.len()];
    let mut any = false;
    println!("  the same rounds' CPU (median µs; wall time = CPU + waiting for a CPU + sleeping):");
    for (request, marker) in [("Create", CREATE_LINE), ("Start", START_LINE)] {
        let rounds: Vec<Vec<(String, u64)>> = ids
            .iter()
            .map(|id| Ok(us_fields(line_of(log, marker, id)?)))
            .collect::<Result<_>>()?;
        let Some(first) = rounds.first() else {
            continue;
        };
        for (name, _) in first {
            let mut values: Vec<u64> = rounds
                .iter()
                .filter_map(|round| round.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
                .collect();
            any = true;
            print_row(request, name, &mut values);
        }
        for (i, round) in rounds.iter().enumerate() {
            let get = |field: &str| round.iter().find(|(n, _)| n == field).map_or(0, |f| f.1);
            shim_cpu[i] += get("cpu_user_us") + get("cpu_sys_us");
            shim_runq[i] += get("runq_us");
        }
    }
    if any {
        print_spread("shim's CPU (Create + Start, user + system)", shim_cpu);
        print_spread(
            "shim's threads waiting for a CPU (Create + Start)",
            shim_runq,
        );
    } else {
        println!("    (this shim logs no CPU figures)");
    }
    Ok(())
}

/// The `<name>_us=<n>` fields of a line before its phases (`create_to_exec_us` is the
/// wall time already printed).
fn us_fields(line: &str) -> Vec<(String, u64)> {
    let head = line.split("phases_us=").next().unwrap_or("");
    head.split_whitespace()
        .filter_map(|token| {
            let (name, value) = token.trim_matches('"').split_once('=')?;
            let name = name.trim_matches('"');
            if !name.ends_with("_us") || name == "create_to_exec_us" {
                return None;
            }
            Some((name.to_string(), value.trim_matches('"').parse().ok()?))
        })
        .collect()
}

/// One figure's median over the rounds, with its spread.
fn print_row(request: &str, name: &str, values: &mut [u64]) {
    let (median, min, max) = spread(values);
    println!("    {request:<6} {name:<20} {median:>7}  (min {min}, max {max})");
}

/// Median, min and max.
fn spread(values: &mut [u64]) -> (u64, u64, u64) {
    values.sort_unstable();
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn print_spread(what: &str, mut sums: Vec<u64>) {
    let (median, min, max) = spread(&mut sums);
    println!("    {what}: median {median} µs, min {min}, max {max}");
}

/// The `marker` line of container `id`.
fn line_of<'a>(log: &'a str, marker: &str, id: &str) -> Result<&'a str> {
    let field = format!("id={id} ");
    log.lines()
        .find(|l| l.contains(marker) && l.contains(&field))
        .with_context(|| {
            let about: Vec<&str> = log.lines().filter(|l| l.contains(id)).take(20).collect();
            format!(
                "no '{marker}' line for {id} in containerd's log; its lines about {id}:\n{}",
                about.join("\n")
            )
        })
}

/// The `phases_us=` fields of the `marker` line of container `id`.
pub fn phases_of(log: &str, marker: &str, id: &str) -> Result<Vec<(String, u64)>> {
    let line = line_of(log, marker, id)?;
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
