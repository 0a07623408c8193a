//! Host paths the plan puts on a VMM's command line or into its config.
//!
//! They come from the shim, which resolved them beneath the rootfs, but the
//! plan still refuses anything a VMM could misread: a relative path (could
//! start with `-` and read as an option), control characters, and commas
//! (qemu and cloud-hypervisor split their device options on commas; qemu
//! paths are escaped instead, see the qemu driver, but the QMP socket is
//! refused because one rule is simpler to audit than two).

use std::path::Path;

use super::VmmInput;
use crate::error::CoreError;

pub(super) fn check_input_paths(input: &VmmInput) -> Result<(), CoreError> {
    check("kernel", &input.kernel)?;
    check("work_dir", &input.work_dir)?;
    let optional = [
        ("initrd", &input.initrd),
        ("block", &input.block),
        ("control_socket", &input.control_socket),
    ];
    for (field, path) in optional {
        if let Some(path) = path {
            check(field, path)?;
        }
    }
    if let Some(socket) = &input.control_socket {
        refuse_comma("control_socket", socket)?;
    }
    Ok(())
}

fn check(field: &str, path: &Path) -> Result<(), CoreError> {
    let text = path.to_str().ok_or_else(|| {
        CoreError::invalid(field, &path.to_string_lossy(), "a host path must be UTF-8")
    })?;
    if !path.is_absolute() {
        return Err(CoreError::invalid(
            field,
            text,
            "a host path must be absolute",
        ));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(CoreError::invalid(
            field,
            text,
            "a host path must not contain NUL, newline or other control characters",
        ));
    }
    Ok(())
}

/// For VMMs whose option syntax has no comma escape.
pub(crate) fn refuse_comma(field: &str, path: &Path) -> Result<(), CoreError> {
    let text = path.to_string_lossy();
    if text.contains(',') {
        return Err(CoreError::invalid(
            field,
            &text,
            "this VMM's option syntax cannot carry a ',' in a path",
        ));
    }
    Ok(())
}
