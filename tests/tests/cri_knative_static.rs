//! urunc's static network for Knative: a unikernel container named
//! `user-container` gets 172.16.1.2 behind its tap (gateway 172.16.1.1),
//! masqueraded out of eth0, so the queue-proxy in the same pod can reach it
//! at a fixed address. After StopContainer no tap, no masquerade rule and no
//! forwarding switch of ours remain in the pod.

use std::time::{Duration, Instant};

use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::steps::{import_linux_guest_or_skip, stop_and_remove_pod};
use urunc_tests::cri::{container_config, node_or_skip};
use urunc_tests::guests::linux::{HTTP_ANSWER, HTTP_PORT, READY_MARKER};
use urunc_tests::sandbox::run;

const IMAGE: &str = "localhost/urunc-rs/linux-guest:knative";
const USER_CONTAINER: &str = "user-container";
const GUEST_IP: &str = "172.16.1.2";

/// The pod's nat rules and forwarding switch, read with `ip netns exec`.
fn nat_state(netns: &str) -> (String, String) {
    (
        run(
            "ip",
            &["netns", "exec", netns, "iptables", "-t", "nat", "-S"],
        )
        .expect("iptables -S"),
        run(
            "ip",
            &[
                "netns",
                "exec",
                netns,
                "cat",
                "/proc/sys/net/ipv4/ip_forward",
            ],
        )
        .expect("ip_forward"),
    )
}

#[test]
fn the_knative_user_container_answers_at_the_static_address() {
    let test = "the_knative_user_container_answers_at_the_static_address";
    let Some(node) = node_or_skip(
        test,
        &["qemu-system-x86_64", "ip", "tc", "iptables", "curl"],
    ) else {
        return;
    };
    if !import_linux_guest_or_skip(&node, test, IMAGE) {
        return;
    }
    let pod = node.run_pod("knative").expect("RunPodSandbox");
    let netns = pod.network.netns_name();
    let nat_before = nat_state(&netns);

    let id = node
        .create_container(&pod, &container_config(USER_CONTAINER, 0, IMAGE))
        .expect("CreateContainer");
    node.client().start_container(&id).expect("StartContainer");
    let (rules, forwarding) = nat_state(&netns);
    assert!(
        rules.contains("-A POSTROUTING -s 172.16.1.0/24 -o eth0 -j MASQUERADE"),
        "{rules}"
    );
    assert_eq!(forwarding.trim(), "1");

    let log = pod.log_dir.join(container_log_path(USER_CONTAINER, 0));
    let ready = format!("{READY_MARKER} {GUEST_IP}");
    assert!(
        wait_for_logged(
            &log,
            &ready,
            Duration::from_secs(120),
            Duration::from_millis(200)
        ),
        "no {ready:?} in the CRI log:\n{}",
        logged_text(&log).unwrap_or_default()
    );
    // From inside the pod, where Knative's queue-proxy runs.
    let url = format!("http://{GUEST_IP}:{HTTP_PORT}/");
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        match run(
            "ip",
            &[
                "netns",
                "exec",
                &netns,
                "curl",
                "-sS",
                "--max-time",
                "5",
                &url,
            ],
        ) {
            Ok(answer) if answer.contains(HTTP_ANSWER) => break answer,
            other => assert!(
                Instant::now() < deadline,
                "no answer at {url} in the pod: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(answer.trim(), HTTP_ANSWER);

    node.client()
        .stop_container(&id, 10)
        .expect("StopContainer");
    assert!(node.vmms().is_empty(), "the VMM survived StopContainer");
    let leftovers = node.pod_leftovers(&pod).expect("read the pod netns");
    assert!(leftovers.is_empty(), "left in the pod: {leftovers:?}");
    assert_eq!(
        nat_state(&netns),
        nat_before,
        "masquerade rule or ip_forward left in the pod"
    );
    node.client()
        .remove_container(&id)
        .expect("RemoveContainer");
    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}
