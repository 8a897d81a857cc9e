//! Platforms run application code and report why it stopped; all policy lives in the kernel.
//!
//! A [`Platform`] makes [`AddressSpace`]s (the host-side view of one `MemoryManager`) and
//! [`Context`]s (one per task). `Context::switch` runs the task's registers in an address
//! space until the application makes a syscall, faults, or is interrupted.

pub mod ptrace;
pub mod systrap;

/// The platforms `--platform` can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// The correctness baseline: `PTRACE_SYSEMU`, a ptrace stop per syscall.
    Ptrace,
    /// The default: seccomp traps handed over through shared memory, hot syscall sites
    /// patched so that they stop trapping.
    #[default]
    Systrap,
}

impl Kind {
    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "ptrace" => Some(Kind::Ptrace),
            "systrap" => Some(Kind::Systrap),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ptrace => "ptrace",
            Kind::Systrap => "systrap",
        }
    }

    /// A new instance of the platform.
    pub fn create(self) -> Box<dyn Platform> {
        self.create_with(true)
    }

    /// The same; `patch_syscalls` is systrap's syscall patching (`--systrap-patch`).
    pub fn create_with(self, patch_syscalls: bool) -> Box<dyn Platform> {
        match self {
            Kind::Ptrace => Box::new(ptrace::PtracePlatform::new()),
            Kind::Systrap => Box::new(systrap::SystrapPlatform::with_patching(patch_syscalls)),
        }
    }
}

use crate::error::Result;
use crate::mm::MemoryFile;
use std::sync::Arc;

/// x86_64 general-purpose registers, laid out as the kernel's `user_regs_struct`.
pub type Regs = libc::user_regs_struct;

/// The application's floating-point and vector registers, in the host CPU's XSAVE layout
/// (the legacy 512-byte FXSAVE area first, then the XSAVE header and extended state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FpState(pub Vec<u8>);

/// Memory protection bits as in `mmap(2)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };

    pub fn from_bits(prot: i32) -> Prot {
        Prot {
            read: prot & libc::PROT_READ != 0,
            write: prot & libc::PROT_WRITE != 0,
            exec: prot & libc::PROT_EXEC != 0,
        }
    }

    pub fn bits(self) -> i32 {
        let mut b = 0;
        if self.read {
            b |= libc::PROT_READ;
        }
        if self.write {
            b |= libc::PROT_WRITE;
        }
        if self.exec {
            b |= libc::PROT_EXEC;
        }
        b
    }

    pub fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read || self.write || self.exec,
            Access::Write => self.write,
            Access::Exec => self.exec,
        }
    }
}

/// How a faulting access touched memory, when the platform knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// Why [`Context::switch`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The application executed `syscall`; the number is in `orig_rax`, arguments in
    /// rdi, rsi, rdx, r10, r8, r9, and `rip` already points past the instruction.
    Syscall,
    /// A memory fault at `addr`. `mapped` is false when nothing was mapped there in the
    /// host view (`SEGV_MAPERR`): the kernel may populate the page and retry. `access` is
    /// how the application touched it, when the platform knows (ptrace does not).
    Fault {
        addr: u64,
        mapped: bool,
        access: Option<Access>,
    },
    /// A synchronous signal other than a memory fault (SIGILL, SIGFPE, SIGTRAP, SIGBUS…).
    Signal { signo: i32, code: i32, addr: u64 },
    /// The switch was interrupted from outside (e.g. to deliver a signal); nothing happened.
    Interrupted,
}

/// The host side of one application address space.
pub trait AddressSpace: Send {
    /// Map `len` bytes of the MemoryFile at `file_offset` to `addr` with `prot`, replacing
    /// whatever was there. `addr`, `len` and `file_offset` are page aligned.
    fn map(&mut self, addr: u64, len: u64, prot: Prot, file_offset: u64) -> Result<()>;
    /// Whether `map_many` makes many mappings for about the cost of one.
    fn batches_maps(&self) -> bool {
        false
    }
    /// Several `map`s (address, length, protection, file offset), in order; a platform
    /// that can make them in one round trip does.
    fn map_many(&mut self, maps: &[(u64, u64, Prot, u64)]) -> Result<()> {
        for (addr, len, prot, off) in maps {
            self.map(*addr, *len, *prot, *off)?;
        }
        Ok(())
    }
    /// Remove any mapping in `[addr, addr + len)`.
    fn unmap(&mut self, addr: u64, len: u64) -> Result<()>;
    /// Change the protection of mapped pages in `[addr, addr + len)`.
    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<()>;
    /// The highest address (exclusive) the application may use.
    fn max_user_address(&self) -> u64;
    /// The range the platform's syscall-patching jump table occupies in the application's
    /// half, while it does: the memory manager keeps patched sites only while nothing of
    /// the application's is mapped there.
    fn patch_table(&self) -> Option<(u64, u64)> {
        None
    }
    /// The application maps something over the jump table (no patched site is left).
    fn release_patch_table(&mut self) {}
}

/// `r9 = *(u64 *)addr`, which a patched site (`site`) left to the kernel: it must happen
/// before the syscall, and a fault there is the application's, at `site`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackLoad {
    pub addr: u64,
    pub site: u64,
}

