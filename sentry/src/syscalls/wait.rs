//! Creating and waiting for processes: `clone`, `fork`, `vfork`, `clone3`, `wait4`,
//! `waitid`, and process groups and sessions.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::clone::{do_clone, CloneArgs, CLONE_VFORK, CLONE_VM};
use crate::kernel::process::{ChildEvent, ThreadGroup};
use crate::kernel::wait::events;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};
use std::sync::Arc;

pub fn sys_fork(task: &mut Task) -> Result<u64> {
    do_clone(
        task,
        CloneArgs {
            exit_signal: libc::SIGCHLD,
            ..CloneArgs::default()
        },
    )
}

pub fn sys_vfork(task: &mut Task) -> Result<u64> {
    let flags = CLONE_VM | CLONE_VFORK;
    do_clone(
        task,
        CloneArgs {
            flags,
            exit_signal: libc::SIGCHLD,
            ..CloneArgs::default()
        },
    )
}

/// x86_64 `clone(flags, stack, parent_tid, child_tid, tls)`; the low byte of `flags` is
/// the exit signal.
pub fn sys_clone(
    task: &mut Task,
    flags: u64,
    stack: u64,
    parent_tid: UserAddr,
    child_tid: UserAddr,
    tls: u64,
) -> Result<u64> {
    let args = CloneArgs {
        flags: flags & !0xff,
        stack,
        parent_tid,
        child_tid,
        tls,
        exit_signal: (flags & 0xff) as i32,
    };
    do_clone(task, args)
}

/// `struct clone_args` (linux/sched.h), versions 0..=2.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct CloneArgsRaw {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_ARGS_SIZE_VER0: usize = 64;

pub fn sys_clone3(task: &mut Task, uargs: UserAddr, size: usize) -> Result<u64> {
    let full = std::mem::size_of::<CloneArgsRaw>();
    if size < CLONE_ARGS_SIZE_VER0 {
        return_errno!(EINVAL);
    }
    if size > 4096 {
        return_errno!(E2BIG);
    }
    let mut raw = CloneArgsRaw::default();
    let n = size.min(full);
    task.copy_in(
        uargs,
        bytemuck::bytes_of_mut(&mut raw)
            .get_mut(..n)
            .ok_or(errno!(EINVAL))?,
    )?;
    if size > full {
        // A newer struct: the fields we do not know must be zero.
        let mut rest = vec![0u8; size - full];
        task.copy_in(uargs.offset(full as u64)?, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return_errno!(E2BIG);
        }
    }
    // The exit signal has its own field; the low byte of flags must be clear.
    if raw.flags & 0xff != 0 || raw.exit_signal > 64 || raw.set_tid != 0 || raw.set_tid_size != 0 {
        return_errno!(EINVAL);
    }
    if (raw.stack == 0) != (raw.stack_size == 0) {
        return_errno!(EINVAL);
    }
    let args = CloneArgs {
        flags: raw.flags,
        // clone3 passes the lowest address and the size; the stack grows down from the top.
        stack: raw
            .stack
            .checked_add(raw.stack_size)
            .ok_or(errno!(EINVAL))?,
        parent_tid: UserAddr(raw.parent_tid),
        child_tid: UserAddr(raw.child_tid),
        tls: raw.tls,
        exit_signal: raw.exit_signal as i32,
    };
    do_clone(task, args)
}

/// Which children a wait call is about.
#[derive(Clone, Copy, Debug)]
enum Selector {
    Pid(i32),
    Pgid(i32),
    Any,
}

const WNOHANG: i32 = 1;
const WUNTRACED: i32 = 2;
const WEXITED: i32 = 4;
const WCONTINUED: i32 = 8;
const WNOWAIT: i32 = 0x0100_0000;
const WNOTHREAD: i32 = 0x2000_0000;
const WALL: i32 = 0x4000_0000;
const WCLONE: i32 = 0x8000_0000u32 as i32;

