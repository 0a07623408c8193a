//! `containerd-shim-urunc-v2 check`: what this node can run, from facts the shim gathered.
//!
//! Modelled on `kata-runtime check`: one row per requirement, a verdict per row, and an exit
//! status that is non-zero when anything found is unusable. A VMM that is not installed is
//! "absent", not a failure (a node runs the VMMs it has); one that is installed but does not
//! run, or needs KVM where KVM is unusable, is "unusable".

use crate::accel::{self, AccelChoice};
use crate::config::Hypervisor;

/// Every VMM the shim can drive, in the order `check` lists them.
pub const CHECKED_VMMS: [Hypervisor; 5] = [
    Hypervisor::Qemu,
    Hypervisor::Firecracker,
    Hypervisor::CloudHypervisor,
    Hypervisor::Hvt,
    Hypervisor::Spt,
];

/// A row's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, with a limitation the detail names (e.g. qemu on TCG only).
    Degraded,
    /// Not installed: nothing to run, nothing broken.
    Absent,
    Unusable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Absent => "absent",
            Verdict::Unusable => "unusable",
        }
    }
}

/// One VMM as found on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmmFact {
    pub hypervisor: Hypervisor,
    pub program: String,
    /// `None`: not on the VMM's PATH. `Some(Ok(version line))` or `Some(Err(why))`.
    pub found: Option<Result<String, String>>,
    /// The accelerator choice for it (`accel::choose`), or the refusal text.
    pub accel: Result<AccelChoice, String>,
}

/// What the shim measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// `/dev/kvm` opens and creates a VM, or why not.
    pub kvm_device: Result<(), String>,
    pub vmms: Vec<VmmFact>,
    /// `/dev/net/tun` opens, or why not.
    pub tun: Result<(), String>,
    /// The layout [`CgroupLayout::from_mounts`] read, or why it could not be told.
    pub cgroup: Result<CgroupLayout, String>,
    /// The kernel has seccomp filters (`Seccomp:` in /proc/self/status), or why not.
    pub seccomp: Result<String, String>,
}

/// How the host mounts its cgroup hierarchies, read from a mount table (`/proc/self/mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Only v1 hierarchies: one mount per controller (or named hierarchy).
    V1 { hierarchies: usize },
    /// v1 hierarchies for the controllers plus a cgroup2 mount beside them (systemd's
    /// `/sys/fs/cgroup/unified`), which holds no controller the v1 mounts already have.
    Hybrid { hierarchies: usize, unified: String },
    /// One cgroup2 tree and no v1 hierarchy. `favordynmods`: mounted with that option.
    V2 { unified: String, favordynmods: bool },
}

