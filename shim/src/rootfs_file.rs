//! Opening a file the urunc configuration names inside the container rootfs: symlink-safely,
//! and as a regular file of bounded size only, since the image is not trusted.
//!
//! `runtime_core::rootfs_relative` first refuses what is wrong lexically (`..` above the root);
//! then the file is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` from the
//! rootfs directory, so no symlink (absolute, or climbing with `..`) can lead outside. It is
//! opened `O_PATH` first, which neither blocks (a FIFO would wait for a writer forever, with
//! the shim's one reactor thread) nor calls a device driver's open; only a regular file within
//! its size cap is then reopened for reading, `O_NONBLOCK`, through that same descriptor, and
//! read no further than the cap, even if it grows meanwhile. The path handed to the VMM is the
//! one the kernel actually opened.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::error::{Result, ShimError};

/// The largest `/urunc.json` read: a configuration is a few hundred bytes of annotations; the
/// shim holds it in memory whole.
pub const URUNC_JSON_MAX_BYTES: u64 = 64 * 1024;
/// The largest kernel or initrd taken from an image: larger than any unikernel or Linux guest
/// kernel, and than what the default 256 MiB guest could unpack; on a device rootfs these are
/// copied into the state directory (on `/run`, in memory).
pub const BOOT_FILE_MAX_BYTES: u64 = 128 * 1024 * 1024;

/// The field naming the configuration file in refusals.
const URUNC_JSON_FIELD: &str = "/urunc.json";

/// Resolves `value` (from configuration `field`) beneath `rootfs`; returns the host path of the
/// regular file it names, refused when larger than `max_bytes` (`None`: a guest disk, which the
/// shim never reads and whose size is the guest's business).
pub fn resolve(rootfs: &Path, field: &str, value: &str, max_bytes: Option<u64>) -> Result<PathBuf> {
    let relative = runtime_core::rootfs_relative(field, value)?;
    let file = open_regular(rootfs, &relative, field, value, max_bytes)?;
    std::fs::read_link(format!("/proc/self/fd/{}", file.fd.as_raw_fd()))
        .map_err(|e| ShimError::io(format!("locate {field}={value:?}"), e))
}

/// Reads `/urunc.json` at the rootfs root, if the image has one.
pub fn read_urunc_json(rootfs: &Path) -> Result<Option<Vec<u8>>> {
    let value = "urunc.json";
    let fd = match open_beneath(rootfs, Path::new(value)) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(refusal(URUNC_JSON_FIELD, value, errno)),
    };
    let file = regular(fd, URUNC_JSON_FIELD, value, Some(URUNC_JSON_MAX_BYTES))?;
    let reading = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let reopened = nix::fcntl::open(
        format!("/proc/self/fd/{}", file.fd.as_raw_fd()).as_str(),
        reading,
        Mode::empty(),
    )
    .map_err(|e| {
        ShimError::sys(
            format!("reopen {}/{value} for reading", rootfs.display()),
            e,
        )
    })?;
    let mut bytes = Vec::with_capacity(file.size as usize);
    File::from(reopened)
        .take(URUNC_JSON_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ShimError::io(format!("read {}/{value}", rootfs.display()), e))?;
    if bytes.len() as u64 > URUNC_JSON_MAX_BYTES {
        // It grew after the check.
        return Err(too_large(
            URUNC_JSON_FIELD,
            value,
            bytes.len() as u64,
            URUNC_JSON_MAX_BYTES,
        ));
    }
    Ok(Some(bytes))
}

/// An `O_PATH` descriptor of a regular file, with its size when checked.
struct RegularFile {
    fd: OwnedFd,
    size: u64,
}

/// Opens `relative` beneath `rootfs` without blocking and keeps it only if it is a regular
/// file within `max_bytes`.
fn open_regular(
    rootfs: &Path,
    relative: &Path,
    field: &str,
    value: &str,
    max_bytes: Option<u64>,
) -> Result<RegularFile> {
    let fd = open_beneath(rootfs, relative).map_err(|errno| refusal(field, value, errno))?;
    regular(fd, field, value, max_bytes)
}

