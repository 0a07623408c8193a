//! Footprint and latency of our shim next to containerd's Go runc shim, in
//! one run on one machine (these machines are noisy: read the ratios).
//!
//!     RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
//!         cargo build --release -p urunc-shim --target x86_64-unknown-linux-gnu
//!     sudo install -D -m 0755 target/x86_64-unknown-linux-gnu/release/containerd-shim-urunc-v2 \
//!         /tmp/urunc-bench/containerd-shim-urunc-v2
//!     sudo URUNC_SHIM_BIN=/tmp/urunc-bench/containerd-shim-urunc-v2 \
//!         cargo run --release -p urunc-tests --example shim_bench
//!
//! Prints: RSS and PSS of `containerd-shim-urunc-v2` serving one running
//! unikernel (a PVH guest under qemu/TCG in a pod-like netns) and of
//! `containerd-shim-runc-v2` serving one running busybox container; then the
//! same with PODS containers of each kind running at once (one shim each, as
//! pods on a node): the PSS per shim, where the shims' shared text is split
//! between them, and the private memory (USS) each adds; then the density table
//! (`density.rs`: the node-wide shim with 1, 8 and 32 pods next to per-pod shims and
//! Go runc shims); then, over several rounds, how long `ctr run -d` takes (it returns once
//! the VMM's exec succeeded), and from the VMM's death (SIGKILL) to the TaskExit event; then where
//! the shim's share of Create → exec goes, phase by phase (`phases.rs`); then the floor of
//! the exit path and `ctr run -d` next to runc's, side by side (`side_by_side.rs`); then the
//! latency and phases again with the node-wide shim.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::images::busybox_image;
use urunc_tests::sandbox::SandboxNetns;
use urunc_tests::unikernel_images::pvh_image;
use urunc_tests::{ContainerdOptions, PrivateContainerd};

mod ctr_breakdown;
mod density;
mod phases;
mod side_by_side;

const ROUNDS: usize = 10;
/// Containers of each kind running at once for the per-pod figures.
const PODS: usize = 4;
const UNIKERNEL_IMAGE: &str = "docker.io/library/bench-pvh:latest";
const BUSYBOX_IMAGE: &str = "docker.io/library/bench-busybox:latest";

fn main() -> Result<()> {
    anyhow::ensure!(nix::unistd::geteuid().is_root(), "shim_bench needs root");
    let dir = tempfile::tempdir()?;
    let ctrd = PrivateContainerd::start()?;
    let pvh_archive = pvh_image(
        dir.path(),
        UNIKERNEL_IMAGE,
        PvhBehaviour::HaltForever,
        "bench",
    )?;
    ctrd.import(&pvh_archive)?;
    ctrd.import(&busybox_image(dir.path(), BUSYBOX_IMAGE)?)?;
    let sandbox = SandboxNetns::create()?;
    let with_ns = format!("network:{}", sandbox.path().display());

    if std::env::var_os("SHIM_BENCH_LATENCY_ONLY").is_none() {
        footprint(&ctrd, &with_ns, &pvh_archive)?;
    }

    // Latency, over several rounds of one unikernel: with a shim per pod, each Create
    // starts a new shim; node-wide, one shim serves every round.
    latency(&ctrd, &with_ns, "lat", "per-pod shims")?;
    side_by_side::print_tap_floor()?;
    side_by_side::print_ctr_run(&ctrd, &with_ns)?;
    let node = node_wide_containerd(&pvh_archive)?;
    latency(&node, &with_ns, "nlat", "node-wide shim")?;
    // Stopping containerd kills a shim still lingering: let it exit on its own first.
    wait_no_shim(&node)?;
    node.stop()?;
    Ok(())
}

/// A second private containerd whose shims serve every pod from one node-wide shim.
fn node_wide_containerd(pvh_archive: &std::path::Path) -> Result<PrivateContainerd> {
    let node = PrivateContainerd::start_with(ContainerdOptions {
        extra_env: vec![("URUNC_RS_SHIM_GROUP".into(), "node".into())],
        ..ContainerdOptions::default()
    })?;
    node.import(pvh_archive)?;
    Ok(node)
}

