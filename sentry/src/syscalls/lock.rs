//! `flock` and the record-lock commands of `fcntl` (F_GETLK, F_SETLK, F_SETLKW and their
//! F_OFD_ forms).
#![deny(unsafe_code)]

use super::file::get_file;
use crate::error::Result;
use crate::kernel::locks::{FileKey, Owner};
use crate::kernel::wait::events;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::FileDescription;
use crate::{errno, return_errno};
use std::sync::Arc;

fn file_key(file: &dyn FileDescription) -> Result<FileKey> {
    let st = file.stat()?;
    Ok((st.dev, st.ino))
}

fn access(file: &dyn FileDescription) -> u32 {
    file.status_flags() & libc::O_ACCMODE as u32
}

/// Wait until `attempt` succeeds; `ERESTARTSYS` on a signal. Lock holders that go away
/// without an unlock (a dropped description) are noticed by re-checking every 50 ms.
fn wait_for_lock(task: &Task, mut attempt: impl FnMut() -> Result<bool>) -> Result<()> {
    let table = &task.kernel.locks;
    loop {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
        match task.block_until(&[(&table.released, events::ALL)], Some(deadline), || {
            Ok(attempt()?.then_some(()))
        }) {
            Ok(()) => return Ok(()),
            Err(e) if e.errno == crate::Errno::ETIMEDOUT => continue,
            Err(e) => return Err(e),
        }
    }
}

pub fn sys_flock(task: &mut Task, fd: i32, op: i32) -> Result<u64> {
    let file = get_file(task, fd)?;
    let key = file_key(&*file)?;
    let nonblock = op & libc::LOCK_NB != 0;
    let table = &task.kernel.locks;
    match op & !libc::LOCK_NB {
        libc::LOCK_UN => {
            table.unflock(key, &file);
            Ok(0)
        }
        o @ (libc::LOCK_SH | libc::LOCK_EX) => {
            let exclusive = o == libc::LOCK_EX;
            if table.try_flock(key, &file, exclusive) {
                return Ok(0);
            }
            if nonblock {
                return_errno!(EAGAIN); // EWOULDBLOCK
            }
            wait_for_lock(task, || Ok(table.try_flock(key, &file, exclusive)))?;
            Ok(0)
        }
        _ => Err(errno!(EINVAL)),
    }
}

/// `struct flock` on x86_64.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Flock {
    l_type: i16,
    l_whence: i16,
    pad: i32,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
    pad2: i32,
}

/// The byte range a `struct flock` names, end inclusive.
fn range(file: &dyn FileDescription, fl: &Flock) -> Result<(u64, u64)> {
    let base: i64 = match i32::from(fl.l_whence) {
        libc::SEEK_SET => 0,
        libc::SEEK_CUR => {
            i64::try_from(file.seek(0, libc::SEEK_CUR)?).map_err(|_| errno!(EOVERFLOW))?
        }
        libc::SEEK_END => i64::try_from(file.stat()?.size).map_err(|_| errno!(EOVERFLOW))?,
        _ => return_errno!(EINVAL),
    };
    let start = base.checked_add(fl.l_start).ok_or(errno!(EOVERFLOW))?;
    let (start, end) = match fl.l_len {
        0 => (start, i64::MAX),
        n if n > 0 => (start, start.checked_add(n - 1).ok_or(errno!(EOVERFLOW))?),
        n => (start.checked_add(n).ok_or(errno!(EINVAL))?, start - 1),
    };
    if start < 0 || end < start {
        return_errno!(EINVAL);
    }
    Ok((
        start as u64,
        if end == i64::MAX {
            u64::MAX
        } else {
            end as u64
        },
    ))
}

/// F_GETLK/F_SETLK/F_SETLKW and the F_OFD_ forms.
pub fn fcntl_lock(task: &Task, fd: i32, cmd: i32, arg: UserAddr) -> Result<u64> {
    let file: Arc<dyn FileDescription> = get_file(task, fd)?;
    let mut fl: Flock = task.read_obj(arg)?;
    let ofd = matches!(
        cmd,
        libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW
    );
    if ofd && fl.l_pid != 0 {
        return_errno!(EINVAL);
    }
    let owner = if ofd {
        Owner::Description(Arc::downgrade(&file))
    } else {
        Owner::Process(task.tgid)
    };
    let pid = if ofd { -1 } else { task.tgid };
    let (start, end) = range(&*file, &fl)?;
    let key = file_key(&*file)?;
    let table = &task.kernel.locks;
    let kind = i32::from(fl.l_type);
    if matches!(cmd, libc::F_GETLK | libc::F_OFD_GETLK) {
        if kind != libc::F_RDLCK && kind != libc::F_WRLCK {
            return_errno!(EINVAL);
        }
        match table.conflict(key, &owner, start, end, kind == libc::F_WRLCK) {
            Some(c) => {
                fl.l_type = if c.write {
                    libc::F_WRLCK as i16
                } else {
                    libc::F_RDLCK as i16
                };
                fl.l_whence = libc::SEEK_SET as i16;
                fl.l_start = c.start as i64;
                fl.l_len = if c.end == u64::MAX {
                    0
                } else {
                    (c.end - c.start + 1) as i64
                };
                fl.l_pid = c.pid;
            }
            None => fl.l_type = libc::F_UNLCK as i16,
        }
        task.write_obj(arg, &fl)?;
        return Ok(0);
    }
    let write = match kind {
        libc::F_UNLCK => {
            table.set_record(key, &owner, pid, start, end, None);
            return Ok(0);
        }
        libc::F_RDLCK => false,
        libc::F_WRLCK => true,
        _ => return_errno!(EINVAL),
    };
    let acc = access(&*file);
    if (write && acc == libc::O_RDONLY as u32) || (!write && acc == libc::O_WRONLY as u32) {
        return_errno!(EBADF);
    }
    let blocking = matches!(cmd, libc::F_SETLKW | libc::F_OFD_SETLKW);
    let mut try_set = || -> Result<bool> {
        match table.conflict(key, &owner, start, end, write) {
            None => {
                table.set_record(key, &owner, pid, start, end, Some(write));
                Ok(true)
            }
            Some(c) if blocking && !ofd => {
                // A process waiting on a process that waits on it would wait forever.
                if c.pid > 0 && !table.begin_wait(task.tgid, c.pid) {
                    return_errno!(EDEADLK);
                }
                Ok(false)
            }
            Some(_) => Ok(false),
        }
    };
    if try_set()? {
        return Ok(0);
    }
    if !blocking {
        return_errno!(EAGAIN);
    }
    let r = wait_for_lock(task, &mut try_set);
    table.end_wait(task.tgid);
    r.map(|()| 0)
}
