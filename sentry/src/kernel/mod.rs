//! The kernel: the sandbox-wide [`Kernel`], tasks and thread groups, credentials,
//! signals, futexes, and the task loop that runs application code and serves its
//! syscalls.
#![deny(unsafe_code)]

pub mod clone;
pub mod container;
pub mod creds;
mod deliver;
pub mod futex;
pub mod locks;
pub mod process;
pub mod seccomp;
pub mod signal;
pub mod task;
pub mod timer;
pub mod tty;
pub mod wait;

pub use creds::Credentials;
pub use task::{ExitStatus, Task};

use crate::mm::MemoryFile;
use crate::platform::Platform;
use process::{lock, ChildEvent, PidTable, SigHandlers, TaskShared, ThreadGroup};
use signal::{is_ignored, sig_bit, SigInfo, SA_NOCLDSTOP, SA_NOCLDWAIT, SIG_IGN};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wait::{events, Blocker, WaitQueue};

/// The kernel release `uname` reports: fixed, so programs see the same kernel everywhere.
pub const KERNEL_RELEASE: &str = "4.4.0-carapace";
/// The kernel version string `uname` reports.
pub const KERNEL_VERSION: &str = "#1 SMP Carapace";

/// Sandbox-wide state shared by every task.
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub memory_file: Arc<MemoryFile>,
    pub hostname: Mutex<Vec<u8>>,
    pub domainname: Mutex<Vec<u8>>,
    /// Print every syscall (`--strace`).
    pub strace: bool,
    pub boot_time: Instant,
    pub futexes: futex::FutexTable,
    pub pi_futexes: futex::PiTable,
    pub locks: locks::LockTable,
    pub timers: timer::TimerService,
    pub pids: Mutex<PidTable>,
    /// Makes a process's exit one step for `wait`: its zombie state and the SIGCHLD to
    /// its parent appear together (Linux does both under tasklist_lock), so a parent
    /// never reaps a child whose SIGCHLD is still to come.
    pub exit_notify: Mutex<()>,
    /// Set when init has exited: every other task is being killed.
    pub shutting_down: AtomicBool,
    next_pid: AtomicI32,
    enosys_logged: Mutex<HashSet<u64>>,
}

impl Kernel {
    pub fn new(platform: Box<dyn Platform>, memory_file: Arc<MemoryFile>, strace: bool) -> Kernel {
        Kernel {
            platform,
            memory_file,
            hostname: Mutex::new(b"carapace".to_vec()),
            domainname: Mutex::new(b"(none)".to_vec()),
            strace,
            boot_time: Instant::now(),
            futexes: futex::FutexTable::default(),
            pi_futexes: futex::PiTable::default(),
            locks: locks::LockTable::default(),
            timers: timer::TimerService::default(),
            pids: Mutex::new(PidTable::default()),
            shutting_down: AtomicBool::new(false),
            exit_notify: Mutex::new(()),
            next_pid: AtomicI32::new(1),
            enosys_logged: Mutex::new(HashSet::new()),
        }
    }

    /// The next pid of the sandbox's pid namespace (the first task is 1).
    pub fn alloc_pid(&self) -> i32 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    /// Log an unimplemented syscall by name, once per sandbox.
    pub fn log_unimplemented(&self, nr: u64) {
        let first = self
            .enosys_logged
            .lock()
            .map(|mut s| s.insert(nr))
            .unwrap_or(false);
        if first {
            let name = syscall_tables::lookup(syscall_tables::Arch::X86_64, nr)
                .map(|s| s.name)
                .unwrap_or("unknown");
            tracing::info!("unimplemented syscall {name} ({nr}): returning ENOSYS");
        }
    }

