//! Signal syscalls: dispositions, masks, sending, waiting, the alternate stack and
//! `rt_sigreturn`.
#![deny(unsafe_code)]

use super::SyscallReturn;
use crate::error::Result;
use crate::kernel::process::lock;
use crate::kernel::signal::{
    code, is_unblockable, sig_bit, unblockable_mask, SigAction, SigInfo, NSIG, SS_DISABLE,
    SS_ONSTACK,
};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};

/// The kernel's `sigset_t` size for the rt_ calls.
const SIGSET_SIZE: usize = 8;
/// `SS_AUTODISARM` (linux/signal.h): clear the alternate stack on handler entry.
const SS_AUTODISARM: u64 = 1 << 31;

fn check_signo(signo: i32) -> Result<usize> {
    if signo < 1 || signo as usize > NSIG {
        return_errno!(EINVAL);
    }
    Ok(signo as usize)
}

pub fn sys_rt_sigaction(
    task: &mut Task,
    signo: i32,
    act: UserAddr,
    old: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    if sigsetsize != SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let signo = check_signo(signo)?;
    let new = if act.is_null() {
        None
    } else {
        Some(task.read_obj::<SigAction>(act)?)
    };
    if new.is_some() && is_unblockable(signo) {
        return_errno!(EINVAL);
    }
    let sighand = task.sighand();
    let cur = lock(&sighand)
        .get(signo - 1)
        .copied()
        .ok_or(errno!(EINVAL))?;
    if !old.is_null() {
        task.write_obj(old, &cur)?;
    }
    if let Some(mut n) = new {
        n.mask &= !unblockable_mask();
        if let Some(slot) = lock(&sighand).get_mut(signo - 1) {
            *slot = n;
        }
        // Setting SIG_IGN (or SIG_DFL for a default-ignored signal) drops what is pending.
        if crate::kernel::signal::is_ignored(&n, signo as i32) {
            lock(&task.shared.signals).pending.discard(sig_bit(signo));
            task.tg.state().pending.discard(sig_bit(signo));
        }
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
    let cur = task.sigmask();
    let new = if set.is_null() {
        None
    } else {
        Some(task.read_obj::<u64>(set)?)
    };
    let next = match (new, how) {
        (None, _) => None,
        (Some(n), libc::SIG_BLOCK) => Some(cur | n),
        (Some(n), libc::SIG_UNBLOCK) => Some(cur & !n),
        (Some(n), libc::SIG_SETMASK) => Some(n),
        _ => return_errno!(EINVAL),
    };
    if !old.is_null() {
        task.write_obj(old, &cur)?;
    }
    if let Some(m) = next {
        task.set_sigmask(m);
    }
    Ok(0)
}

/// `stack_t`: ss_sp, ss_flags (int, padded), ss_size.
pub fn sys_sigaltstack(task: &mut Task, ss: UserAddr, old: UserAddr) -> Result<u64> {
    let on = task.signals.on_altstack(task.regs.rsp);
    let cur = task.signals.altstack;
    if !ss.is_null() {
        let new: [u64; 3] = task.read_obj(ss)?;
        let flags = new[1] & 0xffff_ffff;
        if flags & !(SS_DISABLE | SS_AUTODISARM | SS_ONSTACK) != 0 {
            return_errno!(EINVAL);
        }
        if on {
            return_errno!(EPERM);
        }
        if flags & SS_DISABLE == 0 && (new[2] as usize) < libc::MINSIGSTKSZ {
            return_errno!(ENOMEM);
        }
        task.signals.altstack = if flags & SS_DISABLE != 0 {
            [0, SS_DISABLE, 0]
        } else {
            [new[0], flags & SS_AUTODISARM, new[2]]
        };
    }
    if !old.is_null() {
        let shown = [cur[0], if on { SS_ONSTACK } else { cur[1] }, cur[2]];
        task.write_obj(old, &shown)?;
    }
    Ok(0)
}

pub fn sys_rt_sigreturn(task: &mut Task) -> Result<SyscallReturn> {
    if task.sigreturn().is_err() {
        // A corrupt frame: Linux sends SIGSEGV.
        task.force_signal(SigInfo::kernel(libc::SIGSEGV));
    }
    Ok(SyscallReturn::KeepRegs)
}

/// Who may signal whom: root, or matching real/effective ids (kill(2)).
/// `kill_ok` (check_kill_permission): the sender's real or effective uid must be the
/// target's real or saved uid, unless it has `CAP_KILL`; `SIGCONT` may always go to a
/// process of the same session. A zombie has no threads left to ask and takes any
/// signal (to no effect).
fn may_signal(task: &Task, g: &crate::kernel::process::ThreadGroup, signo: i32) -> bool {
    use crate::kernel::creds::CAP_KILL;
    if g.tgid == task.tgid || task.creds.has_cap(CAP_KILL) {
        return true;
    }
    if signo == libc::SIGCONT && g.sid() == task.tg.sid() {
        return true;
    }
    let Some(t) = g.threads().first().cloned() else {
        return true;
    };
    let target = lock(&t.proc).creds.clone();
    let me = &task.creds;
    [me.euid, me.ruid]
        .iter()
        .any(|u| *u == target.ruid || *u == target.suid)
}

/// The targets `task` may signal; `EPERM` if there were some but none of them.
fn permitted_targets(
    task: &Task,
    targets: Vec<std::sync::Arc<crate::kernel::process::ThreadGroup>>,
    signo: i32,
) -> Result<Vec<std::sync::Arc<crate::kernel::process::ThreadGroup>>> {
    let ok: Vec<_> = targets
        .into_iter()
        .filter(|g| may_signal(task, g, signo))
        .collect();
    if ok.is_empty() {
        return_errno!(EPERM);
    }
    Ok(ok)
}

fn sender_info(task: &Task, signo: i32, code: i32) -> SigInfo {
    SigInfo {
        signo,
        code,
        pid: task.tgid,
        uid: task.creds.ruid,
        ..SigInfo::default()
    }
}

/// Send to every process `kill(pid)` names; `ESRCH` when none exists.
fn kill_targets(
    task: &Task,
    pid: i32,
) -> Result<Vec<std::sync::Arc<crate::kernel::process::ThreadGroup>>> {
    let pids = task.kernel.pids();
    let alive =
        |g: &std::sync::Arc<crate::kernel::process::ThreadGroup>| g.state().exit_status.is_none();
    let targets: Vec<_> = match pid {
        // A zombie can still be signalled (to no effect), as in Linux.
        p if p > 0 => pids.group(p).into_iter().collect(),
        0 => pids
            .process_group(task.tg.pgid())
            .into_iter()
            .filter(alive)
            .collect(),
        -1 => pids
            .groups
            .values()
            .filter(|g| g.tgid != 1 && g.tgid != task.tgid && alive(g))
            .cloned()
            .collect(),
        p => pids
            .process_group(p.checked_neg().ok_or(errno!(ESRCH))?)
            .into_iter()
            .filter(alive)
            .collect(),
    };
    if targets.is_empty() {
        return_errno!(ESRCH);
    }
    Ok(targets)
}

pub fn sys_kill(task: &mut Task, pid: i32, signo: i32) -> Result<u64> {
    if signo != 0 {
        check_signo(signo)?;
    }
    if pid == i32::MIN {
        return_errno!(ESRCH);
    }
    let targets = kill_targets(task, pid)?;
    let targets = if pid == -1 {
        // kill(-1) succeeds once there was anyone to try, permitted or not.
        targets
            .into_iter()
            .filter(|g| may_signal(task, g, signo))
            .collect()
    } else {
        permitted_targets(task, targets, signo)?
    };
    if signo != 0 {
        for g in targets {
            task.kernel
                .signal_group(&g, sender_info(task, signo, code::SI_USER));
        }
    }
    Ok(0)
}

fn signal_one_thread(task: &Task, tgid: Option<i32>, tid: i32, info: SigInfo) -> Result<u64> {
    if tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return_errno!(EINVAL);
    }
    if info.signo != 0 {
        check_signo(info.signo)?;
    }
    let t = task.kernel.pids().task(tid).ok_or(errno!(ESRCH))?;
    if tgid.is_some_and(|g| g != t.tg.tgid) {
        return_errno!(ESRCH);
    }
    if !may_signal(task, &t.tg, info.signo) {
        return_errno!(EPERM);
    }
    if info.signo != 0 {
        task.kernel.signal_thread(&t, info);
    }
    Ok(0)
}

