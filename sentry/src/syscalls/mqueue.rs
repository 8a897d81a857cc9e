//! POSIX message queues: `mq_open`, `mq_unlink`, `mq_timedsend`, `mq_timedreceive`,
//! `mq_notify`, `mq_getsetattr` (the queues themselves are `fs::mqueue`).
#![deny(unsafe_code)]

use super::pipe::install;
use super::time::Timespec;
use crate::error::Result;
use crate::fs::mqueue::{self, MqFile, Notify, MQ_PRIO_MAX};
use crate::kernel::creds::CAP_SYS_RESOURCE;
use crate::kernel::wait::events;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{FileDescription, MAY_READ, MAY_WRITE};
use crate::{errno, return_errno};
use std::sync::Arc;
use std::time::Instant;

/// `struct mq_attr`: flags, maxmsg, msgsize, curmsgs, then reserved words.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct MqAttr {
    flags: i64,
    maxmsg: i64,
    msgsize: i64,
    curmsgs: i64,
    reserved: [i64; 4],
}

/// `struct sigevent` (the parts read here).
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

/// The longest name `mq_open` reads (`NAME_MAX` and the NUL).
const NAME_BUF: usize = 256;

fn read_name(task: &Task, addr: UserAddr) -> Result<Vec<u8>> {
    task.read_cstring(addr, NAME_BUF)
}

/// The queue behind descriptor `fd`: `EBADF` for anything else.
fn queue_file(task: &Task, fd: i32) -> Result<Arc<dyn FileDescription>> {
    let f = task.files().get(fd)?;
    if f.as_any()
        .and_then(|a| a.downcast_ref::<MqFile>())
        .is_none()
    {
        return_errno!(EBADF);
    }
    Ok(f)
}

fn as_mq(f: &Arc<dyn FileDescription>) -> Result<&MqFile> {
    f.as_any()
        .and_then(|a| a.downcast_ref::<MqFile>())
        .ok_or(errno!(EBADF))
}

/// An absolute `CLOCK_REALTIME` timeout as a host instant; `EINVAL` if malformed.
fn deadline(task: &Task, ts: UserAddr) -> Result<Option<Instant>> {
    if ts.is_null() {
        return Ok(None);
    }
    let t: Timespec = task.read_obj(ts)?;
    let target = t.to_duration()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // A deadline too far to represent is no deadline.
    Ok(Instant::now().checked_add(target.saturating_sub(now)))
}

pub fn sys_mq_open(
    task: &mut Task,
    name: UserAddr,
    oflag: i32,
    mode: u32,
    attr: UserAddr,
) -> Result<u64> {
    let name = read_name(task, name)?;
    let allowed = libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NONBLOCK
        | libc::O_CLOEXEC
        | libc::O_LARGEFILE;
    let oflag = oflag & allowed;
    let access = match oflag & libc::O_ACCMODE {
        libc::O_RDONLY => MAY_READ,
        libc::O_WRONLY => MAY_WRITE,
        libc::O_RDWR => MAY_READ | MAY_WRITE,
        _ => return_errno!(EINVAL),
    };
    let create = if oflag & libc::O_CREAT != 0 {
        let attr = if attr.is_null() {
            None
        } else {
            let a: MqAttr = task.read_obj(attr)?;
            Some((a.maxmsg, a.msgsize))
        };
        let umask = task.fs().umask;
        Some(mqueue::Create {
            exclusive: oflag & libc::O_EXCL != 0,
            mode: mode & 0o777 & !umask,
            attr,
        })
    } else {
        None
    };
    let creds = task.creds.fs_creds();
    let resource = task.creds.has_cap(CAP_SYS_RESOURCE);
    let q = mqueue::open(&name, create, access, &creds, resource)?;
    let flags = (oflag & (libc::O_ACCMODE | libc::O_NONBLOCK)) as u32;
    let file = MqFile::new(q, flags, None);
    install(task, Arc::new(file), true)
}

pub fn sys_mq_unlink(task: &mut Task, name: UserAddr) -> Result<u64> {
    let name = read_name(task, name)?;
    mqueue::unlink(&name, &task.creds.fs_creds())?;
    Ok(0)
}

