//! The lexical gate for paths from the configuration.
//!
//! urunc images name their files as absolute paths *inside the rootfs*
//! (`/unikernel/kernel`); relative names are relative to the rootfs root too.
//! This gate refuses what is wrong without looking at the filesystem; the
//! shim then opens the result with `openat2(RESOLVE_BENEATH)` so that symlinks
//! cannot escape either.

use std::path::{Component, Path, PathBuf};

use crate::error::CoreError;

/// Normalises `value` to a path relative to the rootfs root, refusing empty
/// values, NUL and control characters, and any `..` that would climb above the
/// root. `.` components and repeated slashes are dropped; a `..` that stays
/// inside (`a/../b`) is folded lexically, which is what RESOLVE_BENEATH would
/// also accept for real directories.
pub fn rootfs_relative(field: &str, value: &str) -> Result<PathBuf, CoreError> {
    if value.is_empty() {
        return Err(CoreError::invalid(field, value, "a path is required"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(CoreError::invalid(
            field,
            value,
            "a path must not contain NUL, newline or other control characters",
        ));
    }
    let mut normal: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(value).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Prefix(_) => {
                return Err(CoreError::invalid(
                    field,
                    value,
                    "path prefixes are not paths on Linux",
                ))
            }
            Component::ParentDir => {
                if normal.pop().is_none() {
                    return Err(CoreError::PathEscapesRootfs {
                        field: field.to_owned(),
                        value: value.to_owned(),
                        reason: "a '..' component climbs above the rootfs root".into(),
                    });
                }
            }
            Component::Normal(name) => normal.push(name),
        }
    }
    if normal.is_empty() {
        return Err(CoreError::invalid(
            field,
            value,
            "the path names the rootfs root itself, not a file in it",
        ));
    }
    Ok(normal.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_absolute_and_relative_names() {
        assert_eq!(
            rootfs_relative("f", "/unikernel/kernel").unwrap(),
            PathBuf::from("unikernel/kernel")
        );
        assert_eq!(
            rootfs_relative("f", "kernel").unwrap(),
            PathBuf::from("kernel")
        );
        assert_eq!(
            rootfs_relative("f", "//a/./b/../c").unwrap(),
            PathBuf::from("a/c")
        );
    }

    #[test]
    fn refuses_escapes_and_garbage() {
        for bad in [
            "",
            "..",
            "/../etc/shadow",
            "a/../../b",
            "/",
            ".",
            "a\0b",
            "a\nb",
        ] {
            let err = rootfs_relative("com.urunc.unikernel.binary", bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("com.urunc.unikernel.binary"), "{msg}");
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }
}
