//! A Linux unikernel (Debian's kernel, a busybox initramfs) in a pod: it
//! takes the pod IP the CNI gave eth0, answers HTTP on port 8080 at that IP
//! from the host side of the CNI bridge, and its console reaches the CRI
//! container log. StopContainer (SIGTERM, grace period) stops it and leaves
//! the pod network as the CNI made it.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use urunc_tests::cri::log::wait_for_logged;
use urunc_tests::cri::log::{logged_text, read_records};
use urunc_tests::cri::pod::container_log_path;
use urunc_tests::cri::steps::{assert_exited, import_linux_guest_or_skip, stop_and_remove_pod};
use urunc_tests::cri::{container_config, node_or_skip};
use urunc_tests::guests::linux::{HTTP_ANSWER, HTTP_PORT, READY_MARKER};

const IMAGE: &str = "localhost/urunc-rs/linux-guest:cri";
const GRACE_SECONDS: i64 = 10;

/// One HTTP/1.0 GET to `address`; the whole answer.
fn http_get(address: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn a_linux_unikernel_answers_at_the_pod_ip_and_logs_to_the_cri_log() {
    let test = "a_linux_unikernel_answers_at_the_pod_ip_and_logs_to_the_cri_log";
    let Some(node) = node_or_skip(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    if !import_linux_guest_or_skip(&node, test, IMAGE) {
        return;
    }
    let pod = node.run_pod("linux").expect("RunPodSandbox");
    let pod_ip: IpAddr = pod
        .network
        .ip
        .parse()
        .unwrap_or_else(|_| panic!("pod IP {:?}", pod.network.ip));

    let id = node
        .create_container(&pod, &container_config("linux", 0, IMAGE))
        .expect("CreateContainer");
    node.client().start_container(&id).expect("StartContainer");
    let log = pod.log_dir.join(container_log_path("linux", 0));
    let ready = format!("{READY_MARKER} {pod_ip}");
    assert!(
        wait_for_logged(
            &log,
            &ready,
            Duration::from_secs(120),
            Duration::from_millis(200)
        ),
        "no {ready:?} in the CRI log {}:\n{}\ncontainerd:\n{}",
        log.display(),
        logged_text(&log).unwrap_or_default(),
        node.containerd().log_tail(30)
    );
    let records = read_records(&log).expect("CRI log records");
    assert!(records
        .iter()
        .any(|record| record.stream == "stdout" && record.text.contains(&ready)));

    let address = SocketAddr::new(pod_ip, HTTP_PORT);
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        match http_get(address) {
            Ok(answer) if answer.contains(HTTP_ANSWER) => break answer,
            other => assert!(
                Instant::now() < deadline,
                "the guest did not answer at {address} from the host: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "the guest answered at {address}: {}",
        answer.lines().next().unwrap_or_default()
    );

    node.client()
        .stop_container(&id, GRACE_SECONDS)
        .expect("StopContainer");
    assert_exited(&node, &id);
    assert!(
        node.vmms().is_empty(),
        "the VMM survived StopContainer: {:?}",
        node.vmms()
    );
    let leftovers = node.pod_leftovers(&pod).expect("read the pod netns");
    assert!(
        leftovers.is_empty(),
        "left in the pod after StopContainer: {leftovers:?}"
    );
    node.client()
        .remove_container(&id)
        .expect("RemoveContainer");
    stop_and_remove_pod(&node, &pod);
    node.stop().expect("nothing left when the node stops");
}
