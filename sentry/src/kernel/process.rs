//! Processes as the rest of the sandbox sees them: thread groups (the pid `getpid`
//! returns), the shared face of each task, and the sandbox's pid table.
//!
//! A [`Task`](super::Task) is owned by its host thread; what other tasks may touch —
//! its pending signals, its blocker, how to interrupt it — lives in [`TaskShared`].
#![deny(unsafe_code)]

use super::signal::{SigAction, SigInfo, NSIG};
use super::task::ExitStatus;
use super::wait::{Blocker, WaitQueue};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Signal dispositions, shared by tasks created with `CLONE_SIGHAND`.
pub type SigHandlers = Arc<Mutex<[SigAction; NSIG]>>;

pub fn new_sighand() -> SigHandlers {
    Arc::new(Mutex::new([SigAction::default(); NSIG]))
}

/// Signals raised and not yet delivered, in the order they came.
#[derive(Default, Clone)]
pub struct PendingSignals {
    queue: Vec<SigInfo>,
}

impl PendingSignals {
    /// Standard signals coalesce: a second one while one is pending is dropped.
    /// Real-time signals (32 and up) queue.
    pub fn push(&mut self, info: SigInfo) {
        if info.signo < 32 && self.queue.iter().any(|i| i.signo == info.signo) {
            return;
        }
        self.queue.push(info);
    }

    pub fn mask(&self) -> u64 {
        self.queue
            .iter()
            .fold(0, |m, i| m | super::signal::sig_bit(i.signo as usize))
    }

    /// Take the lowest-numbered signal not in `blocked` (SIGKILL and SIGSTOP are never
    /// blocked).
    pub fn take(&mut self, blocked: u64) -> Option<SigInfo> {
        let deliverable = |i: &SigInfo| {
            super::signal::is_unblockable(i.signo as usize)
                || blocked & super::signal::sig_bit(i.signo as usize) == 0
        };
        let best = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, i)| deliverable(i))
            .min_by_key(|(_, i)| i.signo)
            .map(|(n, _)| n)?;
        Some(self.queue.remove(best))
    }

    /// Drop every pending instance of the signals in `set`.
    pub fn discard(&mut self, set: u64) {
        self.queue
            .retain(|i| set & super::signal::sig_bit(i.signo as usize) == 0);
    }

    pub fn take_signal(&mut self, signo: i32) -> Option<SigInfo> {
        let n = self.queue.iter().position(|i| i.signo == signo)?;
        Some(self.queue.remove(n))
    }
}

/// Per-thread signal state other tasks can see.
#[derive(Default)]
pub struct ThreadSignals {
    pub mask: u64,
    pub pending: PendingSignals,
}

/// The part of a task that other tasks may touch.
pub struct TaskShared {
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    pub blocker: Arc<Blocker>,
    pub signals: Mutex<ThreadSignals>,
    pub sighand: Mutex<SigHandlers>,
    /// Makes the task's platform context return to the sentry (set while it has one).
    pub interrupter: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// Set when a `vfork` child has exec'd or exited: its parent may go on.
    pub vfork_done: AtomicBool,
    pub vfork_queue: WaitQueue,
    pub exited: AtomicBool,
    /// This thread alone must exit (another thread is exec'ing).
    pub must_exit: AtomicBool,
    /// The signal this thread gets when its parent dies (`PR_SET_PDEATHSIG`).
    pub pdeath_signal: std::sync::atomic::AtomicI32,
    /// Reads the CPU time this thread has used (while it has a platform context).
    pub cpu_clock: Mutex<Option<super::timer::CpuClock>>,
    /// The CPUs `sched_setaffinity` allowed, one bit each (all bits: every CPU). Kept and
    /// reported; the host schedules the stubs as the platform sees fit.
    pub cpu_mask: std::sync::atomic::AtomicU64,
    /// The nice value (-20..=19) `getpriority`/`setpriority` keep per thread, as Linux
    /// does. Kept and reported; the host schedules the stubs.
    pub nice: std::sync::atomic::AtomicI32,
    /// `comm`: the name `PR_GET_NAME` and `/proc/PID/comm` show (at most 15 bytes).
    /// Here rather than in the task because other threads of the group may write it.
    pub comm: Mutex<Vec<u8>>,
    /// What `/proc` shows of the task's private state, published by its own thread.
    pub proc: Mutex<ProcView>,
    /// seccomp(2) mode and filters (here so that TSYNC and `/proc` reach them).
    pub seccomp: super::seccomp::TaskSeccomp,
    /// `PR_SET_NO_NEW_PRIVS` (here so that seccomp's TSYNC can set it on other threads).
    pub no_new_privs: AtomicBool,
}

/// The task-private state `/proc` shows to other tasks: a copy the task publishes when it
/// starts and after the syscalls that change it (credentials, limits, `execve`).
#[derive(Clone, Default)]
pub struct ProcView {
    pub mm: Option<Arc<Mutex<crate::mm::MemoryManager>>>,
    pub fs: Option<Arc<Mutex<crate::vfs::FsContext>>>,
    pub files: Option<Arc<Mutex<crate::vfs::FdTable>>>,
    pub creds: super::Credentials,
    pub rlimits: super::task::Rlimits,
    /// The sandbox path of the running executable (`/proc/PID/exe`).
    pub exe_path: Vec<u8>,
}

impl TaskShared {
    /// Make the task notice a signal: end any sleep and leave application code.
    pub fn interrupt(&self) {
        self.blocker.interrupt();
        if let Some(kick) = lock(&self.interrupter).clone() {
            kick();
        }
    }

