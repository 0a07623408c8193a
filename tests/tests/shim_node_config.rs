//! urunc's node configuration file (`/etc/urunc/config.toml`, here through `URUNC_RS_CONFIG`):
//! `[monitors.qemu]` defaults size a guest whose spec sets no limits, the snapshot is kept in
//! the container's state, and a bad value fails Create naming the key, leaving nothing.

mod shim_support;

use std::time::Duration;

use shim_support::{
    assert_nothing_left, assert_sandbox_clean, ctr, ctr_ok, eventually, import_pvh_unikernel,
    prerequisites, run_detached_in, sandbox_with_ns, state_dir, RUNTIME,
};
use urunc_tests::containerd::ContainerdOptions;
use urunc_tests::guests::PvhBehaviour;
use urunc_tests::PrivateContainerd;

const IMAGE: &str = "docker.io/library/pvh-node-config:test";
const CONFIG_ENV: &str = "URUNC_RS_CONFIG";

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

    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "cfg"]);
    assert!(
        eventually(Duration::from_secs(20), || ctr_ok(&ctrd, &["task", "ls"])
            .contains("STOPPED")),
        "the task did not stop"
    );
    ctr_ok(&ctrd, &["task", "delete", "cfg"]);
    ctr_ok(&ctrd, &["container", "rm", "cfg"]);
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
    ctr_ok(&ctrd, &["task", "kill", "-s", "SIGKILL", "opt"]);
    assert!(
        eventually(Duration::from_secs(20), || ctr_ok(&ctrd, &["task", "ls"])
            .contains("STOPPED")),
        "the task did not stop"
    );
    ctr_ok(&ctrd, &["task", "delete", "opt"]);
    ctr_ok(&ctrd, &["container", "rm", "opt"]);

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
