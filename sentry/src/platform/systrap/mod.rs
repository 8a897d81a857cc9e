//! The systrap platform: application syscalls and faults trap into a signal handler in
//! the stub, which hands the registers to the sentry through shared memory and a futex.
//!
//! Like the ptrace platform, each address space is a stub process running a tiny image,
//! and each task has its own stub thread (a process cloned with `CLONE_VM` inside the
//! first one). Unlike it, ptrace is used only while an exec'd stub is set up: the sentry
//! injects the mappings, signal handlers and the stub's seccomp filter, then detaches.
//! Only the sandbox's first process and the [`Zygote`] are exec'd stubs: a `fork` is a
//! host copy of the parent's stub (`S_FORK`, with the parent's mappings, fixed up), and
//! any other new address space a copy of the zygote. From then on every system call the application makes is stopped by that
//! filter (`SECCOMP_RET_TRAP`) and every fault raises a signal; the stub's handler (see
//! [`stub`]) saves the state into the thread's slot, a page shared with the sentry, and
//! the task's host thread picks it up. Mapping changes and new threads are made by the
//! stub itself on the sentry's request through the same slot.
//!
//! Both sides spin briefly before sleeping on the slot's futex, so a task whose
//! application runs for long (or a task blocked in the sentry) holds no busy host thread.

mod stub;

use super::ptrace::{self as pt, STUB_BASE};
use super::{Access, AddressSpace, Context, Exit, FpState, Platform, Prot, Regs};
use crate::errno;
use crate::error::{Error, Result};
use crate::mm::MemoryFile;
use nix::sys::ptrace;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The MemoryFile's and the slots file's descriptors inside every stub.
const STUB_MEMFD: u64 = 0;
const STUB_CTLFD: u64 = stub::CTLFD;

/// The slots of one address space are a region of this size in the slots file (every
/// slot it can have: `MAX_SLOTS * SLOT_SIZE` fits).
const REGION: u64 = 1 << 40;
/// How many address spaces can live at once.
const MAX_REGIONS: u64 = 1 << 16;

/// The one memfd every slot of the sandbox lives in: one region per address space, so
/// that a stub forked from the zygote, which has only the zygote's descriptors, can map
/// its own. A stub can thus map another address space's slots, as it can map any of the
/// sandbox's memory through the MemoryFile: the stubs are one trust domain, the
/// application's, and the host kernel is the boundary.
struct SlotsFile {
    fd: OwnedFd,
    /// The next region never used, and the ones given back.
    regions: Mutex<(u64, Vec<u64>)>,
}

static SLOTS_FILE: OnceLock<SlotsFile> = OnceLock::new();

fn slots_file() -> Result<&'static SlotsFile> {
    if let Some(f) = SLOTS_FILE.get() {
        return Ok(f);
    }
    let fd = nix::sys::memfd::memfd_create(
        c"carapace-systrap-slots",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )?;
    let fd = dup_above_stdio(&fd)?;
    // Sparse: only the pages of slots in use take memory.
    nix::unistd::ftruncate(&fd, (REGION * MAX_REGIONS) as i64)?;
    Ok(SLOTS_FILE.get_or_init(|| SlotsFile {
        fd,
        regions: Mutex::new((0, Vec::new())),
    }))
}

impl SlotsFile {
    /// A free region's offset in the file.
    fn take_region(&self) -> Result<u64> {
        let mut r = pt::lock(&self.regions);
        if let Some(base) = r.1.pop() {
            return Ok(base);
        }
        if r.0 >= MAX_REGIONS {
            return Err(errno!(EAGAIN, "too many address spaces"));
        }
        r.0 += 1;
        Ok((r.0 - 1) * REGION)
    }

    /// Give a region back, its first `len` bytes freed.
    fn give_region(&self, base: u64, len: u64) {
        let punch = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
            | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
        if len == 0 || nix::fcntl::fallocate(&self.fd, punch, base as i64, len as i64).is_ok() {
            pt::lock(&self.regions).1.push(base);
        }
    }
}

/// How a new stub thread is cloned: a process of its own sharing the address space (so
/// a fault or kill of one leaves the others), the sentry's child so that it can be reaped.
const CLONE_FLAGS: u64 = (libc::CLONE_VM | libc::CLONE_PARENT | libc::CLONE_FILES) as u64;

/// The signals the stub handles: the seccomp trap, faults, and the sentry's kick.
const HANDLED: [i32; 7] = [
    libc::SIGSYS,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    KICK_SIGNAL,
];

/// The signal that makes a running stub report to the sentry ([`Context::interrupter`]).
const KICK_SIGNAL: i32 = libc::SIGURG;

/// `SA_RESTORER` (asm/signal.h): `sa_restorer` is where handlers return to.
const SA_RESTORER: u64 = 0x0400_0000;

/// x86 page-fault error code bits: a write, an instruction fetch.
const PF_WRITE: u64 = 2;
const PF_INSTR: u64 = 16;

/// `si_code` of the SIGSYS a seccomp `SECCOMP_RET_TRAP` raises.
const SYS_SECCOMP: i32 = 1;

/// How long the two sides spin on a slot before they sleep on its futex: the stub in
/// `pause` loops, the sentry in time. Spinning only pays when both can run at once, so
/// never on one CPU. `CARAPACE_SYSTRAP_SPIN=STUB,SENTRY_NS` overrides (for measuring).
#[derive(Clone, Copy, Debug)]
struct Spin {
    stub: u32,
    sentry: Duration,
}

/// About 45 µs for the stub (a `pause` takes ~45 ns here) and 30 µs for the sentry:
/// longer than most syscalls take to serve and than the trap itself, and cheaper than a
/// futex wake-up across CPUs on these nested machines, which costs tens of µs. Both
/// apply only while the application keeps coming back within the window (see `switch`).
const DEFAULT_SPIN: Spin = Spin {
    stub: 1000,
    sentry: Duration::from_micros(30),
};

fn spin() -> Spin {
    static SPIN: OnceLock<Spin> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let from_env = std::env::var("CARAPACE_SYSTRAP_SPIN").ok().and_then(|v| {
            let (a, b) = v.split_once(',')?;
            Some(Spin {
                stub: a.trim().parse().ok()?,
                sentry: Duration::from_nanos(b.trim().parse().ok()?),
            })
        });
        from_env.unwrap_or(if pt::sandbox_cpus().len() > 1 {
            DEFAULT_SPIN
        } else {
            Spin {
                stub: 0,
                sentry: Duration::ZERO,
            }
        })
    })
}
/// How long it sleeps before it checks that the stub is still alive.
const LIVENESS_PERIOD: Duration = Duration::from_millis(200);

pub struct SystrapPlatform {
    stub_exe: OnceLock<OwnedFd>,
    /// Syscall patching's shared state, made with the first address space (None: off).
    patch: OnceLock<Option<Arc<PatchArea>>>,
    patching: bool,
    /// Address spaces made so far.
    made: AtomicU64,
    zygote: Arc<Mutex<ZygoteState>>,
    factory: OnceLock<Factory>,
}

type Job = Box<dyn FnOnce() + Send>;

/// The host thread every stub process is exec'd on. A process's parent, for
/// `PR_SET_PDEATHSIG`, is the thread that made it, and the stubs forked from a stub
/// (`CLONE_PARENT`) have that same parent: so it must be a thread that never exits,
/// not the task's, or a stub would die with the task that made its ancestor.
struct Factory {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

impl Factory {
    fn start() -> Result<Factory> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("systrap-stubs".into())
            .stack_size(256 << 10)
            .spawn(move || {
                for job in rx {
                    job();
                }
                // The stubs it made are still its children: it stays.
                loop {
                    std::thread::park();
                }
            })
            .map_err(|_| errno!(EAGAIN, "cannot start the stub thread"))?;
        Ok(Factory {
            jobs: Mutex::new(tx),
        })
    }

    /// Run `job` on the factory thread without waiting.
    fn submit(&self, job: Job) -> Result<()> {
        pt::lock(&self.jobs)
            .send(job)
            .map_err(|_| errno!(EAGAIN, "the stub thread is gone"))
    }

    /// Run `f` on the factory thread and wait for its result.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.recv()
            .map_err(|_| errno!(EAGAIN, "the stub thread is gone"))?
    }
}

/// The stub new address spaces are forked from (see [`Zygote`]).
enum ZygoteState {
    /// Not wanted yet: the sandbox has had one process.
    None,
    Starting,
    Ready(Arc<Zygote>),
    Failed,
}

/// A stub that runs no application: set up once like any first stub (signal handlers,
/// signal stack, jump table, seccomp filter), then parked. A new address space is a fork
/// of it (`S_FORK`) that maps a slot of its own and parks: about a tenth of the cost of
/// exec'ing a stub and setting it up, which is most of an `execve` here (the exec'ing
/// fork copies the sentry's page tables). Its children are the sentry's (`CLONE_PARENT`),
/// with the [`Factory`] thread for their parent, and die with it (`PR_SET_PDEATHSIG`).
struct Zygote {
    pid: Pid,
    /// Its address space: dropped, it kills the zygote.
    _aspace: SystrapAddressSpace,
    slot: Mutex<SlotMap>,
    /// A fork failed: exec stubs instead.
    broken: std::sync::atomic::AtomicBool,
}

