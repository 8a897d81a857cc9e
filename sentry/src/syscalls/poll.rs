//! Waiting for files: `poll`, `ppoll`, `select`, `pselect6`, and the `epoll` calls.
//!
//! Every form asks the files for their readiness, and if nothing is ready registers the
//! task on the files' wait queues and sleeps (`Task::block_until`) until one of them
//! announces an event, the timeout passes, or a signal comes.
//!
//! Interruption: poll and select end with `ERESTARTNOHAND` (restarted if no handler ran,
//! `EINTR` after a handler even with `SA_RESTART`); the epoll waits end with `EINTR`, never
//! restarted, as in Linux.
#![deny(unsafe_code)]

use super::file::{files, get_file};
use super::pipe::install;
use super::time::Timespec;
use crate::error::Result;
use crate::fs::epoll::{CtlOp, EpollFile, Event};
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::FileDescription;
use crate::{errno, return_errno, Errno};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of the `sigset_t` the kernel takes.
const SIGSET_SIZE: usize = 8;

/// `now + d`, or no deadline if that is too far to represent.
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// A deadline from a `timespec` pointer: none for NULL; `EINVAL` if malformed.
fn timespec_deadline(task: &Task, ts: UserAddr) -> Result<Option<Instant>> {
    if ts.is_null() {
        return Ok(None);
    }
    let d = task.read_obj::<Timespec>(ts)?.to_duration()?;
    Ok(deadline_after(d))
}

/// A deadline from a millisecond timeout: negative waits forever.
fn ms_deadline(timeout: i32) -> Option<Instant> {
    u64::try_from(timeout)
        .ok()
        .and_then(|ms| deadline_after(Duration::from_millis(ms)))
}

/// Run `f` with the signal mask `mask` (if any) in place (`ppoll`, `pselect6`,
/// `epoll_pwait`). If a signal interrupts the wait, the old mask comes back only after its
/// handler ran (the handler runs under the temporary mask), as Linux's
/// restore_saved_sigmask_unless does; otherwise at once.
fn with_sigmask<T>(
    task: &mut Task,
    mask: Option<u64>,
    f: impl FnOnce(&mut Task) -> Result<T>,
) -> Result<T> {
    let Some(m) = mask else { return f(task) };
    let old = task.sigmask();
    task.set_sigmask(m);
    let r = f(task);
    match &r {
        Err(e) if e.errno == Errno::EINTR || e.errno == Errno::ERESTARTNOHAND => {
            task.signals.saved_mask = Some(old);
        }
        _ => task.set_sigmask(old),
    }
    r
}

/// A `sigset_t` argument: none for NULL; `EINVAL` for a size other than 8.
fn read_sigmask(task: &Task, set: UserAddr, size: usize) -> Result<Option<u64>> {
    if set.is_null() {
        return Ok(None);
    }
    if size != SIGSET_SIZE {
        return_errno!(EINVAL);
    }
    Ok(Some(task.read_obj::<u64>(set)?))
}

/// Wait until `scan` finds something, the deadline passes (`None`), or a signal comes.
/// `files` are the files whose queues can announce a change.
fn wait_for<T>(
    task: &Task,
    files: &[Arc<dyn FileDescription>],
    deadline: Option<Instant>,
    mut scan: impl FnMut() -> Option<T>,
) -> Result<Option<T>> {
    if let Some(v) = scan() {
        return Ok(Some(v));
    }
    if deadline.is_some_and(|d| d <= Instant::now()) {
        return Ok(None);
    }
    let queues: Vec<Arc<WaitQueue>> = files.iter().filter_map(|f| f.wait_queue()).collect();
    let refs: Vec<(&WaitQueue, u32)> = queues.iter().map(|q| (&**q, events::ALL)).collect();
    match task.block_until(&refs, deadline, || Ok(scan())) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.errno == Errno::ETIMEDOUT => Ok(None),
        Err(e) if e.errno == Errno::ERESTARTSYS => Err(crate::errno!(ERESTARTNOHAND)),
        Err(e) => Err(e),
    }
}

// ---- poll ----

/// `struct pollfd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

