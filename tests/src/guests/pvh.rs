//! A tiny x86 PVH guest, hand-assembled: it prints a marker line on COM1 and
//! then halts forever or powers off.
//!
//! PVH is the boot protocol qemu's `-kernel` (with `-M microvm` or q35),
//! firecracker and cloud-hypervisor follow for an ELF file carrying a Xen note
//! `XEN_ELFNOTE_PHYS32_ENTRY`: they load the segments at their physical
//! addresses and jump to the note's entry in 32-bit protected mode with paging
//! off and flat segments. The code is 32-bit, but the file is an ELF64 (as a
//! Linux vmlinux is): firecracker and cloud-hypervisor load kernels with
//! linux-loader, which reads only 64-bit ELF headers ("Invalid program header
//! size" for a 32-bit one); qemu loads both.
//!
//! qemu has no power-off device the guest could reach without ACPI, so "power
//! off" is a triple fault, which `-no-reboot` turns into qemu exiting. Only
//! qemu ends cleanly on it: on this nested KVM firecracker sees
//! `KVM_EXIT_INTERNAL_ERROR` and exits 1, and cloud-hypervisor resets the VM.

use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// What the guest does after printing its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvhBehaviour {
    /// `cli; hlt` in a loop: runs until the VMM is killed.
    HaltForever,
    /// Triple fault (an empty IDT, then `int3`): qemu with `-no-reboot` exits
    /// by itself with status 0 (see the module comment for the other VMMs).
    PowerOff,
}

/// Where the image is loaded (1 MiB, above the legacy holes).
const LOAD_ADDRESS: u32 = 0x0010_0000;
const ELF_HEADER_SIZE: u32 = 64;
const PROGRAM_HEADER_SIZE: u32 = 56;
const PROGRAM_HEADER_COUNT: u32 = 2;
const NOTE_OFFSET: u32 = ELF_HEADER_SIZE + PROGRAM_HEADER_SIZE * PROGRAM_HEADER_COUNT;
const XEN_NOTE_NAME: &[u8; 4] = b"Xen\0";
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
const NOTE_SIZE: u32 = 12 + 4 + 4;
const CODE_OFFSET: u32 = NOTE_OFFSET + NOTE_SIZE;
const COM1_PORT: u16 = 0x3f8;

/// Writes `<dir>/pvh-<behaviour>.elf` and returns its path. The guest prints
/// `marker` and a newline on COM1 (serial `ttyS0`), then does `behaviour`.
pub fn pvh_guest(dir: &Path, behaviour: PvhBehaviour, marker: &str) -> Result<PathBuf> {
    if marker.bytes().any(|byte| byte == 0 || byte == b'\n') {
        return Err(HarnessError::Invalid {
            field: "marker",
            value: marker.to_string(),
            reason: "must not contain NUL or newline".into(),
        });
    }
    let path = dir.join(match behaviour {
        PvhBehaviour::HaltForever => "pvh-halt.elf",
        PvhBehaviour::PowerOff => "pvh-poweroff.elf",
    });
    std::fs::write(&path, pvh_elf(behaviour, marker)).map_err(HarnessError::io("write", &path))?;
    Ok(path)
}

/// The whole ELF file: header, a PT_LOAD covering the file, a PT_NOTE with
/// the PVH entry, then code and data.
pub fn pvh_elf(behaviour: PvhBehaviour, marker: &str) -> Vec<u8> {
    let entry = LOAD_ADDRESS + CODE_OFFSET;
    let code_length = code(behaviour, 0, 0).len() as u32;
    let idt_address = entry + code_length;
    // A 6-byte IDT descriptor of zeros: limit 0, so any interrupt faults.
    let message_address = idt_address + 6;
    let mut body = code(behaviour, message_address, idt_address);
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(marker.as_bytes());
    body.extend_from_slice(b"\n\0");
    let file_size = CODE_OFFSET + body.len() as u32;

    let mut elf = Vec::with_capacity(file_size as usize);
    // e_ident: ELF, 64-bit, little-endian, version 1, System V ABI.
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf.extend_from_slice(&[0; 8]);
    push_u16(&mut elf, 2); // e_type: executable
    push_u16(&mut elf, 62); // e_machine: x86-64
    push_u32(&mut elf, 1); // e_version
    push_u64(&mut elf, entry.into());
    push_u64(&mut elf, ELF_HEADER_SIZE.into()); // e_phoff
    push_u64(&mut elf, 0); // e_shoff: no sections
    push_u32(&mut elf, 0); // e_flags
    push_u16(&mut elf, ELF_HEADER_SIZE as u16);
    push_u16(&mut elf, PROGRAM_HEADER_SIZE as u16);
    push_u16(&mut elf, PROGRAM_HEADER_COUNT as u16);
    push_u16(&mut elf, 64); // e_shentsize
    push_u16(&mut elf, 0); // e_shnum
    push_u16(&mut elf, 0); // e_shstrndx

    const PT_LOAD: u32 = 1;
    const PT_NOTE: u32 = 4;
    const READ_WRITE_EXECUTE: u32 = 7;
    const READ: u32 = 4;
    let note_address = LOAD_ADDRESS + NOTE_OFFSET;
    for (kind, flags, offset, address, size, align) in [
        (
            PT_LOAD,
            READ_WRITE_EXECUTE,
            0,
            LOAD_ADDRESS,
            file_size,
            0x1000,
        ),
        (PT_NOTE, READ, NOTE_OFFSET, note_address, NOTE_SIZE, 4),
    ] {
        push_u32(&mut elf, kind);
        push_u32(&mut elf, flags);
        // p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
        for field in [offset, address, address, size, size, align] {
            push_u64(&mut elf, field.into());
        }
    }

    // The note header has 32-bit fields in ELF64 too.
    push_u32(&mut elf, XEN_NOTE_NAME.len() as u32); // namesz
    push_u32(&mut elf, 4); // descsz
    push_u32(&mut elf, XEN_ELFNOTE_PHYS32_ENTRY);
    elf.extend_from_slice(XEN_NOTE_NAME);
    push_u32(&mut elf, entry);

    elf.extend_from_slice(&body);
    elf
}

/// The machine code: print the NUL-terminated string at `message_address`
/// byte by byte on COM1, then halt or triple-fault.
fn code(behaviour: PvhBehaviour, message_address: u32, idt_address: u32) -> Vec<u8> {
    let mut code = vec![0xbe]; // mov esi, message_address
    code.extend_from_slice(&message_address.to_le_bytes());
    code.extend_from_slice(&[0x66, 0xba]); // mov dx, COM1_PORT
    code.extend_from_slice(&COM1_PORT.to_le_bytes());
    code.extend_from_slice(&[
        0xac, //       next: lodsb
        0x84, 0xc0, //       test al, al
        0x74, 0x03, //       jz done (skip out and jmp)
        0xee, //             out dx, al
        0xeb, 0xf8, //       jmp next
    ]);
    match behaviour {
        PvhBehaviour::HaltForever => code.extend_from_slice(&[
            0xfa, //       done: cli
            0xf4, //       halt: hlt
            0xeb, 0xfd, //       jmp halt (an NMI can wake hlt)
        ]),
        PvhBehaviour::PowerOff => {
            code.extend_from_slice(&[0x0f, 0x01, 0x1d]); // done: lidt [idt_address]
            code.extend_from_slice(&idt_address.to_le_bytes());
            code.push(0xcc); // int3: #GP, #DF, triple fault
        }
    }
    code
}

fn push_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn push_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn push_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod self_test;
