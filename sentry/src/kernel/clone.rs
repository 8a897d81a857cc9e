//! Creating tasks: `fork`, `vfork` and `clone` of new processes.
//!
//! A child process gets a copy-on-write fork of its parent's memory manager and a fresh
//! platform context made on the child's own host thread (ptrace binds a stub to the
//! thread that created it). The parent waits until the child is running, or learns why
//! it could not start.
#![deny(unsafe_code)]

use super::process::{lock, new_sighand, TaskShared, ThreadGroup};
use super::task::{Task, TaskSeed};
use super::wait::events;
use crate::error::Result;
use crate::mm::{MemoryManager, UserAddr};
use crate::{errno, return_errno};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x10000;
pub const CLONE_NEWNS: u64 = 0x20000;
pub const CLONE_SYSVSEM: u64 = 0x40000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
pub const CLONE_DETACHED: u64 = 0x40_0000;
pub const CLONE_UNTRACED: u64 = 0x80_0000;
pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
pub const CLONE_NEWCGROUP: u64 = 0x200_0000;
pub const CLONE_NEWUTS: u64 = 0x400_0000;
pub const CLONE_NEWIPC: u64 = 0x800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
pub const CLONE_IO: u64 = 0x8000_0000;
pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

const NAMESPACE_FLAGS: u64 = CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// The arguments of `clone`/`clone3`, decoded.
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub stack: u64,
    pub parent_tid: UserAddr,
    pub child_tid: UserAddr,
    pub tls: u64,
    pub exit_signal: i32,
}