/// A rewrite of application code that makes a syscall site stop trapping: `old` (the bytes
/// at `addr` now) becomes `new`, of the same length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub addr: u64,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// A stub thread prepared by the parent task's host thread, to be adopted by the new
/// task's host thread (`Platform::prepare_thread` → `Platform::adopt_thread`).
pub struct ThreadToken {
    pub host_tid: i32,
    pub space: u64,
    /// Platform-private bookkeeping carried across.
    pub members: Box<dyn std::any::Any + Send>,
}

/// A change to the mappings a forked address space inherited ([`Platform::fork_process`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOp {
    /// As [`AddressSpace::map`].
    Map {
        addr: u64,
        len: u64,
        prot: Prot,
        offset: u64,
    },
    Unmap {
        addr: u64,
        len: u64,
    },
}

/// A copy of a process's address space made on the parent task's host thread, to be
/// adopted by the child's (`Platform::fork_process` → `Platform::adopt_process`).
pub struct ProcessToken {
    /// Platform-private bookkeeping carried across.
    pub members: Box<dyn std::any::Any + Send>,
}

/// One task's execution context on a platform.
pub trait Context: Send {
    /// For the platform's own downcasts.
    fn as_any(&self) -> &dyn std::any::Any;
    /// Run `regs` in the context's address space until the application stops.
    fn switch(&mut self, regs: &mut Regs) -> Result<Exit>;
    /// The floating-point and vector registers (fork copies them; signal frames save them).
    fn fp_state(&mut self) -> Result<FpState>;
    /// Replace the floating-point and vector registers.
    fn set_fp_state(&mut self, state: &FpState) -> Result<()>;
    /// A way for other threads to make `switch` return [`Exit::Interrupted`] soon (a signal
    /// arrived for this task). Safe to call at any time, from any thread.
    fn interrupter(&self) -> Arc<dyn Fn() + Send + Sync>;
    /// CPU time the application has used on this context (for the CPU-time clocks).
    fn cpu_time(&self) -> std::time::Duration;
    /// The same clock, readable from other threads (process clocks, CPU timers).
    fn cpu_clock(&self) -> Arc<dyn Fn() -> std::time::Duration + Send + Sync>;
    /// After an [`Exit::Syscall`]: whether the site might be worth patching (cheap).
    fn wants_patch(&self) -> bool {
        false
    }
    /// The patch that makes the syscall site ending at `regs.rip` stop trapping, given the
    /// 7 bytes of code before `rip` and the 8 at `rsp + 8` (if readable); None keeps the
    /// site as it is.
    fn plan_patch(&mut self, _regs: &Regs, _code: &[u8], _stack: Option<u64>) -> Option<Patch> {
        None
    }
    /// After an [`Exit::Syscall`] from a patched site that replaced a load from the stack:
    /// the load, for the kernel to make before it serves the call.
    fn take_stack_load(&mut self) -> Option<StackLoad> {
        None
    }
}

/// A way to run application code.
pub trait Platform: Send + Sync {
    fn name(&self) -> &'static str;
    /// A fresh, empty address space and the first context running in it (a new process
    /// image: the first task, `execve`, `fork`). The memory manager owns the address space,
    /// the task owns the context.
    fn new_process(
        &self,
        memory_file: &Arc<MemoryFile>,
    ) -> Result<(Box<dyn AddressSpace>, Box<dyn Context>)>;

    /// A new task in the address space `ctx` runs in (threads, `CLONE_VM`), first half:
    /// called on the parent task's host thread.
    /// For `fork`: a new address space that starts with the host mappings the address
    /// space of `ctx` has now, changed by `fixups`, and a stub thread in it, parked. None
    /// when the platform cannot (the child then gets [`Platform::new_process`] and maps its
    /// memory as it faults).
    fn fork_process(
        &self,
        _ctx: &mut dyn Context,
        _fixups: &[MapOp],
    ) -> Result<Option<ProcessToken>> {
        Ok(None)
    }
    /// On the child's host thread: the address space and context `fork_process` made.
    fn adopt_process(
        &self,
        _token: ProcessToken,
    ) -> Result<(Box<dyn AddressSpace>, Box<dyn Context>)> {
        Err(crate::errno!(ENOSYS))
    }
    /// Whether a `fork_process` child has its parent's FP state already (the kernel
    /// then neither fetches nor sets it).
    fn fork_inherits_fp(&self, _token: &ProcessToken) -> bool {
        false
    }
    /// The CPU the task of a `fork_process` child will be placed on, if the platform
    /// places tasks.
    fn home_cpu(&self, _token: &ProcessToken) -> Option<usize> {
        None
    }
    /// Whether a host thread whose task ended may run another task's life (a new host
    /// thread costs tens of microseconds).
    fn host_threads_reusable(&self) -> bool {
        false
    }
    fn prepare_thread(&self, ctx: &mut dyn Context) -> Result<ThreadToken>;

    /// Second half, on the new task's host thread: the context it will run.
    fn adopt_thread(&self, token: ThreadToken) -> Result<Box<dyn Context>>;
}