impl Zygote {
    /// A new address space and its first thread, parked.
    fn fork(&self, patch: Option<Arc<PatchArea>>) -> Result<(SystrapAddressSpace, SystrapContext)> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(errno!(EAGAIN, "the zygote is broken"));
        }
        let space = Space::new(patch)?;
        // From here on the address space's drop kills the new stub on any error.
        let aspace = SystrapAddressSpace {
            space: space.clone(),
        };
        let slot = SlotMap::map(&space, 0)?;
        slot.reset(stub::SLOTS_BASE);
        let ret = {
            let z = pt::lock(&self.slot);
            z.write_u64(stub::CMD_ARGS, space.base);
            z.write_u64(stub::CMD_ARGS + 8, u64::from(std::process::id()));
            z.post(stub::S_FORK);
            z.wait_stopped(self.pid)?;
            let ret = z.read_u64(stub::CMD_RET) as i64;
            pt::check_injected(ret)?;
            ret
        };
        let pid = Pid::from_raw(i32::try_from(ret).map_err(|_| errno!(EAGAIN))?);
        // As for a new thread: only a child of ours that is no stub yet.
        if pid.as_raw() <= 0 || !alive(pid) || !register_stub(pid) {
            return Err(errno!(EAGAIN, "the zygote reported a bad process id"));
        }
        pt::lock(&space.members).push(pid);
        if space.patch.is_some() {
            space.table_live.store(true, Ordering::Relaxed);
        }
        let ctx = SystrapContext::new(pid, slot, 0, space);
        ctx.wait_parked()?;
        Ok((aspace, ctx))
    }
}

/// Exec a stub and set it up: its pid, address space and first slot (not yet parked).
fn make_stub(
    exe: i32,
    patch: Option<Arc<PatchArea>>,
    memory_file: &Arc<MemoryFile>,
) -> Result<(Pid, SystrapAddressSpace, SlotMap)> {
    let ctl = slots_file()?;
    let space = Space::new(patch)?;
    let pid = pt::spawn_stub(exe, memory_file.fd().as_raw_fd(), Some(ctl.fd.as_raw_fd()))?;
    register_stub(pid);
    pt::lock(&space.members).push(pid);
    // From here on the address space's drop kills the stub on any error.
    let aspace = SystrapAddressSpace {
        space: space.clone(),
    };
    let slot = set_up_first_stub(pid, &space)?;
    Ok((pid, aspace, slot))
}

/// The jump table and entry data of syscall patching, in the MemoryFile, shared by every
/// address space of the sandbox: entry `i` is one (number, return address) pair, so a
/// forked child, whose code holds the parent's patched sites, finds the same entries.
struct PatchArea {
    mf: Arc<MemoryFile>,
    table_off: u64,
    data_off: u64,
    entries: Mutex<std::collections::HashMap<(u64, u64), u64>>,
}

