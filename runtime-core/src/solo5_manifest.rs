//! A solo5 unikernel's device manifest: the ELF note `solo5-elftool query-manifest` reads.
//!
//! A solo5 tender attaches only devices the unikernel declared at build time, by name, and
//! refuses the rest ("Resource not declared in manifest"); a declared device left unattached
//! is fatal too ("declared but not attached"). So the names on the tender's argv must come
//! from the binary, not from the unikernel kind. The layout is solo5's `include/mft_abi.h`
//! and `tenders/common/elf.c` (version 1, 64-bit targets): a `PT_NOTE` segment whose first
//! note is named "Solo5" with type "MFT1"; its descriptor, aligned to 8 bytes, holds
//! `struct mft { u32 version; u32 entries; struct mft_entry e[]; }`, each entry 104 bytes
//! with the NUL-terminated name first and the type at byte 68. Entry 0 is reserved.

use serde::{Deserialize, Serialize};

use crate::elf64::{u32_at, FileHeader, NotElf64, ProgramHeader, PROGRAM_HEADER_SIZE, PT_NOTE};
use crate::error::CoreError;

const NOTE_NAME: &[u8] = b"Solo5\0";
/// "MFT1", little-endian.
const MFT1_NOTE_TYPE: u32 = 0x3154_464d;
/// `struct solo5_nhdr`: three u32 and the name padded to 8.
const NOTE_HEADER_SIZE: usize = 20;
/// The descriptor is aligned to `struct mft`'s alignment (8) from the note's start.
const MFT_OFFSET: usize = 24;
const MFT_VERSION: u32 = 1;
const MFT_MAX_ENTRIES: u32 = 64;
const MFT_HEADER_SIZE: usize = 8;
const ENTRY_SIZE: usize = 104;
const NAME_SIZE: usize = 68;
const TYPE_OFFSET: usize = 68;
const MFT_DEV_BLOCK_BASIC: u32 = 1;
const MFT_DEV_NET_BASIC: u32 = 2;
const MFT_RESERVED_FIRST: u32 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Solo5DeviceKind {
    Net,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solo5Device {
    pub name: String,
    pub kind: Solo5DeviceKind,
}

/// The devices a solo5 unikernel declared, in manifest order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solo5Manifest {
    pub devices: Vec<Solo5Device>,
}

impl Solo5Manifest {
    /// The names of the declared devices of `kind`.
    pub fn names(&self, kind: Solo5DeviceKind) -> Vec<&str> {
        self.devices
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.name.as_str())
            .collect()
    }

    /// Reads the manifest from the ELF bytes of the unikernel at `binary` (the field value
    /// named in errors). `Ok(None)`: the binary has no Solo5 manifest note.
    pub fn from_elf(binary: &str, elf: &[u8]) -> Result<Option<Self>, CoreError> {
        let refuse = |reason: String| {
            CoreError::invalid(
                crate::config::ANNOT_BINARY,
                binary,
                format!("solo5 manifest: {reason}"),
            )
        };
        let header = FileHeader::parse(elf).map_err(|fault| match fault {
            NotElf64::NotElf => refuse(fault.to_string()),
            NotElf64::OtherClass => refuse(format!("{fault} (solo5 targets are)")),
        })?;
        let phentsize = usize::from(header.phentsize);
        if phentsize < PROGRAM_HEADER_SIZE {
            return Err(refuse(format!(
                "program header size {phentsize} < {PROGRAM_HEADER_SIZE}"
            )));
        }
        for index in 0..usize::from(header.phnum) {
            let at = usize::try_from(header.phoff)
                .ok()
                .and_then(|p| p.checked_add(index.checked_mul(phentsize)?))
                .ok_or_else(|| refuse("program header table out of range".into()))?;
            let program_header = elf
                .get(at..)
                .and_then(ProgramHeader::parse)
                .ok_or_else(|| refuse(format!("program header {index} out of the file")))?;
            if program_header.kind != PT_NOTE {
                continue;
            }
            let (Ok(offset), Ok(filesz)) = (
                usize::try_from(program_header.offset),
                usize::try_from(program_header.filesz),
            ) else {
                return Err(refuse(format!("note segment {index} out of range")));
            };
            let segment = offset
                .checked_add(filesz)
                .and_then(|end| elf.get(offset..end))
                .ok_or_else(|| refuse(format!("note segment {index} out of the file")))?;
            if let Some(manifest) = manifest_note(segment).map_err(&refuse)? {
                return Ok(Some(manifest));
            }
        }
        Ok(None)
    }
}

