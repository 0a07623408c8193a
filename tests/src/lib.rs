//! Test harness of urunc-rs: a private containerd, images packed with
//! urunc-pack (busybox for the runc path, unikernels), guests built from
//! bytes (a PVH ELF) or from Debian's kernel (a Linux guest with a busybox
//! initramfs), and namespace fixtures.

/// The one skip helper (see `urunc-test-skip`): `skipped!` for what CI installs (a failure
/// under `URUNC_REQUIRE_PRIVILEGED=1`), `skipped_not_in_ci!` for what it does not.
pub use urunc_test_skip::{skipped, skipped_not_in_ci};

pub mod block_devices;
pub mod command;
pub mod containerd;
pub mod cri;
pub mod critest;
pub mod error;
pub mod guests;
pub mod host_processes;
pub mod host_tools;
pub mod images;
pub mod kvm_vmms;
pub mod mounts;
pub mod peers;
pub mod sandbox;
pub mod shim_binary;
pub mod spec_bundle;
pub mod task_client;
pub mod unikernel_images;
pub mod unix_peer;
pub mod wait;

pub use containerd::{ContainerdOptions, PrivateContainerd};
pub use error::{HarnessError, Result};
pub use images::busybox_image;
