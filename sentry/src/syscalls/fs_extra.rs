//! File-mutation syscalls: ownership, timestamps, special files, allocation, syncing and
//! advice, in-kernel copies (`sendfile`, `copy_file_range`), extended attributes,
//! `name_to_handle_at` and `chroot`.
//!
//! Privilege is the task's effective capability set (`CAP_CHOWN`, `CAP_FOWNER`,
//! `CAP_FSETID`, `CAP_MKNOD`, `CAP_SYS_ADMIN`, `CAP_SYS_CHROOT`), which setuid and
//! setfsuid adjust as Linux does.
#![deny(unsafe_code)]

use super::file::{check_readable, check_writable, creds, fs_ctx, get_file, CHUNK, MAX_RW_COUNT};
use super::fs::{dir_of, read_path, resolve_at, Target};
use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::notify;
use crate::vfs::{
    check_permission, FileDescription, Stat, Timespec, VfsPath, FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE, MAY_READ, MAY_WRITE, XATTR_CREATE, XATTR_REPLACE, XATTR_SIZE_MAX,
};
use crate::{errno, return_errno};

/// `CAP_SYS_ADMIN`: `trusted.*` extended attributes.
const CAP_SYS_ADMIN: u32 = 21;
use std::sync::Arc;

/// The target of an fd-based call: its place (`EBADF` for `O_PATH` descriptions, which
/// Linux's `fdget` refuses here).
pub(super) fn fd_target(task: &Task, fd: i32) -> Result<(Arc<dyn FileDescription>, Target)> {
    let file = get_file(task, fd)?;
    if file.status_flags() & libc::O_PATH as u32 != 0 {
        return_errno!(EBADF);
    }
    let target = match file.path() {
        Some(p) => Target::Path(p),
        None => Target::File(file.clone()),
    };
    Ok((file, target))
}

fn writable_place(target: &Target) -> Result<&VfsPath> {
    let Target::Path(p) = target else {
        // A host descriptor (stdio) has no inode the sandbox may change.
        return_errno!(EPERM)
    };
    if p.mount.is_read_only() {
        return_errno!(EROFS);
    }
    Ok(p)
}

// ---- chown ----

/// `chown_common` + `notify_change`: `CAP_CHOWN` may give any owner and group; the owner
/// may set the group to one of its own groups (and "change" the owner to itself). Any
/// change of a non-directory clears set-user-ID, and set-group-ID when group-execute is
/// set or the caller is neither in the file's group nor has `CAP_FSETID`
/// (`setattr_should_drop_sgid`).
fn chown_target(task: &Task, target: &Target, uid: u32, gid: u32) -> Result<u64> {
    let p = writable_place(target)?;
    let st = p.inode().stat()?;
    let c = creds(task);
    let uid = (uid != u32::MAX).then_some(uid);
    let gid = (gid != u32::MAX).then_some(gid);
    let privileged = c.has_cap(crate::kernel::creds::CAP_CHOWN);
    let owner = c.uid == st.uid;
    let uid_ok = uid.is_none_or(|u| owner && u == st.uid);
    let gid_ok = gid.is_none_or(|g| owner && (g == st.gid || c.in_group(g)));
    if !(privileged || (uid_ok && gid_ok)) {
        return_errno!(EPERM);
    }
    let mut new_mode = None;
    if !st.is_dir() {
        let old = st.mode & 0o7777;
        let mut m = old & !libc::S_ISUID;
        let drop_sgid = m & libc::S_IXGRP != 0
            || !(c.in_group(st.gid) || c.has_cap(crate::kernel::creds::CAP_FSETID));
        if drop_sgid {
            m &= !libc::S_ISGID;
        }
        if m != old {
            new_mode = Some(m);
        }
    }
    p.inode().set_owner(uid, gid, new_mode)?;
    notify::path_event(p, notify::IN_ATTRIB);
    Ok(0)
}

