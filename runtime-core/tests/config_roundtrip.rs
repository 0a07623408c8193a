//! Every urunc key, in each of its three encodings, from annotations and from
//! `/urunc.json`, resolves to the same configuration.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use runtime_core::{
    decode_value, Hypervisor, UnikernelType, UruncConfig, ANNOT_BINARY, ANNOT_BLK_MNT_POINT,
    ANNOT_BLOCK, ANNOT_CMDLINE, ANNOT_HYPERVISOR, ANNOT_INITRD, ANNOT_MOUNT_ROOTFS, ANNOT_TYPE,
    ANNOT_USE_DM_BLOCK, ANNOT_VERSION,
};
use std::collections::HashMap;

/// Plain values for every key, and the configuration they mean.
fn plain_values() -> Vec<(&'static str, &'static str)> {
    vec![
        (ANNOT_TYPE, "unikraft"),
        (ANNOT_VERSION, "0.17.0"),
        (ANNOT_BINARY, "/unikernel/app_qemu-x86_64"),
        (ANNOT_CMDLINE, "/nginx -c /nginx/conf/nginx.conf"),
        (ANNOT_HYPERVISOR, "qemu"),
        (ANNOT_INITRD, "/unikernel/initrd.cpio"),
        (ANNOT_BLOCK, "/unikernel/disk.img"),
        (ANNOT_BLK_MNT_POINT, "/data"),
        (ANNOT_USE_DM_BLOCK, "true"),
        (ANNOT_MOUNT_ROOTFS, "false"),
    ]
}

fn expected() -> UruncConfig {
    UruncConfig {
        unikernel_type: UnikernelType::Unikraft,
        unikernel_version: Some("0.17.0".into()),
        binary: "/unikernel/app_qemu-x86_64".into(),
        cmdline: "/nginx -c /nginx/conf/nginx.conf".into(),
        hypervisor: Hypervisor::Qemu,
        initrd: Some("/unikernel/initrd.cpio".into()),
        block: Some("/unikernel/disk.img".into()),
        blk_mnt_point: Some("/data".into()),
        use_dm_block: Some(true),
        mount_rootfs: false,
        solo5_net_dev: None,
        solo5_blk_dev: None,
    }
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    Base64,
    PrefixedBase64,
    Plain,
}

fn encode(encoding: Encoding, value: &str) -> String {
    match encoding {
        Encoding::Base64 => STANDARD.encode(value),
        Encoding::PrefixedBase64 => format!("b64:{}", STANDARD.encode(value)),
        Encoding::Plain => value.to_owned(),
    }
}

const ENCODINGS: [Encoding; 3] = [Encoding::Base64, Encoding::PrefixedBase64, Encoding::Plain];

#[test]
fn every_key_round_trips_through_annotations_in_every_encoding() {
    for encoding in ENCODINGS {
        let annotations: HashMap<String, String> = plain_values()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), encode(encoding, v)))
            .collect();
        let resolved = UruncConfig::resolve(&annotations, None).expect("resolves");
        assert_eq!(resolved, Some(expected()), "encoding {encoding:?}");
    }
}

#[test]
fn every_key_round_trips_through_urunc_json_in_every_encoding() {
    for encoding in ENCODINGS {
        let object: serde_json::Map<String, serde_json::Value> = plain_values()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(encode(encoding, v))))
            .collect();
        let bytes = serde_json::to_vec(&object).expect("serialises");
        let resolved = UruncConfig::resolve(&HashMap::new(), Some(&bytes)).expect("resolves");
        assert_eq!(resolved, Some(expected()), "encoding {encoding:?}");
    }
}

#[test]
fn each_key_decodes_alone_in_every_encoding() {
    for (key, value) in plain_values() {
        for encoding in ENCODINGS {
            assert_eq!(
                decode_value(key, &encode(encoding, value)).expect("decodes"),
                value,
                "{key} {encoding:?}"
            );
        }
    }
}

