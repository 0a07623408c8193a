//! urunc-rs next to Go urunc itself, in one run, on one private containerd, one image and one
//! machine: urunc #587's restart loop (what each leaves in the pod and host netns), `ctr run
//! -d` latency (alternating) and the shim's VmRSS per running container.
//!
//!     sudo URUNC_BENCH_GO_URUNC_DIR=/path/to/go-urunc/bin \
//!         cargo run --release -p urunc-tests --example urunc_side_by_side
//!
//! The folder holds Go urunc's `containerd-shim-urunc-v2` and `urunc`, built by the user (the
//! bench never builds or installs it; see `go_urunc.rs` for how it is registered). Without it
//! the bench prints SKIPPED. `URUNC_BENCH_ROUNDS` (50) sets the loop's rounds,
//! `URUNC_BENCH_LATENCY_ROUNDS` (10) the latency rounds; `URUNC_TEST_CONTAINERD` picks the
//! containerd as for the tests. The image is the tests' PVH guest, packed as urunc's `linux`
//! kind on `qemu` with `useDMBlock` false (Go urunc otherwise takes the overlay rootfs for a
//! device-mapper block device). Both run it on KVM: ours with `URUNC_RS_ACCEL=auto` (unless
//! set), Go urunc through a qemu wrapper hiding `arch-capabilities`.

mod go_urunc;
mod leftovers;
mod restart_loop;
mod run_latency;
mod runtime;

use std::time::Duration;

use anyhow::{Context, Result};
use urunc_pack::UnikernelImage;
use urunc_tests::containerd::ACCEL_ENV;
use urunc_tests::guests::{pvh_guest, PvhBehaviour};
use urunc_tests::unikernel_images::{linux_on_qemu, write_unikernel_archive, KERNEL_PATH};
use urunc_tests::{skipped, skipped_not_in_ci, ContainerdOptions, PrivateContainerd};

use go_urunc::{GoUrunc, GO_RUNTIME, GO_SHIM_ALIAS, GO_URUNC_DIR_ENV};
use restart_loop::{run_loop, LoopOutcome};
use run_latency::Samples;
use runtime::Runtime;

const IMAGE: &str = "docker.io/library/side-by-side-pvh:latest";
const BENCH: &str = "urunc_side_by_side";

fn main() -> Result<()> {
    let Some(built) = GoUrunc::built_dir()? else {
        skipped_not_in_ci!("SKIPPED: {BENCH}: {GO_URUNC_DIR_ENV} is not set (the folder holding Go urunc's containerd-shim-urunc-v2 and urunc)");
        return Ok(());
    };
    if !nix::unistd::geteuid().is_root() {
        skipped!("SKIPPED: {BENCH}: needs root");
        return Ok(());
    }
    for program in ["qemu-system-x86_64", "ip", "tc"] {
        if let Err(e) = urunc_tests::host_tools::which(program, "bash .ci/install-deps") {
            skipped!("SKIPPED: {BENCH}: {e}");
            return Ok(());
        }
    }
    let search_path = std::env::var("PATH")?;
    let go = GoUrunc::install(&built, &search_path)?;
    let accel = std::env::var(ACCEL_ENV).unwrap_or_else(|_| "auto".into());
    let ctrd = PrivateContainerd::start_with(ContainerdOptions {
        extra_path: vec![go.shim_dir()],
        extra_env: vec![(ACCEL_ENV.into(), accel.clone())],
        ..ContainerdOptions::default()
    })?;
    let ours = Runtime {
        label: "urunc-rs",
        name: "io.containerd.urunc.v2",
        shim_binary: ctrd
            .shim_binary()
            .context("the private containerd has no urunc-rs shim")?
            .to_path_buf(),
        vmm_stderr: None,
    };
    let theirs = Runtime {
        label: "go-urunc",
        name: GO_RUNTIME,
        shim_binary: go.shim_binary(),
        vmm_stderr: go.vmm_stderr(),
    };
    println!(
        "{BENCH}: {}, image {IMAGE} (PVH guest, urunc kind linux on qemu)",
        ctrd.version().label()
    );
    println!(
        "  urunc-rs: {} (URUNC_RS_ACCEL={accel})",
        ours.shim_binary.display()
    );
    println!(
        "  Go urunc: {} as {GO_RUNTIME}; its qemu is a wrapper rewriting `-cpu host` to \
         `-cpu host,-arch-capabilities` (its `-enable-kvm -cpu host` aborts on this nested KVM)",
        built.display()
    );
    let result = compare(&ctrd, &ours, &theirs);
    // What containerd said about how either shim answered it (`-info`, bootstrap, API version).
    let (go_complaints, our_complaints): (Vec<String>, Vec<String>) = ctrd
        .complaints_about_shims()
        .into_iter()
        .partition(|line| line.contains(GO_SHIM_ALIAS));
    for (label, complaints) in [("urunc-rs", our_complaints), ("Go urunc", go_complaints)] {
        println!(
            "containerd's complaints about {label}'s shim: {}",
            complaints.len()
        );
        for line in complaints.iter().take(2) {
            println!("  {line}");
        }
    }
    let stopped = ctrd.stop().context("stopping the private containerd");
    let removed = go.remove();
    let failures: Vec<String> = [result, stopped, removed]
        .into_iter()
        .filter_map(|outcome| outcome.err().map(|e| format!("{e:#}")))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failures.join("\n"))
    }
}

