//! Bad input refused at Create with an error naming the field and the value, and nothing left:
//! no state, no mount, no tap, no VMM.

mod shim_support;

use std::collections::BTreeMap;
use std::time::Duration;

use shim_support::{assert_nothing_left, containerd, ctr, vmms_mentioning, RUNTIME};
use urunc_pack::{host_architecture, LayerEntry, OciImage};
use urunc_tests::guests::{pvh_guest, PvhBehaviour};
use urunc_tests::sandbox::{NetSnapshot, SandboxNetns};

const IMAGE: &str = "docker.io/library/pvh-hostile:test";

/// An image whose configuration comes only from `--annotation`s: a good kernel and links that
/// lead out of the rootfs.
fn hostile_image(dir: &std::path::Path) -> std::path::PathBuf {
    let kernel = pvh_guest(dir, PvhBehaviour::HaltForever, "never-booted").expect("pvh guest");
    let image = OciImage {
        name: IMAGE.to_string(),
        architecture: host_architecture().to_string(),
        entries: vec![
            LayerEntry::HostFile {
                path: "/unikernel/kernel".into(),
                host: kernel,
            },
            LayerEntry::Symlink {
                path: "/unikernel/abs-link".into(),
                target: "/etc/passwd".into(),
            },
            LayerEntry::Symlink {
                path: "/unikernel/rel-link".into(),
                target: "../../../../../../etc/passwd".into(),
            },
        ],
        labels: BTreeMap::new(),
        ..OciImage::default()
    };
    let archive = dir.join("hostile.tar");
    image.write_archive(&archive).expect("write image");
    archive
}

const TYPE: &str = "com.urunc.unikernel.unikernelType";
const HYPERVISOR: &str = "com.urunc.unikernel.hypervisor";
const BINARY: &str = "com.urunc.unikernel.binary";
const INITRD: &str = "com.urunc.unikernel.initrd";
/// An override under this key is `ctr run`'s flag (the spec's `linux.cgroupsPath`), not an
/// annotation.
const CTR_CGROUP_FLAG: &str = "--cgroup";

/// A hostile Create: its name, the urunc keys it overrides, the netns it joins, and what the
/// error must mention.
type BadCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, Vec<&'a str>);

