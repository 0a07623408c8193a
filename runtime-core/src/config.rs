//! urunc's configuration: where it comes from, how it is decoded, what it may
//! contain.
//!
//! Sources, as urunc (pkg/unikontainers/config.go) does it: when the OCI
//! spec's annotations hold a complete configuration (unikernelType,
//! hypervisor and binary all set), the annotations are the configuration and
//! `/urunc.json` is not read; otherwise `/urunc.json` at the rootfs root is.
//! The sources are never merged key by key (urunc does not, and a config that
//! mixes two images' keys would be a surprise), with one exception: the
//! operator toggles `useDMBlock` and `mountRootfs`, when `/urunc.json` does
//! not set them, come from the annotations, so a pod annotation can switch
//! the devmapper path on for an image that says nothing about it. Toggles
//! alone never make a container a unikernel (urunc's older emptiness check
//! left `useDMBlock` out too). Annotations that are incomplete while no
//! `/urunc.json` completes them are refused, naming the missing key.
//!
//! An empty value means "not set", as in urunc.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::decode::{decode_value, parse_flag};
use crate::error::CoreError;
use crate::paths::rootfs_relative;

pub const ANNOT_TYPE: &str = "com.urunc.unikernel.unikernelType";
pub const ANNOT_VERSION: &str = "com.urunc.unikernel.unikernelVersion";
pub const ANNOT_BINARY: &str = "com.urunc.unikernel.binary";
pub const ANNOT_CMDLINE: &str = "com.urunc.unikernel.cmdline";
pub const ANNOT_HYPERVISOR: &str = "com.urunc.unikernel.hypervisor";
pub const ANNOT_INITRD: &str = "com.urunc.unikernel.initrd";
pub const ANNOT_BLOCK: &str = "com.urunc.unikernel.block";
pub const ANNOT_BLK_MNT_POINT: &str = "com.urunc.unikernel.blkMntPoint";
pub const ANNOT_USE_DM_BLOCK: &str = "com.urunc.unikernel.useDMBlock";
pub const ANNOT_MOUNT_ROOTFS: &str = "com.urunc.unikernel.mountRootfs";
/// The solo5 net and block device names, when the unikernel's manifest has several or the
/// operator wants another than the first.
pub const ANNOT_SOLO5_NET_DEV: &str = "com.urunc.unikernel.solo5NetDev";
pub const ANNOT_SOLO5_BLK_DEV: &str = "com.urunc.unikernel.solo5BlkDev";

/// Keys whose presence makes a container a unikernel.
const CONFIG_KEYS: [&str; 8] = [
    ANNOT_TYPE,
    ANNOT_VERSION,
    ANNOT_BINARY,
    ANNOT_CMDLINE,
    ANNOT_HYPERVISOR,
    ANNOT_INITRD,
    ANNOT_BLOCK,
    ANNOT_BLK_MNT_POINT,
];
/// Operator switches that never make a container a unikernel on their own.
const TOGGLE_KEYS: [&str; 4] = [
    ANNOT_USE_DM_BLOCK,
    ANNOT_MOUNT_ROOTFS,
    ANNOT_SOLO5_NET_DEV,
    ANNOT_SOLO5_BLK_DEV,
];

/// Every key urunc-rs understands, in the order urunc documents them.
pub const ALL_KEYS: [&str; 12] = concat_keys(CONFIG_KEYS, TOGGLE_KEYS);

/// `first` then `second`, as one array (written out once, so the three lists cannot disagree).
const fn concat_keys<const A: usize, const B: usize, const N: usize>(
    first: [&'static str; A],
    second: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "ALL_KEYS' length is not the sum of its parts");
    let mut all = [""; N];
    let mut index = 0;
    while index < A {
        all[index] = first[index];
        index += 1;
    }
    while index < N {
        all[index] = second[index - A];
        index += 1;
    }
    all
}

/// The unikernel framework, which decides the guest command line format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnikernelType {
    Linux,
    Unikraft,
    Rumprun,
    Mirage,
    Mewz,
    Hermit,
    Freebsd,
}

impl UnikernelType {
    /// Parses urunc's spelling (exact, lowercase).
    pub fn parse(field: &str, value: &str) -> Result<Self, CoreError> {
        match value {
            "linux" => Ok(Self::Linux),
            "unikraft" => Ok(Self::Unikraft),
            "rumprun" => Ok(Self::Rumprun),
            "mirage" => Ok(Self::Mirage),
            "mewz" => Ok(Self::Mewz),
            "hermit" => Ok(Self::Hermit),
            "freebsd" => Ok(Self::Freebsd),
            _ => Err(CoreError::UnknownUnikernelType {
                field: field.to_owned(),
                value: value.to_owned(),
            }),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::Unikraft => "unikraft",
            Self::Rumprun => "rumprun",
            Self::Mirage => "mirage",
            Self::Mewz => "mewz",
            Self::Hermit => "hermit",
            Self::Freebsd => "freebsd",
        }
    }
}