/// The manifest in a note segment whose first note is solo5's, as the tender reads it.
fn manifest_note(segment: &[u8]) -> Result<Option<Solo5Manifest>, String> {
    if segment.len() < NOTE_HEADER_SIZE {
        return Ok(None);
    }
    let namesz = u32_at(segment, 0).unwrap_or(0) as usize;
    let descsz = u32_at(segment, 4).unwrap_or(0) as usize;
    let note_type = u32_at(segment, 8).unwrap_or(0);
    if namesz != NOTE_NAME.len() || &segment[12..12 + NOTE_NAME.len()] != NOTE_NAME {
        return Ok(None);
    }
    if note_type != MFT1_NOTE_TYPE {
        return Ok(None);
    }
    let pad = MFT_OFFSET - NOTE_HEADER_SIZE;
    if descsz <= pad || segment.len() < NOTE_HEADER_SIZE + descsz {
        return Err(format!("note size {descsz} does not fit its segment"));
    }
    let mft = &segment[MFT_OFFSET..NOTE_HEADER_SIZE + descsz];
    let version = u32_at(mft, 0).ok_or("truncated manifest")?;
    let entries = u32_at(mft, 4).ok_or("truncated manifest")?;
    if version != MFT_VERSION {
        return Err(format!(
            "version {version}, this runtime reads version {MFT_VERSION}"
        ));
    }
    if !(1..=MFT_MAX_ENTRIES).contains(&entries) {
        return Err(format!(
            "{entries} entries (1 to {MFT_MAX_ENTRIES} allowed)"
        ));
    }
    let entries = entries as usize;
    if mft.len() < MFT_HEADER_SIZE + entries * ENTRY_SIZE {
        return Err(format!(
            "{entries} entries do not fit in {} bytes",
            mft.len()
        ));
    }
    let mut devices = Vec::new();
    for index in 0..entries {
        let entry = &mft[MFT_HEADER_SIZE + index * ENTRY_SIZE..][..ENTRY_SIZE];
        let name_bytes = &entry[..NAME_SIZE];
        let Some(end) = name_bytes.iter().position(|b| *b == 0) else {
            return Err(format!("entry {index}: name not terminated"));
        };
        let name = &name_bytes[..end];
        let kind = u32_at(entry, TYPE_OFFSET).unwrap_or(0);
        if index == 0 {
            if kind != MFT_RESERVED_FIRST || !name.is_empty() {
                return Err("entry 0 is not the reserved entry".into());
            }
            continue;
        }
        let kind = match kind {
            MFT_DEV_NET_BASIC => Solo5DeviceKind::Net,
            MFT_DEV_BLOCK_BASIC => Solo5DeviceKind::Block,
            other => return Err(format!("entry {index}: unknown device type {other}")),
        };
        if name.is_empty() || !name.iter().all(u8::is_ascii_alphanumeric) {
            return Err(format!(
                "entry {index}: device name {:?} is not alphanumeric",
                String::from_utf8_lossy(name)
            ));
        }
        devices.push(Solo5Device {
            name: String::from_utf8_lossy(name).into_owned(),
            kind,
        });
    }
    Ok(Some(Solo5Manifest { devices }))
}

