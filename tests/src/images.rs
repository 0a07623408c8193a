//! Images the tests import: a busybox image for the runc path, built offline
//! from the host's static busybox.

use std::path::{Path, PathBuf};
use std::process::Command;

use urunc_pack::{host_architecture, LayerEntry, OciImage};

use crate::command;
use crate::error::{HarnessError, Result};
use crate::host_tools::static_busybox;

/// Folders a container rootfs is expected to have (runc mounts onto some).
const ROOTFS_DIRS: &[&str] = &["/proc", "/sys", "/dev", "/tmp", "/etc", "/root", "/run"];

/// Writes `<dir>/<file-safe name>.tar`, an image named `name` whose layer
/// holds `/bin/busybox` (Debian's static one) and a symlink to it for every
/// applet it lists (sh, echo, sleep, cat, ...), with `Cmd ["sh"]` and a PATH.
/// Returns the archive path, for [`PrivateContainerd::import`](crate::PrivateContainerd::import).
pub fn busybox_image(dir: &Path, name: &str) -> Result<PathBuf> {
    let image = OciImage {
        cmd: vec!["sh".into()],
        ..busybox_based_image(name, Vec::new())?
    };
    let out = dir.join(archive_file_name(name));
    image.write_archive(&out)?;
    Ok(out)
}

/// An image named `name` holding busybox (as [`busybox_image`]) and
/// `extra` entries, with a PATH and no command: what images built `FROM
/// busybox` start from. An entry of `extra` replaces the default one at the
/// same path (an applet's symlink, a folder).
pub fn busybox_based_image(name: &str, extra: Vec<LayerEntry>) -> Result<OciImage> {
    let busybox = static_busybox()?;
    let mut entries = vec![LayerEntry::HostFile {
        path: "/bin/busybox".into(),
        host: busybox.clone(),
    }];
    for applet in busybox_applets(&busybox)? {
        if applet != "busybox" {
            entries.push(LayerEntry::Symlink {
                path: format!("/bin/{applet}"),
                target: "busybox".into(),
            });
        }
    }
    entries.extend(ROOTFS_DIRS.iter().map(|path| LayerEntry::Dir {
        path: path.to_string(),
    }));
    entries.retain(|entry| {
        !extra
            .iter()
            .any(|replacement| replacement.rootfs_path() == entry.rootfs_path())
    });
    entries.extend(extra);
    Ok(OciImage {
        name: name.to_string(),
        architecture: host_architecture().to_string(),
        entries,
        env: vec!["PATH=/bin".into()],
        ..OciImage::default()
    })
}

/// The applet names `busybox --list` prints.
pub fn busybox_applets(busybox: &Path) -> Result<Vec<String>> {
    let listing = command::checked(Command::new(busybox).arg("--list"))?;
    let applets: Vec<String> = listing
        .lines()
        .map(str::trim)
        .filter(|applet| !applet.is_empty() && !applet.contains('/'))
        .map(String::from)
        .collect();
    if applets.is_empty() {
        return Err(HarnessError::Invalid {
            field: "busybox --list",
            value: busybox.display().to_string(),
            reason: "listed no applets".into(),
        });
    }
    Ok(applets)
}

/// A file name for an image archive: the image name with every character
/// that is awkward in a path replaced by '_'.
pub fn archive_file_name(image_name: &str) -> String {
    let safe: String = image_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.tar")
}
