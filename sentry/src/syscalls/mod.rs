//! System call dispatch and one module per family.
//!
//! Arguments are decoded once here, at the edge: handlers take typed values (`i32` fds,
//! [`UserAddr`] pointers, `usize` lengths) and never see raw registers.
#![deny(unsafe_code)]

pub mod file;
pub mod fs;

use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;

/// The six argument registers of a syscall (rdi, rsi, rdx, r10, r8, r9 on x86_64).
#[derive(Clone, Copy, Debug, Default)]
pub struct SyscallArgs(pub [u64; 6]);

impl SyscallArgs {
    fn raw(&self, i: usize) -> u64 {
        self.0.get(i).copied().unwrap_or(0)
    }
    /// A file descriptor: the low 32 bits as Linux reads `int fd`.
    pub fn fd(&self, i: usize) -> i32 {
        self.raw(i) as i32
    }
    pub fn i32(&self, i: usize) -> i32 {
        self.raw(i) as i32
    }
    pub fn u32(&self, i: usize) -> u32 {
        self.raw(i) as u32
    }
    pub fn i64(&self, i: usize) -> i64 {
        self.raw(i) as i64
    }
    pub fn u64(&self, i: usize) -> u64 {
        self.raw(i)
    }
    pub fn usize(&self, i: usize) -> usize {
        self.raw(i) as usize
    }
    pub fn ptr(&self, i: usize) -> UserAddr {
        UserAddr(self.raw(i))
    }
}

/// What a handler did with the task's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallReturn {
    /// Put this value in `rax` and resume after the `syscall` instruction.
    Value(u64),
    /// The handler set all registers itself (`execve`, `rt_sigreturn`): leave them.
    KeepRegs,
    /// The task is gone (`exit`, `exit_group`): do not resume it.
    Exit,
}

// TODO: syscall_tables::x86_64::nr — at merge this temporary module becomes
// `use syscall_tables::x86_64::nr;`.
/// x86_64 syscall numbers of the file syscalls.
mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const LSEEK: u64 = 8;
    pub const IOCTL: u64 = 16;
    pub const PREAD64: u64 = 17;
    pub const PWRITE64: u64 = 18;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const ACCESS: u64 = 21;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const FCNTL: u64 = 72;
    pub const TRUNCATE: u64 = 76;
    pub const FTRUNCATE: u64 = 77;
    pub const GETDENTS: u64 = 78;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const FCHDIR: u64 = 81;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const CREAT: u64 = 85;
    pub const LINK: u64 = 86;
    pub const UNLINK: u64 = 87;
    pub const SYMLINK: u64 = 88;
    pub const READLINK: u64 = 89;
    pub const UMASK: u64 = 95;
    pub const STATFS: u64 = 137;
    pub const FSTATFS: u64 = 138;
    pub const GETDENTS64: u64 = 217;
    pub const OPENAT: u64 = 257;
    pub const MKDIRAT: u64 = 258;
    pub const NEWFSTATAT: u64 = 262;
    pub const UNLINKAT: u64 = 263;
    pub const RENAMEAT: u64 = 264;
    pub const LINKAT: u64 = 265;
    pub const SYMLINKAT: u64 = 266;
    pub const READLINKAT: u64 = 267;
    pub const FACCESSAT: u64 = 269;
    pub const DUP3: u64 = 292;
    pub const PREADV: u64 = 295;
    pub const PWRITEV: u64 = 296;
    pub const RENAMEAT2: u64 = 316;
    pub const PREADV2: u64 = 327;
    pub const PWRITEV2: u64 = 328;
    pub const STATX: u64 = 332;
    pub const CLOSE_RANGE: u64 = 436;
    pub const OPENAT2: u64 = 437;
    pub const FACCESSAT2: u64 = 439;
}

