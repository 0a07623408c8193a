//! Unikernel lifecycles through a real containerd: the seed's reproduction (many runs in one
//! sandbox netns that outlives them), a guest powering off by itself, a VMM killed from
//! outside, `ctr run -t` of a guest (its console through the shim's pty), the shim holding
//! the VMM's mount namespace only until the VMM's exit is reported. After each: no tap,
//! qdisc or filter in the sandbox, the host netns unchanged, no VMM, no state.

mod shim_support;

use std::time::Duration;

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, containerd, ctr, ctr_ok, ctr_on_a_pty, eventually,
    foreground_run, import_pvh_unikernel, processes_mentioning, run_detached_in, sandbox_with_ns,
    vmms_mentioning, RUNTIME,
};
use tempfile::TempDir;
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::sandbox::{NetSnapshot, SandboxNetns};
use urunc_tests::PrivateContainerd;

const HALT_IMAGE: &str = "docker.io/library/pvh-halt:test";
const POWEROFF_IMAGE: &str = "docker.io/library/pvh-poweroff:test";
/// Rounds of the seed's reproduction; `URUNC_TEST_ROUNDS` overrides.
const DEFAULT_ROUNDS: usize = 50;

#[test]
fn seed_reproduction_many_runs_in_one_sandbox_leave_nothing() {
    let test = "seed_reproduction_many_runs_in_one_sandbox_leave_nothing";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let rounds = std::env::var("URUNC_TEST_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let _guest_dir = import_pvh_unikernel(
        &ctrd,
        HALT_IMAGE,
        PvhBehaviour::HaltForever,
        "pvh-halt-ready",
    );
    let host_before = NetSnapshot::take(None).expect("host snapshot");
    let (sandbox, with_ns) = sandbox_with_ns();

    for round in 0..rounds {
        let id = format!("seed-{round}");
        run_detached_in(&ctrd, &with_ns, HALT_IMAGE, &id);
        let snapshot = NetSnapshot::take(Some(sandbox.name())).expect("snapshot");
        assert_eq!(
            snapshot.urunc_taps().len(),
            1,
            "round {round}: the running guest has its tap"
        );
        ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", &id]);
        assert!(
            eventually(Duration::from_secs(20), || ctr_ok(&ctrd, &["task", "ls"])
                .contains("STOPPED")),
            "round {round}: task did not stop: {}",
            ctr_ok(&ctrd, &["task", "ls"])
        );
        // TaskExit is only published after the network is detached.
        assert_sandbox_clean(&sandbox, &format!("round {round} after exit"));
        ctr_ok(&ctrd, &["task", "delete", &id]);
        ctr_ok(&ctrd, &["container", "rm", &id]);
    }

    assert_sandbox_clean(&sandbox, "after all rounds");
    assert_eq!(
        NetSnapshot::take(None).expect("host snapshot"),
        host_before,
        "host netns changed"
    );
    assert!(
        vmms_mentioning(&ctrd.dir().display().to_string()).is_empty(),
        "VMM left"
    );
    assert_nothing_left(&ctrd);
}

#[test]
fn guest_power_off_publishes_exit_and_cleans_the_sandbox() {
    let Some((ctrd, _guest_dir, sandbox, with_ns)) = guest_in_a_sandbox(
        "guest_power_off_publishes_exit_and_cleans_the_sandbox",
        POWEROFF_IMAGE,
        PvhBehaviour::PowerOff,
        "pvh-poweroff-marker",
    ) else {
        return;
    };

    // Without -d, ctr waits for TaskExit and exits with the task's status.
    let out = ctr(
        &ctrd,
        &[
            "run",
            "--runtime",
            RUNTIME,
            "--with-ns",
            &with_ns,
            POWEROFF_IMAGE,
            "poweroff",
        ],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pvh-poweroff-marker"),
        "console: {stdout:?}\n{}",
        ctrd.log_tail(30)
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_sandbox_clean(&sandbox, "after power-off");
    // `ctr run` (without -d) deleted the task itself once it exited.
    ctr_ok(&ctrd, &["container", "rm", "poweroff"]);
    assert_nothing_left(&ctrd);
}

#[test]
fn vmm_killed_from_outside_publishes_exit_137_and_cleans_the_sandbox() {
    let Some((ctrd, _guest_dir, sandbox, with_ns)) = guest_in_a_sandbox(
        "vmm_killed_from_outside_publishes_exit_137_and_cleans_the_sandbox",
        HALT_IMAGE,
        PvhBehaviour::HaltForever,
        "pvh-halt-ready",
    ) else {
        return;
    };

    let mut run = foreground_run(&ctrd, &with_ns, HALT_IMAGE, "killed");
    run.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut run = urunc_tests::guests::KillOnDrop(run.spawn().expect("spawn ctr run"));
    let needle = ctrd.bundle_dir("killed").display().to_string();
    assert!(
        eventually(Duration::from_secs(30), || !vmms_mentioning(&needle)
            .is_empty()),
        "no VMM for the container: {}",
        ctrd.log_tail(30)
    );
    for (pid, _) in vmms_mentioning(&needle) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill VMM");
    }
    let status = run
        .wait_within(Duration::from_secs(30))
        .expect("ctr run ends");
    assert_eq!(status.code(), Some(137), "ctr run exit status");
    assert_sandbox_clean(&sandbox, "after SIGKILL of the VMM");
    ctr_ok(&ctrd, &["container", "rm", "killed"]);
    assert_nothing_left(&ctrd);
}

