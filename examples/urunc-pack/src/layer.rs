//! The single filesystem layer of a packed image, as an uncompressed tar.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::PackError;
use crate::rootfs_path::{ancestors, to_layer_path};

/// One thing placed in the image's rootfs. Paths are absolute rootfs paths
/// ("/bin/sh"); parent directories are created implicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerEntry {
    /// A copy of a host file, keeping its permission bits.
    HostFile { path: String, host: PathBuf },
    /// A file with the given contents and mode.
    Bytes {
        path: String,
        contents: Vec<u8>,
        mode: u32,
    },
    /// A symbolic link to `target` (stored as given, not resolved).
    Symlink { path: String, target: String },
    /// An empty directory.
    Dir { path: String },
}

impl LayerEntry {
    /// The absolute rootfs path the entry is placed at.
    pub fn rootfs_path(&self) -> &str {
        match self {
            LayerEntry::HostFile { path, .. }
            | LayerEntry::Bytes { path, .. }
            | LayerEntry::Symlink { path, .. }
            | LayerEntry::Dir { path } => path,
        }
    }
}

const DIR_MODE: u32 = 0o755;

/// Builds a reproducible layer tar (sorted entries, mtime 0, owner root) from
/// `entries`. Missing parent directories get their own entries so that any
/// unpacker, not only a forgiving one, can apply the layer.
pub fn build_layer(entries: &[LayerEntry]) -> Result<Vec<u8>, PackError> {
    let mut by_path: BTreeMap<String, &LayerEntry> = BTreeMap::new();
    for entry in entries {
        let layer_path = to_layer_path(entry.rootfs_path())?;
        if by_path.insert(layer_path, entry).is_some() {
            return Err(PackError::DuplicateRootfsPath {
                value: entry.rootfs_path().to_string(),
            });
        }
    }
    let mut directories: BTreeMap<String, ()> = BTreeMap::new();
    for layer_path in by_path.keys() {
        for ancestor in ancestors(layer_path) {
            if let Some(entry) = by_path.get(&ancestor) {
                if !matches!(entry, LayerEntry::Dir { .. }) {
                    return Err(PackError::InvalidRootfsPath {
                        value: entry.rootfs_path().to_string(),
                        reason: "is used both as a file and as a parent directory",
                    });
                }
            }
            directories.insert(ancestor, ());
        }
    }
    for (layer_path, entry) in &by_path {
        if matches!(entry, LayerEntry::Dir { .. }) {
            directories.insert(layer_path.clone(), ());
        }
    }

    let memory_error = |source| PackError::Write {
        what: "layer tar",
        path: PathBuf::from("<memory>"),
        source,
    };
    let mut builder = tar::Builder::new(Vec::new());
    for directory in directories.keys() {
        let mut header = tar_header(tar::EntryType::Directory, DIR_MODE, 0);
        builder
            .append_data(&mut header, format!("{directory}/"), std::io::empty())
            .map_err(memory_error)?;
    }
    for (layer_path, entry) in &by_path {
        match entry {
            LayerEntry::Dir { .. } => {}
            LayerEntry::HostFile { path, host } => {
                let (contents, mode) = read_host_file(host, path)?;
                let mut header = tar_header(tar::EntryType::Regular, mode, contents.len() as u64);
                builder
                    .append_data(&mut header, layer_path, contents.as_slice())
                    .map_err(memory_error)?;
            }
            LayerEntry::Bytes { contents, mode, .. } => {
                let mut header = tar_header(tar::EntryType::Regular, *mode, contents.len() as u64);
                builder
                    .append_data(&mut header, layer_path, contents.as_slice())
                    .map_err(memory_error)?;
            }
            LayerEntry::Symlink { target, .. } => {
                let mut header = tar_header(tar::EntryType::Symlink, 0o777, 0);
                builder
                    .append_link(&mut header, layer_path, target)
                    .map_err(memory_error)?;
            }
        }
    }
    builder.into_inner().map_err(memory_error)
}

/// A tar header with reproducible metadata (owner root, mtime 0).
pub(crate) fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn read_host_file(host: &Path, rootfs_path: &str) -> Result<(Vec<u8>, u32), PackError> {
    let read_error = |source| PackError::ReadHostFile {
        path: host.to_path_buf(),
        rootfs_path: rootfs_path.to_string(),
        source,
    };
    let contents = std::fs::read(host).map_err(read_error)?;
    let mode = std::fs::metadata(host)
        .map_err(read_error)?
        .permissions()
        .mode()
        & 0o7777;
    Ok((contents, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(tar: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                (path, entry.header().entry_type())
            })
            .collect()
    }

    #[test]
    fn creates_parent_directories_before_their_files() {
        let layer = build_layer(&[
            LayerEntry::Bytes {
                path: "/unikernel/kernel".into(),
                contents: b"k".to_vec(),
                mode: 0o644,
            },
            LayerEntry::Symlink {
                path: "/bin/sh".into(),
                target: "busybox".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            listing(&layer),
            vec![
                ("bin/".to_string(), tar::EntryType::Directory),
                ("unikernel/".to_string(), tar::EntryType::Directory),
                ("bin/sh".to_string(), tar::EntryType::Symlink),
                ("unikernel/kernel".to_string(), tar::EntryType::Regular),
            ]
        );
    }

    #[test]
    fn is_reproducible() {
        let entries = [LayerEntry::Bytes {
            path: "/a/b".into(),
            contents: b"same".to_vec(),
            mode: 0o600,
        }];
        assert_eq!(
            build_layer(&entries).unwrap(),
            build_layer(&entries).unwrap()
        );
    }

    #[test]
    fn refuses_duplicates_and_file_used_as_directory() {
        let file = |path: &str| LayerEntry::Bytes {
            path: path.into(),
            contents: Vec::new(),
            mode: 0o644,
        };
        let duplicate = build_layer(&[file("/a"), file("/a")]).err().unwrap();
        assert!(
            matches!(duplicate, PackError::DuplicateRootfsPath { .. }),
            "{duplicate}"
        );
        let clash = build_layer(&[file("/a"), file("/a/b")]).err().unwrap();
        assert!(clash.to_string().contains("parent directory"), "{clash}");
    }

    #[test]
    fn names_the_missing_host_file() {
        let error = build_layer(&[LayerEntry::HostFile {
            path: "/k".into(),
            host: "/nonexistent/kernel".into(),
        }])
        .err()
        .unwrap();
        assert!(error.to_string().contains("/nonexistent/kernel"), "{error}");
    }
}
