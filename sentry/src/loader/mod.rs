//! Loading programs: ELF (static, static-PIE, dynamic with PT_INTERP), `#!` scripts, and
//! the initial stack with argv, envp and the auxiliary vector.
//!
//! There is no vDSO: `AT_SYSINFO_EHDR` is absent, so libc makes real syscalls for the
//! clock, which the sentry serves.
#![deny(unsafe_code)]

mod elf;

use crate::error::Result;
use crate::mm::{page_down, page_up, Backing, MappableFile, MemoryManager, PAGE_SIZE};
use crate::platform::{Prot, Regs};
use crate::{errno, return_errno};
use elf::{ProgramHeader, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use std::sync::Arc;

/// An executable as the loader sees it: bytes to read and map, and its path.
pub struct Executable {
    pub file: Arc<dyn MappableFile>,
    pub path: Vec<u8>,
}

/// Opens a path for execution (permission and type checks included).
pub type Opener<'a> = dyn Fn(&[u8]) -> Result<Executable> + 'a;

/// Linux's limit on nested `#!` interpreters (`BINPRM_MAX_RECURSION`).
const MAX_INTERP_DEPTH: usize = 4;
/// Longest `#!` line Linux reads (`BINPRM_BUF_SIZE`).
const SHEBANG_MAX: usize = 256;
/// Linux's per-string limit (`MAX_ARG_STRLEN`).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Total argv + envp bytes: a quarter of the 8 MiB stack, as Linux allows.
const MAX_ARGS_BYTES: usize = 2 << 20;

/// Credentials the auxiliary vector reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuxCreds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
}

/// What `execve` needs to know after loading.
pub struct Loaded {
    pub regs: Regs,
    /// The file that was finally loaded (the script interpreter for `#!`).
    pub exe_path: Vec<u8>,
}

/// Resolve `#!` chains, then load the ELF into `mm` and build the initial stack.
pub fn load(
    mm: &mut MemoryManager,
    open: &Opener<'_>,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    creds: AuxCreds,
) -> Result<Loaded> {
    check_args(&argv, &envp)?;
    let execfn = path.to_vec();
    let mut exe = open(path)?;
    let mut head = read_head(&*exe.file)?;
    for depth in 0.. {
        if !head.starts_with(b"#!") {
            break;
        }
        if depth >= MAX_INTERP_DEPTH {
            return_errno!(ELOOP, "too many nested #! interpreters");
        }
        let (interp, arg) = parse_shebang(&head)?;
        // Linux: argv[0] is replaced by the interpreter, its optional argument, and the
        // script's path as it was given.
        let mut new_argv = vec![interp.clone()];
        new_argv.extend(arg);
        new_argv.push(exe.path.clone());
        new_argv.extend(argv.into_iter().skip(1));
        argv = new_argv;
        check_args(&argv, &envp)?;
        exe = open(&interp)?;
        head = read_head(&*exe.file)?;
    }
    let hdr = elf::parse_header(&head)?;
    let phdrs = read_phdrs(&*exe.file, &hdr)?;
    let main_bias = if hdr.dynamic { mm.pie_base() } else { 0 };
    let main = map_image(mm, &exe, &phdrs, main_bias)?;
    let mut entry = hdr.entry.checked_add(main_bias).ok_or(errno!(ENOEXEC))?;
    let mut interp_base = 0;
    if let Some(ip) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let ipath = read_interp_path(&*exe.file, ip)?;
        let iexe = open(&ipath)?;
        let ihead = read_head(&*iexe.file)?;
        let ihdr = elf::parse_header(&ihead)?;
        let iphdrs = read_phdrs(&*iexe.file, &ihdr)?;
        let img = map_image(mm, &iexe, &iphdrs, 0)?;
        interp_base = img.bias;
        entry = ihdr.entry.checked_add(img.bias).ok_or(errno!(ENOEXEC))?;
    }
    mm.set_brk_start(main.end);

    let phdr_addr = phdrs
        .iter()
        .find(|p| p.p_type == PT_PHDR)
        .map(|p| p.vaddr)
        .or_else(|| {
            // No PT_PHDR: the table is wherever the segment holding file offset e_phoff
            // put it.
            phdrs
                .iter()
                .find(|p| {
                    p.p_type == PT_LOAD
                        && p.offset <= hdr.phoff
                        && hdr.phoff < p.offset.saturating_add(p.filesz)
                })
                .map(|p| p.vaddr + (hdr.phoff - p.offset))
        })
        .unwrap_or(0)
        .wrapping_add(main_bias);

    let aux = AuxInfo {
        phdr: phdr_addr,
        phnum: u64::from(hdr.phnum),
        base: interp_base,
        entry: hdr.entry.wrapping_add(main_bias),
        creds,
    };
    let sp = build_stack(mm, &argv, &envp, &execfn, &aux)?;

    Ok(Loaded {
        regs: initial_regs(entry, sp),
        exe_path: exe.path,
    })
}

