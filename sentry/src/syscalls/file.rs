//! File-descriptor syscalls: read/write and their vector and positioned forms, lseek,
//! close, dup, fcntl, ioctl, fstat, getdents, ftruncate.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::wait::events;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::notify;
use crate::vfs::{
    Creds, DirentFormat, DirentSink, FdFlags, FdTable, FileDescription, FsContext, Stat, StatFs,
    VfsPath,
};
use crate::{errno, return_errno};
use std::sync::{Arc, MutexGuard};

/// Bytes moved per host call and per copy to or from application memory.
pub(super) const CHUNK: usize = 1 << 20;
/// Linux's `MAX_RW_COUNT`: one read or write moves at most this much.
pub(super) const MAX_RW_COUNT: usize = 0x7fff_f000;
/// `UIO_MAXIOV`.
const UIO_MAXIOV: usize = 1024;

pub(super) fn files(task: &Task) -> MutexGuard<'_, FdTable> {
    task.files.lock().unwrap_or_else(|e| e.into_inner())
}

/// A snapshot of the task's root, cwd and umask, taken without holding the lock while the
/// operation runs.
pub(super) fn fs_ctx(task: &Task) -> FsContext {
    task.fs.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The credentials filesystem operations run with.
/// The credentials file permission checks use: the task's filesystem ids, groups and
/// effective capabilities.
pub(super) fn creds(task: &Task) -> Creds {
    task.creds.fs_creds()
}

pub(super) fn get_file(task: &Task, fd: i32) -> Result<Arc<dyn FileDescription>> {
    files(task).get(fd)
}

fn is_path_only(file: &dyn FileDescription) -> bool {
    file.status_flags() & libc::O_PATH as u32 != 0
}

pub(super) fn check_readable(file: &dyn FileDescription) -> Result<()> {
    let f = file.status_flags();
    if f & libc::O_PATH as u32 != 0 || f & libc::O_ACCMODE as u32 == libc::O_WRONLY as u32 {
        return_errno!(EBADF);
    }
    Ok(())
}

pub(super) fn check_writable(file: &dyn FileDescription) -> Result<()> {
    let f = file.status_flags();
    if f & libc::O_PATH as u32 != 0 || f & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
        return_errno!(EBADF);
    }
    Ok(())
}

fn offset_arg(off: i64) -> Result<u64> {
    u64::try_from(off).map_err(|_| errno!(EINVAL))
}

/// Whether an attempt that would block may wait: the description is blocking and its
/// file can announce that it became ready.
fn may_wait(file: &dyn FileDescription) -> bool {
    file.status_flags() & libc::O_NONBLOCK as u32 == 0 && file.wait_queue().is_some()
}

/// Run `op`, an I/O attempt that answers `EAGAIN` instead of blocking; if the description
/// is blocking, wait on the file's queue for `ev` (or an error or hang-up) and try again
/// until it gives another answer. One wait path for every file that can block: pipes,
/// eventfd, timerfd, host terminals. A signal ends the wait with `ERESTARTSYS`.
pub(super) fn io_or_wait<T>(
    task: &Task,
    file: &dyn FileDescription,
    ev: u32,
    op: impl FnMut() -> Result<T>,
) -> Result<T> {
    io_or_wait_until(task, file, ev, None, op)
}

/// [`io_or_wait`] that gives up with `ETIMEDOUT` at `deadline`.
fn io_or_wait_until<T>(
    task: &Task,
    file: &dyn FileDescription,
    ev: u32,
    deadline: Option<std::time::Instant>,
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let queue = match file.wait_queue() {
        Some(q) if file.status_flags() & libc::O_NONBLOCK as u32 == 0 => q,
        _ => return op(),
    };
    task.block_until(
        &[(&queue, ev | events::ERR | events::HUP)],
        deadline,
        || match op() {
            Err(e) if e.errno == crate::Errno::EAGAIN => Ok(None),
            r => r.map(Some),
        },
    )
}

/// Job control on a terminal (termios(3), "Job control"): see
/// [`crate::kernel::tty::check_io`].
fn job_control(task: &Task, file: &dyn FileDescription, write: bool) -> Result<()> {
    crate::kernel::tty::check_io(task, file, write)
}

