//! urunc's node configuration file (`/etc/urunc/config.toml`, here through `URUNC_RS_CONFIG`):
//! `[monitors.qemu]` defaults size a guest whose spec sets no limits, the snapshot is kept in
//! the container's state, and a bad value fails Create naming the key, leaving nothing;
//! `[log] level` sets the shim's level, `[timestamps]` writes urunc's timestamp lines and
//! `[monitors.qemu] data_path` is where qemu reads its firmware.

mod shim_support;

use std::process::Output;
use std::time::Duration;

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, ctr, ctr_ok, import_pvh_unikernel, kill_and_remove,
    prerequisites, run_detached_in, sandbox_with_ns, state_dir, RUNTIME,
};
use urunc_tests::containerd::ContainerdOptions;
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::PrivateContainerd;

const IMAGE: &str = "docker.io/library/pvh-node-config:test";
use shim_support::NODE_CONFIG_ENV as CONFIG_ENV;

fn containerd_with_config(config: &std::path::Path) -> PrivateContainerd {
    PrivateContainerd::start_with(ContainerdOptions {
        extra_env: vec![(CONFIG_ENV.to_string(), config.display().to_string())],
        ..ContainerdOptions::default()
    })
    .expect("start a private containerd")
}

#[test]
fn monitor_defaults_size_the_guest_and_the_snapshot_is_in_the_state() {
    let test = "monitor_defaults_size_the_guest_and_the_snapshot_is_in_the_state";
    if !prerequisites(
        test,
        &["containerd", "ctr", "runc", "qemu-system-x86_64", "ip"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[monitors.qemu]\ndefault_memory_mb = 300\ndefault_vcpus = 2\nturbo = true\n",
    )
    .expect("write config");
    let ctrd = containerd_with_config(&config);
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "cfg-ready");
    let (sandbox, with_ns) = sandbox_with_ns();
    run_detached_in(&ctrd, &with_ns, IMAGE, "cfg");

    let log = ctrd.log_tail(300);
    let planned = log
        .lines()
        .find(|l| l.contains("VMM planned") && l.contains("id=cfg"))
        .unwrap_or_else(|| panic!("no plan logged:\n{log}"));
    assert!(planned.contains("\"-m\", \"300M\""), "{planned}");
    assert!(planned.contains("\"-smp\", \"2\""), "{planned}");
    assert!(
        log.contains("monitors.qemu.turbo"),
        "the unknown key was not logged:\n{log}"
    );
    let state = std::fs::read_to_string(state_dir(&ctrd).join("cfg/state.json"))
        .expect("the container's state");
    let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
    assert_eq!(
        state["node_config"]["monitors"]["qemu"]["default_memory_mb"], 300,
        "{state}"
    );

    kill_and_remove(&ctrd, "cfg");
    assert_sandbox_clean(&sandbox, "after the guest");
    assert_nothing_left(&ctrd);
}

