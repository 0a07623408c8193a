//! A VMM that dies right after its start: why reaches the user. qemu refuses a kernel that is
//! an ELF without a PVH note ("Error loading uncompressed kernel without PVH ELF Note") and
//! exits 1 within milliseconds of a successful Start; `ctr run` shows qemu's words and the
//! shim's one-line report on its stderr, and the shim's log says it too.

mod shim_support;

use std::time::Duration;

use shim_support::{assert_nothing_left, containerd, ctr, ctr_ok, import_unikernel, RUNTIME};

const IMAGE: &str = "docker.io/library/not-a-kernel:test";
const QEMU_SAYS: &str = "without PVH ELF Note";

#[test]
fn a_vmm_that_dies_at_once_says_why_to_ctr_and_in_the_shim_log() {
    let test = "a_vmm_that_dies_at_once_says_why_to_ctr_and_in_the_shim_log";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Any x86_64 ELF program: qemu's microvm loads only PVH ELF kernels.
    let kernel = dir.path().join("true.elf");
    std::fs::copy("/bin/true", &kernel).expect("copy /bin/true");
    import_unikernel(&ctrd, dir.path(), IMAGE, &kernel, None, &[]);

    let out = ctr(
        &ctrd,
        &["run", "--runtime", RUNTIME, IMAGE, "early"],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "ctr run: {out:?}");
    assert!(
        stderr.contains(QEMU_SAYS),
        "qemu's reason missing: {stderr}"
    );
    let report = stderr
        .lines()
        .find(|l| l.starts_with("urunc-rs: qemu-system-x86_64 ended with status 1 "))
        .unwrap_or_else(|| panic!("no exit report on the task's stderr: {stderr}"));
    assert!(report.contains("ms after its start"), "{report}");
    let log = ctrd.log_tail(200);
    assert!(
        log.lines()
            .any(|l| l.contains("the VMM died right after its start") && l.contains(QEMU_SAYS)),
        "the shim log lacks the report:\n{log}"
    );
    ctr_ok(&ctrd, &["container", "rm", "early"]);
    assert_nothing_left(&ctrd);
}