pub fn sys_chown(task: &mut Task, path: UserAddr, uid: u32, gid: u32) -> Result<u64> {
    sys_fchownat(task, libc::AT_FDCWD, path, uid, gid, 0)
}

pub fn sys_lchown(task: &mut Task, path: UserAddr, uid: u32, gid: u32) -> Result<u64> {
    sys_fchownat(
        task,
        libc::AT_FDCWD,
        path,
        uid,
        gid,
        libc::AT_SYMLINK_NOFOLLOW,
    )
}

pub fn sys_fchown(task: &mut Task, fd: i32, uid: u32, gid: u32) -> Result<u64> {
    let (_, target) = fd_target(task, fd)?;
    chown_target(task, &target, uid, gid)
}

pub fn sys_fchownat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    uid: u32,
    gid: u32,
    flags: i32,
) -> Result<u64> {
    let target = super::fs::resolve_at_user(task, dirfd, path, flags)?;
    chown_target(task, &target, uid, gid)
}

// ---- timestamps ----

const UTIME_NOW: i64 = libc::UTIME_NOW;
const UTIME_OMIT: i64 = libc::UTIME_OMIT;

/// One requested timestamp: now, leave alone, or this time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeSet {
    Now,
    Omit,
    At(Timespec),
}

impl TimeSet {
    fn from_timespec(sec: i64, nsec: i64) -> Result<TimeSet> {
        match nsec {
            UTIME_NOW => Ok(TimeSet::Now),
            UTIME_OMIT => Ok(TimeSet::Omit),
            0..=999_999_999 => Ok(TimeSet::At(Timespec {
                sec,
                nsec: u32::try_from(nsec).map_err(|_| errno!(EINVAL))?,
            })),
            _ => Err(errno!(EINVAL)),
        }
    }

    fn from_timeval(sec: i64, usec: i64) -> Result<TimeSet> {
        if !(0..1_000_000).contains(&usec) {
            return_errno!(EINVAL);
        }
        TimeSet::from_timespec(sec, usec * 1000)
    }

    fn resolve(self, now: Timespec) -> Option<Timespec> {
        match self {
            TimeSet::Now => Some(now),
            TimeSet::Omit => None,
            TimeSet::At(t) => Some(t),
        }
    }
}

/// `vfs_utimes`: setting explicit times needs ownership (or `CAP_FOWNER`: `EPERM`);
/// setting them to now needs ownership or write permission (`EACCES`).
fn utimes_target(task: &Task, target: &Target, times: Option<[TimeSet; 2]>) -> Result<u64> {
    let p = writable_place(target)?;
    let st = p.inode().stat()?;
    let c = creds(task);
    let [a, m] = times.unwrap_or([TimeSet::Now, TimeSet::Now]);
    let explicit = matches!(a, TimeSet::At(_)) || matches!(m, TimeSet::At(_));
    let owner = c.owns(&st);
    if explicit && !owner {
        return_errno!(EPERM);
    }
    if !owner {
        check_permission(&st, &c, MAY_WRITE)?;
    }
    let now = Timespec::now();
    let (at, mt) = (a.resolve(now), m.resolve(now));
    p.inode().set_times(at, mt)?;
    // fsnotify_change: both times is a utime (attrib); one alone reads as access/modify.
    let event = match (at.is_some(), mt.is_some()) {
        (true, true) => notify::IN_ATTRIB,
        (true, false) => notify::IN_ACCESS,
        _ => notify::IN_MODIFY,
    };
    notify::path_event(p, event);
    Ok(0)
}

