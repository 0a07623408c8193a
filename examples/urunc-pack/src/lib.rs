//! Packs a unikernel (kernel, initrd, urunc configuration) into an OCI image
//! archive that `ctr images import` accepts, in the layout urunc expects:
//! the files in the rootfs, `/urunc.json` with base64 values at its root,
//! and the plain values as image config labels.
//!
//! ```no_run
//! use urunc_pack::{write_oci_archive, UnikernelImage};
//! let image = UnikernelImage {
//!     name: "docker.io/library/pvh-hello:latest".into(),
//!     files: vec![("/unikernel/kernel".into(), "/tmp/hello.elf".into())],
//!     urunc: vec![
//!         ("unikernelType".into(), "linux".into()),
//!         ("hypervisor".into(), "qemu".into()),
//!         ("binary".into(), "/unikernel/kernel".into()),
//!     ],
//!     labels_as_annotations: false,
//! };
//! let packed = write_oci_archive(&image, "/tmp/pvh-hello.tar".as_ref())?;
//! println!("{} {}", packed.name, packed.manifest_digest);
//! # Ok::<(), urunc_pack::PackError>(())
//! ```

mod error;
mod layer;
mod oci_archive;
mod reference;
mod rootfs_path;
mod unikernel;
mod urunc_config;

pub use error::PackError;
pub use layer::LayerEntry;
pub use oci_archive::{
    host_architecture, OciImage, PackedImage, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME,
};
pub use unikernel::{write_oci_archive, UnikernelImage, URUNC_JSON_PATH};
pub use urunc_config::{full_key, KEY_PREFIX, KNOWN_KEYS};
