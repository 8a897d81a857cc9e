//! `splice`, `tee`, `vmsplice`: moving data through pipes without a user buffer.
//!
//! The pipe side is done under the pipe's lock ([`Pipe::splice_in`], [`Pipe::splice_out`],
//! [`Pipe::transfer`]), so bytes are never lost or seen twice; the other side is an
//! ordinary read or write of the file description. As in Linux, a pipe end or the other
//! file being `O_NONBLOCK`, or `SPLICE_F_NONBLOCK`, makes the call answer `EAGAIN` instead
//! of waiting.
#![deny(unsafe_code)]

use super::file::{
    check_readable, check_writable, get_file, raise_sigpipe, read_iovecs, MAX_RW_COUNT,
};
use crate::error::Result;
use crate::fs::pipe::{Pipe, PipeFile};
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::notify;
use crate::vfs::FileDescription;
use crate::{errno, return_errno};
use std::sync::Arc;

const SPLICE_F_MOVE: u32 = 1;
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_MORE: u32 = 4;
const SPLICE_F_GIFT: u32 = 8;
const SPLICE_F_ALL: u32 = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT;

fn as_pipe(file: &Arc<dyn FileDescription>) -> Option<&PipeFile> {
    file.as_any().and_then(|a| a.downcast_ref::<PipeFile>())
}

fn nonblocking(file: &dyn FileDescription) -> bool {
    file.status_flags() & libc::O_NONBLOCK as u32 != 0
}

/// Run `op` until it gives something other than `EAGAIN`, waiting on `queues` between
/// tries; with `nonblock`, once. A signal ends the wait (`ERESTARTSYS`).
fn retry<T>(
    task: &Task,
    queues: &[(Arc<WaitQueue>, u32)],
    nonblock: bool,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    if nonblock {
        return op();
    }
    let qs: Vec<(&WaitQueue, u32)> = queues
        .iter()
        .map(|(q, ev)| (&**q, *ev | events::ERR | events::HUP))
        .collect();
    task.block_until(&qs, None, || match op() {
        Err(e) if e.errno == crate::Errno::EAGAIN => Ok(None),
        r => r.map(Some),
    })
}

/// An explicit `loff_t` for the non-pipe side: `None` for NULL, `EINVAL` if negative.
fn read_off(task: &Task, ptr: UserAddr) -> Result<Option<u64>> {
    if ptr.is_null() {
        return Ok(None);
    }
    let v: i64 = task.read_obj(ptr)?;
    Ok(Some(u64::try_from(v).map_err(|_| errno!(EINVAL))?))
}

fn write_off(task: &Task, ptr: UserAddr, off: Option<u64>, n: usize) -> Result<()> {
    if let Some(o) = off {
        let new = o.checked_add(n as u64).ok_or(errno!(EOVERFLOW))?;
        task.write_obj(ptr, &i64::try_from(new).map_err(|_| errno!(EOVERFLOW))?)?;
    }
    Ok(())
}

/// The queue of a file's own waits (sockets, terminals), if it has one.
fn queue_of(file: &dyn FileDescription, ev: u32) -> Option<(Arc<WaitQueue>, u32)> {
    file.wait_queue().map(|q| (q, ev))
}

/// Read up to `room` bytes of `input` at `off` (or its own position) into a pipe.
pub(super) fn file_to_pipe(
    task: &Task,
    input: &dyn FileDescription,
    off: Option<u64>,
    pipe: &Arc<Pipe>,
    len: usize,
    nonblock: bool,
) -> Result<usize> {
    let mut queues = vec![(pipe.queue().clone(), events::OUT | events::WRNORM)];
    queues.extend(queue_of(input, events::IN | events::RDNORM));
    let r = retry(task, &queues, nonblock, || {
        pipe.splice_in(len, |room| {
            let mut buf = vec![0u8; room];
            let n = input.read(&mut buf, off)?;
            buf.truncate(n);
            Ok(buf)
        })
    });
    raise_sigpipe(task, &r);
    if matches!(r, Ok(n) if n > 0) {
        notify::file_event(input, notify::IN_ACCESS);
    }
    r
}

/// Write up to `len` bytes from a pipe to `output` at `off` (or its own position).
fn pipe_to_file(
    task: &Task,
    pipe: &Arc<Pipe>,
    output: &dyn FileDescription,
    off: Option<u64>,
    len: usize,
    nonblock: bool,
) -> Result<usize> {
    let mut queues = vec![(pipe.queue().clone(), events::IN | events::RDNORM)];
    queues.extend(queue_of(output, events::OUT | events::WRNORM));
    let r = retry(task, &queues, nonblock, || {
        pipe.splice_out(len, |data| output.write(data, off))
    });
    raise_sigpipe(task, &r);
    if matches!(r, Ok(n) if n > 0) {
        notify::file_event(output, notify::IN_MODIFY);
    }
    r
}

fn pipe_to_pipe(
    task: &Task,
    from: &Arc<Pipe>,
    to: &Arc<Pipe>,
    len: usize,
    nonblock: bool,
    consume: bool,
) -> Result<usize> {
    let queues = [
        (from.queue().clone(), events::IN | events::RDNORM),
        (to.queue().clone(), events::OUT | events::WRNORM),
    ];
    let r = retry(task, &queues, nonblock, || from.transfer(to, len, consume));
    raise_sigpipe(task, &r);
    r
}