/// Read up to `count` bytes from `file` into application memory at `buf`, in chunks;
/// `offset` as in [`FileDescription::read`]. Stops at the first short read so that a
/// pipe or terminal never blocks for more than it already gave. With `block` false (a
/// later buffer of a `readv`), a read that would block ends with `EAGAIN` instead.
fn read_into(
    task: &Task,
    file: &dyn FileDescription,
    buf: UserAddr,
    count: usize,
    mut offset: Option<u64>,
    block: bool,
) -> Result<usize> {
    let count = count.min(MAX_RW_COUNT);
    let mut chunk = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(CHUNK);
        let dst = chunk.get_mut(..want).ok_or(errno!(EINVAL))?;
        let r = if block && done == 0 {
            // A terminal with VMIN 0 and VTIME set waits that long, then reads nothing.
            let deadline = file.read_timeout().map(|t| std::time::Instant::now() + t);
            match io_or_wait_until(task, file, events::IN | events::RDNORM, deadline, || {
                file.read(dst, offset)
            }) {
                Err(e) if e.errno == crate::Errno::ETIMEDOUT && deadline.is_some() => Ok(0),
                r => r,
            }
        } else {
            file.read(dst, offset)
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let data = chunk.get(..n).ok_or(errno!(EIO))?;
        if let Err(e) = task.copy_out(buf.offset(done as u64)?, data) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        done += n;
        if let Some(o) = offset.as_mut() {
            *o = o.checked_add(n as u64).ok_or(errno!(EOVERFLOW))?;
        }
        // Only regular files are read past one chunk: anything else may block.
        if n < want || file.mappable().is_none() {
            break;
        }
    }
    if done > 0 {
        notify::file_event(file, notify::IN_ACCESS);
    }
    Ok(done)
}

/// Write `count` bytes from application memory at `buf` to `file`, in chunks. A blocking
/// description that takes only part of a chunk (a full pipe) is waited on until it takes
/// the rest, as Linux's pipe_write does; a signal then ends the write with the bytes
/// written so far.
fn write_from(
    task: &Task,
    file: &dyn FileDescription,
    buf: UserAddr,
    count: usize,
    offset: Option<u64>,
) -> Result<usize> {
    if count > 0 {
        if let Some(p) = file.path() {
            remove_privs(task, &p)?;
        }
    }
    let r = write_from_inner(task, file, buf, count, offset);
    raise_sigpipe(task, &r);
    if matches!(r, Ok(n) if n > 0) {
        notify::file_event(file, notify::IN_MODIFY);
    }
    r
}

/// `file_remove_privs`: writing to or truncating a regular file without `CAP_FSETID`
/// clears its set-user-ID bit, and its set-group-ID bit when group-execute is set or the
/// writer is not in the file's group (`setattr_should_drop_suidgid`).
pub(super) fn remove_privs(task: &Task, p: &VfsPath) -> Result<()> {
    crate::vfs::remove_privs(p, &creds(task))
}

/// A write that failed with EPIPE also sends SIGPIPE to the writing thread (pipe(7)).
pub(super) fn raise_sigpipe<T>(task: &Task, r: &Result<T>) {
    if matches!(r, Err(e) if e.errno == crate::Errno::EPIPE) {
        let info = crate::kernel::signal::SigInfo::kernel(libc::SIGPIPE);
        task.kernel.signal_thread(&task.shared, info);
    }
}

fn write_from_inner(
    task: &Task,
    file: &dyn FileDescription,
    buf: UserAddr,
    count: usize,
    mut offset: Option<u64>,
) -> Result<usize> {
    let count = count.min(MAX_RW_COUNT);
    if file.discards_writes() {
        return Ok(count);
    }
    let blocking = may_wait(file);
    let mut chunk = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    'chunks: while done < count {
        let want = (count - done).min(CHUNK);
        let src = chunk.get_mut(..want).ok_or(errno!(EINVAL))?;
        if let Err(e) = task.copy_in(buf.offset(done as u64)?, src) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        let src = chunk.get(..want).ok_or(errno!(EINVAL))?;
        let mut taken = 0usize;
        while taken < want {
            let part = src.get(taken..).ok_or(errno!(EINVAL))?;
            let r = io_or_wait(task, file, events::OUT | events::WRNORM, || {
                file.write(part, offset)
            });
            let n = match r {
                Ok(n) => n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break 'chunks,
            };
            taken += n;
            done += n;
            if let Some(o) = offset.as_mut() {
                *o = o.checked_add(n as u64).ok_or(errno!(EOVERFLOW))?;
            }
            if n == 0 || !blocking {
                break;
            }
        }
        if taken < want {
            break;
        }
    }
    Ok(done)
}

