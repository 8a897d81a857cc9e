//! `timerfd_create`, `timerfd_settime`, `timerfd_gettime`.
#![deny(unsafe_code)]

use super::file::get_file;
use super::pipe::install;
use super::time::{read_clock, Timespec};
use crate::error::Result;
use crate::fs::timerfd::TimerFd;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TFD_TIMER_ABSTIME: i32 = 1;
const TFD_TIMER_CANCEL_ON_SET: i32 = 2;

/// `struct itimerspec`.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ITimerSpec {
    interval: Timespec,
    value: Timespec,
}

impl ITimerSpec {
    fn from_durations(value: Duration, interval: Duration) -> ITimerSpec {
        ITimerSpec {
            interval: Timespec::from_duration(interval),
            value: Timespec::from_duration(value),
        }
    }
}

pub fn sys_timerfd_create(task: &mut Task, clock: i32, flags: i32) -> Result<u64> {
    if flags & !(libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) != 0 {
        return_errno!(EINVAL);
    }
    let clock = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME => clock,
        // Alarm clocks need CAP_WAKE_ALARM; the sandbox cannot wake a suspended host, so
        // they behave as their base clocks.
        libc::CLOCK_REALTIME_ALARM | libc::CLOCK_BOOTTIME_ALARM => {
            if !task.creds.has_cap(crate::kernel::creds::CAP_WAKE_ALARM) {
                return_errno!(EPERM);
            }
            if clock == libc::CLOCK_REALTIME_ALARM {
                libc::CLOCK_REALTIME
            } else {
                libc::CLOCK_BOOTTIME
            }
        }
        _ => return_errno!(EINVAL),
    };
    let file = TimerFd::new(clock, flags & libc::TFD_NONBLOCK != 0);
    install(task, Arc::new(file), flags & libc::TFD_CLOEXEC != 0)
}

/// The timerfd behind `fd`: `EBADF` for no file, `EINVAL` for another kind of file.
fn timerfd(task: &Task, fd: i32) -> Result<Arc<dyn crate::vfs::FileDescription>> {
    let file = get_file(task, fd)?;
    if !file.as_any().is_some_and(|a| a.is::<TimerFd>()) {
        return_errno!(EINVAL);
    }
    Ok(file)
}

/// `now + d`, saturating far in the future.
fn instant_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(now)
}

pub fn sys_timerfd_settime(
    task: &mut Task,
    fd: i32,
    flags: i32,
    new: UserAddr,
    old: UserAddr,
) -> Result<u64> {
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return_errno!(EINVAL);
    }
    let file = timerfd(task, fd)?;
    let tf = file
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .ok_or(errno!(EINVAL))?;
    let spec: ITimerSpec = task.read_obj(new)?;
    let interval = spec.interval.to_duration()?;
    let value = spec.value.to_duration()?;
    let first = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        // TODO: TFD_TIMER_CANCEL_ON_SET never fires: the sandbox's clock is never set.
        let now = read_clock(task, tf.clock())?.to_duration()?;
        Some(instant_after(value.saturating_sub(now)))
    } else {
        Some(instant_after(value))
    };
    let (old_value, old_interval) = tf.set(first, interval);
    if !old.is_null() {
        task.write_obj(old, &ITimerSpec::from_durations(old_value, old_interval))?;
    }
    Ok(0)
}

pub fn sys_timerfd_gettime(task: &mut Task, fd: i32, cur: UserAddr) -> Result<u64> {
    let file = timerfd(task, fd)?;
    let tf = file
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .ok_or(errno!(EINVAL))?;
    let (value, interval) = tf.get();
    task.write_obj(cur, &ITimerSpec::from_durations(value, interval))?;
    Ok(0)
}
