//! Decoding of urunc configuration values.
//!
//! urunc (Go) stores every value base64-encoded, both in annotations and in
//! `/urunc.json`, and decodes them all unconditionally. Images packed by hand
//! and Kubernetes pod annotations are much easier to write in plain text, so we
//! accept three encodings:
//!
//! * `b64:<payload>`: explicitly base64; an invalid payload is an error.
//! * a value that is valid standard base64 *and* decodes to printable UTF-8:
//!   urunc's historical encoding, decoded.
//! * anything else: plain text, taken as is.
//!
//! The ambiguity is inherent: a plain value that happens to be valid base64 of
//! printable text would be decoded. The values urunc uses (kinds, hypervisors,
//! absolute paths, command lines with spaces) never are: a `/` or a space or
//! a length that is not a multiple of four rules base64 out. Anyone who must
//! be unambiguous uses the `b64:` prefix.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::error::CoreError;

const EXPLICIT_BASE64_PREFIX: &str = "b64:";

/// Decodes one configuration value (see the module doc for the three
/// encodings). `field` names the key in errors.
pub fn decode_value(field: &str, raw: &str) -> Result<String, CoreError> {
    if let Some(payload) = raw.strip_prefix(EXPLICIT_BASE64_PREFIX) {
        let bytes = STANDARD
            .decode(payload)
            .map_err(|e| CoreError::InvalidBase64 {
                field: field.to_owned(),
                value: raw.to_owned(),
                reason: e.to_string(),
            })?;
        return String::from_utf8(bytes).map_err(|e| CoreError::InvalidBase64 {
            field: field.to_owned(),
            value: raw.to_owned(),
            reason: format!("decoded bytes are not UTF-8: {e}"),
        });
    }
    Ok(historical_base64(raw).unwrap_or_else(|| raw.to_owned()))
}

/// urunc's encoding, recognised only when it decodes to something a human
/// would have written; otherwise the caller treats the value as plain text.
/// Trailing line breaks are dropped: values encoded with `echo x | base64`
/// carry one, and urunc's consumers (`strings.Fields`) ignored it too.
fn historical_base64(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let bytes = STANDARD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let text = text.trim_end_matches(['\n', '\r']);
    let printable = !text.is_empty() && text.chars().all(|c| !c.is_control());
    printable.then(|| text.to_owned())
}

/// Boolean flags (`useDMBlock`, `mountRootfs`) accept what Go's
/// `strconv.ParseBool` accepts, since urunc images were written for it.
pub(crate) fn parse_flag(field: &str, value: &str) -> Result<bool, CoreError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(CoreError::invalid(
            field,
            value,
            "expected a boolean (true/false, 1/0, t/f)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_encodings() {
        assert_eq!(decode_value("f", "cWVtdQ==").unwrap(), "qemu");
        assert_eq!(decode_value("f", "b64:cWVtdQ==").unwrap(), "qemu");
        assert_eq!(decode_value("f", "qemu").unwrap(), "qemu");
        assert_eq!(
            decode_value("f", "/unikernel/kernel").unwrap(),
            "/unikernel/kernel"
        );
        assert_eq!(decode_value("f", "").unwrap(), "");
    }

    #[test]
    fn a_trailing_newline_from_echo_is_dropped() {
        // `echo linux | base64`
        assert_eq!(decode_value("f", "bGludXgK").unwrap(), "linux");
    }

    #[test]
    fn explicit_base64_must_decode() {
        let err = decode_value("com.urunc.unikernel.binary", "b64:%%%").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("com.urunc.unikernel.binary") && msg.contains("b64:%%%"),
            "{msg}"
        );
    }

    #[test]
    fn base64_of_binary_bytes_is_plain_text() {
        // "abcd" is valid base64 of 0x69 0xb7 0x1d: not text, so it stays "abcd".
        assert_eq!(decode_value("f", "abcd").unwrap(), "abcd");
    }

    #[test]
    fn flags_follow_go_parse_bool() {
        assert!(parse_flag("f", "True").unwrap());
        assert!(!parse_flag("f", "0").unwrap());
        let msg = parse_flag("com.urunc.unikernel.useDMBlock", "yes")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("useDMBlock") && msg.contains("yes"), "{msg}");
    }
}
