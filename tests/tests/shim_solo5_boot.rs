//! solo5 unikernels boot through containerd and our shim under solo5-hvt and solo5-spt built
//! from solo5's public sources: `$URUNC_TEST_SOLO5_DIR` is a built solo5 tree (its
//! `tenders/{hvt,spt}` and `tests/test_{hello,net}`); SKIPPED without it.
//!
//! test_hello declares no device: in a pod with a network it runs without one. test_net
//! declares its net device as `service0` (not the `service` a MirageOS kind implies): the
//! tender accepts the name the shim read from its manifest and starts the guest.

mod shim_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, ctr_ok, foreground_run, import_unikernel,
    prerequisites, sandbox_with_ns,
};
use urunc_tests::containerd::{ContainerdOptions, ACCEL_ENV};
use urunc_tests::guests::spawn_with_console;
use urunc_tests::shim_binary::locate_shim_binary;
use urunc_tests::PrivateContainerd;

struct Solo5 {
    dir: PathBuf,
}

fn solo5(test: &str, tender: &str) -> Option<Solo5> {
    let Some(dir) = std::env::var_os("URUNC_TEST_SOLO5_DIR").map(PathBuf::from) else {
        urunc_tests::skipped!(
            "SKIPPED: {test}: set URUNC_TEST_SOLO5_DIR to a solo5 tree built from its sources"
        );
        return None;
    };
    let program = dir.join(format!("tenders/{tender}/solo5-{tender}"));
    if !program.is_file() {
        urunc_tests::skipped!("SKIPPED: {test}: no {}", program.display());
        return None;
    }
    if tender == "hvt" && std::fs::File::open("/dev/kvm").is_err() {
        urunc_tests::skipped!("SKIPPED: {test}: solo5-hvt needs /dev/kvm");
        return None;
    }
    if !prerequisites(test, &["containerd", "ctr", "runc", "ip", "tc"]) {
        return None;
    }
    Some(Solo5 { dir })
}

impl Solo5 {
    fn containerd(&self, tender: &str) -> PrivateContainerd {
        let shim = locate_shim_binary().expect("shim built");
        let inherited = std::env::var("PATH").unwrap_or_default();
        let path = format!(
            "{}:{}:{inherited}",
            self.dir.join(format!("tenders/{tender}")).display(),
            shim.parent().expect("shim dir").display()
        );
        PrivateContainerd::start_with(ContainerdOptions {
            extra_env: vec![
                ("PATH".to_string(), path),
                // solo5-hvt has no TCG mode: let the shim's probe find KVM.
                (ACCEL_ENV.to_string(), "auto".to_string()),
            ],
            ..ContainerdOptions::default()
        })
        .expect("start a private containerd")
    }

    fn unikernel(&self, test: &str, tender: &str) -> PathBuf {
        self.dir
            .join(format!("tests/test_{test}/test_{test}.{tender}"))
    }
}

fn import_solo5(ctrd: &PrivateContainerd, dir: &Path, image: &str, kernel: &Path, tender: &str) {
    import_unikernel(
        ctrd,
        dir,
        image,
        kernel,
        None,
        &[("unikernelType", "mirage"), ("hypervisor", tender)],
    );
}

fn hello_runs_without_its_pods_network(tender: &str) {
    let test = format!("solo5_{tender}_hello_runs_without_its_pods_network");
    let Some(solo5) = solo5(&test, tender) else {
        return;
    };
    let ctrd = solo5.containerd(tender);
    let dir = tempfile::tempdir().expect("tempdir");
    let image = format!("docker.io/library/solo5-hello-{tender}:test");
    import_solo5(
        &ctrd,
        dir.path(),
        &image,
        &solo5.unikernel("hello", tender),
        tender,
    );
    let (sandbox, with_ns) = sandbox_with_ns();
    let mut run = foreground_run(&ctrd, &with_ns, &image, "hello");
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    let status = run
        .wait_within(Duration::from_secs(60))
        .expect("test_hello ends by itself");
    let text = console.text();
    assert!(
        text.contains("Hello, World") && text.contains("solo5_exit(0) called"),
        "console:\n{text}\ncontainerd:\n{}",
        ctrd.log_tail(60)
    );
    assert_eq!(status.code(), Some(0), "{text}");
    assert_sandbox_clean(&sandbox, "after test_hello");
    ctr_ok(&ctrd, &["container", "rm", "hello"]);
    assert_nothing_left(&ctrd);
}

