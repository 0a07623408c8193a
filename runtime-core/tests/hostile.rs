//! Hostile or broken configuration is refused, and the error names the field
//! and the value, so that whoever wrote it can find it.

mod common;

use runtime_core::{
    plan_vmm, Arch, CoreError, Hypervisor, UnikernelType, UruncConfig, VmmInput, ANNOT_BINARY,
    ANNOT_BLOCK, ANNOT_CMDLINE, ANNOT_HYPERVISOR, ANNOT_INITRD, ANNOT_TYPE,
};
use std::collections::HashMap;
use std::path::PathBuf;

fn assert_names(err: &CoreError, field: &str, value: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(field),
        "error should name the field {field:?}: {msg}"
    );
    assert!(
        msg.contains(value),
        "error should name the value {value:?}: {msg}"
    );
}

/// The debug-quoted form in which errors show string values.
fn quoted(value: &str) -> String {
    format!("{value:?}")
}

fn annotations(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut map = HashMap::from([
        (ANNOT_TYPE.to_owned(), "linux".to_owned()),
        (ANNOT_HYPERVISOR.to_owned(), "qemu".to_owned()),
        (ANNOT_BINARY.to_owned(), "/unikernel/kernel".to_owned()),
    ]);
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    map
}

fn resolve_err(extra: &[(&str, &str)]) -> CoreError {
    match UruncConfig::resolve(&annotations(extra), None) {
        Ok(config) => panic!("{extra:?} must be refused, got {config:?}"),
        Err(e) => e,
    }
}

fn plan_err(input: &VmmInput) -> CoreError {
    match plan_vmm(input) {
        Ok(plan) => panic!("must be refused, got {plan:?}"),
        Err(e) => e,
    }
}

#[test]
fn paths_that_escape_the_rootfs() {
    for key in [ANNOT_BINARY, ANNOT_INITRD, ANNOT_BLOCK] {
        for value in ["../kernel", "/unikernel/../../etc/shadow", "..", "/.."] {
            let err = resolve_err(&[(key, value)]);
            assert!(matches!(err, CoreError::PathEscapesRootfs { .. }), "{err}");
            assert_names(&err, key, &quoted(value));
        }
    }
}

#[test]
fn paths_with_nul_or_newline() {
    for value in ["/unikernel/kernel\0x", "/unikernel/kernel\n-append"] {
        let err = resolve_err(&[(ANNOT_BINARY, value)]);
        assert_names(&err, ANNOT_BINARY, &quoted(value));
    }
}

#[test]
fn unknown_kinds_and_hypervisors() {
    let err = resolve_err(&[(ANNOT_TYPE, "windows")]);
    assert!(
        matches!(err, CoreError::UnknownUnikernelType { .. }),
        "{err}"
    );
    assert_names(&err, ANNOT_TYPE, "\"windows\"");
    let err = resolve_err(&[(ANNOT_HYPERVISOR, "vmware")]);
    assert!(matches!(err, CoreError::UnknownHypervisor { .. }), "{err}");
    assert_names(&err, ANNOT_HYPERVISOR, "\"vmware\"");
    // base64 of "Linux": case matters, as in urunc.
    let err = resolve_err(&[(ANNOT_TYPE, "TGludXg=")]);
    assert_names(&err, ANNOT_TYPE, "\"Linux\"");
}

#[test]
fn bad_explicit_base64() {
    let err = resolve_err(&[(ANNOT_HYPERVISOR, "b64:not base64!")]);
    assert!(matches!(err, CoreError::InvalidBase64 { .. }), "{err}");
    assert_names(&err, ANNOT_HYPERVISOR, "\"b64:not base64!\"");
}

#[test]
fn missing_required_keys() {
    let mut map = annotations(&[]);
    map.remove(ANNOT_BINARY);
    let err = UruncConfig::resolve(&map, None).expect_err("binary is required");
    assert!(matches!(err, CoreError::MissingField { .. }), "{err}");
    assert_names(&err, ANNOT_BINARY, "\"\"");
}

#[test]
fn broken_urunc_json() {
    for (bytes, field, value) in [
        (&b"{not json"[..], "/urunc.json", "{not json"),
        (&b"[1,2]"[..], "/urunc.json", "[1,2]"),
        (
            &br#"{"com.urunc.unikernel.binary": 7}"#[..],
            "com.urunc.unikernel.binary",
            "7",
        ),
    ] {
        let err = UruncConfig::resolve(&HashMap::new(), Some(bytes)).expect_err("refused");
        assert!(matches!(err, CoreError::InvalidUruncJson { .. }), "{err}");
        assert_names(&err, field, value);
    }
}

#[test]
fn cmdline_with_control_characters() {
    let value = "/bin/app\n-netdev user";
    let err = resolve_err(&[(ANNOT_CMDLINE, value)]);
    assert_names(&err, ANNOT_CMDLINE, &quoted(value));
}

fn linux_input() -> VmmInput {
    common::input(UnikernelType::Linux, Hypervisor::Qemu)
}