    pub fn sighand(&self) -> SigHandlers {
        lock(&self.sighand).clone()
    }

    pub fn finish_vfork(&self) {
        if !self.vfork_done.swap(true, Ordering::AcqRel) {
            self.vfork_queue.notify(super::wait::events::ALL);
        }
    }
}

/// What a parent's `wait` may report about a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildEvent {
    Exited(ExitStatus),
    Stopped(i32),
    Continued,
}

pub struct TgState {
    /// `None` only for the sandbox's init.
    pub parent: Option<Arc<ThreadGroup>>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub threads: Vec<Arc<TaskShared>>,
    /// Set once the last thread is gone: the group is a zombie until reaped.
    pub exit_status: Option<ExitStatus>,
    /// `exit_group` or a fatal signal is taking every thread down with this status.
    pub group_exit: Option<ExitStatus>,
    /// The signal the parent receives when this process dies (`SIGCHLD` unless `clone`
    /// said otherwise).
    pub exit_signal: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Process-directed signals not yet taken by a thread.
    pub pending: PendingSignals,
    /// Stopped by a stop signal and not yet continued.
    pub stopped: bool,
    /// A stop or continue `wait` has not reported yet.
    pub unreported: Option<ChildEvent>,
    pub child_subreaper: bool,
    /// CPU time of this group's threads that have exited.
    pub cpu_exited: std::time::Duration,
    /// CPU time of reaped children (and what they had reaped), for `times`/`getrusage`.
    pub children_cpu: std::time::Duration,
    /// `setitimer` timers: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
    pub itimers: [Option<Arc<super::timer::Timer>>; 3],
    /// POSIX timers by id.
    pub posix_timers: HashMap<i32, Arc<super::timer::Timer>>,
    /// The process has called execve (its parent may no longer setpgid it).
    pub did_exec: bool,
    /// The last thread's `comm`, kept for `/proc` while the process is a zombie.
    pub zombie_comm: Vec<u8>,
    /// `/proc/PID/oom_score_adj` (kept, not acted on: the host's OOM killer decides).
    pub oom_score_adj: i32,
    /// The controlling terminal (inherited across fork, dropped by setsid).
    pub ctty: Option<Arc<dyn super::tty::Terminal>>,
}

pub struct ThreadGroup {
    pub tgid: i32,
    /// When the process was created (`/proc/PID/stat` field 22).
    pub started: std::time::Instant,
    pub state: Mutex<TgState>,
    /// Notified when a child exits, stops or continues: `wait` sleeps here.
    pub child_events: Arc<WaitQueue>,
    /// Notified when the group stops or continues: its stopped threads sleep here.
    pub stop_events: WaitQueue,
    /// Notified when a signal is queued for the group or one of its threads (signalfd).
    pub signal_events: Arc<WaitQueue>,
}

impl ThreadGroup {
    pub fn new(tgid: i32, parent: Option<Arc<ThreadGroup>>, pgid: i32, sid: i32) -> ThreadGroup {
        ThreadGroup {
            tgid,
            started: std::time::Instant::now(),
            state: Mutex::new(TgState {
                parent,
                children: Vec::new(),
                threads: Vec::new(),
                exit_status: None,
                group_exit: None,
                exit_signal: libc::SIGCHLD,
                pgid,
                sid,
                pending: PendingSignals::default(),
                stopped: false,
                unreported: None,
                child_subreaper: false,
                cpu_exited: std::time::Duration::ZERO,
                children_cpu: std::time::Duration::ZERO,
                itimers: [None, None, None],
                posix_timers: HashMap::new(),
                did_exec: false,
                zombie_comm: Vec::new(),
                oom_score_adj: 0,
                ctty: None,
            }),
            child_events: Arc::new(WaitQueue::new()),
            stop_events: WaitQueue::new(),
            signal_events: Arc::new(WaitQueue::new()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, TgState> {
        lock(&self.state)
    }

    pub fn parent(&self) -> Option<Arc<ThreadGroup>> {
        self.state().parent.clone()
    }

    pub fn pgid(&self) -> i32 {
        self.state().pgid
    }

    pub fn sid(&self) -> i32 {
        self.state().sid
    }

    /// CPU time the whole process has used: live threads plus exited ones.
    pub fn cpu_time(&self) -> std::time::Duration {
        let (threads, exited) = {
            let st = self.state();
            (st.threads.clone(), st.cpu_exited)
        };
        threads
            .iter()
            .filter_map(|t| lock(&t.cpu_clock).clone())
            .fold(exited, |acc, c| acc + c())
    }

    /// The live threads, for signalling.
    pub fn threads(&self) -> Vec<Arc<TaskShared>> {
        self.state().threads.clone()
    }
}

/// The sandbox's pid namespace: every live task and every thread group not yet reaped.
#[derive(Default)]
pub struct PidTable {
    pub tasks: HashMap<i32, Arc<TaskShared>>,
    pub groups: HashMap<i32, Arc<ThreadGroup>>,
}

impl PidTable {
    pub fn task(&self, tid: i32) -> Option<Arc<TaskShared>> {
        self.tasks.get(&tid).cloned()
    }

    pub fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.groups.get(&tgid).cloned()
    }

    /// Every thread group in process group `pgid`.
    pub fn process_group(&self, pgid: i32) -> Vec<Arc<ThreadGroup>> {
        self.groups
            .values()
            .filter(|g| g.pgid() == pgid)
            .cloned()
            .collect()
    }
}
