//! The fuzzing harness for `UruncConfig::resolve` + `plan_vmm`, shared by the
//! cargo-fuzz target (`fuzz_targets/resolve_and_plan.rs`) and the bounded
//! stable test (`tests/fuzz_like.rs`), which includes this file by path.
//!
//! Input layout: parts separated by 0xFF. Part 0 holds knob bytes (which
//! optional inputs exist, memory, vCPUs, arch...); then one part per urunc
//! key (empty = key absent); then `/urunc.json`; then `process.args` and
//! `process.env` (entries separated by 0xFE), extra kernel args, and a tap
//! name. Beyond "no panic", it checks properties that must hold for any
//! input: what `rootfs_relative` accepts stays beneath the root, and no
//! planned argv element or guest command line carries a control character.

use runtime_core::{
    decode_value, plan_vmm, rootfs_relative, Accel, Arch, GuestNetwork, UruncConfig, VmmInput,
    VmmPlan, ALL_KEYS,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Component, PathBuf};

pub const PART_SEPARATOR: u8 = 0xFF;
pub const ENTRY_SEPARATOR: u8 = 0xFE;

/// How far an input got; the stable test checks the spread so that it does
/// not pass vacuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    NotUnikernel,
    ConfigRefused,
    PlanRefused,
    Planned,
}

pub fn exercise(data: &[u8]) -> Outcome {
    let mut parts = data.split(|&b| b == PART_SEPARATOR);
    let knobs = parts.next().unwrap_or(&[]);
    let knob = |i: usize| knobs.get(i).copied().unwrap_or(0);

    let mut annotations = HashMap::new();
    for key in ALL_KEYS {
        let value = text(parts.next().unwrap_or(&[]));
        if value.is_empty() {
            continue;
        }
        check_value_functions(key, &value);
        annotations.insert(key.to_owned(), value);
    }
    let urunc_json = parts.next().filter(|_| knob(0) & 1 == 1);
    let args = entries(parts.next());
    let env = entries(parts.next());
    let extra_kernel_args = entries(parts.next());
    let tap = parts.next().map(text).filter(|t| !t.is_empty());

    let config = match UruncConfig::resolve(&annotations, urunc_json) {
        Ok(Some(config)) => config,
        Ok(None) => return Outcome::NotUnikernel,
        Err(_) => return Outcome::ConfigRefused,
    };
    let input = VmmInput {
        config,
        kernel: PathBuf::from("/run/urunc/fuzz/rootfs/kernel"),
        initrd: (knob(1) & 1 == 1).then(|| PathBuf::from("/run/urunc/fuzz/rootfs/initrd")),
        block: (knob(1) & 2 == 2).then(|| PathBuf::from("/dev/mapper/fuzz,1")),
        network: (knob(1) & 4 == 4).then(|| GuestNetwork {
            tap: tap.unwrap_or_else(|| "tap0_urunc".into()),
            mac: "02:00:00:00:00:01".into(),
            ipv4: Ipv4Addr::new(10, knob(2), knob(3), 2),
            prefix_len: knob(4) % 40,
            gateway: (knob(1) & 8 == 8).then(|| Ipv4Addr::new(10, knob(2), knob(3), 1)),
            mtu: u32::from(knob(5)) * 64,
        }),
        memory_limit_bytes: (knob(1) & 16 == 16).then(|| {
            let bytes: [u8; 8] = std::array::from_fn(|i| knob(6 + i));
            i64::from_le_bytes(bytes)
        }),
        vcpus: (knob(1) & 32 == 32).then(|| u32::from(knob(14))),
        env,
        args,
        guest_process: runtime_core::GuestProcess::default(),
        accel: if knob(0) & 2 == 2 {
            Accel::Kvm
        } else {
            Accel::Tcg
        },
        cpu_features_off: Vec::new(),
        solo5_manifest: None,
        shared_rootfs: None,
        firmware_dir: None,
        arch: if knob(0) & 4 == 4 {
            Arch::Aarch64
        } else {
            Arch::X86_64
        },
        seccomp: knob(0) & 8 == 8,
        control_socket: (knob(0) & 16 == 16).then(|| PathBuf::from("/run/urunc/fuzz/ctl.sock")),
        work_dir: PathBuf::from("/run/urunc/fuzz"),
        extra_kernel_args,
    };
    match plan_vmm(&input) {
        Ok(plan) => {
            check_plan(&input, &plan);
            Outcome::Planned
        }
        Err(_) => Outcome::PlanRefused,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn entries(part: Option<&[u8]>) -> Vec<String> {
    match part {
        None | Some([]) => Vec::new(),
        Some(bytes) => bytes.split(|&b| b == ENTRY_SEPARATOR).map(text).collect(),
    }
}

fn check_value_functions(key: &str, value: &str) {
    // Decoding may refuse, never panic.
    let _ = decode_value(key, value);
    if let Ok(path) = rootfs_relative(key, value) {
        assert!(path.is_relative(), "{value:?} -> {path:?} is not relative");
        assert!(
            path.components().all(|c| matches!(c, Component::Normal(_))),
            "{value:?} -> {path:?} keeps a non-normal component"
        );
    }
}

fn check_plan(input: &VmmInput, plan: &VmmPlan) {
    assert!(!plan.program.is_empty());
    for arg in &plan.args {
        assert!(
            !arg.chars().any(|c| c == '\0' || c == '\n'),
            "argv element {arg:?} carries NUL or newline"
        );
    }
    assert!(
        !plan.guest_cmdline.chars().any(char::is_control),
        "guest command line {:?} carries a control character",
        plan.guest_cmdline
    );
    if let Some(position) = plan.args.iter().position(|a| a == "-append") {
        assert_eq!(plan.args.get(position + 1), Some(&plan.guest_cmdline));
    }
    for file in &plan.files {
        assert!(
            file.path.starts_with(&input.work_dir),
            "{:?} is outside work_dir",
            file.path
        );
    }
}
