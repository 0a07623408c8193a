//! The shim gives each containerd what it understands: task API v3 through 2.3+'s bootstrap
//! protocol, v2 (a plain address) to 1.6/1.7, a `RuntimeInfo` to `-info`. Run against the
//! containerd `URUNC_TEST_CONTAINERD` selects; CI runs it against both.

mod shim_support;

use std::io::Write;
use std::process::{Command, Stdio};

use shim_support::{
    assert_nothing_left, containerd, ctr_ok, import_pvh_unikernel, kill_and_remove,
    run_detached_in, sandbox_with_ns, RUNTIME,
};
use urunc_tests::containerd::ContainerdVersion;
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::shim_binary::locate_shim_binary;

const IMAGE: &str = "docker.io/library/pvh-halt-versions:test";

#[test]
fn each_containerd_is_answered_in_its_task_api_and_logs_no_complaint() {
    let test = "each_containerd_is_answered_in_its_task_api_and_logs_no_complaint";
    let Some(ctrd) = containerd(test, &["qemu-system-x86_64", "ip", "tc"]) else {
        return;
    };
    let version = ctrd.version();
    let served = ctr_ok(&ctrd, &["version"]);
    // A build from the module proxy calls itself `2.4.2+unknown`, a release `v2.4.2`.
    let expected_server: &[&str] = match version {
        ContainerdVersion::Debian16 => &["Version:  1.6"],
        ContainerdVersion::V2 => &["Version:  2.", "Version:  v2."],
    };
    let server = served.split("Server:").nth(1).unwrap_or_default();
    assert!(
        expected_server.iter().any(|prefix| server.contains(prefix)),
        "{} selected, but containerd says:\n{served}",
        version.label()
    );
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "versions-ready");
    let (_sandbox, with_ns) = sandbox_with_ns();
    run_detached_in(&ctrd, &with_ns, IMAGE, "versions");
    kill_and_remove(&ctrd, "versions");

    let log = std::fs::read_to_string(ctrd.log_path()).expect("read containerd's log");
    let started_for = format!("started for task API v{}", version.task_api());
    assert!(
        log.lines()
            .any(|line| line.contains(&started_for) && line.contains("shim serving")),
        "the shim's log does not say `{started_for}`:\n{}",
        ctrd.log_tail(60)
    );
    if version == ContainerdVersion::V2 {
        // containerd 2.x logs how it connects: protocol and version from the bootstrap answer.
        assert!(
            log.lines()
                .any(|line| line.contains("connecting to shim") && line.contains("version=3")),
            "containerd 2.x did not connect with task API v3:\n{}",
            ctrd.log_tail(60)
        );
    }
    let complaints = ctrd.complaints_about_shims();
    assert!(
        complaints.is_empty(),
        "containerd complained: {complaints:#?}"
    );
    assert_nothing_left(&ctrd);
    println!(
        "{}: task API v{}, no complaint",
        version.label(),
        version.task_api()
    );
}

/// `-info` as containerd 2.2+ runs it: the runtime options on stdin, a `RuntimeInfo` protobuf
/// on stdout. (The message is checked field by field in the shim's unit tests; here the real
/// binary answers.)
#[test]
fn info_answers_a_runtime_info_echoes_its_options_and_refuses_another_runtimes() {
    let shim = locate_shim_binary().expect("build the shim first");
    let answer = Command::new(&shim)
        .arg("-info")
        .stdin(Stdio::null())
        .output()
        .expect("run -info");
    assert!(answer.status.success(), "{answer:?}");
    for expected in [
        RUNTIME.as_bytes(),
        b"types.containerd.io/opencontainers/runtime-spec/1/features/Features",
        b"\"mountExtensions\"",
        // The delegate runc's mount options (Debian's runc 1.1.5 lists rro): containerd 2.x's
        // CRI allows recursive read-only mounts only for a handler whose features list it.
        b"\"rro\"",
    ] {
        assert!(
            answer
                .stdout
                .windows(expected.len())
                .any(|window| window == expected),
            "-info lacks {:?}",
            String::from_utf8_lossy(expected)
        );
    }

    // runtimeoptions.v1.Options{config_path: "/etc/urunc/config.toml"} in an Any: echoed.
    let path = b"/etc/urunc/config.toml";
    let mut options = vec![0x12, path.len() as u8];
    options.extend_from_slice(path);
    let any = any_of(b"runtimeoptions.v1.Options", &options);
    let echoed = info_with(&shim, &any);
    assert!(echoed.status.success(), "{echoed:?}");
    assert!(
        echoed
            .stdout
            .windows(path.len())
            .any(|window| window == path),
        "-info does not echo the options"
    );
    // Another runtime's options: refused naming their type.
    let refused = info_with(&shim, &any_of(b"containerd.runc.v1.Options", &[]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(stderr.contains("containerd.runc.v1.Options"), "{stderr}");
}

/// A protobuf `Any` of `type_url` and `value` (both under 128 bytes).
fn any_of(type_url: &[u8], value: &[u8]) -> Vec<u8> {
    let mut any = vec![0x0a, type_url.len() as u8];
    any.extend_from_slice(type_url);
    any.extend_from_slice(&[0x12, value.len() as u8]);
    any.extend_from_slice(value);
    any
}

/// `<shim> -info` with `stdin` on its standard input.
fn info_with(shim: &std::path::Path, stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(shim)
        .arg("-info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run -info");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write options");
    child.wait_with_output().expect("wait -info")
}