pub fn sys_mq_timedsend(
    task: &mut Task,
    fd: i32,
    msg: UserAddr,
    len: usize,
    prio: u32,
    timeout: UserAddr,
) -> Result<u64> {
    if prio >= MQ_PRIO_MAX {
        return_errno!(EINVAL);
    }
    let deadline = deadline(task, timeout)?;
    let f = queue_file(task, fd)?;
    let mq = as_mq(&f)?;
    if !mq.writable() {
        return_errno!(EBADF);
    }
    let attr = mq.queue.attr();
    if len as u64 > attr.msgsize {
        return_errno!(EMSGSIZE);
    }
    let mut data = vec![0u8; len];
    task.copy_in(msg, &mut data)?;
    let send = || mq.queue.send(&data, prio);
    let notify = if mq.status_flags() & libc::O_NONBLOCK as u32 != 0 {
        send()?
    } else {
        let wq = mq.queue.wait_queue().clone();
        task.block_until(
            &[(&wq, events::OUT | events::WRNORM)],
            deadline,
            || match send() {
                Err(e) if e.errno == crate::Errno::EAGAIN => Ok(None),
                r => r.map(Some),
            },
        )?
    };
    if let Some(n) = notify {
        notify_of(task, &n);
    }
    Ok(0)
}

/// Deliver a used-up registration's signal, from the sending process.
fn notify_of(task: &Task, n: &Notify) {
    if let Some((tg, info)) = mqueue::notification(n, task.tgid, task.creds.ruid) {
        task.kernel.signal_group(&tg, info);
    }
}

pub fn sys_mq_timedreceive(
    task: &mut Task,
    fd: i32,
    msg: UserAddr,
    len: usize,
    prio_out: UserAddr,
    timeout: UserAddr,
) -> Result<u64> {
    let deadline = deadline(task, timeout)?;
    let f = queue_file(task, fd)?;
    let mq = as_mq(&f)?;
    if !mq.readable() {
        return_errno!(EBADF);
    }
    let receive = || mq.queue.receive(len);
    let (data, prio) = if mq.status_flags() & libc::O_NONBLOCK as u32 != 0 {
        receive()?
    } else {
        let wq = mq.queue.wait_queue().clone();
        mq.queue.receiver_waiting(true);
        let r = task.block_until(
            &[(&wq, events::IN | events::RDNORM)],
            deadline,
            || match receive() {
                Err(e) if e.errno == crate::Errno::EAGAIN => Ok(None),
                r => r.map(Some),
            },
        );
        mq.queue.receiver_waiting(false);
        r?
    };
    // Linux copies the message out after taking it: a bad buffer loses it, as there.
    task.copy_out(msg, &data)?;
    if !prio_out.is_null() {
        task.write_obj(prio_out, &prio)?;
    }
    Ok(data.len() as u64)
}

pub fn sys_mq_notify(task: &mut Task, fd: i32, sevp: UserAddr) -> Result<u64> {
    let f = queue_file(task, fd)?;
    let mq = as_mq(&f)?;
    if sevp.is_null() {
        mq.queue.set_notify(task.tgid, None)?;
        return Ok(0);
    }
    let ev: Sigevent = task.read_obj(sevp)?;
    let signo = match ev.notify {
        SIGEV_NONE => 0,
        SIGEV_SIGNAL => {
            if !(0..=64).contains(&ev.signo) {
                return_errno!(EINVAL);
            }
            ev.signo
        }
        // SIGEV_THREAD is delivered over a netlink socket, which the sentry lacks.
        _ => return_errno!(EINVAL),
    };
    let n = Notify {
        tgid: task.tgid,
        tg: Arc::downgrade(&task.tg),
        signo,
        value: ev.value,
    };
    mq.queue.set_notify(task.tgid, Some(n))?;
    Ok(0)
}

pub fn sys_mq_getsetattr(task: &mut Task, fd: i32, new: UserAddr, old: UserAddr) -> Result<u64> {
    let f = queue_file(task, fd)?;
    let mq = as_mq(&f)?;
    let set = if new.is_null() {
        None
    } else {
        let a: MqAttr = task.read_obj(new)?;
        if a.flags & !i64::from(libc::O_NONBLOCK) != 0 {
            return_errno!(EINVAL);
        }
        Some(a.flags)
    };
    if !old.is_null() {
        let attr = mq.queue.attr();
        let a = MqAttr {
            flags: i64::from(mq.status_flags() & libc::O_NONBLOCK as u32),
            maxmsg: attr.maxmsg as i64,
            msgsize: attr.msgsize as i64,
            curmsgs: attr.curmsgs as i64,
            reserved: [0; 4],
        };
        task.write_obj(old, &a)?;
    }
    if let Some(flags) = set {
        let cur = mq.status_flags() & !(libc::O_NONBLOCK as u32);
        mq.set_status_flags(cur | flags as u32)?;
    }
    Ok(0)
}
