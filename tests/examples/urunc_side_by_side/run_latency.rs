//! `ctr run -d` latency and the shim's resident memory, both runtimes alternating round by
//! round (who goes first alternates too) so both see the same machine load.

use std::time::{Duration, Instant};

use anyhow::Result;
use urunc_tests::sandbox::SandboxNetns;
use urunc_tests::PrivateContainerd;

use crate::leftovers::Leftovers;
use crate::runtime::Runtime;

/// One runtime's samples.
#[derive(Default)]
pub struct Samples {
    pub ctr_run: Vec<Duration>,
    pub shim_rss_kib: Vec<u64>,
    /// Taps left in its sandbox after a round, removed before the next one (so every round
    /// starts from a clean pod netns).
    pub taps_removed: usize,
    /// Rounds whose VMM never started (their shim still served a created container).
    pub rounds_without_vmm: usize,
}

/// `rounds` rounds; `runtimes[i]` gets its own sandbox and `samples[i]`.
pub fn measure(
    ctrd: &PrivateContainerd,
    runtimes: &[&Runtime],
    image: &str,
    rounds: usize,
) -> Result<Vec<Samples>> {
    let mut sandboxes = Vec::new();
    for _ in runtimes {
        let sandbox = SandboxNetns::create()?;
        let before = sandbox.snapshot()?;
        sandboxes.push((sandbox, before));
    }
    let mut samples: Vec<Samples> = runtimes.iter().map(|_| Samples::default()).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..runtimes.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let (runtime, (sandbox, before)) = (runtimes[index], &sandboxes[index]);
            let with_ns = format!("network:{}", sandbox.path().display());
            let id = format!("lat-{}-{round}", runtime.label);
            let started = Instant::now();
            runtime.run_detached(ctrd, &with_ns, image, &id)?;
            samples[index].ctr_run.push(started.elapsed());
            if let Some(why) = runtime.wait_vmm_up(ctrd, &id) {
                if samples[index].rounds_without_vmm == 0 {
                    eprintln!("first latency round without a VMM: {why}");
                }
                samples[index].rounds_without_vmm += 1;
            }
            // The VMM has run a second: the shim has served Create and Start and settled.
            samples[index]
                .shim_rss_kib
                .push(runtime.shim_rss(ctrd, &id)?);
            runtime.kill_and_remove(ctrd, &id)?;
            let left = Leftovers::between(before, &sandbox.snapshot()?);
            samples[index].taps_removed += left.taps.len();
            left.remove(Some(sandbox.name()), before)?;
        }
    }
    Ok(samples)
}
