//! Guests the tests boot: a PVH ELF of a few instructions (boots in
//! milliseconds, for lifecycle loops) and a Linux guest from Debian's kernel
//! with a busybox initramfs (for the network path).

pub mod block_root;
pub mod console;
pub mod cpio;
mod initramfs;
pub mod kernel_modules;
pub mod linux;
mod microvm;
pub mod pvh;
pub mod shared_root;

pub use console::{spawn_with_console, ConsoleWatcher, KillOnDrop};
pub use linux::{kernel_cmdline, linux_guest, GuestNetwork, LinuxGuest};
pub use pvh::{pvh_guest, PvhBehaviour};
