//! ELF64 headers, parsed by hand with every field bounds-checked: the file is guest input.

use crate::error::Result;
use crate::{errno, return_errno};

pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;

pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
/// Linux refuses program header tables over 64 KiB.
const MAX_PHDRS_BYTES: usize = 65536;

#[derive(Clone, Copy, Debug)]
pub struct ElfHeader {
    pub dynamic: bool,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
}

#[derive(Clone, Copy, Debug)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16> {
    let s = b.get(off..off + 2).ok_or(errno!(ENOEXEC))?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32> {
    let s = b.get(off..off + 4).ok_or(errno!(ENOEXEC))?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Ok(u32::from_le_bytes(a))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64> {
    let s = b.get(off..off + 8).ok_or(errno!(ENOEXEC))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// Does the file start like an ELF file?
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

pub fn parse_header(head: &[u8]) -> Result<ElfHeader> {
    if !is_elf(head) || head.len() < EHDR_SIZE {
        return_errno!(ENOEXEC, "not an ELF file");
    }
    // 64-bit, little endian, current version.
    if head.get(4..7) != Some(&[2, 1, 1][..]) {
        return_errno!(ENOEXEC, "not a 64-bit little-endian ELF");
    }
    let e_type = u16_at(head, 16)?;
    if u16_at(head, 18)? != EM_X86_64 {
        return_errno!(ENOEXEC, "not an x86_64 ELF");
    }
    let dynamic = match e_type {
        ET_EXEC => false,
        ET_DYN => true,
        _ => return_errno!(ENOEXEC, "ELF is neither EXEC nor DYN"),
    };
    if usize::from(u16_at(head, 54)?) != PHDR_SIZE {
        return_errno!(ENOEXEC, "bad e_phentsize");
    }
    let phnum = u16_at(head, 56)?;
    if phnum == 0 || usize::from(phnum) * PHDR_SIZE > MAX_PHDRS_BYTES {
        return_errno!(ENOEXEC, "bad e_phnum");
    }
    Ok(ElfHeader {
        dynamic,
        entry: u64_at(head, 24)?,
        phoff: u64_at(head, 32)?,
        phnum,
    })
}

pub fn parse_phdrs(table: &[u8], phnum: u16) -> Result<Vec<ProgramHeader>> {
    (0..usize::from(phnum))
        .map(|i| {
            let b = table
                .get(i * PHDR_SIZE..(i + 1) * PHDR_SIZE)
                .ok_or(errno!(ENOEXEC))?;
            Ok(ProgramHeader {
                p_type: u32_at(b, 0)?,
                flags: u32_at(b, 4)?,
                offset: u64_at(b, 8)?,
                vaddr: u64_at(b, 16)?,
                filesz: u64_at(b, 32)?,
                memsz: u64_at(b, 40)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        assert!(parse_header(b"\x7fELF").is_err());
        assert!(parse_header(&[0u8; 64]).is_err());
        let mut h = [0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4..7].copy_from_slice(&[2, 1, 1]);
        h[16] = 2;
        h[18] = 62;
        h[54] = 56;
        h[56] = 0; // no program headers
        assert!(parse_header(&h).is_err());
        h[56] = 1;
        assert!(parse_header(&h).is_ok());
        assert!(parse_phdrs(&[0u8; 10], 1).is_err());
    }
}
