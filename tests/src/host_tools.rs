//! Host programs and files the harness depends on, with install hints.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// The static busybox of Debian's busybox-static package.
pub const STATIC_BUSYBOX: &str = "/bin/busybox";

/// Finds `program` on PATH, or fails with `hint` (what to install).
pub fn which(program: &str, hint: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| HarnessError::Missing {
            what: program.to_string(),
            hint: hint.to_string(),
        })
}

/// Debian's static busybox: it must be static because it runs in rootfs
/// and initramfs images that hold no shared libraries.
pub fn static_busybox() -> Result<PathBuf> {
    let busybox = Path::new(STATIC_BUSYBOX);
    if !busybox.is_file() {
        return Err(HarnessError::Missing {
            what: STATIC_BUSYBOX.into(),
            hint: "apt-get install busybox-static".into(),
        });
    }
    if has_program_interpreter(busybox)? {
        return Err(HarnessError::Invalid {
            field: "busybox",
            value: STATIC_BUSYBOX.into(),
            reason: "is dynamically linked; apt-get install busybox-static".into(),
        });
    }
    Ok(busybox.to_path_buf())
}

/// True when the 64-bit little-endian ELF file at `path` asks for a dynamic
/// loader (has a PT_INTERP program header).
pub fn has_program_interpreter(path: &Path) -> Result<bool> {
    let mut header = [0u8; 64];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .map_err(HarnessError::io("read ELF header of", path))?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(HarnessError::Invalid {
            field: "ELF header",
            value: path.display().to_string(),
            reason: "not a 64-bit little-endian ELF file".into(),
        });
    }
    let read_u64 = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let read_u16 = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let (table_offset, entry_size, count) = (read_u64(0x20), read_u16(0x36), read_u16(0x38));
    let bytes = std::fs::read(path).map_err(HarnessError::io("read", path))?;
    const PT_INTERP: u32 = 3;
    Ok((0..count as u64).any(|index| {
        let at = (table_offset + index * entry_size as u64) as usize;
        bytes
            .get(at..at + 4)
            .map(|kind| u32::from_le_bytes([kind[0], kind[1], kind[2], kind[3]]) == PT_INTERP)
            .unwrap_or(false)
    }))
}

/// The host's TSC frequency in kHz, from /proc/cpuinfo's "cpu MHz" (the
/// value a guest needs as `tsc_early_khz` when it cannot calibrate).
pub fn host_tsc_khz() -> Result<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo")
        .map_err(HarnessError::io("read", "/proc/cpuinfo"))?;
    let megahertz = cpuinfo
        .lines()
        .find(|line| line.starts_with("cpu MHz"))
        .and_then(|line| line.split(':').nth(1))
        .map(str::trim)
        .ok_or_else(|| HarnessError::Missing {
            what: "\"cpu MHz\" in /proc/cpuinfo".into(),
            hint: "this harness needs an x86 host".into(),
        })?;
    let value: f64 = megahertz.parse().map_err(|_| HarnessError::Invalid {
        field: "cpu MHz",
        value: megahertz.to_string(),
        reason: "not a number".into(),
    })?;
    Ok((value * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_static_from_dynamic() {
        let dynamic = which("ls", "coreutils").unwrap();
        assert!(has_program_interpreter(&dynamic).unwrap());
        match static_busybox() {
            Ok(busybox) => assert!(!has_program_interpreter(&busybox).unwrap()),
            Err(error) => crate::skipped!("SKIPPED: {error}"),
        }
    }
}
