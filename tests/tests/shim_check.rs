//! `containerd-shim-urunc-v2 check` prints what this node can run, one row per item, and its
//! exit status says whether anything found is unusable.

use std::process::{Command, Output};
use std::time::Duration;

use urunc_tests::shim_binary::locate_shim_binary;

const ITEMS: [&str; 9] = [
    "kvm",
    "qemu (qemu-system-x86_64)",
    "firecracker (firecracker)",
    "cloud-hypervisor (cloud-hypervisor)",
    "hvt (solo5-hvt)",
    "spt (solo5-spt)",
    "/dev/net/tun",
    "cgroup",
    "seccomp",
];

fn check(env: &[(&str, &str)]) -> Option<Output> {
    let shim = match locate_shim_binary() {
        Ok(shim) => shim,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: check: the shim is not built: {error}");
            return None;
        }
    };
    let mut command = Command::new(shim);
    command.arg("check").env_remove("URUNC_RS_ACCEL");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = urunc_tests::command::output_within(&mut command, Duration::from_secs(60))
        .expect("run check");
    eprintln!(
        "check {env:?} -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

/// The verdict column of the row for `item`.
fn verdict<'a>(table: &'a str, item: &str) -> &'a str {
    let line = table
        .lines()
        .find(|l| l.starts_with(item) && l[item.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {item}:\n{table}"));
    line[item.len()..]
        .split_whitespace()
        .next()
        .expect("verdict")
}

#[test]
fn check_prints_every_row_and_its_exit_status_follows_the_verdicts() {
    let Some(out) = check(&[]) else { return };
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("ITEM "), "{table}");
    let mut any_unusable = false;
    for item in ITEMS {
        let verdict = verdict(&table, item);
        assert!(
            ["ok", "degraded", "absent", "unusable"].contains(&verdict),
            "{item}: {verdict}"
        );
        any_unusable |= verdict == "unusable";
    }
    assert_eq!(out.status.code(), Some(if any_unusable { 1 } else { 0 }));
    // What is measured, not assumed: the kvm row agrees with /dev/kvm.
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !kvm_opens {
        assert_eq!(verdict(&table, "kvm"), "degraded");
    }
    // The cgroup row names the layout the mount table shows: v1 hierarchies with a cgroup2
    // mount beside them (these machines) are "hybrid", not "v1".
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    let mounted = |fstype: &str| {
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(fstype))
    };
    let layout = match (mounted("cgroup"), mounted("cgroup2")) {
        (true, true) => "hybrid (",
        (true, false) => "v1 (",
        (false, true) => "v2 (",
        (false, false) => "no cgroup hierarchy",
    };
    let cgroup_row = table
        .lines()
        .find(|l| l.starts_with("cgroup  "))
        .unwrap_or_else(|| panic!("no cgroup row:\n{table}"));
    assert!(
        cgroup_row.contains(layout),
        "{cgroup_row} (expected {layout})"
    );
    if urunc_tests::host_tools::which("qemu-system-x86_64", "").is_ok() {
        assert_ne!(verdict(&table, "qemu (qemu-system-x86_64)"), "absent");
        assert!(table.contains("QEMU emulator version"), "{table}");
    }
}

#[test]
fn forced_tcg_degrades_qemu_and_no_vmm_at_all_fails() {
    if urunc_tests::host_tools::which("qemu-system-x86_64", "").is_err() {
        urunc_tests::skipped!("SKIPPED: forced_tcg_degrades_qemu: qemu is not installed");
        return;
    }
    let Some(out) = check(&[("URUNC_RS_ACCEL", "tcg")]) else {
        return;
    };
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(verdict(&table, "qemu (qemu-system-x86_64)"), "degraded");
    assert!(table.contains("TCG forced by the caller"), "{table}");

    let empty = tempfile::tempdir().expect("tempdir");
    let path = empty.path().display().to_string();
    let Some(out) = check(&[("PATH", &path)]) else {
        return;
    };
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(verdict(&table, "vmm"), "unusable", "{table}");
    assert_eq!(verdict(&table, "qemu (qemu-system-x86_64)"), "absent");
    assert_eq!(out.status.code(), Some(1));
}