/// The shared body of `poll` and `ppoll`.
fn do_poll(task: &Task, fds: UserAddr, nfds: u32, deadline: Option<Instant>) -> Result<u64> {
    if nfds > files(task).limit {
        return_errno!(EINVAL);
    }
    let n = nfds as usize;
    let size = std::mem::size_of::<PollFd>();
    let mut raw = vec![0u8; n.checked_mul(size).ok_or(errno!(EINVAL))?];
    task.copy_in(fds, &mut raw)?;
    let mut pfds: Vec<PollFd> = raw
        .chunks_exact(size)
        .map(bytemuck::pod_read_unaligned)
        .collect();
    let targets: Vec<Option<Arc<dyn FileDescription>>> = {
        let t = files(task);
        pfds.iter()
            .map(|p| if p.fd < 0 { None } else { t.get(p.fd).ok() })
            .collect()
    };
    let live: Vec<Arc<dyn FileDescription>> = targets.iter().flatten().cloned().collect();
    let scan = |out: &mut [PollFd]| -> usize {
        let mut ready = 0;
        for (p, f) in out.iter_mut().zip(&targets) {
            let rev = if p.fd < 0 {
                0
            } else {
                match f {
                    None => events::NVAL,
                    Some(f) => {
                        let wanted = u32::from(p.events as u16) | events::ERR | events::HUP;
                        f.readiness() & wanted
                    }
                }
            };
            p.revents = rev as u16 as i16;
            if rev != 0 {
                ready += 1;
            }
        }
        ready
    };
    let ready = wait_for(task, &live, deadline, || {
        let n = scan(&mut pfds);
        (n > 0).then_some(n)
    })?
    .unwrap_or(0);
    if ready == 0 {
        for p in pfds.iter_mut() {
            p.revents = 0;
        }
    }
    task.copy_out(fds, bytemuck::cast_slice(&pfds))?;
    Ok(ready as u64)
}

pub fn sys_poll(task: &mut Task, fds: UserAddr, nfds: u32, timeout: i32) -> Result<u64> {
    do_poll(task, fds, nfds, ms_deadline(timeout))
}

/// Write the time left before `deadline` to the timeout argument, as Linux's
/// `poll_select_finish` does: never for a zero timeout, and a failed write is ignored.
fn write_time_left<T: bytemuck::Pod>(
    task: &Task,
    at: UserAddr,
    deadline: Option<Instant>,
    was_zero: bool,
    encode: impl FnOnce(Duration) -> T,
) {
    let Some(d) = deadline else { return };
    if at.is_null() || was_zero {
        return;
    }
    let left = d.saturating_duration_since(Instant::now());
    let _ = task.write_obj(at, &encode(left));
}

fn is_zero_timespec(task: &Task, ts: UserAddr) -> bool {
    !ts.is_null()
        && task
            .read_obj::<Timespec>(ts)
            .is_ok_and(|t| t.sec == 0 && t.nsec == 0)
}

pub fn sys_ppoll(
    task: &mut Task,
    fds: UserAddr,
    nfds: u32,
    tsp: UserAddr,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    let deadline = timespec_deadline(task, tsp)?;
    let zero = is_zero_timespec(task, tsp);
    let mask = read_sigmask(task, sigmask, sigsetsize)?;
    let r = with_sigmask(task, mask, |t| do_poll(t, fds, nfds, deadline));
    write_time_left(task, tsp, deadline, zero, Timespec::from_duration);
    r
}

// ---- select ----

const POLLIN_SET: u32 = events::RDNORM | events::RDBAND | events::IN | events::HUP | events::ERR;
const POLLOUT_SET: u32 = events::WRBAND | events::WRNORM | events::OUT | events::ERR;
const POLLEX_SET: u32 = events::PRI;

/// `struct timeval`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Timeval {
    sec: i64,
    usec: i64,
}

/// One `fd_set` argument: its address and its bits (as 64-bit words).
struct FdSet {
    addr: UserAddr,
    bits: Vec<u64>,
}

impl FdSet {
    fn read(task: &Task, addr: UserAddr, words: usize) -> Result<Option<FdSet>> {
        if addr.is_null() {
            return Ok(None);
        }
        let mut raw = vec![0u8; words * 8];
        task.copy_in(addr, &mut raw)?;
        let bits = raw
            .chunks_exact(8)
            .map(bytemuck::pod_read_unaligned::<u64>)
            .collect();
        Ok(Some(FdSet { addr, bits }))
    }

    fn has(&self, fd: usize) -> bool {
        self.bits
            .get(fd / 64)
            .is_some_and(|w| w & (1u64 << (fd % 64)) != 0)
    }
}