/// The memory tables: one running container each, PODS of each, then the density table.
/// `SHIM_BENCH_LATENCY_ONLY=1` skips them (the latency and phase tables take a minute; these
/// take most of the run).
fn footprint(ctrd: &PrivateContainerd, with_ns: &str, pvh_archive: &std::path::Path) -> Result<()> {
    run_unikernel_detached(ctrd, with_ns, "mem-u")?;
    run_busybox_detached(ctrd, "mem-r")?;
    std::thread::sleep(Duration::from_secs(2));
    let ours_pid = shim_pid(ctrd, "containerd-shim-urunc-v2", "mem-u")?;
    let go_pid = shim_pid(ctrd, "containerd-shim-runc-v2", "mem-r")?;
    let (ours, go) = (memory_of(&ours_pid)?, memory_of(&go_pid)?);
    println!("shim memory with one running container (KiB):");
    println!(
        "  containerd-shim-urunc-v2 (unikernel): RSS {:>6}  PSS {:>6}",
        ours.0, ours.1
    );
    println!(
        "  containerd-shim-runc-v2  (busybox):   RSS {:>6}  PSS {:>6}",
        go.0, go.1
    );
    println!(
        "  ratio urunc-rs / Go runc shim: RSS {:.2}  PSS {:.2}",
        ours.0 as f64 / go.0 as f64,
        ours.1 as f64 / go.1 as f64
    );
    if let Ok(seconds) = std::env::var("SHIM_BENCH_HOLD").map(|s| s.parse::<u64>()) {
        // Time to look at /proc/<pid>/smaps by hand.
        println!(
            "holding {:?}s: shim pids {} (ours), {} (Go)",
            seconds, ours_pid, go_pid
        );
        std::thread::sleep(Duration::from_secs(seconds.unwrap_or(60)));
    }
    print_per_pod(ctrd)?;
    for id in ["mem-u", "mem-r"] {
        remove(ctrd, id)?;
    }
    let node = node_wide_containerd(pvh_archive)?;
    density::print_density(ctrd, &node)?;
    wait_no_shim(&node)?;
    node.stop()?;
    Ok(())
}

/// Waits until the node-wide shim of `ctrd` left (it lingers a few seconds without containers).
fn wait_no_shim(ctrd: &PrivateContainerd) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shim_pids(ctrd, "containerd-shim-urunc-v2")?.is_empty() {
        if Instant::now() > deadline {
            bail!("the node-wide shim of {} did not exit", ctrd.namespace());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// ROUNDS unikernels `<prefix><round>`, one after the other: `ctr run -d` (it returns once
/// Start answered, and Start answers once the VMM's exec succeeded), VMM SIGKILL → TaskExit,
/// then the shim's Create phases. (The VMM's start time in `/proc/<pid>/stat` is its fork,
/// in 10 ms ticks: it would miss what happens between fork and exec.)
fn latency(ctrd: &PrivateContainerd, with_ns: &str, prefix: &str, mode: &str) -> Result<()> {
    let events = EventStream::start(ctrd)?;
    let (mut to_exec, mut to_exit) = (Vec::new(), Vec::new());
    let ids: Vec<String> = (0..ROUNDS)
        .map(|round| format!("{prefix}{round}"))
        .collect();
    for id in &ids {
        let started = Instant::now();
        run_unikernel_detached(ctrd, with_ns, id)?;
        to_exec.push(started.elapsed());
        let vmm = vmm_pid(ctrd, id)?;
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(vmm),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        events.wait_exit(id, Duration::from_secs(30))?;
        to_exit.push(killed.elapsed());
        remove(ctrd, id)?;
    }
    println!("{mode}:");
    print_latency("  ctr run -d (to the VMM's exec)", &mut to_exec);
    print_latency("  VMM SIGKILL -> TaskExit event", &mut to_exit);
    phases::print_phases(ctrd, &ids)
}

/// Starts PODS - 1 more containers of each kind (each unikernel in its own sandbox: one guest
/// per pod) next to `mem-u` and `mem-r`, prints the mean PSS and USS per shim, removes them.
fn print_per_pod(ctrd: &PrivateContainerd) -> Result<()> {
    let mut sandboxes = Vec::new();
    let mut ids = Vec::new();
    let result = (|| -> Result<()> {
        for pod in 1..PODS {
            let sandbox = SandboxNetns::create()?;
            let with_ns = format!("network:{}", sandbox.path().display());
            sandboxes.push(sandbox);
            let (u, r) = (format!("pod-u{pod}"), format!("pod-r{pod}"));
            run_unikernel_detached(ctrd, &with_ns, &u)?;
            ids.push(u);
            run_busybox_detached(ctrd, &r)?;
            ids.push(r);
        }
        std::thread::sleep(Duration::from_secs(2));
        let mean = |binary: &str, prefix: &str, first: &str| -> Result<(u64, u64)> {
            let mut pids = vec![shim_pid(ctrd, binary, first)?];
            for pod in 1..PODS {
                pids.push(shim_pid(ctrd, binary, &format!("{prefix}{pod}"))?);
            }
            let (mut pss, mut uss) = (0, 0);
            for pid in &pids {
                let (_, p) = memory_of(pid)?;
                pss += p;
                uss += private_of(pid)?;
            }
            Ok((pss / PODS as u64, uss / PODS as u64))
        };
        let ours = mean("containerd-shim-urunc-v2", "pod-u", "mem-u")?;
        let go = mean("containerd-shim-runc-v2", "pod-r", "mem-r")?;
        println!("per pod, {PODS} containers of each kind running (KiB, mean per shim):");
        println!(
            "  containerd-shim-urunc-v2 (unikernel): PSS {:>6}  USS {:>6}",
            ours.0, ours.1
        );
        println!(
            "  containerd-shim-runc-v2  (busybox):   PSS {:>6}  USS {:>6}",
            go.0, go.1
        );
        println!(
            "  ratio urunc-rs / Go runc shim: PSS {:.2}  USS {:.2}",
            ours.0 as f64 / go.0 as f64,
            ours.1 as f64 / go.1 as f64
        );
        Ok(())
    })();
    for id in &ids {
        remove(ctrd, id)?;
    }
    drop(sandboxes);
    result
}

/// Private (clean + dirty) memory in KiB: what this process alone keeps resident.
fn private_of(pid: &i32) -> Result<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(rollup_field(&rollup, pid, "Private_Clean:")?
        + rollup_field(&rollup, pid, "Private_Dirty:")?)
}

/// `ctr run -d` of busybox sleeping, through containerd's Go runc shim.
fn run_busybox_detached(ctrd: &PrivateContainerd, id: &str) -> Result<()> {
    ctrd.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.runc.v2",
        BUSYBOX_IMAGE,
        id,
        "sleep",
        "3600",
    ])?;
    Ok(())
}