fn net_gets_the_device_name_its_manifest_declares(tender: &str) {
    let test = format!("solo5_{tender}_net_gets_the_device_name_its_manifest_declares");
    let Some(solo5) = solo5(&test, tender) else {
        return;
    };
    let ctrd = solo5.containerd(tender);
    let dir = tempfile::tempdir().expect("tempdir");
    let image = format!("docker.io/library/solo5-net-{tender}:test");
    import_solo5(
        &ctrd,
        dir.path(),
        &image,
        &solo5.unikernel("net", tender),
        tender,
    );
    let (sandbox, with_ns) = sandbox_with_ns();
    let mut run = foreground_run(&ctrd, &with_ns, &image, "net");
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    // The guest starts only once the tender attached every declared device: a wrong name is
    // refused before it ("Resource not declared in manifest"). test_net then refuses the
    // MirageOS command line (`--ipv4=...`, it takes only `verbose` or `limit`) and exits 1.
    let status = run
        .wait_within(Duration::from_secs(60))
        .expect("test_net ends by itself");
    let text = console.text();
    assert!(
        text.contains("**** Solo5 standalone test_net ****"),
        "the guest did not start:\n{text}\ncontainerd:\n{}",
        ctrd.log_tail(80)
    );
    assert!(text.contains("Error in command line"), "{text}");
    assert_eq!(status.code(), Some(1), "{text}");
    let log = ctrd.log_tail(300);
    assert!(
        log.contains("--net:service0=") && log.contains("--net-mac:service0="),
        "the tender was not given the manifest's name:\n{log}"
    );
    assert_sandbox_clean(&sandbox, "after test_net");
    ctr_ok(&ctrd, &["container", "rm", "net"]);
    assert_nothing_left(&ctrd);
}

#[test]
fn solo5_hvt_hello_runs_without_its_pods_network() {
    hello_runs_without_its_pods_network("hvt");
}

#[test]
fn solo5_spt_hello_runs_without_its_pods_network() {
    hello_runs_without_its_pods_network("spt");
}

#[test]
fn solo5_hvt_net_gets_the_device_name_its_manifest_declares() {
    net_gets_the_device_name_its_manifest_declares("hvt");
}

#[test]
fn solo5_spt_net_gets_the_device_name_its_manifest_declares() {
    net_gets_the_device_name_its_manifest_declares("spt");
}

/// solo5-spt installs no SIGTERM handler, so as pid 1 of its pid namespace it never saw the
/// caller's SIGTERM (test_time then ran its 5 s to the end and exited 0). With a forwarding
/// init as pid 1 the SIGTERM reaches the tender and ends it at once (143).
#[test]
fn solo5_spt_stops_on_sigterm_in_its_own_pid_namespace() {
    let test = "solo5_spt_stops_on_sigterm_in_its_own_pid_namespace";
    let Some(solo5) = solo5(test, "spt") else {
        return;
    };
    let ctrd = solo5.containerd("spt");
    let dir = tempfile::tempdir().expect("tempdir");
    let image = "docker.io/library/solo5-time-spt:test";
    import_solo5(
        &ctrd,
        dir.path(),
        image,
        &solo5.unikernel("time", "spt"),
        "spt",
    );
    // ctr's default spec gives the container a pid namespace of its own.
    let mut run = ctrd.ctr_command(&["run", "--runtime", shim_support::RUNTIME, image, "time"]);
    let (console, mut run) = spawn_with_console(&mut run).expect("spawn ctr run");
    console
        .wait_for("[5] Sleeping for one second", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:?}\n{}\n{}", console.text(), ctrd.log_tail(60)));
    let asked = std::time::Instant::now();
    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGTERM", "time"]);
    let status = run
        .wait_within(Duration::from_secs(30))
        .expect("ctr run ends");
    let took = asked.elapsed();
    eprintln!(
        "solo5-spt: SIGTERM -> exit {:?} after {took:?}",
        status.code()
    );
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "the tender did not die of SIGTERM:\n{}",
        console.text()
    );
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
    assert!(
        !console.text().contains("[1] Sleeping"),
        "the guest ran to its end:\n{}",
        console.text()
    );
    ctr_ok(&ctrd, &["container", "rm", "time"]);
    assert_nothing_left(&ctrd);
}
