//! What `start` reads on its stdin and what it answers, for every containerd we serve.
//!
//! - containerd 1.6/1.7 write the runtime options, a protobuf `Any`, when the runtime has some,
//!   and nothing otherwise; they read the shim's answer as a plain address (task API v2).
//! - containerd 2.3+ write a `containerd.runtime.bootstrap.v1.BootstrapParams` and read a
//!   `BootstrapResult` first; with version 3 they talk `containerd.task.v3.Task` natively.
//!   The runtime options travel inside the params, as one of its extensions.
//! - containerd 2.0-2.2 write the options as 1.7 does and accept the plain address (v2,
//!   through their bridge).
//!
//! The two stdin messages cannot be told apart by a type on the wire: both start with two
//! strings. `BootstrapParams` names this very shim instance (field 1 = `-id`, field 2 =
//! `-namespace`) and always carries containerd's addresses (fields 5, 6); an `Any` has only
//! fields 1 and 2, the first a type URL. A message with a field above 2 is the params.
//!
//! The bootstrap messages are small and stable, and containerd-shim-protos does not generate
//! them, so they are read and written with protobuf's coded streams rather than generated code.

use containerd_shim_protos::protobuf::rt::WireType;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{CodedOutputStream, Message};

use super::wire::{describe, read_fields, Field};
use crate::error::{Result, ShimError};

/// The task API version `start` answers containerd 2.3+ with: served natively there.
pub const TASK_API_NATIVE: i32 = 3;
/// The task API version every containerd understands (1.6, 1.7; 2.x through its bridge).
pub const TASK_API_COMPAT: i32 = 2;

/// containerd 2.3+'s `BootstrapParams`: the fields the shim uses.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BootstrapParams {
    pub instance_id: String,
    pub namespace: String,
    pub containerd_version: String,
    pub ttrpc_address: String,
    pub grpc_address: String,
    pub containerd_binary: String,
    /// Runtime options (and any later extension), each a protobuf `Any`.
    pub extensions: Vec<Any>,
    /// Where to put the shim's socket instead of `/run/containerd/s`.
    pub socket_dir: Option<String>,
}

/// What `start` found on its stdin.
#[derive(Debug, PartialEq)]
pub enum StartInput {
    /// Nothing: containerd 1.6/1.7/2.0-2.2 with no runtime options.
    Empty,
    /// containerd 1.6/1.7/2.0-2.2 with runtime options.
    Options(Any),
    /// containerd 2.3+.
    Bootstrap(BootstrapParams),
}

impl StartInput {
    /// Decodes `start`'s stdin (see the module doc for how the two messages are told apart).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(StartInput::Empty);
        }
        let fields = read_fields(bytes, "start's stdin")?;
        if fields.iter().all(|field| field.number <= 2) {
            let any = Any::parse_from_bytes(bytes).map_err(|e| {
                ShimError::invalid("runtime options", describe(bytes), e.to_string())
            })?;
            return Ok(StartInput::Options(any));
        }
        let mut params = BootstrapParams::default();
        for field in fields {
            let text = || field.text("BootstrapParams");
            match field.number {
                1 => params.instance_id = text()?,
                2 => params.namespace = text()?,
                4 => params.containerd_version = text()?,
                5 => params.ttrpc_address = text()?,
                6 => params.grpc_address = text()?,
                7 => params.containerd_binary = text()?,
                8 => params.extensions.push(extension_value(&field)?),
                9 => params.socket_dir = Some(text()?),
                // 3: the log level (the shim follows `-debug`, which containerd still passes);
                // later fields: features this shim does not know, which containerd says it may
                // ignore.
                _ => {}
            }
        }
        Ok(StartInput::Bootstrap(params))
    }

    /// The runtime options containerd sent, if any.
    pub fn runtime_options(&self) -> Vec<&Any> {
        match self {
            StartInput::Empty => Vec::new(),
            StartInput::Options(any) => vec![any],
            StartInput::Bootstrap(params) => params.extensions.iter().collect(),
        }
    }

    /// The task API version to announce.
    pub fn task_api(&self) -> i32 {
        match self {
            StartInput::Bootstrap(_) => TASK_API_NATIVE,
            _ => TASK_API_COMPAT,
        }
    }
}

/// `start`'s answer on stdout: a `BootstrapResult` for containerd 2.3+, the plain address for
/// the others (which would misread anything else).
pub fn encode_answer(input: &StartInput, address: &str) -> Result<Vec<u8>> {
    if !matches!(input, StartInput::Bootstrap(_)) {
        return Ok(address.as_bytes().to_vec());
    }
    let mut out = Vec::new();
    let mut stream = CodedOutputStream::vec(&mut out);
    stream
        .write_int32(1, TASK_API_NATIVE)
        .and_then(|()| stream.write_string(2, address))
        .and_then(|()| stream.write_string(3, "ttrpc"))
        .and_then(|()| stream.flush())
        .map_err(|e| ShimError::encode("BootstrapResult", e))?;
    drop(stream);
    Ok(out)
}