fn regular(fd: OwnedFd, field: &str, value: &str, max_bytes: Option<u64>) -> Result<RegularFile> {
    let stat = fstat(&fd).map_err(|e| ShimError::sys(format!("stat {field}={value:?}"), e))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG {
        return Err(ShimError::invalid(
            field,
            value,
            format!(
                "is {}, not a regular file in the rootfs",
                describe_kind(kind)
            ),
        ));
    }
    let size = stat.st_size as u64;
    match max_bytes {
        Some(max) if size > max => Err(too_large(field, value, size, max)),
        _ => Ok(RegularFile { fd, size }),
    }
}

fn describe_kind(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symlink",
        _ => "of an unknown file type",
    }
}

fn too_large(field: &str, value: &str, size: u64, max: u64) -> ShimError {
    ShimError::invalid(
        field,
        value,
        format!("is {size} bytes, more than the {max} bytes this shim accepts for {field}"),
    )
}

fn open_beneath(rootfs: &Path, relative: &Path) -> std::result::Result<OwnedFd, Errno> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    retrying_eagain(|| openat2(&root, relative, how))
}

/// How often [`open_beneath`] tries an openat2 that raced with the host's mounts.
const OPENAT2_TRIES: u32 = 64;

/// Runs `open` until it answers anything but EAGAIN, at most [`OPENAT2_TRIES`] times. EAGAIN:
/// a `..` was resolved while a mount or rename happened anywhere on the host (every container
/// start mounts), so the kernel could not prove the walk stayed beneath; openat2(2) says to
/// retry. Each try is microseconds; one still racing after these is the error.
fn retrying_eagain<T>(
    mut open: impl FnMut() -> std::result::Result<T, Errno>,
) -> std::result::Result<T, Errno> {
    let mut tries = 1;
    loop {
        match open() {
            Err(Errno::EAGAIN) if tries < OPENAT2_TRIES => tries += 1,
            answer => return answer,
        }
    }
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
        let path = resolve(root.path(), "binary", "/unikernel/kernel", None).expect("resolves");
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
            let error = resolve(root.path(), "com.urunc.unikernel.binary", value, None)
                .expect_err(value)
                .to_string();
            assert!(
                error.contains("com.urunc.unikernel.binary") && error.contains(value),
                "{error}"
            );
            assert!(error.contains(needle), "{value}: {error}");
        }
    }

    /// openat2's EAGAIN (a `..` raced with a mount or rename somewhere on the host) is tried
    /// again; one that persists, and every other error, is the answer.
    #[test]
    fn eagain_is_retried_and_other_errors_are_not() {
        let mut calls = 0;
        let answer = retrying_eagain(|| {
            calls += 1;
            if calls < 3 {
                Err(Errno::EAGAIN)
            } else {
                Ok(calls)
            }
        });
        assert_eq!(answer, Ok(3));
        let mut calls = 0;
        let refused: std::result::Result<(), Errno> = retrying_eagain(|| {
            calls += 1;
            Err(Errno::EXDEV)
        });
        assert_eq!((refused, calls), (Err(Errno::EXDEV), 1));
        let mut calls = 0;
        let racing: std::result::Result<(), Errno> = retrying_eagain(|| {
            calls += 1;
            Err(Errno::EAGAIN)
        });
        assert_eq!((racing, calls), (Err(Errno::EAGAIN), OPENAT2_TRIES));
    }

    /// Runs `f` on another thread; fails the test when it takes more than a second (an open
    /// that waits for a FIFO's writer never returns).
    fn within_a_second<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(f());
        });
        answer
            .recv_timeout(std::time::Duration::from_secs(1))
            .expect("answered within a second")
    }

    /// A rootfs holding each kind of hostile file under `/hostile/<kind>`; the device node
    /// (needs root) is `/dev/zero`'s, whose reading never ends.
    fn hostile_rootfs() -> tempfile::TempDir {
        let root = rootfs();
        let hostile = root.path().join("hostile");
        std::fs::create_dir(&hostile).expect("mkdir");
        nix::unistd::mkfifo(&hostile.join("fifo"), Mode::from_bits_truncate(0o644)).expect("fifo");
        std::os::unix::net::UnixListener::bind(hostile.join("socket")).expect("socket");
        let sparse = std::fs::File::create(hostile.join("sparse-2g")).expect("create");
        sparse.set_len(2 << 30).expect("set_len");
        if nix::unistd::Uid::effective().is_root() {
            nix::sys::stat::mknod(
                &hostile.join("device"),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 5),
            )
            .expect("mknod");
        } else {
            skipped!("SKIPPED: the device-node cases need root (mknod)");
        }
        root
    }

    #[test]
    fn fifos_devices_sockets_and_oversized_files_are_refused_at_once_naming_field_and_kind() {
        let root = hostile_rootfs();
        let cases = [
            ("fifo", "a FIFO"),
            ("socket", "a socket"),
            ("device", "a character device"),
            ("sparse-2g", "more than the 134217728 bytes"),
        ];
        for (name, needle) in cases {
            let path = root.path().join("hostile").join(name);
            if !path.exists() && !path.is_symlink() {
                continue;
            }
            let value = format!("/hostile/{name}");
            let rootfs = root.path().to_path_buf();
            let error = within_a_second(move || {
                resolve(
                    &rootfs,
                    runtime_core::ANNOT_INITRD,
                    &value,
                    Some(BOOT_FILE_MAX_BYTES),
                )
            })
            .expect_err(name)
            .to_string();
            assert!(
                error.contains(runtime_core::ANNOT_INITRD) && error.contains(name),
                "{error}"
            );
            assert!(error.contains(needle), "{name}: {error}");
        }
        // A guest disk has no cap, but must still be a regular file.
        let disk = resolve(
            root.path(),
            runtime_core::ANNOT_BLOCK,
            "/hostile/sparse-2g",
            None,
        );
        assert!(disk.is_ok(), "{disk:?}");
    }

    #[test]
    fn a_hostile_urunc_json_is_refused_at_once_naming_it_and_the_cap() {
        for (name, needle) in [
            ("fifo", "a FIFO".to_string()),
            ("socket", "a socket".to_string()),
            ("device", "a character device".to_string()),
            (
                "sparse-2g",
                format!("more than the {URUNC_JSON_MAX_BYTES} bytes"),
            ),
        ] {
            let root = hostile_rootfs();
            let hostile = root.path().join("hostile").join(name);
            if !hostile.exists() && !hostile.is_symlink() {
                continue;
            }
            std::fs::rename(&hostile, root.path().join("urunc.json")).expect("rename");
            let rootfs = root.path().to_path_buf();
            let error = within_a_second(move || read_urunc_json(&rootfs))
                .expect_err(name)
                .to_string();
            assert!(error.contains(URUNC_JSON_FIELD), "{name}: {error}");
            assert!(error.contains(&needle), "{name}: {error}");
        }
    }

    #[test]
    fn a_urunc_json_within_the_cap_is_read_and_a_missing_one_is_none() {
        let root = rootfs();
        assert_eq!(read_urunc_json(root.path()).expect("no file"), None);
        let config = br#"{"com.urunc.unikernel.binary":"/unikernel/kernel"}"#;
        std::fs::write(root.path().join("urunc.json"), config).expect("write");
        assert_eq!(
            read_urunc_json(root.path()).expect("read"),
            Some(config.to_vec())
        );
        let at_cap = vec![b' '; URUNC_JSON_MAX_BYTES as usize];
        std::fs::write(root.path().join("urunc.json"), &at_cap).expect("write");
        assert_eq!(read_urunc_json(root.path()).expect("read"), Some(at_cap));
    }
}
