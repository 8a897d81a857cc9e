//! The ptrace platform: one stub process per address space, traced with `PTRACE_SYSEMU`.
//!
//! Each stub starts as a fresh exec of the tiny [`stub`] program, so it holds nothing of
//! the sentry. The task's host thread is its tracer (ptrace binds a tracee to one tracer
//! thread), runs application code with `PTRACE_SYSEMU` — every syscall stops before the
//! host kernel executes it — and changes the stub's mappings by injecting
//! `mmap`/`munmap`/`mprotect` at the stub's own syscall site.
//!
//! Tasks sharing an address space (threads, `CLONE_VM` children) each get their own
//! stub, cloned with `CLONE_VM` inside the first one — a separate host process, so a
//! stop or a kill of one stub never touches the others — and traced by the task's own
//! host thread. Mapping changes are injected through whichever stub of the address space
//! the calling host thread traces.

pub(crate) mod stub;

pub use stub::STUB_BASE;

use super::{AddressSpace, Context, Exit, Platform, Prot, Regs};
use crate::errno;
use crate::error::{Error, Result};
use crate::mm::MemoryFile;
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The file descriptor number of the MemoryFile inside every stub.
const STUB_MEMFD: i32 = 0;

/// `si_code` of a SIGSEGV for an address with no mapping (asm-generic/siginfo.h).
const SEGV_MAPERR: i32 = 1;

pub struct PtracePlatform {
    /// The stub program in a sealed memfd, exec'd with `execveat(AT_EMPTY_PATH)` so that
    /// creating a stub needs no host path (the sentry may have none).
    stub_exe: OnceLock<OwnedFd>,
}

/// The CPUs the sentry may use, read once before any thread binds itself: threads
/// inherit their creator's binding, so later reads would see a single CPU.
pub(crate) fn sandbox_cpus() -> &'static [usize] {
    static CPUS: OnceLock<Vec<usize>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let set = nix::sched::sched_getaffinity(Pid::from_raw(0)).ok();
        (0..nix::sched::CpuSet::count())
            .filter(|c| set.as_ref().is_some_and(|s| s.is_set(*c).unwrap_or(false)))
            .collect()
    })
}

impl PtracePlatform {
    pub fn new() -> PtracePlatform {
        sandbox_cpus();
        PtracePlatform {
            stub_exe: OnceLock::new(),
        }
    }

    fn stub_exe(&self) -> Result<&OwnedFd> {
        if let Some(fd) = self.stub_exe.get() {
            return Ok(fd);
        }
        let fd = nix::sys::memfd::memfd_create(
            c"carapace-stub",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )?;
        let img = stub::image();
        let n = nix::unistd::write(&fd, &img)?;
        if n != img.len() {
            return Err(errno!(EIO, "short write of the stub image"));
        }
        // Keep it away from fds 0..=2, which the child rearranges before exec.
        let fd = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
        // SAFETY: F_DUPFD_CLOEXEC returned a fresh descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(self.stub_exe.get_or_init(|| fd))
    }
}