pub fn sys_tkill(task: &mut Task, tid: i32, signo: i32) -> Result<u64> {
    signal_one_thread(task, None, tid, sender_info(task, signo, code::SI_TKILL))
}

pub fn sys_tgkill(task: &mut Task, tgid: i32, tid: i32, signo: i32) -> Result<u64> {
    signal_one_thread(
        task,
        Some(tgid),
        tid,
        sender_info(task, signo, code::SI_TKILL),
    )
}

/// `rt_sigqueueinfo`: a process may not forge kernel-sent codes for others (EPERM).
fn queued_info(task: &Task, signo: i32, uinfo: UserAddr, target: i32) -> Result<SigInfo> {
    let raw: [u8; 128] = task.read_obj(uinfo)?;
    let mut info = SigInfo::from_bytes(&raw);
    info.signo = signo;
    if (info.code >= 0 || info.code == code::SI_TKILL) && target != task.tgid {
        return_errno!(EPERM);
    }
    Ok(info)
}

pub fn sys_rt_sigqueueinfo(task: &mut Task, pid: i32, signo: i32, uinfo: UserAddr) -> Result<u64> {
    let info = queued_info(task, signo, uinfo, pid)?;
    if signo != 0 {
        check_signo(signo)?;
    }
    let g = task.kernel.pids().group(pid).ok_or(errno!(ESRCH))?;
    if !may_signal(task, &g, signo) {
        return_errno!(EPERM);
    }
    if signo != 0 {
        task.kernel.signal_group(&g, info);
    }
    Ok(0)
}