/// The VMM (or sandbox monitor) that runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hypervisor {
    #[serde(rename = "qemu")]
    Qemu,
    #[serde(rename = "firecracker")]
    Firecracker,
    #[serde(rename = "hvt")]
    Hvt,
    #[serde(rename = "spt")]
    Spt,
    #[serde(rename = "cloud-hypervisor")]
    CloudHypervisor,
}

impl Hypervisor {
    /// Parses urunc's spelling (`qemu`, `firecracker`, `hvt`, `spt`) and ours
    /// (`cloud-hypervisor`).
    pub fn parse(field: &str, value: &str) -> Result<Self, CoreError> {
        match value {
            "qemu" => Ok(Self::Qemu),
            "firecracker" => Ok(Self::Firecracker),
            "hvt" => Ok(Self::Hvt),
            "spt" => Ok(Self::Spt),
            "cloud-hypervisor" => Ok(Self::CloudHypervisor),
            _ => Err(CoreError::UnknownHypervisor {
                field: field.to_owned(),
                value: value.to_owned(),
            }),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Qemu => "qemu",
            Self::Firecracker => "firecracker",
            Self::Hvt => "hvt",
            Self::Spt => "spt",
            Self::CloudHypervisor => "cloud-hypervisor",
        }
    }
}

/// A decoded, validated urunc configuration. Paths are kept as written (they
/// passed `rootfs_relative`); the shim resolves them beneath the rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UruncConfig {
    pub unikernel_type: UnikernelType,
    pub unikernel_version: Option<String>,
    pub binary: String,
    pub cmdline: String,
    pub hypervisor: Hypervisor,
    pub initrd: Option<String>,
    pub block: Option<String>,
    pub blk_mnt_point: Option<String>,
    /// `None` when neither source sets it: the runtime's default applies
    /// (`storage::rootfs_storage`).
    pub use_dm_block: Option<bool>,
    pub mount_rootfs: bool,
    /// solo5 device names chosen by the operator (`solo5NetDev`, `solo5BlkDev`).
    #[serde(default)]
    pub solo5_net_dev: Option<String>,
    #[serde(default)]
    pub solo5_blk_dev: Option<String>,
}

/// Decoded key/value view of one source; empty values are dropped.
type Source = HashMap<&'static str, String>;

impl UruncConfig {
    /// Resolves the configuration from the spec's annotations and the bytes of
    /// `/urunc.json` (if the rootfs has one). `Ok(None)` means the container is
    /// not a unikernel and runs with runc.
    pub fn resolve(
        annotations: &HashMap<String, String>,
        urunc_json: Option<&[u8]>,
    ) -> Result<Option<UruncConfig>, CoreError> {
        let from_annotations = decode_source(|key| annotations.get(key).cloned())?;
        if is_complete(&from_annotations) {
            return Self::from_source(&from_annotations).map(Some);
        }
        if let Some(bytes) = urunc_json {
            let json_values = parse_urunc_json(bytes)?;
            let mut from_json = decode_source(|key| json_values.get(key).cloned())?;
            if has_config_key(&from_json) {
                for toggle in TOGGLE_KEYS {
                    if let (false, Some(value)) =
                        (from_json.contains_key(toggle), from_annotations.get(toggle))
                    {
                        from_json.insert(toggle, value.clone());
                    }
                }
                return Self::from_source(&from_json).map(Some);
            }
        }
        if has_config_key(&from_annotations) {
            // Incomplete, and nothing else to take: refused, naming what is missing.
            return Self::from_source(&from_annotations).map(Some);
        }
        Ok(None)
    }

