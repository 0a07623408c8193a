//! The one error type of urunc-pack.

use std::path::PathBuf;

/// Everything that can go wrong while packing an image.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// A path inside the image's rootfs is not a plain absolute path.
    #[error("rootfs path {value:?} is invalid: {reason}")]
    InvalidRootfsPath { value: String, reason: &'static str },

    /// Two layer entries claim the same rootfs path.
    #[error("rootfs path {value:?} is given twice")]
    DuplicateRootfsPath { value: String },

    /// An annotation key is not one of urunc's `com.urunc.unikernel.*` keys.
    #[error("annotation key {value:?} is not a urunc key; known keys: {known}")]
    UnknownAnnotationKey { value: String, known: String },

    /// A urunc key is given twice (perhaps once short, once in full).
    #[error("annotation key {value:?} is given twice")]
    DuplicateAnnotationKey { value: String },

    /// The image name cannot be used as a containerd image reference.
    #[error("image name {value:?} is invalid: {reason}")]
    InvalidImageName { value: String, reason: &'static str },

    /// A host file that should go into the layer cannot be read.
    #[error("cannot read host file {path:?} for rootfs path {rootfs_path:?}: {source}")]
    ReadHostFile {
        path: PathBuf,
        rootfs_path: String,
        source: std::io::Error,
    },

    /// The layer or the archive cannot be written.
    #[error("cannot write {what} to {path:?}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}
