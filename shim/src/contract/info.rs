//! `-info`: containerd 2.2+ runs `<shim> -info` (CRI at start-up for every runtime handler, the
//! task manager before a Create with idmap mounts) and reads a `containerd.types.RuntimeInfo`
//! protobuf on stdout. The runtime options come on stdin, as a protobuf `Any`. Answering it is
//! what urunc's Go shim does not do on containerd 2.x ("flag provided but not defined").

use std::io::Read;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};

use super::{runc_features, runtime_options};
use crate::error::{Result, ShimError};

/// The runtime's name, as containerd knows it.
pub const RUNTIME_NAME: &str = "io.containerd.urunc.v2";

/// The type URL containerd registers for runtime-spec's features document (JSON in an `Any`).
pub const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

pub fn run() -> Result<()> {
    let mut stdin = Vec::new();
    std::io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|e| ShimError::io("read runtime options from stdin", e))?;
    super::answer_on_stdout("RuntimeInfo", &runtime_info(&stdin)?)
}

/// The answer to `-info` given these options (protobuf `Any` bytes; empty for none).
pub fn runtime_info(options: &[u8]) -> Result<RuntimeInfo> {
    let any = runtime_options::any_from_bytes(options)?;
    let options = runtime_options::accept(&[&any])?;
    let mount_options = delegate_mount_options();
    let features = serde_json::to_vec(&runtime_core::features::features(mount_options.as_deref()))
        .map_err(|e| ShimError::encode("features", e))?;
    Ok(RuntimeInfo {
        name: RUNTIME_NAME.to_string(),
        version: MessageField::some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("URUNC_RS_REVISION")
                .unwrap_or_default()
                .to_string(),
            ..Default::default()
        }),
        options: match options {
            Some(options) => MessageField::some(runtime_options::to_any(&options)?),
            None => MessageField::none(),
        },
        features: MessageField::some(Any {
            type_url: FEATURES_TYPE_URL.to_string(),
            value: features,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The delegate runc's mount options, or `None` when it cannot tell (a runc older than 1.1 has
/// no `features` command). Not knowing them is no reason to fail `-info`: containerd would then
/// drop every other feature too. The answer leaves them out, which containerd reads as "no
/// recursive read-only mounts", and stderr says why.
fn delegate_mount_options() -> Option<Vec<String>> {
    runc_features::mount_options()
        .inspect_err(|error| {
            eprintln!("containerd-shim-urunc-v2 -info: mount options left out: {error}");
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::Message;

    #[test]
    fn names_the_runtime_and_carries_the_features_document() {
        let info = runtime_info(b"").unwrap();
        assert_eq!(info.name, RUNTIME_NAME);
        assert_eq!(info.version.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.features.type_url, FEATURES_TYPE_URL);
        let features: serde_json::Value = serde_json::from_slice(&info.features.value).unwrap();
        assert!(features["linux"]["namespaces"].is_array(), "{features}");
        assert!(info.options.is_none());
        // What containerd reads back is the same message.
        let bytes = info.write_to_bytes().unwrap();
        assert_eq!(RuntimeInfo::parse_from_bytes(&bytes).unwrap(), info);
    }

    #[test]
    fn echoes_the_options_and_refuses_another_runtimes() {
        let with_path = runtime_options::to_any(&runtime_options::RuntimeOptions {
            config_path: "/etc/urunc/config.toml".into(),
            ..Default::default()
        })
        .unwrap();
        let info = runtime_info(&with_path.write_to_bytes().unwrap()).unwrap();
        assert_eq!(info.options.type_url, runtime_options::RUNTIME_OPTIONS_TYPE);
        assert_eq!(info.options.value, with_path.value);

        let runc = Any {
            type_url: "containerd.runc.v1.Options".into(),
            ..Default::default()
        };
        let error = runtime_info(&runc.write_to_bytes().unwrap())
            .unwrap_err()
            .to_string();
        assert!(error.contains("containerd.runc.v1.Options"), "{error}");
    }
}
