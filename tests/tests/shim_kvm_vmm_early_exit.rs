//! A KVM-only VMM that dies right after its start says why, as qemu does
//! (`shim_vmm_early_exit.rs`): given `/bin/true` as the kernel (an ELF whose entry lies below
//! 1 MiB), firecracker refuses it ("InvalidEntryAddress") and cloud-hypervisor too (it then
//! tries it as a bzImage: "Invalid bzImage"), both exit 1 within milliseconds of a successful
//! Start; `ctr run` shows the shim's one-line report with the VMM's words from its stderr, and
//! the shim's log says it too. SKIPPED without the VMM (CI installs neither).

mod shim_support;

use std::time::Duration;

use shim_support::kvm_vmm::kvm_vmm_containerd;
use shim_support::{assert_nothing_left, ctr, ctr_ok, import_unikernel, RUNTIME};
use urunc_tests::kvm_vmms::{KvmVmm, CLOUD_HYPERVISOR, FIRECRACKER};

/// `says`: the VMM's own words for the refusal, which must reach the report.
fn dies_at_once_and_says_why(test: &str, vmm: KvmVmm, says: &str) {
    let Some(env) = kvm_vmm_containerd(test, vmm) else {
        return;
    };
    let ctrd = &env.ctrd;
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = dir.path().join("true.elf");
    std::fs::copy("/bin/true", &kernel).expect("copy /bin/true");
    let image = format!("docker.io/library/not-a-kernel-{}:test", vmm.hypervisor);
    import_unikernel(
        ctrd,
        dir.path(),
        &image,
        &kernel,
        None,
        &[("hypervisor", vmm.hypervisor)],
    );
    let out = ctr(
        ctrd,
        &["run", "--runtime", RUNTIME, &image, "early"],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "{test}: ctr run exit {:?}; stderr:\n{stderr}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(1), "ctr run: {out:?}");
    let report = stderr
        .lines()
        .find(|l| l.starts_with("urunc-rs: ") && l.contains("ended with status 1 "))
        .unwrap_or_else(|| panic!("no exit report on the task's stderr: {stderr}"));
    assert!(report.contains("ms after its start"), "{report}");
    assert!(report.contains(says), "the VMM's reason missing: {report}");
    let log = ctrd.log_tail(200);
    assert!(
        log.lines()
            .any(|l| l.contains("the VMM died right after its start") && l.contains(says)),
        "the shim log lacks the report:\n{log}"
    );
    ctr_ok(ctrd, &["container", "rm", "early"]);
    assert_nothing_left(ctrd);
}

#[test]
fn firecracker_that_dies_at_once_says_why() {
    dies_at_once_and_says_why(
        "firecracker_that_dies_at_once_says_why",
        FIRECRACKER,
        "InvalidEntryAddress",
    );
}

#[test]
fn cloud_hypervisor_that_dies_at_once_says_why() {
    dies_at_once_and_says_why(
        "cloud_hypervisor_that_dies_at_once_says_why",
        CLOUD_HYPERVISOR,
        "Invalid bzImage",
    );
}
