//! System call dispatch and one module per family.
//!
//! Arguments are decoded once here, at the edge: handlers take typed values (`i32` fds,
//! [`UserAddr`] pointers, `usize` lengths) and never see raw registers.
#![deny(unsafe_code)]

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

/// Run syscall `nr` for `task`. Unknown and unimplemented numbers give `ENOSYS`; the
/// caller logs them once by name.
pub fn dispatch(task: &mut Task, nr: u64, args: &SyscallArgs) -> Result<SyscallReturn> {
    let _ = (task, nr, args);
    Err(crate::errno!(ENOSYS))
}
