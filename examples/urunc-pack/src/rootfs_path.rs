//! Validation of paths inside an image's rootfs.

use crate::error::PackError;

/// Turns an absolute rootfs path ("/unikernel/kernel") into the relative form
/// a layer tar stores ("unikernel/kernel"), refusing anything that could land
/// outside the rootfs or be read two ways.
pub fn to_layer_path(value: &str) -> Result<String, PackError> {
    let invalid = |reason| PackError::InvalidRootfsPath {
        value: value.to_string(),
        reason,
    };
    let relative = value
        .strip_prefix('/')
        .ok_or_else(|| invalid("must start with '/'"))?;
    if relative.is_empty() {
        return Err(invalid("names the rootfs itself"));
    }
    for component in relative.split('/') {
        match component {
            "" => return Err(invalid("has an empty component ('//' or a trailing '/')")),
            "." | ".." => return Err(invalid("has a '.' or '..' component")),
            _ if component.contains('\0') => return Err(invalid("contains a NUL byte")),
            _ => {}
        }
    }
    Ok(relative.to_string())
}

/// Every proper ancestor of a relative layer path, outermost first:
/// "a/b/c" gives ["a", "a/b"].
pub fn ancestors(layer_path: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut end = 0;
    while let Some(offset) = layer_path[end..].find('/') {
        end += offset;
        found.push(layer_path[..end].to_string());
        end += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_absolute_paths() {
        assert_eq!(
            to_layer_path("/unikernel/kernel").unwrap(),
            "unikernel/kernel"
        );
        assert_eq!(to_layer_path("/urunc.json").unwrap(), "urunc.json");
    }

    #[test]
    fn refuses_paths_that_escape_or_are_ambiguous() {
        for bad in [
            "unikernel/kernel",
            "/",
            "/a/../b",
            "/a/./b",
            "/a//b",
            "/a/",
            "/a\0b",
        ] {
            let error = to_layer_path(bad).unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn lists_ancestors_outermost_first() {
        assert_eq!(ancestors("a/b/c"), vec!["a", "a/b"]);
        assert!(ancestors("file").is_empty());
    }
}
