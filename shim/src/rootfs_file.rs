//! Finding a file the urunc configuration names inside the container rootfs, symlink-safely.
//!
//! `runtime_core::rootfs_relative` first refuses what is wrong lexically (`..` above the root);
//! then the file is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` from the
//! rootfs directory, so no symlink (absolute, or climbing with `..`) can lead outside. The path
//! handed to the VMM is the one the kernel actually opened.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Result, ShimError};

/// Resolves `value` (from configuration `field`) beneath `rootfs`; returns the host path of the
/// regular file it names.
pub fn resolve(rootfs: &Path, field: &str, value: &str) -> Result<PathBuf> {
    let relative = runtime_core::rootfs_relative(field, value)?;
    let file = open_beneath(rootfs, &relative).map_err(|errno| refusal(field, value, errno))?;
    let metadata = file
        .metadata()
        .map_err(|e| ShimError::io(format!("stat {field}={value:?}"), e))?;
    if !metadata.is_file() {
        return Err(ShimError::invalid(
            field,
            value,
            "is not a regular file in the rootfs",
        ));
    }
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| ShimError::io(format!("locate {field}={value:?}"), e))?;
    Ok(opened)
}

/// Reads `/urunc.json` at the rootfs root, if the image has one.
pub fn read_urunc_json(rootfs: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut file = match open_beneath(rootfs, Path::new("urunc.json")) {
        Ok(file) => file,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(refusal("/urunc.json", "urunc.json", errno)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| ShimError::io(format!("read {}/urunc.json", rootfs.display()), e))?;
    Ok(Some(bytes))
}

fn open_beneath(rootfs: &Path, relative: &Path) -> std::result::Result<File, Errno> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(&root, relative, how).map(File::from)
}

fn refusal(field: &str, value: &str, errno: Errno) -> ShimError {
    let reason = match errno {
        Errno::EXDEV => "escapes the container rootfs (through `..` or a symlink)".to_string(),
        Errno::ELOOP => "resolves through a symlink loop or a magic link".to_string(),
        Errno::ENOENT => "does not exist in the container rootfs".to_string(),
        other => format!("cannot be opened in the container rootfs: {other}"),
    };
    ShimError::invalid(field, value, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("unikernel")).expect("mkdir");
        std::fs::write(dir.path().join("unikernel/kernel"), b"k").expect("write");
        dir
    }

    #[test]
    fn a_file_inside_resolves_to_its_host_path() {
        let root = rootfs();
        let path = resolve(root.path(), "binary", "/unikernel/kernel").expect("resolves");
        assert_eq!(
            path,
            root.path()
                .canonicalize()
                .expect("canon")
                .join("unikernel/kernel")
        );
    }

    #[test]
    fn escapes_and_missing_files_are_refused_naming_field_and_value() {
        let root = rootfs();
        symlink("/etc/passwd", root.path().join("abs")).expect("symlink");
        symlink("../../../../etc/passwd", root.path().join("rel")).expect("symlink");
        for (value, needle) in [
            ("/abs", "escapes"),
            ("/rel", "escapes"),
            ("/../etc/passwd", "escapes"),
            ("/missing", "does not exist"),
            ("/unikernel", "regular file"),
        ] {
            let error = resolve(root.path(), "com.urunc.unikernel.binary", value)
                .expect_err(value)
                .to_string();
            assert!(
                error.contains("com.urunc.unikernel.binary") && error.contains(value),
                "{error}"
            );
            assert!(error.contains(needle), "{value}: {error}");
        }
    }
}
