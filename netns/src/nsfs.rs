//! Opening a namespace file someone else named (a spec's `linux.namespaces[].path`, a pod's
//! netns) without trusting it. The open never blocks: a FIFO there would wait for a writer
//! forever, with the caller's thread in `open()`. What opened must be an nsfs file of the
//! expected kind before anyone uses it; anything else (a FIFO, a device, a regular file, a
//! socket) is refused at once, saying what it is.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::error::{NetnsError, Result};

// NS_GET_NSTYPE = _IO(0xb7, 0x3): which kind of namespace an nsfs fd is.
nix::ioctl_none_bad!(ns_get_nstype, nix::request_code_none!(0xb7, 0x3));

/// Opens `path` read-only, non-blocking and close-on-exec, and proves it is a namespace of
/// `kind` (a `CLONE_NEW*` flag), without entering it.
pub fn open_namespace(path: &Path, kind: libc::c_int) -> Result<File> {
    let expected = kind_name(kind);
    let refused = |reason: String| NetnsError::NotANamespace {
        path: path.to_path_buf(),
        expected,
        reason,
    };
    // O_NOCTTY: a terminal device there must not become the shim's controlling terminal.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => NetnsError::NotFound {
                path: path.to_path_buf(),
            },
            // A socket file cannot be opened at all (ENXIO): say what it is.
            _ => match std::fs::metadata(path) {
                Ok(meta) => refused(format!("it is {} ({source})", file_kind(&meta))),
                Err(_) => NetnsError::Io {
                    what: "opening namespace",
                    path: path.to_path_buf(),
                    source,
                },
            },
        })?;
    let fs = fstatfs(&file).map_err(|e| refused(format!("statfs failed: {e}")))?;
    if fs.filesystem_type() != NSFS_MAGIC {
        let what = file.metadata().map_or_else(
            |_| "a file".to_string(),
            |meta| file_kind(&meta).to_string(),
        );
        return Err(refused(format!(
            "it is {what}, not an nsfs file (filesystem magic {:#x})",
            fs.filesystem_type().0
        )));
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let found = unsafe { ns_get_nstype(file.as_raw_fd()) }
        .map_err(|e| refused(format!("NS_GET_NSTYPE failed: {e}")))?;
    if found != kind {
        return Err(refused(format!("it is a {} namespace", kind_name(found))));
    }
    Ok(file)
}

/// The runtime-spec name of a `CLONE_NEW*` namespace kind.
pub fn kind_name(kind: libc::c_int) -> &'static str {
    match kind {
        libc::CLONE_NEWNET => "network",
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWTIME => "time",
        _ => "unknown kind of",
    }
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn refusal(path: &Path, kind: libc::c_int) -> String {
        let started = Instant::now();
        let error = open_namespace(path, kind).expect_err("refused");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the refusal took {:?}",
            started.elapsed()
        );
        assert!(matches!(error, NetnsError::NotANamespace { .. }), "{error}");
        error.to_string()
    }

    #[test]
    fn a_fifo_a_device_a_regular_file_and_a_socket_are_refused_at_once_saying_what_they_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let file = dir.path().join("file");
        std::fs::write(&file, b"not a namespace").expect("write");
        let socket = dir.path().join("socket");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let cases = [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/null"), "a character device"),
            (file.as_path(), "a regular file"),
            (socket.as_path(), "a socket"),
        ];
        for (path, what) in cases {
            let message = refusal(path, libc::CLONE_NEWNET);
            assert!(
                message.contains(&path.display().to_string())
                    && message.contains(what)
                    && message.contains("not a network namespace"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_namespace_of_another_kind_is_refused_and_the_right_kind_opens() {
        let message = refusal(Path::new("/proc/self/ns/uts"), libc::CLONE_NEWIPC);
        assert!(
            message.contains("it is a uts namespace") && message.contains("not a ipc namespace"),
            "{message}"
        );
        open_namespace(Path::new("/proc/self/ns/uts"), libc::CLONE_NEWUTS).expect("opens");
    }
}
