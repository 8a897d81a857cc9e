//! Terminals as the process model sees them: controlling terminals, foreground process
//! groups and the job-control rules of termios(3) and credentials(7), shared by every
//! terminal the sandbox has (the host console its stdio may be, and devpts
//! pseudo-terminals). A terminal driver implements [`Terminal`]; everything about sessions
//! lives here, once.
//!
//! As in Linux, each process (thread group) holds its controlling terminal (`TgState::ctty`,
//! inherited across fork, dropped by `setsid`), and each terminal records the session it
//! controls and its foreground process group ([`JobControl`]), in sandbox ids.
#![deny(unsafe_code)]

use super::process::ThreadGroup;
use super::signal::{sig_bit, SigInfo, SIG_IGN};
use super::{Kernel, Task};
use crate::error::Result;
use crate::mm::UserAddr;
use crate::vfs::FileDescription;
use crate::{errno, return_errno};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A terminal device, as job control needs it.
pub trait Terminal: Send + Sync {
    /// Its session and foreground process group.
    fn job(&self) -> &JobControl;

    /// Whether background writers are stopped (`TOSTOP` in `c_lflag`).
    fn tostop(&self) -> bool;

    /// A new open description of this terminal (`open("/dev/tty")`).
    fn reopen(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileDescription>>;

    /// Its device number (`/proc/PID/stat`'s tty_nr names the controlling terminal by it).
    fn device(&self) -> u64;
}

#[derive(Default)]
struct JobState {
    /// The session this terminal controls; 0 for none.
    sid: i32,
    /// The foreground process group; 0 for none.
    pgrp: i32,
    /// Where the processes are, to signal them from the driver (a ^C typed on a pty
    /// master has no task of the session at hand). Set when a session takes the terminal.
    kernel: Weak<Kernel>,
}

/// The session side of a terminal: which session it controls and which of its process
/// groups is in the foreground (Linux's `tty->ctrl`).
#[derive(Default)]
pub struct JobControl {
    state: Mutex<JobState>,
}

const CAP_SYS_ADMIN: u32 = 21;

impl JobControl {
    fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session it controls (0 for none).
    pub fn session(&self) -> i32 {
        self.lock().sid
    }

    /// The foreground process group (0 for none).
    pub fn foreground(&self) -> i32 {
        self.lock().pgrp
    }

    /// Send `signo` to every process of the foreground group (the line discipline's
    /// ISIG characters, SIGWINCH on a resize).
    pub fn signal_foreground(&self, signo: i32) {
        let (pgrp, kernel) = {
            let st = self.lock();
            (st.pgrp, st.kernel.upgrade())
        };
        if let (Some(k), true) = (kernel, pgrp > 0) {
            signal_pgrp(&k, pgrp, signo);
        }
    }

