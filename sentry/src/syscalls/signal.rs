//! Signal bookkeeping syscalls: handlers, the blocked mask, the alternate stack.
//! Delivery comes with the processes-and-signals work.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::signal::{is_unblockable, sig_bit, SigAction, NSIG};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::return_errno;

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
