//! The pause image, built offline from the host's static busybox (no
//! registry is reachable to pull `registry.k8s.io/pause`).
//!
//! Its process is a shell that exits on SIGTERM or SIGINT: as pid 1 of its
//! pid namespace it gets no default signal handling, so without the trap
//! only SIGKILL (which CRI sends on StopPodSandbox) could stop it.

use std::path::{Path, PathBuf};

use urunc_pack::{host_architecture, LayerEntry, OciImage};

use crate::error::Result;
use crate::host_tools::static_busybox;
use crate::images::archive_file_name;

/// The pause image's name in the node's `k8s.io` namespace.
pub const PAUSE_IMAGE: &str = "localhost/urunc-rs/pause:test";
/// The applets the pause process runs.
const APPLETS: &[&str] = &["sh", "sleep"];
/// The pause process: sleep until told to stop.
const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 1; done";

/// Writes the pause image archive into `dir` and returns its path.
pub fn pause_image(dir: &Path) -> Result<PathBuf> {
    let mut entries = vec![LayerEntry::HostFile {
        path: "/bin/busybox".into(),
        host: static_busybox()?,
    }];
    entries.extend(APPLETS.iter().map(|applet| LayerEntry::Symlink {
        path: format!("/bin/{applet}"),
        target: "busybox".into(),
    }));
    // runc mounts proc, sys and dev on these.
    entries.extend(
        ["/proc", "/sys", "/dev"]
            .iter()
            .map(|path| LayerEntry::Dir {
                path: path.to_string(),
            }),
    );
    let image = OciImage {
        name: PAUSE_IMAGE.to_string(),
        architecture: host_architecture().to_string(),
        entries,
        entrypoint: vec!["/bin/sh".into(), "-c".into(), PAUSE_SCRIPT.into()],
        env: vec!["PATH=/bin".into()],
        ..OciImage::default()
    };
    let out = dir.join(archive_file_name(PAUSE_IMAGE));
    image.write_archive(&out)?;
    Ok(out)
}