impl PatchArea {
    fn new(mf: &Arc<MemoryFile>) -> Result<PatchArea> {
        let table_off = mf.allocate(stub::PATCH_TABLE_LEN / 4096)?;
        let data_off = mf.allocate(stub::PATCH_DATA_LEN / 4096)?;
        let mut table = Vec::with_capacity(stub::PATCH_TABLE_LEN as usize);
        for i in 0..stub::PATCH_ENTRIES {
            table.extend_from_slice(&stub::thunk(i).to_le_bytes());
        }
        mf.write(table_off, &table)?;
        Ok(PatchArea {
            mf: mf.clone(),
            table_off,
            data_off,
            entries: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The entry for `nr` returning to `ret`, made if needed (None: the table is full).
    fn entry(&self, nr: u64, ret: u64) -> Option<u64> {
        let mut e = pt::lock(&self.entries);
        if let Some(i) = e.get(&(nr, ret)) {
            return Some(*i);
        }
        let i = e.len() as u64;
        if i >= stub::PATCH_ENTRIES {
            return None;
        }
        // Written before any site can use it (the site is patched after this returns).
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&nr.to_le_bytes());
        d[8..].copy_from_slice(&ret.to_le_bytes());
        self.mf.write(self.data_off + i * 16, &d).ok()?;
        e.insert((nr, ret), i);
        Some(i)
    }
}

impl SystrapPlatform {
    pub fn new() -> SystrapPlatform {
        Self::with_patching(true)
    }

    /// `patching`: rewrite hot syscall sites so that they stop trapping (see
    /// [`stub::PATCH_TABLE`]); off, every syscall takes the seccomp trap.
    pub fn with_patching(patching: bool) -> SystrapPlatform {
        pt::sandbox_cpus();
        spin();
        SystrapPlatform {
            stub_exe: OnceLock::new(),
            patch: OnceLock::new(),
            patching,
            made: AtomicU64::new(0),
            zygote: Arc::new(Mutex::new(ZygoteState::None)),
            factory: OnceLock::new(),
        }
    }

    fn factory(&self) -> Result<&Factory> {
        if let Some(f) = self.factory.get() {
            return Ok(f);
        }
        let f = Factory::start()?;
        Ok(self.factory.get_or_init(|| f))
    }

    /// Exec a stub and set it up, on the factory thread.
    fn make_stub(
        &self,
        memory_file: &Arc<MemoryFile>,
    ) -> Result<(Pid, SystrapAddressSpace, SlotMap)> {
        let exe = self.stub_exe()?.as_raw_fd();
        let patch = self.patch_area(memory_file);
        let mf = memory_file.clone();
        self.factory()?.run(move || make_stub(exe, patch, &mf))
    }

    /// The zygote, if it is ready. The sandbox's first process does without: the zygote
    /// is started (in the background) when a second address space is wanted.
    fn zygote(&self, memory_file: &Arc<MemoryFile>, made: u64) -> Option<Arc<Zygote>> {
        if made == 0 {
            return None;
        }
        let mut st = pt::lock(&self.zygote);
        match &*st {
            ZygoteState::Ready(z) if !z.broken.load(Ordering::Relaxed) => return Some(z.clone()),
            ZygoteState::None => {}
            _ => return None,
        }
        let exe = self.stub_exe().ok()?.as_raw_fd();
        let factory = self.factory().ok()?;
        *st = ZygoteState::Starting;
        drop(st);
        let patch = self.patch_area(memory_file);
        let mf = memory_file.clone();
        let state = self.zygote.clone();
        let spawned = factory.submit(Box::new(move || {
            let made = make_stub(exe, patch, &mf).and_then(|(pid, aspace, slot)| {
                check_parked(&slot, pid)?;
                Ok(Zygote {
                    pid,
                    _aspace: aspace,
                    slot: Mutex::new(slot),
                    broken: std::sync::atomic::AtomicBool::new(false),
                })
            });
            *pt::lock(&state) = match made {
                Ok(z) => ZygoteState::Ready(Arc::new(z)),
                Err(e) => {
                    tracing::warn!("systrap: no zygote ({e}); stubs are exec'd");
                    ZygoteState::Failed
                }
            };
        }));
        if spawned.is_err() {
            *pt::lock(&self.zygote) = ZygoteState::Failed;
        }
        None
    }

    fn patch_area(&self, mf: &Arc<MemoryFile>) -> Option<Arc<PatchArea>> {
        self.patch
            .get_or_init(|| {
                if !self.patching {
                    return None;
                }
                match PatchArea::new(mf) {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => {
                        tracing::warn!("systrap: no syscall patching: {e}");
                        None
                    }
                }
            })
            .clone()
    }

    fn stub_exe(&self) -> Result<&OwnedFd> {
        if let Some(fd) = self.stub_exe.get() {
            return Ok(fd);
        }
        let fd = nix::sys::memfd::memfd_create(
            c"carapace-systrap-stub",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )?;
        let img = stub::image();
        let n = nix::unistd::write(&fd, &img)?;
        if n != img.len() {
            return Err(errno!(EIO, "short write of the stub image"));
        }
        let fd = dup_above_stdio(&fd)?;
        Ok(self.stub_exe.get_or_init(|| fd))
    }
}

impl Default for SystrapPlatform {
    fn default() -> Self {
        Self::new()
    }
}

/// A close-on-exec duplicate numbered 3 or above (the stub's fork child rearranges 0..=2).
fn dup_above_stdio(fd: &OwnedFd) -> Result<OwnedFd> {
    let fd = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a fresh descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

impl Platform for SystrapPlatform {
    fn name(&self) -> &'static str {
        "systrap"
    }

    fn new_process(
        &self,
        memory_file: &Arc<MemoryFile>,
    ) -> Result<(Box<dyn AddressSpace>, Box<dyn Context>)> {
        let made = self.made.fetch_add(1, Ordering::Relaxed);
        if let Some(z) = self.zygote(memory_file, made) {
            match z.fork(self.patch_area(memory_file)) {
                Ok((aspace, ctx)) => return Ok((Box::new(aspace), Box::new(ctx))),
                Err(e) => {
                    // Forks keep failing this way too if the zygote is gone: exec from
                    // now on.
                    tracing::warn!("systrap: the zygote failed ({e}); stubs are exec'd");
                    z.broken.store(true, Ordering::Relaxed);
                }
            }
        }
        let (pid, aspace, slot) = self.make_stub(memory_file)?;
        let ctx = SystrapContext::new(pid, slot, 0, aspace.space.clone());
        ctx.wait_parked()?;
        Ok((Box::new(aspace), Box::new(ctx)))
    }

    fn fork_inherits_fp(&self, token: &super::ProcessToken) -> bool {
        token
            .members
            .downcast_ref::<NewProcess>()
            .is_some_and(|p| p.fp_inherited)
    }

    fn home_cpu(&self, token: &super::ProcessToken) -> Option<usize> {
        token.members.downcast_ref::<NewProcess>()?.cpu
    }

    fn host_threads_reusable(&self) -> bool {
        // Nothing of a context stays with its thread: the slot is shared memory, and
        // the thread's record of its stubs goes with the context.
        true
    }

    fn fork_process(
        &self,
        ctx: &mut dyn Context,
        fixups: &[super::MapOp],
    ) -> Result<Option<super::ProcessToken>> {
        let parent = ctx
            .as_any()
            .downcast_ref::<SystrapContext>()
            .ok_or(errno!(EINVAL))?;
        let index = parent.index;
        let fp_inherited = !parent.fp_fresh;
        let cpu = placement(parent.place, parent.split.unwrap_or(false)).map(|(stub, _)| stub);
        let own = slot_addr(index);
        let own_end = own + stub::SLOT_SIZE;
        // The child's set-up: none of the parent's other slots, then the fix-ups.
        let mut calls: Vec<(i64, [u64; 6])> = Vec::with_capacity(fixups.len() + 2);
        if own > stub::SLOTS_BASE {
            calls.push((
                libc::SYS_munmap,
                [stub::SLOTS_BASE, own - stub::SLOTS_BASE, 0, 0, 0, 0],
            ));
        }
        calls.push((libc::SYS_munmap, [own_end, USER_TOP - own_end, 0, 0, 0, 0]));
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        for op in fixups {
            calls.push(match *op {
                super::MapOp::Map {
                    addr,
                    len,
                    prot,
                    offset,
                } => (
                    libc::SYS_mmap,
                    [addr, len, prot.bits() as u64, flags, STUB_MEMFD, offset],
                ),
                super::MapOp::Unmap { addr, len } => (libc::SYS_munmap, [addr, len, 0, 0, 0, 0]),
            });
        }
        if calls.len() > stub::BATCH_MAX {
            return Ok(None);
        }
        let space = Space::new(parent.space.patch.clone())?;
        {
            let mut slots = pt::lock(&space.slots);
            slots.mapped = index + 1;
            slots.free = (0..index).map(|i| (i, false)).collect();
        }
        space.table_live.store(
            parent.space.table_live.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        // From here on the address space's drop kills the new stub on any error.
        let aspace = SystrapAddressSpace {
            space: space.clone(),
        };
        let slot = SlotMap::map(&space, index)?;
        slot.reset(own);
        slot.write_batch(&calls);
        let p = &parent.slot;
        // The child starts on the parent stub's CPU: the parent must sleep, not spin,
        // once it has forked.
        p.word(stub::SPIN).store(0, Ordering::Relaxed);
        p.write_u64(stub::CMD_ARGS, space.base + index * stub::SLOT_SIZE);
        p.write_u64(stub::CMD_ARGS + 8, u64::from(std::process::id()));
        p.post(stub::S_FORK);
        p.wait_stopped(parent.pid)?;
        let ret = p.read_u64(stub::CMD_RET) as i64;
        pt::check_injected(ret)?;
        let pid = Pid::from_raw(i32::try_from(ret).map_err(|_| errno!(EAGAIN))?);
        // As for a new thread: only a child of ours that is no stub yet.
        if pid.as_raw() <= 0 || !alive(pid) || !register_stub(pid) {
            return Err(errno!(EAGAIN, "stub reported a bad process id"));
        }
        pt::lock(&space.members).push(pid);
        Ok(Some(super::ProcessToken {
            members: Box::new(NewProcess {
                pid,
                aspace,
                slot,
                index,
                fp_inherited,
                cpu,
            }),
        }))
    }

    fn adopt_process(
        &self,
        token: super::ProcessToken,
    ) -> Result<(Box<dyn AddressSpace>, Box<dyn Context>)> {
        let p = token
            .members
            .downcast::<NewProcess>()
            .map_err(|_| errno!(EINVAL))?;
        let NewProcess {
            pid,
            aspace,
            slot,
            index,
            cpu,
            ..
        } = *p;
        let space = aspace.space.clone();
        let ctx = match cpu {
            Some(cpu) => SystrapContext::beside(pid, slot, index, space, cpu),
            None => SystrapContext::new(pid, slot, index, space),
        };
        ctx.wait_parked()?;
        Ok((Box::new(aspace), Box::new(ctx)))
    }

    fn prepare_thread(&self, ctx: &mut dyn Context) -> Result<super::ThreadToken> {
        let parent = ctx
            .as_any()
            .downcast_ref::<SystrapContext>()
            .ok_or(errno!(EINVAL))?;
        let space = parent.space.clone();
        let (index, in_stub) = {
            let mut slots = pt::lock(&space.slots);
            match slots.free.pop() {
                Some(free) => free,
                None if slots.mapped < stub::MAX_SLOTS => {
                    slots.mapped += 1;
                    (slots.mapped - 1, false)
                }
                None => return Err(errno!(EAGAIN, "no more stub thread slots")),
            }
        };
        let mut mapped = in_stub;
        let made = (|| {
            let addr = slot_addr(index);
            if !in_stub {
                let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
                let prot = Prot::RW.bits() as u64;
                let args = [
                    addr,
                    stub::SLOT_SIZE,
                    prot,
                    flags,
                    STUB_CTLFD,
                    space.base + (addr - stub::SLOTS_BASE),
                ];
                parent.slot.command(parent.pid, libc::SYS_mmap, args)?;
                mapped = true;
            }
            let slot = SlotMap::map(&space, index)?;
            slot.reset(addr);
            let ret = parent
                .slot
                .clone_thread(parent.pid, addr + stub::SLOT_SIZE - 64)?;
            let pid = Pid::from_raw(i32::try_from(ret).map_err(|_| errno!(EAGAIN))?);
            // The answer sits in memory the application can write: take it only for a
            // child of ours that is no stub yet (never, say, a sentry thread's id).
            if pid.as_raw() <= 0 || !alive(pid) || !register_stub(pid) {
                return Err(errno!(EAGAIN, "stub reported a bad thread id"));
            }
            Ok::<_, Error>((slot, pid))
        })();
        let (slot, pid) = match made {
            Ok(v) => v,
            Err(e) => {
                pt::lock(&space.slots).free.push((index, mapped));
                return Err(e);
            }
        };
        pt::lock(&space.members).push(pid);
        Ok(super::ThreadToken {
            host_tid: pid.as_raw(),
            space: space.id,
            members: Box::new(NewThread { space, slot, index }),
        })
    }

    fn adopt_thread(&self, token: super::ThreadToken) -> Result<Box<dyn Context>> {
        let pid = Pid::from_raw(token.host_tid);
        let t = token
            .members
            .downcast::<NewThread>()
            .map_err(|_| errno!(EINVAL))?;
        let ctx = SystrapContext::new(pid, t.slot, t.index, t.space);
        // The new thread sets itself up and parks; until then there is nothing to run.
        ctx.wait_parked()?;
        Ok(Box::new(ctx))
    }
}

/// The size of the volatile copies between the sentry and a slot.
const CHUNK: usize = 64;

/// A site is patched when it traps for the second time in an address space: a call made
/// once (a process's exit, most of start-up) is not worth a patch, and in a forked child
/// that still shares its code with the parent a patch costs a copy of the page.
const PATCH_AFTER: u8 = 2;

/// A forked child starts on its parent's stub's CPU, and is placed by its own pid (as
/// every other task) after this many switches. Hand-overs then stay on one CPU for a
/// child that lives briefly (a wake-up across CPUs costs tens of µs in a nested VM:
/// fork+exit+wait ~300 -> ~275 µs here); a child that goes on making calls, or a worker
/// of a pool, soon gets a CPU of its own, as does one that computes for [`BESIDE_RUN`]
/// without a call.
const BESIDE_SWITCHES: u32 = 8;

/// A forked child that runs this long without a call also leaves its parent's CPU (two
/// such children forked at once: 146 -> 81 ms, native 75). Waits with a timeout under
/// ~10 ms cost fork+exit+wait ~15 µs here (measured with 2 ms).
const BESIDE_RUN: Duration = Duration::from_millis(10);

/// A process made by `fork_process`, carried to `adopt_process`.
struct NewProcess {
    pid: Pid,
    aspace: SystrapAddressSpace,
    slot: SlotMap,
    index: u64,
    /// The parent stopped on the patched-site path, which leaves the application's FP
    /// state in the CPU: the fork copied it, and the child's first stop saves it.
    fp_inherited: bool,
    /// The parent's stub's CPU, where the child starts (None: the host places it).
    cpu: Option<usize>,
}

/// The top of user space: the end of what a stub can map.
const USER_TOP: u64 = 0x7fff_ffff_f000;

/// A thread prepared by `prepare_thread`, carried to `adopt_thread`.
struct NewThread {
    space: Arc<Space>,
    slot: SlotMap,
    index: u64,
}

/// Where a context's stub and host thread go (see `SystrapContext::bind_cpus`): pairs
/// spread over the CPUs in turn, by `place`, the context's number. (By stub pid, two
/// workers forked in a row could get one CPU: the host pids between them are not only
/// theirs.) None: the host places them.
fn placement(place: usize, split: bool) -> Option<(usize, usize)> {
    let cpus = pt::sandbox_cpus();
    let n = cpus.len();
    if n < 2 || std::env::var_os("CARAPACE_SYSTRAP_BIND").is_some_and(|m| m == "none") {
        return None;
    }
    let i = place;
    let a = cpus.get(i % n).copied()?;
    let b = cpus.get((i + usize::from(split)) % n).copied()?;
    Some((a, b))
}

/// Move the stub `pid` (and this thread, if `this_thread_too`) to a CPU other than this
/// one, if the sandbox has one. A forked child that lived beside its parent (see
/// [`BESIDE_SWITCHES`]) dies there: its stub's exit (~50 µs here: the host tears its
/// address space down) and this thread's clean-up (the wait for it, the slot, the frames)
/// then run beside the parent's next steps instead of ahead of them on its CPU. The move costs this CPU ~10 µs (the
/// migration thread); fork+exit+wait 540 -> 509 µs here (A/B, medians of 10).
fn leave_for_another_cpu(pid: Pid, this_thread_too: bool) {
    // SAFETY: sched_getcpu takes no arguments and only reads this thread's CPU.
    let here = unsafe { libc::sched_getcpu() };
    let Some(cpu) = pt::sandbox_cpus()
        .iter()
        .copied()
        .find(|c| i32::try_from(*c).ok() != Some(here))
    else {
        return;
    };
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(pid, &set);
        if this_thread_too {
            let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &set);
        }
    }
}

/// Wait for a new stub thread to report from its park, set up.
fn check_parked(slot: &SlotMap, pid: Pid) -> Result<()> {
    slot.wait_stopped(pid)?;
    let kind = slot.word(stub::KIND).load(Ordering::Relaxed) as i32;
    let rip = slot.read_u64(stub::GREGS + 8 * 16);
    if kind != libc::SIGTRAP || rip != stub::sites().park + 1 {
        return Err(errno!(EAGAIN, "stub failed to set itself up"));
    }
    Ok(())
}

fn slot_addr(index: u64) -> u64 {
    stub::SLOTS_BASE + index * stub::SLOT_SIZE
}

/// Set up a freshly exec'd stub (stopped, traced by this thread) and let it go: it
/// parks in its handler, waiting for the sentry. Returns the sentry's view of slot 0.
///
/// One injection maps the slot; the rest of the set-up is a list of syscalls the stub
/// makes itself after the sentry detaches (a ptrace round trip each cost ~15 µs here).
fn set_up_first_stub(pid: Pid, space: &Space) -> Result<SlotMap> {
    let sites = stub::sites();
    let base = stub::SLOTS_BASE;
    let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
    let prot = Prot::RW.bits() as u64;
    let ret = pt::inject_at(
        pid,
        sites.inject,
        sites.inject + 3,
        libc::SYS_mmap,
        [base, stub::SLOT_SIZE, prot, flags, STUB_CTLFD, space.base],
    )?;
    pt::check_injected(ret)?;
    let slot = SlotMap::map(space, 0)?;
    slot.reset(base);

    // The data the calls point to, in the slot's set-up area.
    let setup = stub::SETUP;
    let at = |off: usize| base + off as u64;
    // The signal stack: the slot's upper half.
    let altstack = setup;
    slot.write_u64(altstack, base + stub::ALTSTACK);
    slot.write_u64(altstack + 8, 0);
    slot.write_u64(altstack + 16, stub::SLOT_SIZE - stub::ALTSTACK);
    // One handler for everything, with every handled signal blocked while it runs.
    let act = setup + 64;
    let mask = HANDLED
        .iter()
        .fold(0u64, |m, s| m | 1u64 << (*s as u64 - 1));
    slot.write_u64(act, sites.handler);
    let sa_flags = (libc::SA_SIGINFO | libc::SA_ONSTACK) as u64 | SA_RESTORER;
    slot.write_u64(act + 8, sa_flags);
    slot.write_u64(act + 16, sites.restorer);
    slot.write_u64(act + 24, mask);
    // The filter: traps for the application, a short list for the stub's own code.
    let prog = setup + 128;
    let insns = setup + 256;
    let batch = setup + 768;
    let filter = stub::filter(CLONE_FLAGS);
    if insns + filter.len() * 8 > batch {
        return Err(errno!(E2BIG, "stub filter does not fit its slot"));
    }
    for (i, ins) in filter.iter().enumerate() {
        let word = u64::from(ins.code)
            | u64::from(ins.jt) << 16
            | u64::from(ins.jf) << 24
            | u64::from(ins.k) << 32;
        slot.write_u64(insns + i * 8, word);
    }
    slot.write_u64(prog, filter.len() as u64);
    slot.write_u64(prog + 8, at(insns));

    let top = USER_TOP;
    let code_end = stub::IMAGE_END;
    let slot_end = base + stub::SLOT_SIZE;
    let mut calls: Vec<(i64, [u64; 6])> = vec![
        // Nothing of the exec'd image but the code page stays (stack, vDSO, vvar).
        (libc::SYS_munmap, [0, STUB_BASE, 0, 0, 0, 0]),
        (libc::SYS_munmap, [code_end, base - code_end, 0, 0, 0, 0]),
        (libc::SYS_munmap, [slot_end, top - slot_end, 0, 0, 0, 0]),
        (libc::SYS_sigaltstack, [at(altstack), 0, 0, 0, 0, 0]),
        // The patched-site path finds the slot through gs.
        (libc::SYS_arch_prctl, [0x1001, base, 0, 0, 0, 0]),
    ];
    if let Some(p) = &space.patch {
        let ro = Prot {
            read: true,
            write: false,
            exec: false,
        }
        .bits() as u64;
        calls.push((
            libc::SYS_mmap,
            [
                stub::PATCH_TABLE,
                stub::PATCH_TABLE_LEN,
                ro,
                flags,
                STUB_MEMFD,
                p.table_off,
            ],
        ));
        calls.push((
            libc::SYS_mmap,
            [
                stub::PATCH_DATA,
                stub::PATCH_DATA_LEN,
                ro,
                flags,
                STUB_MEMFD,
                p.data_off,
            ],
        ));
        space.table_live.store(true, Ordering::Relaxed);
    }
    for sig in HANDLED {
        calls.push((libc::SYS_rt_sigaction, [sig as u64, at(act), 0, 8, 0, 0]));
    }
    calls.push((
        libc::SYS_prctl,
        [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0, 0],
    ));
    calls.push((
        libc::SYS_seccomp,
        [libc::SECCOMP_SET_MODE_FILTER as u64, 0, at(prog), 0, 0, 0],
    ));
    if batch + calls.len() * 56 > stub::FAST_STACK - 0x100 {
        return Err(errno!(E2BIG, "stub set-up does not fit its slot"));
    }
    for (i, (nr, args)) in calls.iter().enumerate() {
        let entry = batch + i * 56;
        slot.write_u64(entry, *nr as u64);
        for (j, a) in args.iter().enumerate() {
            slot.write_u64(entry + 8 + 8 * j, *a);
        }
    }

    // Let it go: it runs the list and parks, where it reports itself as stopped.
    let mut regs = ptrace::getregs(pid)?;
    regs.rip = sites.batch;
    regs.rbx = base;
    regs.r12 = at(batch);
    regs.r13 = calls.len() as u64;
    ptrace::setregs(pid, regs)?;
    ptrace::detach(pid, None)?;
    Ok(slot)
}

static NEXT_SPACE: AtomicU64 = AtomicU64::new(1);

impl Space {
    /// A new address space with a region of the slots file, and no stub yet.
    fn new(patch: Option<Arc<PatchArea>>) -> Result<Arc<Space>> {
        let base = slots_file()?.take_region()?;
        Ok(Arc::new(Space {
            id: NEXT_SPACE.fetch_add(1, Ordering::Relaxed),
            patch,
            table_live: std::sync::atomic::AtomicBool::new(false),
            tried: Mutex::new(std::collections::HashMap::new()),
            base,
            slots: Mutex::new(Slots {
                mapped: 1,
                free: Vec::new(),
            }),
            members: Mutex::new(Vec::new()),
        }))
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        // Its stubs are killed (by the address space's and contexts' drops): nothing
        // runs in the region any more.
        let mapped = pt::lock(&self.slots).mapped;
        if let Some(f) = SLOTS_FILE.get() {
            f.give_region(self.base, mapped.saturating_mul(stub::SLOT_SIZE));
        }
    }
}

/// The next context's number (see [`placement`]).
static NEXT_PLACE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many systrap contexts (tasks) exist.
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    /// The stub thread each address space's mapping changes go through on this host
    /// thread: its own task's, which is stopped whenever the thread is not in `switch`.
    static MY_STUBS: RefCell<Vec<(u64, Pid, usize)>> = const { RefCell::new(Vec::new()) };
}

