//! urunc's static network mode (Knative `user-container`): a real Linux guest
//! behind the tap answers at 172.16.1.2 from inside the pod namespace, and
//! after detach no tap, no masquerade rule and no forwarding switch remain.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use netns::{AttachOutcome, NetnsError, NetnsPool, NetworkMode, STATIC_GUEST_IP, STATIC_TAP_IP};
use urunc_tests::guests::linux::{microvm_qemu_args, HTTP_ANSWER, HTTP_PORT, READY_MARKER};
use urunc_tests::guests::{kernel_cmdline, linux_guest, ConsoleWatcher, GuestNetwork, KillOnDrop};
use urunc_tests::sandbox::{run, SandboxNetns};

const BOOT_LIMIT: Duration = Duration::from_secs(120);

fn skip_reason() -> Option<String> {
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("qemu-system-x86_64 is not installed".into());
    }
    if Command::new("iptables").arg("--version").output().is_err() {
        return Some("iptables is not installed".into());
    }
    urunc_tests::guests::linux::find_kernel()
        .err()
        .map(|e| e.to_string())
}

/// nat rules and the forwarding switch of the sandbox.
fn nat_state(sandbox: &SandboxNetns) -> (String, String) {
    (
        sandbox.exec("iptables", &["-t", "nat", "-S"]).unwrap(),
        sandbox
            .exec("cat", &["/proc/sys/net/ipv4/ip_forward"])
            .unwrap(),
    )
}

#[test]
fn static_guest_answers_in_the_pod_and_leaves_nothing() {
    if !require_root("static_guest_answers_in_the_pod_and_leaves_nothing") {
        return;
    }
    if let Some(reason) = skip_reason() {
        urunc_test_skip::skipped!(
            "SKIPPED: static_guest_answers_in_the_pod_and_leaves_nothing: {reason}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guest_image = linux_guest(dir.path()).unwrap();
    let sandbox = SandboxNetns::create().unwrap();
    let before = sandbox.snapshot().unwrap();
    let nat_before = nat_state(&sandbox);
    let pool = NetnsPool::new();
    let rt = runtime();

    let outcome = rt
        .block_on(pool.attach_in_mode(&sandbox.path(), request("knative"), NetworkMode::StaticNat))
        .unwrap();
    let AttachOutcome::Attached { record, guest } = outcome else {
        panic!("the pod has eth0: {outcome:?}");
    };
    assert_eq!(guest.ipv4, STATIC_GUEST_IP);
    assert_eq!(guest.gateway, Some(STATIC_TAP_IP));
    assert_eq!(guest.prefix_len, 24);
    let (rules, forwarding) = nat_state(&sandbox);
    assert!(
        rules.contains("-A POSTROUTING -s 172.16.1.0/24 -o eth0 -j MASQUERADE"),
        "{rules}"
    );
    assert_eq!(forwarding.trim(), "1");
    // A second guest network in the same pod is refused, in either mode.
    for mode in [NetworkMode::StaticNat, NetworkMode::Redirect] {
        let err = rt
            .block_on(pool.attach_in_mode(&sandbox.path(), request("second"), mode))
            .unwrap_err();
        assert!(
            matches!(err, NetnsError::StaticInUse { .. }),
            "{mode:?}: {err}"
        );
    }

    let network = GuestNetwork {
        address: STATIC_GUEST_IP,
        gateway: STATIC_TAP_IP,
        prefix_len: 24,
        hostname: "knative".into(),
        device: "eth0".into(),
    };
    let cmdline = kernel_cmdline(Some(&network), false).unwrap();
    let mut qemu = KillOnDrop(
        Command::new("ip")
            .args(["netns", "exec", sandbox.name(), "qemu-system-x86_64"])
            .args(microvm_qemu_args(&guest_image, &cmdline, Some(&record.tap)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let console = ConsoleWatcher::new(qemu.0.stdout.take().unwrap());
    let booted = console.wait_for(&format!("{READY_MARKER} {STATIC_GUEST_IP}"), BOOT_LIMIT);
    let url = format!("http://{STATIC_GUEST_IP}:{HTTP_PORT}/");
    let answer = booted
        .map_err(anyhow::Error::from)
        .and_then(|_| sandbox.exec("curl", &["-sS", "--max-time", "10", &url]));
    drop(qemu);
    rt.block_on(pool.detach(&record)).unwrap();

    let answer = answer.unwrap_or_else(|e| panic!("{e:#}\nconsole:\n{}", console.text()));
    assert_eq!(answer.trim(), HTTP_ANSWER);
    assert_eq!(sandbox.snapshot().unwrap(), before);
    assert_eq!(
        nat_state(&sandbox),
        nat_before,
        "masquerade rule or ip_forward left"
    );
    assert_eq!(pool.live_workers(), 0);
    assert!(run("ip", &["-n", sandbox.name(), "addr", "show"])
        .unwrap()
        .contains("10.200.0.2"));
}
