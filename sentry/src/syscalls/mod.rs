//! System call dispatch and one module per family.
//!
//! Arguments are decoded once here, at the edge: handlers take typed values (`i32` fds,
//! [`UserAddr`] pointers, `usize` lengths) and never see raw registers.
#![deny(unsafe_code)]

pub mod mm;
pub mod process;
pub mod signal;
pub mod time;

use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use syscall_tables::x86_64::nr;
use SyscallReturn::Value;

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
pub fn dispatch(task: &mut Task, nr: u64, a: &SyscallArgs) -> Result<SyscallReturn> {
    let t = task;
    let v = match nr {
        // memory
        nr::MMAP => mm::sys_mmap(t, a.u64(0), a.u64(1), a.i32(2), a.i32(3), a.fd(4), a.u64(5)),
        nr::MUNMAP => mm::sys_munmap(t, a.u64(0), a.u64(1)),
        nr::MPROTECT => mm::sys_mprotect(t, a.u64(0), a.u64(1), a.i32(2)),
        nr::BRK => mm::sys_brk(t, a.u64(0)),
        nr::MREMAP => mm::sys_mremap(t, a.u64(0), a.u64(1), a.u64(2), a.i32(3), a.u64(4)),
        nr::MADVISE => mm::sys_madvise(t, a.u64(0), a.u64(1), a.i32(2)),
        nr::MINCORE => mm::sys_mincore(t, a.u64(0), a.u64(1), a.ptr(2)),
        nr::MSYNC => mm::sys_msync(t, a.u64(0), a.u64(1), a.i32(2)),

        // process and identity
        nr::EXIT => return process::sys_exit(t, a.i32(0)),
        nr::EXIT_GROUP => return process::sys_exit_group(t, a.i32(0)),
        nr::GETPID => process::sys_getpid(t),
        nr::GETTID => process::sys_gettid(t),
        nr::GETPPID => process::sys_getppid(t),
        nr::GETUID => process::sys_getuid(t),
        nr::GETEUID => process::sys_geteuid(t),
        nr::GETGID => process::sys_getgid(t),
        nr::GETEGID => process::sys_getegid(t),
        nr::GETRESUID => process::sys_getresuid(t, a.ptr(0), a.ptr(1), a.ptr(2)),
        nr::GETRESGID => process::sys_getresgid(t, a.ptr(0), a.ptr(1), a.ptr(2)),
        nr::SETUID => process::sys_setuid(t, a.u32(0)),
        nr::SETGID => process::sys_setgid(t, a.u32(0)),
        nr::SETREUID => process::sys_setreuid(t, a.u32(0), a.u32(1)),
        nr::SETREGID => process::sys_setregid(t, a.u32(0), a.u32(1)),
        nr::SETRESUID => process::sys_setresuid(t, a.u32(0), a.u32(1), a.u32(2)),
        nr::SETRESGID => process::sys_setresgid(t, a.u32(0), a.u32(1), a.u32(2)),
        nr::GETGROUPS => process::sys_getgroups(t, a.i32(0), a.ptr(1)),
        nr::SETGROUPS => process::sys_setgroups(t, a.usize(0), a.ptr(1)),
        nr::UNAME => process::sys_uname(t, a.ptr(0)),
        nr::SETHOSTNAME => process::sys_sethostname(t, a.ptr(0), a.usize(1)),
        nr::SETDOMAINNAME => process::sys_setdomainname(t, a.ptr(0), a.usize(1)),
        nr::ARCH_PRCTL => process::sys_arch_prctl(t, a.i32(0), a.u64(1)),
        nr::SET_TID_ADDRESS => process::sys_set_tid_address(t, a.ptr(0)),
        nr::SET_ROBUST_LIST => process::sys_set_robust_list(t, a.ptr(0), a.usize(1)),
        nr::GET_ROBUST_LIST => process::sys_get_robust_list(t, a.i32(0), a.ptr(1), a.ptr(2)),
        nr::PRLIMIT64 => process::sys_prlimit64(t, a.i32(0), a.u32(1), a.ptr(2), a.ptr(3)),
        nr::GETRLIMIT => process::sys_getrlimit(t, a.u32(0), a.ptr(1)),
        nr::SETRLIMIT => process::sys_setrlimit(t, a.u32(0), a.ptr(1)),
        nr::PRCTL => process::sys_prctl(t, a.i32(0), a.u64(1), a.u64(2)),

        // time, randomness, scheduling
        nr::CLOCK_GETTIME => time::sys_clock_gettime(t, a.i32(0), a.ptr(1)),
        nr::CLOCK_GETRES => time::sys_clock_getres(t, a.i32(0), a.ptr(1)),
        nr::GETTIMEOFDAY => time::sys_gettimeofday(t, a.ptr(0), a.ptr(1)),
        nr::TIME => time::sys_time(t, a.ptr(0)),
        nr::NANOSLEEP => time::sys_nanosleep(t, a.ptr(0), a.ptr(1)),
        nr::CLOCK_NANOSLEEP => time::sys_clock_nanosleep(t, a.i32(0), a.i32(1), a.ptr(2), a.ptr(3)),
        nr::GETRANDOM => time::sys_getrandom(t, a.ptr(0), a.usize(1), a.u32(2)),
        nr::SCHED_YIELD => time::sys_sched_yield(t),
        nr::SCHED_GETAFFINITY => time::sys_sched_getaffinity(t, a.i32(0), a.usize(1), a.ptr(2)),
        nr::SCHED_SETAFFINITY => time::sys_sched_setaffinity(t, a.i32(0), a.usize(1), a.ptr(2)),
        nr::GETCPU => time::sys_getcpu(t, a.ptr(0), a.ptr(1)),
        nr::SYSINFO => time::sys_sysinfo(t, a.ptr(0)),

        // signals (bookkeeping)
        nr::RT_SIGACTION => signal::sys_rt_sigaction(t, a.i32(0), a.ptr(1), a.ptr(2), a.usize(3)),
        nr::RT_SIGPROCMASK => {
            signal::sys_rt_sigprocmask(t, a.i32(0), a.ptr(1), a.ptr(2), a.usize(3))
        }
        nr::SIGALTSTACK => signal::sys_sigaltstack(t, a.ptr(0), a.ptr(1)),

        _ => {
            t.kernel.log_unimplemented(nr);
            Err(crate::errno!(ENOSYS))
        }
    };
    v.map(Value)
}
