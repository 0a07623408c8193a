//! What this runtime supports, as runtime-spec's `features` document (the JSON `runc features`
//! prints). containerd 2.x reads it from the shim's `-info` answer: CRI to decide, among other
//! things, whether pods may have user namespaces, the task manager before a Create that uses
//! idmap mounts.
//!
//! It says only what holds for every container the shim runs, unikernel or runc: the VMM
//! confinement is the narrower of the two (see the README's "The VMM as a container process").
//!
//! Mount options are the exception that is still true of both: they are the options of the runc
//! that runs delegated containers (`runc features`), passed on unchanged, because a unikernel's
//! VMM is given none of the spec's mounts (its mount namespace holds the VMM, the guest's files
//! and the devices it was granted, nothing else). An option such as `rro` therefore cannot be
//! broken for a unikernel: no host path it could fail to protect reaches the guest. containerd
//! 2.x's CRI allows recursive read-only mounts only for a handler that lists `rro`.

use serde_json::{json, Value};

use crate::oci::{NamespaceType, SeccompAction, SeccompArch, SeccompOperator, CAPABILITY_NAMES};

/// The runtime-spec versions whose config.json the shim reads (unknown fields are ignored).
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.2.0";

/// Namespaces a VMM is placed in or joins. A user namespace is refused (the VMM runs as the
/// spec's user without one) and so is a time namespace.
pub const SUPPORTED_NAMESPACES: [NamespaceType; 6] = [
    NamespaceType::Pid,
    NamespaceType::Network,
    NamespaceType::Mount,
    NamespaceType::Ipc,
    NamespaceType::Uts,
    NamespaceType::Cgroup,
];

/// The OCI hooks the shim runs, at the points runtime-spec gives them.
pub const SUPPORTED_HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The features document. `mount_options` are the delegate runc's; `None` (runc could not say)
/// leaves them out, which runtime-spec reads as "unknown", not as "none".
pub fn features(mount_options: Option<&[String]>) -> Value {
    let namespaces: Vec<&str> = SUPPORTED_NAMESPACES.iter().map(|n| n.name()).collect();
    let mut document = json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": SUPPORTED_HOOKS,
        "linux": {
            "namespaces": namespaces,
            "capabilities": CAPABILITY_NAMES.as_slice(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": SeccompAction::NAMES,
                "operators": SeccompOperator::NAMES,
                "archs": SeccompArch::NAMES,
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } },
        },
    });
    if let Some(options) = mount_options {
        document["mountOptions"] = json!(options);
    }
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_no_user_namespace_and_no_idmap_mounts() {
        let features = features(None);
        let namespaces = features["linux"]["namespaces"].as_array().unwrap();
        assert!(!namespaces.iter().any(|n| n == "user"), "{namespaces:?}");
        assert!(namespaces.iter().any(|n| n == "network"), "{namespaces:?}");
        assert_eq!(
            features["linux"]["mountExtensions"]["idmap"]["enabled"],
            json!(false)
        );
    }

    #[test]
    fn lists_the_seccomp_names_the_profile_compiler_knows() {
        let features = features(None);
        let actions = features["linux"]["seccomp"]["actions"].as_array().unwrap();
        assert!(actions.iter().any(|a| a == "SCMP_ACT_ERRNO"), "{actions:?}");
        assert_eq!(actions.len(), SeccompAction::NAMES.len());
    }

    #[test]
    fn passes_the_delegates_mount_options_on_unchanged() {
        let options = ["rbind".to_string(), "rro".to_string()];
        assert_eq!(
            features(Some(&options))["mountOptions"],
            json!(["rbind", "rro"])
        );
        assert!(features(None).get("mountOptions").is_none());
    }
}
