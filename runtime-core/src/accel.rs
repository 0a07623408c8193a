//! Which accelerator a VMM gets, decided from what the shim probed on the host.
//!
//! The probe must predict what the VMM will do, not what `/dev/kvm` answers: on a nested,
//! paravirtual KVM a VM can be created but qemu's `-cpu host` aborts at the first vCPU reset
//! because the host KVM refuses an MSR qemu copies from the host CPU ("failed to set MSR
//! 0x10a"). So the shim runs qemu itself, as the guest will run it, reads which MSR was
//! refused, hides the CPU feature behind it and tries again. Only qemu has a TCG mode;
//! firecracker, cloud-hypervisor and solo5-hvt without KVM are refused with a message naming
//! them instead of failing later in ways that do not say why. solo5-spt runs the guest as a
//! seccomp-confined process and needs no accelerator at all.

use serde::{Deserialize, Serialize};

use crate::config::Hypervisor;
use crate::error::CoreError;
use crate::vmm::Accel;

/// The MSRs qemu copies from the host CPU for `-cpu host` and the qemu CPU feature that
/// makes it stop (`-cpu host,-<feature>`). Hiding a feature is a cost for the guest (with
/// `arch-capabilities` hidden a Linux guest assumes the CPU is vulnerable and turns on
/// mitigations), so a feature is hidden only when this host's KVM refused its MSR.
const MSR_FEATURES: [(u32, &str); 1] = [
    // IA32_ARCH_CAPABILITIES.
    (0x10a, "arch-capabilities"),
];

/// How many features one probe may hide before it gives up on KVM.
pub const MAX_HIDDEN_FEATURES: usize = MSR_FEATURES.len();

/// What the shim found about KVM for one VMM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvmProbe {
    /// The caller forced an accelerator (`URUNC_RS_ACCEL`).
    Forced(Accel),
    /// `/dev/kvm` does not open or does not create a VM; the text says why.
    Unusable(String),
    /// `/dev/kvm` creates a VM. For qemu, the probe also booted qemu's `-cpu host` with
    /// `hidden` features off: `qemu_error` is `None` when it survived, else its stderr.
    Usable {
        hidden: Vec<String>,
        qemu_error: Option<String>,
    },
}

/// The accelerator a VMM is started with and why; the reason goes to the shim log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccelChoice {
    pub accel: Accel,
    /// qemu CPU features turned off (`-cpu host,-<feature>`), KVM only.
    pub cpu_features_off: Vec<String>,
    pub reason: String,
}

/// What a qemu probe's outcome depends on: the boot (the kernel, its KVM module and the host
/// CPU) and the qemu binary. A probe recorded under the same key is reused by every shim of
/// the node instead of starting qemu again (about 150 ms per shim here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeKey {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The qemu binary's resolved path, size and modification time.
    pub program: String,
    pub size: u64,
    pub mtime_ns: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProbeRecord {
    key: ProbeKey,
    probe: KvmProbe,
}

/// The probe recorded in `bytes` when it was made under `key`.
pub fn recorded_probe(bytes: &[u8], key: &ProbeKey) -> Option<KvmProbe> {
    let record: ProbeRecord = serde_json::from_slice(bytes).ok()?;
    (record.key == *key).then_some(record.probe)
}

/// The bytes that record `probe` under `key`.
pub fn record_probe(key: &ProbeKey, probe: &KvmProbe) -> Vec<u8> {
    serde_json::to_vec(&ProbeRecord {
        key: key.clone(),
        probe: probe.clone(),
    })
    .expect("a probe record always serializes")
}

/// Whether the VMM can run a guest without KVM.
pub fn has_tcg(hypervisor: Hypervisor) -> bool {
    matches!(hypervisor, Hypervisor::Qemu | Hypervisor::Spt)
}

/// Whether the VMM needs `/dev/kvm` under the given accelerator (solo5-spt never does).
pub fn needs_kvm_device(hypervisor: Hypervisor, accel: Accel) -> bool {
    accel == Accel::Kvm && hypervisor != Hypervisor::Spt
}