/// `do_utimes`: a NULL path means the file `dirfd` itself (`futimens`).
fn do_utimes(
    task: &Task,
    dirfd: i32,
    path: UserAddr,
    times: Option<[TimeSet; 2]>,
    flags: i32,
) -> Result<u64> {
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return_errno!(EINVAL);
    }
    // Both omitted: nothing to do, even for a file that does not exist (utimensat(2)).
    if times == Some([TimeSet::Omit, TimeSet::Omit]) {
        return Ok(0);
    }
    let target = if path.is_null() {
        if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
            return_errno!(EINVAL);
        }
        if dirfd == libc::AT_FDCWD {
            return_errno!(EFAULT);
        }
        fd_target(task, dirfd)?.1
    } else {
        let path = read_path(task, path)?;
        let ctx = fs_ctx(task);
        resolve_at(task, &ctx, dirfd, &path, flags)?
    };
    utimes_target(task, &target, times)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Pair {
    a: i64,
    b: i64,
}

pub fn sys_utimensat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    times: UserAddr,
    flags: i32,
) -> Result<u64> {
    let times = if times.is_null() {
        None
    } else {
        let t: [Pair; 2] = task.read_obj(times)?;
        Some([
            TimeSet::from_timespec(t[0].a, t[0].b)?,
            TimeSet::from_timespec(t[1].a, t[1].b)?,
        ])
    };
    do_utimes(task, dirfd, path, times, flags)
}

fn read_timevals(task: &Task, times: UserAddr) -> Result<Option<[TimeSet; 2]>> {
    if times.is_null() {
        return Ok(None);
    }
    let t: [Pair; 2] = task.read_obj(times)?;
    Ok(Some([
        TimeSet::from_timeval(t[0].a, t[0].b)?,
        TimeSet::from_timeval(t[1].a, t[1].b)?,
    ]))
}

pub fn sys_futimesat(task: &mut Task, dirfd: i32, path: UserAddr, times: UserAddr) -> Result<u64> {
    let times = read_timevals(task, times)?;
    do_utimes(task, dirfd, path, times, 0)
}

pub fn sys_utimes(task: &mut Task, path: UserAddr, times: UserAddr) -> Result<u64> {
    sys_futimesat(task, libc::AT_FDCWD, path, times)
}

pub fn sys_utime(task: &mut Task, path: UserAddr, times: UserAddr) -> Result<u64> {
    // struct utimbuf { time_t actime, modtime; }
    let times = if times.is_null() {
        None
    } else {
        let t: Pair = task.read_obj(times)?;
        let at = |sec| TimeSet::At(Timespec { sec, nsec: 0 });
        Some([at(t.a), at(t.b)])
    };
    if path.is_null() {
        return_errno!(EFAULT);
    }
    do_utimes(task, libc::AT_FDCWD, path, times, 0)
}

// ---- special files ----

pub fn sys_mknod(task: &mut Task, path: UserAddr, mode: u32, dev: u32) -> Result<u64> {
    sys_mknodat(task, libc::AT_FDCWD, path, mode, dev)
}

/// `mknodat(2)`: regular files, FIFOs and sockets for anyone with write access to the
/// directory; device nodes for root (`CAP_MKNOD`). FIFOs cannot be opened until pipes
/// exist (`ENXIO`).
pub fn sys_mknodat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    mode: u32,
    dev: u32,
) -> Result<u64> {
    let kind = match mode & libc::S_IFMT {
        0 => libc::S_IFREG,
        k @ (libc::S_IFREG | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO | libc::S_IFSOCK) => k,
        libc::S_IFDIR => return_errno!(EPERM),
        _ => return_errno!(EINVAL),
    };
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    if path.is_empty() {
        return_errno!(ENOENT);
    }
    let dir = dir_of(task, &ctx, dirfd, &path)?;
    ctx.mknod(
        &dir,
        &path,
        kind | (mode & 0o7777),
        u64::from(dev),
        &creds(task),
        task.creds.has_cap(crate::kernel::creds::CAP_MKNOD),
    )?;
    Ok(0)
}

// ---- allocation ----

