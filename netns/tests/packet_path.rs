//! A real packet path: a frame sent into the veth from outside the pod
//! reaches the process holding the tap, and a frame that process writes
//! leaves through eth0 to the outside.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use netns::NetnsPool;
use urunc_tests::sandbox::{SandboxNetns, PEER_IF};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/packet_path.py");

#[test]
fn frames_cross_the_redirect_both_ways() {
    if !require_root("frames_cross_the_redirect_both_ways") {
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        urunc_test_skip::skipped!(
            "SKIPPED: frames_cross_the_redirect_both_ways: python3 is not installed"
        );
        return;
    }
    let sandbox = SandboxNetns::create().unwrap();
    let peer_mac = sandbox
        .exec_peer("cat", &[&format!("/sys/class/net/{PEER_IF}/address")])
        .unwrap();
    let pool = NetnsPool::new();
    let rt = runtime();
    let (record, guest) = rt.block_on(attach_networked(&pool, &sandbox, request("pkt")));

    // The "VMM": holds the tap inside the sandbox, as qemu would.
    let mut tap_side = Command::new("ip")
        .args([
            "netns",
            "exec",
            sandbox.name(),
            "python3",
            SCRIPT,
            "tap",
            &record.tap,
        ])
        .args(["urunc-inbound", peer_mac.trim(), "urunc-outbound"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tap_side.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");

    let peer_side = Command::new("ip")
        .args([
            "netns",
            "exec",
            sandbox.peer_name(),
            "python3",
            SCRIPT,
            "peer",
            PEER_IF,
        ])
        .args([guest.mac.as_str(), "urunc-inbound", "urunc-outbound"])
        .output()
        .unwrap();
    let tap_status = tap_side.wait().unwrap();
    let tap_said: Vec<String> = lines.map_while(Result::ok).collect();
    rt.block_on(pool.detach(&record)).unwrap();

    assert!(
        tap_status.success(),
        "the inbound frame never reached the tap"
    );
    assert_eq!(tap_said, vec!["got".to_string()]);
    assert!(
        peer_side.status.success(),
        "the outbound frame never left through eth0: {}",
        String::from_utf8_lossy(&peer_side.stderr)
    );
    assert_sandbox_clean(&sandbox);
}