#[test]
fn arguments_that_would_break_out_of_the_guest_command_line() {
    for hostile in ["a\" init=/bin/sh \"", "x\ny", "x\0y"] {
        let mut input = linux_input();
        input.args = vec!["/bin/app".into(), hostile.into()];
        let err = plan_err(&input);
        assert_names(&err, "process.args[1]", &quoted(hostile));
    }
    // From the cmdline annotation, when process.args is empty.
    let mut input = linux_input();
    input.args.clear();
    input.config.cmdline = "/bin/app \"quoted\"".into();
    let err = plan_err(&input);
    assert_names(&err, ANNOT_CMDLINE, &quoted("\"quoted\""));
}

#[test]
fn an_init_program_that_is_not_an_absolute_path() {
    for hostile in ["-x", "--", "sh", "/bin/my app"] {
        let mut input = linux_input();
        input.args = vec![hostile.into()];
        let err = plan_err(&input);
        assert_names(&err, "process.args[0]", &quoted(hostile));
    }
}

#[test]
fn environment_that_would_become_kernel_parameters() {
    for hostile in [
        "init=/bin/sh",
        "root=/dev/sda",
        "virtio_net.napi_tx=1",
        "A=\" rdinit=/evil \"",
        "A=b\nc",
        "no_equals",
        "-x=1",
    ] {
        let mut input = linux_input();
        input.env = vec!["PATH=/bin".into(), hostile.into()];
        let err = plan_err(&input);
        assert_names(&err, "process.env[1]", &quoted(hostile));
    }
}

#[test]
fn guest_arguments_for_kinds_without_quoting() {
    let mut input = common::input(UnikernelType::Mirage, Hypervisor::Hvt);
    input.args = vec!["--hello=a b".into()];
    let err = plan_err(&input);
    assert_names(&err, "process.args[0]", &quoted("--hello=a b"));
}

#[test]
fn extra_kernel_arguments_are_single_words() {
    for hostile in ["a b", "--", "x\"y"] {
        let mut input = linux_input();
        input.extra_kernel_args = vec![hostile.into()];
        let err = plan_err(&input);
        assert_names(&err, "extra_kernel_args[0]", &quoted(hostile));
    }
}

#[test]
fn absurd_memory_and_cpus() {
    for bytes in [
        1_i64,
        8 * 1024 * 1024,
        2 * 1024 * 1024 * 1024 * 1024,
        i64::MAX,
    ] {
        let mut input = linux_input();
        input.memory_limit_bytes = Some(bytes);
        let err = plan_err(&input);
        assert!(matches!(err, CoreError::OutOfRange { .. }), "{err}");
        assert_names(&err, "linux.resources.memory.limit", &bytes.to_string());
    }
    let mut input = linux_input();
    input.vcpus = Some(0);
    assert_names(&plan_err(&input), "vcpus", "0");
}

#[test]
fn unsupported_pairs_and_architectures() {
    let err = plan_err(&common::input(UnikernelType::Mewz, Hypervisor::Firecracker));
    assert!(matches!(err, CoreError::UnsupportedPair { .. }), "{err}");
    assert_names(&err, "mewz", "firecracker");
    let err = plan_err(&common::input(UnikernelType::Linux, Hypervisor::Hvt));
    assert_names(&err, "linux", "hvt");
    let mut input = common::input(UnikernelType::Unikraft, Hypervisor::Qemu);
    input.arch = Arch::Aarch64;
    assert_names(&plan_err(&input), "unikraft", "Aarch64");
}

#[test]
fn a_block_device_for_a_kind_that_cannot_use_one() {
    let mut input = common::input(UnikernelType::Unikraft, Hypervisor::Qemu);
    input.block = Some(PathBuf::from("/dev/mapper/x"));
    assert_names(&plan_err(&input), "block", "/dev/mapper/x");
}

#[test]
fn host_paths_a_vmm_could_misread() {
    let mut input = linux_input();
    input.kernel = PathBuf::from("-append");
    assert_names(&plan_err(&input), "kernel", "\"-append\"");
    let mut input = linux_input();
    input.control_socket = Some(PathBuf::from("/run/x.sock,server=off"));
    assert_names(
        &plan_err(&input),
        "control_socket",
        "/run/x.sock,server=off",
    );
    let mut input = common::input(UnikernelType::Linux, Hypervisor::CloudHypervisor);
    input.block = Some(PathBuf::from("/dev/mapper/a,readonly=on"));
    assert_names(&plan_err(&input), "block", "/dev/mapper/a,readonly=on");
    let mut input = linux_input();
    input.initrd = Some(PathBuf::from("/x\n-device"));
    assert_names(&plan_err(&input), "initrd", &quoted("/x\n-device"));
}

#[test]
fn hostile_network_values() {
    let mut input = linux_input();
    if let Some(net) = input.network.as_mut() {
        net.tap = "tap0,script=/evil".into();
    }
    assert_names(&plan_err(&input), "network.tap", "tap0,script=/evil");
}

#[test]
fn an_over_long_linux_command_line() {
    let mut input = linux_input();
    input.args = vec!["/bin/app".into(), "x".repeat(3000)];
    let err = plan_err(&input);
    assert!(
        matches!(&err, CoreError::OutOfRange { field, value, .. } if field == "guest command line length" && *value > 2048),
        "{err}"
    );
}