impl Default for PtracePlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn new_process(
        &self,
        memory_file: &Arc<MemoryFile>,
    ) -> Result<(Box<dyn AddressSpace>, Box<dyn Context>)> {
        let pid = spawn_stub(
            self.stub_exe()?.as_raw_fd(),
            memory_file.fd().as_raw_fd(),
            None,
        )?;
        let space = SpaceId(NEXT_SPACE.fetch_add(1, Ordering::Relaxed));
        let members = Arc::new(Mutex::new(vec![pid]));
        let ctx = PtraceContext::adopt(pid, space, members.clone());
        // The stub starts with its exec-time stack, vDSO and vvar mapped; the application
        // must see none of it.
        inject(pid, libc::SYS_munmap, [0, STUB_BASE, 0, 0, 0, 0])?;
        let after = STUB_BASE + 0x1000;
        inject(
            pid,
            libc::SYS_munmap,
            [after, 0x7fff_ffff_f000 - after, 0, 0, 0, 0],
        )?;
        Ok((
            Box::new(PtraceAddressSpace { space, members }),
            Box::new(ctx),
        ))
    }

    fn prepare_thread(&self, ctx: &mut dyn Context) -> Result<super::ThreadToken> {
        let parent = ctx
            .as_any()
            .downcast_ref::<PtraceContext>()
            .ok_or(errno!(EINVAL))?;
        // CLONE_PARENT makes the new stub the sentry's child, so the sentry can reap it.
        let flags = (libc::CLONE_VM | libc::CLONE_PARENT | libc::CLONE_FILES) as u64;
        let ret = inject_at(
            parent.stub.pid,
            stub::CLONE_SITE,
            stub::CLONE_SITE_END,
            libc::SYS_clone,
            [flags, 0, 0, 0, 0, 0],
        )?;
        check_injected(ret)?;
        let pid = Pid::from_raw(i32::try_from(ret).map_err(|_| errno!(EAGAIN))?);
        lock(&parent.members).push(pid);
        Ok(super::ThreadToken {
            host_tid: pid.as_raw(),
            space: parent.space.0,
            members: Box::new(parent.members.clone()),
        })
    }

    fn adopt_thread(&self, token: super::ThreadToken) -> Result<Box<dyn Context>> {
        let pid = Pid::from_raw(token.host_tid);
        let members = token
            .members
            .downcast::<Arc<Mutex<Vec<Pid>>>>()
            .map_err(|_| errno!(EINVAL))?;
        if let Err(e) = attach_stub(pid) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
            lock(&members).retain(|p| *p != pid);
            return Err(e);
        }
        Ok(Box::new(PtraceContext::adopt(
            pid,
            SpaceId(token.space),
            *members,
        )))
    }
}

/// Become the tracer of a freshly cloned stub (which stops itself with SIGSTOP).
fn attach_stub(pid: Pid) -> Result<()> {
    ptrace::attach(pid)?;
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL))? {
            WaitStatus::Stopped(_, _) => break,
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                return Err(errno!(ESRCH, "new stub died before it was attached"))
            }
            _ => {}
        }
    }
    ptrace::setoptions(
        pid,
        ptrace::Options::PTRACE_O_TRACESYSGOOD | ptrace::Options::PTRACE_O_EXITKILL,
    )?;
    Ok(())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Identifies an address space among the stubs a host thread traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SpaceId(u64);

static NEXT_SPACE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The stubs this host thread traces, by address space: injections for an address
    /// space go through the calling thread's own stub in it.
    static MY_STUBS: RefCell<Vec<(SpaceId, Pid)>> = const { RefCell::new(Vec::new()) };
}

fn my_stub(space: SpaceId) -> Result<Pid> {
    MY_STUBS
        .with(|s| {
            s.borrow()
                .iter()
                .rev()
                .find(|(sp, _)| *sp == space)
                .map(|(_, p)| *p)
        })
        .ok_or(errno!(
            EFAULT,
            "this thread traces no stub of that address space"
        ))
}

