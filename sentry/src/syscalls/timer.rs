//! Interval and POSIX timers, and CPU-time accounting: `alarm`, `setitimer`,
//! `getitimer`, `timer_*`, `times`, `getrusage`.
#![deny(unsafe_code)]

use super::time::Timespec;
use crate::error::Result;
use crate::kernel::signal::{code, SigInfo};
use crate::kernel::timer::{Timer, TimerClock, TimerTarget};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};
use std::sync::Arc;
use std::time::Duration;

/// `struct timeval`.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Timeval {
    sec: i64,
    usec: i64,
}

impl Timeval {
    fn to_duration(self) -> Result<Duration> {
        if self.sec < 0 || !(0..1_000_000).contains(&self.usec) {
            return_errno!(EINVAL);
        }
        Ok(Duration::new(self.sec as u64, (self.usec * 1000) as u32))
    }

    fn from_duration(d: Duration) -> Timeval {
        // Linux rounds a nonzero remainder up to a whole microsecond.
        let usec = (i64::from(d.subsec_nanos()) + 999) / 1000;
        Timeval {
            sec: d.as_secs() as i64,
            usec,
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        sec: d.as_secs() as i64,
        nsec: i64::from(d.subsec_nanos()),
    }
}

/// The process's CPU clock, readable from the timer thread.
fn process_cpu_clock(task: &Task) -> crate::kernel::timer::CpuClock {
    let tg = Arc::downgrade(&task.tg);
    Arc::new(move || tg.upgrade().map(|g| g.cpu_time()).unwrap_or_default())
}

/// The itimer `which`, created on first use.
fn itimer(task: &Task, which: i32) -> Result<Arc<Timer>> {
    let idx = usize::try_from(which)
        .ok()
        .filter(|w| *w < 3)
        .ok_or(errno!(EINVAL))?;
    if let Some(Some(t)) = task.tg.state().itimers.get(idx) {
        return Ok(t.clone());
    }
    let (clock, signo) = match which {
        libc::ITIMER_REAL => (TimerClock::Wall, libc::SIGALRM),
        libc::ITIMER_VIRTUAL => (TimerClock::Cpu(process_cpu_clock(task)), libc::SIGVTALRM),
        _ => (TimerClock::Cpu(process_cpu_clock(task)), libc::SIGPROF),
    };
    let target = TimerTarget::Process(Arc::downgrade(&task.tg));
    let t = Timer::new(clock, target, SigInfo::kernel(signo));
    task.kernel.timers.add(&task.kernel, &t);
    if let Some(slot) = task.tg.state().itimers.get_mut(idx) {
        *slot = Some(t.clone());
    }
    Ok(t)
}

pub fn sys_getitimer(task: &mut Task, which: i32, value: UserAddr) -> Result<u64> {
    let (left, interval) = itimer(task, which)?.get();
    let v = [
        Timeval::from_duration(interval),
        Timeval::from_duration(left),
    ];
    task.write_obj(value, &v)?;
    Ok(0)
}

pub fn sys_setitimer(task: &mut Task, which: i32, new: UserAddr, old: UserAddr) -> Result<u64> {
    let t = itimer(task, which)?;
    let (interval, value) = if new.is_null() {
        (Duration::ZERO, Duration::ZERO)
    } else {
        let v: [Timeval; 2] = task.read_obj(new)?;
        (v[0].to_duration()?, v[1].to_duration()?)
    };
    let (old_left, old_interval) = t.set(&task.kernel.timers, value, interval);
    if !old.is_null() {
        let v = [
            Timeval::from_duration(old_interval),
            Timeval::from_duration(old_left),
        ];
        task.write_obj(old, &v)?;
    }
    Ok(0)
}

/// `alarm`: seconds left of the previous alarm, rounded as Linux does (up at half a
/// second, and never 0 for a pending alarm).
pub fn sys_alarm(task: &mut Task, seconds: u32) -> Result<u64> {
    let t = itimer(task, libc::ITIMER_REAL)?;
    let (left, _) = t.set(
        &task.kernel.timers,
        Duration::from_secs(u64::from(seconds)),
        Duration::ZERO,
    );
    let mut secs = left.as_secs();
    if left.subsec_nanos() >= 500_000_000 || (secs == 0 && !left.is_zero()) {
        secs += 1;
    }
    Ok(secs)
}

/// `struct sigevent` (the parts the sentry reads).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Sigevent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad2: u32,
    pad: [u64; 5],
}

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
/// Linux's limit on POSIX timers per process is RLIMIT_SIGPENDING; ours is fixed.
const MAX_POSIX_TIMERS: usize = 4096;

