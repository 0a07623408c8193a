//! The busybox initramfs of the test Linux guest.

use std::path::Path;

use super::cpio::{newc_archive, CpioEntry};
use super::kernel_modules::ModuleFile;
use crate::error::{HarnessError, Result};

/// The line the guest prints once its network and responder are up,
/// followed by a space and its IPv4 address (or "none").
pub const READY_MARKER: &str = "URUNC-LINUX-READY";
/// The TCP port of the guest's HTTP responder.
pub const HTTP_PORT: u16 = 8080;
/// What `GET /` on the responder answers (plus a newline).
pub const HTTP_ANSWER: &str = "URUNC-LINUX-HELLO";
/// The line the guest prints when the ACPI power button was pressed, just
/// before it powers off.
pub const POWER_BUTTON_MARKER: &str = "URUNC-LINUX-POWER-BUTTON";

const INIT_TEMPLATE: &str = include_str!("linux_init.sh");
const FOLDERS: &[&str] = &["bin", "dev", "proc", "sys", "tmp", "etc", "root", "modules"];

/// The /init script with the marker, port and answer filled in.
pub fn init_script() -> String {
    INIT_TEMPLATE
        .replace("@READY_MARKER@", READY_MARKER)
        .replace("@HTTP_PORT@", &HTTP_PORT.to_string())
        .replace("@HTTP_ANSWER@", HTTP_ANSWER)
        .replace("@POWER_BUTTON_MARKER@", POWER_BUTTON_MARKER)
}

/// A newc cpio with busybox, /init and `modules` (loaded in the given order).
pub fn build_initramfs(busybox: &Path, modules: &[ModuleFile]) -> Result<Vec<u8>> {
    build_initramfs_with_init(busybox, modules, &init_script())
}

/// [`build_initramfs`] with another /init script.
pub fn build_initramfs_with_init(
    busybox: &Path,
    modules: &[ModuleFile],
    init: &str,
) -> Result<Vec<u8>> {
    let busybox_bytes = std::fs::read(busybox).map_err(HarnessError::io("read", busybox))?;
    let mut entries: Vec<CpioEntry> = FOLDERS
        .iter()
        .map(|folder| CpioEntry::Dir {
            path: folder.to_string(),
            mode: 0o755,
        })
        .collect();
    // The kernel opens /dev/console for init before anything mounts devtmpfs.
    entries.push(CpioEntry::CharDevice {
        path: "dev/console".into(),
        mode: 0o600,
        major: 5,
        minor: 1,
    });
    entries.push(CpioEntry::File {
        path: "bin/busybox".into(),
        contents: busybox_bytes,
        mode: 0o755,
    });
    entries.push(CpioEntry::Symlink {
        path: "bin/sh".into(),
        target: "busybox".into(),
    });
    entries.push(CpioEntry::File {
        path: "init".into(),
        contents: init.as_bytes().to_vec(),
        mode: 0o755,
    });
    for (index, module) in modules.iter().enumerate() {
        entries.push(CpioEntry::File {
            path: format!("modules/{index:02}-{}.ko", module.name),
            contents: module.contents.clone(),
            mode: 0o644,
        });
    }
    Ok(newc_archive(&entries))
}