/// One address space: the slots memfd and who is in it.
struct Space {
    id: u64,
    /// Syscall patching, if on.
    patch: Option<Arc<PatchArea>>,
    /// The jump table is mapped in the stub (the application has nothing there).
    table_live: std::sync::atomic::AtomicBool,
    /// How often each site trapped, up to [`PATCH_AFTER`] (then it was tried, once).
    tried: Mutex<std::collections::HashMap<u64, u8>>,
    /// Where its slots are in the slots file.
    base: u64,
    slots: Mutex<Slots>,
    /// Every stub thread (process) in it.
    members: Mutex<Vec<Pid>>,
}

struct Slots {
    /// Slots mapped in the stub (and backed by the memfd): `0..mapped`.
    mapped: u64,
    /// Slots no live thread uses, and whether the stub has them mapped.
    free: Vec<(u64, bool)>,
}

/// The sentry's mapping of one thread's slot.
struct SlotMap {
    ptr: *mut u8,
}

// SAFETY: the mapping is plain shared memory owned by this value; every access goes
// through atomics or volatile copies, so moving it between threads is sound.
unsafe impl Send for SlotMap {}

impl SlotMap {
    fn map(space: &Space, index: u64) -> Result<SlotMap> {
        let ctl = &slots_file()?.fd;
        let off = index
            .checked_mul(stub::SLOT_SIZE)
            .and_then(|o| o.checked_add(space.base))
            .and_then(|o| i64::try_from(o).ok())
            .ok_or(errno!(EINVAL))?;
        // SAFETY: a fresh shared mapping of the memfd chosen by the kernel; nothing else
        // in the sentry uses that range.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                stub::SLOT_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                ctl.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os_error());
        }
        Ok(SlotMap { ptr: p.cast() })
    }

    /// Clear the header of a slot about to get a new thread; `addr` is where the stub
    /// has it.
    fn reset(&self, addr: u64) {
        for off in (0..stub::SIGINFO).step_by(8) {
            self.write_u64(off, 0);
        }
        self.write_u64(stub::SELF, addr);
        self.write_u64(stub::PENDING_KICK, 0);
        // A new thread shares its creator's CPU at first: no spinning until `switch`
        // decides otherwise.
        self.word(stub::SPIN).store(0, Ordering::Relaxed);
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off.is_multiple_of(4) && off < stub::SIGINFO);
        // SAFETY: `off` is a 4-aligned offset inside the mapping (header words only),
        // which lives as long as `self`; the stub accesses these words atomically too.
        unsafe { &*(self.ptr.add(off) as *const AtomicU32) }
    }

    fn read_u64(&self, off: usize) -> u64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= stub::SLOT_SIZE as usize);
        // SAFETY: an aligned offset inside the mapping; the other side may write it, so the
        // read is volatile (the value is validated by whoever uses it).
        unsafe { std::ptr::read_volatile(self.ptr.add(off) as *const u64) }
    }

    fn write_u64(&self, off: usize, v: u64) {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= stub::SLOT_SIZE as usize);
        // SAFETY: as in `read_u64`.
        unsafe { std::ptr::write_volatile(self.ptr.add(off) as *mut u64, v) }
    }

    /// Copy bytes out of the slot (the FP state, siginfo), in volatile chunks of
    /// [`CHUNK`] bytes: byte by byte, the FP state of every stop cost a debug build most
    /// of its time.
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        let n = buf
            .len()
            .min((stub::SLOT_SIZE as usize).saturating_sub(off));
        let (whole, rest) = buf[..n].split_at_mut(n - n % CHUNK);
        for (i, c) in whole.chunks_exact_mut(CHUNK).enumerate() {
            // SAFETY: `off + i * CHUNK + CHUNK <= off + n` is inside the mapping (bounded
            // above); `[u8; CHUNK]` needs no alignment.
            let v = unsafe {
                std::ptr::read_volatile(self.ptr.add(off + i * CHUNK).cast::<[u8; CHUNK]>())
            };
            c.copy_from_slice(&v);
        }
        let tail = off + whole.len();
        for (i, b) in rest.iter_mut().enumerate() {
            // SAFETY: `tail + i < off + n` is inside the mapping (bounded above).
            *b = unsafe { std::ptr::read_volatile(self.ptr.add(tail + i)) };
        }
    }

    /// Copy bytes into the slot, as [`Self::read_bytes`] copies them out.
    fn write_bytes(&self, off: usize, data: &[u8]) {
        let n = data
            .len()
            .min((stub::SLOT_SIZE as usize).saturating_sub(off));
        let (whole, rest) = data[..n].split_at(n - n % CHUNK);
        for (i, c) in whole.chunks_exact(CHUNK).enumerate() {
            let mut v = [0u8; CHUNK];
            v.copy_from_slice(c);
            // SAFETY: as in `read_bytes`.
            unsafe {
                std::ptr::write_volatile(self.ptr.add(off + i * CHUNK).cast::<[u8; CHUNK]>(), v)
            };
        }
        let tail = off + whole.len();
        for (i, b) in rest.iter().enumerate() {
            // SAFETY: as in `read_bytes`.
            unsafe { std::ptr::write_volatile(self.ptr.add(tail + i), *b) };
        }
    }

    /// Hand the slot to the stub with a request (`S_RUN`, `S_CMD`, `S_CLONE`).
    fn post(&self, state: u32) {
        let st = self.word(stub::STATE);
        // SeqCst: the store is ordered before the load of the stub's sleep flag.
        st.store(state, Ordering::SeqCst);
        if self.word(stub::STUB_SLEEPING).load(Ordering::SeqCst) != 0 {
            futex_wake(st);
        }
    }

    /// Whether the stub and its host thread are on different CPUs.
    fn split(&self) -> bool {
        self.word(stub::SPLIT).load(Ordering::Relaxed) != 0
    }

    /// Wait until the stub reports back (`S_STOPPED`): spin briefly if the stub has a CPU
    /// of its own (on this thread's CPU, spinning would only keep it from running), then
    /// sleep.
    fn wait_stopped(&self, pid: Pid) -> Result<()> {
        let limit = if self.split() {
            spin().sentry
        } else {
            Duration::ZERO
        };
        self.wait_stopped_within(pid, limit)
    }

    /// The same, spinning for at most `limit`.
    fn wait_stopped_within(&self, pid: Pid, limit: Duration) -> Result<()> {
        self.wait_stopped_for(pid, limit, Duration::MAX).map(|_| ())
    }

    /// The same, giving up (false) after `patience`.
    fn wait_stopped_for(&self, pid: Pid, limit: Duration, patience: Duration) -> Result<bool> {
        let st = self.word(stub::STATE);
        let start = Instant::now();
        let mut n = 0u32;
        loop {
            if st.load(Ordering::Acquire) == stub::S_STOPPED {
                return Ok(true);
            }
            n = n.wrapping_add(1);
            if n.is_multiple_of(16) && start.elapsed() >= limit {
                break;
            }
            std::hint::spin_loop();
        }
        let sleeping = self.word(stub::SENTRY_SLEEPING);
        loop {
            sleeping.store(1, Ordering::SeqCst);
            let v = st.load(Ordering::SeqCst);
            if v == stub::S_STOPPED {
                sleeping.store(0, Ordering::Relaxed);
                return Ok(true);
            }
            let left = patience.saturating_sub(start.elapsed());
            if !futex_wait(st, v, left.min(LIVENESS_PERIOD)) {
                if start.elapsed() >= patience {
                    sleeping.store(0, Ordering::Relaxed);
                    return Ok(false);
                }
                if !alive(pid) {
                    sleeping.store(0, Ordering::Relaxed);
                    return Err(errno!(ESRCH, "stub died"));
                }
            }
        }
    }

    /// Have the (stopped) stub make one host syscall; its raw result.
    fn command(&self, pid: Pid, nr: i64, args: [u64; 6]) -> Result<i64> {
        // Mapping changes come in runs (a fork maps every area): the stub waits for the
        // next one spinning, if it has a CPU of its own and there is one to spare.
        let room = LIVE.load(Ordering::Relaxed) * 2 <= pt::sandbox_cpus().len();
        let stub_spin = if room && self.split() { spin().stub } else { 0 };
        self.word(stub::SPIN).store(stub_spin, Ordering::Relaxed);
        self.write_u64(stub::CMD_NR, nr as u64);
        for (i, a) in args.iter().enumerate() {
            self.write_u64(stub::CMD_ARGS + 8 * i, *a);
        }
        self.post(stub::S_CMD);
        self.wait_stopped(pid)?;
        let ret = self.read_u64(stub::CMD_RET) as i64;
        pt::check_injected(ret)?;
        Ok(ret)
    }

    /// Put a batch of at most `BATCH_MAX` calls in the slot, for `S_BATCH` or a new
    /// process's set-up.
    fn write_batch(&self, calls: &[(i64, [u64; 6])]) {
        let calls = calls.get(..stub::BATCH_MAX).unwrap_or(calls);
        for (i, (nr, args)) in calls.iter().enumerate() {
            let at = stub::BATCH + i * 56;
            self.write_u64(at, *nr as u64);
            for (j, a) in args.iter().enumerate() {
                self.write_u64(at + 8 + 8 * j, *a);
            }
        }
        self.write_u64(stub::CMD_ARGS, calls.len() as u64);
    }

    /// Have the (stopped) stub make a list of host syscalls, in as few round trips as
    /// fit; stops at the first that fails.
    fn batch(&self, pid: Pid, calls: &[(i64, [u64; 6])]) -> Result<()> {
        for chunk in calls.chunks(stub::BATCH_MAX) {
            self.word(stub::SPIN).store(0, Ordering::Relaxed);
            self.write_batch(chunk);
            self.post(stub::S_BATCH);
            self.wait_stopped(pid)?;
            pt::check_injected(self.read_u64(stub::CMD_RET) as i64)?;
        }
        Ok(())
    }

    /// Have the (stopped) stub clone a new stub thread whose stack starts at `stack`.
    fn clone_thread(&self, pid: Pid, stack: u64) -> Result<i64> {
        self.write_u64(stub::CMD_ARGS, CLONE_FLAGS);
        self.write_u64(stub::CMD_ARGS + 8, stack);
        self.post(stub::S_CLONE);
        self.wait_stopped(pid)?;
        let ret = self.read_u64(stub::CMD_RET) as i64;
        pt::check_injected(ret)?;
        Ok(ret)
    }
}