#[test]
fn hostile_configurations_are_refused_at_create_and_leave_nothing() {
    let test = "hostile_configurations_are_refused_at_create_and_leave_nothing";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    ctrd.import(&hostile_image(dir.path())).expect("import");
    let sandbox = SandboxNetns::create().expect("sandbox netns");
    let good_ns = format!("network:{}", sandbox.path().display());
    let not_a_netns = dir.path().join("not-a-netns");
    std::fs::write(&not_a_netns, b"plain file").expect("write");
    let bad_ns = format!("network:{}", not_a_netns.display());
    let own_mount_ns_path = format!("].path=/proc/{}/ns/mnt", std::process::id());
    let own_mount_ns = format!("mount:/proc/{}/ns/mnt", std::process::id());

    // (case, overrides of the good configuration, --with-ns, what the error must mention)
    let cases: Vec<BadCase> = vec![
        (
            "unknown-type",
            vec![(TYPE, "plan9")],
            &good_ns,
            vec![TYPE, "plan9"],
        ),
        (
            "unknown-hypervisor",
            vec![(HYPERVISOR, "bochs")],
            &good_ns,
            vec![HYPERVISOR, "bochs"],
        ),
        (
            "bad-base64",
            vec![(BINARY, "b64:%%%not-base64%%%")],
            &good_ns,
            vec![BINARY, "base64"],
        ),
        (
            "dotdot-escape",
            vec![(BINARY, "/../../etc/passwd")],
            &good_ns,
            vec![BINARY, "/../../etc/passwd", "escapes"],
        ),
        (
            "absolute-symlink",
            vec![(BINARY, "/unikernel/abs-link")],
            &good_ns,
            vec![BINARY, "/unikernel/abs-link", "escapes"],
        ),
        (
            "relative-symlink",
            vec![(INITRD, "/unikernel/rel-link")],
            &good_ns,
            vec![INITRD, "/unikernel/rel-link", "escapes"],
        ),
        (
            "missing-binary",
            vec![(BINARY, "/unikernel/missing")],
            &good_ns,
            vec![BINARY, "/unikernel/missing", "does not exist"],
        ),
        // FreeBSD boots from a disk or a 9p share: an initrd is refused after the network
        // was attached, which is undone.
        (
            "freebsd-with-initrd",
            vec![(TYPE, "freebsd"), (INITRD, "/unikernel/kernel")],
            &good_ns,
            vec![INITRD, "\"/unikernel/kernel\"", "freebsd"],
        ),
        // The tests' containerd forces TCG (`URUNC_RS_ACCEL`): the KVM-only VMMs are refused
        // before anything is looked up or made.
        (
            "firecracker-under-tcg",
            vec![(HYPERVISOR, "firecracker")],
            &good_ns,
            vec![HYPERVISOR, "\"firecracker\"", "needs KVM"],
        ),
        (
            "cloud-hypervisor-under-tcg",
            vec![(HYPERVISOR, "cloud-hypervisor")],
            &good_ns,
            vec![HYPERVISOR, "\"cloud-hypervisor\"", "needs KVM"],
        ),
        // A real mount namespace (this test's), but the VMM's is the confined root the shim
        // builds.
        (
            "mount-namespace-path",
            vec![],
            &own_mount_ns,
            vec!["linux.namespaces[", &own_mount_ns_path, "mount namespace"],
        ),
        // Made beside the network's attach: refused once the tap exists, which is undone.
        (
            "cgroups-path-escape",
            vec![(CTR_CGROUP_FLAG, "/../escape")],
            &good_ns,
            vec!["linux.cgroupsPath", "/../escape", "without `..`"],
        ),
        (
            "not-a-netns",
            vec![],
            &bad_ns,
            vec![
                "not a network namespace",
                not_a_netns.to_str().expect("utf-8"),
            ],
        ),
    ];

    for (case, overrides, with_ns, needles) in cases {
        let mut config = vec![
            (TYPE, "linux"),
            (HYPERVISOR, "qemu"),
            (BINARY, "/unikernel/kernel"),
        ];
        for (key, value) in overrides {
            config.retain(|(k, _)| *k != key);
            config.push((key, value));
        }
        let (flags, config): (Vec<_>, Vec<_>) =
            config.into_iter().partition(|(k, _)| k.starts_with("--"));
        let annotations: Vec<String> = config.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["run", "-d", "--runtime", RUNTIME, "--with-ns", with_ns];
        for (flag, value) in flags {
            args.extend([flag, value]);
        }
        for annotation in &annotations {
            args.extend(["--annotation", annotation.as_str()]);
        }
        args.extend([IMAGE, case]);
        let out = ctr(&ctrd, &args, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: Create accepted it");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{case}: error lacks {needle:?}: {stderr}"
            );
        }
        let _ = ctr(&ctrd, &["container", "rm", case], Duration::from_secs(30));

        let snapshot = NetSnapshot::take(Some(sandbox.name())).expect("snapshot");
        assert!(snapshot.urunc_taps().is_empty(), "{case}: tap left");
        assert!(
            snapshot.filters.is_empty(),
            "{case}: filters left: {:?}",
            snapshot.filters
        );
        assert!(snapshot.ingress_qdiscs().is_empty(), "{case}: qdiscs left");
        assert!(
            vmms_mentioning(&ctrd.dir().display().to_string()).is_empty(),
            "{case}: VMM started"
        );
        let bundle_rootfs = ctrd.bundle_dir(case).join("rootfs");
        assert!(
            !urunc_tests::mounts::mounts_under(&bundle_rootfs)
                .expect("mounts")
                .iter()
                .any(|m| m == &bundle_rootfs),
            "{case}: rootfs still mounted"
        );
        assert!(
            !shim_support::state_dir(&ctrd).join(case).exists(),
            "{case}: state left"
        );
    }
    assert_nothing_left(&ctrd);
}
