//! A writer for the "newc" cpio format the kernel unpacks as an initramfs.

/// One member of the archive. Paths are relative ("bin/sh"); a member's
/// parent folder must come before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpioEntry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        contents: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    CharDevice {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const TRAILER: &str = "TRAILER!!!";

/// The archive bytes for `entries`, in order, followed by the trailer.
pub fn newc_archive(entries: &[CpioEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let inode = index as u32 + 1;
        match entry {
            CpioEntry::Dir { path, mode } => {
                push_member(&mut out, inode, S_IFDIR | mode, 2, (0, 0), path, &[])
            }
            CpioEntry::File {
                path,
                contents,
                mode,
            } => push_member(&mut out, inode, S_IFREG | mode, 1, (0, 0), path, contents),
            CpioEntry::Symlink { path, target } => push_member(
                &mut out,
                inode,
                S_IFLNK | 0o777,
                1,
                (0, 0),
                path,
                target.as_bytes(),
            ),
            CpioEntry::CharDevice {
                path,
                mode,
                major,
                minor,
            } => push_member(
                &mut out,
                inode,
                S_IFCHR | mode,
                1,
                (*major, *minor),
                path,
                &[],
            ),
        }
    }
    push_member(&mut out, 0, 0, 1, (0, 0), TRAILER, &[]);
    out
}

fn push_member(
    out: &mut Vec<u8>,
    inode: u32,
    mode: u32,
    links: u32,
    (device_major, device_minor): (u32, u32),
    path: &str,
    data: &[u8],
) {
    let fields = [
        inode,
        mode,
        0, // uid
        0, // gid
        links,
        0, // mtime
        data.len() as u32,
        0, // devmajor of the filesystem
        0, // devminor
        device_major,
        device_minor,
        path.len() as u32 + 1, // the name's NUL counts
        0,                     // checksum (only for "070702")
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    pad_to_four(out);
    out.extend_from_slice(data);
    pad_to_four(out);
}

fn pad_to_four(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's `cpio` reads back what we wrote.
    #[test]
    fn host_cpio_lists_the_members() {
        let archive = newc_archive(&[
            CpioEntry::Dir {
                path: "bin".into(),
                mode: 0o755,
            },
            CpioEntry::File {
                path: "bin/hello".into(),
                contents: b"hi\n".to_vec(),
                mode: 0o755,
            },
            CpioEntry::Symlink {
                path: "bin/sh".into(),
                target: "hello".into(),
            },
            CpioEntry::CharDevice {
                path: "console".into(),
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        ]);
        assert_eq!(archive.len() % 4, 0);
        let Ok(cpio) = crate::host_tools::which("cpio", "apt-get install cpio") else {
            crate::skipped!("SKIPPED: no cpio to read the archive back");
            return;
        };
        let mut child = std::process::Command::new(cpio)
            .args(["-t", "-v", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 4, "{listing}");
        assert!(
            lines[0].starts_with('d') && lines[0].ends_with(" bin"),
            "{listing}"
        );
        assert!(
            lines[1].starts_with("-rwxr-xr-x") && lines[1].ends_with(" bin/hello"),
            "{listing}"
        );
        assert!(lines[2].ends_with("bin/sh -> hello"), "{listing}");
        assert!(
            lines[3].starts_with('c') && lines[3].contains("5,") && lines[3].ends_with(" console"),
            "{listing}"
        );
    }
}
