//! The layout of a 64-bit little-endian ELF file, as both readers of ELF files need it: the
//! solo5 manifest note (here) and the VMM's loader needs (the shim's `confine::elf`). Pure: the
//! callers read the bytes, and name the file in their own errors.

use std::fmt;

/// `Elf64_Ehdr`.
pub const FILE_HEADER_SIZE: usize = 64;
/// `Elf64_Phdr`.
pub const PROGRAM_HEADER_SIZE: usize = 56;

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_NOTE: u32 = 4;

const MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;

/// Why the first bytes of a file are not the header of an ELF64 little-endian file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotElf64 {
    /// Too short for an ELF header, or without the ELF magic.
    NotElf,
    /// An ELF file of another class or byte order.
    OtherClass,
}

impl fmt::Display for NotElf64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotElf64::NotElf => "not an ELF file",
            NotElf64::OtherClass => "not a 64-bit little-endian ELF file",
        })
    }
}

/// What the readers use of `Elf64_Ehdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// `e_machine`.
    pub machine: u16,
    /// `e_phoff`, `e_phentsize`, `e_phnum`: where the program header table is.
    pub phoff: u64,
    pub phentsize: u16,
    pub phnum: u16,
}

impl FileHeader {
    /// From the file's first bytes (at least [`FILE_HEADER_SIZE`] of them).
    pub fn parse(bytes: &[u8]) -> Result<Self, NotElf64> {
        if bytes.len() < FILE_HEADER_SIZE || bytes[..4] != *MAGIC {
            return Err(NotElf64::NotElf);
        }
        if bytes[4] != ELFCLASS64 || bytes[5] != ELFDATA2LSB {
            return Err(NotElf64::OtherClass);
        }
        let field = |at| u16_at(bytes, at).ok_or(NotElf64::NotElf);
        Ok(FileHeader {
            machine: field(0x12)?,
            phoff: u64_at(bytes, 0x20).ok_or(NotElf64::NotElf)?,
            phentsize: field(0x36)?,
            phnum: field(0x38)?,
        })
    }
}

/// What the readers use of `Elf64_Phdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type`.
    pub kind: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
}

impl ProgramHeader {
    /// From the header's bytes; `None` when fewer than [`PROGRAM_HEADER_SIZE`].
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let bytes = bytes.get(..PROGRAM_HEADER_SIZE)?;
        Some(ProgramHeader {
            kind: u32_at(bytes, 0)?,
            offset: u64_at(bytes, 8)?,
            vaddr: u64_at(bytes, 16)?,
            filesz: u64_at(bytes, 32)?,
        })
    }
}

/// The little-endian u16 at `at`; `None` past the end.
pub fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_of_a_solo5_test_binary_is_read_and_garbage_is_told_apart() {
        let elf = crate::elf_with_manifest(&[]);
        let header = FileHeader::parse(&elf).expect("ELF64");
        assert_eq!(
            (header.machine, header.phoff, header.phentsize, header.phnum),
            (62, 64, 56, 1)
        );
        let first = ProgramHeader::parse(&elf[64..]).expect("a program header");
        assert_eq!((first.kind, first.offset), (PT_NOTE, 120));
        assert_eq!(FileHeader::parse(b"#!/bin/sh\n"), Err(NotElf64::NotElf));
        let mut elf32 = elf.clone();
        elf32[4] = 1;
        assert_eq!(FileHeader::parse(&elf32), Err(NotElf64::OtherClass));
        assert_eq!(ProgramHeader::parse(&elf[64..100]), None);
        assert_eq!(u64_at(&elf, usize::MAX - 2), None);
    }
}