impl Drop for SlotMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), stub::SLOT_SIZE as usize) };
    }
}

/// Wake the stub sleeping on `word` (a shared futex: the word is in a memfd page).
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid word; it only wakes waiters.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// Sleep while `word` holds `val`, at most `timeout`; false if the time ran out.
fn futex_wait(word: &AtomicU32, val: u32, timeout: Duration) -> bool {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT on a valid word with a timespec that lives across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            val,
            &ts as *const libc::timespec,
        )
    };
    !(r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Every live stub process of the sandbox.
static STUBS: Mutex<std::collections::BTreeSet<i32>> =
    Mutex::new(std::collections::BTreeSet::new());

/// Record a new stub; false if it is one already.
fn register_stub(pid: Pid) -> bool {
    pt::lock(&STUBS).insert(pid.as_raw())
}

fn unregister_stub(pid: Pid) {
    pt::lock(&STUBS).remove(&pid.as_raw());
}

/// Whether a stub process still runs (it has not exited; it is not reaped here). False
/// for a process that is not the sentry's child.
fn alive(pid: Pid) -> bool {
    // SAFETY: an all-zero siginfo_t is a valid value to be filled in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes into `info`; WNOWAIT leaves the child to be reaped later.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid.as_raw() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
        )
    };
    // SAFETY: si_pid is valid for the child-status siginfo waitid fills (0 if none).
    r == 0 && unsafe { info.si_pid() } == 0
}

