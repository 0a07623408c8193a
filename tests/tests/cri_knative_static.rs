//! urunc's static network for Knative: a unikernel container named
//! `user-container` gets 172.16.1.2 behind its tap (gateway 172.16.1.1),
//! masqueraded out of eth0, so the queue-proxy in the same pod can reach it
//! at a fixed address. After StopContainer no tap, no masquerade rule and no
//! forwarding switch of ours remain in the pod.
//!
//! Knative's queue-proxy (a plain container, on runc) gets urunc's rewrite:
//! its `SERVING_READINESS_PROBE` host becomes 172.16.1.2 and `REDIRECT_IP` is
//! set. The test's queue-proxy (busybox) probes the host its probe names and
//! reaches the guest there.

use std::time::{Duration, Instant};

use urunc_tests::cri::log::logged_text;
use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::steps::{import_linux_guest_or_skip, stop_and_remove_pod};
use urunc_tests::cri::{container_config, node_or_skip};
use urunc_tests::guests::linux::{HTTP_ANSWER, HTTP_PORT, READY_MARKER};
use urunc_tests::images::busybox_image;
use urunc_tests::sandbox::run;

use netns::STATIC_GUEST_IP as GUEST_IP;
use runtime_core::knative::{QUEUE_PROXY, USER_CONTAINER};

const IMAGE: &str = "localhost/urunc-rs/linux-guest:knative";
const QUEUE_PROXY_IMAGE: &str = "localhost/urunc-rs/busybox:queue-proxy";
/// What Knative writes: the user container's probe, aimed at the pod's loopback.
const KNATIVE_PROBE: &str =
    r#"{"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}"#;

/// A queue-proxy stand-in: prints the probe host and REDIRECT_IP it was given, then asks the
/// probe's host for the guest's page, as the real queue-proxy's probe would connect there.
fn queue_proxy_config() -> k8s_cri::v1::ContainerConfig {
    let mut config = container_config(QUEUE_PROXY, 0, QUEUE_PROXY_IMAGE);
    config.envs = vec![k8s_cri::v1::KeyValue {
        key: "SERVING_READINESS_PROBE".into(),
        value: KNATIVE_PROBE.into(),
    }];
    config.command = vec![
        "sh".into(),
        "-c".into(),
        format!(
            "host=$(echo \"$SERVING_READINESS_PROBE\" | sed 's/.*\"host\":\"\\([^\"]*\\)\".*/\\1/'); \
             echo \"QP-PROBE-HOST $host QP-REDIRECT $REDIRECT_IP\"; \
             for i in 1 2 3 4 5 6 7 8 9 10; do \
               answer=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \"$host\" {HTTP_PORT} | tail -n 1); \
               [ -n \"$answer\" ] && break; sleep 1; done; \
             echo \"QP-ANSWER $answer\"; trap 'exit 0' TERM; while :; do sleep 1; done"
        ),
    ];
    config
}

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

    // The queue-proxy, on runc in the same pod, is pointed at the guest.
    let archive = busybox_image(&node.scratch_dir(), QUEUE_PROXY_IMAGE).expect("busybox image");
    node.import_image(&archive, QUEUE_PROXY_IMAGE)
        .expect("import the busybox image");
    let queue_proxy = node
        .create_container(&pod, &queue_proxy_config())
        .expect("CreateContainer queue-proxy");
    node.client()
        .start_container(&queue_proxy)
        .expect("StartContainer queue-proxy");
    let proxy_log = pod.log_dir.join(container_log_path(QUEUE_PROXY, 0));
    for expected in [
        format!("QP-PROBE-HOST {GUEST_IP} QP-REDIRECT {GUEST_IP}"),
        format!("QP-ANSWER {HTTP_ANSWER}"),
    ] {
        assert!(
            wait_for_logged(
                &proxy_log,
                &expected,
                Duration::from_secs(60),
                Duration::from_millis(200)
            ),
            "no {expected:?} in the queue-proxy's log:\n{}",
            logged_text(&proxy_log).unwrap_or_default()
        );
    }
    node.client()
        .stop_container(&queue_proxy, 10)
        .expect("StopContainer queue-proxy");
    node.client()
        .remove_container(&queue_proxy)
        .expect("RemoveContainer queue-proxy");

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