/// Test support: the bytes of a minimal ELF64 with one `PT_NOTE` segment holding a
/// manifest of `devices`, laid out as solo5's `MFT1_NOTE_DECLARE_BEGIN` emits it.
#[doc(hidden)]
pub fn elf_with_manifest(devices: &[(&str, Solo5DeviceKind)]) -> Vec<u8> {
    let entries = devices.len() + 1;
    let mut mft = Vec::new();
    mft.extend_from_slice(&MFT_VERSION.to_le_bytes());
    mft.extend_from_slice(&(entries as u32).to_le_bytes());
    let mut entry = |name: &str, kind: u32| {
        let mut e = vec![0u8; ENTRY_SIZE];
        e[..name.len()].copy_from_slice(name.as_bytes());
        e[TYPE_OFFSET..TYPE_OFFSET + 4].copy_from_slice(&kind.to_le_bytes());
        mft.extend_from_slice(&e);
    };
    entry("", MFT_RESERVED_FIRST);
    for (name, kind) in devices {
        let kind = match kind {
            Solo5DeviceKind::Net => MFT_DEV_NET_BASIC,
            Solo5DeviceKind::Block => MFT_DEV_BLOCK_BASIC,
        };
        entry(name, kind);
    }
    let mut note = Vec::new();
    note.extend_from_slice(&(NOTE_NAME.len() as u32).to_le_bytes());
    let descsz = (MFT_OFFSET - NOTE_HEADER_SIZE) + mft.len();
    note.extend_from_slice(&(descsz as u32).to_le_bytes());
    note.extend_from_slice(&MFT1_NOTE_TYPE.to_le_bytes());
    note.extend_from_slice(b"Solo5\0\0\0");
    note.extend_from_slice(&[0u8; MFT_OFFSET - NOTE_HEADER_SIZE]);
    note.extend_from_slice(&mft);

    const EHDR: usize = crate::elf64::FILE_HEADER_SIZE;
    const PHDR: usize = PROGRAM_HEADER_SIZE;
    let note_offset = EHDR + PHDR;
    let mut elf = vec![0u8; EHDR];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // ELFCLASS64
    elf[5] = 1; // ELFDATA2LSB
    elf[6] = 1; // EV_CURRENT
    elf[0x10..0x12].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[0x12..0x14].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    elf[0x20..0x28].copy_from_slice(&(EHDR as u64).to_le_bytes());
    elf[0x34..0x36].copy_from_slice(&(EHDR as u16).to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&(PHDR as u16).to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    let mut phdr = vec![0u8; PHDR];
    phdr[..4].copy_from_slice(&PT_NOTE.to_le_bytes());
    phdr[4..8].copy_from_slice(&4u32.to_le_bytes()); // PF_R
    phdr[8..16].copy_from_slice(&(note_offset as u64).to_le_bytes());
    phdr[32..40].copy_from_slice(&(note.len() as u64).to_le_bytes());
    phdr[40..48].copy_from_slice(&(note.len() as u64).to_le_bytes());
    phdr[48..56].copy_from_slice(&4u64.to_le_bytes());
    elf.extend_from_slice(&phdr);
    elf.extend_from_slice(&note);
    elf
}

#[cfg(test)]
mod tests {
    use super::*;
    use Solo5DeviceKind::{Block, Net};

    #[test]
    fn reads_the_device_names_solo5_test_net_declares() {
        let elf = elf_with_manifest(&[("service0", Net), ("storage", Block)]);
        let manifest = Solo5Manifest::from_elf("/unikernel/test_net.hvt", &elf)
            .expect("valid")
            .expect("has a manifest");
        assert_eq!(manifest.names(Net), ["service0"]);
        assert_eq!(manifest.names(Block), ["storage"]);
    }

    #[test]
    fn an_elf_without_the_note_has_no_manifest_and_garbage_is_refused_by_name() {
        let mut elf = elf_with_manifest(&[]);
        // Another owner's note in the segment.
        let at = 64 + 56 + 12;
        elf[at..at + 5].copy_from_slice(b"GNU\0\0");
        assert_eq!(Solo5Manifest::from_elf("k", &elf), Ok(None));
        let error = Solo5Manifest::from_elf("/unikernel/k", b"#!/bin/sh\n")
            .expect_err("not ELF")
            .to_string();
        assert!(error.contains("com.urunc.unikernel.binary"), "{error}");
        assert!(error.contains("/unikernel/k"), "{error}");
    }

    #[test]
    fn bad_manifests_are_refused() {
        let good = elf_with_manifest(&[("tap", Net)]);
        let mft = 64 + 56 + MFT_OFFSET;
        let mut wrong_version = good.clone();
        wrong_version[mft] = 2;
        assert!(Solo5Manifest::from_elf("k", &wrong_version).is_err());
        let mut too_many = good.clone();
        too_many[mft + 4] = 9;
        assert!(Solo5Manifest::from_elf("k", &too_many).is_err());
        let mut bad_name = good.clone();
        bad_name[mft + MFT_HEADER_SIZE + ENTRY_SIZE] = b'-';
        assert!(Solo5Manifest::from_elf("k", &bad_name).is_err());
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 10);
        assert!(Solo5Manifest::from_elf("k", &truncated).is_err());
        for cut in 0..good.len() {
            // Never a panic on a truncated file.
            let _ = Solo5Manifest::from_elf("k", &good[..cut]);
        }
    }
}
