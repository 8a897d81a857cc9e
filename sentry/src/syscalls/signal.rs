//! Signal bookkeeping syscalls: handlers, the blocked mask, the alternate stack.
//! Delivery comes with the processes-and-signals work.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::signal::{is_unblockable, sig_bit, SigAction, NSIG, SIG_DFL, SIG_IGN};
use crate::kernel::task::ExitStatus;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};

/// The kernel's `sigset_t` size for the rt_ calls.
const SIGSET_SIZE: usize = 8;
/// `SS_AUTODISARM` (linux/signal.h): clear the alternate stack on handler entry.
const SS_AUTODISARM: i32 = 1 << 31;

pub fn sys_rt_sigaction(
    task: &mut Task,
    signo: i32,
    act: UserAddr,
    old: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    if sigsetsize != SIGSET_SIZE || signo < 1 || signo as usize > NSIG {
        return_errno!(EINVAL);
    }
    let idx = signo as usize - 1;
    let new = if act.is_null() {
        None
    } else {
        Some(task.read_obj::<SigAction>(act)?)
    };
    if new.is_some() && is_unblockable(signo as usize) {
        return_errno!(EINVAL);
    }
    let Some(slot) = task.signals.actions.get(idx).copied() else {
        return_errno!(EINVAL)
    };
    if !old.is_null() {
        task.write_obj(old, &slot)?;
    }
    if let (Some(mut n), Some(s)) = (new, task.signals.actions.get_mut(idx)) {
        n.mask &= !(sig_bit(libc::SIGKILL as usize) | sig_bit(libc::SIGSTOP as usize));
        *s = n;
    }
    Ok(0)
}

pub fn sys_rt_sigprocmask(
    task: &mut Task,
    how: i32,
    set: UserAddr,
    old: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    if sigsetsize != SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let cur = task.signals.mask;
    let new = if set.is_null() {
        None
    } else {
        Some(task.read_obj::<u64>(set)?)
    };
    if let Some(n) = new {
        let n = n & !(sig_bit(libc::SIGKILL as usize) | sig_bit(libc::SIGSTOP as usize));
        task.signals.mask = match how {
            libc::SIG_BLOCK => cur | n,
            libc::SIG_UNBLOCK => cur & !n,
            libc::SIG_SETMASK => n,
            _ => return_errno!(EINVAL),
        };
    }
    if !old.is_null() {
        task.write_obj(old, &cur)?;
    }
    Ok(0)
}

/// `stack_t`: ss_sp, ss_flags (int, padded), ss_size.
pub fn sys_sigaltstack(task: &mut Task, ss: UserAddr, old: UserAddr) -> Result<u64> {
    let cur = task.signals.altstack;
    if !ss.is_null() {
        let new: [u64; 3] = task.read_obj(ss)?;
        let flags = new[1] as i32;
        if flags & !(libc::SS_DISABLE | SS_AUTODISARM) != 0 {
            return_errno!(EINVAL);
        }
        if flags & libc::SS_DISABLE == 0 && (new[2] as usize) < libc::MINSIGSTKSZ {
            return_errno!(ENOMEM);
        }
        task.signals.altstack = new;
    }
    if !old.is_null() {
        task.write_obj(old, &cur)?;
    }
    Ok(0)
}

/// What a signal does when its disposition is `SIG_DFL` (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(signo: i32) -> DefaultAction {
    match signo {
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => DefaultAction::Ignore,
        libc::SIGCONT => DefaultAction::Continue,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => DefaultAction::Stop,
        libc::SIGQUIT
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGABRT
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGSEGV
        | libc::SIGXCPU
        | libc::SIGXFSZ
        | libc::SIGSYS => DefaultAction::CoreDump,
        _ => DefaultAction::Terminate,
    }
}

/// Send `signo` to the calling process itself — the only process there is until fork
/// lands. Default actions are carried out; signals with a handler, blocked ones and stops
/// are recorded as pending, for delivery once signal frames exist.
fn signal_self(task: &mut Task, signo: i32) -> Result<u64> {
    if signo == 0 {
        return Ok(0);
    }
    if signo < 0 || signo as usize > NSIG {
        return_errno!(EINVAL);
    }
    let idx = signo as usize - 1;
    let handler = task
        .signals
        .actions
        .get(idx)
        .map(|a| a.handler)
        .unwrap_or(SIG_DFL);
    let blocked =
        task.signals.mask & sig_bit(signo as usize) != 0 && !is_unblockable(signo as usize);
    if handler == SIG_IGN && !is_unblockable(signo as usize) {
        return Ok(0);
    }
    if blocked || handler != SIG_DFL {
        task.signals.pending |= sig_bit(signo as usize);
        return Ok(0);
    }
    match default_action(signo) {
        DefaultAction::Terminate => {
            task.exit_status = Some(ExitStatus::Signaled { signo, core: false })
        }
        DefaultAction::CoreDump => {
            task.exit_status = Some(ExitStatus::Signaled { signo, core: true })
        }
        DefaultAction::Ignore | DefaultAction::Continue | DefaultAction::Stop => {}
    }
    Ok(0)
}

pub fn sys_kill(task: &mut Task, pid: i32, signo: i32) -> Result<u64> {
    // 0 is our process group, -1 every process we may signal, -pgid a group: with one
    // process all of them mean us.
    if pid == task.tgid || pid == 0 || pid == -1 || pid == -task.tgid {
        signal_self(task, signo)
    } else {
        Err(errno!(ESRCH))
    }
}

pub fn sys_tkill(task: &mut Task, tid: i32, signo: i32) -> Result<u64> {
    if tid <= 0 {
        return_errno!(EINVAL);
    }
    if tid != task.tid {
        return_errno!(ESRCH);
    }
    signal_self(task, signo)
}

pub fn sys_tgkill(task: &mut Task, tgid: i32, tid: i32, signo: i32) -> Result<u64> {
    if tgid <= 0 || tid <= 0 {
        return_errno!(EINVAL);
    }
    if tgid != task.tgid || tid != task.tid {
        return_errno!(ESRCH);
    }
    signal_self(task, signo)
}

pub fn sys_rt_sigpending(task: &mut Task, set: UserAddr, sigsetsize: usize) -> Result<u64> {
    if sigsetsize > SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let pending = task.signals.pending & task.signals.mask;
    task.write_obj(set, &pending)?;
    Ok(0)
}