/// The single buffer of `read`/`write`, for the socket path.
fn one_iov(buf: UserAddr, count: usize) -> [IoVec; 1] {
    [IoVec {
        base: buf.0,
        len: count.min(MAX_RW_COUNT) as u64,
    }]
}

pub fn sys_read(task: &mut Task, fd: i32, buf: UserAddr, count: usize) -> Result<u64> {
    let file = get_file(task, fd)?;
    if file.as_socket().is_some() {
        return super::socket::read_socket(task, &file, &one_iov(buf, count));
    }
    check_readable(&*file)?;
    job_control(task, &*file, false)?;
    Ok(read_into(task, &*file, buf, count, None, true)? as u64)
}

pub fn sys_write(task: &mut Task, fd: i32, buf: UserAddr, count: usize) -> Result<u64> {
    let file = get_file(task, fd)?;
    if file.as_socket().is_some() {
        return super::socket::write_socket(task, &file, &one_iov(buf, count));
    }
    check_writable(&*file)?;
    job_control(task, &*file, true)?;
    Ok(write_from(task, &*file, buf, count, None)? as u64)
}

pub fn sys_pread64(task: &mut Task, fd: i32, buf: UserAddr, count: usize, off: i64) -> Result<u64> {
    let file = get_file(task, fd)?;
    check_readable(&*file)?;
    let off = offset_arg(off)?;
    Ok(read_into(task, &*file, buf, count, Some(off), true)? as u64)
}

pub fn sys_pwrite64(
    task: &mut Task,
    fd: i32,
    buf: UserAddr,
    count: usize,
    off: i64,
) -> Result<u64> {
    let file = get_file(task, fd)?;
    check_writable(&*file)?;
    let off = offset_arg(off)?;
    Ok(write_from(task, &*file, buf, count, Some(off))? as u64)
}

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct IoVec {
    pub(super) base: u64,
    pub(super) len: u64,
}

pub(super) fn read_iovecs(task: &Task, iov: UserAddr, iovcnt: i32) -> Result<Vec<IoVec>> {
    let n = usize::try_from(iovcnt).map_err(|_| errno!(EINVAL))?;
    if n > UIO_MAXIOV {
        return_errno!(EINVAL);
    }
    let mut v = Vec::with_capacity(n);
    let mut total: u64 = 0;
    for i in 0..n {
        let addr = iov.offset((i * std::mem::size_of::<IoVec>()) as u64)?;
        let e: IoVec = task.read_obj(addr)?;
        // The total must fit in ssize_t.
        total = total
            .checked_add(e.len)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(errno!(EINVAL))?;
        v.push(e);
    }
    Ok(v)
}

