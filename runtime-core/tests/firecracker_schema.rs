//! The firecracker config file checked against firecracker's API schema
//! (src/firecracker/swagger/firecracker.yaml: FullVmConfiguration, BootSource,
//! MachineConfiguration, Drive, NetworkInterface). firecracker refuses unknown
//! keys, so every key we write must be one the schema defines, every key it
//! requires must be there, and each value must have the schema's type and
//! range. firecracker cannot be installed here, so this is the check we have.

mod common;

use runtime_core::{plan_vmm, Hypervisor, UnikernelType, VmmInput};
use serde_json::{Map, Value};
use std::path::PathBuf;

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int { min: i64, max: i64 },
}

struct Definition {
    name: &'static str,
    required: &'static [&'static str],
    properties: &'static [(&'static str, Kind)],
}

const ANY_INT: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

const BOOT_SOURCE: Definition = Definition {
    name: "BootSource",
    required: &["kernel_image_path"],
    properties: &[
        ("boot_args", Kind::Str),
        ("initrd_path", Kind::Str),
        ("kernel_image_path", Kind::Str),
    ],
};

const MACHINE_CONFIGURATION: Definition = Definition {
    name: "MachineConfiguration",
    required: &["mem_size_mib", "vcpu_count"],
    properties: &[
        ("cpu_template", Kind::Str),
        ("smt", Kind::Bool),
        ("mem_size_mib", ANY_INT),
        ("track_dirty_pages", Kind::Bool),
        ("vcpu_count", Kind::Int { min: 1, max: 32 }),
        ("huge_pages", Kind::Str),
    ],
};

const DRIVE: Definition = Definition {
    name: "Drive",
    required: &["drive_id", "is_root_device"],
    properties: &[
        ("drive_id", Kind::Str),
        ("partuuid", Kind::Str),
        ("is_root_device", Kind::Bool),
        ("cache_type", Kind::Str),
        ("is_read_only", Kind::Bool),
        ("path_on_host", Kind::Str),
        ("io_engine", Kind::Str),
        ("socket", Kind::Str),
    ],
};

const NETWORK_INTERFACE: Definition = Definition {
    name: "NetworkInterface",
    required: &["host_dev_name", "iface_id"],
    properties: &[
        ("guest_mac", Kind::Str),
        ("host_dev_name", Kind::Str),
        ("iface_id", Kind::Str),
        (
            "mtu",
            Kind::Int {
                min: 68,
                max: 65535,
            },
        ),
    ],
};

/// The FullVmConfiguration keys we may write.
const TOP_LEVEL: [&str; 4] = [
    "boot-source",
    "machine-config",
    "drives",
    "network-interfaces",
];

fn check(definition: &Definition, object: &Map<String, Value>) {
    for key in definition.required {
        assert!(
            object.contains_key(*key),
            "{} lacks required {key}: {object:?}",
            definition.name
        );
    }
    for (key, value) in object {
        let Some((_, kind)) = definition.properties.iter().find(|(name, _)| name == key) else {
            panic!(
                "{} has no property {key}: firecracker would refuse it",
                definition.name
            );
        };
        let fits = match kind {
            Kind::Str => value.is_string(),
            Kind::Bool => value.is_boolean(),
            Kind::Int { min, max } => value.as_i64().is_some_and(|n| (*min..=*max).contains(&n)),
        };
        assert!(
            fits,
            "{}.{key} = {value} does not fit the schema",
            definition.name
        );
    }
}

fn object<'a>(value: &'a Value, what: &str) -> &'a Map<String, Value> {
    match value.as_object() {
        Some(map) => map,
        None => panic!("{what} must be an object: {value}"),
    }
}

fn check_config(input: &VmmInput) {
    let plan = plan_vmm(input).expect("plans");
    let [file] = plan.files.as_slice() else {
        panic!(
            "firecracker takes exactly one config file: {:?}",
            plan.files
        );
    };
    let config: Value = serde_json::from_str(&file.contents).expect("the config is JSON");
    let top = object(&config, "the config");
    for key in top.keys() {
        assert!(
            TOP_LEVEL.contains(&key.as_str()),
            "unexpected top-level key {key}"
        );
    }
    check(&BOOT_SOURCE, object(&top["boot-source"], "boot-source"));
    let machine = object(&top["machine-config"], "machine-config");
    check(&MACHINE_CONFIGURATION, machine);
    let vcpus = machine["vcpu_count"].as_i64().unwrap_or(0);
    assert!(
        vcpus == 1 || vcpus % 2 == 0,
        "vcpu_count must be 1 or even, is {vcpus}"
    );
    for (key, definition) in [
        ("drives", &DRIVE),
        ("network-interfaces", &NETWORK_INTERFACE),
    ] {
        let Some(items) = top[key].as_array() else {
            panic!("{key} must be an array");
        };
        for item in items {
            check(definition, object(item, key));
        }
    }
}

#[test]
fn every_firecracker_configuration_fits_the_schema() {
    for kind in [UnikernelType::Linux, UnikernelType::Unikraft] {
        for vcpus in [1, 2, 3, 5, 64] {
            for mtu in [1500, 1450] {
                let mut input = common::input(kind.clone(), Hypervisor::Firecracker);
                input.vcpus = Some(vcpus);
                if let Some(net) = input.network.as_mut() {
                    net.mtu = mtu;
                }
                check_config(&input);
            }
        }
    }
    let mut with_block = common::input(UnikernelType::Linux, Hypervisor::Firecracker);
    with_block.block = Some(PathBuf::from("/dev/mapper/snap-1"));
    with_block.network = None;
    with_block.initrd = None;
    check_config(&with_block);
}