fn compare(ctrd: &PrivateContainerd, ours: &Runtime, theirs: &Runtime) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let kernel = pvh_guest(dir.path(), PvhBehaviour::HaltForever, "side-by-side")?;
    let archive = write_unikernel_archive(
        dir.path(),
        &UnikernelImage {
            name: IMAGE.to_string(),
            files: vec![(KERNEL_PATH.to_string(), kernel)],
            urunc: linux_on_qemu(false, &[("useDMBlock", "false")]),
            labels_as_annotations: false,
        },
    )?;
    ctrd.import(&archive)?;
    let rounds = count_from_env("URUNC_BENCH_ROUNDS", 50)?;
    let latency_rounds = count_from_env("URUNC_BENCH_LATENCY_ROUNDS", 10)?;

    let loops = [
        run_loop(ctrd, ours, IMAGE, rounds)?,
        run_loop(ctrd, theirs, IMAGE, rounds)?,
    ];
    let samples = run_latency::measure(ctrd, &[ours, theirs], IMAGE, latency_rounds)?;
    print_table(&loops, &samples);
    Ok(())
}

fn print_table(loops: &[LoopOutcome; 2], samples: &[Samples]) {
    let row = |label: &str, cell: &dyn Fn(usize) -> String| {
        println!("| {label} | {} | {} |", cell(0), cell(1));
    };
    println!();
    println!("| | urunc-rs | Go urunc |");
    println!("|---|---|---|");
    row(
        &format!(
            "#587 loop, {} rounds: rounds whose guest had its tap",
            loops[0].rounds
        ),
        &|i| loops[i].rounds_with_tap.to_string(),
    );
    row("loop rounds whose VMM never started", &|i| {
        loops[i].rounds_without_vmm.to_string()
    });
    row(
        "left in the pod netns: taps/ingress qdiscs/tc filters",
        &|i| loops[i].pod.counts(),
    );
    row(
        "left in the host netns: taps/ingress qdiscs/tc filters",
        &|i| loops[i].host.counts(),
    );
    row("loop wall time", &|i| {
        format!("{:.1} s", loops[i].took.as_secs_f64())
    });
    row(
        &format!(
            "`ctr run -d`, median (min-max), {} rounds alternating",
            samples[0].ctr_run.len()
        ),
        &|i| {
            let mut run = samples[i].ctr_run.clone();
            run.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            format!(
                "{:.1} ms ({:.1}-{:.1})",
                ms(run[run.len() / 2]),
                ms(run[0]),
                ms(run[run.len() - 1])
            )
        },
    );
    row("shim VmRSS per running container, median (min-max)", &|i| {
        let mut rss = samples[i].shim_rss_kib.clone();
        rss.sort();
        format!(
            "{} KiB ({}-{})",
            rss[rss.len() / 2],
            rss[0],
            rss[rss.len() - 1]
        )
    });
    row("latency rounds whose VMM never started", &|i| {
        samples[i].rounds_without_vmm.to_string()
    });
    row("taps left after a latency round (removed)", &|i| {
        samples[i].taps_removed.to_string()
    });
    let median_of = |i: usize| {
        let mut run = samples[i].ctr_run.clone();
        run.sort();
        run[run.len() / 2].as_secs_f64()
    };
    let rss_of = |i: usize| {
        let mut rss = samples[i].shim_rss_kib.clone();
        rss.sort();
        rss[rss.len() / 2] as f64
    };
    println!(
        "ratio urunc-rs / Go urunc: `ctr run -d` {:.2}, shim VmRSS {:.2}",
        median_of(0) / median_of(1),
        rss_of(0) / rss_of(1)
    );
}

/// A positive count from `variable`, `default` when unset.
fn count_from_env(variable: &str, default: usize) -> Result<usize> {
    match std::env::var(variable) {
        Err(_) => Ok(default),
        Ok(value) => match value.parse::<usize>() {
            Ok(count) if count > 0 => Ok(count),
            _ => anyhow::bail!("{variable}={value:?} is not a positive count"),
        },
    }
}