/// The qemu CPU feature to hide after a failed `-cpu host` probe, read from qemu's stderr
/// ("failed to set MSR 0x10a to 0x69"); `None` when the failure is not a refused MSR this
/// table knows or the feature is already hidden.
pub fn feature_to_hide(qemu_stderr: &str, hidden: &[String]) -> Option<&'static str> {
    let msr = qemu_stderr.lines().find_map(|line| {
        let rest = line.split("failed to set MSR ").nth(1)?;
        let hex = rest.split_whitespace().next()?.trim_start_matches("0x");
        u32::from_str_radix(hex, 16).ok()
    })?;
    MSR_FEATURES
        .iter()
        .find(|(m, _)| *m == msr)
        .map(|(_, feature)| *feature)
        .filter(|feature| !hidden.iter().any(|h| h == feature))
}

/// The accelerator for `hypervisor` from the probe; refuses a KVM-only VMM without KVM.
pub fn choose(hypervisor: Hypervisor, probe: &KvmProbe) -> Result<AccelChoice, CoreError> {
    let name = hypervisor.as_str();
    if hypervisor == Hypervisor::Spt {
        // A seccomp-confined process, not a VM: /dev/kvm is neither needed nor given.
        return Ok(AccelChoice {
            accel: Accel::Tcg,
            cpu_features_off: Vec::new(),
            reason: "solo5-spt needs no accelerator".to_owned(),
        });
    }
    let tcg_or_refuse = |why: String| {
        if has_tcg(hypervisor) {
            Ok(AccelChoice {
                accel: Accel::Tcg,
                cpu_features_off: Vec::new(),
                reason: format!("falling back to TCG: {why}"),
            })
        } else {
            Err(CoreError::NeedsKvm {
                hypervisor: name.to_owned(),
                reason: why,
            })
        }
    };
    match probe {
        KvmProbe::Forced(Accel::Tcg) => tcg_or_refuse("TCG forced by the caller".to_owned()),
        KvmProbe::Forced(Accel::Kvm) => Ok(AccelChoice {
            accel: Accel::Kvm,
            cpu_features_off: Vec::new(),
            reason: "KVM forced by the caller".to_owned(),
        }),
        KvmProbe::Unusable(why) => tcg_or_refuse(format!("KVM is not usable: {why}")),
        KvmProbe::Usable {
            hidden,
            qemu_error: None,
        } => Ok(AccelChoice {
            accel: Accel::Kvm,
            cpu_features_off: if hypervisor == Hypervisor::Qemu {
                hidden.clone()
            } else {
                Vec::new()
            },
            reason: if hidden.is_empty() || hypervisor != Hypervisor::Qemu {
                "KVM usable".to_owned()
            } else {
                format!(
                    "KVM usable with CPU features this host's KVM cannot set turned off: {}",
                    hidden.join(", ")
                )
            },
        }),
        KvmProbe::Usable {
            qemu_error: Some(stderr),
            ..
        } => {
            if hypervisor != Hypervisor::Qemu {
                // Only qemu copies the host CPU; the others set their own CPUID.
                return Ok(AccelChoice {
                    accel: Accel::Kvm,
                    cpu_features_off: Vec::new(),
                    reason: "KVM usable".to_owned(),
                });
            }
            tcg_or_refuse(format!(
                "qemu -accel kvm -cpu host did not start: {}",
                last_lines(stderr, 3)
            ))
        }
    }
}

