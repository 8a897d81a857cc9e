//! Clocks, sleeping, randomness, and the scheduling and system-information calls.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::process::TaskShared;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    /// A duration from application input: `EINVAL` if out of range, as nanosleep(2).
    pub fn to_duration(self) -> Result<Duration> {
        if self.sec < 0 || !(0..1_000_000_000).contains(&self.nsec) {
            return_errno!(EINVAL);
        }
        Ok(Duration::new(self.sec as u64, self.nsec as u32))
    }

    pub(crate) fn from_duration(d: Duration) -> Timespec {
        Timespec {
            sec: d.as_secs() as i64,
            nsec: i64::from(d.subsec_nanos()),
        }
    }
}

/// The clock ids the sentry serves. Negative ids name per-process/thread CPU clocks
/// (`clock_getcpuclockid`); only the caller's own are supported.
pub(crate) fn read_clock(task: &Task, clock: i32) -> Result<Timespec> {
    let host = |id: nix::time::ClockId| -> Result<Timespec> {
        let ts = nix::time::clock_gettime(id)?;
        Ok(Timespec {
            sec: ts.tv_sec(),
            nsec: ts.tv_nsec(),
        })
    };
    match clock {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI => {
            host(nix::time::ClockId::from_raw(clock))
        }
        libc::CLOCK_MONOTONIC
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_BOOTTIME => {
            // The sandbox's own boot: uptime starts when it did, like a fresh machine.
            let _ = host;
            Ok(Timespec::from_duration(
                task.kernel.boot_time.elapsed() + BOOT_OFFSET,
            ))
        }
        libc::CLOCK_PROCESS_CPUTIME_ID => Ok(Timespec::from_duration(task.tg.cpu_time())),
        libc::CLOCK_THREAD_CPUTIME_ID => Ok(Timespec::from_duration(task.ctx.cpu_time())),
        c if c < 0 => {
            // CPU clock of a pid: (~pid << 3) | type. Accept our own process/thread.
            let pid = !(c >> 3);
            if pid == 0 || pid == task.tgid || pid == task.tid {
                Ok(Timespec::from_duration(task.ctx.cpu_time()))
            } else {
                Err(errno!(EINVAL))
            }
        }
        _ => Err(errno!(EINVAL)),
    }
}

/// Monotonic time starts a little above zero, so programs that treat 0 as "unset" work.
pub const BOOT_OFFSET: Duration = Duration::from_secs(1);

/// `clock_gettime` into a sentry value, for other syscalls.
pub fn sys_clock_gettime_into(task: &Task, clock: i32, out: &mut Timespec) -> Result<()> {
    *out = read_clock(task, clock)?;
    Ok(())
}

pub fn sys_clock_gettime(task: &mut Task, clock: i32, tp: UserAddr) -> Result<u64> {
    let ts = read_clock(task, clock)?;
    task.write_obj(tp, &ts)?;
    Ok(0)
}

pub fn sys_clock_getres(task: &mut Task, clock: i32, tp: UserAddr) -> Result<u64> {
    read_clock(task, clock)?;
    let res = match clock {
        libc::CLOCK_REALTIME_COARSE | libc::CLOCK_MONOTONIC_COARSE => Timespec {
            sec: 0,
            nsec: 4_000_000,
        },
        _ => Timespec { sec: 0, nsec: 1 },
    };
    if !tp.is_null() {
        task.write_obj(tp, &res)?;
    }
    Ok(0)
}

pub fn sys_gettimeofday(task: &mut Task, tv: UserAddr, tz: UserAddr) -> Result<u64> {
    if !tv.is_null() {
        let ts = read_clock(task, libc::CLOCK_REALTIME)?;
        let tv_val = Timespec {
            sec: ts.sec,
            nsec: ts.nsec / 1000,
        };
        task.write_obj(tv, &tv_val)?;
    }
    if !tz.is_null() {
        task.write_obj(tz, &[0i32; 2])?;
    }
    Ok(0)
}

pub fn sys_time(task: &mut Task, tloc: UserAddr) -> Result<u64> {
    let ts = read_clock(task, libc::CLOCK_REALTIME)?;
    if !tloc.is_null() {
        task.write_obj(tloc, &ts.sec)?;
    }
    Ok(ts.sec as u64)
}

pub fn sys_nanosleep(task: &mut Task, req: UserAddr, rem: UserAddr) -> Result<u64> {
    let d = task.read_obj::<Timespec>(req)?.to_duration()?;
    let deadline = Instant::now() + d;
    interruptible_sleep(task, deadline, rem)
}

