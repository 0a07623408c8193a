//! Density: the shims' memory with 1, 8 and 32 pods on the node, in the three ways a node
//! can run them, side by side in one run:
//!
//! - urunc-rs node-wide (`URUNC_RS_SHIM_GROUP=node`): one shim for every pod, a netns
//!   worker per pod;
//! - urunc-rs per pod (the default): one shim per pod;
//! - containerd's Go runc shim, one per pod (`ctr run` gives each container its own).
//!
//! A pod here is a sandbox netns with one running container (the PVH unikernel for
//! urunc-rs, busybox for runc). The pods are added, never restarted, so each level
//! measures the same shims grown by more pods.

use std::time::Duration;

use anyhow::{ensure, Result};
use urunc_tests::sandbox::SandboxNetns;
use urunc_tests::PrivateContainerd;

use super::{memory_of, remove, run_busybox_detached, run_unikernel_detached, shim_pids};

/// Pods on the node at each measurement; the first is the baseline of "per extra pod".
const LEVELS: [usize; 3] = [1, 8, 32];
/// The budget for one more pod in the node-wide shim.
const NODE_WIDE_BUDGET_KIB: u64 = 256;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    NodeWide,
    PerPod,
    GoRunc,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::NodeWide, Mode::PerPod, Mode::GoRunc];

    fn label(self) -> &'static str {
        match self {
            Mode::NodeWide => "urunc-rs node-wide",
            Mode::PerPod => "urunc-rs per pod",
            Mode::GoRunc => "Go runc shim per pod",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Mode::GoRunc => "containerd-shim-runc-v2",
            _ => "containerd-shim-urunc-v2",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Mode::NodeWide => "dn",
            Mode::PerPod => "dp",
            Mode::GoRunc => "dr",
        }
    }
}

/// One measurement: shims of a mode and their summed memory, in KiB.
#[derive(Clone, Copy)]
struct Sample {
    shims: usize,
    threads: u64,
    rss: u64,
    pss: u64,
}

/// The pods of one mode and the containerd that runs them.
struct Pods<'a> {
    mode: Mode,
    ctrd: &'a PrivateContainerd,
    sandboxes: Vec<SandboxNetns>,
    ids: Vec<String>,
}

impl Pods<'_> {
    fn grow_to(&mut self, pods: usize) -> Result<()> {
        while self.ids.len() < pods {
            let id = format!("{}{}", self.mode.prefix(), self.ids.len());
            if self.mode == Mode::GoRunc {
                run_busybox_detached(self.ctrd, &id)?;
            } else {
                let sandbox = SandboxNetns::create()?;
                let with_ns = format!("network:{}", sandbox.path().display());
                self.sandboxes.push(sandbox);
                run_unikernel_detached(self.ctrd, &with_ns, &id)?;
            }
            self.ids.push(id);
        }
        Ok(())
    }

    fn sample(&self) -> Result<Sample> {
        let pids = shim_pids(self.ctrd, self.mode.binary())?;
        let mut sample = Sample {
            shims: pids.len(),
            threads: 0,
            rss: 0,
            pss: 0,
        };
        for pid in &pids {
            let (rss, pss) = memory_of(pid)?;
            sample.rss += rss;
            sample.pss += pss;
            sample.threads += threads_of(*pid)?;
        }
        Ok(sample)
    }

    fn remove_all(&mut self) -> Result<()> {
        for id in self.ids.drain(..) {
            remove(self.ctrd, &id)?;
        }
        self.sandboxes.clear();
        Ok(())
    }
}

/// Grows every mode to each level in turn, prints the table, removes every pod.
/// `per_pod` serves the per-pod urunc-rs shims and the Go runc shims; `node` has
/// `URUNC_RS_SHIM_GROUP=node` in its environment.
pub fn print_density(per_pod: &PrivateContainerd, node: &PrivateContainerd) -> Result<()> {
    let mut all: Vec<Pods> = Mode::ALL
        .iter()
        .map(|&mode| Pods {
            mode,
            ctrd: if mode == Mode::NodeWide {
                node
            } else {
                per_pod
            },
            sandboxes: Vec::new(),
            ids: Vec::new(),
        })
        .collect();
    let measured = measure(&mut all);
    let mut removed = Ok(());
    for pods in &mut all {
        if let Err(e) = pods.remove_all() {
            eprintln!("removing the {} pods: {e:#}", pods.mode.label());
            removed = Err(e);
        }
    }
    let samples = measured?;
    removed?;
    print_table(&samples);
    Ok(())
}

/// `samples[level][mode]`.
fn measure(all: &mut [Pods]) -> Result<Vec<Vec<Sample>>> {
    let mut samples = Vec::new();
    for pods in LEVELS {
        for mode in all.iter_mut() {
            mode.grow_to(pods)?;
        }
        // Let every shim settle (Start's transient buffers freed, exits watched).
        std::thread::sleep(Duration::from_secs(2));
        let level: Vec<Sample> = all.iter().map(Pods::sample).collect::<Result<_>>()?;
        for (mode, sample) in all.iter().zip(&level) {
            let expected = if mode.mode == Mode::NodeWide { 1 } else { pods };
            ensure!(
                sample.shims == expected,
                "{} with {pods} pods: {} shims, expected {expected}",
                mode.mode.label(),
                sample.shims
            );
        }
        samples.push(level);
    }
    Ok(samples)
}

fn print_table(samples: &[Vec<Sample>]) {
    println!("density: shims' memory with N pods (one running container each), KiB:");
    println!(
        "  {:<22} {:>4} {:>5} {:>7} {:>9} {:>9} {:>14} {:>14}",
        "mode", "pods", "shims", "threads", "RSS", "PSS", "RSS/extra pod", "PSS/extra pod"
    );
    let base = &samples[0];
    for (level, pods) in samples.iter().zip(LEVELS) {
        for (m, mode) in Mode::ALL.iter().enumerate() {
            let s = level[m];
            let per_extra = |now: u64, then: u64| {
                if pods > 1 {
                    format!("{}", (now as i64 - then as i64) / (pods as i64 - 1))
                } else {
                    "-".to_string()
                }
            };
            println!(
                "  {:<22} {:>4} {:>5} {:>7} {:>9} {:>9} {:>14} {:>14}",
                mode.label(),
                pods,
                s.shims,
                s.threads,
                s.rss,
                s.pss,
                per_extra(s.rss, base[m].rss),
                per_extra(s.pss, base[m].pss),
            );
        }
    }
    let last = samples.len() - 1;
    let per_extra_node = (samples[last][0].rss - samples[0][0].rss) / (LEVELS[last] as u64 - 1);
    println!(
        "  node-wide RSS per extra pod at {} pods: {per_extra_node} KiB (budget {NODE_WIDE_BUDGET_KIB}: {})",
        LEVELS[last],
        if per_extra_node <= NODE_WIDE_BUDGET_KIB {
            "within"
        } else {
            "OVER"
        }
    );
    println!(
        "  ratio node-wide / Go runc shims, total RSS at {} pods: {:.3}",
        LEVELS[last],
        samples[last][0].rss as f64 / samples[last][2].rss as f64
    );
}

/// The `Threads:` line of /proc/<pid>/status.
fn threads_of(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Threads: in /proc/{pid}/status"))
}
