//! The image name stored in the archive, as containerd will list it.

use crate::error::PackError;

/// A checked image name ("docker.io/library/pvh-hello:latest") and its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub full: String,
    pub tag: String,
}

/// Checks `name` and splits off its tag; a name without a tag gets "latest",
/// as `ctr` would assume. Digest references are refused: an archive names a
/// tag, its digest is computed.
pub fn parse_reference(name: &str) -> Result<ImageReference, PackError> {
    let invalid = |reason| PackError::InvalidImageName {
        value: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("is empty"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("contains whitespace or control characters"));
    }
    if name.contains('@') {
        return Err(invalid("is a digest reference; give a tag instead"));
    }
    let last_segment_start = name.rfind('/').map_or(0, |slash| slash + 1);
    let last_segment = &name[last_segment_start..];
    let (repository_end, tag) = match last_segment.rfind(':') {
        Some(colon) => (last_segment_start + colon, &last_segment[colon + 1..]),
        None => (name.len(), "latest"),
    };
    if tag.is_empty() {
        return Err(invalid("ends with ':' but has no tag"));
    }
    if repository_end == last_segment_start || name.ends_with('/') {
        return Err(invalid("has an empty repository name"));
    }
    if name[..repository_end]
        .chars()
        .any(|c| c.is_ascii_uppercase())
    {
        return Err(invalid("repository names must be lowercase"));
    }
    Ok(ImageReference {
        full: format!("{}:{tag}", &name[..repository_end]),
        tag: tag.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_tag() {
        let reference = parse_reference("docker.io/library/pvh-hello:v1").unwrap();
        assert_eq!(reference.full, "docker.io/library/pvh-hello:v1");
        assert_eq!(reference.tag, "v1");
    }

    #[test]
    fn a_port_is_not_a_tag() {
        let reference = parse_reference("localhost:5000/hello").unwrap();
        assert_eq!(reference.full, "localhost:5000/hello:latest");
        assert_eq!(reference.tag, "latest");
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["", "a b", "x@sha256:00", "x:", "registry/", "Upper/case"] {
            let error = parse_reference(bad).unwrap_err();
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }
}