    /// The terminal hung up (a pty's master closed): every process of its session loses
    /// it as controlling terminal, and the session leader gets SIGHUP and SIGCONT, as
    /// Linux's `tty_signal_session_leader` does. The leader (a shell) passes the hang-up
    /// on to its jobs; when it exits, [`process_exited`] signals the foreground.
    pub fn hangup(&self) {
        let (sid, kernel) = {
            let mut st = self.lock();
            let out = (st.sid, st.kernel.upgrade());
            st.sid = 0;
            st.pgrp = 0;
            out
        };
        let Some(k) = kernel else { return };
        if sid <= 0 {
            return;
        }
        let leader = clear_session_ctty(&k, sid, self);
        if let Some(l) = leader {
            k.signal_group(&l, SigInfo::kernel(libc::SIGHUP));
            k.signal_group(&l, SigInfo::kernel(libc::SIGCONT));
        }
    }
}

fn signal_pgrp(kernel: &Kernel, pgrp: i32, signo: i32) {
    let members = kernel.pids().process_group(pgrp);
    for g in members {
        kernel.signal_group(&g, SigInfo::kernel(signo));
    }
}

fn same_terminal(a: &dyn Terminal, job: &JobControl) -> bool {
    std::ptr::eq(a.job(), job)
}

/// Every process of session `sid` whose controlling terminal is the one of `job` loses
/// it; returns the session leader if it is alive.
fn clear_session_ctty(kernel: &Kernel, sid: i32, job: &JobControl) -> Option<Arc<ThreadGroup>> {
    let groups: Vec<_> = kernel.pids().groups.values().cloned().collect();
    let mut leader = None;
    for g in groups {
        let mut st = g.state();
        if st.sid != sid {
            continue;
        }
        if st.ctty.as_deref().is_some_and(|t| same_terminal(t, job)) {
            st.ctty = None;
        }
        if g.tgid == sid && st.exit_status.is_none() {
            leader = Some(g.clone());
        }
    }
    leader
}

/// The caller's controlling terminal.
pub fn ctty(task: &Task) -> Option<Arc<dyn Terminal>> {
    task.tg.state().ctty.clone()
}

fn is_ctty(task: &Task, term: &dyn Terminal) -> bool {
    task.tg
        .state()
        .ctty
        .as_deref()
        .is_some_and(|t| same_terminal(t, term.job()))
}

/// Make `term` the controlling terminal of `tg`'s session (Linux's `__proc_set_tty`): the
/// terminal records the session and takes the caller's group as foreground.
pub fn set_ctty(kernel: &Arc<Kernel>, tg: &Arc<ThreadGroup>, term: Arc<dyn Terminal>) {
    let (sid, pgid) = {
        let st = tg.state();
        (st.sid, st.pgid)
    };
    {
        let mut j = term.job().lock();
        j.sid = sid;
        j.pgrp = pgid;
        j.kernel = Arc::downgrade(kernel);
    }
    tg.state().ctty = Some(term);
}

/// `/dev/tty`: a new description of the caller's controlling terminal, `ENXIO` without
/// one.
pub fn open_controlling(task: &Task, flags: u32) -> Result<Arc<dyn FileDescription>> {
    match ctty(task) {
        Some(t) => t.reopen(flags),
        None => Err(errno!(ENXIO)),
    }
}

/// After `open(2)` of a terminal without `O_NOCTTY`: a session leader without a
/// controlling terminal acquires it if no session has it and the open is for reading
/// (Linux's `tty_open_proc_set_tty`).
pub fn opened(task: &Task, file: &dyn FileDescription, flags: u32) {
    let Some(term) = file.tty() else { return };
    if flags & libc::O_NOCTTY as u32 != 0 || flags & libc::O_ACCMODE as u32 == libc::O_WRONLY as u32
    {
        return;
    }
    let leader = {
        let st = task.tg.state();
        st.sid == task.tg.tgid && st.ctty.is_none()
    };
    if leader && term.job().session() == 0 {
        set_ctty(&task.kernel, &task.tg, term);
    }
}

fn signal_ignored(task: &Task, signo: i32) -> bool {
    let idx = (signo as usize).saturating_sub(1);
    let handler = task
        .sighand()
        .lock()
        .map(|h| h.get(idx).map(|a| a.handler).unwrap_or_default())
        .unwrap_or_default();
    handler == SIG_IGN || task.sigmask() & sig_bit(signo as usize) != 0
}

/// A process of a background group uses its controlling terminal (Linux's
/// `__tty_check_change`): it gets `signo` (SIGTTIN for reads, SIGTTOU for writes under
/// TOSTOP and for changes to the terminal) with the whole group and the call restarts once
/// it is continued in the foreground. An ignored or blocked signal lets the call through,
/// except a read, which fails with `EIO`; so does any call from an orphaned group.
pub fn check_background(task: &Task, term: &dyn Terminal, signo: i32) -> Result<()> {
    if !is_ctty(task, term) {
        return Ok(());
    }
    let fg = term.job().foreground();
    let pgid = task.tg.pgid();
    if fg == 0 || fg == pgid {
        return Ok(());
    }
    if signal_ignored(task, signo) {
        return if signo == libc::SIGTTIN {
            Err(errno!(EIO))
        } else {
            Ok(())
        };
    }
    if task.kernel.pgrp_is_orphaned(pgid) {
        return_errno!(EIO);
    }
    signal_pgrp(&task.kernel, pgid, signo);
    Err(errno!(ERESTARTSYS))
}

/// Job control for `read(2)`/`write(2)` on `file`: nothing for files that are not
/// terminals.
pub fn check_io(task: &Task, file: &dyn FileDescription, write: bool) -> Result<()> {
    let Some(term) = file.tty() else {
        return Ok(());
    };
    if write {
        if !term.tostop() {
            return Ok(());
        }
        check_background(task, &*term, libc::SIGTTOU)
    } else {
        check_background(task, &*term, libc::SIGTTIN)
    }
}

/// A process exited: it lets go of its controlling terminal, and if it led its session
/// (Linux's `disassociate_ctty(1)`) the terminal's foreground group gets SIGHUP and the
/// whole session loses the terminal.
pub fn process_exited(kernel: &Kernel, tg: &Arc<ThreadGroup>) {
    let (term, leader) = {
        let mut st = tg.state();
        (st.ctty.take(), st.sid == tg.tgid)
    };
    let Some(term) = term else { return };
    if !leader || term.job().session() != tg.tgid {
        return;
    }
    let fg = term.job().foreground();
    if fg > 0 {
        signal_pgrp(kernel, fg, libc::SIGHUP);
    }
    clear_session_ctty(kernel, tg.tgid, term.job());
    let mut j = term.job().lock();
    j.sid = 0;
    j.pgrp = 0;
}

/// The job-control `ioctl`s every terminal shares: TIOCGPGRP, TIOCSPGRP, TIOCGSID,
/// TIOCSCTTY, TIOCNOTTY. `term` is the terminal the fd refers to (for a pty master, its
/// slave: `via_master`, which skips the "must be the caller's controlling terminal" rule
/// for the getters, as Linux does). `None` for other requests.
pub fn job_control_ioctl(
    task: &Task,
    term: &Arc<dyn Terminal>,
    via_master: bool,
    file_flags: u32,
    cmd: u32,
    arg: UserAddr,
) -> Option<Result<u64>> {
    let r = match u64::from(cmd) {
        libc::TIOCGPGRP => (|| {
            if !via_master && !is_ctty(task, &**term) {
                return_errno!(ENOTTY);
            }
            task.write_obj(arg, &term.job().foreground())?;
            Ok(0)
        })(),
        libc::TIOCGSID => (|| {
            if !via_master && !is_ctty(task, &**term) {
                return_errno!(ENOTTY);
            }
            let sid = term.job().session();
            if sid == 0 {
                return_errno!(ENOTTY);
            }
            task.write_obj(arg, &sid)?;
            Ok(0)
        })(),
        libc::TIOCSPGRP => set_foreground(task, term, arg),
        libc::TIOCSCTTY => set_controlling(task, term, file_flags, arg),
        libc::TIOCNOTTY => (|| {
            // A master is nobody's controlling terminal (its slave is).
            if via_master || !is_ctty(task, &**term) {
                return_errno!(ENOTTY);
            }
            give_up_ctty(task, term);
            Ok(0)
        })(),
        _ => return None,
    };
    Some(r)
}

/// TIOCSPGRP (`tcsetpgrp(3)`).
fn set_foreground(task: &Task, term: &Arc<dyn Terminal>, arg: UserAddr) -> Result<u64> {
    check_background(task, &**term, libc::SIGTTOU)?;
    let sid = task.tg.sid();
    if !is_ctty(task, &**term) || term.job().session() != sid {
        return_errno!(ENOTTY);
    }
    let pgid: i32 = task.read_obj(arg)?;
    if pgid < 0 {
        return_errno!(EINVAL);
    }
    let members = task.kernel.pids().process_group(pgid);
    if members.is_empty() {
        return_errno!(ESRCH);
    }
    if !members.iter().any(|g| g.sid() == sid) {
        return_errno!(EPERM);
    }
    term.job().lock().pgrp = pgid;
    Ok(0)
}

/// TIOCSCTTY: a session leader without a controlling terminal takes this one; one that
/// another session has can be stolen with `arg == 1` and CAP_SYS_ADMIN. Without read
/// access to the terminal CAP_SYS_ADMIN is needed too (Linux's `tiocsctty`).
fn set_controlling(
    task: &Task,
    term: &Arc<dyn Terminal>,
    file_flags: u32,
    arg: UserAddr,
) -> Result<u64> {
    let (sid, leader, has_ctty) = {
        let st = task.tg.state();
        (st.sid, st.sid == task.tg.tgid, st.ctty.is_some())
    };
    let owner = term.job().session();
    if leader && owner == sid {
        return Ok(0);
    }
    if !leader || has_ctty {
        return_errno!(EPERM);
    }
    let admin = task.creds.cap_effective & (1 << CAP_SYS_ADMIN) != 0;
    if owner != 0 {
        if arg.0 == 1 && admin {
            let kernel = term.job().lock().kernel.upgrade();
            if let Some(k) = kernel {
                clear_session_ctty(&k, owner, term.job());
            }
        } else {
            return_errno!(EPERM);
        }
    }
    if file_flags & libc::O_ACCMODE as u32 == libc::O_WRONLY as u32 && !admin {
        return_errno!(EPERM);
    }
    set_ctty(&task.kernel, &task.tg, term.clone());
    Ok(0)
}

/// TIOCNOTTY (Linux's `no_tty`): a session leader gives the terminal up for its whole
/// session, its foreground group getting SIGHUP and SIGCONT; any other process only for
/// itself.
fn give_up_ctty(task: &Task, term: &Arc<dyn Terminal>) {
    let (sid, leader) = {
        let st = task.tg.state();
        (st.sid, st.sid == task.tg.tgid)
    };
    if !leader {
        task.tg.state().ctty = None;
        return;
    }
    let fg = term.job().foreground();
    if fg > 0 {
        signal_pgrp(&task.kernel, fg, libc::SIGHUP);
        signal_pgrp(&task.kernel, fg, libc::SIGCONT);
    }
    clear_session_ctty(&task.kernel, sid, term.job());
    let mut j = term.job().lock();
    j.sid = 0;
    j.pgrp = 0;
}
