//! Test harness of urunc-rs: a private containerd, images packed with
//! urunc-pack (busybox for the runc path, unikernels), guests built from
//! bytes (a PVH ELF) or from Debian's kernel (a Linux guest with a busybox
//! initramfs), and namespace fixtures.

/// Reports a test that cannot run here: `SKIPPED: <reason>` on the test process's stderr.
/// libtest captures `println!` and shows it only for failures, which would turn a skip into a
/// silent pass in CI's log; a direct write to stderr is not captured.
#[macro_export]
macro_rules! skipped {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Best effort: a test log that cannot be written has nowhere to report to.
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
pub mod mounts;
pub mod peers;
pub mod sandbox;
pub mod shim_binary;
pub mod spec_bundle;
pub mod unikernel_images;
pub mod wait;

pub use containerd::{ContainerdOptions, PrivateContainerd};
pub use error::{HarnessError, Result};
pub use images::busybox_image;
