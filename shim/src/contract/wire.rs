//! Reading protobuf messages field by field, for the few small containerd messages that
//! containerd-shim-protos does not generate (`BootstrapParams`, `runtimeoptions.v1.Options`).

use containerd_shim_protos::protobuf::rt::WireType;
use containerd_shim_protos::protobuf::CodedInputStream;

use crate::error::{Result, ShimError};

/// One field of a protobuf message as read off the wire.
pub struct Field {
    pub number: u32,
    /// The payload of a length-delimited field; empty for other wire types.
    pub payload: Vec<u8>,
    pub wire_type: WireType,
}

impl Field {
    /// The field as a string; `message` names the message in the error.
    pub fn text(&self, message: &str) -> Result<String> {
        if self.wire_type != WireType::LengthDelimited {
            return Err(self.malformed(message, "expected a string"));
        }
        String::from_utf8(self.payload.clone())
            .map_err(|_| self.malformed(message, "not UTF-8 text"))
    }

    fn malformed(&self, message: &str, reason: &str) -> ShimError {
        ShimError::invalid(
            format!("{message} field {}", self.number),
            describe(&self.payload),
            reason,
        )
    }
}

/// Every field of the message in `bytes`, in wire order; `what` names it in the error.
pub fn read_fields(bytes: &[u8], what: &str) -> Result<Vec<Field>> {
    let malformed = |reason: String| ShimError::invalid(what, describe(bytes), reason);
    let mut stream = CodedInputStream::from_bytes(bytes);
    let mut fields = Vec::new();
    while let Some(tag) = stream
        .read_raw_tag_or_eof()
        .map_err(|e| malformed(format!("not a protobuf message: {e}")))?
    {
        let number = tag >> 3;
        let wire_type = WireType::new(tag & 7)
            .filter(|_| number != 0)
            .ok_or_else(|| malformed(format!("not a protobuf message: bad tag {tag}")))?;
        let payload = if wire_type == WireType::LengthDelimited {
            stream.read_bytes()
        } else {
            stream.skip_field(wire_type).map(|()| Vec::new())
        }
        .map_err(|e| malformed(format!("not a protobuf message: {e}")))?;
        fields.push(Field {
            number,
            payload,
            wire_type,
        });
    }
    Ok(fields)
}

/// A short, printable description of bytes for an error message.
pub fn describe(bytes: &[u8]) -> String {
    const SHOWN: usize = 48;
    let shown: String = bytes
        .iter()
        .take(SHOWN)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    if bytes.len() > SHOWN {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}