pub fn sys_fallocate(task: &mut Task, fd: i32, mode: i32, offset: i64, len: i64) -> Result<u64> {
    if offset < 0 || len <= 0 {
        return_errno!(EINVAL);
    }
    let mode = mode as u32;
    // Linux's FALLOC_FL_SUPPORTED_MASK.
    if mode & !0x7f != 0 {
        return_errno!(EOPNOTSUPP);
    }
    if mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0 {
        return_errno!(EOPNOTSUPP);
    }
    let file = get_file(task, fd)?;
    check_writable(&*file)?;
    let st = file.stat()?;
    match st.file_type() {
        libc::S_IFIFO => return_errno!(ESPIPE),
        libc::S_IFDIR => return_errno!(EISDIR),
        libc::S_IFREG => {}
        _ => return_errno!(ENODEV),
    }
    if offset.checked_add(len).is_none() {
        return_errno!(EFBIG);
    }
    let p = file.path().ok_or(errno!(ENODEV))?;
    p.inode().fallocate(mode, offset as u64, len as u64)?;
    notify::path_event(&p, notify::IN_MODIFY);
    Ok(0)
}

// ---- sync and advice ----

/// An fd for calls that take any open description but `O_PATH` (`EBADF`).
fn plain_file(task: &Task, fd: i32) -> Result<Arc<dyn FileDescription>> {
    Ok(fd_target(task, fd)?.0)
}

fn do_fsync(task: &Task, fd: i32, data_only: bool) -> Result<u64> {
    let file = plain_file(task, fd)?;
    // Pipes, sockets and terminals have no fsync (EINVAL).
    let p = file.path().ok_or(errno!(EINVAL))?;
    let st = file.stat()?;
    if !st.is_reg() && !st.is_dir() {
        return_errno!(EINVAL);
    }
    p.inode().fsync(data_only)?;
    Ok(0)
}

pub fn sys_fsync(task: &mut Task, fd: i32) -> Result<u64> {
    do_fsync(task, fd, false)
}

pub fn sys_fdatasync(task: &mut Task, fd: i32) -> Result<u64> {
    do_fsync(task, fd, true)
}

/// Memory filesystems have nothing to flush; a writable gofer tree is flushed per file
/// by `fsync`.
pub fn sys_sync(_task: &mut Task) -> Result<u64> {
    Ok(0)
}

pub fn sys_syncfs(task: &mut Task, fd: i32) -> Result<u64> {
    plain_file(task, fd)?;
    Ok(0)
}

const SYNC_FILE_RANGE_ALL: u32 = 7;

pub fn sys_sync_file_range(
    task: &mut Task,
    fd: i32,
    offset: i64,
    nbytes: i64,
    flags: u32,
) -> Result<u64> {
    let file = plain_file(task, fd)?;
    if flags & !SYNC_FILE_RANGE_ALL != 0 || offset < 0 || nbytes < 0 {
        return_errno!(EINVAL);
    }
    if offset.checked_add(nbytes).is_none() {
        return_errno!(EINVAL);
    }
    let st = file.stat()?;
    if !matches!(
        st.file_type(),
        libc::S_IFREG | libc::S_IFBLK | libc::S_IFDIR | libc::S_IFLNK
    ) {
        return_errno!(ESPIPE);
    }
    Ok(0)
}

pub fn sys_fadvise64(task: &mut Task, fd: i32, _offset: i64, len: i64, advice: i32) -> Result<u64> {
    let file = plain_file(task, fd)?;
    let st = file.stat()?;
    if st.file_type() == libc::S_IFIFO || file.path().is_none() && !st.is_reg() {
        return_errno!(ESPIPE);
    }
    if !(0..=5).contains(&advice) || len < 0 {
        return_errno!(EINVAL);
    }
    Ok(0)
}

pub fn sys_readahead(task: &mut Task, fd: i32, offset: i64, _count: usize) -> Result<u64> {
    let file = get_file(task, fd)?;
    check_readable(&*file)?;
    if !file.stat()?.is_reg() || file.mappable().is_none() || offset < 0 {
        return_errno!(EINVAL);
    }
    Ok(0)
}