pub fn sys_timer_create(
    task: &mut Task,
    clock: i32,
    sevp: UserAddr,
    id_out: UserAddr,
) -> Result<u64> {
    let clock_kind = match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI => {
            TimerClock::Wall
        }
        libc::CLOCK_PROCESS_CPUTIME_ID => TimerClock::Cpu(process_cpu_clock(task)),
        libc::CLOCK_THREAD_CPUTIME_ID => TimerClock::Cpu(task.ctx.cpu_clock()),
        _ => return_errno!(EINVAL),
    };
    let id = {
        let st = task.tg.state();
        if st.posix_timers.len() >= MAX_POSIX_TIMERS {
            return_errno!(EAGAIN);
        }
        (0..i32::MAX)
            .find(|i| !st.posix_timers.contains_key(i))
            .ok_or(errno!(EAGAIN))?
    };
    let ev = if sevp.is_null() {
        Sigevent {
            value: id as u64,
            signo: libc::SIGALRM,
            notify: SIGEV_SIGNAL,
            ..Sigevent::default()
        }
    } else {
        task.read_obj::<Sigevent>(sevp)?
    };
    let target = match ev.notify {
        SIGEV_NONE => TimerTarget::Nowhere,
        // SIGEV_THREAD is glibc's: it creates the thread itself and asks the kernel for
        // SIGEV_THREAD_ID; the raw value is refused as Linux does.
        SIGEV_THREAD => return_errno!(EINVAL),
        SIGEV_SIGNAL => TimerTarget::Process(Arc::downgrade(&task.tg)),
        n if n == SIGEV_THREAD_ID || n == (SIGEV_SIGNAL | SIGEV_THREAD_ID) => {
            let t = task.kernel.pids().task(ev.tid).ok_or(errno!(EINVAL))?;
            if t.tg.tgid != task.tgid {
                return_errno!(EINVAL);
            }
            TimerTarget::Thread(Arc::downgrade(&t))
        }
        _ => return_errno!(EINVAL),
    };
    if !matches!(target, TimerTarget::Nowhere) && !(1..=64).contains(&ev.signo) {
        return_errno!(EINVAL);
    }
    let signo = if matches!(target, TimerTarget::Nowhere) {
        0
    } else {
        ev.signo
    };
    let info = SigInfo {
        signo,
        code: code::SI_TIMER,
        // si_timerid and si_overrun share the pid/uid slots; si_value follows.
        pid: id,
        uid: 0,
        status: ev.value as i64,
        ..SigInfo::default()
    };
    task.write_obj(id_out, &id)?;
    let t = Timer::new(clock_kind, target, info);
    task.kernel.timers.add(&task.kernel, &t);
    task.tg.state().posix_timers.insert(id, t);
    Ok(0)
}

fn posix_timer(task: &Task, id: i32) -> Result<Arc<Timer>> {
    task.tg
        .state()
        .posix_timers
        .get(&id)
        .cloned()
        .ok_or(errno!(EINVAL))
}

pub fn sys_timer_settime(
    task: &mut Task,
    id: i32,
    flags: i32,
    new: UserAddr,
    old: UserAddr,
) -> Result<u64> {
    let t = posix_timer(task, id)?;
    let v: [Timespec; 2] = task.read_obj(new)?;
    let interval = v[0].to_duration()?;
    let mut value = v[1].to_duration()?;
    if flags & libc::TIMER_ABSTIME != 0 && !value.is_zero() {
        // An absolute expiry on the timer's clock becomes time from now.
        let now = match &t.clock {
            TimerClock::Cpu(c) => c(),
            TimerClock::Wall => {
                let mut ts = Timespec::default();
                let clock = libc::CLOCK_MONOTONIC;
                super::time::sys_clock_gettime_into(task, clock, &mut ts)?;
                Duration::new(ts.sec.max(0) as u64, ts.nsec.clamp(0, 999_999_999) as u32)
            }
        };
        value = value.saturating_sub(now).max(Duration::from_nanos(1));
    }
    let (old_left, old_interval) = t.set(&task.kernel.timers, value, interval);
    if !old.is_null() {
        task.write_obj(old, &[timespec(old_interval), timespec(old_left)])?;
    }
    Ok(0)
}

pub fn sys_timer_gettime(task: &mut Task, id: i32, cur: UserAddr) -> Result<u64> {
    let (left, interval) = posix_timer(task, id)?.get();
    task.write_obj(cur, &[timespec(interval), timespec(left)])?;
    Ok(0)
}

pub fn sys_timer_getoverrun(task: &mut Task, id: i32) -> Result<u64> {
    Ok(posix_timer(task, id)?.overrun().min(i32::MAX as u64))
}

pub fn sys_timer_delete(task: &mut Task, id: i32) -> Result<u64> {
    let t = task
        .tg
        .state()
        .posix_timers
        .remove(&id)
        .ok_or(errno!(EINVAL))?;
    t.set(&task.kernel.timers, Duration::ZERO, Duration::ZERO);
    Ok(0)
}

/// Clock ticks (`sysconf(_SC_CLK_TCK)` = 100).
fn ticks(d: Duration) -> i64 {
    (d.as_millis() / 10) as i64
}

pub fn sys_times(task: &mut Task, buf: UserAddr) -> Result<u64> {
    // The host reports one CPU clock per stub (user and system together): it is shown
    // as user time.
    let own = task.tg.cpu_time();
    let children = task.tg.state().children_cpu;
    if !buf.is_null() {
        task.write_obj(buf, &[ticks(own), 0, ticks(children), 0])?;
    }
    let up = task.kernel.boot_time.elapsed() + super::time::BOOT_OFFSET;
    Ok(ticks(up) as u64)
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

pub fn sys_getrusage(task: &mut Task, who: i32, usage: UserAddr) -> Result<u64> {
    let cpu = match who {
        RUSAGE_SELF => task.tg.cpu_time(),
        RUSAGE_CHILDREN => task.tg.state().children_cpu,
        RUSAGE_THREAD => task.ctx.cpu_time(),
        _ => return_errno!(EINVAL),
    };
    // ru_maxrss in KiB: what the MemoryFile holds is the closest measure the sentry has.
    let maxrss = (task.kernel.memory_file.allocated_bytes() / 1024) as i64;
    task.write_obj(usage, &rusage(cpu, maxrss))?;
    Ok(0)
}

/// A `struct rusage` (18 longs): CPU time as user time, and the maximum resident size.
pub fn rusage(cpu: Duration, maxrss_kb: i64) -> [i64; 18] {
    let mut r = [0i64; 18];
    r[0] = cpu.as_secs() as i64;
    r[1] = i64::from(cpu.subsec_micros());
    r[4] = maxrss_kb;
    r
}
