//! A Linux guest (Debian's kernel, a busybox initramfs built by the harness) boots under
//! qemu/TCG through our shim, takes the sandbox's eth0 address over the tap and tc redirect, is
//! reachable from the peer namespace, and its console reaches `ctr`'s stdout.

mod shim_support;

use std::time::Duration;

use shim_support::{
    assert_nothing_left, containerd, ctr_ok, eventually, foreground_run, import_unikernel,
    sandbox_with_ns,
};
use urunc_tests::guests::linux::{HTTP_ANSWER, HTTP_PORT, READY_MARKER};
use urunc_tests::guests::{linux_guest, spawn_with_console};
use urunc_tests::sandbox::{NetSnapshot, SANDBOX_IP};

const IMAGE: &str = "docker.io/library/linux-guest:test";

#[test]
fn linux_guest_answers_from_the_peer_and_its_console_reaches_ctr() {
    let test = "linux_guest_answers_from_the_peer_and_its_console_reaches_ctr";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc", "busybox"]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let guest = match linux_guest(dir.path()) {
        Ok(guest) => guest,
        Err(error) => {
            urunc_tests::skipped!("SKIPPED: {test}: no bootable Linux guest here: {error}");
            return;
        }
    };
    import_unikernel(
        &ctrd,
        dir.path(),
        IMAGE,
        &guest.kernel,
        Some(&guest.initrd),
        &[],
    );
    let (sandbox, with_ns) = sandbox_with_ns();

    // Foreground `ctr run`: the guest's serial console is the task's stdout.
    let mut run = foreground_run(&ctrd, &with_ns, IMAGE, "linux");
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    // The guest prints the marker and the address it took from eth0.
    let boot = console.wait_for(
        &format!("{READY_MARKER} {SANDBOX_IP}"),
        Duration::from_secs(120),
    );
    assert!(
        boot.is_ok(),
        "no ready marker on ctr's stdout: {boot:?}\nconsole:\n{}\ncontainerd:\n{}",
        console.text(),
        ctrd.log_tail(40)
    );

    // A raw HTTP request through busybox nc (Debian's static busybox wget crashes on the host).
    let url = format!("http://{SANDBOX_IP}:{HTTP_PORT}/");
    let request =
        format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {SANDBOX_IP} {HTTP_PORT}");
    let mut answer = String::new();
    let answered = eventually(Duration::from_secs(30), || {
        match sandbox.exec_peer("sh", &["-c", &request]) {
            Ok(body) => {
                answer = body;
                answer.contains(HTTP_ANSWER)
            }
            Err(_) => false,
        }
    });
    assert!(
        answered,
        "the guest did not answer {url} from the peer: {answer:?}\n{}",
        console.text()
    );

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "linux"]);
    let status = run
        .wait_within(Duration::from_secs(30))
        .expect("ctr run ends");
    assert_eq!(status.code(), Some(137));
    let snapshot = NetSnapshot::take(Some(sandbox.name())).expect("snapshot");
    assert!(
        snapshot.urunc_taps().is_empty()
            && snapshot.filters.is_empty()
            && snapshot.ingress_qdiscs().is_empty(),
        "{snapshot:?}"
    );
    ctr_ok(&ctrd, &["container", "rm", "linux"]);
    assert_nothing_left(&ctrd);
}
