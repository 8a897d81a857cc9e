//! A task: one application thread, run by one sentry host thread.
//!
//! The host thread owns the [`Task`] (registers, platform context, memory and file
//! tables); what other tasks may touch lives in its [`TaskShared`]. The task loop runs
//! application code until it stops, serves the syscall or fault, delivers pending signals,
//! and goes again, until the task exits.
#![deny(unsafe_code)]

use super::process::{lock, ProcView, SigHandlers, TaskShared, ThreadGroup};
use super::signal::SignalState;
use super::wait::{Blocker, WaitQueue, Wake};
use super::{Credentials, Kernel};
use crate::error::Result;
use crate::loader::{self, AuxCreds, Opener};
use crate::mm::{MemoryManager, UserAddr};
use crate::platform::{Context, Exit, Regs};
use crate::syscalls::{self, SyscallArgs, SyscallReturn};
use crate::vfs::{FdTable, FsContext};
use crate::{errno, return_errno};
use std::sync::{Arc, Mutex, MutexGuard};

/// `si_code` of a SIGBUS for an address past the end of a mapped file.
const BUS_ADRERR: i32 = 2;

/// Longest path the application may pass (Linux `PATH_MAX`, including the NUL).
pub const PATH_MAX: usize = 4096;

/// How a process ended, as `wait` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled { signo: i32, core: bool },
}

impl ExitStatus {
    /// The status a shell reports: the exit code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c & 0xff,
            ExitStatus::Signaled { signo, .. } => 128 + signo,
        }
    }

    /// The `wstatus` word `wait4` stores (wait(2)).
    pub fn wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => (c & 0xff) << 8,
            ExitStatus::Signaled { signo, core } => (signo & 0x7f) | if core { 0x80 } else { 0 },
        }
    }
}

/// Resource limits: soft and hard per resource, indexed by `RLIMIT_*`.
#[derive(Clone, Copy, Debug)]
pub struct Rlimits(pub [(u64, u64); 16]);

impl Default for Rlimits {
    fn default() -> Self {
        const INF: u64 = u64::MAX;
        let mut r = [(INF, INF); 16];
        let mut set = |res: u32, soft: u64, hard: u64| {
            if let Some(slot) = r.get_mut(res as usize) {
                *slot = (soft, hard);
            }
        };
        set(libc::RLIMIT_STACK, crate::mm::STACK_SIZE, INF);
        set(libc::RLIMIT_CORE, 0, INF);
        set(libc::RLIMIT_NOFILE, 1024, 4096);
        set(libc::RLIMIT_NPROC, 4096, 4096);
        set(libc::RLIMIT_MEMLOCK, 8 << 20, 8 << 20);
        set(libc::RLIMIT_SIGPENDING, 4096, 4096);
        set(libc::RLIMIT_MSGQUEUE, 819_200, 819_200);
        set(libc::RLIMIT_NICE, 0, 0);
        set(libc::RLIMIT_RTPRIO, 0, 0);
        Rlimits(r)
    }
}

/// A loaded but not yet running process image.
pub struct NewImage {
    mm: MemoryManager,
    ctx: Box<dyn Context>,
    loaded: loader::Loaded,
    comm: Vec<u8>,
}

pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tid: i32,
    /// Thread-group id: the pid `getpid` returns.
    pub tgid: i32,
    pub shared: Arc<TaskShared>,
    pub tg: Arc<ThreadGroup>,
    pub regs: Regs,
    pub ctx: Box<dyn Context>,
    pub mm: Arc<Mutex<MemoryManager>>,
    pub fs: Arc<Mutex<FsContext>>,
    pub files: Arc<Mutex<FdTable>>,
    pub creds: Credentials,
    /// The alternate signal stack and a mask to restore after `sigsuspend`-like calls;
    /// the blocked mask itself is in `shared` where senders can see it.
    pub signals: SignalState,
    pub rlimits: Rlimits,
    pub clear_child_tid: UserAddr,
    pub robust_list: (UserAddr, usize),
    pub dumpable: bool,
    /// The path of the running executable (`/proc/self/exe`).
    pub exe_path: Vec<u8>,
    /// Set when the task has exited; the loop stops.
    pub exit_status: Option<ExitStatus>,
    /// What the task sleeps on in blocking syscalls; signals interrupt it.
    pub blocker: Arc<Blocker>,
    /// The last syscall was interrupted (ERESTARTSYS or ERESTARTNOHAND): restart it or
    /// fail it with EINTR, depending on the signal delivered next.
    pub restart_syscall: Option<crate::Errno>,
}