#[test]
fn a_bad_value_fails_create_naming_the_key_and_leaves_nothing() {
    let test = "a_bad_value_fails_create_naming_the_key_and_leaves_nothing";
    if !prerequisites(
        test,
        &["containerd", "ctr", "runc", "qemu-system-x86_64", "ip"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[monitors.qemu]\ndefault_vcpus = 0\n").expect("write config");
    let ctrd = containerd_with_config(&config);
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "cfg-ready");
    let (sandbox, with_ns) = sandbox_with_ns();
    let out = ctr(
        &ctrd,
        &[
            "run",
            "-d",
            "--runtime",
            RUNTIME,
            "--with-ns",
            &with_ns,
            IMAGE,
            "bad",
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad config must fail Create");
    assert!(
        stderr.contains("monitors.qemu.default_vcpus=0"),
        "the refusal does not name the key: {stderr}"
    );
    assert_sandbox_clean(&sandbox, "after the refused Create");
    // ctr leaves the container record when the task fails to create.
    let _ = ctr(&ctrd, &["container", "rm", "bad"], Duration::from_secs(30));
    assert_nothing_left(&ctrd);
}

/// The runtime options' `ConfigPath` (`ctr run --runtime-config-path`; CRI's `ConfigPath` in the
/// runtime's `options` table) names the configuration file for that container: it reaches the
/// shim at `start` (2.3+: inside the bootstrap parameters) and in Create, and is honoured, not
/// refused. A path that does not exist fails Create naming the option.
#[test]
fn the_runtime_options_config_path_names_the_configuration_file() {
    let test = "the_runtime_options_config_path_names_the_configuration_file";
    if !prerequisites(
        test,
        &["containerd", "ctr", "runc", "qemu-system-x86_64", "ip"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("urunc.toml");
    std::fs::write(&config, "[monitors.qemu]\ndefault_memory_mb = 272\n").expect("write config");
    let ctrd = PrivateContainerd::start().expect("start a private containerd");
    let _guest = import_pvh_unikernel(&ctrd, IMAGE, PvhBehaviour::HaltForever, "opt-ready");
    let (sandbox, with_ns) = sandbox_with_ns();
    let config_arg = config.display().to_string();
    let run = |id: &str, path: &str| {
        ctr(
            &ctrd,
            &[
                "run",
                "-d",
                "--runtime",
                RUNTIME,
                "--runtime-config-path",
                path,
                "--with-ns",
                &with_ns,
                IMAGE,
                id,
            ],
            Duration::from_secs(60),
        )
    };
    let out = run("opt", &config_arg);
    assert!(
        out.status.success(),
        "ctr run with --runtime-config-path: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ctrd.log_tail(40)
    );
    let log = ctrd.log_tail(300);
    let planned = log
        .lines()
        .find(|l| l.contains("VMM planned") && l.contains("id=opt"))
        .unwrap_or_else(|| panic!("no plan logged:\n{log}"));
    assert!(planned.contains("\"-m\", \"272M\""), "{planned}");
    kill_and_remove(&ctrd, "opt");

    let missing = dir.path().join("missing.toml").display().to_string();
    let out = run("opt-missing", &missing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a missing ConfigPath must fail");
    assert!(
        stderr.contains("ConfigPath") && stderr.contains(&missing),
        "the refusal does not name the option: {stderr}"
    );
    let _ = ctr(
        &ctrd,
        &["container", "rm", "opt-missing"],
        Duration::from_secs(30),
    );
    assert_sandbox_clean(&sandbox, "after both");
    assert_nothing_left(&ctrd);
}

const POWEROFF_IMAGE: &str = "docker.io/library/pvh-node-config-poweroff:test";

/// `ctr run` (foreground, no network) of the power-off guest with `config` as the runtime
/// options' `ConfigPath`.
fn run_with_config(ctrd: &PrivateContainerd, config: &std::path::Path, id: &str) -> Output {
    ctr(
        ctrd,
        &[
            "run",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            &config.display().to_string(),
            POWEROFF_IMAGE,
            id,
        ],
        Duration::from_secs(90),
    )
}

/// `[log] level` sets the shim's level (containerd's `-debug` can only make it more verbose, as
/// under urunc), and `[timestamps]` writes urunc's timestamp lines for Create and Start.
#[test]
fn the_log_level_is_honoured_and_timestamps_are_written_as_urunc_writes_them() {
    let test = "the_log_level_is_honoured_and_timestamps_are_written_as_urunc_writes_them";
    if !prerequisites(test, &["containerd", "ctr", "runc", "qemu-system-x86_64"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let timestamps = dir.path().join("timestamps.log");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nlevel = \"trace\"\n[timestamps]\nenabled = true\ndestination = {:?}\n",
            timestamps.display().to_string()
        ),
    )
    .expect("write config");
    let ctrd = containerd_with_config(&config);
    let _guest = import_pvh_unikernel(&ctrd, POWEROFF_IMAGE, PvhBehaviour::PowerOff, "ts-poweroff");
    let out = run_with_config(&ctrd, &config, "ts");
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", ctrd.log_tail(40));

    // Trace is below the -debug containerd passes: only the file's level lets this line out.
    let log = ctrd.log_tail(400);
    assert!(
        log.lines()
            .any(|l| l.contains("TRACE") && l.contains("node configuration read")),
        "no trace-level line in the shim log:\n{log}"
    );

    let text = std::fs::read_to_string(&timestamps).expect("the timestamps file");
    eprintln!("urunc timestamps:\n{text}");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert_eq!(l["containerID"], "ts", "{l}");
            l["timestampID"].as_str().expect("timestampID")
        })
        .collect();
    assert_eq!(
        ids,
        ["TS00", "TS01", "TS02", "TS17", "TS16", "TS07", "TS10", "TS11", "TS18"],
        "{text}"
    );
    assert_eq!(lines[0]["timestampName"], "CR.invoked");
    assert_eq!(lines[8]["timestampOrder"], 18);
    let times: Vec<u64> = lines
        .iter()
        .map(|l| l["time"].as_u64().expect("unix nanoseconds"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{text}");
    ctr_ok(&ctrd, &["container", "rm", "ts"]);
    assert_nothing_left(&ctrd);
}

/// `[monitors.qemu] data_path` is where qemu's data comes from, as urunc reads it: qemu gets
/// `-L <data_path>/qemu` and, confined, sees that folder instead of the host's
/// /usr/share/qemu. A copy of qemu's data boots the guest; an empty one does not; a data_path
/// without a qemu folder fails Create naming the key and leaves nothing.
#[test]
fn data_path_is_the_folder_qemu_reads_its_firmware_from() {
    let test = "data_path_is_the_folder_qemu_reads_its_firmware_from";
    if !prerequisites(
        test,
        &["containerd", "ctr", "runc", "qemu-system-x86_64", "cp"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config_for = |name: &str, share: &std::path::Path| {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[monitors.qemu]\ndata_path = {:?}\n",
                share.display().to_string()
            ),
        )
        .expect("write config");
        config
    };
    let copied = dir.path().join("copied");
    std::fs::create_dir(&copied).expect("mkdir");
    for data in ["qemu", "seabios"] {
        let status = std::process::Command::new("cp")
            .args(["-rL", &format!("/usr/share/{data}")])
            .arg(copied.join(data))
            .status()
            .expect("cp");
        assert!(status.success(), "cp -rL /usr/share/{data}");
    }
    let emptied = dir.path().join("emptied");
    std::fs::create_dir_all(emptied.join("qemu")).expect("mkdir");
    let missing = dir.path().join("missing");
    std::fs::create_dir(&missing).expect("mkdir");

    let ctrd = PrivateContainerd::start().expect("start a private containerd");
    let _guest = import_pvh_unikernel(
        &ctrd,
        POWEROFF_IMAGE,
        PvhBehaviour::PowerOff,
        "data-poweroff",
    );
    let out = run_with_config(&ctrd, &config_for("copied", &copied), "data");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("data-poweroff") && out.status.success(),
        "{out:?}\n{}",
        ctrd.log_tail(40)
    );
    let log = ctrd.log_tail(300);
    let planned = log
        .lines()
        .find(|l| l.contains("VMM planned") && l.contains("id=data"))
        .unwrap_or_else(|| panic!("no plan logged:\n{log}"));
    let firmware = format!("\"-L\", \"{}\"", copied.join("qemu").display());
    assert!(planned.contains(&firmware), "{planned}");
    ctr_ok(&ctrd, &["container", "rm", "data"]);

    let out = run_with_config(&ctrd, &config_for("emptied", &emptied), "data-empty");
    eprintln!(
        "qemu with an empty data_path: {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "the guest booted without its firmware: {out:?}"
    );
    assert!(
        ctrd.log_tail(300)
            .contains("the VMM died right after its start"),
        "{}",
        ctrd.log_tail(60)
    );
    let _ = ctr(
        &ctrd,
        &["container", "rm", "data-empty"],
        Duration::from_secs(30),
    );

    let out = run_with_config(&ctrd, &config_for("missing", &missing), "data-missing");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a data_path without qemu must fail");
    assert!(
        stderr.contains("monitors.qemu.data_path")
            && stderr.contains(&missing.display().to_string()),
        "the refusal does not name the key and the value: {stderr}"
    );
    let _ = ctr(
        &ctrd,
        &["container", "rm", "data-missing"],
        Duration::from_secs(30),
    );
    assert_nothing_left(&ctrd);
}

/// The local syslog socket this test binds (the host has none), removed when dropped.
struct SyslogSocket(std::os::unix::net::UnixDatagram);

impl Drop for SyslogSocket {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(SYSLOG_SOCKET) {
            eprintln!("remove {SYSLOG_SOCKET}: {error}");
        }
    }
}

const SYSLOG_SOCKET: &str = "/dev/log";

/// `[log] syslog = true`: the shim's lines also reach the local syslog socket, one datagram
/// each, tagged `urunc` with their severity, as urunc's syslog hook sends them.
#[test]
fn syslog_true_sends_the_shim_s_lines_to_the_local_syslog_socket() {
    let test = "syslog_true_sends_the_shim_s_lines_to_the_local_syslog_socket";
    if !prerequisites(test, &["containerd", "ctr", "runc", "qemu-system-x86_64"]) {
        return;
    }
    if std::path::Path::new(SYSLOG_SOCKET).exists() {
        urunc_tests::skipped!("SKIPPED: {test}: {SYSLOG_SOCKET} exists (a syslog daemon runs)");
        return;
    }
    let socket =
        SyslogSocket(std::os::unix::net::UnixDatagram::bind(SYSLOG_SOCKET).expect("bind /dev/log"));
    // Drained while the container runs, as a syslog daemon would: the shim drops what a full
    // queue cannot take.
    let reader = socket.0.try_clone().expect("clone the socket");
    reader
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut received = Vec::new();
            let mut buf = vec![0; 65536];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = reader.recv(&mut buf) {
                    received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
            received
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[log]\nsyslog = true\n").expect("write config");
    let ctrd = containerd_with_config(&config);
    let _guest = import_pvh_unikernel(
        &ctrd,
        POWEROFF_IMAGE,
        PvhBehaviour::PowerOff,
        "syslog-poweroff",
    );
    let out = run_with_config(&ctrd, &config, "syslog");
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", ctrd.log_tail(40));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let received = drain.join().expect("the drain thread");
    let planned = received
        .iter()
        .find(|d| d.contains("VMM planned") && d.contains("id=syslog"))
        .unwrap_or_else(|| panic!("no plan line reached syslog: {received:?}"));
    // daemon.info: 3 * 8 + 6.
    assert!(planned.starts_with("<30>urunc["), "{planned}");
    ctr_ok(&ctrd, &["container", "rm", "syslog"]);
    assert_nothing_left(&ctrd);
}
