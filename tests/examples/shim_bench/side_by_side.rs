//! The two figures the density issue compares against a reference measured in the same run:
//! `ctr run -d` of a unikernel next to `ctr run -d` of a busybox on containerd's Go runc shim,
//! alternating round by round so both see the same machine load; and the floor of the exit
//! path, deleting a tap (one RCU barrier in the kernel), which VMM death → TaskExit can
//! approach but not beat: the shim deletes the container's tap before it publishes TaskExit.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use urunc_tests::sandbox::{unique_name, SandboxNetns};
use urunc_tests::PrivateContainerd;

use crate::ctr_breakdown::{print_breakdown, RunWindow};
use crate::{
    print_latency, remove, run_busybox_detached, run_unikernel_detached, EventStream, ROUNDS,
};

/// Taps per `ip -batch` of the floor: one `ip` process amortised over them.
const FLOOR_TAPS: usize = 20;

/// Prints the medians of `ctr run -d` for each kind and their ratio.
pub fn print_ctr_run(ctrd: &PrivateContainerd, with_ns: &str) -> Result<()> {
    let events = EventStream::start(ctrd)?;
    let (mut unikernel, mut busybox) = (Vec::new(), Vec::new());
    let (mut unikernel_runs, mut busybox_runs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (u, r) = (format!("side-u{round}"), format!("side-r{round}"));
        let (started, wall) = (Instant::now(), SystemTime::now());
        run_unikernel_detached(ctrd, with_ns, &u)?;
        unikernel.push(started.elapsed());
        unikernel_runs.push(RunWindow {
            id: u.clone(),
            started: wall,
            ended: SystemTime::now(),
        });
        let (started, wall) = (Instant::now(), SystemTime::now());
        run_busybox_detached(ctrd, &r)?;
        busybox.push(started.elapsed());
        busybox_runs.push(RunWindow {
            id: r.clone(),
            started: wall,
            ended: SystemTime::now(),
        });
        remove(ctrd, &u)?;
        remove(ctrd, &r)?;
    }
    println!("`ctr run -d`, alternating in one run:");
    let median_u = median(&mut unikernel);
    let median_r = median(&mut busybox);
    print_latency("  unikernel (urunc-rs shim)", &mut unikernel);
    print_latency("  busybox (Go runc shim)", &mut busybox);
    println!(
        "  ratio unikernel / busybox: {:.2}",
        median_u.as_secs_f64() / median_r.as_secs_f64()
    );
    let lines = events.received();
    let log = std::fs::read_to_string(ctrd.log_path())?;
    print_breakdown(
        "unikernel (urunc-rs shim)",
        &lines,
        &unikernel_runs,
        Some(&log),
    )?;
    print_breakdown("busybox (Go runc shim)", &lines, &busybox_runs, None)
}

/// Prints the time one tap's deletion takes in a fresh sandbox netns (median of batches).
pub fn print_tap_floor() -> Result<()> {
    let sandbox = SandboxNetns::create_bare()?;
    let mut per_tap = Vec::new();
    for _ in 0..3 {
        let names: Vec<String> = (0..FLOOR_TAPS).map(|_| unique_name("flr")).collect();
        let add: String = names
            .iter()
            .map(|n| format!("tuntap add dev {n} mode tap\n"))
            .collect();
        sandbox.exec("sh", &["-c", &format!("printf '{add}' | ip -batch -")])?;
        let del: String = names
            .iter()
            .map(|n| format!("link del dev {n}\n"))
            .collect();
        let started = Instant::now();
        sandbox.exec("sh", &["-c", &format!("printf '{del}' | ip -batch -")])?;
        per_tap.push(started.elapsed() / FLOOR_TAPS as u32);
    }
    print_latency(
        &format!("tap deletion floor (per tap, batches of {FLOOR_TAPS})"),
        &mut per_tap,
    );
    Ok(())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