fn check_args(argv: &[Vec<u8>], envp: &[Vec<u8>]) -> Result<()> {
    let mut total = 0usize;
    for s in argv.iter().chain(envp) {
        if s.len() + 1 > MAX_ARG_STRLEN {
            return_errno!(E2BIG);
        }
        total = total.saturating_add(s.len() + 1 + 8);
    }
    if total > MAX_ARGS_BYTES {
        return_errno!(E2BIG);
    }
    Ok(())
}

fn read_exact_at(file: &dyn MappableFile, buf: &mut [u8], off: u64) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let dst = buf.get_mut(got..).ok_or(errno!(EIO))?;
        let n = file.read_at(dst, off + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

fn read_head(file: &dyn MappableFile) -> Result<Vec<u8>> {
    let mut head = vec![0u8; SHEBANG_MAX.max(elf::EHDR_SIZE)];
    let n = read_exact_at(file, &mut head, 0)?;
    head.truncate(n);
    if n < 2 {
        return_errno!(ENOEXEC, "file too short to execute");
    }
    Ok(head)
}

/// The interpreter and its optional single argument from a `#!` line.
fn parse_shebang(head: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let line = head.get(2..).unwrap_or_default();
    let line = match line.iter().position(|&b| b == b'\n') {
        Some(n) => line.get(..n).unwrap_or_default(),
        None => line,
    };
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let trimmed: &[u8] = {
        let s = line.iter().position(|b| !is_blank(b)).unwrap_or(line.len());
        let e = line.iter().rposition(|b| !is_blank(b)).map_or(s, |e| e + 1);
        line.get(s..e).unwrap_or_default()
    };
    if trimmed.is_empty() {
        return_errno!(ENOEXEC, "empty #! line");
    }
    let split = trimmed.iter().position(is_blank);
    Ok(match split {
        None => (trimmed.to_vec(), None),
        Some(i) => {
            let interp = trimmed.get(..i).unwrap_or_default().to_vec();
            let rest = trimmed.get(i..).unwrap_or_default();
            let s = rest.iter().position(|b| !is_blank(b)).unwrap_or(rest.len());
            let arg = rest.get(s..).unwrap_or_default();
            (interp, (!arg.is_empty()).then(|| arg.to_vec()))
        }
    })
}

fn read_phdrs(file: &dyn MappableFile, hdr: &elf::ElfHeader) -> Result<Vec<ProgramHeader>> {
    let len = usize::from(hdr.phnum) * elf::PHDR_SIZE;
    let mut table = vec![0u8; len];
    if read_exact_at(file, &mut table, hdr.phoff)? != len {
        return_errno!(ENOEXEC, "truncated program headers");
    }
    elf::parse_phdrs(&table, hdr.phnum)
}

fn read_interp_path(file: &dyn MappableFile, ph: &ProgramHeader) -> Result<Vec<u8>> {
    if ph.filesz < 2 || ph.filesz > 4096 {
        return_errno!(ENOEXEC, "bad PT_INTERP");
    }
    let mut buf = vec![0u8; ph.filesz as usize];
    if read_exact_at(file, &mut buf, ph.offset)? != buf.len() {
        return_errno!(ENOEXEC, "truncated PT_INTERP");
    }
    match buf.iter().position(|&b| b == 0) {
        Some(n) => {
            buf.truncate(n);
            Ok(buf)
        }
        None => return_errno!(ENOEXEC, "PT_INTERP not NUL-terminated"),
    }
}

struct Image {
    bias: u64,
    /// End of the highest segment (page aligned): where `brk` starts for the main image.
    end: u64,
}

fn prot_of(flags: u32) -> Prot {
    Prot {
        read: flags & PF_R != 0,
        write: flags & PF_W != 0,
        exec: flags & PF_X != 0,
    }
}

/// Map an image's PT_LOAD segments. `bias` 0 for a dynamic image means "anywhere".
fn map_image(
    mm: &mut MemoryManager,
    exe: &Executable,
    phdrs: &[ProgramHeader],
    bias: u64,
) -> Result<Image> {
    let loads: Vec<&ProgramHeader> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let first = loads.first().ok_or(errno!(ENOEXEC, "no PT_LOAD"))?;
    let lo = page_down(first.vaddr);
    let mut hi = 0u64;
    for p in &loads {
        if p.filesz > p.memsz || p.vaddr % PAGE_SIZE != p.offset % PAGE_SIZE {
            return_errno!(ENOEXEC, "bad PT_LOAD");
        }
        let end = p.vaddr.checked_add(p.memsz).ok_or(errno!(ENOEXEC))?;
        hi = hi.max(page_up(end).ok_or(errno!(ENOEXEC))?);
    }
    if hi <= lo {
        return_errno!(ENOEXEC, "empty image");
    }
    let span = hi - lo;
    let name = String::from_utf8_lossy(&exe.path).into_owned();
    // Reserve the whole span first so the segments land together; then place each one.
    let bias = if bias == 0 && lo == 0 {
        let at = mm.mmap(
            0,
            span,
            Prot::NONE,
            false,
            false,
            false,
            Backing::Anon,
            name.clone(),
        )?;
        at - lo
    } else {
        let base = lo.checked_add(bias).ok_or(errno!(ENOEXEC))?;
        mm.mmap(
            base,
            span,
            Prot::NONE,
            true,
            false,
            false,
            Backing::Anon,
            name.clone(),
        )?;
        bias
    };
    for p in &loads {
        let prot = prot_of(p.flags);
        let vaddr = p.vaddr.checked_add(bias).ok_or(errno!(ENOEXEC))?;
        let seg_start = page_down(vaddr);
        let file_end = vaddr.checked_add(p.filesz).ok_or(errno!(ENOEXEC))?;
        let mem_end = vaddr.checked_add(p.memsz).ok_or(errno!(ENOEXEC))?;
        let file_page_end = page_up(file_end).ok_or(errno!(ENOEXEC))?;
        let mem_page_end = page_up(mem_end).ok_or(errno!(ENOEXEC))?;
        if p.filesz > 0 {
            let backing = Backing::File {
                file: exe.file.clone(),
                offset: page_down(p.offset),
            };
            let len = file_page_end - seg_start;
            mm.mmap(
                seg_start,
                len,
                prot,
                true,
                false,
                false,
                backing,
                name.clone(),
            )?;
            // The rest of the last file page belongs to .bss: Linux zeroes it.
            if mem_end > file_end && file_page_end > file_end {
                let zeros = vec![0u8; (file_page_end - file_end) as usize];
                mm.write_unchecked(file_end, &zeros)?;
            }
        }
        let anon_start = if p.filesz > 0 {
            file_page_end
        } else {
            seg_start
        };
        if mem_page_end > anon_start {
            let len = mem_page_end - anon_start;
            mm.mmap(
                anon_start,
                len,
                prot,
                true,
                false,
                false,
                Backing::Anon,
                String::new(),
            )?;
        }
    }
    Ok(Image {
        bias,
        end: hi.checked_add(bias).ok_or(errno!(ENOEXEC))?,
    })
}

struct AuxInfo {
    phdr: u64,
    phnum: u64,
    base: u64,
    entry: u64,
    creds: AuxCreds,
}

// Auxiliary vector keys (linux/auxvec.h).
const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;
const AT_MINSIGSTKSZ: u64 = 51;

/// Lay out argc, argv, envp, auxv and their strings at the top of a fresh stack; returns
/// the initial stack pointer (pointing at argc, 16-byte aligned).
fn build_stack(
    mm: &mut MemoryManager,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    aux: &AuxInfo,
) -> Result<u64> {
    let top = mm.stack_top();
    let stack_size = crate::mm::STACK_SIZE;
    let base = top - stack_size;
    mm.mmap(
        base,
        stack_size,
        Prot::RW,
        true,
        false,
        false,
        Backing::Anon,
        "[stack]".into(),
    )?;

    // Strings first, from the top down.
    let mut sp = top;
    let mut push_bytes = |mm: &mut MemoryManager, data: &[u8]| -> Result<u64> {
        sp = sp.checked_sub(data.len() as u64).ok_or(errno!(E2BIG))?;
        if sp < base {
            return_errno!(E2BIG);
        }
        mm.copy_out(crate::mm::UserAddr(sp), data)?;
        Ok(sp)
    };
    let cstr = |s: &[u8]| {
        let mut v = s.to_vec();
        v.push(0);
        v
    };
    let execfn_addr = push_bytes(mm, &cstr(execfn))?;
    let env_end = execfn_addr;
    let mut envp_addrs = Vec::with_capacity(envp.len());
    for e in envp.iter().rev() {
        envp_addrs.push(push_bytes(mm, &cstr(e))?);
    }
    envp_addrs.reverse();
    let env_start = envp_addrs.first().copied().unwrap_or(env_end);
    let mut argv_addrs = Vec::with_capacity(argv.len());
    for a in argv.iter().rev() {
        argv_addrs.push(push_bytes(mm, &cstr(a))?);
    }
    argv_addrs.reverse();
    let arg_start = argv_addrs.first().copied().unwrap_or(env_start);
    let platform_addr = push_bytes(mm, b"x86_64\0")?;
    let mut random = [0u8; 16];
    let _ = getrandom_bytes(&mut random);
    let random_addr = push_bytes(mm, &random)?;

    let auxv: Vec<(u64, u64)> = vec![
        (AT_HWCAP, host_auxval(libc::AT_HWCAP)),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, aux.phdr),
        (AT_PHENT, elf::PHDR_SIZE as u64),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry),
        (AT_UID, u64::from(aux.creds.uid)),
        (AT_EUID, u64::from(aux.creds.euid)),
        (AT_GID, u64::from(aux.creds.gid)),
        (AT_EGID, u64::from(aux.creds.egid)),
        // Secure mode (glibc then ignores LD_PRELOAD and friends) when the image runs
        // with ids other than its real ones: set-ID programs (`bprm->secureexec`).
        (
            AT_SECURE,
            u64::from(aux.creds.uid != aux.creds.euid || aux.creds.gid != aux.creds.egid),
        ),
        (AT_RANDOM, random_addr),
        (AT_HWCAP2, host_auxval(libc::AT_HWCAP2)),
        (AT_EXECFN, execfn_addr),
        (AT_PLATFORM, platform_addr),
        (AT_MINSIGSTKSZ, host_auxval(AT_MINSIGSTKSZ).max(2048)),
        (AT_NULL, 0),
    ];

    // The pointer block: argc, argv…, NULL, envp…, NULL, auxv pairs.
    let words = 1 + argv_addrs.len() + 1 + envp_addrs.len() + 1 + auxv.len() * 2;
    let block_len = (words * 8) as u64;
    let start = (sp.checked_sub(block_len).ok_or(errno!(E2BIG))?) & !15;
    if start < base {
        return_errno!(E2BIG);
    }
    let mut block: Vec<u8> = Vec::with_capacity(words * 8);
    let mut put = |v: u64| block.extend_from_slice(&v.to_le_bytes());
    put(argv_addrs.len() as u64);
    argv_addrs.iter().for_each(|a| put(*a));
    put(0);
    envp_addrs.iter().for_each(|a| put(*a));
    put(0);
    for (k, v) in &auxv {
        put(*k);
        put(*v);
    }
    mm.copy_out(crate::mm::UserAddr(start), &block)?;
    mm.exec_layout = crate::mm::ExecLayout {
        arg_start,
        arg_end: env_start,
        env_start,
        env_end,
        auxv,
    };
    Ok(start)
}

