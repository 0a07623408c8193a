//! Mounts a test left under its private folder.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use crate::error::{HarnessError, Result};

/// Mount points at or below `dir`, deepest first (the order to unmount in).
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(HarnessError::io("read", "/proc/self/mountinfo"))?;
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .filter(|mount_point| mount_point.starts_with(dir))
        .collect();
    found.sort_by_key(|mount_point| std::cmp::Reverse(mount_point.components().count()));
    found.dedup();
    Ok(found)
}

/// Unmounts (lazily, so a busy mount cannot block a cleanup) everything at
/// or below `dir`; returns the mount points it removed.
pub fn unmount_all_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mount_points = mounts_under(dir)?;
    for mount_point in &mount_points {
        umount2(mount_point, MntFlags::MNT_DETACH).map_err(|errno| HarnessError::Io {
            action: "unmount",
            path: mount_point.clone(),
            source: errno.into(),
        })?;
    }
    Ok(mount_points)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4);
        match octal {
            Some(digits)
                if bytes[index] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)) =>
            {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |acc, d| acc.wrapping_mul(8) + (d - b'0')),
                );
                index += 4;
            }
            _ => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal_sequences() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b\134c"), r"/tmp/a b\c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