// ---- in-kernel copies ----

/// Copy up to `count` bytes from `input` at `*in_pos` to `output` (at `*out_pos`, or its
/// own offset when `None`), advancing the positions by what was written. Stops at end of
/// input or a short write; an error after progress is dropped, as Linux does.
fn copy_between(
    input: &dyn FileDescription,
    in_pos: &mut u64,
    output: &dyn FileDescription,
    mut out_pos: Option<&mut u64>,
    count: usize,
) -> Result<usize> {
    let count = count.min(MAX_RW_COUNT);
    let mut buf = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(CHUNK);
        let chunk = buf.get_mut(..want).ok_or(errno!(EINVAL))?;
        let n = match input.read(chunk, Some(*in_pos)) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let data = chunk.get(..n).ok_or(errno!(EIO))?;
        let w = match output.write(data, out_pos.as_deref().copied()) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        *in_pos = in_pos.checked_add(w as u64).ok_or(errno!(EOVERFLOW))?;
        if let Some(p) = out_pos.as_deref_mut() {
            *p = p.checked_add(w as u64).ok_or(errno!(EOVERFLOW))?;
        }
        if w < n {
            break;
        }
    }
    if done > 0 {
        notify::file_event(input, notify::IN_ACCESS);
        notify::file_event(output, notify::IN_MODIFY);
    }
    Ok(done)
}

fn read_loff(task: &Task, ptr: UserAddr) -> Result<Option<u64>> {
    if ptr.is_null() {
        return Ok(None);
    }
    let v: i64 = task.read_obj(ptr)?;
    Ok(Some(u64::try_from(v).map_err(|_| errno!(EINVAL))?))
}

fn append_mode(file: &dyn FileDescription) -> bool {
    file.status_flags() & libc::O_APPEND as u32 != 0
}

/// The description's current offset (`lseek(fd, 0, SEEK_CUR)`).
fn current_offset(file: &dyn FileDescription) -> Result<u64> {
    file.seek(0, libc::SEEK_CUR)
}

pub fn sys_sendfile(
    task: &mut Task,
    out_fd: i32,
    in_fd: i32,
    offset: UserAddr,
    count: usize,
) -> Result<u64> {
    let input = get_file(task, in_fd)?;
    check_readable(&*input)?;
    let output = get_file(task, out_fd)?;
    check_writable(&*output)?;
    // The input must be a file with pages (a regular file); output in append mode is
    // refused (sendfile(2)).
    if input.mappable().is_none() || append_mode(&*output) {
        return_errno!(EINVAL);
    }
    let explicit = read_loff(task, offset)?;
    if let Some(pipe) = output
        .as_any()
        .and_then(|a| a.downcast_ref::<crate::fs::pipe::PipeFile>())
    {
        // Into a pipe: wait for room like splice does, and never lose what was read.
        let len = count.min(MAX_RW_COUNT);
        let nonblock = output.status_flags() & libc::O_NONBLOCK as u32 != 0;
        let n = super::splice::file_to_pipe(task, &*input, explicit, pipe.pipe(), len, nonblock)?;
        if let Some(p) = explicit {
            let end = p.checked_add(n as u64).ok_or(errno!(EOVERFLOW))?;
            task.write_obj(offset, &i64::try_from(end).map_err(|_| errno!(EOVERFLOW))?)?;
        }
        return Ok(n as u64);
    }
    let mut pos = match explicit {
        Some(p) => p,
        None => current_offset(&*input)?,
    };
    let n = if output.as_socket().is_some() {
        // Sockets wait for room themselves; a plain write would not.
        super::socket::send_from_file(task, &output, &*input, &mut pos, count)?
    } else {
        copy_between(&*input, &mut pos, &*output, None, count)?
    };
    match explicit {
        Some(_) => task.write_obj(offset, &(pos as i64))?,
        None => {
            input.seek(
                i64::try_from(pos).map_err(|_| errno!(EOVERFLOW))?,
                libc::SEEK_SET,
            )?;
        }
    }
    Ok(n as u64)
}