/// Sleep until `deadline`; if a signal interrupts, report the time left in `rem`.
/// A handler makes the sleep fail with EINTR whatever SA_RESTART says; with no handler it
/// restarts (Linux's ERESTART_RESTARTBLOCK; here the restart sleeps the full request
/// again rather than what was left).
fn interruptible_sleep(task: &Task, deadline: Instant, rem: UserAddr) -> Result<u64> {
    match task.sleep_until(deadline) {
        Ok(()) => Ok(0),
        Err(e) => {
            if !rem.is_null() {
                let left = deadline.saturating_duration_since(Instant::now());
                task.write_obj(rem, &Timespec::from_duration(left))?;
            }
            if e.errno == crate::Errno::ERESTARTSYS {
                return Err(errno!(ERESTARTNOHAND));
            }
            Err(e)
        }
    }
}

pub fn sys_clock_nanosleep(
    task: &mut Task,
    clock: i32,
    flags: i32,
    req: UserAddr,
    rem: UserAddr,
) -> Result<u64> {
    let ts = task.read_obj::<Timespec>(req)?;
    let d = ts.to_duration()?;
    match clock {
        libc::CLOCK_REALTIME
        | libc::CLOCK_MONOTONIC
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI
        | libc::CLOCK_PROCESS_CPUTIME_ID => {}
        // Linux answers EOPNOTSUPP here, though the man page says EINVAL.
        libc::CLOCK_THREAD_CPUTIME_ID => return_errno!(EOPNOTSUPP),
        _ => return_errno!(EINVAL),
    }
    if flags & libc::TIMER_ABSTIME != 0 {
        let now = read_clock(task, clock)?;
        let now = Duration::new(now.sec.max(0) as u64, now.nsec.clamp(0, 999_999_999) as u32);
        // An absolute sleep reports no remaining time (clock_nanosleep(2)).
        interruptible_sleep(task, Instant::now() + d.saturating_sub(now), UserAddr(0))
    } else {
        interruptible_sleep(task, Instant::now() + d, rem)
    }
}

pub fn sys_getrandom(task: &mut Task, buf: UserAddr, len: usize, flags: u32) -> Result<u64> {
    let known = libc::GRND_NONBLOCK | libc::GRND_RANDOM | libc::GRND_INSECURE;
    if flags & !known != 0 || (flags & libc::GRND_RANDOM != 0 && flags & libc::GRND_INSECURE != 0) {
        return_errno!(EINVAL);
    }
    // Linux returns at most 32 MiB - 1 per call.
    let len = len.min((32 << 20) - 1);
    let mut out = vec![0u8; len.min(1 << 20)];
    let mut done = 0usize;
    while done < len {
        let n = (len - done).min(out.len());
        let chunk = out.get_mut(..n).ok_or(errno!(EFAULT))?;
        let got = crate::host::getrandom(chunk)?;
        let part = out.get(..got).ok_or(errno!(EFAULT))?;
        task.copy_out(buf.offset(done as u64)?, part)?;
        done += got;
    }
    Ok(done as u64)
}

pub fn sys_sched_yield(_task: &mut Task) -> Result<u64> {
    std::thread::yield_now();
    Ok(0)
}

/// CPUs the sandbox reports: the host's count (the stubs may run on any of them), taken
/// at boot like `/proc/cpuinfo` and `/sys/devices/system/cpu`: a task's own host thread
/// is pinned to one CPU by the ptrace platform, so asking now would say 1.
fn ncpus() -> usize {
    crate::boot::host_cpus()
}

/// The task `pid` names for the affinity calls (0: the caller).
fn affinity_target(task: &Task, pid: i32) -> Result<Arc<TaskShared>> {
    if pid < 0 {
        return_errno!(ESRCH);
    }
    if pid == 0 || pid == task.tid {
        return Ok(task.shared.clone());
    }
    task.kernel.pids().task(pid).ok_or(errno!(ESRCH))
}

/// The sandbox's CPUs as a mask (at most 64).
fn online_mask() -> u64 {
    let n = ncpus().min(64);
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

pub fn sys_sched_getaffinity(task: &mut Task, pid: i32, len: usize, mask: UserAddr) -> Result<u64> {
    let target = affinity_target(task, pid)?;
    // The kernel's cpumask size: 8 bytes covers our CPUs; len must hold it and be a
    // multiple of sizeof(long).
    if len < 8 || !len.is_multiple_of(8) {
        return_errno!(EINVAL);
    }
    let bits = target.cpu_mask.load(Ordering::Relaxed) & online_mask();
    task.write_obj(mask, &bits)?;
    Ok(8)
}

pub fn sys_sched_setaffinity(task: &mut Task, pid: i32, len: usize, mask: UserAddr) -> Result<u64> {
    let target = affinity_target(task, pid)?;
    // Bits beyond the user's buffer are clear; bits beyond our CPUs are ignored.
    let mut buf = [0u8; 8];
    let n = len.min(8);
    task.copy_in(mask, &mut buf[..n])?;
    let wanted = u64::from_le_bytes(buf) & online_mask();
    if wanted == 0 {
        return_errno!(EINVAL);
    }
    target.cpu_mask.store(wanted, Ordering::Relaxed);
    Ok(0)
}

pub fn sys_getcpu(task: &mut Task, cpu: UserAddr, node: UserAddr) -> Result<u64> {
    if !cpu.is_null() {
        task.write_obj(cpu, &0u32)?;
    }
    if !node.is_null() {
        task.write_obj(node, &0u32)?;
    }
    Ok(0)
}

/// `struct sysinfo` on x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Sysinfo {
    uptime: i64,
    loads: [u64; 3],
    totalram: u64,
    freeram: u64,
    sharedram: u64,
    bufferram: u64,
    totalswap: u64,
    freeswap: u64,
    procs: u16,
    pad: [u8; 6],
    totalhigh: u64,
    freehigh: u64,
    mem_unit: u32,
    pad2: [u8; 4],
}

