//! futex(2): wait, wake, bitsets and requeue. The PI operations and `FUTEX_WAKE_OP`
//! arrive with multi-threaded processes.
#![deny(unsafe_code)]

use super::time::{Timespec, BOOT_OFFSET};
use crate::error::Result;
use crate::kernel::futex::{FutexKey, WaitResult};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};
use std::sync::Arc;
use std::time::Instant;

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

fn key(task: &Task, uaddr: UserAddr, private: bool) -> Result<FutexKey> {
    if !uaddr.0.is_multiple_of(4) {
        return_errno!(EINVAL);
    }
    let private_key = FutexKey::Private {
        mm: Arc::as_ptr(&task.mm) as usize,
        addr: uaddr.0,
    };
    if private {
        Ok(private_key)
    } else {
        Ok(match task.mm().futex_frame(uaddr.0)? {
            Some(frame_offset) => FutexKey::Shared { frame_offset },
            None => private_key,
        })
    }
}

/// The wake count argument: Linux reads it as an int; negative means none.
fn count(v: u32) -> usize {
    usize::try_from(v as i32).unwrap_or(0)
}

/// An absolute deadline on the futex's clock, as a host instant.
fn absolute_deadline(task: &Task, ts: Timespec, realtime: bool) -> Result<Instant> {
    let target = ts.to_duration()?;
    if realtime {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Instant::now() + target.saturating_sub(now))
    } else {
        Ok(task.kernel.boot_time + target.saturating_sub(BOOT_OFFSET))
    }
}

#[allow(clippy::too_many_arguments)]
pub fn sys_futex(
    task: &mut Task,
    uaddr: UserAddr,
    op: i32,
    val: u32,
    timeout: UserAddr,
    uaddr2: UserAddr,
    val3: u32,
) -> Result<u64> {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET && cmd != FUTEX_LOCK_PI2 {
        return_errno!(ENOSYS);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return_errno!(EINVAL);
            }
            let deadline = if timeout.is_null() {
                None
            } else {
                let ts: Timespec = task.read_obj(timeout)?;
                Some(if cmd == FUTEX_WAIT && !realtime {
                    Instant::now() + ts.to_duration()?
                } else {
                    absolute_deadline(task, ts, realtime)?
                })
            };
            let k = key(task, uaddr, private)?;
            // Fault now so the check under the lock cannot.
            let _: u32 = task.read_obj(uaddr)?;
            let t: &Task = task;
            let r = t.kernel.futexes.wait(k, bitset, deadline, &t.blocker, || {
                t.read_obj::<u32>(uaddr).map(|v| v == val).unwrap_or(false)
            });
            match r {
                WaitResult::Woken => Ok(0),
                WaitResult::ValueChanged => Err(errno!(EAGAIN)),
                WaitResult::TimedOut => Err(errno!(ETIMEDOUT)),
                WaitResult::Interrupted => Err(errno!(ERESTARTSYS)),
            }
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return_errno!(EINVAL);
            }
            let k = key(task, uaddr, private)?;
            Ok(task.kernel.futexes.wake(k, count(val), bitset) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let from = key(task, uaddr, private)?;
            let to = key(task, uaddr2, private)?;
            // For requeue the "timeout" argument carries the requeue count.
            let n_requeue = count(timeout.0 as u32);
            if cmd == FUTEX_CMP_REQUEUE {
                let cur: u32 = task.read_obj(uaddr)?;
                if cur != val3 {
                    return_errno!(EAGAIN);
                }
            }
            Ok(task.kernel.futexes.requeue(from, to, count(val), n_requeue) as u64)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let deadline = if timeout.is_null() || cmd == FUTEX_TRYLOCK_PI {
                None
            } else {
                let ts: Timespec = task.read_obj(timeout)?;
                // LOCK_PI's timeout is on CLOCK_REALTIME; LOCK_PI2's on the clock asked for.
                Some(absolute_deadline(
                    task,
                    ts,
                    cmd == FUTEX_LOCK_PI || realtime,
                )?)
            };
            lock_pi(task, uaddr, private, deadline, cmd == FUTEX_TRYLOCK_PI)
        }
        FUTEX_UNLOCK_PI => unlock_pi(task, uaddr, private),
        FUTEX_WAKE_OP => {
            let k1 = key(task, uaddr, private)?;
            let k2 = key(task, uaddr2, private)?;
            let (op, cmp, oparg, cmparg) = decode_wake_op(val3);
            let old = task
                .mm()
                .atomic_update_u32(uaddr2.0, |v| apply_op(op, v, oparg))?;
            let mut woken = task
                .kernel
                .futexes
                .wake(k1, count(val), FUTEX_BITSET_MATCH_ANY);
            if compare(cmp, old, cmparg)? {
                let n2 = count(timeout.0 as u32);
                woken += task.kernel.futexes.wake(k2, n2, FUTEX_BITSET_MATCH_ANY);
            }
            Ok(woken as u64)
        }
        _ => {
            tracing::debug!("futex op {cmd} not supported yet");
            Err(errno!(ENOSYS))
        }
    }
}

/// Wake up to `n` waiters on `addr`, private and shared alike (`CLONE_CHILD_CLEARTID`
/// and robust lists do not say which kind the waiter used).
pub fn wake_address(task: &Task, addr: UserAddr, n: usize) -> Result<usize> {
    let mut woken = 0;
    if let Ok(k) = key(task, addr, true) {
        woken += task.kernel.futexes.wake(k, n, FUTEX_BITSET_MATCH_ANY);
    }
    if let Ok(k) = key(task, addr, false) {
        woken += task
            .kernel
            .futexes
            .wake(k, n.saturating_sub(woken), FUTEX_BITSET_MATCH_ANY);
    }
    Ok(woken)
}

