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
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

fn key(task: &Task, uaddr: UserAddr, private: bool) -> Result<FutexKey> {
    if !uaddr.0.is_multiple_of(4) {
        return_errno!(EINVAL);
    }
    if private {
        Ok(FutexKey::Private {
            mm: Arc::as_ptr(&task.mm) as usize,
            addr: uaddr.0,
        })
    } else {
        Ok(FutexKey::Shared {
            frame_offset: task.mm().futex_frame(uaddr.0)?,
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
    if realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
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