    pub fn pids(&self) -> std::sync::MutexGuard<'_, PidTable> {
        lock(&self.pids)
    }

    /// Enter a new task into the pid table and its thread group.
    pub fn register_task(
        &self,
        tg: &Arc<ThreadGroup>,
        tid: i32,
        sighand: SigHandlers,
    ) -> Arc<TaskShared> {
        let shared = Arc::new(TaskShared {
            tid,
            tg: tg.clone(),
            blocker: Blocker::new(),
            signals: Mutex::new(Default::default()),
            sighand: Mutex::new(sighand),
            interrupter: Mutex::new(None),
            vfork_done: AtomicBool::new(false),
            vfork_queue: WaitQueue::new(),
            exited: AtomicBool::new(false),
            must_exit: AtomicBool::new(false),
            cpu_clock: Mutex::new(None),
            pdeath_signal: AtomicI32::new(0),
            cpu_mask: std::sync::atomic::AtomicU64::new(u64::MAX),
            nice: AtomicI32::new(0),
            comm: Mutex::new(Vec::new()),
            proc: Mutex::new(Default::default()),
            seccomp: Default::default(),
            no_new_privs: AtomicBool::new(false),
        });
        tg.state().threads.push(shared.clone());
        let mut pids = self.pids();
        pids.tasks.insert(tid, shared.clone());
        pids.groups.insert(tg.tgid, tg.clone());
        shared
    }

    /// Take the whole thread group down with `status` (`exit_group`, a fatal signal):
    /// every thread notices on its way back to application code.
    pub fn group_exit(&self, tg: &Arc<ThreadGroup>, status: ExitStatus) {
        self.group_exit_from(tg, status, None);
    }

    /// [`Kernel::group_exit`] made by thread `caller` of the group (`exit_group`, a fatal
    /// signal it took), which is in the sentry already: it is not kicked out of
    /// application code it is not in (a signal to its stub, for nothing).
    pub fn group_exit_from(&self, tg: &Arc<ThreadGroup>, status: ExitStatus, caller: Option<i32>) {
        let threads = {
            let mut st = tg.state();
            if st.group_exit.is_none() {
                st.group_exit = Some(status);
            }
            st.stopped = false;
            st.threads.clone()
        };
        tg.stop_events.notify(events::ALL);
        for t in threads {
            if Some(t.tid) != caller {
                t.interrupt();
            }
        }
    }

    /// Stop every thread of the group (SIGSTOP, SIGTSTP…) and tell the parent.
    pub fn stop_group(&self, tg: &Arc<ThreadGroup>, signo: i32) {
        let parent = {
            let mut st = tg.state();
            if st.stopped || st.group_exit.is_some() {
                return;
            }
            st.stopped = true;
            st.unreported = Some(ChildEvent::Stopped(signo));
            st.parent.clone()
        };
        for t in tg.threads() {
            t.interrupt();
        }
        if let Some(p) = parent {
            self.notify_parent(&p, tg.tgid, ChildEvent::Stopped(signo));
        }
    }

    /// Resume a stopped group (SIGCONT, whatever its disposition).
    fn continue_group(&self, tg: &Arc<ThreadGroup>) {
        let parent = {
            let mut st = tg.state();
            st.pending.discard(stop_signals());
            if !st.stopped {
                return;
            }
            st.stopped = false;
            st.unreported = Some(ChildEvent::Continued);
            st.parent.clone()
        };
        for t in tg.threads() {
            lock(&t.signals).pending.discard(stop_signals());
        }
        tg.stop_events.notify(events::ALL);
        if let Some(p) = parent {
            self.notify_parent(&p, tg.tgid, ChildEvent::Continued);
        }
    }

    /// A child changed state: wake the parent's waiters and send it SIGCHLD unless it
    /// does not want one (SA_NOCLDSTOP for stops and continues).
    fn notify_parent(&self, parent: &Arc<ThreadGroup>, child: i32, event: ChildEvent) {
        parent.child_events.notify(events::ALL);
        let Some(any) = parent.threads().first().cloned() else {
            return;
        };
        let act = lock(&any.sighand())
            .get(libc::SIGCHLD as usize - 1)
            .copied();
        let nocldstop = act.is_some_and(|a| a.flags & SA_NOCLDSTOP != 0);
        if matches!(event, ChildEvent::Exited(_)) || !nocldstop {
            let info = Task::child_event_signal(event, child, 0);
            self.signal_group(parent, info);
        }
    }

    /// Send a process-directed signal: queued on the group and taken by any thread that
    /// does not block it.
    pub fn signal_group(&self, tg: &Arc<ThreadGroup>, info: SigInfo) {
        self.queue_group_signal(tg, info).wake();
    }

    /// [`Kernel::signal_group`] without the wake-ups, which the caller makes once it has
    /// let go of its locks: a woken parent would otherwise find `exit_notify` held and go
    /// back to sleep (two switches more a `wait`).
    fn queue_group_signal(&self, tg: &Arc<ThreadGroup>, info: SigInfo) -> SignalWake {
        let signo = info.signo;
        if signo == libc::SIGKILL {
            self.group_exit(tg, ExitStatus::Signaled { signo, core: false });
            return SignalWake::None;
        }
        if signo == libc::SIGCONT {
            self.continue_group(tg);
        }
        let threads = tg.threads();
        let Some(first) = threads.first() else {
            return SignalWake::None;
        };
        let act = lock(&first.sighand())
            .get((signo as usize).saturating_sub(1))
            .copied();
        let bit = sig_bit(signo as usize);
        let all_block = threads.iter().all(|t| lock(&t.signals).mask & bit != 0);
        // An ignored signal is dropped at once unless blocked (signal(7)).
        if act.is_some_and(|a| is_ignored(&a, signo)) && !all_block && signo != libc::SIGSTOP {
            return SignalWake::None;
        }
        if is_stop_signal(signo) {
            tg.state().pending.discard(sig_bit(libc::SIGCONT as usize));
        }
        tg.state().pending.push(info);
        let taker = threads
            .iter()
            .find(|t| lock(&t.signals).mask & bit == 0)
            .cloned();
        match taker {
            Some(t) => SignalWake::Interrupt(tg.clone(), t),
            // Everyone blocks it: only a sigtimedwait-style waiter may take it now.
            None => SignalWake::Notify(tg.clone(), threads),
        }
    }

    /// Send a thread-directed signal (`tgkill`, faults).
    pub fn signal_thread(&self, t: &Arc<TaskShared>, info: SigInfo) {
        let signo = info.signo;
        if signo == libc::SIGKILL {
            self.group_exit(&t.tg, ExitStatus::Signaled { signo, core: false });
            return;
        }
        if signo == libc::SIGCONT {
            self.continue_group(&t.tg);
        }
        let act = lock(&t.sighand())
            .get((signo as usize).saturating_sub(1))
            .copied();
        let bit = sig_bit(signo as usize);
        let blocked = lock(&t.signals).mask & bit != 0;
        if act.is_some_and(|a| is_ignored(&a, signo)) && !blocked && signo != libc::SIGSTOP {
            return;
        }
        lock(&t.signals).pending.push(info);
        t.tg.signal_events.notify(events::IN);
        if blocked {
            t.blocker.notify();
        } else {
            t.interrupt();
        }
    }

    /// A task's loop ended: take it out of its thread group; the last one out makes the
    /// group a zombie, hands its children to a reaper, and tells its parent.
    fn task_exited(&self, task: &Task, status: ExitStatus) {
        let exit = lock(&self.exit_notify);
        let tg = &task.tg;
        task.shared.exited.store(true, Ordering::Release);
        self.pids().tasks.remove(&task.tid);
        let spent = task.ctx.cpu_time();
        let (last, final_status, parent, children, exit_signal) = {
            let mut st = tg.state();
            st.cpu_exited += spent;
            st.threads.retain(|t| t.tid != task.tid);
            let last = st.threads.is_empty();
            let final_status = st.group_exit.unwrap_or(status);
            if last {
                st.exit_status = Some(final_status);
                st.zombie_comm = lock(&task.shared.comm).clone();
            }
            // Children belong to the group: only its last thread hands them on.
            let children = if last {
                std::mem::take(&mut st.children)
            } else {
                Vec::new()
            };
            (
                last,
                final_status,
                st.parent.clone(),
                children,
                st.exit_signal,
            )
        };
        if !last {
            return;
        }
        self.locks.release_process(None, tg.tgid);
        tty::process_exited(self, tg);
        if tg.tgid == 1 {
            self.shutting_down.store(true, Ordering::Release);
            self.kill_all();
        }
        self.hang_up_orphaned(tg, parent.as_ref(), &children);
        // Children that asked for a signal when their parent dies get it now.
        for c in &children {
            for t in c.threads() {
                let signo = t.pdeath_signal.load(Ordering::Acquire);
                if signo > 0 {
                    self.signal_thread(&t, SigInfo::kernel(signo));
                }
            }
        }
        self.reparent(tg, children);
        let Some(parent) = parent else { return };
        // A parent that ignores SIGCHLD, or set SA_NOCLDWAIT, never sees zombies.
        let autoreap = parent.threads().first().is_some_and(|t| {
            let act = lock(&t.sighand()).get(libc::SIGCHLD as usize - 1).copied();
            act.is_some_and(|a| a.handler == SIG_IGN || a.flags & SA_NOCLDWAIT != 0)
        });
        if autoreap {
            self.reap(&parent, tg.tgid);
        }
        // The signal is queued before waiters wake, so a wait that returns the child
        // returns with its SIGCHLD already pending (delivered on the way out), as in Linux.
        let wake = if exit_signal > 0 {
            let mut info = Task::child_event_signal(ChildEvent::Exited(final_status), tg.tgid, 0);
            info.signo = exit_signal;
            self.queue_group_signal(&parent, info)
        } else {
            SignalWake::None
        };
        drop(exit);
        wake.wake();
        parent.child_events.notify(events::ALL);
    }

    /// Is process group `pgid` orphaned: does no live member have a parent in another
    /// group of the same session? (POSIX; Linux's is_orphaned_pgrp. Linux exempts only
    /// the global init as a parent, which the sandbox's init is not.)
    pub fn pgrp_is_orphaned(&self, pgid: i32) -> bool {
        let members = self.pids().process_group(pgid);
        !members.iter().any(|g| {
            let st = g.state();
            if st.exit_status.is_some() {
                return false;
            }
            st.parent.as_ref().is_some_and(|p| {
                let ps = p.state();
                ps.exit_status.is_none() && ps.pgid != pgid && ps.sid == st.sid
            })
        })
    }

    /// A process died: process groups it leaves orphaned that have a stopped member get
    /// SIGHUP then SIGCONT, so they do not stay stopped with no one to continue them.
    fn hang_up_orphaned(
        &self,
        dying: &Arc<ThreadGroup>,
        parent: Option<&Arc<ThreadGroup>>,
        children: &[Arc<ThreadGroup>],
    ) {
        let (pgid, sid) = {
            let st = dying.state();
            (st.pgid, st.sid)
        };
        let mut candidates = Vec::new();
        if let Some(p) = parent {
            let ps = p.state();
            if ps.pgid != pgid && ps.sid == sid {
                candidates.push(pgid);
            }
        }
        for c in children {
            let cs = c.state();
            if cs.pgid != pgid && cs.sid == sid && !candidates.contains(&cs.pgid) {
                candidates.push(cs.pgid);
            }
        }
        for g in candidates {
            if !self.pgrp_is_orphaned(g) {
                continue;
            }
            let members = self.pids().process_group(g);
            if !members.iter().any(|m| m.state().stopped) {
                continue;
            }
            for m in &members {
                self.signal_group(m, SigInfo::kernel(libc::SIGHUP));
                self.signal_group(m, SigInfo::kernel(libc::SIGCONT));
            }
        }
    }

    /// Give `children` of a dying group to the nearest subreaper above it, or init.
    fn reparent(&self, dying: &Arc<ThreadGroup>, children: Vec<Arc<ThreadGroup>>) {
        if children.is_empty() {
            return;
        }
        let mut reaper = dying.parent();
        while let Some(r) = reaper.clone() {
            let st = r.state();
            if st.child_subreaper && st.exit_status.is_none() {
                break;
            }
            let up = st.parent.clone();
            drop(st);
            if up.is_none() {
                break;
            }
            reaper = up;
        }
        let reaper = reaper.or_else(|| self.pids().group(1));
        let Some(reaper) = reaper.filter(|r| r.tgid != dying.tgid) else {
            return;
        };
        let mut zombies = false;
        for c in &children {
            let mut st = c.state();
            st.parent = Some(reaper.clone());
            zombies |= st.exit_status.is_some();
        }
        reaper.state().children.extend(children);
        if zombies {
            reaper.child_events.notify(events::ALL);
        }
    }

    /// Forget a dead child: it leaves its parent's list and the pid table.
    pub fn reap(&self, parent: &Arc<ThreadGroup>, child: i32) {
        let spent = self.pids().group(child).map(|c| {
            let st = c.state();
            st.cpu_exited + st.children_cpu
        });
        let mut st = parent.state();
        st.children.retain(|c| c.tgid != child);
        st.children_cpu += spent.unwrap_or_default();
        drop(st);
        self.pids().groups.remove(&child);
    }

    /// `execve` in a multi-threaded process: every other thread goes, and the exec'ing one
    /// waits until they have (Linux's de_thread).
    pub fn kill_other_threads(&self, task: &Task) {
        loop {
            let others: Vec<_> = task
                .tg
                .threads()
                .into_iter()
                .filter(|t| t.tid != task.tid)
                .collect();
            if others.is_empty() || task.tg.state().group_exit.is_some() {
                return;
            }
            for t in &others {
                t.must_exit.store(true, Ordering::Release);
                t.interrupt();
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Init is gone: SIGKILL every other process, as Linux does when a pid namespace's
    /// init dies.
    pub fn kill_all(&self) {
        let groups: Vec<_> = self.pids().groups.values().cloned().collect();
        for g in groups {
            if g.tgid != 1 {
                self.group_exit(
                    &g,
                    ExitStatus::Signaled {
                        signo: libc::SIGKILL,
                        core: false,
                    },
                );
            }
        }
    }
}

fn is_stop_signal(signo: i32) -> bool {
    matches!(
        signo,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

fn stop_signals() -> u64 {
    [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU]
        .iter()
        .fold(0, |m, s| m | sig_bit(*s as usize))
}

/// Who a queued signal wakes (see [`Kernel::queue_group_signal`]).
#[must_use]
enum SignalWake {
    None,
    /// The group's signal waiters, and the thread that will take the signal.
    Interrupt(Arc<ThreadGroup>, Arc<TaskShared>),
    /// The group's signal waiters, and every thread (all block the signal).
    Notify(Arc<ThreadGroup>, Vec<Arc<TaskShared>>),
}

impl SignalWake {
    fn wake(self) {
        match self {
            SignalWake::None => {}
            SignalWake::Interrupt(tg, t) => {
                tg.signal_events.notify(events::IN);
                t.interrupt();
            }
            SignalWake::Notify(tg, threads) => {
                tg.signal_events.notify(events::IN);
                threads.iter().for_each(|t| t.blocker.notify());
            }
        }
    }
}