/// Run syscall `nr` for `task`. Unknown and unimplemented numbers give `ENOSYS`; the
/// caller logs them once by name.
pub fn dispatch(task: &mut Task, nr: u64, args: &SyscallArgs) -> Result<SyscallReturn> {
    let a = args;
    let v = SyscallReturn::Value;
    match nr {
        // files
        nr::READ => file::sys_read(task, a.fd(0), a.ptr(1), a.usize(2)).map(v),
        nr::WRITE => file::sys_write(task, a.fd(0), a.ptr(1), a.usize(2)).map(v),
        nr::OPEN => fs::sys_open(task, a.ptr(0), a.i32(1), a.u32(2)).map(v),
        nr::CLOSE => file::sys_close(task, a.fd(0)).map(v),
        nr::STAT => fs::sys_stat(task, a.ptr(0), a.ptr(1)).map(v),
        nr::FSTAT => file::sys_fstat(task, a.fd(0), a.ptr(1)).map(v),
        nr::LSTAT => fs::sys_lstat(task, a.ptr(0), a.ptr(1)).map(v),
        nr::LSEEK => file::sys_lseek(task, a.fd(0), a.i64(1), a.i32(2)).map(v),
        nr::IOCTL => file::sys_ioctl(task, a.fd(0), a.u32(1), a.ptr(2)).map(v),
        nr::PREAD64 => file::sys_pread64(task, a.fd(0), a.ptr(1), a.usize(2), a.i64(3)).map(v),
        nr::PWRITE64 => file::sys_pwrite64(task, a.fd(0), a.ptr(1), a.usize(2), a.i64(3)).map(v),
        nr::READV => file::sys_readv(task, a.fd(0), a.ptr(1), a.i32(2)).map(v),
        nr::WRITEV => file::sys_writev(task, a.fd(0), a.ptr(1), a.i32(2)).map(v),
        nr::ACCESS => fs::sys_access(task, a.ptr(0), a.i32(1)).map(v),
        nr::DUP => file::sys_dup(task, a.fd(0)).map(v),
        nr::DUP2 => file::sys_dup2(task, a.fd(0), a.fd(1)).map(v),
        nr::FCNTL => file::sys_fcntl(task, a.fd(0), a.i32(1), a.u64(2)).map(v),
        nr::TRUNCATE => fs::sys_truncate(task, a.ptr(0), a.i64(1)).map(v),
        nr::FTRUNCATE => file::sys_ftruncate(task, a.fd(0), a.i64(1)).map(v),
        nr::GETDENTS => file::sys_getdents(task, a.fd(0), a.ptr(1), a.u32(2)).map(v),
        nr::GETCWD => fs::sys_getcwd(task, a.ptr(0), a.usize(1)).map(v),
        nr::CHDIR => fs::sys_chdir(task, a.ptr(0)).map(v),
        nr::FCHDIR => fs::sys_fchdir(task, a.fd(0)).map(v),
        nr::RENAME => fs::sys_rename(task, a.ptr(0), a.ptr(1)).map(v),
        nr::MKDIR => fs::sys_mkdir(task, a.ptr(0), a.u32(1)).map(v),
        nr::RMDIR => fs::sys_rmdir(task, a.ptr(0)).map(v),
        nr::CREAT => fs::sys_creat(task, a.ptr(0), a.u32(1)).map(v),
        nr::LINK => fs::sys_link(task, a.ptr(0), a.ptr(1)).map(v),
        nr::UNLINK => fs::sys_unlink(task, a.ptr(0)).map(v),
        nr::SYMLINK => fs::sys_symlink(task, a.ptr(0), a.ptr(1)).map(v),
        nr::READLINK => fs::sys_readlink(task, a.ptr(0), a.ptr(1), a.i32(2)).map(v),
        nr::UMASK => fs::sys_umask(task, a.u32(0)).map(v),
        nr::STATFS => fs::sys_statfs(task, a.ptr(0), a.ptr(1)).map(v),
        nr::FSTATFS => file::sys_fstatfs(task, a.fd(0), a.ptr(1)).map(v),
        nr::GETDENTS64 => file::sys_getdents64(task, a.fd(0), a.ptr(1), a.u32(2)).map(v),
        nr::OPENAT => fs::sys_openat(task, a.fd(0), a.ptr(1), a.i32(2), a.u32(3)).map(v),
        nr::MKDIRAT => fs::sys_mkdirat(task, a.fd(0), a.ptr(1), a.u32(2)).map(v),
        nr::NEWFSTATAT => fs::sys_newfstatat(task, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3)).map(v),
        nr::UNLINKAT => fs::sys_unlinkat(task, a.fd(0), a.ptr(1), a.i32(2)).map(v),
        nr::RENAMEAT => fs::sys_renameat(task, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3)).map(v),
        nr::LINKAT => fs::sys_linkat(task, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.i32(4)).map(v),
        nr::SYMLINKAT => fs::sys_symlinkat(task, a.ptr(0), a.fd(1), a.ptr(2)).map(v),
        nr::READLINKAT => fs::sys_readlinkat(task, a.fd(0), a.ptr(1), a.ptr(2), a.i32(3)).map(v),
        nr::FACCESSAT => fs::sys_faccessat(task, a.fd(0), a.ptr(1), a.i32(2)).map(v),
        nr::DUP3 => file::sys_dup3(task, a.fd(0), a.fd(1), a.i32(2)).map(v),
        // x86_64 passes the whole offset in pos_l; pos_h is unused.
        nr::PREADV => file::sys_preadv(task, a.fd(0), a.ptr(1), a.i32(2), a.i64(3)).map(v),
        nr::PWRITEV => file::sys_pwritev(task, a.fd(0), a.ptr(1), a.i32(2), a.i64(3)).map(v),
        nr::RENAMEAT2 => {
            fs::sys_renameat2(task, a.fd(0), a.ptr(1), a.fd(2), a.ptr(3), a.u32(4)).map(v)
        }
        nr::PREADV2 => {
            file::sys_preadv2(task, a.fd(0), a.ptr(1), a.i32(2), a.i64(3), a.i32(5)).map(v)
        }
        nr::PWRITEV2 => {
            file::sys_pwritev2(task, a.fd(0), a.ptr(1), a.i32(2), a.i64(3), a.i32(5)).map(v)
        }
        nr::STATX => fs::sys_statx(task, a.fd(0), a.ptr(1), a.i32(2), a.u32(3), a.ptr(4)).map(v),
        nr::CLOSE_RANGE => file::sys_close_range(task, a.u32(0), a.u32(1), a.u32(2)).map(v),
        nr::OPENAT2 => fs::sys_openat2(task, a.fd(0), a.ptr(1), a.ptr(2), a.usize(3)).map(v),
        nr::FACCESSAT2 => fs::sys_faccessat2(task, a.fd(0), a.ptr(1), a.i32(2), a.i32(3)).map(v),
        _ => Err(crate::errno!(ENOSYS)),
    }
}
