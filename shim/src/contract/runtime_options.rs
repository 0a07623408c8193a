//! The runtime options containerd hands a non-runc runtime: `runtimeoptions.v1.Options`
//! (`TypeUrl`, `ConfigPath`, `ConfigBody`), from the `options` table of the runtime's CRI
//! section or `ctr run --runtime-config-path`. They arrive on `start`'s and `-info`'s stdin and
//! in every CreateTaskRequest.
//!
//! They say where urunc's node configuration comes from (`node_config.rs`): `ConfigPath`
//! names the file instead of `/etc/urunc/config.toml`; without one, CRI sends the runtime's
//! `options` table itself as `ConfigBody`, read as that file's TOML. Options of another runtime
//! (runc's, say, from a copied CRI section) are refused naming their type.

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;

use std::path::PathBuf;

use super::wire::read_fields;
use crate::error::{Result, ShimError};
use crate::node_config::NodeConfigSource;

/// The protobuf name of containerd's generic runtime options.
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";

/// containerd's `runtimeoptions.v1.Options`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    pub type_url: String,
    pub config_path: String,
    pub config_body: Vec<u8>,
}

impl RuntimeOptions {
    /// Reads options out of their `Any`; an empty `Any` is no options.
    pub fn from_any(any: &Any) -> Result<Option<Self>> {
        if any.type_url.is_empty() && any.value.is_empty() {
            return Ok(None);
        }
        // typeurl writes the bare message name; a `type.googleapis.com/` prefix means the same.
        let name = any.type_url.rsplit('/').next().unwrap_or_default();
        if name != RUNTIME_OPTIONS_TYPE {
            return Err(ShimError::invalid(
                "runtime options type",
                &any.type_url,
                format!(
                    "io.containerd.urunc.v2 takes {RUNTIME_OPTIONS_TYPE} (another runtime's options?)"
                ),
            ));
        }
        let mut options = RuntimeOptions::default();
        for field in read_fields(&any.value, RUNTIME_OPTIONS_TYPE)? {
            match field.number {
                1 => options.type_url = field.text(RUNTIME_OPTIONS_TYPE)?,
                2 => options.config_path = field.text(RUNTIME_OPTIONS_TYPE)?,
                3 => options.config_body = field.payload,
                _ => {}
            }
        }
        Ok(Some(options))
    }

    /// Where the node configuration of a container created with these options comes from.
    pub fn node_config_source(&self) -> Result<NodeConfigSource> {
        if !self.config_path.is_empty() {
            return Ok(NodeConfigSource::File(PathBuf::from(&self.config_path)));
        }
        if self.config_body.is_empty() {
            return Ok(NodeConfigSource::Node);
        }
        String::from_utf8(self.config_body.clone())
            .map(NodeConfigSource::Inline)
            .map_err(|_| {
                ShimError::invalid(
                    "runtime options ConfigBody",
                    format!("{} bytes", self.config_body.len()),
                    "not UTF-8 TOML",
                )
            })
    }
}

/// Decodes every runtime option containerd sent and checks they can be honoured (the type, a
/// body that is text); returns the options, if any.
pub fn accept(anys: &[&Any]) -> Result<Option<RuntimeOptions>> {
    let mut accepted = None;
    for any in anys {
        if let Some(options) = RuntimeOptions::from_any(any)? {
            options.node_config_source()?;
            accepted = Some(options);
        }
    }
    Ok(accepted)
}

/// Where the node configuration of a container created with `options` comes from.
pub fn node_config_source(options: Option<&Any>) -> Result<NodeConfigSource> {
    match options.map(RuntimeOptions::from_any).transpose()?.flatten() {
        Some(options) => options.node_config_source(),
        None => Ok(NodeConfigSource::Node),
    }
}

/// The options as an `Any` again, for `-info`'s answer.
pub fn to_any(options: &RuntimeOptions) -> Result<Any> {
    let mut value = Vec::new();
    let mut stream = containerd_shim_protos::protobuf::CodedOutputStream::vec(&mut value);
    let written = (|| {
        if !options.type_url.is_empty() {
            stream.write_string(1, &options.type_url)?;
        }
        if !options.config_path.is_empty() {
            stream.write_string(2, &options.config_path)?;
        }
        if !options.config_body.is_empty() {
            stream.write_bytes(3, &options.config_body)?;
        }
        stream.flush()
    })();
    written.map_err(|e| ShimError::Encode {
        what: RUNTIME_OPTIONS_TYPE,
        reason: e.to_string(),
    })?;
    drop(stream);
    Ok(Any {
        type_url: RUNTIME_OPTIONS_TYPE.to_string(),
        value,
        ..Default::default()
    })
}

/// Parses an `Any` from raw bytes (what `-info` reads on stdin); empty input is no options.
pub fn any_from_bytes(bytes: &[u8]) -> Result<Any> {
    if bytes.is_empty() {
        return Ok(Any::default());
    }
    Any::parse_from_bytes(bytes).map_err(|e| {
        ShimError::invalid(
            "runtime options",
            format!("{} bytes", bytes.len()),
            e.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(path: &str, body: &[u8]) -> RuntimeOptions {
        RuntimeOptions {
            type_url: String::new(),
            config_path: path.into(),
            config_body: body.to_vec(),
        }
    }

    #[test]
    fn empty_options_round_trip_and_are_accepted() {
        let any = to_any(&options("", b"")).unwrap();
        assert_eq!(any.type_url, RUNTIME_OPTIONS_TYPE);
        let back = RuntimeOptions::from_any(&any).unwrap().unwrap();
        assert_eq!(back, options("", b""));
        assert_eq!(accept(&[&any]).unwrap(), Some(options("", b"")));
        assert_eq!(RuntimeOptions::from_any(&Any::default()).unwrap(), None);
    }

    #[test]
    fn a_config_path_names_the_node_configuration_file() {
        let any = to_any(&options("/etc/urunc/other.toml", b"")).unwrap();
        assert!(accept(&[&any]).unwrap().is_some());
        assert_eq!(
            node_config_source(Some(&any)).unwrap(),
            NodeConfigSource::File("/etc/urunc/other.toml".into())
        );
    }

    #[test]
    fn a_config_body_is_the_configuration_itself() {
        let any = to_any(&options("", b"[monitors.qemu]\ndefault_vcpus = 2\n")).unwrap();
        assert_eq!(
            node_config_source(Some(&any)).unwrap(),
            NodeConfigSource::Inline("[monitors.qemu]\ndefault_vcpus = 2\n".into())
        );
        let binary = to_any(&options("", b"\xff\xfe")).unwrap();
        let error = accept(&[&binary]).unwrap_err().to_string();
        assert!(error.contains("ConfigBody"), "{error}");
        assert_eq!(node_config_source(None).unwrap(), NodeConfigSource::Node);
    }

    #[test]
    fn another_runtimes_options_are_refused_naming_the_type() {
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![],
            ..Default::default()
        };
        let error = accept(&[&any]).unwrap_err().to_string();
        assert!(error.contains("containerd.runc.v1.Options"), "{error}");
    }

    #[test]
    fn a_prefixed_type_url_is_the_same_type() {
        let mut any = to_any(&options("", b"")).unwrap();
        any.type_url = format!("type.googleapis.com/{RUNTIME_OPTIONS_TYPE}");
        assert!(RuntimeOptions::from_any(&any).unwrap().is_some());
    }
}