fn my_stub(space: u64) -> Result<(Pid, usize)> {
    MY_STUBS
        .with(|s| {
            s.borrow()
                .iter()
                .rev()
                .find(|(sp, _, _)| *sp == space)
                .map(|(_, p, slot)| (*p, *slot))
        })
        .ok_or(errno!(
            EFAULT,
            "this thread runs no stub of that address space"
        ))
}

pub struct SystrapAddressSpace {
    space: Arc<Space>,
}

impl SystrapAddressSpace {
    fn command(&self, nr: i64, args: [u64; 6]) -> Result<()> {
        let (pid, slot) = my_stub(self.space.id)?;
        // SAFETY: MY_STUBS holds the slot pointers of contexts owned by this thread,
        // removed when they drop; the pointer is valid while this thread runs.
        let slot = std::mem::ManuallyDrop::new(SlotMap {
            ptr: slot as *mut u8,
        });
        slot.command(pid, nr, args).map(|_| ())
    }

    fn batch(&self, calls: &[(i64, [u64; 6])]) -> Result<()> {
        let (pid, slot) = my_stub(self.space.id)?;
        // SAFETY: as in `command`.
        let slot = std::mem::ManuallyDrop::new(SlotMap {
            ptr: slot as *mut u8,
        });
        slot.batch(pid, calls)
    }

    /// Apply `f` to the parts of `[addr, addr + len)` outside the live jump table: the
    /// application has nothing there (or the table would be gone), and the table must
    /// stay while patched sites use it.
    fn outside_table(
        &self,
        addr: u64,
        len: u64,
        mut f: impl FnMut(u64, u64) -> Result<()>,
    ) -> Result<()> {
        let end = addr.saturating_add(len);
        let (t0, t1) = (stub::PATCH_TABLE, stub::PATCH_TABLE + stub::PATCH_TABLE_LEN);
        if !self.space.table_live.load(Ordering::Relaxed) || end <= t0 || addr >= t1 {
            return f(addr, len);
        }
        if addr < t0 {
            f(addr, t0 - addr)?;
        }
        if end > t1 {
            f(t1, end - t1)?;
        }
        Ok(())
    }
}

impl AddressSpace for SystrapAddressSpace {
    fn map(&mut self, addr: u64, len: u64, prot: Prot, file_offset: u64) -> Result<()> {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let args = [
            addr,
            len,
            prot.bits() as u64,
            flags,
            STUB_MEMFD,
            file_offset,
        ];
        self.command(libc::SYS_mmap, args)
    }

    fn batches_maps(&self) -> bool {
        true
    }

    fn map_many(&mut self, maps: &[(u64, u64, Prot, u64)]) -> Result<()> {
        if maps.len() < 2 {
            for (addr, len, prot, off) in maps {
                self.map(*addr, *len, *prot, *off)?;
            }
            return Ok(());
        }
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let calls: Vec<(i64, [u64; 6])> = maps
            .iter()
            .map(|(addr, len, prot, off)| {
                (
                    libc::SYS_mmap,
                    [*addr, *len, prot.bits() as u64, flags, STUB_MEMFD, *off],
                )
            })
            .collect();
        self.batch(&calls)
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<()> {
        self.outside_table(addr, len, |a, l| {
            self.command(libc::SYS_munmap, [a, l, 0, 0, 0, 0])
        })
    }

    fn protect(&mut self, addr: u64, len: u64, prot: Prot) -> Result<()> {
        self.outside_table(addr, len, |a, l| {
            self.command(libc::SYS_mprotect, [a, l, prot.bits() as u64, 0, 0, 0])
        })
    }

    fn patch_table(&self) -> Option<(u64, u64)> {
        self.space
            .table_live
            .load(Ordering::Relaxed)
            .then_some((stub::PATCH_TABLE, stub::PATCH_TABLE + stub::PATCH_TABLE_LEN))
    }

    fn release_patch_table(&mut self) {
        self.space.table_live.store(false, Ordering::Relaxed);
    }

    fn max_user_address(&self) -> u64 {
        STUB_BASE
    }
}

impl Drop for SystrapAddressSpace {
    fn drop(&mut self) {
        for pid in std::mem::take(&mut *pt::lock(&self.space.members)) {
            unregister_stub(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG));
        }
    }
}

pub struct SystrapContext {
    pid: Pid,
    slot: SlotMap,
    index: u64,
    space: Arc<Space>,
    /// The fs and gs bases the stub thread has (None: unknown, set before the next run).
    fs_base: Option<u64>,
    gs_base: Option<u64>,
    /// Whether the stub and this thread are on CPUs of their own (None: not yet set).
    split: Option<bool>,
    /// The most tasks seen at once since placement was last decided.
    max_active: usize,
    /// The application's last run ended within the spin window.
    last_short: bool,
    switches: u32,
    /// Its number among contexts, for placement.
    place: usize,
    /// A forked child placed on its parent's stub's CPU rather than by its own pid (see
    /// [`BESIDE_SWITCHES`]).
    beside: bool,
    /// How the last stop came: 0 a signal (the slot has the FP state), or from a patched
    /// site (`stub::K_FAST`, the FP state is still in the CPU until asked for).
    last_kind: u32,
    /// The slot holds the FP state of the last stop.
    fp_fresh: bool,
    /// The load a `K_FAST_LOAD` stop leaves to the sentry.
    stack_load: Option<super::StackLoad>,
}

impl SystrapContext {
    /// A context for a new stub thread, which goes on this thread's CPU until its first
    /// switch decides (so that setting it up hands over on one CPU).
    fn new(pid: Pid, slot: SlotMap, index: u64, space: Arc<Space>) -> SystrapContext {
        let mut ctx = Self::unplaced(pid, slot, index, space);
        ctx.bind_cpus(false);
        ctx
    }