/// The shim holds the VMM's mount namespace open while the VMM runs (so the VMM's exit does
/// not wait for the namespace's teardown) and lets it go once the exit was reported: a
/// node-wide shim would otherwise keep one namespace per container it ever ran.
#[test]
fn the_shim_holds_the_vmm_mount_namespace_only_until_its_exit() {
    let Some((ctrd, _guest_dir, sandbox, with_ns)) = guest_in_a_sandbox(
        "the_shim_holds_the_vmm_mount_namespace_only_until_its_exit",
        HALT_IMAGE,
        PvhBehaviour::HaltForever,
        "pvh-halt-ready",
    ) else {
        return;
    };
    run_detached_in(&ctrd, &with_ns, HALT_IMAGE, "held");
    let vmms = vmms_mentioning(&ctrd.bundle_dir("held").display().to_string());
    assert_eq!(vmms.len(), 1, "one VMM for the container: {vmms:?}");
    let vmm = vmms[0].0;
    let vmm_namespace = std::fs::read_link(format!("/proc/{vmm}/ns/mnt")).expect("VMM's mnt");
    let shim = shim_serving(&ctrd, "held");
    assert_eq!(
        mount_namespaces_held(shim),
        std::slice::from_ref(&vmm_namespace),
        "the shim holds exactly the VMM's mount namespace while it runs"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(vmm),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill VMM");
    assert!(
        eventually(Duration::from_secs(20), || ctr_ok(&ctrd, &["task", "ls"])
            .contains("STOPPED")),
        "task did not stop: {}",
        ctr_ok(&ctrd, &["task", "ls"])
    );
    assert!(
        eventually(Duration::from_secs(10), || mount_namespaces_held(shim)
            .is_empty()),
        "the shim still holds {:?} after the exit (the VMM's was {vmm_namespace:?})",
        mount_namespaces_held(shim)
    );
    ctr_ok(&ctrd, &["task", "delete", "held"]);
    ctr_ok(&ctrd, &["container", "rm", "held"]);
    assert_sandbox_clean(&sandbox, "after the exit");
    assert_nothing_left(&ctrd);
}

/// A private containerd for `test` with a PVH guest behaving as `behaviour` imported as
/// `image`, and a sandbox netns to run it in (`with_ns` for `ctr run`). `None` when the test
/// cannot run here (it was reported as skipped). Keep the folder until the test ends.
fn guest_in_a_sandbox(
    test: &str,
    image: &str,
    behaviour: PvhBehaviour,
    marker: &str,
) -> Option<(PrivateContainerd, TempDir, SandboxNetns, String)> {
    let ctrd = containerd(test, &["qemu-system-x86_64", "ip", "tc"])?;
    let guest_dir = import_pvh_unikernel(&ctrd, image, behaviour, marker);
    let (sandbox, with_ns) = sandbox_with_ns();
    Some((ctrd, guest_dir, sandbox, with_ns))
}

/// The pid of the shim daemon serving container `id` of `ctrd`.
fn shim_serving(ctrd: &PrivateContainerd, id: &str) -> i32 {
    let (namespace, serving) = (
        format!("-namespace {} ", ctrd.namespace()),
        format!("-id {id} "),
    );
    let shims: Vec<i32> = processes_mentioning(&serving)
        .into_iter()
        .filter(|(_, cmd)| cmd.contains("containerd-shim-urunc-v2") && cmd.contains(&namespace))
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(shims.len(), 1, "one shim serves {id}: {shims:?}");
    shims[0]
}

/// The mount namespaces (`mnt:[inode]`) among the open files of process `pid`.
fn mount_namespaces_held(pid: i32) -> Vec<std::path::PathBuf> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the shim's open files");
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("mnt:["))
        .collect()
}

#[test]
fn a_terminal_unikernel_gets_its_console_on_a_pty() {
    // `ctr run -t` needs a terminal of its own: util-linux's `script` gives it one.
    let test = "a_terminal_unikernel_gets_its_console_on_a_pty";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc", "script"]) else {
        return;
    };
    let image = "docker.io/library/pvh-tty:test";
    let _guest = import_pvh_unikernel(&ctrd, image, PvhBehaviour::PowerOff, "pvh-on-a-pty");
    let (sandbox, with_ns) = sandbox_with_ns();
    let out = ctr_on_a_pty(
        &ctrd,
        &format!("run -t --rm --runtime {RUNTIME} --with-ns {with_ns} {image} tty-guest"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pvh-on-a-pty"),
        "the guest's console did not reach the terminal: {stdout:?}\n{}",
        ctrd.log_tail(30)
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_sandbox_clean(&sandbox, "after the terminal guest");
    assert_nothing_left(&ctrd);
}