/// The shared body of `select` and `pselect6`: `nfds` fds of the three sets.
fn do_select(
    task: &Task,
    nfds: i32,
    sets: [UserAddr; 3],
    deadline: Option<Instant>,
) -> Result<u64> {
    let nfds = usize::try_from(nfds).map_err(|_| errno!(EINVAL))?;
    // Linux clamps to the size of the fd table rather than failing.
    let n = nfds.min(files(task).limit as usize);
    let words = n.div_ceil(64);
    let [rs, ws, es] = sets;
    let inp = [
        FdSet::read(task, rs, words)?,
        FdSet::read(task, ws, words)?,
        FdSet::read(task, es, words)?,
    ];
    // Every fd in a set must be open.
    let mut watched: Vec<(usize, Arc<dyn FileDescription>)> = Vec::new();
    {
        let t = files(task);
        for fd in 0..n {
            if inp.iter().flatten().any(|s| s.has(fd)) {
                let file = t.get(i32::try_from(fd).map_err(|_| errno!(EBADF))?)?;
                watched.push((fd, file));
            }
        }
    }
    let live: Vec<Arc<dyn FileDescription>> = watched.iter().map(|(_, f)| f.clone()).collect();
    let masks = [POLLIN_SET, POLLOUT_SET, POLLEX_SET];
    let scan = || -> Option<(usize, [Vec<u64>; 3])> {
        let mut out = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
        let mut count = 0usize;
        for (fd, f) in &watched {
            let r = f.readiness();
            for ((set, mask), o) in inp.iter().zip(masks).zip(out.iter_mut()) {
                if set.as_ref().is_some_and(|s| s.has(*fd)) && r & mask != 0 {
                    if let Some(w) = o.get_mut(fd / 64) {
                        *w |= 1u64 << (fd % 64);
                    }
                    count += 1;
                }
            }
        }
        (count > 0).then_some((count, out))
    };
    let (count, out) = wait_for(task, &live, deadline, scan)?
        .unwrap_or_else(|| (0, [vec![0u64; words], vec![0u64; words], vec![0u64; words]]));
    for (set, bits) in inp.iter().zip(out.iter()) {
        if let Some(s) = set {
            task.copy_out(s.addr, bytemuck::cast_slice(bits))?;
        }
    }
    Ok(count as u64)
}

pub fn sys_select(
    task: &mut Task,
    nfds: i32,
    rs: UserAddr,
    ws: UserAddr,
    es: UserAddr,
    tvp: UserAddr,
) -> Result<u64> {
    let (deadline, zero) = if tvp.is_null() {
        (None, false)
    } else {
        let tv: Timeval = task.read_obj(tvp)?;
        if tv.sec < 0 || tv.usec < 0 {
            return_errno!(EINVAL);
        }
        // Linux folds whole seconds of tv_usec into tv_sec.
        let d = Duration::from_secs(tv.sec as u64)
            .checked_add(Duration::from_micros(tv.usec as u64))
            .ok_or(errno!(EINVAL))?;
        (deadline_after(d), d.is_zero())
    };
    let r = do_select(task, nfds, [rs, ws, es], deadline);
    write_time_left(task, tvp, deadline, zero, |d| Timeval {
        sec: d.as_secs() as i64,
        usec: i64::from(d.subsec_micros()),
    });
    r
}

/// pselect6's sixth argument: `{ const sigset_t *ss; size_t ss_len; }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct SigsetArg {
    ss: u64,
    len: u64,
}

pub fn sys_pselect6(
    task: &mut Task,
    nfds: i32,
    sets: [UserAddr; 3],
    tsp: UserAddr,
    sig: UserAddr,
) -> Result<u64> {
    let deadline = timespec_deadline(task, tsp)?;
    let zero = is_zero_timespec(task, tsp);
    let mask = if sig.is_null() {
        None
    } else {
        let a: SigsetArg = task.read_obj(sig)?;
        let len = usize::try_from(a.len).map_err(|_| errno!(EINVAL))?;
        read_sigmask(task, UserAddr(a.ss), len)?
    };
    let r = with_sigmask(task, mask, |t| do_select(t, nfds, sets, deadline));
    write_time_left(task, tsp, deadline, zero, Timespec::from_duration);
    r
}

// ---- epoll ----

/// Size of the packed x86_64 `struct epoll_event`.
const EPOLL_EVENT_SIZE: usize = 12;
/// Linux's `EP_MAX_EVENTS`.
const EP_MAX_EVENTS: i32 = i32::MAX / EPOLL_EVENT_SIZE as i32;

pub fn sys_epoll_create(task: &mut Task, size: i32) -> Result<u64> {
    if size <= 0 {
        return_errno!(EINVAL);
    }
    install(task, Arc::new(EpollFile::new()), false)
}

pub fn sys_epoll_create1(task: &mut Task, flags: i32) -> Result<u64> {
    if flags & !libc::EPOLL_CLOEXEC != 0 {
        return_errno!(EINVAL);
    }
    install(
        task,
        Arc::new(EpollFile::new()),
        flags & libc::EPOLL_CLOEXEC != 0,
    )
}