    /// A forked child's context on its parent's stub's CPU `cpu`, where the child's stub
    /// already is (it inherited the parent's affinity); this thread was moved there
    /// before it woke.
    fn beside(
        pid: Pid,
        slot: SlotMap,
        index: u64,
        space: Arc<Space>,
        cpu: usize,
    ) -> SystrapContext {
        let mut ctx = Self::unplaced(pid, slot, index, space);
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpu).is_ok() && nix::sched::sched_setaffinity(Pid::from_raw(0), &set).is_ok() {
            ctx.split = Some(false);
            ctx.beside = true;
            ctx.slot.word(stub::SPLIT).store(0, Ordering::Relaxed);
        } else {
            ctx.bind_cpus(false);
        }
        ctx
    }

    fn unplaced(pid: Pid, slot: SlotMap, index: u64, space: Arc<Space>) -> SystrapContext {
        MY_STUBS.with(|s| s.borrow_mut().push((space.id, pid, slot.ptr as usize)));
        LIVE.fetch_add(1, Ordering::Relaxed);
        SystrapContext {
            pid,
            slot,
            index,
            space,
            fs_base: None,
            gs_base: None,
            split: None,
            max_active: 0,
            last_short: true,
            switches: 0,
            place: NEXT_PLACE.fetch_add(1, Ordering::Relaxed),
            beside: false,
            last_kind: 0,
            fp_fresh: true,
            stack_load: None,
        }
    }

    /// A forked child that lives on is placed like any task (see [`BESIDE_SWITCHES`]).
    fn leave_beside(&mut self) {
        self.beside = false;
        self.split = None;
        self.bind_cpus(false);
    }

    /// While the sandbox has CPUs to spare, put the stub thread and this host thread on
    /// two different CPUs, so that each can spin while the other works: measured here
    /// 2.4–4.3 µs per getpid that way, against 8–10 µs with both on one CPU (no spinning;
    /// as fast as ptrace) and 2–22 µs left to the host scheduler, which often puts the
    /// pair on one CPU where spinning only delays the other side. With more active tasks
    /// than that (`split` false) the pair shares one CPU and nobody spins, as on ptrace:
    /// a hand-over is then a wake-up on the same CPU, cheap, where one across CPUs costs
    /// tens of µs here (pipe and futex ping-pong between two tasks). Split pairs for 64
    /// threads starved the program's main thread (one signal round in 3 s against 39).
    /// `CARAPACE_SYSTRAP_BIND=none` leaves CPUs to the host (for measuring).
    fn bind_cpus(&mut self, split: bool) {
        if self.split == Some(split) {
            return;
        }
        self.split = Some(split);
        let Some((a, b)) = placement(self.place, split) else {
            self.slot.word(stub::SPLIT).store(0, Ordering::Relaxed);
            return;
        };
        let mut stub_set = nix::sched::CpuSet::new();
        let mut own_set = nix::sched::CpuSet::new();
        if stub_set.set(a).is_err() || own_set.set(b).is_err() {
            return;
        }
        let _ = nix::sched::sched_setaffinity(self.pid, &stub_set);
        let _ = nix::sched::sched_setaffinity(Pid::from_raw(0), &own_set);
        self.slot
            .word(stub::SPLIT)
            .store(u32::from(split), Ordering::Relaxed);
    }

    /// Wait for a new stub thread to report from its park, set up.
    fn wait_parked(&self) -> Result<()> {
        check_parked(&self.slot, self.pid)
    }

    fn write_regs(&mut self, r: &Regs) {
        let g = [
            r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx,
            r.rdx, r.rax, r.rcx, r.rsp, r.rip, r.eflags,
        ];
        for (i, v) in g.iter().enumerate() {
            self.slot.write_u64(stub::GREGS + 8 * i, *v);
        }
        if self.fs_base != Some(r.fs_base) {
            self.slot.write_u64(stub::FS_BASE, r.fs_base);
            self.slot.word(stub::FS_DIRTY).store(1, Ordering::Relaxed);
            self.fs_base = Some(r.fs_base);
        }
        if self.gs_base != Some(r.gs_base) {
            // The patched-site path finds the slot through gs while the application has
            // none of its own (Linux programs leave gs alone; one that sets it loses the
            // patched sites, see `MemoryManager::unpatch_all`).
            let real = if r.gs_base == 0 {
                slot_addr(self.index)
            } else {
                r.gs_base
            };
            self.slot.write_u64(stub::GS_BASE, real);
            self.slot.word(stub::GS_DIRTY).store(1, Ordering::Relaxed);
            self.gs_base = Some(r.gs_base);
        }
    }

    fn read_regs(&self, r: &mut Regs) {
        let g = |i: usize| self.slot.read_u64(stub::GREGS + 8 * i);
        r.r8 = g(0);
        r.r9 = g(1);
        r.r10 = g(2);
        r.r11 = g(3);
        r.r12 = g(4);
        r.r13 = g(5);
        r.r14 = g(6);
        r.r15 = g(7);
        r.rdi = g(8);
        r.rsi = g(9);
        r.rbp = g(10);
        r.rbx = g(11);
        r.rdx = g(12);
        r.rax = g(13);
        r.rcx = g(14);
        r.rsp = g(15);
        r.rip = g(16);
        r.eflags = g(17);
        let csgsfs = g(18);
        r.cs = csgsfs & 0xffff;
        r.ss = (csgsfs >> 48) & 0xffff;
        r.orig_rax = u64::MAX;
    }

    fn siginfo_i32(&self, off: usize) -> i32 {
        let w = self.slot.read_u64(stub::SIGINFO + (off & !7));
        (if off.is_multiple_of(8) { w } else { w >> 32 }) as u32 as i32
    }

    /// Why the stub stopped, from the slot it just filled.
    fn exit(&mut self, regs: &mut Regs) -> Exit {
        let kind = self.slot.word(stub::KIND).load(Ordering::Relaxed);
        self.last_kind = kind;
        if kind == stub::K_FAST || kind == stub::K_FAST_LOAD {
            regs.orig_rax = regs.rax;
            if kind == stub::K_FAST_LOAD {
                self.stack_load = Some(super::StackLoad {
                    addr: regs.rsp.wrapping_add(8),
                    site: regs.rip.wrapping_sub(7),
                });
            }
            return Exit::Syscall;
        }
        if kind == stub::K_FAST_INT {
            return Exit::Interrupted;
        }
        let kind = kind as i32;
        let code = self.siginfo_i32(8);
        let addr = self.slot.read_u64(stub::SIGINFO + 16);
        match kind {
            libc::SIGSYS if code == SYS_SECCOMP => {
                regs.orig_rax = self.siginfo_i32(24) as u32 as u64;
                Exit::Syscall
            }
            libc::SIGSEGV if code == 1 || code == 2 => {
                // The page-fault error code the host put in the frame.
                let err = self.slot.read_u64(stub::GREGS + 8 * 19);
                let access = if err & PF_INSTR != 0 {
                    Access::Exec
                } else if err & PF_WRITE != 0 {
                    Access::Write
                } else {
                    Access::Read
                };
                Exit::Fault {
                    addr,
                    mapped: code == 2,
                    access: Some(access),
                }
            }
            libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP => {
                Exit::Signal {
                    signo: kind,
                    code,
                    addr,
                }
            }
            _ => Exit::Interrupted,
        }
    }

    /// After a fast stop, have the stub save the FP state into the slot (once).
    fn fetch_fp(&mut self) -> Result<()> {
        if !self.fp_fresh {
            self.slot.post(stub::S_XSAVE);
            self.slot.wait_stopped(self.pid)?;
            self.fp_fresh = true;
        }
        Ok(())
    }

    /// The frame's FP area and the size of its XSAVE state (without the trailing magic).
    fn fp_area(&self) -> Result<(Vec<u8>, usize)> {
        let len = self.slot.word(stub::FP_LEN).load(Ordering::Relaxed) as usize;
        if !(512..=stub::FP_MAX).contains(&len) {
            return Err(errno!(EIO, "stub reported no FP state"));
        }
        let mut b = vec![0u8; len];
        self.slot.read_bytes(stub::FP, &mut b);
        let magic = u32_at(&b, 464);
        let size = if magic == Some(0x4650_5853) {
            u32_at(&b, 480).map_or(512, |s| s as usize).clamp(512, len)
        } else {
            512
        };
        Ok((b, size))
    }
}

/// Where a patchable `mov $nr,%eax; syscall` ends at `ret` (the 7 bytes before it are
/// `code`): the site's address, or None. The number must be the one the trap reported
/// (so the `mov` is what ran, not a jump to the `syscall`), and the site must lie in one
/// page (one frame to write).
///
/// Two shapes: `mov $nr,%eax; syscall` (b8 imm32 0f 05), the entry's number being `nr`;
/// and glibc's `syscall()`, `mov 8(%rsp),%r9; syscall` (4c 8b 4c 24 08 0f 05), whose
/// number is in rax ([`stub::NR_IN_RAX`]) and whose load the sentry replays — r9 must hold
/// what `stack` (the 8 bytes at rsp+8) says, or the load did not run.
fn plan_site(ret: u64, regs: &Regs, code: &[u8], stack: Option<u64>) -> Option<(u64, u64)> {
    let site = ret.checked_sub(7)?;
    let c = code.get(..7)?;
    if c[5] != 0x0f || c[6] != 0x05 || site / 4096 != (ret - 1) / 4096 {
        return None;
    }
    let nr = regs.orig_rax;
    if c[0] == 0xb8 {
        let imm = u32::from_le_bytes([c[1], c[2], c[3], c[4]]);
        return (u64::from(imm) == nr).then_some((site, nr));
    }
    if c[..5] == [0x4c, 0x8b, 0x4c, 0x24, 0x08] && stack == Some(regs.r9) {
        return Some((site, stub::NR_IN_RAX));
    }
    None
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        let pid = self.pid;
        let ptr = self.slot.ptr as usize;
        // The last context of this thread's task (not an image `execve` replaced: the
        // new one is this thread's already, and placed).
        let last = MY_STUBS.with(|s| {
            let mut s = s.borrow_mut();
            s.retain(|(_, _, p)| *p != ptr);
            s.is_empty()
        });
        pt::lock(&self.space.members).retain(|p| *p != pid);
        unregister_stub(pid);
        LIVE.fetch_sub(1, Ordering::Relaxed);
        if self.beside {
            leave_for_another_cpu(pid, last);
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, Some(WaitPidFlag::__WALL));
        // The thread is gone: its slot (still mapped in the stub) can take another.
        pt::lock(&self.space.slots).free.push((self.index, true));
    }
}

