//! Attach+detach throughput and latency with 1 and 32 sandboxes, and the
//! memory one idle worker costs. Needs root.
//!
//!     cargo run --release -p urunc-netns --example netns_bench
//!
//! Figures are for comparing runs on one machine, not absolute truths: these
//! machines are shared and noisy.

use std::time::{Duration, Instant};

use netns::{AttachOutcome, AttachRequest, NetnsPool};
use urunc_tests::sandbox::SandboxNetns;

const SINGLE_CYCLES: usize = 200;
const PODS: usize = 32;
const CYCLES_PER_POD: usize = 20;
const IDLE_WORKERS: usize = 32;

fn main() -> anyhow::Result<()> {
    anyhow::ensure!(nix::unistd::geteuid().is_root(), "netns_bench needs root");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;

    let one = vec![SandboxNetns::create()?];
    let (elapsed, latencies) = runtime.block_on(cycle(&one, SINGLE_CYCLES))?;
    report("1 sandbox", SINGLE_CYCLES, elapsed, latencies);
    drop(one);

    let many: Vec<SandboxNetns> = (0..PODS)
        .map(|_| SandboxNetns::create())
        .collect::<Result<_, _>>()?;
    let (elapsed, latencies) = runtime.block_on(cycle(&many, CYCLES_PER_POD))?;
    report(
        &format!("{PODS} sandboxes"),
        PODS * CYCLES_PER_POD,
        elapsed,
        latencies,
    );
    drop(many);

    let idle: Vec<SandboxNetns> = (0..IDLE_WORKERS)
        .map(|_| SandboxNetns::create())
        .collect::<Result<_, _>>()?;
    let per_worker = runtime.block_on(idle_worker_rss(&idle))?;
    println!(
        "idle worker: {per_worker:.1} KiB RSS each ({IDLE_WORKERS} workers attached and idle)"
    );
    Ok(())
}

fn request(container_id: String) -> AttachRequest {
    AttachRequest {
        container_id,
        owner_uid: 0,
        owner_gid: 0,
        persist: Box::new(|_| Ok(())),
    }
}

/// Every sandbox runs `cycles` attach+detach cycles, all sandboxes at once.
async fn cycle(
    sandboxes: &[SandboxNetns],
    cycles: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let pool = NetnsPool::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (pod, sandbox) in sandboxes.iter().enumerate() {
        let (pool, path) = (pool.clone(), sandbox.path());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(cycles);
            for n in 0..cycles {
                let t = Instant::now();
                let outcome = pool.attach(&path, request(format!("b{pod}-{n}"))).await?;
                let AttachOutcome::Attached { record, .. } = outcome else {
                    anyhow::bail!("sandbox {pod} has no network");
                };
                pool.detach(&record).await?;
                latencies.push(t.elapsed());
            }
            Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((started.elapsed(), all))
}

fn report(label: &str, cycles: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{label}: {cycles} attach+detach cycles in {:.2}s = {:.0} cycles/s; latency p50 {:.2} ms, p99 {:.2} ms",
        elapsed.as_secs_f64(),
        cycles as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

/// RSS growth per worker while each sandbox has one attached container.
async fn idle_worker_rss(sandboxes: &[SandboxNetns]) -> anyhow::Result<f64> {
    let pool = NetnsPool::new();
    // Warm up allocator and runtime so the delta is the workers' own.
    let warm = SandboxNetns::create()?;
    if let AttachOutcome::Attached { record, .. } =
        pool.attach(&warm.path(), request("warm".into())).await?
    {
        pool.detach(&record).await?;
    }
    let before = rss_kib()?;
    let mut records = Vec::new();
    for (i, sandbox) in sandboxes.iter().enumerate() {
        if let AttachOutcome::Attached { record, .. } = pool
            .attach(&sandbox.path(), request(format!("idle{i}")))
            .await?
        {
            records.push(record);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss_kib()?;
    anyhow::ensure!(
        pool.live_workers() == sandboxes.len(),
        "expected one worker per sandbox"
    );
    for record in &records {
        pool.detach(record).await?;
    }
    Ok((after.saturating_sub(before)) as f64 / sandboxes.len() as f64)
}

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))
}
