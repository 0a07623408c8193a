//! The VMM's waiting process for real (root only), the static busybox as the "VMM": it execs
//! on Start with the stdio it was handed, a failed exec is Start's error naming the program
//! (its process handed back, to be waited for), and a process never started ends, whether dropped (the shim's death closes the same
//! socket) or abandoned (Delete, which waits for its exit).

use std::ffi::CString;
use std::fs::File;
use std::path::PathBuf;

use super::confined_run_tests::{busybox_confinement, preconditions, wait_for, Bundle, BUSYBOX};
use super::test_reaper;
use super::{Confinement, VmmLaunch, WaitingVmm};
use crate::spawn::{NamespacePlan, PidNamespace};
use crate::stdio::ProcessStdio;

/// `program` run as `argv`, in no namespace, cgroup or seccomp filter of its own.
fn launch(program: &str, argv: &[&str]) -> VmmLaunch {
    let c_string = |s: &str| CString::new(s).expect("no NUL");
    VmmLaunch {
        program: c_string(program),
        argv: argv.iter().map(|arg| c_string(arg)).collect(),
        env: vec![c_string("PATH=/bin")],
        cgroup_join: Vec::new(),
        namespaces: NamespacePlan::from_spec(&[]).expect("no namespaces"),
        pid_namespace: PidNamespace::Shim,
        seccomp: None,
    }
}

/// A bundle with one guest file, `kernel`, holding `contents`, and busybox's confinement.
fn busybox_in_bundle(contents: &[u8]) -> (Bundle, PathBuf, Confinement) {
    let bundle = Bundle::new();
    let kernel = bundle.guest_file("kernel", contents, None);
    let confinement = busybox_confinement(&bundle, kernel.clone());
    (bundle, kernel, confinement)
}

/// stdin from /dev/null, stdout and stderr to `out`.
fn stdio_to(out: &std::path::Path) -> ProcessStdio {
    let file = File::create(out).expect("output file");
    ProcessStdio {
        stdin: File::open("/dev/null").expect("/dev/null").into(),
        stdout: file.try_clone().expect("dup").into(),
        stderr: file.into(),
    }
}

#[tokio::test]
async fn a_waiting_vmm_execs_on_start_with_the_stdio_it_was_handed() {
    if !preconditions(&[BUSYBOX]) {
        return;
    }
    let (bundle, kernel, confinement) = busybox_in_bundle(b"guest kernel\n");
    let kernel = kernel.display().to_string();
    let launch = launch(
        BUSYBOX,
        &["busybox", "sh", "-c", &format!("cat {kernel}; ls /")],
    );
    let ready = WaitingVmm::fork(&confinement, &launch, &test_reaper::shared())
        .expect("fork")
        .ready()
        .expect("ready");
    let out = bundle.dir.path().join("out");
    let launched = ready.exec(stdio_to(&out)).expect("exec");
    assert_eq!(launched.exit.await.expect("exit status"), 0);
    let printed = std::fs::read_to_string(&out).expect("output");
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some("guest kernel"), "{printed}");
    // Its root is the confinement's, not the host's.
    let top: Vec<&str> = lines.collect();
    assert!(!top.contains(&"etc") && top.contains(&"proc"), "{printed}");
}

#[tokio::test]
async fn a_failed_exec_is_starts_error_naming_the_program() {
    if !preconditions(&[BUSYBOX]) {
        return;
    }
    let (bundle, _, confinement) = busybox_in_bundle(b"kernel");
    let absent = "/bin/not-in-the-confined-root";
    let launch = launch(absent, &["absent"]);
    let ready = WaitingVmm::fork(&confinement, &launch, &test_reaper::shared())
        .expect("fork")
        .ready()
        .expect("ready");
    let failed = ready
        .exec(stdio_to(&bundle.dir.path().join("out")))
        .err()
        .expect("the exec of a missing program fails");
    let message = failed.error.to_string();
    assert!(
        message.contains(&format!("exec {absent}")) && message.contains("errno 2"),
        "{message}"
    );
    // Handed back with the error, so that Delete waits for it before removing its cgroup.
    let pid = failed.process.pid();
    failed.process.abandon().await;
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "abandon returned before the failed process was gone"
    );
}

#[tokio::test]
async fn a_waiting_vmm_never_started_ends_dropped_or_abandoned() {
    if !preconditions(&[BUSYBOX]) {
        return;
    }
    let (_bundle, _, confinement) = busybox_in_bundle(b"kernel");
    let launch = launch(BUSYBOX, &["busybox", "true"]);
    let fork = || WaitingVmm::fork(&confinement, &launch, &test_reaper::shared()).expect("fork");
    let title = |pid: i32| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();

    let dropped = fork();
    let dropped_pid = dropped.pid();
    assert!(
        wait_for(|| title(dropped_pid).starts_with(b"urunc-vmm-wait")).await,
        "the waiting process is not titled urunc-vmm-wait"
    );
    drop(dropped);
    assert!(
        wait_for(|| !PathBuf::from(format!("/proc/{dropped_pid}")).exists()).await,
        "the dropped process did not end"
    );

    let abandoned = fork();
    let abandoned_pid = abandoned.pid();
    abandoned.abandon().await;
    assert!(
        !PathBuf::from(format!("/proc/{abandoned_pid}")).exists(),
        "abandon returned before the process was gone"
    );
}