/// `Extension { google.protobuf.Any value = 1; }`
fn extension_value(field: &Field) -> Result<Any> {
    let inner = read_fields(&field.payload, "BootstrapParams.extensions")?;
    let value = inner
        .into_iter()
        .find(|f| f.number == 1 && f.wire_type == WireType::LengthDelimited)
        .map(|f| f.payload)
        .unwrap_or_default();
    Any::parse_from_bytes(&value).map_err(|e| {
        ShimError::invalid(
            "BootstrapParams.extensions[].value",
            describe(&value),
            e.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::protobuf::CodedInputStream;

    /// A `BootstrapParams` as containerd 2.4 writes it (the fields in its order).
    fn params_bytes(extensions: &[Any], socket_dir: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = CodedOutputStream::vec(&mut out);
        s.write_string(1, "ctr-1").unwrap();
        s.write_string(2, "k8s.io").unwrap();
        s.write_int32(3, -4).unwrap();
        s.write_string(4, "v2.4.2").unwrap();
        s.write_string(5, "/run/containerd/containerd.sock.ttrpc")
            .unwrap();
        s.write_string(6, "/run/containerd/containerd.sock")
            .unwrap();
        s.write_string(7, "/usr/local/bin/containerd").unwrap();
        for any in extensions {
            let mut ext = Vec::new();
            let mut e = CodedOutputStream::vec(&mut ext);
            e.write_bytes(1, &any.write_to_bytes().unwrap()).unwrap();
            e.flush().unwrap();
            drop(e);
            s.write_bytes(8, &ext).unwrap();
        }
        if let Some(dir) = socket_dir {
            s.write_string(9, dir).unwrap();
        }
        s.flush().unwrap();
        drop(s);
        out
    }

    fn options_any() -> Any {
        Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: vec![0x12, 0x04, b'/', b'e', b't', b'c'],
            ..Default::default()
        }
    }

    #[test]
    fn empty_stdin_is_an_old_containerd_without_options() {
        assert_eq!(StartInput::decode(b"").unwrap(), StartInput::Empty);
        assert_eq!(StartInput::Empty.task_api(), TASK_API_COMPAT);
    }

    #[test]
    fn a_bare_any_is_runtime_options() {
        let bytes = options_any().write_to_bytes().unwrap();
        let input = StartInput::decode(&bytes).unwrap();
        assert_eq!(input, StartInput::Options(options_any()));
        assert_eq!(input.runtime_options(), vec![&options_any()]);
        assert_eq!(input.task_api(), TASK_API_COMPAT);
    }

    #[test]
    fn bootstrap_params_are_read_with_their_extensions() {
        let bytes = params_bytes(&[options_any()], Some("/run/k/s"));
        let StartInput::Bootstrap(params) = StartInput::decode(&bytes).unwrap() else {
            panic!("not read as BootstrapParams");
        };
        assert_eq!(params.instance_id, "ctr-1");
        assert_eq!(params.namespace, "k8s.io");
        assert_eq!(params.containerd_version, "v2.4.2");
        assert_eq!(
            params.ttrpc_address,
            "/run/containerd/containerd.sock.ttrpc"
        );
        assert_eq!(params.grpc_address, "/run/containerd/containerd.sock");
        assert_eq!(params.containerd_binary, "/usr/local/bin/containerd");
        assert_eq!(params.extensions, vec![options_any()]);
        assert_eq!(params.socket_dir.as_deref(), Some("/run/k/s"));
    }

    #[test]
    fn bootstrap_without_options_has_no_runtime_options() {
        let input = StartInput::decode(&params_bytes(&[], None)).unwrap();
        assert!(input.runtime_options().is_empty());
        assert_eq!(input.task_api(), TASK_API_NATIVE);
    }

    #[test]
    fn garbage_is_refused_naming_stdin() {
        let error = StartInput::decode(b"\xff\xff\xff").unwrap_err().to_string();
        assert!(error.contains("start's stdin"), "{error}");
    }

    #[test]
    fn answers_old_containerds_with_the_plain_address() {
        let answer = encode_answer(&StartInput::Empty, "unix:///run/containerd/s/ab").unwrap();
        assert_eq!(answer, b"unix:///run/containerd/s/ab");
    }

    #[test]
    fn answers_containerd_2_3_with_a_version_3_bootstrap_result() {
        let input = StartInput::decode(&params_bytes(&[], None)).unwrap();
        let answer = encode_answer(&input, "unix:///run/containerd/s/ab").unwrap();
        let fields = read_fields(&answer, "answer").unwrap();
        assert_eq!(fields.len(), 3);
        let mut stream = CodedInputStream::from_bytes(&answer);
        assert_eq!(stream.read_raw_tag_or_eof().unwrap(), Some(1 << 3));
        assert_eq!(stream.read_int32().unwrap(), 3);
        assert_eq!(fields[1].payload, b"unix:///run/containerd/s/ab");
        assert_eq!(fields[2].payload, b"ttrpc");
    }
}