/// The shared body of readv/preadv/preadv2 (`read`) and the write forms.
fn do_vec(
    task: &Task,
    fd: i32,
    iov: UserAddr,
    iovcnt: i32,
    offset: Option<u64>,
    read: bool,
) -> Result<u64> {
    let file = get_file(task, fd)?;
    if offset.is_none() {
        job_control(task, &*file, !read)?;
    }
    if read {
        check_readable(&*file)?;
    } else {
        check_writable(&*file)?;
    }
    let iovs = read_iovecs(task, iov, iovcnt)?;
    if file.as_socket().is_some() {
        // Sockets have their own send and receive paths (buffers, timeouts, SIGPIPE).
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        return if read {
            super::socket::read_socket(task, &file, &iovs)
        } else {
            super::socket::write_socket(task, &file, &iovs)
        };
    }
    let mut offset = offset;
    let mut done: u64 = 0;
    for v in iovs {
        let len = usize::try_from(v.len).map_err(|_| errno!(EINVAL))?;
        if len == 0 {
            continue;
        }
        let r = if read {
            read_into(task, &*file, UserAddr(v.base), len, offset, done == 0)
        } else {
            write_from(task, &*file, UserAddr(v.base), len, offset)
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done = done.saturating_add(n as u64);
        if let Some(o) = offset.as_mut() {
            *o = o.checked_add(n as u64).ok_or(errno!(EOVERFLOW))?;
        }
        if n < len {
            break;
        }
    }
    Ok(done)
}

pub fn sys_readv(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32) -> Result<u64> {
    do_vec(task, fd, iov, iovcnt, None, true)
}

pub fn sys_writev(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32) -> Result<u64> {
    do_vec(task, fd, iov, iovcnt, None, false)
}

pub fn sys_preadv(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32, off: i64) -> Result<u64> {
    let off = offset_arg(off)?;
    do_vec(task, fd, iov, iovcnt, Some(off), true)
}

pub fn sys_pwritev(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32, off: i64) -> Result<u64> {
    let off = offset_arg(off)?;
    do_vec(task, fd, iov, iovcnt, Some(off), false)
}

/// `RWF_APPEND` (linux/fs.h).
const RWF_APPEND: i32 = 0x10;

/// `RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND`.
const RWF_SUPPORTED: i32 = 0x1f;

fn v2_offset(off: i64, flags: i32) -> Result<Option<u64>> {
    if flags & !RWF_SUPPORTED != 0 {
        return_errno!(EOPNOTSUPP);
    }
    if off == -1 {
        Ok(None)
    } else {
        offset_arg(off).map(Some)
    }
}

pub fn sys_preadv2(
    task: &mut Task,
    fd: i32,
    iov: UserAddr,
    iovcnt: i32,
    off: i64,
    flags: i32,
) -> Result<u64> {
    let off = v2_offset(off, flags)?;
    do_vec(task, fd, iov, iovcnt, off, true)
}

pub fn sys_pwritev2(
    task: &mut Task,
    fd: i32,
    iov: UserAddr,
    iovcnt: i32,
    off: i64,
    flags: i32,
) -> Result<u64> {
    let mut off = v2_offset(off, flags)?;
    if flags & RWF_APPEND != 0 {
        // The data goes to the end whatever the offset; only offset -1 moves the file
        // position (pwritev2(2)).
        let file = get_file(task, fd)?;
        match off {
            Some(_) => off = Some(file.stat()?.size),
            None => {
                file.seek(0, libc::SEEK_END)?;
            }
        }
    }
    do_vec(task, fd, iov, iovcnt, off, false)
}

pub fn sys_lseek(task: &mut Task, fd: i32, offset: i64, whence: i32) -> Result<u64> {
    let file = get_file(task, fd)?;
    file.seek(offset, whence)
}

pub fn sys_close(task: &mut Task, fd: i32) -> Result<u64> {
    let file = files(task).remove(fd)?;
    // Closing any descriptor of a file drops the process's POSIX locks on it.
    if let Ok(st) = file.stat() {
        task.kernel
            .locks
            .release_process(Some((st.dev, st.ino)), task.tgid);
    }
    crate::fs::mqueue::closed_by(&*file, task.tgid);
    // The last reference may be dropped here, outside the table lock.
    drop(file);
    Ok(0)
}

const CLOSE_RANGE_UNSHARE: u32 = 2;
const CLOSE_RANGE_CLOEXEC: u32 = 4;

pub fn sys_close_range(task: &mut Task, first: u32, last: u32, flags: u32) -> Result<u64> {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return_errno!(EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 {
        let copy = files(task).clone();
        task.files = Arc::new(std::sync::Mutex::new(copy));
    }
    let dropped = files(task).close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    drop(dropped);
    Ok(0)
}

pub fn sys_dup(task: &mut Task, oldfd: i32) -> Result<u64> {
    let mut t = files(task);
    let file = t.get(oldfd)?;
    Ok(t.insert(file, FdFlags::default())? as u64)
}

pub fn sys_dup2(task: &mut Task, oldfd: i32, newfd: i32) -> Result<u64> {
    if oldfd == newfd {
        files(task).get(oldfd)?;
        return Ok(newfd as u64);
    }
    sys_dup3(task, oldfd, newfd, 0)
}

pub fn sys_dup3(task: &mut Task, oldfd: i32, newfd: i32, flags: i32) -> Result<u64> {
    if flags & !libc::O_CLOEXEC != 0 || oldfd == newfd {
        return_errno!(EINVAL);
    }
    let replaced = {
        let mut t = files(task);
        let file = t.get(oldfd)?;
        t.insert_at(
            newfd,
            file,
            FdFlags {
                cloexec: flags & libc::O_CLOEXEC != 0,
            },
        )?
    };
    drop(replaced);
    Ok(newfd as u64)
}

pub fn sys_fcntl(task: &mut Task, fd: i32, cmd: i32, arg: u64) -> Result<u64> {
    let file = get_file(task, fd)?;
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| errno!(EINVAL))?;
            let cloexec = cmd == libc::F_DUPFD_CLOEXEC;
            Ok(files(task).insert_from(min, file, FdFlags { cloexec })? as u64)
        }
        libc::F_GETFD => Ok(if files(task).flags(fd)?.cloexec {
            libc::FD_CLOEXEC as u64
        } else {
            0
        }),
        libc::F_SETFD => {
            let cloexec = arg & libc::FD_CLOEXEC as u64 != 0;
            files(task).set_flags(fd, FdFlags { cloexec })?;
            Ok(0)
        }
        libc::F_GETFL => Ok(u64::from(file.status_flags())),
        libc::F_SETFL => {
            // As at open: only the owner (or CAP_FOWNER) may set O_NOATIME.
            let noatime = libc::O_NOATIME as u32;
            if arg as u32 & noatime != 0 && file.status_flags() & noatime == 0 {
                if let Some(p) = file.path() {
                    if !creds(task).owns(&p.inode().stat()?) {
                        return_errno!(EPERM);
                    }
                }
            }
            file.set_status_flags(arg as u32)?;
            Ok(0)
        }
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => super::lock::fcntl_lock(task, fd, cmd, UserAddr(arg)),
        // pipes and polling
        libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ => {
            let pipe = file
                .as_any()
                .and_then(|a| a.downcast_ref::<crate::fs::pipe::PipeFile>())
                .ok_or(errno!(EBADF))?
                .pipe();
            if cmd == libc::F_GETPIPE_SZ {
                return Ok(pipe.size() as u64);
            }
            // The argument is an unsigned int; CAP_SYS_RESOURCE may pass pipe-max-size.
            let size = u64::from(arg as u32);
            Ok(pipe.set_size(
                size,
                task.creds.has_cap(crate::kernel::creds::CAP_SYS_RESOURCE),
            )? as u64)
        }
        // file seals: tmpfs files only (memfds, and tmpfs files sealed from the start)
        libc::F_ADD_SEALS | libc::F_GET_SEALS => {
            let tmp = file
                .as_any()
                .and_then(|a| a.downcast_ref::<crate::fs::tmpfs::TmpfsFile>())
                .ok_or(errno!(EINVAL))?;
            if cmd == libc::F_GET_SEALS {
                return Ok(u64::from(tmp.seals()));
            }
            tmp.add_seals(arg as u32)?;
            Ok(0)
        }
        _ if is_path_only(&*file) => Err(errno!(EBADF)),
        _ => Err(errno!(EINVAL)),
    }
}