fn as_epoll(file: &Arc<dyn FileDescription>) -> Result<&EpollFile> {
    file.as_any()
        .and_then(|a| a.downcast_ref::<EpollFile>())
        .ok_or(errno!(EINVAL))
}

pub fn sys_epoll_ctl(task: &mut Task, epfd: i32, op: i32, fd: i32, event: UserAddr) -> Result<u64> {
    let op = match op {
        libc::EPOLL_CTL_ADD => Some(CtlOp::Add),
        libc::EPOLL_CTL_MOD => Some(CtlOp::Mod),
        libc::EPOLL_CTL_DEL => Some(CtlOp::Del),
        _ => None,
    };
    // As Linux's epoll_ctl: the event is read first, then the fds, then the checks.
    let mut ev = Event { events: 0, data: 0 };
    if matches!(op, Some(CtlOp::Add | CtlOp::Mod)) {
        let mut raw = [0u8; EPOLL_EVENT_SIZE];
        task.copy_in(event, &mut raw)?;
        let (e, d) = raw.split_at(4);
        ev.events = u32::from_ne_bytes(e.try_into().map_err(|_| errno!(EFAULT))?);
        ev.data = u64::from_ne_bytes(d.try_into().map_err(|_| errno!(EFAULT))?);
    }
    let ep = get_file(task, epfd)?;
    let target = get_file(task, fd)?;
    if target.wait_queue().is_none() {
        return_errno!(EPERM, "epoll_ctl: the file does not support polling");
    }
    let e = as_epoll(&ep)?;
    let op = op.ok_or(errno!(EINVAL))?;
    e.ctl(&ep, op, fd, &target, ev)?;
    Ok(0)
}

/// The shared body of `epoll_wait`, `epoll_pwait` and `epoll_pwait2`.
fn do_epoll_wait(
    task: &Task,
    epfd: i32,
    events_at: UserAddr,
    maxevents: i32,
    deadline: Option<Instant>,
) -> Result<u64> {
    if maxevents <= 0 || maxevents > EP_MAX_EVENTS {
        return_errno!(EINVAL);
    }
    let max = maxevents as usize;
    let ep = get_file(task, epfd)?;
    let e = as_epoll(&ep)?;
    let queue = e.queue();
    let ready = if deadline.is_some_and(|d| d <= Instant::now()) {
        e.collect(max)
    } else {
        match task.block_until(&[(&queue, events::IN)], deadline, || {
            let v = e.collect(max);
            Ok((!v.is_empty()).then_some(v))
        }) {
            Ok(v) => v,
            Err(err) if err.errno == Errno::ETIMEDOUT => Vec::new(),
            // epoll_wait is never restarted (epoll_wait(2)).
            Err(err) if err.errno == Errno::ERESTARTSYS => return Err(crate::errno!(EINTR)),
            Err(err) => return Err(err),
        }
    };
    let mut raw = Vec::with_capacity(ready.len() * EPOLL_EVENT_SIZE);
    for ev in &ready {
        raw.extend_from_slice(&ev.events.to_ne_bytes());
        raw.extend_from_slice(&ev.data.to_ne_bytes());
    }
    // TODO: on EFAULT, put edge-triggered and one-shot events back as Linux does.
    task.copy_out(events_at, &raw)?;
    Ok(ready.len() as u64)
}

pub fn sys_epoll_wait(
    task: &mut Task,
    epfd: i32,
    events_at: UserAddr,
    maxevents: i32,
    timeout: i32,
) -> Result<u64> {
    do_epoll_wait(task, epfd, events_at, maxevents, ms_deadline(timeout))
}

pub fn sys_epoll_pwait(
    task: &mut Task,
    epfd: i32,
    events_at: UserAddr,
    maxevents: i32,
    timeout: i32,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    let mask = read_sigmask(task, sigmask, sigsetsize)?;
    with_sigmask(task, mask, |t| {
        do_epoll_wait(t, epfd, events_at, maxevents, ms_deadline(timeout))
    })
}

pub fn sys_epoll_pwait2(
    task: &mut Task,
    epfd: i32,
    events_at: UserAddr,
    maxevents: i32,
    timeout: UserAddr,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> Result<u64> {
    let deadline = timespec_deadline(task, timeout)?;
    let mask = read_sigmask(task, sigmask, sigsetsize)?;
    with_sigmask(task, mask, |t| {
        do_epoll_wait(t, epfd, events_at, maxevents, deadline)
    })
}