/// Fork and exec a stub; returns once it is stopped at its first instruction, traced by
/// the calling thread. The MemoryFile becomes the stub's fd 0 and `ctl` (if any) its fd 1.
pub(crate) fn spawn_stub(exe_fd: i32, memfd: i32, ctl: Option<i32>) -> Result<Pid> {
    if ctl == Some(STUB_MEMFD) {
        return Err(errno!(EBADF, "the stub's control memfd must not be fd 0"));
    }
    // Everything the child needs is prepared before fork: after fork in a multi-threaded
    // process only async-signal-safe calls are allowed.
    let empty = CString::default();
    let argv: [*const libc::c_char; 2] = [c"carapace-stub".as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: fork in a multi-threaded process; the child below only makes raw syscalls
    // (no allocation, no locks) and then execs or exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: child after fork; each call is a plain syscall on values prepared
        // above. On any failure the child exits and the parent sees it in waitpid.
        unsafe {
            // Its own session: terminal signals (^C) for the sentry's group skip it.
            libc::setsid();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                libc::_exit(126);
            }
            if memfd != STUB_MEMFD {
                libc::dup2(memfd, STUB_MEMFD);
            }
            libc::fcntl(STUB_MEMFD, libc::F_SETFD, 0);
            let mut first_closed = 1u32;
            if let Some(ctl) = ctl {
                libc::dup2(ctl, STUB_MEMFD + 1);
                libc::fcntl(STUB_MEMFD + 1, libc::F_SETFD, 0);
                first_closed = 2;
            }
            libc::syscall(
                libc::SYS_close_range,
                first_closed,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            libc::syscall(
                libc::SYS_execveat,
                exe_fd,
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::_exit(127);
        }
    }
    let pid = Pid::from_raw(pid);
    match waitpid(pid, Some(WaitPidFlag::__WALL))? {
        WaitStatus::Stopped(_, nix::sys::signal::Signal::SIGTRAP) => {}
        other => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
            tracing::error!("stub failed to start: {other:?}");
            return Err(errno!(EAGAIN, "stub failed to start"));
        }
    }
    ptrace::setoptions(
        pid,
        ptrace::Options::PTRACE_O_TRACESYSGOOD | ptrace::Options::PTRACE_O_EXITKILL,
    )?;
    Ok(pid)
}

/// A stopped stub thread the calling host thread traces.
struct Stub {
    pid: Pid,
}

/// Run one host syscall inside a stopped stub (for its mappings), returning its raw
/// result.
fn inject(pid: Pid, nr: i64, args: [u64; 6]) -> Result<i64> {
    inject_at(pid, stub::SYSCALL_SITE, stub::SYSCALL_SITE_END, nr, args)
}

pub(crate) fn inject_at(
    pid: Pid,
    site: u64,
    site_end: u64,
    nr: i64,
    args: [u64; 6],
) -> Result<i64> {
    let mut regs = ptrace::getregs(pid)?;
    regs.rip = site;
    regs.rax = nr as u64;
    regs.orig_rax = u64::MAX;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.r9 = args[5];
    ptrace::setregs(pid, regs)?;
    ptrace::cont(pid, None)?;
    loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL))? {
            WaitStatus::Stopped(_, nix::sys::signal::Signal::SIGTRAP) => {
                let after = ptrace::getregs(pid)?;
                if after.rip != site_end {
                    return Err(errno!(EFAULT, "stub stopped outside its syscall site"));
                }
                return Ok(after.rax as i64);
            }
            WaitStatus::Stopped(_, _) | WaitStatus::PtraceSyscall(_) => {
                // Nothing else should stop a stub mid-injection; drop it and go on.
                ptrace::cont(pid, None)?;
            }
            _ => return Err(errno!(ESRCH, "stub died during injection")),
        }
    }
}

pub(crate) fn check_injected(ret: i64) -> Result<()> {
    if (-4095..0).contains(&ret) {
        Err(Error::new(crate::error::Errno::from_raw(-ret as i32)))
    } else {
        Ok(())
    }
}

pub struct PtraceAddressSpace {
    space: SpaceId,
    /// Every stub sharing this address space.
    members: Arc<Mutex<Vec<Pid>>>,
}