/// memfd_create(2): an anonymous tmpfs file open read-write, `/memfd:NAME (deleted)`.
pub fn sys_memfd_create(task: &mut Task, name: UserAddr, flags: u32) -> Result<u64> {
    use crate::fs::tmpfs::memfd;
    let name = match task.read_cstring(name, memfd::MFD_NAME_MAX_LEN + 1) {
        Err(e) if e.errno == crate::Errno::ENAMETOOLONG => return_errno!(EINVAL),
        other => other?,
    };
    let mf = task.mm().memory_file().clone();
    let path = memfd::create(&mf, &name, flags, &creds(task))?;
    let open_flags = libc::O_RDWR as u32;
    let file = path.inode().clone().open(&path, open_flags)?;
    let cloexec = flags & memfd::MFD_CLOEXEC != 0;
    Ok(files(task).insert(file, FdFlags { cloexec })? as u64)
}

const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;
const FIONBIO: u32 = 0x5421;

pub fn sys_ioctl(task: &mut Task, fd: i32, cmd: u32, arg: UserAddr) -> Result<u64> {
    let file = get_file(task, fd)?;
    match cmd {
        FIOCLEX | FIONCLEX => {
            files(task).set_flags(
                fd,
                FdFlags {
                    cloexec: cmd == FIOCLEX,
                },
            )?;
            Ok(0)
        }
        FIONBIO if !is_path_only(&*file) => {
            let on: i32 = task.read_obj(arg)?;
            let mut flags = file.status_flags() & !(libc::O_NONBLOCK as u32);
            if on != 0 {
                flags |= libc::O_NONBLOCK as u32;
            }
            file.set_status_flags(flags)?;
            Ok(0)
        }
        _ => file.ioctl(task, cmd, arg),
    }
}

/// x86_64 `struct stat`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct LinuxStat {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    pad0: u32,
    rdev: u64,
    size: i64,
    blksize: i64,
    blocks: i64,
    atime: i64,
    atime_nsec: i64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
    unused: [i64; 3],
}