/// What a wait found.
struct Found {
    pid: i32,
    event: ChildEvent,
    /// CPU time of the child and what it reaped (for an exited child).
    cpu: std::time::Duration,
}

/// Look for a child matching `sel` with an event `options` asks for; consume it unless
/// WNOWAIT. `Ok(None)`: matching children exist but nothing to report yet.
fn find_child(task: &Task, sel: Selector, options: i32) -> Result<Option<Found>> {
    // No child is halfway through its exit (zombie set, SIGCHLD not yet queued) while we
    // look: see `Kernel::exit_notify`.
    let _exit = task
        .kernel
        .exit_notify
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let children: Vec<Arc<ThreadGroup>> = task.tg.state().children.clone();
    let mut any = false;
    for c in children {
        let matches = match sel {
            Selector::Pid(p) => c.tgid == p,
            Selector::Pgid(g) => c.pgid() == g,
            Selector::Any => true,
        };
        // __WCLONE selects children whose exit signal is not SIGCHLD; __WALL takes both.
        let exit_signal = c.state().exit_signal;
        let clone_child = exit_signal != libc::SIGCHLD;
        if !matches || (options & WALL == 0 && clone_child != (options & WCLONE != 0)) {
            continue;
        }
        any = true;
        let mut st = c.state();
        if let Some(status) = st.exit_status {
            if options & WEXITED != 0 {
                let cpu = st.cpu_exited + st.children_cpu;
                drop(st);
                if options & WNOWAIT == 0 {
                    task.kernel.reap(&task.tg, c.tgid);
                }
                return Ok(Some(Found {
                    pid: c.tgid,
                    event: ChildEvent::Exited(status),
                    cpu,
                }));
            }
            continue;
        }
        match st.unreported {
            Some(ChildEvent::Stopped(s)) if options & WUNTRACED != 0 => {
                if options & WNOWAIT == 0 {
                    st.unreported = None;
                }
                return Ok(Some(Found {
                    pid: c.tgid,
                    event: ChildEvent::Stopped(s),
                    cpu: std::time::Duration::ZERO,
                }));
            }
            Some(ChildEvent::Continued) if options & WCONTINUED != 0 => {
                if options & WNOWAIT == 0 {
                    st.unreported = None;
                }
                return Ok(Some(Found {
                    pid: c.tgid,
                    event: ChildEvent::Continued,
                    cpu: std::time::Duration::ZERO,
                }));
            }
            _ => {}
        }
    }
    if !any {
        return_errno!(ECHILD);
    }
    Ok(None)
}

fn wait_common(task: &Task, sel: Selector, options: i32) -> Result<Option<Found>> {
    if options & WNOHANG != 0 {
        return find_child(task, sel, options);
    }
    let queue = task.tg.child_events.clone();
    task.block_until(&[(&queue, events::ALL)], None, || {
        find_child(task, sel, options)
    })
    .map(Some)
}

fn wstatus(event: ChildEvent) -> i32 {
    match event {
        ChildEvent::Exited(s) => s.wait_status(),
        ChildEvent::Stopped(sig) => 0x7f | (sig << 8),
        ChildEvent::Continued => 0xffff,
    }
}

pub fn sys_wait4(
    task: &mut Task,
    pid: i32,
    status: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> Result<u64> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return_errno!(EINVAL);
    }
    let sel = match pid {
        -1 => Selector::Any,
        0 => Selector::Pgid(task.tg.pgid()),
        p if p > 0 => Selector::Pid(p),
        p => Selector::Pgid(p.checked_neg().ok_or(errno!(ESRCH))?),
    };
    let Some(found) = wait_common(task, sel, options | WEXITED)? else {
        return Ok(0);
    };
    if !status.is_null() {
        task.write_obj(status, &wstatus(found.event))?;
    }
    if !rusage.is_null() {
        task.write_obj(rusage, &super::timer::rusage(found.cpu, 0))?;
    }
    Ok(found.pid as u64)
}