/// Check the flag combinations clone(2) rejects.
fn validate(a: &CloneArgs) -> Result<()> {
    let f = a.flags;
    if f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0 {
        return_errno!(EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0 {
        return_errno!(EINVAL);
    }
    if f & CLONE_FS != 0 && f & CLONE_NEWNS != 0 {
        return_errno!(EINVAL);
    }
    if f & CLONE_THREAD != 0 && f & CLONE_NEWUSER != 0 {
        return_errno!(EINVAL);
    }
    if f & CLONE_SIGHAND != 0 && f & CLONE_CLEAR_SIGHAND != 0 {
        return_errno!(EINVAL);
    }
    if f & CLONE_PIDFD != 0 && f & CLONE_DETACHED != 0 {
        return_errno!(EINVAL);
    }
    if !(0..=64).contains(&a.exit_signal) {
        return_errno!(EINVAL);
    }
    if f & NAMESPACE_FLAGS != 0 {
        return_errno!(
            EINVAL,
            "namespaces inside the sandbox are not supported yet"
        );
    }
    if f & (CLONE_PIDFD | CLONE_INTO_CGROUP) != 0 {
        return_errno!(EINVAL, "pidfds and cgroups are not supported yet");
    }
    Ok(())
}

/// `clone`, `fork`, `vfork`, `clone3`: returns the child's tid to the parent.
pub fn do_clone(task: &mut Task, a: CloneArgs) -> Result<u64> {
    validate(&a)?;
    let kernel = task.kernel.clone();
    let tid = kernel.alloc_pid();
    let f = a.flags;

    // The child's signal dispositions: shared, copied, or copied with handlers reset.
    let sighand = if f & CLONE_SIGHAND != 0 {
        task.sighand()
    } else {
        let mut actions = *lock(&task.sighand());
        if f & CLONE_CLEAR_SIGHAND != 0 {
            for act in actions.iter_mut() {
                if act.handler != super::signal::SIG_IGN {
                    *act = Default::default();
                }
            }
        }
        let h = new_sighand();
        *lock(&h) = actions;
        h
    };

    let parent_tg = if f & CLONE_PARENT != 0 || f & CLONE_THREAD != 0 {
        task.tg.parent().unwrap_or_else(|| task.tg.clone())
    } else {
        task.tg.clone()
    };
    let tg = if f & CLONE_THREAD != 0 {
        task.tg.clone()
    } else {
        let (pgid, sid, oom_score_adj, ctty) = {
            let st = task.tg.state();
            (st.pgid, st.sid, st.oom_score_adj, st.ctty.clone())
        };
        let tg = Arc::new(ThreadGroup::new(tid, Some(parent_tg.clone()), pgid, sid));
        {
            let mut st = tg.state();
            st.exit_signal = a.exit_signal;
            st.oom_score_adj = oom_score_adj;
            st.ctty = ctty;
        }
        tg.container.store(
            task.tg.container.load(std::sync::atomic::Ordering::Relaxed),
            std::sync::atomic::Ordering::Relaxed,
        );
        tg
    };

    // Memory: shared (threads, CLONE_VM) through a new stub in the same address space, or
    // a copy-on-write fork whose writable pages leave the parent's stub now.
    let memory = if f & CLONE_VM != 0 {
        ChildMemory::Shared(
            task.mm.clone(),
            kernel.platform.prepare_thread(&mut *task.ctx)?,
        )
    } else {
        // Alone: no other task (nor a /proc/PID/mem writer) holds the memory, so nothing
        // writes it while it is copied. Only /proc's view of this task may hold it too.
        let in_view = lock(&task.shared.proc)
            .mm
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, &task.mm));
        let alone = Arc::strong_count(&task.mm) == 1 + usize::from(in_view);
        // Held until the host copy is made: no other thread may change the parent's
        // mappings in between, or the child would inherit them.
        let mut mm = lock(&task.mm);
        let forked = mm.fork(alone)?;
        // A host copy of the parent's stub where the platform can: the child starts with
        // its mappings instead of faulting each area in.
        let token = match kernel
            .platform
            .fork_process(&mut *task.ctx, &forked.host_fixups())
        {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!("fork: no host copy of the address space ({e})");
                None
            }
        };
        drop(mm);
        ChildMemory::Forked(forked, token)
    };
    // The child's FP state: the parent's, unless the host copy has it already (fetching
    // it can cost a round trip to the stub).
    let fp = match &memory {
        ChildMemory::Forked(_, Some(t)) if kernel.platform.fork_inherits_fp(t) => None,
        _ => Some(task.ctx.fp_state()?),
    };
    let mut regs = task.regs;
    regs.rax = 0;
    if a.stack != 0 {
        regs.rsp = a.stack;
    }
    if f & CLONE_SETTLS != 0 {
        regs.fs_base = a.tls;
    }
    let files = if f & CLONE_FILES != 0 {
        task.files.clone()
    } else {
        Arc::new(Mutex::new(task.files().clone()))
    };
    let fs = if f & CLONE_FS != 0 {
        task.fs.clone()
    } else {
        Arc::new(Mutex::new(task.fs().clone()))
    };

    // Before the child can run: a thread that exits at once clears this same word
    // (CLONE_CHILD_CLEARTID), and a late write would leave pthread_join waiting forever.
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = task.write_obj(a.parent_tid, &tid);
    }
    let shared = kernel.register_task(&tg, tid, sighand);
    lock(&shared.signals).mask = task.sigmask();
    let mask = task
        .shared
        .cpu_mask
        .load(std::sync::atomic::Ordering::Relaxed);
    shared
        .cpu_mask
        .store(mask, std::sync::atomic::Ordering::Relaxed);
    // A new task starts with its creator's nice value (sched_fork).
    let nice = task.shared.nice.load(std::sync::atomic::Ordering::Relaxed);
    shared
        .nice
        .store(nice, std::sync::atomic::Ordering::Relaxed);
    // seccomp filters and no_new_privs are inherited by every new thread and process.
    shared.seccomp.inherit(&task.shared.seccomp);
    shared
        .no_new_privs
        .store(task.no_new_privs(), Ordering::Release);
    // Until the child's thread publishes its own, /proc shows the parent's view of it.
    *lock(&shared.comm) = task.comm();
    *lock(&shared.proc) = lock(&task.shared.proc).clone();
    if f & CLONE_THREAD == 0 {
        parent_tg.state().children.push(tg.clone());
    }

    let seed_parts = SeedParts {
        kernel: kernel.clone(),
        shared: shared.clone(),
        regs,
        fs,
        files,
        creds: task.creds.clone(),
        rlimits: task.rlimits,
        comm: task.comm(),
        exe_path: task.exe_path.clone(),
        altstack: task.signals.altstack,
        clear_child_tid: if f & CLONE_CHILD_CLEARTID != 0 {
            a.child_tid
        } else {
            UserAddr(0)
        },
        set_child_tid: (f & CLONE_CHILD_SETTID != 0).then_some(a.child_tid),
    };
    let (tx, rx) = mpsc::channel::<Result<()>>();
    let reuse = kernel.platform.host_threads_reusable();
    let cpu = match &memory {
        ChildMemory::Forked(_, Some(t)) => kernel.platform.home_cpu(t),
        _ => None,
    };
    let spawned = run_on_host_thread(
        reuse,
        cpu,
        Box::new(move || {
            let started = start_child(seed_parts, memory, fp);
            match started {
                Ok(mut child) => {
                    let _ = tx.send(Ok(()));
                    child.run();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        }),
    );
    let outcome = match spawned {
        Ok(_) => rx.recv().unwrap_or(Err(errno!(EAGAIN))),
        Err(_) => Err(errno!(EAGAIN, "cannot start a host thread")),
    };
    if let Err(e) = outcome {
        forget_child(task, &parent_tg, &tg, &shared, f & CLONE_THREAD != 0);
        tracing::warn!("clone: child {tid} failed to start: {e}");
        return Err(errno!(EAGAIN));
    }

    if f & CLONE_VFORK != 0 {
        wait_vfork(task, &shared);
    }
    Ok(tid as u64)
}

type HostJob = Box<dyn FnOnce() + Send>;

/// Host threads whose task has ended, each waiting for another (a new host thread costs
/// ~30 µs here, a good part of a `fork`).
/// Each by its host thread id.
static IDLE_THREADS: Mutex<Vec<(i32, mpsc::Sender<HostJob>)>> = Mutex::new(Vec::new());
/// At most this many wait, each at most this long.
const IDLE_MAX: usize = 16;
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Run a task's life on a host thread of its own: an idle one if there is one, else a
/// new one. A task leaves nothing behind on its thread: its context (and the platform's
/// per-thread records of it) and the kernel's current-task slot are gone when it ends.
/// `reuse`: the platform allows it (ptrace does not: its tracer is the thread). `cpu`:
/// where the task will be placed; an idle thread is moved there while it still sleeps,
/// which costs far less than the thread moving itself once awake.
fn run_on_host_thread(reuse: bool, cpu: Option<usize>, job: HostJob) -> std::io::Result<()> {
    let mut job = job;
    loop {
        let taken = if reuse {
            lock(&IDLE_THREADS).pop()
        } else {
            None
        };
        let Some((tid, idle)) = taken else {
            break;
        };
        if let Some(cpu) = cpu {
            let mut set = nix::sched::CpuSet::new();
            if set.set(cpu).is_ok() {
                let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(tid), &set);
            }
        }
        // A thread that stopped waiting hands the job back.
        match idle.send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(j)) => job = j,
        }
    }
    std::thread::Builder::new()
        .name("task".into())
        .spawn(move || {
            let mut job = job;
            loop {
                job();
                if !reuse {
                    return;
                }
                let (tx, rx) = mpsc::channel();
                let me = nix::unistd::gettid().as_raw();
                {
                    let mut idle = lock(&IDLE_THREADS);
                    if idle.len() >= IDLE_MAX {
                        return;
                    }
                    idle.push((me, tx));
                }
                job = match rx.recv_timeout(IDLE_WAIT) {
                    Ok(next) => next,
                    Err(_) => {
                        // Still listed: nobody took this thread, it may go. Taken: a job
                        // is on its way (or its sender failed and took it back).
                        let mut idle = lock(&IDLE_THREADS);
                        let listed = idle.iter().position(|(id, _)| *id == me);
                        if let Some(i) = listed {
                            idle.swap_remove(i);
                            return;
                        }
                        drop(idle);
                        match rx.recv() {
                            Ok(next) => next,
                            Err(_) => return,
                        }
                    }
                };
            }
        })
        .map(|_| ())
}