/// The fields of a `FUTEX_WAKE_OP` operation word (futex(2)).
fn decode_wake_op(val3: u32) -> (u32, u32, u32, u32) {
    let op = (val3 >> 28) & 0xf;
    let cmp = (val3 >> 24) & 0xf;
    // Both arguments are 12-bit signed values.
    let sext = |v: u32| ((v << 20) as i32 >> 20) as u32;
    let mut oparg = sext((val3 >> 12) & 0xfff);
    let cmparg = sext(val3 & 0xfff);
    // FUTEX_OP_OPARG_SHIFT: the argument is a shift count.
    if op & 8 != 0 {
        oparg = 1u32.checked_shl(oparg & 31).unwrap_or(0);
    }
    (op & 7, cmp, oparg, cmparg)
}

fn apply_op(op: u32, old: u32, arg: u32) -> u32 {
    match op {
        0 => arg,                   // FUTEX_OP_SET
        1 => old.wrapping_add(arg), // FUTEX_OP_ADD
        2 => old | arg,             // FUTEX_OP_OR
        3 => old & !arg,            // FUTEX_OP_ANDN
        4 => old ^ arg,             // FUTEX_OP_XOR
        _ => old,
    }
}

fn compare(cmp: u32, old: u32, arg: u32) -> Result<bool> {
    let (o, a) = (old as i32, arg as i32);
    Ok(match cmp {
        0 => o == a,
        1 => o != a,
        2 => o < a,
        3 => o <= a,
        4 => o > a,
        5 => o >= a,
        _ => return_errno!(ENOSYS),
    })
}

/// `FUTEX_OWNER_DIED` and `FUTEX_WAITERS` in a robust futex word.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's bound on a robust list walk (`ROBUST_LIST_LIMIT`).
const ROBUST_LIST_LIMIT: usize = 2048;

/// Mark the robust futexes a dying thread still holds (set_robust_list(2)): each one it
/// owns gets FUTEX_OWNER_DIED and one waiter is woken.
pub fn exit_robust_list(task: &Task, head: UserAddr) {
    let Ok([mut entry, offset, pending]) = task.read_obj::<[u64; 3]>(head) else {
        return;
    };
    let tid = task.tid as u32;
    let release = |entry: u64| {
        let Some(word) = entry.checked_add(offset) else {
            return;
        };
        let r = task.mm().atomic_update_u32(word, |v| {
            if v & FUTEX_TID_MASK == tid {
                (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED
            } else {
                v
            }
        });
        if let Ok(old) = r {
            if old & FUTEX_TID_MASK == tid && old & FUTEX_WAITERS != 0 {
                let _ = wake_address(task, UserAddr(word), 1);
            }
        }
    };
    for _ in 0..ROBUST_LIST_LIMIT {
        if entry == head.0 || entry == 0 {
            break;
        }
        if entry != pending {
            release(entry);
        }
        match task.read_obj::<u64>(UserAddr(entry)) {
            Ok(next) => entry = next,
            Err(_) => break,
        }
    }
    if pending != 0 {
        release(pending);
    }
}

/// FUTEX_LOCK_PI / LOCK_PI2 / TRYLOCK_PI.
fn lock_pi(
    task: &Task,
    uaddr: UserAddr,
    private: bool,
    deadline: Option<Instant>,
    try_only: bool,
) -> Result<u64> {
    let k = key(task, uaddr, private)?;
    let tid = task.tid as u32;
    loop {
        let waiter = {
            let mut q = task.kernel.pi_futexes.lock();
            let queued = q.get(&k).is_some_and(|l| !l.is_empty());
            let old = task.mm().atomic_update_u32(uaddr.0, |v| {
                if v & FUTEX_TID_MASK == 0 {
                    tid | (v & FUTEX_OWNER_DIED) | if queued { FUTEX_WAITERS } else { 0 }
                } else if v & FUTEX_TID_MASK == tid || try_only {
                    v
                } else {
                    v | FUTEX_WAITERS
                }
            })?;
            let owner = old & FUTEX_TID_MASK;
            if owner == 0 {
                return Ok(0);
            }
            if owner == tid {
                return_errno!(EDEADLK);
            }
            if try_only {
                return_errno!(EAGAIN);
            }
            if task.kernel.pids().task(owner as i32).is_none() {
                return_errno!(ESRCH);
            }
            crate::kernel::futex::PiTable::enqueue(&mut q, k, task.tid, &task.blocker)
        };
        match task.kernel.pi_futexes.wait(k, &waiter, deadline) {
            WaitResult::Woken => return Ok(0),
            WaitResult::TimedOut => return_errno!(ETIMEDOUT),
            WaitResult::Interrupted => return_errno!(ERESTARTSYS),
            WaitResult::ValueChanged => continue,
        }
    }
}

/// FUTEX_UNLOCK_PI: the caller must own the lock; the first waiter gets it directly.
fn unlock_pi(task: &Task, uaddr: UserAddr, private: bool) -> Result<u64> {
    let k = key(task, uaddr, private)?;
    let tid = task.tid as u32;
    let mut q = task.kernel.pi_futexes.lock();
    let cur: u32 = task.read_obj(uaddr)?;
    if cur & FUTEX_TID_MASK != tid {
        return_errno!(EPERM);
    }
    match crate::kernel::futex::PiTable::next_owner(&mut q, k) {
        Some((w, more)) => {
            let next = w.tid as u32 | if more { FUTEX_WAITERS } else { 0 };
            task.mm().atomic_update_u32(uaddr.0, |_| next)?;
            crate::kernel::futex::PiTable::grant(&w);
        }
        None => {
            task.mm().atomic_update_u32(uaddr.0, |_| 0)?;
        }
    }
    Ok(0)
}
