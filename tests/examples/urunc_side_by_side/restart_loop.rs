//! urunc #587's reproduction, as `tests/tests/shim_unikernel_lifecycle.rs` runs it: ROUNDS times
//! `ctr run -d` in one pod-like netns (a veth `eth0`) that outlives the containers, SIGKILL,
//! `task delete`, `container rm`; then what is left in the pod netns and in the host netns.

use std::time::{Duration, Instant};

use anyhow::Result;
use urunc_tests::sandbox::SandboxNetns;
use urunc_tests::PrivateContainerd;

use crate::leftovers::{host_view, snapshot, Leftovers};
use crate::runtime::Runtime;

/// What one runtime's loop did and left.
pub struct LoopOutcome {
    pub rounds: usize,
    /// Rounds whose guest had a tap in the pod netns while it ran.
    pub rounds_with_tap: usize,
    /// Rounds whose VMM never started (the task stayed in the runtime's own process).
    pub rounds_without_vmm: usize,
    pub pod: Leftovers,
    pub host: Leftovers,
    pub took: Duration,
}

/// Runs the loop for `runtime` in a fresh sandbox, counts what is left, then removes it (and
/// fails if that does not leave both namespaces as they were).
pub fn run_loop(
    ctrd: &PrivateContainerd,
    runtime: &Runtime,
    image: &str,
    rounds: usize,
) -> Result<LoopOutcome> {
    let sandbox = SandboxNetns::create()?;
    let with_ns = format!("network:{}", sandbox.path().display());
    let pod_before = sandbox.snapshot()?;
    let host_before = host_view(snapshot(None)?);
    let started = Instant::now();
    let mut rounds_with_tap = 0;
    let mut rounds_without_vmm = 0;
    for round in 0..rounds {
        let id = format!("loop-{}-{round}", runtime.label);
        runtime.run_detached(ctrd, &with_ns, image, &id)?;
        if let Some(why) = runtime.wait_vmm_up(ctrd, &id) {
            if rounds_without_vmm == 0 {
                eprintln!("first round without a VMM: {why}");
            }
            rounds_without_vmm += 1;
        }
        // Go urunc runs the guest without network when the tap of an earlier round is still
        // there.
        if sandbox
            .snapshot()
            .is_ok_and(|now| !now.urunc_taps().is_empty())
        {
            rounds_with_tap += 1;
        }
        runtime.kill_and_remove(ctrd, &id)?;
    }
    let took = started.elapsed();
    let pod = Leftovers::between(&pod_before, &sandbox.snapshot()?);
    let host = Leftovers::between(&host_before, &host_view(snapshot(None)?));
    pod.remove(Some(sandbox.name()), &pod_before)?;
    host.remove(None, &host_before)?;
    Ok(LoopOutcome {
        rounds,
        rounds_with_tap,
        rounds_without_vmm,
        pod,
        host,
        took,
    })
}