impl CgroupLayout {
    /// The layout `mounts` shows (`/proc/self/mounts` format: device, mount point, type, ...);
    /// `None` when no cgroup filesystem is mounted.
    pub fn from_mounts(mounts: &str) -> Option<CgroupLayout> {
        let mut hierarchies = 0;
        let mut unified = None;
        for line in mounts.lines() {
            let mut fields = line.split_whitespace();
            let (Some(_), Some(mount_point), Some(fstype)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            match fstype {
                "cgroup" => hierarchies += 1,
                "cgroup2" if unified.is_none() => {
                    let favordynmods = fields
                        .next()
                        .is_some_and(|options| options.split(',').any(|o| o == "favordynmods"));
                    unified = Some((mount_point.to_owned(), favordynmods));
                }
                _ => {}
            }
        }
        match (hierarchies, unified) {
            (0, None) => None,
            (0, Some((unified, favordynmods))) => Some(CgroupLayout::V2 {
                unified,
                favordynmods,
            }),
            (hierarchies, None) => Some(CgroupLayout::V1 { hierarchies }),
            (hierarchies, Some((unified, _))) => Some(CgroupLayout::Hybrid {
                hierarchies,
                unified,
            }),
        }
    }

    /// The `check` row's detail.
    pub fn describe(&self) -> String {
        match self {
            CgroupLayout::V1 { hierarchies } => format!("v1 ({hierarchies} hierarchies)"),
            CgroupLayout::Hybrid {
                hierarchies,
                unified,
            } => format!("hybrid ({hierarchies} v1 hierarchies, cgroup2 at {unified})"),
            CgroupLayout::V2 { unified, .. } => format!("v2 (unified at {unified})"),
        }
    }

    /// Whether a VMM's move into its cgroup (its child writing `cgroup.procs` between fork and
    /// exec, on v2) waits for an RCU grace period: the kernel takes the threadgroup lock for
    /// write, and its first writer of a burst waits for one (5-25 ms measured on these 2-core
    /// VMs), unless a cgroup2 mount has `favordynmods`, which keeps that lock ready for writers
    /// (at some cost to every fork and exit). v1 and hybrid nodes never wait: there the child
    /// moves its one thread through `tasks`, which the kernel does without that lock.
    pub fn vmm_join_waits_for_grace_period(&self) -> bool {
        matches!(
            self,
            CgroupLayout::V2 {
                favordynmods: false,
                ..
            }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    pub item: String,
    pub verdict: Verdict,
    pub detail: String,
}

/// The table `check` prints, and whether the node is fully usable (exit status 0).
pub fn evaluate(facts: &NodeFacts) -> (Vec<CheckRow>, bool) {
    let row = |item: &str, verdict, detail: String| CheckRow {
        item: item.to_owned(),
        verdict,
        detail,
    };
    let mut rows = vec![match &facts.kvm_device {
        Ok(()) => row("kvm", Verdict::Ok, "/dev/kvm creates a VM".into()),
        // Only qemu and solo5-spt can do without: the VMM rows say which is affected.
        Err(why) => row("kvm", Verdict::Degraded, why.clone()),
    }];
    for vmm in &facts.vmms {
        rows.push(vmm_row(vmm));
    }
    let any_vmm = rows
        .iter()
        .skip(1)
        .any(|r| matches!(r.verdict, Verdict::Ok | Verdict::Degraded));
    if !any_vmm {
        rows.push(row(
            "vmm",
            Verdict::Unusable,
            "no usable VMM: install qemu-system-x86 or another supported VMM".into(),
        ));
    }
    rows.push(match &facts.tun {
        Ok(()) => row("/dev/net/tun", Verdict::Ok, "taps can be created".into()),
        Err(why) => row("/dev/net/tun", Verdict::Unusable, why.clone()),
    });
    rows.push(match &facts.cgroup {
        Ok(layout) if layout.vmm_join_waits_for_grace_period() => row(
            "cgroup",
            Verdict::Degraded,
            format!(
                "{}: each VMM start waits for an RCU grace period (5-25 ms) to join its \
                 cgroup; mount cgroup2 with favordynmods to avoid it",
                layout.describe()
            ),
        ),
        Ok(layout) => row("cgroup", Verdict::Ok, layout.describe()),
        Err(why) => row("cgroup", Verdict::Unusable, why.clone()),
    });
    rows.push(match &facts.seccomp {
        Ok(detail) => row("seccomp", Verdict::Ok, detail.clone()),
        // The VMM's own confinement and the spec's profile need it.
        Err(why) => row("seccomp", Verdict::Unusable, why.clone()),
    });
    let usable = rows.iter().all(|r| r.verdict != Verdict::Unusable);
    (rows, usable)
}

fn vmm_row(vmm: &VmmFact) -> CheckRow {
    let item = format!("{} ({})", vmm.hypervisor.as_str(), vmm.program);
    let (verdict, detail) = match (&vmm.found, &vmm.accel) {
        (None, _) => (Verdict::Absent, "not found on PATH".to_owned()),
        (Some(Err(why)), _) => (Verdict::Unusable, why.clone()),
        (Some(Ok(_)), Err(refused)) => (Verdict::Unusable, refused.clone()),
        (Some(Ok(version)), Ok(choice)) => {
            let verdict = if choice.accel == crate::Accel::Kvm
                || !accel::needs_kvm_device(vmm.hypervisor, crate::Accel::Kvm)
            {
                Verdict::Ok
            } else {
                Verdict::Degraded
            };
            let how = match (choice.accel, choice.cpu_features_off.is_empty()) {
                (crate::Accel::Kvm, true) => "KVM".to_owned(),
                (crate::Accel::Kvm, false) => {
                    format!("KVM, -cpu host,-{}", choice.cpu_features_off.join(",-"))
                }
                (crate::Accel::Tcg, _) if vmm.hypervisor == Hypervisor::Spt => {
                    "no accelerator needed".to_owned()
                }
                (crate::Accel::Tcg, _) => format!("TCG ({})", choice.reason),
            };
            (verdict, format!("{version}; {how}"))
        }
    };
    CheckRow {
        item,
        verdict,
        detail,
    }
}

/// The table as `check` prints it: fixed-width item and verdict columns.
pub fn render(rows: &[CheckRow]) -> String {
    let width = rows.iter().map(|r| r.item.len()).max().unwrap_or(0);
    let mut out = format!("{:<width$}  {:<9} {}\n", "ITEM", "VERDICT", "DETAIL");
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:<9} {}\n",
            r.item,
            r.verdict.as_str(),
            r.detail
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Accel;

    fn kvm(features: &[&str]) -> Result<AccelChoice, String> {
        Ok(AccelChoice {
            accel: Accel::Kvm,
            cpu_features_off: features.iter().map(|f| f.to_string()).collect(),
            reason: "KVM usable".into(),
        })
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            kvm_device: Ok(()),
            vmms: vec![
                VmmFact {
                    hypervisor: Hypervisor::Qemu,
                    program: "qemu-system-x86_64".into(),
                    found: Some(Ok("QEMU emulator version 7.2.22".into())),
                    accel: kvm(&["arch-capabilities"]),
                },
                VmmFact {
                    hypervisor: Hypervisor::Firecracker,
                    program: "firecracker".into(),
                    found: None,
                    accel: kvm(&[]),
                },
            ],
            tun: Ok(()),
            cgroup: Ok(CgroupLayout::V2 {
                unified: "/sys/fs/cgroup".into(),
                favordynmods: true,
            }),
            seccomp: Ok("filters supported".into()),
        }
    }

    #[test]
    fn a_usable_node_lists_every_row_and_passes() {
        let (rows, usable) = evaluate(&facts());
        assert!(usable);
        let table = render(&rows);
        assert!(table.starts_with("ITEM"), "{table}");
        assert!(table.contains("qemu (qemu-system-x86_64)  ok        QEMU emulator version 7.2.22; KVM, -cpu host,-arch-capabilities"), "{table}");
        assert!(
            table.contains("firecracker (firecracker)  absent    not found on PATH"),
            "{table}"
        );
        assert_eq!(rows.len(), 6);
    }

    #[test]
    fn without_kvm_qemu_is_degraded_and_firecracker_unusable() {
        let mut facts = facts();
        facts.kvm_device = Err("open /dev/kvm: No such file or directory".into());
        facts.vmms[0].accel = Ok(AccelChoice {
            accel: Accel::Tcg,
            cpu_features_off: vec![],
            reason: "falling back to TCG: KVM is not usable".into(),
        });
        facts.vmms[1].found = Some(Ok("Firecracker v1.17.0".into()));
        facts.vmms[1].accel = Err("firecracker needs KVM".into());
        let (rows, usable) = evaluate(&facts);
        assert!(!usable);
        assert_eq!(rows[0].verdict, Verdict::Degraded);
        assert_eq!(rows[1].verdict, Verdict::Degraded);
        assert_eq!(rows[2].verdict, Verdict::Unusable);
    }

    const V1_MOUNTS: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
";

    #[test]
    fn v1_hierarchies_with_a_unified_mount_beside_them_are_hybrid() {
        let hybrid = format!("{V1_MOUNTS}cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n");
        let layout = CgroupLayout::from_mounts(&hybrid).expect("a layout");
        assert_eq!(
            layout,
            CgroupLayout::Hybrid {
                hierarchies: 3,
                unified: "/sys/fs/cgroup/unified".into()
            }
        );
        assert_eq!(
            layout.describe(),
            "hybrid (3 v1 hierarchies, cgroup2 at /sys/fs/cgroup/unified)"
        );
    }

    #[test]
    fn v1_alone_and_v2_alone_keep_their_names() {
        let v1 = CgroupLayout::from_mounts(V1_MOUNTS).expect("v1");
        assert_eq!(v1.describe(), "v1 (3 hierarchies)");
        let v2 = CgroupLayout::from_mounts(
            "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n",
        )
        .expect("v2");
        assert_eq!(v2.describe(), "v2 (unified at /sys/fs/cgroup)");
        assert!(v2.vmm_join_waits_for_grace_period());
        let v2_dynmods = CgroupLayout::from_mounts(
            "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate,favordynmods 0 0\n",
        )
        .expect("v2");
        assert!(!v2_dynmods.vmm_join_waits_for_grace_period());
        assert!(!v1.vmm_join_waits_for_grace_period());
        assert_eq!(
            CgroupLayout::from_mounts("proc /proc proc rw 0 0\nshort line\n"),
            None
        );
    }

    #[test]
    fn v2_without_favordynmods_is_degraded_naming_the_option_and_still_usable() {
        let mut facts = facts();
        facts.cgroup = Ok(CgroupLayout::V2 {
            unified: "/sys/fs/cgroup".into(),
            favordynmods: false,
        });
        let (rows, usable) = evaluate(&facts);
        let cgroup = rows
            .iter()
            .find(|r| r.item == "cgroup")
            .expect("cgroup row");
        assert_eq!(cgroup.verdict, Verdict::Degraded);
        assert!(cgroup.detail.contains("favordynmods"), "{}", cgroup.detail);
        assert!(cgroup.detail.starts_with("v2 (unified at /sys/fs/cgroup)"));
        assert!(usable, "a slower join is not a failure");
        let (rows, _) = evaluate(&super::tests::facts());
        let cgroup = rows
            .iter()
            .find(|r| r.item == "cgroup")
            .expect("cgroup row");
        assert_eq!(cgroup.verdict, Verdict::Ok);
    }

    #[test]
    fn no_vmm_or_no_tun_makes_the_node_unusable() {
        let mut facts = facts();
        facts.vmms[0].found = None;
        let (rows, usable) = evaluate(&facts);
        assert!(!usable);
        assert!(rows
            .iter()
            .any(|r| r.item == "vmm" && r.verdict == Verdict::Unusable));
        let mut facts = self::facts();
        facts.tun = Err("open /dev/net/tun: No such device".into());
        assert!(!evaluate(&facts).1);
    }
}