/// The last `n` non-empty lines of a program's stderr, joined with " | ", for one log line.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_MSR_ABORT: &str = "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\n\
        qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n";

    fn usable(hidden: &[&str], qemu_error: Option<&str>) -> KvmProbe {
        KvmProbe::Usable {
            hidden: hidden.iter().map(|s| s.to_string()).collect(),
            qemu_error: qemu_error.map(String::from),
        }
    }

    #[test]
    fn a_refused_msr_names_the_feature_to_hide_once() {
        assert_eq!(
            feature_to_hide(QEMU_MSR_ABORT, &[]),
            Some("arch-capabilities")
        );
        assert_eq!(
            feature_to_hide(QEMU_MSR_ABORT, &["arch-capabilities".into()]),
            None
        );
        assert_eq!(
            feature_to_hide("error: failed to set MSR 0x999 to 0x1", &[]),
            None
        );
        assert_eq!(
            feature_to_hide("Could not access KVM kernel module", &[]),
            None
        );
    }

    #[test]
    fn qemu_on_nested_kvm_gets_the_feature_hidden() {
        let choice = choose(Hypervisor::Qemu, &usable(&["arch-capabilities"], None)).unwrap();
        assert_eq!(choice.accel, Accel::Kvm);
        assert_eq!(choice.cpu_features_off, vec!["arch-capabilities"]);
        assert!(
            choice.reason.contains("arch-capabilities"),
            "{}",
            choice.reason
        );
        // Other VMMs set their own CPUID: nothing to hide for them.
        let fc = choose(
            Hypervisor::Firecracker,
            &usable(&["arch-capabilities"], None),
        )
        .unwrap();
        assert_eq!((fc.accel, fc.cpu_features_off.len()), (Accel::Kvm, 0));
    }

    #[test]
    fn qemu_falls_back_to_tcg_when_its_kvm_probe_dies_and_says_why() {
        let choice = choose(Hypervisor::Qemu, &usable(&[], Some(QEMU_MSR_ABORT))).unwrap();
        assert_eq!(choice.accel, Accel::Tcg);
        assert!(
            choice.reason.contains("failed to set MSR 0x10a"),
            "{}",
            choice.reason
        );
        let choice = choose(Hypervisor::Qemu, &KvmProbe::Unusable("no /dev/kvm".into())).unwrap();
        assert_eq!(choice.accel, Accel::Tcg);
        assert!(choice.reason.contains("no /dev/kvm"));
    }

    #[test]
    fn kvm_only_vmms_are_refused_under_tcg_by_name() {
        for hv in [
            Hypervisor::Firecracker,
            Hypervisor::CloudHypervisor,
            Hypervisor::Hvt,
        ] {
            for probe in [
                KvmProbe::Forced(Accel::Tcg),
                KvmProbe::Unusable("open /dev/kvm: No such file or directory".into()),
            ] {
                let error = choose(hv, &probe).unwrap_err();
                let text = error.to_string();
                assert!(text.contains(hv.as_str()), "{text}");
                assert!(text.contains("KVM"), "{text}");
            }
        }
    }

    #[test]
    fn spt_runs_without_kvm() {
        let choice = choose(Hypervisor::Spt, &KvmProbe::Unusable("none".into())).unwrap();
        assert_eq!(choice.accel, Accel::Tcg);
        let choice = choose(Hypervisor::Spt, &usable(&[], None)).unwrap();
        assert_eq!(
            choice.accel,
            Accel::Tcg,
            "no /dev/kvm for spt even where KVM works"
        );
        assert!(!needs_kvm_device(Hypervisor::Spt, Accel::Kvm));
        assert!(needs_kvm_device(Hypervisor::Hvt, Accel::Kvm));
    }

    #[test]
    fn forced_kvm_is_kept_as_is() {
        let choice = choose(Hypervisor::Qemu, &KvmProbe::Forced(Accel::Kvm)).unwrap();
        assert_eq!(
            (choice.accel, choice.cpu_features_off.len()),
            (Accel::Kvm, 0)
        );
    }

    #[test]
    fn a_recorded_probe_is_reused_only_under_the_same_key() {
        let key = ProbeKey {
            boot_id: "b1".into(),
            program: "/usr/bin/qemu-system-x86_64".into(),
            size: 10,
            mtime_ns: 5,
        };
        let probe = usable(&["arch-capabilities"], None);
        let bytes = record_probe(&key, &probe);
        assert_eq!(recorded_probe(&bytes, &key), Some(probe));
        let rebooted = ProbeKey {
            boot_id: "b2".into(),
            ..key.clone()
        };
        assert_eq!(recorded_probe(&bytes, &rebooted), None);
        let upgraded = ProbeKey {
            size: 11,
            ..key.clone()
        };
        assert_eq!(recorded_probe(&bytes, &upgraded), None);
        assert_eq!(recorded_probe(b"{not json", &key), None);
    }

    #[test]
    fn last_lines_keeps_the_tail_without_blank_lines() {
        assert_eq!(last_lines("a\n\nb\nc\n\n", 2), "b | c");
        assert_eq!(last_lines("", 3), "");
    }
}