    fn from_source(source: &Source) -> Result<Self, CoreError> {
        let required = |key: &'static str| {
            source
                .get(key)
                .cloned()
                .ok_or_else(|| CoreError::MissingField {
                    field: key.to_owned(),
                })
        };
        let unikernel_type = UnikernelType::parse(ANNOT_TYPE, &required(ANNOT_TYPE)?)?;
        let hypervisor = Hypervisor::parse(ANNOT_HYPERVISOR, &required(ANNOT_HYPERVISOR)?)?;
        let binary = required(ANNOT_BINARY)?;
        rootfs_relative(ANNOT_BINARY, &binary)?;
        for key in [ANNOT_INITRD, ANNOT_BLOCK] {
            if let Some(path) = source.get(key) {
                rootfs_relative(key, path)?;
            }
        }
        let cmdline = source.get(ANNOT_CMDLINE).cloned().unwrap_or_default();
        refuse_control_chars(ANNOT_CMDLINE, &cmdline)?;
        let unikernel_version = source.get(ANNOT_VERSION).cloned();
        if let Some(version) = &unikernel_version {
            refuse_blank_or_spaced(ANNOT_VERSION, version)?;
        }
        let blk_mnt_point = source.get(ANNOT_BLK_MNT_POINT).cloned();
        if let Some(mount_point) = &blk_mnt_point {
            validate_guest_mount_point(mount_point)?;
        }
        let flag = |key: &'static str| source.get(key).map(|v| parse_flag(key, v)).transpose();
        for key in [ANNOT_SOLO5_NET_DEV, ANNOT_SOLO5_BLK_DEV] {
            if let Some(name) = source.get(key) {
                validate_solo5_name(key, name)?;
            }
        }
        Ok(UruncConfig {
            unikernel_type,
            unikernel_version,
            binary,
            cmdline,
            hypervisor,
            initrd: source.get(ANNOT_INITRD).cloned(),
            block: source.get(ANNOT_BLOCK).cloned(),
            blk_mnt_point,
            use_dm_block: flag(ANNOT_USE_DM_BLOCK)?,
            mount_rootfs: flag(ANNOT_MOUNT_ROOTFS)?.unwrap_or(false),
            solo5_net_dev: source.get(ANNOT_SOLO5_NET_DEV).cloned(),
            solo5_blk_dev: source.get(ANNOT_SOLO5_BLK_DEV).cloned(),
        })
    }
}

fn decode_source(lookup: impl Fn(&str) -> Option<String>) -> Result<Source, CoreError> {
    let mut source = Source::new();
    for key in ALL_KEYS {
        if let Some(raw) = lookup(key) {
            let decoded = decode_value(key, &raw)?;
            if !decoded.is_empty() {
                source.insert(key, decoded);
            }
        }
    }
    Ok(source)
}

/// The keys urunc requires of a configuration.
const REQUIRED_KEYS: [&str; 3] = [ANNOT_TYPE, ANNOT_HYPERVISOR, ANNOT_BINARY];

fn is_complete(source: &Source) -> bool {
    REQUIRED_KEYS.iter().all(|key| source.contains_key(key))
}

fn has_config_key(source: &Source) -> bool {
    CONFIG_KEYS.iter().any(|key| source.contains_key(key))
}

/// `/urunc.json` is a flat JSON object of string values keyed by the
/// annotation names (what urunc's `UnikernelConfig` struct tags say). Unknown
/// keys are ignored as Go's decoder ignores them; a known key with a
/// non-string value is refused.
fn parse_urunc_json(bytes: &[u8]) -> Result<HashMap<String, String>, CoreError> {
    const FIELD: &str = "/urunc.json";
    let shown = || String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| CoreError::InvalidUruncJson {
            field: FIELD.into(),
            value: shown(),
            reason: e.to_string(),
        })?;
    let serde_json::Value::Object(object) = value else {
        return Err(CoreError::InvalidUruncJson {
            field: FIELD.into(),
            value: shown(),
            reason: "the top level must be a JSON object".into(),
        });
    };
    let mut values = HashMap::new();
    for key in ALL_KEYS {
        match object.get(key) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => {
                values.insert(key.to_owned(), s.clone());
            }
            Some(other) => {
                return Err(CoreError::InvalidUruncJson {
                    field: format!("{FIELD}:{key}"),
                    value: other.to_string(),
                    reason: "urunc.json values must be strings".into(),
                })
            }
        }
    }
    Ok(values)
}

/// solo5 device names are 1 to 67 ASCII letters and digits (solo5-elftool's rule).
fn validate_solo5_name(field: &str, value: &str) -> Result<(), CoreError> {
    if value.is_empty() || value.len() > 67 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CoreError::invalid(
            field,
            value,
            "a solo5 device name is 1 to 67 ASCII letters and digits",
        ));
    }
    Ok(())
}

/// Refuses a value with a control character: the one rule for every word the shim passes on.
pub(crate) fn refuse_control_chars(field: &str, value: &str) -> Result<(), CoreError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(CoreError::invalid(
            field,
            value,
            "must not contain NUL, newline, tab or other control characters",
        ));
    }
    Ok(())
}

fn refuse_blank_or_spaced(field: &str, value: &str) -> Result<(), CoreError> {
    refuse_control_chars(field, value)?;
    if value.chars().any(char::is_whitespace) {
        return Err(CoreError::invalid(field, value, "must be a single word"));
    }
    Ok(())
}

/// The guest mount point travels inside guest command lines: an absolute,
/// single-word path.
fn validate_guest_mount_point(value: &str) -> Result<(), CoreError> {
    refuse_blank_or_spaced(ANNOT_BLK_MNT_POINT, value)?;
    if !value.starts_with('/') || value.contains('"') || value.contains('\'') {
        return Err(CoreError::invalid(
            ANNOT_BLK_MNT_POINT,
            value,
            "must be an absolute guest path without quotes",
        ));
    }
    Ok(())
}