pub fn sys_rt_tgsigqueueinfo(
    task: &mut Task,
    tgid: i32,
    tid: i32,
    signo: i32,
    uinfo: UserAddr,
) -> Result<u64> {
    let info = queued_info(task, signo, uinfo, tgid)?;
    signal_one_thread(task, Some(tgid), tid, info)
}

pub fn sys_rt_sigpending(task: &mut Task, set: UserAddr, sigsetsize: usize) -> Result<u64> {
    if sigsetsize > SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let pending = lock(&task.shared.signals).pending.mask() | task.tg.state().pending.mask();
    task.write_obj(set, &(pending & task.sigmask()))?;
    Ok(0)
}

/// `rt_sigsuspend`: wait for a signal with a temporary mask; always "fails" with EINTR
/// once a handler has run, and the old mask comes back after it.
pub fn sys_rt_sigsuspend(task: &mut Task, set: UserAddr, sigsetsize: usize) -> Result<u64> {
    if sigsetsize != SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let mask: u64 = task.read_obj(set)?;
    task.signals.saved_mask = Some(task.sigmask());
    task.set_sigmask(mask);
    wait_for_signal(task)
}

pub fn sys_pause(task: &mut Task) -> Result<u64> {
    wait_for_signal(task)
}

/// Sleep until a signal is deliverable; EINTR (never restarted) afterwards.
fn wait_for_signal(task: &Task) -> Result<u64> {
    loop {
        match task.block_until::<()>(&[], None, || Ok(None)) {
            Err(e) if e.errno == crate::Errno::ERESTARTSYS => return_errno!(EINTR),
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    }
}

/// `rt_sigtimedwait`: take a pending signal from `set` without running its handler.
pub fn sys_rt_sigtimedwait(
    task: &mut Task,
    set: UserAddr,
    uinfo: UserAddr,
    timeout: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    if sigsetsize != SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let wanted: u64 = task.read_obj::<u64>(set)? & !unblockable_mask();
    let deadline = if timeout.is_null() {
        None
    } else {
        let ts: super::time::Timespec = task.read_obj(timeout)?;
        Some(std::time::Instant::now() + ts.to_duration()?)
    };
    let take = |t: &Task| -> Option<SigInfo> {
        for signo in 1..=NSIG {
            if wanted & sig_bit(signo) == 0 {
                continue;
            }
            if let Some(i) = lock(&t.shared.signals).pending.take_signal(signo as i32) {
                return Some(i);
            }
            if let Some(i) = t.tg.state().pending.take_signal(signo as i32) {
                return Some(i);
            }
        }
        None
    };
    // The waited-for signals are unblocked for the wait only in the sense that they wake
    // us; they are taken here, not delivered.
    let r = task.block_until(&[], deadline, || Ok(take(task)));
    let mut info = match r {
        Ok(i) => i,
        Err(e) if e.errno == crate::Errno::ETIMEDOUT => return_errno!(EAGAIN),
        Err(e) if e.errno == crate::Errno::ERESTARTSYS => match take(task) {
            Some(i) => i,
            None => return_errno!(EINTR),
        },
        Err(e) => return Err(e),
    };
    task.claim_timer_signal(&mut info);
    if !uinfo.is_null() {
        task.copy_out(uinfo, &info.to_bytes())?;
    }
    Ok(info.signo as u64)
}

const SFD_CLOEXEC: i32 = libc::O_CLOEXEC;
const SFD_NONBLOCK: i32 = libc::O_NONBLOCK;

pub fn sys_signalfd4(
    task: &mut Task,
    fd: i32,
    mask: UserAddr,
    size: usize,
    flags: i32,
) -> Result<u64> {
    if flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 || size != SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    let set: u64 = task.read_obj(mask)?;
    if fd != -1 {
        let file = super::file::get_file(task, fd)?;
        let sfd = file
            .as_any()
            .and_then(|a| a.downcast_ref::<crate::fs::signalfd::SignalFd>())
            .ok_or(errno!(EINVAL))?;
        sfd.set_mask(set);
        return Ok(fd as u64);
    }
    let status = libc::O_RDWR as u32 | (flags & SFD_NONBLOCK) as u32;
    let file = std::sync::Arc::new(crate::fs::signalfd::SignalFd::new(
        &task.shared,
        set,
        status,
    ));
    super::pipe::install(task, file, flags & SFD_CLOEXEC != 0)
}

pub fn sys_signalfd(task: &mut Task, fd: i32, mask: UserAddr, size: usize) -> Result<u64> {
    sys_signalfd4(task, fd, mask, size, 0)
}