pub fn sys_sysinfo(task: &mut Task, info: UserAddr) -> Result<u64> {
    let host = nix::sys::sysinfo::sysinfo()?;
    let used = task.kernel.memory_file.allocated_bytes();
    let total = host.ram_total();
    let si = Sysinfo {
        uptime: (task.kernel.boot_time.elapsed() + BOOT_OFFSET).as_secs() as i64,
        totalram: total,
        freeram: total.saturating_sub(used),
        procs: 1,
        mem_unit: 1,
        ..Sysinfo::default()
    };
    task.write_obj(info, &si)?;
    Ok(0)
}

fn check_self(task: &Task, pid: i32) -> Result<()> {
    if pid < 0 {
        return_errno!(EINVAL);
    }
    if pid != 0 && pid != task.tid && task.kernel.pids().task(pid).is_none() {
        return_errno!(ESRCH);
    }
    Ok(())
}

/// The round-robin quantum: 0, as Linux reports for `SCHED_OTHER` tasks whose slice is
/// shorter than a jiffy (the only policy here).
pub fn sys_sched_rr_get_interval(task: &mut Task, pid: i32, ts: UserAddr) -> Result<u64> {
    check_self(task, pid)?;
    task.write_obj(ts, &Timespec::from_duration(Duration::ZERO))?;
    Ok(0)
}

/// Every task runs under `SCHED_OTHER`: the host schedules the stubs.
pub fn sys_sched_getscheduler(task: &mut Task, pid: i32) -> Result<u64> {
    check_self(task, pid)?;
    Ok(libc::SCHED_OTHER as u64)
}

pub fn sys_sched_getparam(task: &mut Task, pid: i32, param: UserAddr) -> Result<u64> {
    if param.is_null() {
        return_errno!(EINVAL);
    }
    check_self(task, pid)?;
    task.write_obj(param, &0i32)?;
    Ok(0)
}

fn priority_range(policy: i32) -> Result<(i32, i32)> {
    match policy {
        libc::SCHED_OTHER | libc::SCHED_BATCH | libc::SCHED_IDLE => Ok((0, 0)),
        libc::SCHED_FIFO | libc::SCHED_RR => Ok((1, 99)),
        _ => Err(errno!(EINVAL)),
    }
}

/// Only the normal policies, with priority 0; real-time scheduling needs the host's.
pub fn sys_sched_setscheduler(
    task: &mut Task,
    pid: i32,
    policy: i32,
    param: UserAddr,
) -> Result<u64> {
    if param.is_null() {
        return_errno!(EINVAL);
    }
    check_self(task, pid)?;
    let prio: i32 = task.read_obj(param)?;
    let (lo, hi) = priority_range(policy & !libc::SCHED_RESET_ON_FORK)?;
    if prio < lo || prio > hi {
        return_errno!(EINVAL);
    }
    if lo > 0 {
        return_errno!(EPERM);
    }
    Ok(0)
}

pub fn sys_sched_setparam(task: &mut Task, pid: i32, param: UserAddr) -> Result<u64> {
    if param.is_null() {
        return_errno!(EINVAL);
    }
    check_self(task, pid)?;
    let prio: i32 = task.read_obj(param)?;
    if prio != 0 {
        return_errno!(EINVAL);
    }
    Ok(0)
}

pub fn sys_sched_get_priority_max(policy: i32) -> Result<u64> {
    Ok(priority_range(policy)?.1 as u64)
}

pub fn sys_sched_get_priority_min(policy: i32) -> Result<u64> {
    Ok(priority_range(policy)?.0 as u64)
}

/// The sandbox cannot set the host's clock: only `CLOCK_REALTIME` is settable at all, and
/// it is refused with `EPERM` after the argument checks Linux makes first.
pub fn sys_clock_settime(task: &mut Task, clock: i32, tp: UserAddr) -> Result<u64> {
    let ts: Timespec = task.read_obj(tp)?;
    if clock != libc::CLOCK_REALTIME {
        return_errno!(EINVAL);
    }
    ts.to_duration()?;
    Err(errno!(EPERM))
}