const P_ALL: i32 = 0;
const P_PID: i32 = 1;
const P_PGID: i32 = 2;
const P_PIDFD: i32 = 3;

pub fn sys_waitid(
    task: &mut Task,
    idtype: i32,
    id: i32,
    infop: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> Result<u64> {
    let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return_errno!(EINVAL);
    }
    let sel = match idtype {
        P_ALL => Selector::Any,
        P_PID if id > 0 => Selector::Pid(id),
        P_PGID if id >= 0 => Selector::Pgid(if id == 0 { task.tg.pgid() } else { id }),
        P_PIDFD => return_errno!(EINVAL, "pidfds are not supported yet"),
        _ => return_errno!(EINVAL),
    };
    let found = wait_common(task, sel, options)?;
    if !infop.is_null() {
        let info = match &found {
            Some(f) => Task::child_event_signal(f.event, f.pid, 0).to_bytes(),
            // WNOHANG with nothing to report: si_pid is 0 (and the rest cleared).
            None => [0u8; 128],
        };
        task.copy_out(infop, &info)?;
    }
    if !rusage.is_null() {
        let cpu = found.as_ref().map(|f| f.cpu).unwrap_or_default();
        task.write_obj(rusage, &super::timer::rusage(cpu, 0))?;
    }
    Ok(0)
}

// ---- process groups and sessions ----

fn find_group(task: &Task, pid: i32) -> Result<Arc<ThreadGroup>> {
    if pid == 0 {
        return Ok(task.tg.clone());
    }
    if pid < 0 {
        return_errno!(ESRCH);
    }
    task.kernel.pids().group(pid).ok_or(errno!(ESRCH))
}

pub fn sys_getpgid(task: &mut Task, pid: i32) -> Result<u64> {
    Ok(find_group(task, pid)?.pgid() as u64)
}

pub fn sys_getpgrp(task: &mut Task) -> Result<u64> {
    Ok(task.tg.pgid() as u64)
}

pub fn sys_getsid(task: &mut Task, pid: i32) -> Result<u64> {
    Ok(find_group(task, pid)?.sid() as u64)
}

/// setpgid(2): move ourselves or a child (before it execs — not tracked yet) into a
/// process group of our session.
pub fn sys_setpgid(task: &mut Task, pid: i32, pgid: i32) -> Result<u64> {
    if pgid < 0 {
        return_errno!(EINVAL);
    }
    let target = find_group(task, pid)?;
    let is_child = task
        .tg
        .state()
        .children
        .iter()
        .any(|c| c.tgid == target.tgid);
    if target.tgid != task.tgid && !is_child {
        return_errno!(ESRCH);
    }
    let my_sid = task.tg.sid();
    let (t_sid, t_is_leader) = {
        let st = target.state();
        (st.sid, st.sid == target.tgid)
    };
    if target.tgid != task.tgid && target.state().did_exec {
        return_errno!(EACCES);
    }
    if t_sid != my_sid {
        return_errno!(EPERM);
    }
    if t_is_leader {
        return_errno!(EPERM);
    }
    let pgid = if pgid == 0 { target.tgid } else { pgid };
    if pgid != target.tgid {
        // Joining an existing group: it must exist in our session.
        let members = task.kernel.pids().process_group(pgid);
        if !members.iter().any(|m| m.sid() == my_sid) {
            return_errno!(EPERM);
        }
    }
    target.state().pgid = pgid;
    Ok(0)
}

pub fn sys_setsid(task: &mut Task) -> Result<u64> {
    let tgid = task.tgid;
    // A process-group leader cannot start a session (setsid(2)).
    if !task.kernel.pids().process_group(tgid).is_empty() {
        return_errno!(EPERM);
    }
    let mut st = task.tg.state();
    st.sid = tgid;
    st.pgid = tgid;
    st.ctty = None;
    Ok(tgid as u64)
}