/// Everything a new task starts from, handed to its host thread.
pub struct TaskSeed {
    pub kernel: Arc<Kernel>,
    pub shared: Arc<TaskShared>,
    pub regs: Regs,
    pub mm: Arc<Mutex<MemoryManager>>,
    pub ctx: Box<dyn Context>,
    pub fs: Arc<Mutex<FsContext>>,
    pub files: Arc<Mutex<FdTable>>,
    pub creds: Credentials,
    pub rlimits: Rlimits,
    pub comm: Vec<u8>,
    pub exe_path: Vec<u8>,
    pub altstack: super::signal::AltStack,
    pub clear_child_tid: UserAddr,
}

impl Task {
    /// A task from its seed, on the host thread that will run it.
    pub fn from_seed(seed: TaskSeed) -> Task {
        let tg = seed.shared.tg.clone();
        let kick = seed.ctx.interrupter();
        *lock(&seed.shared.interrupter) = Some(kick);
        *lock(&seed.shared.cpu_clock) = Some(seed.ctx.cpu_clock());
        *lock(&seed.shared.comm) = seed.comm;
        let task = Task {
            tid: seed.shared.tid,
            tgid: tg.tgid,
            blocker: seed.shared.blocker.clone(),
            shared: seed.shared,
            tg,
            kernel: seed.kernel,
            regs: seed.regs,
            ctx: seed.ctx,
            mm: seed.mm,
            fs: seed.fs,
            files: seed.files,
            creds: seed.creds,
            signals: SignalState {
                altstack: seed.altstack,
                ..SignalState::default()
            },
            rlimits: seed.rlimits,
            clear_child_tid: seed.clear_child_tid,
            robust_list: (UserAddr(0), 0),
            dumpable: true,
            exe_path: seed.exe_path,
            exit_status: None,
            restart_syscall: None,
        };
        task.publish_proc();
        task
    }

    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub fn no_new_privs(&self) -> bool {
        self.shared
            .no_new_privs
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The thread's name (`comm`).
    pub fn comm(&self) -> Vec<u8> {
        lock(&self.shared.comm).clone()
    }

    /// Set the thread's name, cut to 15 bytes as Linux does.
    pub fn set_comm(&self, name: &[u8]) {
        *lock(&self.shared.comm) = name.iter().take(15).copied().collect();
    }

    /// Publish what `/proc` shows of this task's private state (see [`ProcView`]).
    pub fn publish_proc(&self) {
        *lock(&self.shared.proc) = ProcView {
            mm: Some(self.mm.clone()),
            fs: Some(self.fs.clone()),
            files: Some(self.files.clone()),
            creds: self.creds.clone(),
            rlimits: self.rlimits,
            exe_path: self.exe_path.clone(),
        };
    }

    /// The sandbox's first process, pid 1: a fresh address space with `path` loaded.
    #[allow(clippy::too_many_arguments)]
    pub fn new_init(
        kernel: Arc<Kernel>,
        fs: FsContext,
        files: FdTable,
        creds: Credentials,
        open: &Opener<'_>,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> Result<Task> {
        let (aspace, ctx) = kernel.platform.new_process(&kernel.memory_file)?;
        let mut mm = MemoryManager::new(kernel.memory_file.clone(), aspace);
        let loaded = loader::load(&mut mm, open, path, argv, envp, aux_creds(&creds))?;
        let tid = kernel.alloc_pid();
        let tg = Arc::new(ThreadGroup::new(tid, None, tid, tid));
        let shared = kernel.register_task(&tg, tid, super::process::new_sighand());
        Ok(Task::from_seed(TaskSeed {
            kernel,
            shared,
            regs: loaded.regs,
            mm: Arc::new(Mutex::new(mm)),
            ctx,
            fs: Arc::new(Mutex::new(fs)),
            files: Arc::new(Mutex::new(files)),
            creds,
            rlimits: Rlimits::default(),
            comm: comm_from_path(path),
            exe_path: loaded.exe_path,
            altstack: SignalState::default().altstack,
            clear_child_tid: UserAddr(0),
        }))
    }

    /// Load a new process image (`execve`, first half): a fresh address space with
    /// `path` loaded, its auxiliary vector telling the ids of `creds` (those the image
    /// will run with). Nothing of the running image changes; `install_image` commits it.
    pub fn load_image(
        &self,
        open: &Opener<'_>,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        creds: &Credentials,
    ) -> Result<NewImage> {
        let (aspace, ctx) = self.kernel.platform.new_process(&self.kernel.memory_file)?;
        let mut mm = MemoryManager::new(self.kernel.memory_file.clone(), aspace);
        let loaded = loader::load(&mut mm, open, path, argv, envp, aux_creds(creds))?;
        Ok(NewImage {
            mm,
            ctx,
            loaded,
            comm: comm_from_path(path),
        })
    }

    /// Replace the process image with a loaded one (`execve`, second half): the point of
    /// no return.
    pub fn install_image(&mut self, img: NewImage) {
        self.mm = Arc::new(Mutex::new(img.mm));
        self.ctx = img.ctx;
        *lock(&self.shared.interrupter) = Some(self.ctx.interrupter());
        // CPU time of the old image's stub stays counted with the process.
        *lock(&self.shared.cpu_clock) = Some(self.ctx.cpu_clock());
        self.regs = img.loaded.regs;
        self.exe_path = img.loaded.exe_path;
        self.set_comm(&img.comm);
        // Handlers are reset in a private copy: a vfork parent keeps its own.
        let mut actions = *lock(&self.sighand());
        super::signal::reset_handlers_for_exec(&mut actions);
        *lock(&self.shared.sighand) = Arc::new(Mutex::new(actions));
        self.signals.altstack = SignalState::default().altstack;
        self.clear_child_tid = UserAddr(0);
        self.robust_list = (UserAddr(0), 0);
        // A file table shared with a vfork parent or threads becomes our own.
        let table = self.files().clone();
        self.files = Arc::new(Mutex::new(table));
        self.files().close_on_exec();
        self.tg.state().did_exec = true;
        self.creds.exec_transform();
        self.publish_proc();
        self.shared.finish_vfork();
    }

    pub fn sighand(&self) -> SigHandlers {
        self.shared.sighand()
    }

    /// The blocked-signal mask.
    pub fn sigmask(&self) -> u64 {
        lock(&self.shared.signals).mask
    }

    /// Set the blocked-signal mask (SIGKILL and SIGSTOP are never blocked); signals it
    /// unblocks are noticed before the task next runs application code.
    pub fn set_sigmask(&self, mask: u64) {
        lock(&self.shared.signals).mask = mask & !super::signal::unblockable_mask();
    }

    /// Block until `ready` yields a value: `ready` is tried, the task registers on
    /// `queues` (each with the events it cares about), `ready` is tried again, and only
    /// then does the task sleep, so a change between the try and the sleep is not missed.
    /// A signal ends the wait with `ERESTARTSYS` (the syscall restarts or fails with
    /// `EINTR` as the handler says); `deadline` ends it with `ETIMEDOUT`.
    pub fn block_until<T>(
        &self,
        queues: &[(&WaitQueue, u32)],
        deadline: Option<std::time::Instant>,
        mut ready: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        loop {
            if let Some(v) = ready()? {
                return Ok(v);
            }
            let _registered: Vec<_> = queues
                .iter()
                .map(|(q, mask)| q.register(&self.blocker, *mask))
                .collect();
            if let Some(v) = ready()? {
                return Ok(v);
            }
            if self.has_deliverable_signal() {
                return_errno!(ERESTARTSYS);
            }
            match self.blocker.sleep(deadline) {
                Wake::Notified => {}
                Wake::Interrupted => {
                    // What we waited for may have come with the signal (a child's exit
                    // and its SIGCHLD): take it rather than fail.
                    if let Some(v) = ready()? {
                        return Ok(v);
                    }
                    if self.has_deliverable_signal() {
                        return_errno!(ERESTARTSYS);
                    }
                    self.blocker.clear_interrupt();
                }
                Wake::TimedOut => return_errno!(ETIMEDOUT),
            }
        }
    }

    /// Sleep until `deadline` unless a signal comes first (`ERESTARTSYS`).
    pub fn sleep_until(&self, deadline: std::time::Instant) -> Result<()> {
        match self.block_until::<()>(&[], Some(deadline), || Ok(None)) {
            Err(e) if e.errno == crate::Errno::ETIMEDOUT => Ok(()),
            other => other,
        }
    }

    pub fn files(&self) -> MutexGuard<'_, FdTable> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn fs(&self) -> MutexGuard<'_, FsContext> {
        self.fs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run the task until it exits; then leave the thread group.
    pub fn run(&mut self) -> ExitStatus {
        CURRENT.with(|c| *c.borrow_mut() = Some((self.kernel.clone(), self.shared.clone())));
        let status = self.run_loop();
        self.exit_task(status);
        CURRENT.with(|c| *c.borrow_mut() = None);
        status
    }

    fn run_loop(&mut self) -> ExitStatus {
        loop {
            self.deliver_signals();
            if let Some(status) = self.exit_status {
                return status;
            }
            let exit = match self.ctx.switch(&mut self.regs) {
                Ok(exit) => exit,
                Err(e) => {
                    tracing::error!("task {}: platform failed: {e}", self.tid);
                    let status = ExitStatus::Signaled {
                        signo: libc::SIGKILL,
                        core: false,
                    };
                    self.kernel.group_exit(&self.tg, status);
                    return status;
                }
            };
            match exit {
                Exit::Syscall => {
                    if self.ctx.wants_patch() {
                        self.patch_syscall_site();
                    }
                    if let Some(load) = self.ctx.take_stack_load() {
                        // The instruction a patched site replaced, before the call.
                        let mut b = [0u8; 8];
                        if self.copy_in(UserAddr(load.addr), &mut b).is_err() {
                            self.regs.rip = load.site;
                            self.regs.rax = self.regs.orig_rax;
                            let info = super::signal::SigInfo::fault(
                                libc::SIGSEGV,
                                super::signal::code::SEGV_MAPERR,
                                load.addr,
                            );
                            self.force_signal(info);
                            continue;
                        }
                        self.regs.r9 = u64::from_le_bytes(b);
                    }
                    self.handle_syscall()
                }
                Exit::Fault {
                    addr,
                    mapped,
                    access,
                } => {
                    let r = self.mm().handle_fault(addr, mapped, self.regs.rip);
                    if let Err(sig) = r {
                        use super::signal::code::{SEGV_ACCERR, SEGV_MAPERR};
                        let (signo, code) = match sig {
                            crate::mm::FaultSignal::MapErr => (libc::SIGSEGV, SEGV_MAPERR),
                            crate::mm::FaultSignal::AccErr => (libc::SIGSEGV, SEGV_ACCERR),
                            crate::mm::FaultSignal::Bus => (libc::SIGBUS, BUS_ADRERR),
                        };
                        let mut info = super::signal::SigInfo::fault(signo, code, addr);
                        info.fault_err = match access {
                            Some(crate::platform::Access::Write) => 2,
                            Some(crate::platform::Access::Exec) => 16,
                            Some(crate::platform::Access::Read) => 0,
                            None => self.guess_fault_access(addr, sig),
                        };
                        self.force_signal(info);
                    }
                }
                Exit::Signal { signo, code, addr } => {
                    self.force_signal(super::signal::SigInfo::fault(signo, code, addr))
                }
                Exit::Interrupted => {}
            }
        }
    }

    /// The write (2) and instruction-fetch (16) bits of a page fault's error code. ptrace
    /// does not report the access type, so they are inferred where the cause is certain:
    /// a fault at the instruction pointer is a fetch; a refused access to a readable,
    /// non-writable mapping is a write. Elsewhere they stay clear.
    fn guess_fault_access(&self, addr: u64, sig: crate::mm::FaultSignal) -> u64 {
        if addr == self.regs.rip {
            return 16;
        }
        if sig != crate::mm::FaultSignal::AccErr {
            return 0;
        }
        let mm = self.mm();
        let prot = mm
            .vmas()
            .find(|(start, v)| *start <= addr && addr < v.end)
            .map(|(_, v)| v.prot);
        match prot {
            Some(p) if p.read && !p.write => 2,
            _ => 0,
        }
    }

    /// Let the platform rewrite the syscall site that just trapped so that it stops
    /// trapping (systrap's syscall patching); a site it cannot patch keeps trapping.
    fn patch_syscall_site(&mut self) {
        let Some(start) = self.regs.rip.checked_sub(7) else {
            return;
        };
        let mut code = [0u8; 7];
        let mut stack = [0u8; 8];
        let stack = {
            let mut mm = self.mm();
            if !mm.patching_live() || mm.copy_in(UserAddr(start), &mut code).is_err() {
                return;
            }
            let at = UserAddr(self.regs.rsp.wrapping_add(8));
            mm.copy_in(at, &mut stack)
                .ok()
                .map(|()| u64::from_le_bytes(stack))
        };
        if let Some(p) = self.ctx.plan_patch(&self.regs, &code, stack) {
            match self.mm().apply_patch(&p) {
                Ok(()) => tracing::debug!(
                    "patched the syscall site at {:#x} (syscall {})",
                    p.addr,
                    self.regs.orig_rax
                ),
                Err(e) => tracing::debug!("syscall site {:#x} not patched: {e}", p.addr),
            }
        }
    }

    fn handle_syscall(&mut self) {
        let nr = self.regs.orig_rax;
        let r = &self.regs;
        let args = SyscallArgs([r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]);
        let entry = self
            .kernel
            .strace
            .then(|| crate::strace::entry(self, nr, &args));
        if let super::seccomp::Verdict::Skip = super::seccomp::check_syscall(self, nr, &args) {
            // Refused by a seccomp filter: rax holds its errno unless the task is gone.
            if let Some(line) = entry {
                let ret = self.exit_status.is_none().then_some(self.regs.rax as i64);
                crate::strace::exit(self, nr, &args, &line, ret);
            }
            return;
        }
        let result = syscalls::dispatch(self, nr, &args);
        if changes_proc_view(nr) {
            self.publish_proc();
        }
        let ret: Option<i64> = match result {
            Ok(SyscallReturn::Value(v)) => {
                self.regs.rax = v;
                Some(v as i64)
            }
            Ok(SyscallReturn::KeepRegs) => Some(self.regs.rax as i64),
            Ok(SyscallReturn::Exit) => None,
            Err(e) => {
                if !e.msg.is_empty() {
                    tracing::debug!("syscall {nr}: {e}");
                }
                // An interrupted call becomes EINTR unless the signal that interrupted
                // it says restart (decided when it is delivered).
                let errno = if e.errno == crate::Errno::ERESTARTSYS
                    || e.errno == crate::Errno::ERESTARTNOHAND
                {
                    self.restart_syscall = Some(e.errno);
                    crate::Errno::EINTR
                } else {
                    e.errno
                };
                let v = -i64::from(errno.raw());
                self.regs.rax = v as u64;
                Some(v)
            }
        };
        if let Some(line) = entry {
            crate::strace::exit(self, nr, &args, &line, ret);
        }
    }

    pub fn mm(&self) -> MutexGuard<'_, MemoryManager> {
        // A poisoned lock means a sentry bug already panicked; keep going with the data.
        self.mm.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn copy_in(&self, addr: UserAddr, buf: &mut [u8]) -> Result<()> {
        self.mm().copy_in(addr, buf)
    }

    pub fn copy_out(&self, addr: UserAddr, data: &[u8]) -> Result<()> {
        self.mm().copy_out(addr, data)
    }

    /// Read a plain-data value (a C struct) from application memory.
    pub fn read_obj<T: bytemuck::Pod>(&self, addr: UserAddr) -> Result<T> {
        let mut v = T::zeroed();
        self.copy_in(addr, bytemuck::bytes_of_mut(&mut v))?;
        Ok(v)
    }

    /// Write a plain-data value (a C struct) to application memory.
    pub fn write_obj<T: bytemuck::Pod>(&self, addr: UserAddr, v: &T) -> Result<()> {
        self.copy_out(addr, bytemuck::bytes_of(v))
    }

    /// Read a NUL-terminated string of at most `max` bytes (NUL included) and return it
    /// without the NUL. `ENAMETOOLONG` if no NUL is found within `max` bytes.
    pub fn read_cstring(&self, addr: UserAddr, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut cur = addr;
        let mut chunk = [0u8; 256];
        while out.len() < max {
            // Never read across a page boundary we do not need: the next page may be
            // unmapped while the string ends before it.
            let to_page_end = 4096 - (cur.0 % 4096) as usize;
            let n = chunk.len().min(to_page_end).min(max - out.len());
            let buf = chunk.get_mut(..n).ok_or(errno!(EFAULT))?;
            self.copy_in(cur, buf)?;
            if let Some(pos) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(buf.get(..pos).unwrap_or_default());
                return Ok(out);
            }
            out.extend_from_slice(buf);
            cur = cur.offset(n as u64)?;
        }
        return_errno!(ENAMETOOLONG)
    }

    /// Read a path argument: `EFAULT`, `ENAMETOOLONG` as Linux's `getname`. An empty path
    /// is returned as is; callers decide between `ENOENT` and `AT_EMPTY_PATH`.
    pub fn read_path(&self, addr: UserAddr) -> Result<Vec<u8>> {
        self.read_cstring(addr, PATH_MAX)
    }
}

thread_local! {
    /// The task this host thread runs (each task has its own host thread).
    static CURRENT: std::cell::RefCell<Option<(Arc<Kernel>, Arc<TaskShared>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The task the calling host thread runs, for code reached without a `&Task`: `/proc`
/// resolves `self` and shows the sandbox's processes from it. `None` outside task threads.
pub fn current() -> Option<(Arc<Kernel>, Arc<TaskShared>)> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Syscalls after which the task republishes its [`ProcView`]: they change credentials,
/// limits or replace the file and fs tables (`unshare`, `close_range(CLOSE_RANGE_UNSHARE)`;
/// `execve` publishes itself).
fn changes_proc_view(nr: u64) -> bool {
    use syscall_tables::x86_64::nr;
    matches!(
        nr,
        nr::SETUID
            | nr::SETGID
            | nr::SETREUID
            | nr::SETREGID
            | nr::SETRESUID
            | nr::SETRESGID
            | nr::SETFSUID
            | nr::SETFSGID
            | nr::SETGROUPS
            | nr::CAPSET
            | nr::PRCTL
            | nr::SETRLIMIT
            | nr::PRLIMIT64
            | nr::UNSHARE
            | nr::CLOSE_RANGE
    )
}

fn aux_creds(c: &Credentials) -> AuxCreds {
    AuxCreds {
        uid: c.ruid,
        euid: c.euid,
        gid: c.rgid,
        egid: c.egid,
    }
}

/// Linux sets `comm` to the file name being executed, cut to 15 bytes.
fn comm_from_path(path: &[u8]) -> Vec<u8> {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    name.iter().take(15).copied().collect()
}