pub fn sys_splice(
    task: &mut Task,
    fd_in: i32,
    off_in: UserAddr,
    fd_out: i32,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return_errno!(EINVAL);
    }
    let input = get_file(task, fd_in)?;
    let output = get_file(task, fd_out)?;
    check_readable(&*input)?;
    check_writable(&*output)?;
    let len = len.min(MAX_RW_COUNT);
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || nonblocking(&*input) || nonblocking(&*output);
    let n = match (as_pipe(&input), as_pipe(&output)) {
        (Some(i), Some(o)) => {
            if !off_in.is_null() || !off_out.is_null() {
                return_errno!(ESPIPE);
            }
            pipe_to_pipe(task, i.pipe(), o.pipe(), len, nonblock, true)?
        }
        (Some(i), None) => {
            if !off_in.is_null() {
                return_errno!(ESPIPE);
            }
            if output.status_flags() & libc::O_APPEND as u32 != 0 {
                return_errno!(EINVAL);
            }
            let off = read_off(task, off_out)?;
            let n = pipe_to_file(task, i.pipe(), &*output, off, len, nonblock)?;
            write_off(task, off_out, off, n)?;
            n
        }
        (None, Some(o)) => {
            if !off_out.is_null() {
                return_errno!(ESPIPE);
            }
            let off = read_off(task, off_in)?;
            if off.is_some() && input.seek(0, libc::SEEK_CUR).is_err() {
                return_errno!(ESPIPE);
            }
            let n = file_to_pipe(task, &*input, off, o.pipe(), len, nonblock)?;
            write_off(task, off_in, off, n)?;
            n
        }
        (None, None) => return_errno!(EINVAL),
    };
    Ok(n as u64)
}

pub fn sys_tee(task: &mut Task, fd_in: i32, fd_out: i32, len: usize, flags: u32) -> Result<u64> {
    if flags & !SPLICE_F_ALL != 0 {
        return_errno!(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let input = get_file(task, fd_in)?;
    let output = get_file(task, fd_out)?;
    check_readable(&*input)?;
    check_writable(&*output)?;
    let (Some(i), Some(o)) = (as_pipe(&input), as_pipe(&output)) else {
        return_errno!(EINVAL);
    };
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || nonblocking(&*input) || nonblocking(&*output);
    let len = len.min(MAX_RW_COUNT);
    Ok(pipe_to_pipe(task, i.pipe(), o.pipe(), len, nonblock, false)? as u64)
}

/// `vmsplice(2)`: user memory into a pipe's write end, or (as `readv`) out of its read
/// end. Pages are copied, never shared, so `SPLICE_F_GIFT` changes nothing.
pub fn sys_vmsplice(
    task: &mut Task,
    fd: i32,
    iov: UserAddr,
    nr_segs: usize,
    flags: u32,
) -> Result<u64> {
    if flags & !SPLICE_F_ALL != 0 {
        return_errno!(EINVAL);
    }
    let file = get_file(task, fd)?;
    let Some(p) = as_pipe(&file) else {
        return_errno!(EBADF);
    };
    // A writable end takes the memory in; a read-only one gives data out (vmsplice(2)).
    let to_pipe = match (p.writable(), p.readable()) {
        (true, _) => true,
        (false, true) => false,
        (false, false) => return_errno!(EBADF),
    };
    let nr = i32::try_from(nr_segs).map_err(|_| errno!(EINVAL))?;
    let iovs = read_iovecs(task, iov, nr)?;
    let nonblock = flags & SPLICE_F_NONBLOCK != 0 || nonblocking(&*file);
    let pipe = p.pipe();
    let mut done = 0usize;
    for v in iovs {
        let len = usize::try_from(v.len).map_err(|_| errno!(EINVAL))?;
        let mut at = 0usize;
        while at < len && done < MAX_RW_COUNT {
            let base = UserAddr(v.base).offset(at as u64)?;
            let want = (len - at).min(MAX_RW_COUNT - done);
            // Only the first piece may wait: after progress, return what was moved.
            let nb = nonblock || done > 0;
            let r = if to_pipe {
                let q = [(pipe.queue().clone(), events::OUT | events::WRNORM)];
                retry(task, &q, nb, || {
                    pipe.splice_in(want, |room| {
                        let mut buf = vec![0u8; room];
                        task.copy_in(base, &mut buf)?;
                        Ok(buf)
                    })
                })
            } else {
                let q = [(pipe.queue().clone(), events::IN | events::RDNORM)];
                retry(task, &q, nb, || {
                    pipe.splice_out(want, |data| {
                        task.copy_out(base, data)?;
                        Ok(data.len())
                    })
                })
            };
            let n = match r {
                Ok(n) => n,
                Err(e) if done == 0 => {
                    raise_sigpipe(task, &Err::<(), _>(e));
                    return Err(e);
                }
                Err(_) => return Ok(done as u64),
            };
            if n == 0 {
                return Ok(done as u64);
            }
            at += n;
            done += n;
        }
    }
    Ok(done as u64)
}