impl Context for SystrapContext {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn switch(&mut self, regs: &mut Regs) -> Result<Exit> {
        self.write_regs(regs);
        // Spin only for an application that came back quickly last time (a syscall-heavy
        // loop), and now and then to find out whether it does again.
        let window = spin().sentry;
        self.switches = self.switches.wrapping_add(1);
        // A spinning pair needs two CPUs, and every other task may need one at any time
        // (in application code or in the sentry): with more tasks than the CPUs allow
        // for that, nobody spins. Spinners then starved a 64-thread program's signal
        // deliveries for minutes.
        let live = LIVE.load(Ordering::Relaxed);
        self.max_active = self.max_active.max(live);
        // CPU placement follows the most tasks of the last 128 switches, not each one:
        // moving threads between CPUs costs more than a hand-over.
        if self.beside && self.switches > BESIDE_SWITCHES {
            self.leave_beside();
        }
        if !self.beside && (self.switches == 1 || self.switches.is_multiple_of(128)) {
            let split = self.max_active * 2 <= pt::sandbox_cpus().len();
            self.bind_cpus(split);
            self.max_active = live;
        }
        let room = self.split == Some(true) && live * 2 <= pt::sandbox_cpus().len();
        let spinning = room && (self.last_short || self.switches.is_multiple_of(64));
        let limit = if spinning { window } else { Duration::ZERO };
        // The stub spins for the sentry's answer only while hand-overs are quick too.
        let stub_spin = if room && self.last_short {
            spin().stub
        } else {
            0
        };
        self.slot
            .word(stub::SPIN)
            .store(stub_spin, Ordering::Relaxed);
        let posted = Instant::now();
        self.slot.post(stub::S_RUN);
        if self.beside {
            if !self.slot.wait_stopped_for(self.pid, limit, BESIDE_RUN)? {
                // It computes on without calls: a CPU of its own now, not after its
                // switches.
                self.leave_beside();
                self.slot.wait_stopped_within(self.pid, Duration::ZERO)?;
            }
        } else {
            self.slot.wait_stopped_within(self.pid, limit)?;
        }
        self.last_short = posted.elapsed() <= window;
        self.read_regs(regs);
        let exit = self.exit(regs);
        // After a fast stop the FP state is still in the CPU (and stays there through
        // an interrupted fast return).
        self.fp_fresh = match self.last_kind {
            stub::K_FAST | stub::K_FAST_LOAD => false,
            stub::K_FAST_INT => self.fp_fresh,
            _ => true,
        };
        Ok(exit)
    }

    fn fp_state(&mut self) -> Result<FpState> {
        self.fetch_fp()?;
        let (mut b, size) = self.fp_area()?;
        b.truncate(size);
        Ok(FpState(b))
    }

    fn set_fp_state(&mut self, state: &FpState) -> Result<()> {
        self.fetch_fp()?;
        let (cur, size) = self.fp_area()?;
        let new = &state.0;
        if new.len() < 512 {
            return Err(errno!(EINVAL, "FP state too short"));
        }
        // What the host would refuse at sigreturn (which would kill the stub): MXCSR bits
        // the CPU lacks, and an XSAVE header with features the frame does not carry.
        let mxcsr_mask = match u32_at(&cur, 28) {
            Some(0) | None => 0xffbf,
            Some(m) => m,
        };
        if u32_at(new, 24).is_some_and(|m| m & !mxcsr_mask != 0) {
            return Err(errno!(EINVAL, "bad MXCSR"));
        }
        if size > 512 {
            let xfeatures = u64_at(&cur, 472).unwrap_or(0);
            let bv = u64_at(new, 512).unwrap_or(0);
            let comp = u64_at(new, 520).unwrap_or(0);
            let reserved = new.get(528..576).is_some_and(|r| r.iter().any(|b| *b != 0));
            if bv & !xfeatures != 0 || comp != 0 || reserved {
                return Err(errno!(EINVAL, "bad XSAVE header"));
            }
        }
        // Keep the frame's own software-reserved bytes (464..512: the XSAVE magic and
        // sizes) and anything past the state the new one does not cover.
        let mut out = cur;
        for (i, (o, b)) in out.iter_mut().zip(new).take(size).enumerate() {
            if !(464..512).contains(&i) {
                *o = *b;
            }
        }
        self.slot.write_bytes(stub::FP, &out);
        // A signal stop's return loads it from the frame; a fast stop's, from the slot.
        if matches!(
            self.last_kind,
            stub::K_FAST | stub::K_FAST_LOAD | stub::K_FAST_INT
        ) {
            self.slot.word(stub::FP_RESTORE).store(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn wants_patch(&self) -> bool {
        self.space.patch.is_some() && self.last_kind == libc::SIGSYS as u32
    }

    fn take_stack_load(&mut self) -> Option<super::StackLoad> {
        self.stack_load.take()
    }

    fn plan_patch(&mut self, regs: &Regs, code: &[u8], stack: Option<u64>) -> Option<super::Patch> {
        let patch = self.space.patch.as_ref()?;
        if !self.space.table_live.load(Ordering::Relaxed) {
            return None;
        }
        let ret = regs.rip;
        {
            let mut tried = pt::lock(&self.space.tried);
            let n = tried.entry(ret).or_insert(0);
            if *n >= PATCH_AFTER {
                return None;
            }
            *n += 1;
            if *n < PATCH_AFTER {
                return None;
            }
        }
        let (site, nr) = plan_site(ret, regs, code, stack)?;
        let i = patch.entry(nr, ret)?;
        Some(super::Patch {
            addr: site,
            old: code.get(..5)?.to_vec(),
            new: stub::patch_bytes(i).to_vec(),
        })
    }

    fn interrupter(&self) -> Arc<dyn Fn() + Send + Sync> {
        let pid = self.pid;
        Arc::new(move || {
            // Each stub thread is a process of its own: tgid == tid.
            // SAFETY: tgkill only sends a signal; a stale pid at worst gets ESRCH.
            unsafe {
                libc::syscall(libc::SYS_tgkill, pid.as_raw(), pid.as_raw(), KICK_SIGNAL);
            }
        })
    }

    fn cpu_time(&self) -> Duration {
        pt::stub_cpu_time(self.pid)
    }

    fn cpu_clock(&self) -> Arc<dyn Fn() -> Duration + Send + Sync> {
        let pid = self.pid;
        Arc::new(move || pt::stub_cpu_time(pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_fit_below_the_top_of_user_space() {
        assert!(slot_addr(stub::MAX_SLOTS) <= 0x7fff_ffff_f000);
        assert_eq!(stub::SLOTS_BASE % stub::SLOT_SIZE, 0);
    }

    #[test]
    fn only_known_shapes_matching_the_state_are_planned() {
        // SAFETY: user_regs_struct is plain integers; all zero is a valid value.
        let mut r: Regs = unsafe { std::mem::zeroed() };
        r.orig_rax = 0x27;
        let site = [0xb8, 0x27, 0, 0, 0, 0x0f, 0x05];
        assert_eq!(plan_site(0x401007, &r, &site, None), Some((0x401000, 0x27)));
        assert_eq!(plan_site(0x401003, &r, &site, None), None); // crosses a page
        assert_eq!(plan_site(3, &r, &site, None), None);
        let other = [0x89, 0xf0, 0x90, 0x90, 0x90, 0x0f, 0x05];
        assert_eq!(plan_site(0x401007, &r, &other, None), None);
        // syscall(): only if r9 is what the load would have read.
        let wrapper = [0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05];
        r.r9 = 77;
        let want = Some((0x401000, stub::NR_IN_RAX));
        assert_eq!(plan_site(0x401007, &r, &wrapper, Some(77)), want);
        assert_eq!(plan_site(0x401007, &r, &wrapper, Some(78)), None);
        assert_eq!(plan_site(0x401007, &r, &wrapper, None), None);
        r.orig_rax = 0x28;
        assert_eq!(plan_site(0x401007, &r, &site, None), None);
    }

    #[test]
    fn handled_signals_fit_the_mask() {
        for s in HANDLED {
            assert!((1..=64).contains(&s));
        }
    }
}
