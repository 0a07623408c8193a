//! urunc's configuration keys and its `/urunc.json` file format.
//!
//! urunc (pkg/unikontainers/config.go) reads `/urunc.json` at the rootfs root
//! when the annotations do not reach it: a flat JSON object whose keys are the
//! full annotation names and whose values are base64 (standard alphabet).

use std::collections::BTreeMap;

use base64::Engine;

use crate::error::PackError;

/// The prefix every urunc annotation key carries.
pub const KEY_PREFIX: &str = "com.urunc.unikernel.";

/// The keys urunc understands, without the prefix.
pub const KNOWN_KEYS: &[&str] = &[
    "unikernelType",
    "unikernelVersion",
    "binary",
    "cmdline",
    "hypervisor",
    "initrd",
    "block",
    "blkMntPoint",
    "useDMBlock",
    "mountRootfs",
];

/// Accepts a urunc key given in full ("com.urunc.unikernel.binary") or short
/// ("binary") and returns the full form; anything else is refused, so a typo
/// does not silently produce an image urunc ignores.
pub fn full_key(key: &str) -> Result<String, PackError> {
    let short = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
    if KNOWN_KEYS.contains(&short) {
        Ok(format!("{KEY_PREFIX}{short}"))
    } else {
        Err(PackError::UnknownAnnotationKey {
            value: key.to_string(),
            known: KNOWN_KEYS.join(", "),
        })
    }
}

/// Normalises `(key, plain value)` pairs to full keys; a key given twice is
/// refused because which value wins would be a guess.
pub fn normalise(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, PackError> {
    let mut config = BTreeMap::new();
    for (key, value) in pairs {
        let key = full_key(key)?;
        if config.insert(key.clone(), value.clone()).is_some() {
            return Err(PackError::DuplicateAnnotationKey { value: key });
        }
    }
    Ok(config)
}

/// Renders `/urunc.json` from a normalised configuration (plain values).
pub fn render_urunc_json(config: &BTreeMap<String, String>) -> Vec<u8> {
    let encoded: serde_json::Map<String, serde_json::Value> = config
        .iter()
        .map(|(key, value)| {
            let value = base64::engine::general_purpose::STANDARD.encode(value);
            (key.clone(), serde_json::Value::String(value))
        })
        .collect();
    let mut text = serde_json::Value::Object(encoded).to_string();
    text.push('\n');
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_full_and_short_keys() {
        assert_eq!(full_key("binary").unwrap(), "com.urunc.unikernel.binary");
        assert_eq!(
            full_key("com.urunc.unikernel.unikernelType").unwrap(),
            "com.urunc.unikernel.unikernelType"
        );
    }

    #[test]
    fn refuses_unknown_and_repeated_keys() {
        let unknown = full_key("com.urunc.unikernel.binry").unwrap_err();
        assert!(unknown.to_string().contains("binry"), "{unknown}");
        let pairs = [
            ("binary".to_string(), "/a".to_string()),
            ("com.urunc.unikernel.binary".to_string(), "/b".to_string()),
        ];
        let repeated = normalise(&pairs).unwrap_err();
        assert!(
            matches!(repeated, PackError::DuplicateAnnotationKey { .. }),
            "{repeated}"
        );
    }

    #[test]
    fn urunc_json_values_are_standard_base64() {
        let pairs = [
            ("unikernelType".to_string(), "linux".to_string()),
            ("cmdline".to_string(), "console=ttyS0 a=b?".to_string()),
        ];
        let rendered = render_urunc_json(&normalise(&pairs).unwrap());
        let parsed: serde_json::Value = serde_json::from_slice(&rendered).unwrap();
        assert_eq!(parsed["com.urunc.unikernel.unikernelType"], "bGludXg=");
        assert_eq!(
            parsed["com.urunc.unikernel.cmdline"],
            base64::engine::general_purpose::STANDARD.encode("console=ttyS0 a=b?")
        );
    }
}