fn host_auxval(key: u64) -> u64 {
    crate::host::getauxval(key)
}

fn getrandom_bytes(buf: &mut [u8]) -> Result<()> {
    crate::host::getrandom(buf).map(|_| ())
}

/// Registers for a fresh process image: everything zero but the entry point, the stack
/// and the user segments (`__USER_CS`, `__USER_DS`), interrupts enabled.
fn initial_regs(entry: u64, sp: u64) -> Regs {
    let mut r = zeroed_regs();
    r.rip = entry;
    r.rsp = sp;
    r.cs = 0x33;
    r.ss = 0x2b;
    r.eflags = 0x202;
    r
}

pub fn zeroed_regs() -> Regs {
    Regs {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        rbp: 0,
        rbx: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rax: 0,
        rcx: 0,
        rdx: 0,
        rsi: 0,
        rdi: 0,
        orig_rax: 0,
        rip: 0,
        cs: 0,
        eflags: 0,
        rsp: 0,
        ss: 0,
        fs_base: 0,
        gs_base: 0,
        ds: 0,
        es: 0,
        fs: 0,
        gs: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        let (i, a) = parse_shebang(b"#!/bin/sh\necho").unwrap();
        assert_eq!(i, b"/bin/sh");
        assert!(a.is_none());
        let (i, a) = parse_shebang(b"#! /usr/bin/env  python3 -u \n").unwrap();
        assert_eq!(i, b"/usr/bin/env");
        assert_eq!(a.unwrap(), b"python3 -u");
        assert!(parse_shebang(b"#!   \n").is_err());
    }
}