impl PtraceAddressSpace {
    fn inject(&self, nr: i64, args: [u64; 6]) -> Result<()> {
        check_injected(inject(my_stub(self.space)?, nr, args)?)
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map(&mut self, addr: u64, len: u64, prot: Prot, file_offset: u64) -> Result<()> {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let args = [
            addr,
            len,
            prot.bits() as u64,
            flags,
            STUB_MEMFD as u64,
            file_offset,
        ];
        self.inject(libc::SYS_mmap, args)
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<()> {
        self.inject(libc::SYS_munmap, [addr, len, 0, 0, 0, 0])
    }

    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<()> {
        self.inject(libc::SYS_mprotect, [addr, len, prot.bits() as u64, 0, 0, 0])
    }

    fn max_user_address(&self) -> u64 {
        STUB_BASE
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        // Stubs still alive belong to tasks that are going away with the address space.
        for pid in std::mem::take(&mut *lock(&self.members)) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG));
        }
    }
}

pub struct PtraceContext {
    stub: Stub,
    space: SpaceId,
    members: Arc<Mutex<Vec<Pid>>>,
    /// The CPU the stub is bound to: the one its tracer last ran on.
    cpu: Option<usize>,
}

impl PtraceContext {
    /// A context for a stub the calling thread now traces.
    fn adopt(pid: Pid, space: SpaceId, members: Arc<Mutex<Vec<Pid>>>) -> PtraceContext {
        MY_STUBS.with(|s| s.borrow_mut().push((space, pid)));
        PtraceContext {
            stub: Stub { pid },
            space,
            members,
            cpu: None,
        }
    }
}

impl PtraceContext {
    /// Keep the stub and its tracer on one CPU. Every switch is a hand-off between the
    /// two; across CPUs each hand-off is a cross-CPU wake-up, which on these nested
    /// machines costs several times the syscall itself: measured 46 µs per getpid with
    /// the pair spread over two CPUs, 15 µs with only the stub following its tracer, and
    /// 8 µs with both bound. Pairs are spread over the CPUs by stub pid, so independent
    /// tasks still run in parallel.
    fn follow_tracer_cpu(&mut self) {
        if self.cpu.is_some() {
            return;
        }
        let cpus = sandbox_cpus();
        let cpu = cpus
            .get((self.stub.pid.as_raw().unsigned_abs() as usize) % cpus.len().max(1))
            .copied();
        let mut set = nix::sched::CpuSet::new();
        let Some(cpu) = cpu.filter(|c| set.set(*c).is_ok()) else {
            // No CPU to bind to: leave scheduling to the host.
            self.cpu = Some(usize::MAX);
            return;
        };
        let _ = nix::sched::sched_setaffinity(self.stub.pid, &set);
        let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
        self.cpu = Some(cpu);
    }
}

impl Drop for PtraceContext {
    fn drop(&mut self) {
        let pid = self.stub.pid;
        MY_STUBS.with(|s| s.borrow_mut().retain(|(_, p)| *p != pid));
        lock(&self.members).retain(|p| *p != pid);
        // The task is done with its stub: it goes, the address space stays for the others.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
    }
}

/// `NT_X86_XSTATE` (elf.h): the regset holding the XSAVE area.
const NT_X86_XSTATE: libc::c_int = 0x202;
/// Room for the XSAVE area of any current CPU (AVX-512 needs ~2.7 KiB; AMX more).
const XSTATE_MAX: usize = 16 << 10;

/// The signal that kicks a stub out of application code. Ignored by default, so a stray
/// one is harmless; under ptrace every signal stops the tracee, which is all we want.
const KICK_SIGNAL: libc::c_int = libc::SIGURG;

