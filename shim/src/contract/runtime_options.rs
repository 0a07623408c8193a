//! The runtime options containerd hands a non-runc runtime: `runtimeoptions.v1.Options`
//! (`TypeUrl`, `ConfigPath`, `ConfigBody`), from the `options` table of the runtime's CRI
//! section or `ctr run --runtime-config-path`. They arrive on `start`'s and `-info`'s stdin and
//! in every CreateTaskRequest.
//!
//! urunc-rs has no runtime configuration file of its own yet, so options that say something
//! (a config path or body) are refused by name rather than ignored: an operator who sets them
//! expects them to act. Options of another runtime (runc's, say, from a copied CRI section)
//! are refused the same way.

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;

use super::wire::read_fields;
use crate::error::{Result, ShimError};

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

    /// Refuses options that ask for something this shim does not do, naming the option.
    pub fn check_supported(&self) -> Result<()> {
        if !self.config_path.is_empty() {
            return Err(ShimError::Unimplemented {
                operation: "runtime option ConfigPath",
                reason: format!(
                    "{:?}: io.containerd.urunc.v2 reads no runtime configuration file; remove \
                     ConfigPath from the runtime's options",
                    self.config_path
                ),
            });
        }
        if !self.config_body.is_empty() {
            return Err(ShimError::Unimplemented {
                operation: "runtime options",
                reason: format!(
                    "{:?}: io.containerd.urunc.v2 takes no options; remove the runtime's \
                     `options` table",
                    String::from_utf8_lossy(&self.config_body)
                ),
            });
        }
        Ok(())
    }
}

/// Decodes and checks every runtime option containerd sent; returns the options, if any.
pub fn accept(anys: &[&Any]) -> Result<Option<RuntimeOptions>> {
    let mut accepted = None;
    for any in anys {
        if let Some(options) = RuntimeOptions::from_any(any)? {
            options.check_supported()?;
            accepted = Some(options);
        }
    }
    Ok(accepted)
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
    fn a_config_path_is_refused_by_name() {
        let any = to_any(&options("/etc/urunc/config.toml", b"")).unwrap();
        let error = accept(&[&any]).unwrap_err().to_string();
        assert!(
            error.contains("ConfigPath") && error.contains("/etc/urunc/config.toml"),
            "{error}"
        );
    }

    #[test]
    fn a_config_body_is_refused_with_its_text() {
        let any = to_any(&options("", b"SystemdCgroup = true")).unwrap();
        let error = accept(&[&any]).unwrap_err().to_string();
        assert!(error.contains("SystemdCgroup = true"), "{error}");
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