/// What the child's host thread builds its task from.
struct SeedParts {
    kernel: Arc<super::Kernel>,
    shared: Arc<TaskShared>,
    regs: crate::platform::Regs,
    fs: Arc<Mutex<crate::vfs::FsContext>>,
    files: Arc<Mutex<crate::vfs::FdTable>>,
    creds: super::Credentials,
    rlimits: super::task::Rlimits,
    comm: Vec<u8>,
    exe_path: Vec<u8>,
    altstack: super::signal::AltStack,
    clear_child_tid: UserAddr,
    set_child_tid: Option<UserAddr>,
}

/// The memory a child starts with.
enum ChildMemory {
    /// The parent's address space, entered through a stub the parent prepared.
    Shared(Arc<Mutex<MemoryManager>>, crate::platform::ThreadToken),
    /// A copy (copy-on-write, or copied), in a host copy of the parent's stub if the
    /// platform made one, else in a fresh stub.
    Forked(crate::mm::ForkedMm, Option<crate::platform::ProcessToken>),
}

/// On the child's host thread: its own stub, its memory, the parent's FP state.
/// `fp`: the FP state to give the child (None: its host copy has it already).
fn start_child(
    p: SeedParts,
    memory: ChildMemory,
    fp: Option<crate::platform::FpState>,
) -> Result<Task> {
    let platform = &p.kernel.platform;
    let (mm, mut ctx) = match memory {
        ChildMemory::Shared(mm, token) => (mm, platform.adopt_thread(token)?),
        ChildMemory::Forked(forked, token) => {
            let adopted = token.and_then(|t| {
                platform
                    .adopt_process(t)
                    .map_err(|e| tracing::debug!("fork: the host copy failed ({e})"))
                    .ok()
            });
            let (aspace, ctx, inherited) = match adopted {
                Some((aspace, ctx)) => (aspace, ctx, true),
                // Without the parent's FP state a fresh stub cannot stand in.
                None if fp.is_none() => return Err(errno!(EAGAIN, "the host copy failed")),
                None => {
                    let (aspace, ctx) = platform.new_process(&p.kernel.memory_file)?;
                    (aspace, ctx, false)
                }
            };
            (
                Arc::new(Mutex::new(MemoryManager::from_fork(
                    forked, aspace, inherited,
                ))),
                ctx,
            )
        }
    };
    if let Some(fp) = &fp {
        ctx.set_fp_state(fp)?;
    }
    let task = Task::from_seed(TaskSeed {
        kernel: p.kernel,
        shared: p.shared,
        regs: p.regs,
        mm,
        ctx,
        fs: p.fs,
        files: p.files,
        creds: p.creds,
        rlimits: p.rlimits,
        comm: p.comm,
        exe_path: p.exe_path,
        altstack: p.altstack,
        clear_child_tid: p.clear_child_tid,
    });
    if let Some(addr) = p.set_child_tid {
        let _ = task.write_obj(addr, &task.tid);
    }
    Ok(task)
}

/// Undo the registration of a child that never ran.
fn forget_child(
    task: &Task,
    parent_tg: &Arc<ThreadGroup>,
    tg: &Arc<ThreadGroup>,
    shared: &Arc<TaskShared>,
    thread: bool,
) {
    let mut pids = task.kernel.pids();
    pids.tasks.remove(&shared.tid);
    if !thread {
        pids.groups.remove(&tg.tgid);
    }
    drop(pids);
    tg.state().threads.retain(|t| t.tid != shared.tid);
    if !thread {
        parent_tg.state().children.retain(|c| c.tgid != tg.tgid);
    }
}

/// `CLONE_VFORK`: the parent sleeps until the child execs or exits. Signals wait too,
/// as in Linux (the wait is killable only, and SIGKILL ends the sandbox's process anyway).
fn wait_vfork(task: &Task, child: &Arc<TaskShared>) {
    let _r = child.vfork_queue.register(&task.blocker, events::ALL);
    while !child.vfork_done.load(Ordering::Acquire) {
        if task.tg.state().group_exit.is_some() {
            return;
        }
        let _ = task.blocker.sleep(Some(
            std::time::Instant::now() + std::time::Duration::from_millis(50),
        ));
    }
}