impl From<&Stat> for LinuxStat {
    fn from(s: &Stat) -> LinuxStat {
        LinuxStat {
            dev: s.dev,
            ino: s.ino,
            nlink: s.nlink,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            rdev: s.rdev,
            size: i64::try_from(s.size).unwrap_or(i64::MAX),
            blksize: i64::from(s.blksize),
            blocks: i64::try_from(s.blocks).unwrap_or(i64::MAX),
            atime: s.atime.sec,
            atime_nsec: i64::from(s.atime.nsec),
            mtime: s.mtime.sec,
            mtime_nsec: i64::from(s.mtime.nsec),
            ctime: s.ctime.sec,
            ctime_nsec: i64::from(s.ctime.nsec),
            ..LinuxStat::default()
        }
    }
}

pub fn sys_fstat(task: &mut Task, fd: i32, buf: UserAddr) -> Result<u64> {
    let st = get_file(task, fd)?.stat()?;
    task.write_obj(buf, &LinuxStat::from(&st))?;
    Ok(0)
}

/// x86_64 `struct statfs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct LinuxStatFs {
    f_type: i64,
    bsize: i64,
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    fsid: [i32; 2],
    namelen: i64,
    frsize: i64,
    flags: i64,
    spare: [i64; 4],
}

/// `struct statfs` for a file at `path` (if it has one): the mount's read-only flag added.
pub(super) fn linux_statfs(s: &StatFs, path: Option<&VfsPath>) -> LinuxStatFs {
    // ST_VALID: f_flags is filled in (statvfs(3) relies on it since Linux 2.6.36).
    const ST_VALID: i64 = 0x20;
    let mut flags = s.flags | ST_VALID;
    if let Some(p) = path {
        let f = p.mount.flags();
        for (set, bit) in [
            (p.mount.is_read_only(), libc::ST_RDONLY),
            (f.nosuid, libc::ST_NOSUID),
            (f.nodev, libc::ST_NODEV),
            (f.noexec, libc::ST_NOEXEC),
        ] {
            if set {
                flags |= bit as i64;
            }
        }
    }
    LinuxStatFs {
        f_type: s.fs_type,
        bsize: s.bsize,
        blocks: s.blocks,
        bfree: s.bfree,
        bavail: s.bavail,
        files: s.files,
        ffree: s.ffree,
        fsid: s.fsid,
        namelen: s.namelen,
        frsize: s.frsize,
        flags,
        spare: [0; 4],
    }
}

pub fn sys_fstatfs(task: &mut Task, fd: i32, buf: UserAddr) -> Result<u64> {
    let file = get_file(task, fd)?;
    let s = file.statfs()?;
    task.write_obj(buf, &linux_statfs(&s, file.path().as_ref()))?;
    Ok(0)
}

fn getdents_common(
    task: &mut Task,
    fd: i32,
    dirp: UserAddr,
    count: u32,
    format: DirentFormat,
) -> Result<u64> {
    let file = get_file(task, fd)?;
    let cap = (count as usize).min(CHUNK);
    // Fail before reading: entries consumed into a buffer that cannot be written would be
    // lost from the listing.
    task.mm().check_writable(dirp, cap)?;
    let mut sink = DirentSink::new(cap, format);
    file.getdents(&mut sink)?;
    // iterate_dir reports every listing as an access, the last empty one too.
    notify::file_event(&*file, notify::IN_ACCESS);
    task.copy_out(dirp, sink.bytes())?;
    Ok(sink.bytes().len() as u64)
}

pub fn sys_getdents64(task: &mut Task, fd: i32, dirp: UserAddr, count: u32) -> Result<u64> {
    getdents_common(task, fd, dirp, count, DirentFormat::Dirent64)
}

pub fn sys_getdents(task: &mut Task, fd: i32, dirp: UserAddr, count: u32) -> Result<u64> {
    getdents_common(task, fd, dirp, count, DirentFormat::Dirent)
}

pub fn sys_ftruncate(task: &mut Task, fd: i32, length: i64) -> Result<u64> {
    let len = u64::try_from(length).map_err(|_| errno!(EINVAL))?;
    let file = get_file(task, fd)?;
    if is_path_only(&*file) {
        return_errno!(EBADF);
    }
    if file.status_flags() & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
        return_errno!(EINVAL);
    }
    if let Some(p) = file.path() {
        if p.inode().mode() & libc::S_IFMT == libc::S_IFREG {
            remove_privs(task, &p)?;
        }
    }
    file.truncate(len)?;
    notify::file_event(&*file, notify::IN_MODIFY);
    Ok(0)
}
