//! With no accelerator forced, the shim's KVM probe predicts what qemu will do: on a nested
//! KVM whose `-cpu host` aborts ("failed to set MSR 0x10a") the guest still boots, with the
//! refused CPU feature turned off or on TCG after a logged fallback, and its console reaches
//! `ctr`. Before the probe, the shim passed `-cpu host` and qemu died a moment after Start.

mod shim_support;

use std::time::Duration;

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, ctr_ok, foreground_run, import_pvh_unikernel,
    prerequisites, sandbox_with_ns,
};
use urunc_tests::containerd::{ContainerdOptions, ACCEL_ENV};
use urunc_tests::guests::{spawn_with_console, PvhBehaviour};
use urunc_tests::PrivateContainerd;

const IMAGE: &str = "docker.io/library/pvh-accel-probe:test";
const MARKER: &str = "URUNC-ACCEL-PROBE-BOOTED";

#[test]
fn with_no_accelerator_forced_a_qemu_guest_boots_and_prints_its_console() {
    let test = "with_no_accelerator_forced_a_qemu_guest_boots_and_prints_its_console";
    if !prerequisites(test, &["containerd", "ctr", "runc", "qemu-system-x86_64"]) {
        return;
    }
    // `auto` is the shim's "not forced": the harness otherwise forces TCG.
    let ctrd = PrivateContainerd::start_with(ContainerdOptions {
        extra_env: vec![(ACCEL_ENV.to_string(), "auto".to_string())],
        ..ContainerdOptions::default()
    })
    .expect("start a private containerd");
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, MARKER);
    let (sandbox, with_ns) = sandbox_with_ns();

    let mut run = foreground_run(&ctrd, &with_ns, IMAGE, "probe");
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let booted = console.wait_for(MARKER, Duration::from_secs(60));
    let log = ctrd.log_tail(200);
    assert!(
        booted.is_ok(),
        "no console output from the guest: {booted:?}\nconsole:\n{}\ncontainerd:\n{log}",
        console.text()
    );
    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "probe"]);
    run.wait_within(Duration::from_secs(30))
        .expect("SIGKILL ends the VMM: ctr run ends");

    // The choice and its reason are in the shim's log, whichever way the probe went.
    let log = ctrd.log_tail(400);
    let chosen = log
        .lines()
        .find(|l| l.contains("accelerator") && l.contains("reason"))
        .unwrap_or_else(|| panic!("the accelerator choice was not logged:\n{log}"));
    let kvm_usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm_usable {
        assert!(
            chosen.contains("Kvm") || chosen.contains("falling back to TCG"),
            "{chosen}"
        );
    } else {
        assert!(chosen.contains("KVM is not usable"), "{chosen}");
    }
    eprintln!("accelerator chosen here: {chosen}");
    if let Some(before) = log.lines().find(|l| l.contains("unikernel container")) {
        eprintln!("create began: {before}");
    }

    assert_sandbox_clean(&sandbox, "after the guest powered off");
    ctr_ok(&ctrd, &["container", "rm", "probe"]);
    assert_nothing_left(&ctrd);
}
