//! What a dynamically linked ELF file needs in order to load: its interpreter (`PT_INTERP`),
//! the libraries it names (`DT_NEEDED`) and its own search paths (`DT_RPATH`, `DT_RUNPATH`).
//!
//! Only 64-bit little-endian objects are read (x86_64 and aarch64 hosts, where the VMMs run).
//! Only the headers and the dynamic section are read, with positioned reads: a qemu binary is
//! tens of megabytes and none of its code matters here.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use runtime_core::elf64::{
    u64_at, FileHeader, ProgramHeader, FILE_HEADER_SIZE, PROGRAM_HEADER_SIZE, PT_DYNAMIC,
    PT_INTERP, PT_LOAD,
};

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const PHDR_SIZE: u64 = PROGRAM_HEADER_SIZE as u64;
const DYN_SIZE: u64 = 16;
/// Far above what any real object carries; bounds what a corrupt header can make us read.
const MAX_HEADERS: u64 = 4096;
const MAX_TABLE_BYTES: u64 = 16 << 20;

/// A statically linked file has neither interpreter nor needed libraries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfNeeds {
    /// The ELF machine (`e_machine`): a library must match its user's.
    pub machine: u16,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// Directories from `DT_RPATH`, searched before the system's (only when there is no
    /// `DT_RUNPATH`), `$ORIGIN` not yet expanded.
    pub rpath: Vec<String>,
    /// Directories from `DT_RUNPATH`, searched before the system's.
    pub runpath: Vec<String>,
}

/// Reads what `path` needs to load; an error says which part of which file is unreadable.
pub fn read_needs(path: &Path) -> io::Result<ElfNeeds> {
    let file = File::open(path)?;
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut header = [0u8; FILE_HEADER_SIZE];
    file.read_exact_at(&mut header, 0)
        .map_err(|_| invalid("shorter than an ELF header"))?;
    let header = FileHeader::parse(&header).map_err(|fault| invalid(&fault.to_string()))?;
    let phnum = u64::from(header.phnum);
    if u64::from(header.phentsize) != PHDR_SIZE || phnum > MAX_HEADERS {
        return Err(invalid("unexpected program header table"));
    }
    let table = read_range(&file, header.phoff, phnum * PHDR_SIZE)
        .map_err(|_| invalid("truncated program headers"))?;
    // Every chunk is a whole program header: none is left out.
    let segments: Vec<ProgramHeader> = table
        .chunks_exact(PROGRAM_HEADER_SIZE)
        .filter_map(ProgramHeader::parse)
        .collect();

    let mut needs = ElfNeeds {
        machine: header.machine,
        ..ElfNeeds::default()
    };
    if let Some(interp) = segments.iter().find(|s| s.kind == PT_INTERP) {
        let bytes = read_range(&file, interp.offset, interp.filesz)
            .map_err(|_| invalid("truncated PT_INTERP"))?;
        needs.interpreter = Some(c_string(&bytes, 0).ok_or_else(|| invalid("bad PT_INTERP"))?);
    }
    let Some(dynamic) = segments.iter().find(|s| s.kind == PT_DYNAMIC) else {
        return Ok(needs);
    };
    let entries = read_range(
        &file,
        dynamic.offset,
        dynamic.filesz.min(MAX_HEADERS * DYN_SIZE),
    )
    .map_err(|_| invalid("truncated PT_DYNAMIC"))?;
    let mut strtab_vaddr = None;
    let mut strsz = None;
    let mut needed = Vec::new();
    let mut rpath = Vec::new();
    let mut runpath = Vec::new();
    for entry in entries.chunks_exact(DYN_SIZE as usize) {
        // A whole entry: both words are there.
        let (Some(tag), Some(value)) = (u64_at(entry, 0), u64_at(entry, 8)) else {
            break;
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(value),
            DT_STRTAB => strtab_vaddr = Some(value),
            DT_STRSZ => strsz = Some(value),
            DT_RPATH => rpath.push(value),
            DT_RUNPATH => runpath.push(value),
            _ => {}
        }
    }
    let (Some(strtab_vaddr), Some(strsz)) = (strtab_vaddr, strsz) else {
        return Ok(needs);
    };
    let strtab_offset = segments
        .iter()
        .filter(|s| s.kind == PT_LOAD)
        .find(|s| strtab_vaddr >= s.vaddr && strtab_vaddr - s.vaddr < s.filesz)
        .map(|s| strtab_vaddr - s.vaddr + s.offset)
        .ok_or_else(|| invalid("DT_STRTAB outside every loaded segment"))?;
    if strsz > MAX_TABLE_BYTES {
        return Err(invalid("DT_STRSZ too large"));
    }
    let strtab =
        read_range(&file, strtab_offset, strsz).map_err(|_| invalid("truncated string table"))?;
    let name = |offset: u64| c_string(&strtab, offset).ok_or_else(|| invalid("bad dynamic string"));
    for offset in needed {
        needs.needed.push(name(offset)?);
    }
    for offset in rpath {
        needs
            .rpath
            .extend(name(offset)?.split(':').map(String::from));
    }
    for offset in runpath {
        needs
            .runpath
            .extend(name(offset)?.split(':').map(String::from));
    }
    Ok(needs)
}

fn read_range(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; len as usize];
    file.read_exact_at(&mut bytes, offset)?;
    Ok(bytes)
}

fn c_string(bytes: &[u8], offset: u64) -> Option<String> {
    let rest = bytes.get(usize::try_from(offset).ok()?..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    String::from_utf8(rest[..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_names_its_interpreter_and_libc() {
        let needs = read_needs(Path::new("/bin/sh")).expect("read /bin/sh");
        let interpreter = needs.interpreter.expect("interpreter");
        assert!(
            interpreter.starts_with('/') && interpreter.contains("ld-"),
            "{interpreter}"
        );
        assert!(
            needs.needed.iter().any(|n| n.starts_with("libc.so")),
            "{:?}",
            needs.needed
        );
    }

    #[test]
    fn a_static_executable_needs_nothing() {
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            skipped!("SKIPPED: /bin/busybox is missing (apt-get install busybox-static)");
            return;
        }
        let needs = read_needs(busybox).expect("read busybox");
        assert_eq!(needs.interpreter, None);
        assert!(needs.needed.is_empty(), "{:?}", needs.needed);
    }

    #[test]
    fn non_elf_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
        let error = read_needs(&script).expect_err("not ELF");
        assert!(error.to_string().contains("script"), "{error}");
        let short = dir.path().join("short");
        std::fs::write(&short, b"\x7fELF").expect("write");
        assert!(read_needs(&short).is_err());
    }
}