/// `ctr run -d` of the PVH unikernel as container `id` in the sandbox
/// network namespace named by `with_ns`.
fn run_unikernel_detached(ctrd: &PrivateContainerd, with_ns: &str, id: &str) -> Result<()> {
    ctrd.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.urunc.v2",
        "--with-ns",
        with_ns,
        UNIKERNEL_IMAGE,
        id,
    ])?;
    Ok(())
}

fn remove(ctrd: &PrivateContainerd, id: &str) -> Result<()> {
    // The task may already have exited; a failed kill is then expected.
    let _ = ctrd.ctr(&["task", "kill", "-s", "SIGKILL", id]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctrd.ctr(&["task", "delete", id])?.status.code() != Some(0) {
        if !ctrd.ctr_ok(&["task", "ls", "-q"])?.lines().any(|l| l == id) {
            break;
        }
        if Instant::now() > deadline {
            bail!("task {id} would not go away");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ctrd.ctr_ok(&["container", "rm", id])?;
    Ok(())
}

fn print_latency(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({} rounds)",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

/// The pid of the shim daemon of `binary` serving container `id` in this namespace.
fn shim_pid(ctrd: &PrivateContainerd, binary: &str, id: &str) -> Result<i32> {
    let serving = format!("-id {id} ");
    shim_processes(ctrd, binary)?
        .into_iter()
        .find_map(|(pid, cmdline)| cmdline.contains(&serving).then_some(pid))
        .with_context(|| format!("no {binary} serving {id} in namespace {}", ctrd.namespace()))
}

/// Every shim daemon of `binary` in this namespace (a node-wide shim's `-id` is the
/// container that started it).
fn shim_pids(ctrd: &PrivateContainerd, binary: &str) -> Result<Vec<i32>> {
    Ok(shim_processes(ctrd, binary)?
        .into_iter()
        .map(|(pid, _)| pid)
        .collect())
}

/// (pid, command line with spaces) of the processes of `binary` in this namespace.
fn shim_processes(ctrd: &PrivateContainerd, binary: &str) -> Result<Vec<(i32, String)>> {
    let namespace = format!("-namespace {} ", ctrd.namespace());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(binary) && text.contains(&namespace) {
            found.push((pid, text));
        }
    }
    Ok(found)
}

/// (RSS, PSS) in KiB from smaps_rollup.
fn memory_of(pid: &i32) -> Result<(u64, u64)> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok((
        rollup_field(&rollup, pid, "Rss:")?,
        rollup_field(&rollup, pid, "Pss:")?,
    ))
}

/// One `Name:   123 kB` line of smaps_rollup, in KiB.
fn rollup_field(rollup: &str, pid: &i32, name: &str) -> Result<u64> {
    rollup
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {name} in smaps_rollup of {pid}"))
}

/// The task's pid (the VMM) as containerd reports it.
fn vmm_pid(ctrd: &PrivateContainerd, id: &str) -> Result<i32> {
    let listing = ctrd.ctr_ok(&["task", "ls"])?;
    listing
        .lines()
        .find_map(|l| {
            let mut cols = l.split_whitespace();
            (cols.next() == Some(id)).then(|| cols.next()?.parse().ok())?
        })
        .with_context(|| format!("task {id} not in {listing}"))
}

/// `ctr events`, read on a thread, so TaskExit arrivals can be awaited.
struct EventStream {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl EventStream {
    fn start(ctrd: &PrivateContainerd) -> Result<Self> {
        let mut child = ctrd
            .ctr_command(&["events"])
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("ctr events stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self { child, lines })
    }

    fn wait_exit(&self, id: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("no TaskExit for {id}"))?;
            if line.contains("/tasks/exit") && line.contains(id) {
                return Ok(());
            }
        }
    }
}

impl EventStream {
    /// Every line that arrived so far (and is not consumed by a wait).
    fn received(&self) -> Vec<String> {
        // The shim's last events of the last round may still be on their way.
        std::thread::sleep(Duration::from_millis(300));
        self.lines.try_iter().collect()
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill().and_then(|_| self.child.wait().map(drop)) {
            eprintln!("stopping ctr events: {e}");
        }
    }
}