pub fn sys_copy_file_range(
    task: &mut Task,
    fd_in: i32,
    off_in: UserAddr,
    fd_out: i32,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> Result<u64> {
    if flags != 0 {
        return_errno!(EINVAL);
    }
    let input = get_file(task, fd_in)?;
    check_readable(&*input)?;
    let output = get_file(task, fd_out)?;
    check_writable(&*output)?;
    if append_mode(&*output) {
        return_errno!(EBADF);
    }
    let (si, so) = (input.stat()?, output.stat()?);
    if si.is_dir() || so.is_dir() {
        return_errno!(EISDIR);
    }
    if !si.is_reg() || !so.is_reg() {
        return_errno!(EINVAL);
    }
    // A negative offset is EOVERFLOW here (generic_copy_file_checks), not EINVAL.
    let overflow = |e: crate::error::Error| {
        if e.errno == crate::Errno::EINVAL {
            errno!(EOVERFLOW)
        } else {
            e
        }
    };
    let ein = read_loff(task, off_in).map_err(overflow)?;
    let eout = read_loff(task, off_out).map_err(overflow)?;
    let mut pin = match ein {
        Some(p) => p,
        None => current_offset(&*input)?,
    };
    let mut pout = match eout {
        Some(p) => p,
        None => current_offset(&*output)?,
    };
    if same_file(&si, &so) && ranges_overlap(pin, pout, len as u64) {
        return_errno!(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let n = copy_between(&*input, &mut pin, &*output, Some(&mut pout), len)?;
    let back = |file: &dyn FileDescription, ptr: UserAddr, explicit: bool, pos: u64| {
        if explicit {
            task.write_obj(ptr, &(pos as i64))
        } else {
            let pos = i64::try_from(pos).map_err(|_| errno!(EOVERFLOW))?;
            file.seek(pos, libc::SEEK_SET).map(|_| ())
        }
    };
    back(&*input, off_in, ein.is_some(), pin)?;
    back(&*output, off_out, eout.is_some(), pout)?;
    Ok(n as u64)
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    a.dev == b.dev && a.ino == b.ino
}

fn ranges_overlap(a: u64, b: u64, len: u64) -> bool {
    let (a_end, b_end) = (a.saturating_add(len), b.saturating_add(len));
    a < b_end && b < a_end
}

// ---- extended attributes ----

/// Longest attribute name (`XATTR_NAME_MAX`) and list (`XATTR_LIST_MAX`).
const XATTR_NAME_MAX: usize = 255;
const XATTR_LIST_MAX: usize = 65536;

fn xattr_name(task: &Task, name: UserAddr) -> Result<Vec<u8>> {
    let n = task.read_cstring(name, XATTR_NAME_MAX + 1).map_err(|e| {
        if e.errno == crate::Errno::ENAMETOOLONG {
            errno!(ERANGE)
        } else {
            e
        }
    })?;
    if n.is_empty() || n.len() > XATTR_NAME_MAX {
        return_errno!(ERANGE);
    }
    Ok(n)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum XattrNs {
    User,
    Trusted,
    Security,
    System,
}

/// The namespace of a full attribute name: `EOPNOTSUPP` for an unknown prefix, `EINVAL`
/// for a bare prefix (`xattr_resolve_name`).
fn xattr_ns(name: &[u8]) -> Result<XattrNs> {
    for (prefix, ns) in [
        (&b"user."[..], XattrNs::User),
        (b"trusted.", XattrNs::Trusted),
        (b"security.", XattrNs::Security),
        (b"system.", XattrNs::System),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            if rest.is_empty() {
                return_errno!(EINVAL);
            }
            return Ok(ns);
        }
    }
    Err(errno!(EOPNOTSUPP))
}

/// `xattr_permission`: trusted.* needs `CAP_SYS_ADMIN`; user.* exists only on regular files
/// and directories and follows the file's permission bits.
fn xattr_permission(task: &Task, target: &Target, name: &[u8], write: bool) -> Result<()> {
    let ns = xattr_ns(name)?;
    let Target::Path(p) = target else {
        return Err(if write {
            errno!(EOPNOTSUPP)
        } else {
            errno!(ENODATA)
        });
    };
    if write && p.mount.is_read_only() {
        return_errno!(EROFS);
    }
    let st = p.inode().stat()?;
    let refuse = || {
        if write {
            errno!(EPERM)
        } else {
            errno!(ENODATA)
        }
    };
    match ns {
        XattrNs::Trusted if !task.creds.has_cap(CAP_SYS_ADMIN) => Err(refuse()),
        XattrNs::User if !st.is_reg() && !st.is_dir() => Err(refuse()),
        XattrNs::User => {
            check_permission(&st, &creds(task), if write { MAY_WRITE } else { MAY_READ })
        }
        // ACLs are not supported: reads find none, writes are refused.
        XattrNs::System if write => Err(errno!(EOPNOTSUPP)),
        _ => Ok(()),
    }
}

fn xattr_path(task: &Task, path: UserAddr, follow: bool) -> Result<Target> {
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    resolve_at(task, &ctx, libc::AT_FDCWD, &path, flags)
}

fn getxattr_target(
    task: &Task,
    target: &Target,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> Result<u64> {
    let name = xattr_name(task, name)?;
    xattr_permission(task, target, &name, false)?;
    let Target::Path(p) = target else {
        return_errno!(ENODATA)
    };
    let v = p.inode().getxattr(&name)?;
    if size == 0 {
        return Ok(v.len() as u64);
    }
    if v.len() > size.min(XATTR_SIZE_MAX) {
        return_errno!(ERANGE);
    }
    task.copy_out(value, &v)?;
    Ok(v.len() as u64)
}

pub fn sys_getxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    follow: bool,
) -> Result<u64> {
    let target = xattr_path(task, path, follow)?;
    getxattr_target(task, &target, name, value, size)
}

pub fn sys_fgetxattr(
    task: &mut Task,
    fd: i32,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> Result<u64> {
    let (_, target) = fd_target(task, fd)?;
    getxattr_target(task, &target, name, value, size)
}

/// Name, value and flags of a `setxattr`, copied in before the path is resolved as Linux
/// does (`setxattr_copy`).
fn setxattr_args(
    task: &Task,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> Result<(Vec<u8>, Vec<u8>, u32)> {
    let flags = u32::try_from(flags).map_err(|_| errno!(EINVAL))?;
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return_errno!(EINVAL);
    }
    let name = xattr_name(task, name)?;
    if size > XATTR_SIZE_MAX {
        return_errno!(E2BIG);
    }
    let mut v = vec![0u8; size];
    task.copy_in(value, &mut v)?;
    Ok((name, v, flags))
}

fn setxattr_target(task: &Task, target: &Target, args: (Vec<u8>, Vec<u8>, u32)) -> Result<u64> {
    let (name, value, flags) = args;
    xattr_permission(task, target, &name, true)?;
    let p = writable_place(target)?;
    p.inode().setxattr(&name, &value, flags)?;
    notify::path_event(p, notify::IN_ATTRIB);
    Ok(0)
}

pub fn sys_setxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
    follow: bool,
) -> Result<u64> {
    let args = setxattr_args(task, name, value, size, flags)?;
    let target = xattr_path(task, path, follow)?;
    setxattr_target(task, &target, args)
}

pub fn sys_fsetxattr(
    task: &mut Task,
    fd: i32,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> Result<u64> {
    let args = setxattr_args(task, name, value, size, flags)?;
    let (_, target) = fd_target(task, fd)?;
    setxattr_target(task, &target, args)
}

fn listxattr_target(task: &Task, target: &Target, list: UserAddr, size: usize) -> Result<u64> {
    let Target::Path(p) = target else {
        return Ok(0);
    };
    let privileged = task.creds.has_cap(CAP_SYS_ADMIN);
    let mut out = Vec::new();
    for n in p.inode().listxattr()? {
        // Unprivileged callers do not see trusted.* names.
        if n.starts_with(b"trusted.") && !privileged {
            continue;
        }
        out.extend_from_slice(&n);
        out.push(0);
    }
    if size == 0 {
        return Ok(out.len() as u64);
    }
    if out.len() > size {
        return Err(if out.len() > XATTR_LIST_MAX && size >= XATTR_LIST_MAX {
            errno!(E2BIG)
        } else {
            errno!(ERANGE)
        });
    }
    task.copy_out(list, &out)?;
    Ok(out.len() as u64)
}

pub fn sys_listxattr(
    task: &mut Task,
    path: UserAddr,
    list: UserAddr,
    size: usize,
    follow: bool,
) -> Result<u64> {
    let target = xattr_path(task, path, follow)?;
    listxattr_target(task, &target, list, size)
}

pub fn sys_flistxattr(task: &mut Task, fd: i32, list: UserAddr, size: usize) -> Result<u64> {
    let (_, target) = fd_target(task, fd)?;
    listxattr_target(task, &target, list, size)
}

fn removexattr_target(task: &Task, target: &Target, name: &[u8]) -> Result<u64> {
    xattr_permission(task, target, name, true)?;
    let p = writable_place(target)?;
    p.inode().removexattr(name)?;
    notify::path_event(p, notify::IN_ATTRIB);
    Ok(0)
}

pub fn sys_removexattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    follow: bool,
) -> Result<u64> {
    let name = xattr_name(task, name)?;
    let target = xattr_path(task, path, follow)?;
    removexattr_target(task, &target, &name)
}

pub fn sys_fremovexattr(task: &mut Task, fd: i32, name: UserAddr) -> Result<u64> {
    let name = xattr_name(task, name)?;
    let (_, target) = fd_target(task, fd)?;
    removexattr_target(task, &target, &name)
}

// ---- handles, chroot ----

const AT_HANDLE_FID: i32 = 0x200;

/// No filesystem here exports file handles: `EOPNOTSUPP` once the path resolves.
pub fn sys_name_to_handle_at(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    _handle: UserAddr,
    _mount_id: UserAddr,
    flags: i32,
) -> Result<u64> {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH | AT_HANDLE_FID) != 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let follow = if flags & libc::AT_SYMLINK_FOLLOW != 0 {
        0
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    resolve_at(
        task,
        &ctx,
        dirfd,
        &path,
        follow | (flags & libc::AT_EMPTY_PATH),
    )?;
    Err(errno!(EOPNOTSUPP))
}

/// `chroot(2)`: a searchable directory becomes the root of later lookups (the working
/// directory stays where it is, as in Linux). Needs `CAP_SYS_CHROOT`.
pub fn sys_chroot(task: &mut Task, path: UserAddr) -> Result<u64> {
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let p = ctx.lookup(&ctx.cwd, &path, true)?;
    if !p.inode().is_dir() {
        return_errno!(ENOTDIR);
    }
    check_permission(&p.inode().stat()?, &creds(task), crate::vfs::MAY_EXEC)?;
    // capable(CAP_SYS_CHROOT): the effective set, which leaving euid 0 empties.
    const CAP_SYS_CHROOT: u32 = 18;
    if !task.creds.has_cap(CAP_SYS_CHROOT) {
        return_errno!(EPERM);
    }
    task.fs.lock().unwrap_or_else(|e| e.into_inner()).root = p;
    Ok(0)
}
