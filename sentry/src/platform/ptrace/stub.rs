//! The stub program: a tiny static ELF the ptrace platform execs for every new address
//! space. Exec gives a clean address space holding nothing of the sentry; the sentry then
//! unmaps everything but the stub's one page and maps application memory around it.

/// Where the stub's page lives. Below the range where Linux may place the stub's own
/// initial stack at exec time (up to 16 GiB under 0x7fff_ffff_f000), so the exec cannot
/// collide with it, and above everything the application is given.
pub const STUB_BASE: u64 = 0x7ff0_0000_0000;

/// Offset of the `syscall; int3` pair the sentry jumps to when it injects a syscall.
const SYSCALL_SITE_OFFSET: u64 = 123;

/// Address of the injection site: `syscall` then `int3`, so an injected call stops the
/// stub again right after the host kernel returns from it.
pub const SYSCALL_SITE: u64 = STUB_BASE + SYSCALL_SITE_OFFSET;

/// Address just after the `int3` that follows an injected syscall.
pub const SYSCALL_SITE_END: u64 = SYSCALL_SITE + 3;

/// Where a new stub thread is cloned: the parent stops at an `int3` as after any
/// injection; the child loops stopping itself with SIGSTOP until a sentry thread
/// attaches to it and gives it application registers.
pub const CLONE_SITE: u64 = SYSCALL_SITE_END;
/// Address just after the parent's `int3` at the clone site.
pub const CLONE_SITE_END: u64 = STUB_BASE + 157;

const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;

/// The stub ELF image: header, one read+execute PT_LOAD, and five bytes of code.
pub fn image() -> Vec<u8> {
    let code: [u8; 37] = [
        0xcc, 0xeb, 0xfd, // 120 entry: int3; jmp entry — never runs free
        0x0f, 0x05, 0xcc, // 123 injection site: syscall; int3
        0x0f, 0x05, // 126 clone site: syscall
        0x48, 0x85, 0xc0, // 128 test rax, rax
        0x75, 0x17, // 131 jnz parent (156)
        0xb8, 0x27, 0x00, 0x00, 0x00, // 133 child: mov eax, SYS_getpid
        0x0f, 0x05, // 138 syscall
        0x89, 0xc7, // 140 mov edi, eax
        0xbe, 0x13, 0x00, 0x00, 0x00, // 142 mov esi, SIGSTOP
        0xb8, 0x3e, 0x00, 0x00, 0x00, // 147 mov eax, SYS_kill
        0x0f, 0x05, // 152 syscall
        0xeb, 0xe9, // 154 jmp child (133)
        0xcc, // 156 parent: int3
    ];
    debug_assert_eq!(CODE_OFFSET + 3, SYSCALL_SITE_OFFSET);
    elf_image(&code, CODE_OFFSET)
}

/// Where the code of a stub image starts: right after the ELF and program headers.
pub const CODE_OFFSET: u64 = EHDR_SIZE as u64 + PHDR_SIZE as u64;

/// A static ELF image: header, one read+execute PT_LOAD of the whole file at `STUB_BASE`,
/// then `code` (at [`CODE_OFFSET`]); execution starts `entry` bytes into the file.
pub fn elf_image(code: &[u8], entry: u64) -> Vec<u8> {
    let total = CODE_OFFSET + code.len() as u64;

    let mut v = Vec::with_capacity(total as usize);
    // e_ident: magic, 64-bit, little endian, version 1, System V ABI, padding.
    v.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    v.extend_from_slice(&0x3eu16.to_le_bytes()); // e_machine: x86_64
    v.extend_from_slice(&1u32.to_le_bytes()); // e_version
    v.extend_from_slice(&(STUB_BASE + entry).to_le_bytes()); // e_entry
    v.extend_from_slice(&u64::from(EHDR_SIZE).to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    v.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_ehsize
    v.extend_from_slice(&PHDR_SIZE.to_le_bytes()); // e_phentsize
    v.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    v.extend_from_slice(&0u16.to_le_bytes()); // e_shentsize
    v.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    v.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
                                              // Program header: PT_LOAD, R+X, the whole file at STUB_BASE.
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&5u32.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(&STUB_BASE.to_le_bytes());
    v.extend_from_slice(&STUB_BASE.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(&0x1000u64.to_le_bytes());
    v.extend_from_slice(code);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_site_is_syscall_then_int3() {
        let img = image();
        let off = SYSCALL_SITE_OFFSET as usize;
        assert_eq!(&img[off..off + 3], &[0x0f, 0x05, 0xcc]);
        assert_eq!(&img[..4], b"\x7fELF");
        let clone = (CLONE_SITE - STUB_BASE) as usize;
        assert_eq!(&img[clone..clone + 2], &[0x0f, 0x05]);
        let end = (CLONE_SITE_END - STUB_BASE) as usize;
        assert_eq!(img[end - 1], 0xcc);
        // The child's loop jumps back to its own start.
        assert_eq!(155 + 1 - 23, 133);
    }
}
