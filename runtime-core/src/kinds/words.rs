//! How single values become words of a guest command line without being able
//! to change its structure.
//!
//! Guest command lines are one string (qemu `-append`, firecracker
//! `boot_args`, solo5's trailing arguments), so the danger is not the VMM's
//! argv (that is built element by element, never through a shell) but the
//! guest's own parser: a space splits a word, a `"` toggles quoting in Linux's
//! and Unikraft's parsers, a `--` ends kernel parameters, and a lowercase
//! `name=value` can be taken by the kernel or a module as a parameter.

use crate::config::refuse_control_chars;
use crate::error::CoreError;

/// A word for a parser that honours double quotes (Linux's `next_arg`,
/// Unikraft's libparam): wrapped in `"` when it contains spaces, refused when
/// it contains a `"` (neither parser has an escape for it) or a control
/// character. An empty value becomes `""` so that it still occupies its
/// argv slot.
pub(crate) fn quoted_word(field: &str, value: &str) -> Result<String, CoreError> {
    refuse_control_chars(field, value)?;
    if value.contains('"') {
        return Err(CoreError::invalid(
            field,
            value,
            "a double quote cannot be passed through a guest command line",
        ));
    }
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        Ok(format!("\"{value}\""))
    } else {
        Ok(value.to_owned())
    }
}

/// A word for a guest that splits its command line on spaces and knows no
/// quoting (MirageOS, rumprun, mewz): it must be one non-empty word.
pub(crate) fn bare_word(field: &str, value: &str) -> Result<String, CoreError> {
    refuse_control_chars(field, value)?;
    if value.is_empty() || value.chars().any(char::is_whitespace) || value.contains('"') {
        return Err(CoreError::invalid(
            field,
            value,
            "this unikernel splits its command line on spaces and has no quoting: \
             an argument must be one non-empty word without quotes",
        ));
    }
    Ok(value.to_owned())
}

/// A `KEY=VALUE` environment entry with a POSIX name
/// (`[A-Za-z_][A-Za-z0-9_]*`); returns the key and the value.
pub(crate) fn env_entry<'a>(field: &str, entry: &'a str) -> Result<(&'a str, &'a str), CoreError> {
    let Some((key, value)) = entry.split_once('=') else {
        return Err(CoreError::invalid(
            field,
            entry,
            "an environment entry is KEY=VALUE",
        ));
    };
    let mut chars = key.chars();
    let posix = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !posix {
        return Err(CoreError::invalid(
            field,
            entry,
            "an environment name must match [A-Za-z_][A-Za-z0-9_]*",
        ));
    }
    Ok((key, value))
}

/// An environment entry rendered as `KEY=value` with the value quoted by
/// [`quoted_word`]; a refusal shows the whole entry, not only its value.
pub(crate) fn quoted_env_entry<'a>(
    field: &str,
    entry: &'a str,
) -> Result<(&'a str, String), CoreError> {
    let (key, value) = env_entry(field, entry)?;
    let quoted = quoted_word(field, value).map_err(|e| match e {
        CoreError::InvalidValue { reason, .. } => CoreError::invalid(field, entry, reason),
        other => other,
    })?;
    Ok((key, format!("{key}={quoted}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quoted_word("f", "abc").unwrap(), "abc");
        assert_eq!(quoted_word("f", "a b").unwrap(), "\"a b\"");
        assert_eq!(quoted_word("f", "").unwrap(), "\"\"");
        assert!(quoted_word("f", "a\"b").is_err());
        assert!(quoted_word("f", "a\nb").is_err());
        assert!(bare_word("f", "a b").is_err());
        assert_eq!(bare_word("f", "--x=1").unwrap(), "--x=1");
    }

    #[test]
    fn env_names() {
        assert_eq!(env_entry("f", "A_1=x=y").unwrap(), ("A_1", "x=y"));
        for bad in ["novalue", "1A=x", "a.b=c", "=x", "A-B=c"] {
            let msg = env_entry("process.env[0]", bad).unwrap_err().to_string();
            assert!(msg.contains("process.env[0]") && msg.contains(bad), "{msg}");
        }
    }
}