impl Context for PtraceContext {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn fp_state(&mut self) -> Result<super::FpState> {
        let mut buf = vec![0u8; XSTATE_MAX];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: PTRACE_GETREGSET writes at most `iov_len` bytes into `buf`, which lives
        // across the call, and updates `iov_len` to the size written.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGSET,
                self.stub.pid.as_raw(),
                NT_X86_XSTATE as usize,
                &mut iov as *mut libc::iovec,
            )
        };
        if r < 0 {
            return Err(Error::last_os_error());
        }
        buf.truncate(iov.iov_len.min(XSTATE_MAX));
        Ok(super::FpState(buf))
    }

    fn set_fp_state(&mut self, state: &super::FpState) -> Result<()> {
        let mut buf = state.0.clone();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: PTRACE_SETREGSET reads `iov_len` bytes from `buf`, which lives across the
        // call; the kernel validates the XSAVE header and refuses bad states.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SETREGSET,
                self.stub.pid.as_raw(),
                NT_X86_XSTATE as usize,
                &mut iov as *mut libc::iovec,
            )
        };
        if r < 0 {
            return Err(Error::last_os_error());
        }
        Ok(())
    }

    fn interrupter(&self) -> Arc<dyn Fn() + Send + Sync> {
        let pid = self.stub.pid;
        Arc::new(move || {
            // The stub thread is the thread-group leader of its own process: tgid == tid.
            // SAFETY: tgkill only sends a signal; a stale pid at worst gets ESRCH.
            unsafe {
                libc::syscall(libc::SYS_tgkill, pid.as_raw(), pid.as_raw(), KICK_SIGNAL);
            }
        })
    }

    fn cpu_time(&self) -> std::time::Duration {
        stub_cpu_time(self.stub.pid)
    }

    fn cpu_clock(&self) -> Arc<dyn Fn() -> std::time::Duration + Send + Sync> {
        let pid = self.stub.pid;
        Arc::new(move || stub_cpu_time(pid))
    }

    fn switch(&mut self, regs: &mut Regs) -> Result<Exit> {
        let pid = self.stub.pid;
        self.follow_tracer_cpu();
        ptrace::setregs(pid, *regs)?;
        ptrace::sysemu(pid, None)?;
        let status = waitpid(pid, Some(WaitPidFlag::__WALL))?;
        match status {
            WaitStatus::PtraceSyscall(_) => {
                *regs = ptrace::getregs(pid)?;
                Ok(Exit::Syscall)
            }
            WaitStatus::Stopped(_, sig) => {
                *regs = ptrace::getregs(pid)?;
                let signo = sig as i32;
                match signo {
                    libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
                        let info = ptrace::getsiginfo(pid)?;
                        // SAFETY: the kernel filled a fault siginfo for these signals, so
                        // the union holds the `_sigfault` member `si_addr` reads.
                        let addr = unsafe { info.si_addr() } as u64;
                        // Only page faults (MAPERR/ACCERR) are the memory manager's; a
                        // general-protection SIGSEGV (SI_KERNEL: a non-canonical address)
                        // goes to the application as it is.
                        if signo == libc::SIGSEGV && (info.si_code == 1 || info.si_code == 2) {
                            Ok(Exit::Fault {
                                addr,
                                mapped: info.si_code != SEGV_MAPERR,
                                access: None,
                            })
                        } else {
                            Ok(Exit::Signal {
                                signo,
                                code: info.si_code,
                                addr,
                            })
                        }
                    }
                    // Anything else was sent to the stub from outside; the application
                    // never sees host signals.
                    _ => Ok(Exit::Interrupted),
                }
            }
            WaitStatus::Exited(..) | WaitStatus::Signaled(..) => {
                Err(errno!(ESRCH, "stub process died"))
            }
            _ => Ok(Exit::Interrupted),
        }
    }
}

/// The host's CPU-time clock of a stub process (Linux's MAKE_PROCESS_CPUCLOCK with
/// CPUCLOCK_SCHED): the application's own time, not the sentry's. Linux lets a process
/// read another's process clock, not its thread clocks; every stub is its own process.
pub(crate) fn stub_cpu_time(pid: Pid) -> std::time::Duration {
    let clock = ((!pid.as_raw()) << 3) | 2;
    nix::time::clock_gettime(nix::time::ClockId::from_raw(clock))
        .map(|ts| {
            std::time::Duration::new(
                ts.tv_sec().max(0) as u64,
                ts.tv_nsec().clamp(0, 999_999_999) as u32,
            )
        })
        .unwrap_or_default()
}