#[test]
fn no_urunc_key_means_not_a_unikernel() {
    let annotations = HashMap::from([(
        "io.kubernetes.cri.container-type".to_owned(),
        "sandbox".to_owned(),
    )]);
    assert_eq!(
        UruncConfig::resolve(&annotations, None).expect("resolves"),
        None
    );
    assert_eq!(
        UruncConfig::resolve(&annotations, Some(b"{}")).expect("resolves"),
        None
    );
    // A toggle alone does not make a unikernel (urunc leaves useDMBlock out too).
    let toggle_only = HashMap::from([(ANNOT_USE_DM_BLOCK.to_owned(), "true".to_owned())]);
    assert_eq!(
        UruncConfig::resolve(&toggle_only, None).expect("resolves"),
        None
    );
    // Empty values are "not set", as in urunc.
    let empty = HashMap::from([(ANNOT_TYPE.to_owned(), String::new())]);
    assert_eq!(UruncConfig::resolve(&empty, None).expect("resolves"), None);
}

#[test]
fn annotations_replace_urunc_json_as_a_whole() {
    let annotations = HashMap::from([
        (ANNOT_TYPE.to_owned(), "linux".to_owned()),
        (ANNOT_HYPERVISOR.to_owned(), "qemu".to_owned()),
        (ANNOT_BINARY.to_owned(), "/kernel".to_owned()),
    ]);
    let json = br#"{"com.urunc.unikernel.unikernelType":"dW5pa3JhZnQ=","com.urunc.unikernel.initrd":"/initrd"}"#;
    let resolved = UruncConfig::resolve(&annotations, Some(json))
        .expect("resolves")
        .expect("unikernel");
    assert_eq!(resolved.unikernel_type, UnikernelType::Linux);
    assert_eq!(
        resolved.initrd, None,
        "urunc.json keys must not leak into an annotated config"
    );
}

#[test]
fn incomplete_annotations_fall_back_to_urunc_json() {
    let annotations = HashMap::from([(ANNOT_HYPERVISOR.to_owned(), "firecracker".to_owned())]);
    let json = br#"{"com.urunc.unikernel.unikernelType":"b64:bGludXg=","com.urunc.unikernel.hypervisor":"qemu","com.urunc.unikernel.binary":"/kernel"}"#;
    let resolved = UruncConfig::resolve(&annotations, Some(json))
        .expect("resolves")
        .expect("unikernel");
    assert_eq!(
        resolved.hypervisor,
        Hypervisor::Qemu,
        "urunc.json is taken whole"
    );
    assert_eq!(resolved.unikernel_type, UnikernelType::Linux);
}

#[test]
fn annotation_toggles_apply_to_a_urunc_json_config_that_does_not_set_them() {
    let annotations = HashMap::from([(ANNOT_USE_DM_BLOCK.to_owned(), "true".to_owned())]);
    let json = br#"{"com.urunc.unikernel.unikernelType":"bGludXg=","com.urunc.unikernel.hypervisor":"cWVtdQ==","com.urunc.unikernel.binary":"L2tlcm5lbA==","com.urunc.unikernel.useDMBlock":""}"#;
    let resolved = UruncConfig::resolve(&annotations, Some(json))
        .expect("resolves")
        .expect("unikernel");
    assert_eq!(resolved.use_dm_block, Some(true));
    assert_eq!(resolved.binary, "/kernel");
}

#[test]
fn cloud_hypervisor_is_accepted_by_its_name() {
    let annotations = HashMap::from([
        (ANNOT_TYPE.to_owned(), "linux".to_owned()),
        (ANNOT_HYPERVISOR.to_owned(), "cloud-hypervisor".to_owned()),
        (ANNOT_BINARY.to_owned(), "/kernel".to_owned()),
    ]);
    let resolved = UruncConfig::resolve(&annotations, None)
        .expect("resolves")
        .expect("unikernel");
    assert_eq!(resolved.hypervisor, Hypervisor::CloudHypervisor);
}
