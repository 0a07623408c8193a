//! Which solo5 devices the tender attaches, under which names.
//!
//! solo5 attaches a device only under a name the unikernel's manifest declares, and refuses
//! to start when a declared device is left unattached. So: with a manifest, the name is the
//! operator's (`solo5NetDev` / `solo5BlkDev`, which must be declared) or the manifest's only
//! one; a pod network the manifest declares no net device for is not attached (the guest was
//! built without network and runs without it); a declared device the container cannot give
//! (no network, no block device) and a block device the manifest has no name for are refused
//! at Create. Without a manifest (a binary built before manifests, or unreadable), the kind's
//! usual names are used, as urunc does.

use crate::config::{UruncConfig, ANNOT_BLOCK, ANNOT_SOLO5_BLK_DEV, ANNOT_SOLO5_NET_DEV};
use crate::error::CoreError;
use crate::solo5_manifest::{Solo5DeviceKind, Solo5Manifest};

/// The names to attach the net and block devices under; `None`: not attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attach {
    pub net: Option<String>,
    pub block: Option<String>,
}

/// One device class: the operator's name, the kind's default, whether the container has one.
struct Class<'a> {
    kind: Solo5DeviceKind,
    annotation: &'static str,
    wanted: Option<&'a str>,
    default: &'static str,
    present: bool,
    /// The field refused when the container has one the manifest gives no name for.
    present_field: &'static str,
}

pub(super) fn choose(
    config: &UruncConfig,
    manifest: Option<&Solo5Manifest>,
    defaults: (&'static str, &'static str),
    has_network: bool,
    has_block: bool,
) -> Result<Attach, CoreError> {
    let net = Class {
        kind: Solo5DeviceKind::Net,
        annotation: ANNOT_SOLO5_NET_DEV,
        wanted: config.solo5_net_dev.as_deref(),
        default: defaults.0,
        present: has_network,
        present_field: "network",
    };
    let block = Class {
        kind: Solo5DeviceKind::Block,
        annotation: ANNOT_SOLO5_BLK_DEV,
        wanted: config.solo5_blk_dev.as_deref(),
        default: defaults.1,
        present: has_block,
        present_field: ANNOT_BLOCK,
    };
    Ok(Attach {
        net: one(&net, manifest, false)?,
        block: one(&block, manifest, true)?,
    })
}

fn one(
    class: &Class,
    manifest: Option<&Solo5Manifest>,
    refuse_unnamed: bool,
) -> Result<Option<String>, CoreError> {
    let Some(manifest) = manifest else {
        return Ok(class
            .present
            .then(|| class.wanted.unwrap_or(class.default).to_owned()));
    };
    let declared = manifest.names(class.kind);
    let kind = match class.kind {
        Solo5DeviceKind::Net => "net",
        Solo5DeviceKind::Block => "block",
    };
    if let Some(wanted) = class.wanted {
        if !declared.contains(&wanted) {
            return Err(CoreError::invalid(
                class.annotation,
                wanted,
                format!("the unikernel's manifest declares {kind} devices {declared:?}"),
            ));
        }
    }
    if declared.len() > 1 {
        return Err(CoreError::invalid(
            class.annotation,
            class.wanted.unwrap_or(""),
            format!(
                "the unikernel's manifest declares {} {kind} devices {declared:?}; solo5 needs every one attached and a container has one",
                declared.len()
            ),
        ));
    }
    match (declared.first(), class.present) {
        (Some(name), true) => Ok(Some((*name).to_owned())),
        (Some(name), false) => Err(CoreError::invalid(
            class.present_field,
            "",
            format!("the unikernel's manifest declares {kind} device {name:?}, which solo5 must attach, but the container has none"),
        )),
        (None, true) if refuse_unnamed => Err(CoreError::invalid(
            class.present_field,
            "",
            format!("the unikernel's manifest declares no {kind} device: solo5 cannot attach it"),
        )),
        (None, _) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solo5_manifest::Solo5Device;
    use crate::{Hypervisor, UnikernelType};

    fn config(net: Option<&str>, blk: Option<&str>) -> UruncConfig {
        UruncConfig {
            unikernel_type: UnikernelType::Mirage,
            unikernel_version: None,
            binary: "/unikernel/k".into(),
            cmdline: String::new(),
            hypervisor: Hypervisor::Hvt,
            initrd: None,
            block: None,
            blk_mnt_point: None,
            use_dm_block: None,
            mount_rootfs: false,
            solo5_net_dev: net.map(String::from),
            solo5_blk_dev: blk.map(String::from),
        }
    }

    fn manifest(devices: &[(&str, Solo5DeviceKind)]) -> Solo5Manifest {
        Solo5Manifest {
            devices: devices
                .iter()
                .map(|(name, kind)| Solo5Device {
                    name: name.to_string(),
                    kind: *kind,
                })
                .collect(),
        }
    }

    const DEFAULTS: (&str, &str) = ("service", "storage");
    use Solo5DeviceKind::{Block, Net};

    #[test]
    fn the_manifest_names_the_devices() {
        let m = manifest(&[("service0", Net), ("disk", Block)]);
        let attach = choose(&config(None, None), Some(&m), DEFAULTS, true, true).unwrap();
        assert_eq!(attach.net.as_deref(), Some("service0"));
        assert_eq!(attach.block.as_deref(), Some("disk"));
    }

    #[test]
    fn without_a_manifest_the_kind_defaults_or_the_annotations_apply() {
        let attach = choose(&config(None, None), None, DEFAULTS, true, false).unwrap();
        assert_eq!(
            (attach.net.as_deref(), attach.block),
            (Some("service"), None)
        );
        let attach = choose(&config(Some("net0"), None), None, DEFAULTS, true, false).unwrap();
        assert_eq!(attach.net.as_deref(), Some("net0"));
    }

    #[test]
    fn an_annotation_must_name_a_declared_device() {
        let m = manifest(&[("service0", Net)]);
        let error = choose(&config(Some("tap"), None), Some(&m), DEFAULTS, true, false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("com.urunc.unikernel.solo5NetDev=\"tap\""),
            "{error}"
        );
        assert!(error.contains("service0"), "{error}");
    }

    #[test]
    fn a_pod_network_without_a_declared_net_device_is_not_attached() {
        let m = manifest(&[]);
        let attach = choose(&config(None, None), Some(&m), DEFAULTS, true, false).unwrap();
        assert_eq!(attach.net, None);
    }

    #[test]
    fn a_declared_device_the_container_lacks_or_an_unnamed_block_is_refused() {
        let m = manifest(&[("service0", Net)]);
        let error = choose(&config(None, None), Some(&m), DEFAULTS, false, false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("must attach"), "{error}");
        let error = choose(&config(None, None), Some(&m), DEFAULTS, true, true)
            .unwrap_err()
            .to_string();
        assert!(error.contains("com.urunc.unikernel.block"), "{error}");
        let two = manifest(&[("a", Net), ("b", Net)]);
        assert!(choose(&config(Some("a"), None), Some(&two), DEFAULTS, true, false).is_err());
    }
}
