//! A bounded, stable-Rust stand-in for `cargo fuzz run resolve_and_plan`:
//! the same harness over a few thousand inputs from a seeded generator that
//! mixes valid urunc values, known-hostile fragments and random bytes, so
//! that most inputs get past `resolve` and reach `plan_vmm`.

#[path = "../fuzz/harness.rs"]
mod harness;

use harness::{exercise, Outcome, ENTRY_SEPARATOR, PART_SEPARATOR};
use std::collections::HashMap;

/// SplitMix64: small, seedable, good enough to spread inputs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const HOSTILE: &[&str] = &[
    "..",
    "/../..",
    "a\nb",
    "a\0b",
    "\"",
    "\" init=/bin/sh \"",
    " -- ",
    "-append",
    ",",
    "b64:",
    "b64:!!",
    "=",
    "\t",
    "é",
    "init=/x",
    "",
    " ",
    "--",
    "'",
    "windows",
    "vmware",
    "yes",
    "/",
    "data",
    "/mnt x",
];

/// Valid values per urunc key, in `ALL_KEYS` order (invalid ones come from
/// `HOSTILE`).
fn key_values(key_index: usize) -> &'static [&'static str] {
    match key_index {
        0 => &[
            "linux",
            "unikraft",
            "rumprun",
            "mirage",
            "mewz",
            "freebsd",
            "bGludXg=",
            "b64:dW5pa3JhZnQ=",
        ],
        1 => &["0.16.1", "0.15.0", "v0.17-rc1", "garbage"],
        2 => &["/unikernel/kernel", "kernel", "L3VuaWtlcm5lbC9rZXJuZWw="],
        3 => &[
            "/bin/app -p 8080",
            "/init",
            "hello world",
            "--ipv4-only=true",
        ],
        4 => &[
            "qemu",
            "firecracker",
            "hvt",
            "spt",
            "cloud-hypervisor",
            "cWVtdQ==",
        ],
        5 => &["/unikernel/initrd", "initrd"],
        6 => &["/disk.img"],
        7 => &["/data"],
        8 => &["true", "false", "1"],
        9 => &["false", "true"],
        10 => &["service0", "tap", "net0"],
        _ => &["storage", "rootfs", "disk0"],
    }
}

const ARGS: &[&str] = &[
    "/bin/app",
    "-p",
    "8080",
    "a b",
    "",
    "--",
    "/init",
    "/urunit",
    "x=y",
    "--ipv4=1.2.3.4/8",
];
const ENV: &[&str] = &[
    "PATH=/bin",
    "GREETING=hello world",
    "lower=x",
    "A.B=c",
    "NOVALUE",
    "X=\"",
    "HOME=/",
];
const KERNEL_ARGS: &[&str] = &["tsc_early_khz=2000000", "quiet", "a b", "--"];

/// A fragment: a plausible value, except one time in `one_in` when it is
/// hostile, random bytes, or a plausible value with a hostile tail.
fn fragment(rng: &mut SplitMix64, plausible: &[&str], one_in: usize) -> Vec<u8> {
    if rng.below(one_in) != 0 {
        return rng.pick(plausible).as_bytes().to_vec();
    }
    match rng.below(3) {
        0 => rng.pick(HOSTILE).as_bytes().to_vec(),
        1 => format!("{}{}", rng.pick(plausible), rng.pick(HOSTILE)).into_bytes(),
        _ => (0..rng.below(12))
            .map(|_| (rng.next() % 0xFE) as u8)
            .collect(),
    }
}

fn entries(rng: &mut SplitMix64, plausible: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..rng.below(4) {
        if i > 0 {
            out.push(ENTRY_SEPARATOR);
        }
        out.extend(fragment(rng, plausible, 4));
    }
    out
}

fn generate(rng: &mut SplitMix64) -> Vec<u8> {
    // Knobs avoid the separator byte so that parts stay aligned.
    let mut data: Vec<u8> = (0..16).map(|_| (rng.next() % 0xFE) as u8).collect();
    for key_index in 0..runtime_core::ALL_KEYS.len() {
        data.push(PART_SEPARATOR);
        // Required keys are present most of the time so that plans happen.
        let present = key_index == 0 || key_index == 2 || key_index == 4 || rng.below(3) == 0;
        if present {
            data.extend(fragment(rng, key_values(key_index), 25));
        }
    }
    data.push(PART_SEPARATOR);
    if rng.below(4) == 0 {
        let json = format!(
            r#"{{"com.urunc.unikernel.unikernelType":"{}"}}"#,
            rng.pick(key_values(0))
        );
        data.extend(json.into_bytes());
    }
    for plausible in [ARGS, ENV, KERNEL_ARGS] {
        data.push(PART_SEPARATOR);
        data.extend(entries(rng, plausible));
    }
    data.push(PART_SEPARATOR);
    if rng.below(5) == 0 {
        data.extend(fragment(rng, &["tap0_urunc", "tap1_urunc"], 2));
    }
    data
}

#[test]
fn thousands_of_generated_inputs_never_panic() {
    const INPUTS: u64 = 5000;
    let mut rng = SplitMix64(0x5EED_F012_1000);
    let mut outcomes: HashMap<Outcome, u64> = HashMap::new();
    for _ in 0..INPUTS {
        let data = generate(&mut rng);
        *outcomes.entry(exercise(&data)).or_default() += 1;
    }
    // Each stage must be reached often, or the test exercises too little.
    for outcome in [
        Outcome::ConfigRefused,
        Outcome::PlanRefused,
        Outcome::Planned,
    ] {
        let count = outcomes.get(&outcome).copied().unwrap_or(0);
        assert!(
            count >= INPUTS / 20,
            "{outcome:?} reached only {count} times of {INPUTS}: {outcomes:?}"
        );
        eprintln!("{outcome:?}: {count}");
    }
}

#[test]
fn truly_random_bytes_never_panic() {
    let mut rng = SplitMix64(42);
    for _ in 0..2000 {
        let len = rng.below(300);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&data);
    }
}
