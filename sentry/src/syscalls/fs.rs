//! Path syscalls: open and friends, stat by path, access, readlink, the working
//! directory, umask, mkdir, unlink, rmdir, symlink, link, rename, statfs, truncate.
#![deny(unsafe_code)]

use super::file::{creds, files, fs_ctx, get_file, linux_statfs, LinuxStat};
use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::notify;
use crate::vfs::{
    check_permission, FdFlags, FileDescription, FsContext, OpenHow, ResolveFlags, Stat, VfsPath,
};
use crate::{errno, return_errno};
use std::sync::Arc;

/// The directory a `*at` path is relative to: the cwd for `AT_FDCWD`, else the dirfd's
/// path (`EBADF`, `ENOTDIR`). Absolute paths ignore `dirfd` entirely, as in Linux.
pub(super) fn dir_of(task: &Task, ctx: &FsContext, dirfd: i32, path: &[u8]) -> Result<VfsPath> {
    if path.first() == Some(&b'/') || dirfd == libc::AT_FDCWD {
        return Ok(ctx.cwd.clone());
    }
    let file = get_file(task, dirfd)?;
    let p = file.path().ok_or(errno!(ENOTDIR))?;
    if !path.is_empty() && !p.inode().is_dir() {
        return_errno!(ENOTDIR);
    }
    Ok(p)
}

/// What a `*at` call with `AT_EMPTY_PATH` may act on: a place or an open file without one
/// (a host stdio fd).
pub(super) enum Target {
    Path(VfsPath),
    File(Arc<dyn FileDescription>),
}

impl Target {
    pub(super) fn stat(&self) -> Result<Stat> {
        match self {
            Target::Path(p) => p.inode().stat(),
            Target::File(f) => f.stat(),
        }
    }
}

/// The `*at` calls that take only AT_SYMLINK_NOFOLLOW and AT_EMPTY_PATH (fchmodat2,
/// fchownat): check the flags, read the path, resolve it.
pub(super) fn resolve_at_user(
    task: &Task,
    dirfd: i32,
    path: UserAddr,
    flags: i32,
) -> Result<Target> {
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    resolve_at(task, &ctx, dirfd, &path, flags)
}

/// Resolve `(dirfd, path)` with `AT_EMPTY_PATH`/`AT_SYMLINK_NOFOLLOW` semantics.
pub(super) fn resolve_at(
    task: &Task,
    ctx: &FsContext,
    dirfd: i32,
    path: &[u8],
    flags: i32,
) -> Result<Target> {
    if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return_errno!(ENOENT);
        }
        if dirfd == libc::AT_FDCWD {
            return Ok(Target::Path(ctx.cwd.clone()));
        }
        let file = get_file(task, dirfd)?;
        return Ok(match file.path() {
            Some(p) => Target::Path(p),
            None => Target::File(file),
        });
    }
    let dir = dir_of(task, ctx, dirfd, path)?;
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    Ok(Target::Path(ctx.lookup(&dir, path, follow)?))
}

pub(super) fn read_path(task: &Task, addr: UserAddr) -> Result<Vec<u8>> {
    task.read_path(addr)
}

// ---- open ----

/// Flags `open` knows (Linux's `VALID_OPEN_FLAGS`); others are ignored by open/openat
/// and rejected by openat2.
const VALID_OPEN_FLAGS: u32 = (libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_ASYNC
    | libc::O_DIRECT
    | 0o100000 // O_LARGEFILE: 0 in the libc crate on x86_64, not in the kernel
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE) as u32;

fn do_open(task: &mut Task, dirfd: i32, path: UserAddr, how: OpenHow) -> Result<u64> {
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    if path.is_empty() {
        return_errno!(ENOENT);
    }
    // Under RESOLVE_BENEATH/IN_ROOT the dirfd is the root even for absolute paths.
    let scoped = how.resolve.has(ResolveFlags::BENEATH) || how.resolve.has(ResolveFlags::IN_ROOT);
    let dir = if scoped {
        dir_of(task, &ctx, dirfd, b".")?
    } else {
        dir_of(task, &ctx, dirfd, &path)?
    };
    let file = match ctx.open(&dir, &path, &how, &creds(task)) {
        // Filesystems cannot open FIFOs or terminal devices themselves (opening one may
        // wait for the other end, or depends on the caller): ENXIO sends us here.
        Err(e) if e.errno == crate::Errno::ENXIO => open_special(task, &ctx, &dir, &path, &how)?,
        other => other?,
    };
    crate::kernel::tty::opened(task, &*file, how.flags);
    let cloexec = how.flags & libc::O_CLOEXEC as u32 != 0;
    Ok(files(task).insert(file, FdFlags { cloexec })? as u64)
}

/// `open` of what a filesystem cannot open alone: a terminal device (`/dev/tty`,
/// `/dev/ptmx`) or a FIFO.
fn open_special(
    task: &Task,
    ctx: &FsContext,
    dir: &VfsPath,
    path: &[u8],
    how: &OpenHow,
) -> Result<Arc<dyn FileDescription>> {
    let follow = how.flags & libc::O_NOFOLLOW as u32 == 0;
    let p = ctx.lookup(dir, path, follow)?;
    match crate::fs::devpts::open_tty_device(task, ctx, &p, how.flags, &creds(task))? {
        Some(f) => Ok(f),
        None => open_fifo(task, ctx, dir, path, how),
    }
}

/// `open` of a FIFO: the pipe registry's rules of fifo(7), after the permission check.
fn open_fifo(
    task: &Task,
    ctx: &FsContext,
    dir: &VfsPath,
    path: &[u8],
    how: &OpenHow,
) -> Result<Arc<dyn FileDescription>> {
    let follow = how.flags & libc::O_NOFOLLOW as u32 == 0;
    let p = ctx.lookup(dir, path, follow)?;
    let st = p.inode().stat()?;
    if st.mode & libc::S_IFMT != libc::S_IFIFO {
        return_errno!(ENXIO);
    }
    let want = match how.flags & libc::O_ACCMODE as u32 {
        a if a == libc::O_RDONLY as u32 => crate::vfs::MAY_READ,
        a if a == libc::O_WRONLY as u32 => crate::vfs::MAY_WRITE,
        _ => crate::vfs::MAY_READ | crate::vfs::MAY_WRITE,
    };
    check_permission(&st, &creds(task), want)?;
    crate::fs::pipe::open_fifo(
        task,
        crate::fs::pipe::fifos(),
        (st.dev, st.ino),
        p,
        how.flags,
    )
}

/// open/openat: unknown flags are ignored, and the mode only matters when creating.
fn legacy_how(flags: i32, mode: u32) -> OpenHow {
    let flags = flags as u32 & VALID_OPEN_FLAGS;
    let creating = flags & libc::O_CREAT as u32 != 0
        || flags & libc::O_TMPFILE as u32 == libc::O_TMPFILE as u32;
    OpenHow {
        flags,
        mode: if creating { mode & 0o7777 } else { 0 },
        resolve: ResolveFlags(0),
    }
}

pub fn sys_open(task: &mut Task, path: UserAddr, flags: i32, mode: u32) -> Result<u64> {
    do_open(task, libc::AT_FDCWD, path, legacy_how(flags, mode))
}

pub fn sys_openat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    flags: i32,
    mode: u32,
) -> Result<u64> {
    do_open(task, dirfd, path, legacy_how(flags, mode))
}

pub fn sys_creat(task: &mut Task, path: UserAddr, mode: u32) -> Result<u64> {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    do_open(task, libc::AT_FDCWD, path, legacy_how(flags, mode))
}

/// `struct open_how`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct OpenHowRaw {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const OPEN_HOW_SIZE_VER0: usize = 24;

pub fn sys_openat2(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    how_ptr: UserAddr,
    size: usize,
) -> Result<u64> {
    if size < OPEN_HOW_SIZE_VER0 {
        return_errno!(EINVAL);
    }
    if size > 4096 {
        return_errno!(E2BIG);
    }
    let raw: OpenHowRaw = task.read_obj(how_ptr)?;
    // A larger struct from a newer libc is fine if the fields we do not know are zero
    // (`copy_struct_from_user`).
    if size > OPEN_HOW_SIZE_VER0 {
        let mut rest = vec![0u8; size - OPEN_HOW_SIZE_VER0];
        task.copy_in(how_ptr.offset(OPEN_HOW_SIZE_VER0 as u64)?, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return_errno!(E2BIG);
        }
    }
    let flags = u32::try_from(raw.flags).map_err(|_| errno!(EINVAL))?;
    if flags & !VALID_OPEN_FLAGS != 0 {
        return_errno!(EINVAL, "unknown open flags");
    }
    let creating = flags & libc::O_CREAT as u32 != 0
        || flags & libc::O_TMPFILE as u32 == libc::O_TMPFILE as u32;
    if raw.mode & !0o7777 != 0 || (!creating && raw.mode != 0) {
        return_errno!(EINVAL, "bad open_how.mode");
    }
    if raw.resolve & !ResolveFlags::ALL != 0 {
        return_errno!(EINVAL, "unknown resolve flags");
    }
    let resolve = ResolveFlags(raw.resolve);
    if resolve.has(ResolveFlags::BENEATH) && resolve.has(ResolveFlags::IN_ROOT) {
        return_errno!(EINVAL);
    }
    let path_ok = (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u32;
    if flags & libc::O_PATH as u32 != 0 && flags & !path_ok != 0 {
        return_errno!(EINVAL);
    }
    if resolve.has(ResolveFlags::CACHED) {
        // Lookups here may ask the gofer: never "cached only".
        return_errno!(EAGAIN);
    }
    let mode = u32::try_from(raw.mode).map_err(|_| errno!(EINVAL))?;
    do_open(
        task,
        dirfd,
        path,
        OpenHow {
            flags,
            mode,
            resolve,
        },
    )
}

// ---- stat ----

fn write_stat(task: &Task, buf: UserAddr, st: &Stat) -> Result<u64> {
    task.write_obj(buf, &LinuxStat::from(st))?;
    Ok(0)
}

pub fn sys_stat(task: &mut Task, path: UserAddr, buf: UserAddr) -> Result<u64> {
    sys_newfstatat(task, libc::AT_FDCWD, path, buf, 0)
}

pub fn sys_lstat(task: &mut Task, path: UserAddr, buf: UserAddr) -> Result<u64> {
    sys_newfstatat(task, libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW)
}

pub fn sys_newfstatat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    buf: UserAddr,
    flags: i32,
) -> Result<u64> {
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH | libc::AT_NO_AUTOMOUNT) != 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let st = resolve_at(task, &ctx, dirfd, &path, flags)?.stat()?;
    write_stat(task, buf, &st)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct StatxTimestamp {
    sec: i64,
    nsec: u32,
    reserved: i32,
}

/// `struct statx`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    spare0: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    atime: StatxTimestamp,
    btime: StatxTimestamp,
    ctime: StatxTimestamp,
    mtime: StatxTimestamp,
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    mnt_id: u64,
    dio_mem_align: u32,
    dio_offset_align: u32,
    spare3: [u64; 12],
}

/// `STATX_BASIC_STATS | STATX_MNT_ID`: what we fill (no birth time).
const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX_MNT_ID: u32 = 0x1000;
const STATX_RESERVED: u32 = 0x8000_0000;
const AT_STATX_SYNC_TYPE: i32 = 0x6000;

fn ts(t: crate::vfs::Timespec) -> StatxTimestamp {
    StatxTimestamp {
        sec: t.sec,
        nsec: t.nsec,
        reserved: 0,
    }
}

pub fn sys_statx(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    flags: i32,
    mask: u32,
    buf: UserAddr,
) -> Result<u64> {
    let allowed = libc::AT_SYMLINK_NOFOLLOW
        | libc::AT_EMPTY_PATH
        | libc::AT_NO_AUTOMOUNT
        | AT_STATX_SYNC_TYPE;
    if flags & !allowed != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return_errno!(EINVAL);
    }
    if mask & STATX_RESERVED != 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let target = resolve_at(task, &ctx, dirfd, &path, flags)?;
    let st = target.stat()?;
    let mnt_id = match &target {
        Target::Path(p) => p.mount.id,
        Target::File(_) => 0,
    };
    let (dev_major, dev_minor) = (
        crate::fs::dev::major(st.dev) as u32,
        crate::fs::dev::minor(st.dev) as u32,
    );
    let (rdev_major, rdev_minor) = (
        crate::fs::dev::major(st.rdev) as u32,
        crate::fs::dev::minor(st.rdev) as u32,
    );
    let sx = Statx {
        mask: STATX_BASIC_STATS | STATX_MNT_ID,
        blksize: st.blksize,
        nlink: u32::try_from(st.nlink).unwrap_or(u32::MAX),
        uid: st.uid,
        gid: st.gid,
        mode: (st.mode & 0xffff) as u16,
        ino: st.ino,
        size: st.size,
        blocks: st.blocks,
        atime: ts(st.atime),
        ctime: ts(st.ctime),
        mtime: ts(st.mtime),
        rdev_major,
        rdev_minor,
        dev_major,
        dev_minor,
        mnt_id,
        ..Statx::default()
    };
    task.write_obj(buf, &sx)?;
    Ok(0)
}

// ---- access ----

pub fn sys_access(task: &mut Task, path: UserAddr, mode: i32) -> Result<u64> {
    sys_faccessat2(task, libc::AT_FDCWD, path, mode, 0)
}

pub fn sys_faccessat(task: &mut Task, dirfd: i32, path: UserAddr, mode: i32) -> Result<u64> {
    sys_faccessat2(task, dirfd, path, mode, 0)
}

pub fn sys_faccessat2(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    mode: i32,
    flags: i32,
) -> Result<u64> {
    if mode & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0 {
        return_errno!(EINVAL);
    }
    if flags & !(libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    // access_override_creds: without AT_EACCESS the real ids decide, for the walk too,
    // with root's permitted capabilities for a real uid 0 and none otherwise.
    let mut c = creds(task);
    if flags & libc::AT_EACCESS == 0 {
        let real = &task.creds;
        c.uid = real.ruid;
        c.gid = real.rgid;
        c.caps = if real.ruid == 0 {
            real.cap_permitted
        } else {
            0
        };
    }
    let target = crate::vfs::with_creds(c.clone(), || resolve_at(task, &ctx, dirfd, &path, flags))?;
    let st = target.stat()?;
    if mode & libc::W_OK != 0 {
        if let Target::Path(p) = &target {
            if p.mount.is_read_only() && (st.is_reg() || st.is_dir() || st.is_symlink()) {
                return_errno!(EROFS);
            }
        }
    }
    // R_OK/W_OK/X_OK have the values of MAY_READ/MAY_WRITE/MAY_EXEC.
    check_permission(&st, &c, mode as u32)?;
    Ok(0)
}

// ---- readlink ----

pub fn sys_readlink(task: &mut Task, path: UserAddr, buf: UserAddr, size: i32) -> Result<u64> {
    sys_readlinkat(task, libc::AT_FDCWD, path, buf, size)
}

pub fn sys_readlinkat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    buf: UserAddr,
    size: i32,
) -> Result<u64> {
    if size <= 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let target = if path.is_empty() {
        // Linux reads the symlink an O_PATH dirfd names.
        match resolve_at(task, &ctx, dirfd, &path, libc::AT_EMPTY_PATH)? {
            Target::Path(p) if p.inode().is_symlink() => p.inode().readlink()?,
            _ => return_errno!(ENOENT),
        }
    } else {
        let dir = dir_of(task, &ctx, dirfd, &path)?;
        ctx.readlink(&dir, &path)?
    };
    let n = target.len().min(size as usize);
    task.copy_out(buf, target.get(..n).unwrap_or_default())?;
    Ok(n as u64)
}

// ---- working directory, umask ----

pub fn sys_getcwd(task: &mut Task, buf: UserAddr, size: usize) -> Result<u64> {
    let ctx = fs_ctx(task);
    if ctx.cwd.dentry.is_deleted() {
        return_errno!(ENOENT);
    }
    let mut path = ctx.cwd.path_from(&ctx.root);
    path.push(0);
    if path.len() > size {
        return_errno!(ERANGE);
    }
    task.copy_out(buf, &path)?;
    Ok(path.len() as u64)
}

fn set_cwd(task: &Task, p: VfsPath) -> Result<u64> {
    if !p.inode().is_dir() {
        return_errno!(ENOTDIR);
    }
    check_permission(&p.inode().stat()?, &creds(task), crate::vfs::MAY_EXEC)?;
    task.fs.lock().unwrap_or_else(|e| e.into_inner()).cwd = p;
    Ok(0)
}

pub fn sys_chdir(task: &mut Task, path: UserAddr) -> Result<u64> {
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let p = ctx.lookup(&ctx.cwd, &path, true)?;
    set_cwd(task, p)
}

pub fn sys_fchdir(task: &mut Task, fd: i32) -> Result<u64> {
    let p = get_file(task, fd)?.path().ok_or(errno!(ENOTDIR))?;
    set_cwd(task, p)
}

pub fn sys_umask(task: &mut Task, mask: u32) -> Result<u64> {
    let mut fs = task.fs.lock().unwrap_or_else(|e| e.into_inner());
    let old = fs.umask;
    fs.umask = mask & 0o777;
    Ok(u64::from(old))
}

// ---- namespace changes ----

pub fn sys_mkdir(task: &mut Task, path: UserAddr, mode: u32) -> Result<u64> {
    sys_mkdirat(task, libc::AT_FDCWD, path, mode)
}

pub fn sys_mkdirat(task: &mut Task, dirfd: i32, path: UserAddr, mode: u32) -> Result<u64> {
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    if path.is_empty() {
        return_errno!(ENOENT);
    }
    let dir = dir_of(task, &ctx, dirfd, &path)?;
    ctx.mkdir(&dir, &path, mode, &creds(task))?;
    Ok(0)
}

pub fn sys_unlink(task: &mut Task, path: UserAddr) -> Result<u64> {
    sys_unlinkat(task, libc::AT_FDCWD, path, 0)
}

pub fn sys_rmdir(task: &mut Task, path: UserAddr) -> Result<u64> {
    sys_unlinkat(task, libc::AT_FDCWD, path, libc::AT_REMOVEDIR)
}

pub fn sys_unlinkat(task: &mut Task, dirfd: i32, path: UserAddr, flags: i32) -> Result<u64> {
    if flags & !libc::AT_REMOVEDIR != 0 {
        return_errno!(EINVAL);
    }
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    if path.is_empty() {
        return_errno!(ENOENT);
    }
    let dir = dir_of(task, &ctx, dirfd, &path)?;
    if flags & libc::AT_REMOVEDIR != 0 {
        ctx.rmdir(&dir, &path, &creds(task))?;
    } else {
        ctx.unlink(&dir, &path, &creds(task))?;
    }
    Ok(0)
}

pub fn sys_symlink(task: &mut Task, target: UserAddr, linkpath: UserAddr) -> Result<u64> {
    sys_symlinkat(task, target, libc::AT_FDCWD, linkpath)
}

pub fn sys_symlinkat(
    task: &mut Task,
    target: UserAddr,
    dirfd: i32,
    linkpath: UserAddr,
) -> Result<u64> {
    let target = read_path(task, target)?;
    let path = read_path(task, linkpath)?;
    let ctx = fs_ctx(task);
    if path.is_empty() {
        return_errno!(ENOENT);
    }
    let dir = dir_of(task, &ctx, dirfd, &path)?;
    ctx.symlink(&target, &dir, &path, &creds(task))?;
    Ok(0)
}

pub fn sys_link(task: &mut Task, old: UserAddr, new: UserAddr) -> Result<u64> {
    sys_linkat(task, libc::AT_FDCWD, old, libc::AT_FDCWD, new, 0)
}

pub fn sys_linkat(
    task: &mut Task,
    olddirfd: i32,
    old: UserAddr,
    newdirfd: i32,
    new: UserAddr,
    flags: i32,
) -> Result<u64> {
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return_errno!(EINVAL);
    }
    let old = read_path(task, old)?;
    let new = read_path(task, new)?;
    let ctx = fs_ctx(task);
    // linkat follows a final symlink only with AT_SYMLINK_FOLLOW.
    let mut rflags = libc::AT_SYMLINK_NOFOLLOW;
    if flags & libc::AT_SYMLINK_FOLLOW != 0 {
        rflags = 0;
    }
    rflags |= flags & libc::AT_EMPTY_PATH;
    let old = match resolve_at(task, &ctx, olddirfd, &old, rflags)? {
        Target::Path(p) => p,
        Target::File(_) => return_errno!(EXDEV),
    };
    if new.is_empty() {
        return_errno!(ENOENT);
    }
    let dir = dir_of(task, &ctx, newdirfd, &new)?;
    ctx.link(&old, &dir, &new, &creds(task))?;
    Ok(0)
}

pub fn sys_rename(task: &mut Task, old: UserAddr, new: UserAddr) -> Result<u64> {
    sys_renameat2(task, libc::AT_FDCWD, old, libc::AT_FDCWD, new, 0)
}

pub fn sys_renameat(
    task: &mut Task,
    olddirfd: i32,
    old: UserAddr,
    newdirfd: i32,
    new: UserAddr,
) -> Result<u64> {
    sys_renameat2(task, olddirfd, old, newdirfd, new, 0)
}

pub fn sys_renameat2(
    task: &mut Task,
    olddirfd: i32,
    old: UserAddr,
    newdirfd: i32,
    new: UserAddr,
    flags: u32,
) -> Result<u64> {
    let old = read_path(task, old)?;
    let new = read_path(task, new)?;
    let ctx = fs_ctx(task);
    if old.is_empty() || new.is_empty() {
        return_errno!(ENOENT);
    }
    let odir = dir_of(task, &ctx, olddirfd, &old)?;
    let ndir = dir_of(task, &ctx, newdirfd, &new)?;
    ctx.rename(&odir, &old, &ndir, &new, flags, &creds(task))?;
    Ok(0)
}

// ---- statfs, truncate ----

pub fn sys_statfs(task: &mut Task, path: UserAddr, buf: UserAddr) -> Result<u64> {
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let p = ctx.lookup(&ctx.cwd, &path, true)?;
    let s = p.inode().statfs()?;
    task.write_obj(buf, &linux_statfs(&s, Some(&p)))?;
    Ok(0)
}

pub fn sys_truncate(task: &mut Task, path: UserAddr, length: i64) -> Result<u64> {
    let len = u64::try_from(length).map_err(|_| errno!(EINVAL))?;
    let path = read_path(task, path)?;
    let ctx = fs_ctx(task);
    let p = ctx.lookup(&ctx.cwd, &path, true)?;
    let st = p.inode().stat()?;
    if st.is_dir() {
        return_errno!(EISDIR);
    }
    if !st.is_reg() {
        return_errno!(EINVAL);
    }
    if p.mount.is_read_only() {
        return_errno!(EROFS);
    }
    check_permission(&st, &creds(task), crate::vfs::MAY_WRITE)?;
    super::file::remove_privs(task, &p)?;
    p.inode().truncate(len)?;
    notify::path_event(&p, notify::IN_MODIFY);
    Ok(0)
}

// ---- chmod ----

/// Change a file's mode: the owner may, or `CAP_FOWNER`; a read-only mount refuses.
fn chmod_target(task: &Task, target: &Target, mode: u32) -> Result<u64> {
    let Target::Path(p) = target else {
        return_errno!(EPERM)
    };
    if p.mount.is_read_only() {
        return_errno!(EROFS);
    }
    let st = p.inode().stat()?;
    let c = creds(task);
    if !c.owns(&st) {
        return_errno!(EPERM);
    }
    let mut mode = mode & 0o7777;
    // Linux drops set-group-ID when the caller is not in the file's group and lacks
    // CAP_FSETID (chmod(2)).
    if !c.in_group(st.gid) && !c.has_cap(crate::kernel::creds::CAP_FSETID) {
        mode &= !libc::S_ISGID;
    }
    p.inode().set_mode(mode)?;
    notify::path_event(p, notify::IN_ATTRIB);
    Ok(0)
}

pub fn sys_chmod(task: &mut Task, path: UserAddr, mode: u32) -> Result<u64> {
    sys_fchmodat2(task, libc::AT_FDCWD, path, mode, 0)
}

pub fn sys_fchmodat(task: &mut Task, dirfd: i32, path: UserAddr, mode: u32) -> Result<u64> {
    sys_fchmodat2(task, dirfd, path, mode, 0)
}

pub fn sys_fchmodat2(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    mode: u32,
    flags: i32,
) -> Result<u64> {
    let target = resolve_at_user(task, dirfd, path, flags)?;
    if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
        if let Target::Path(p) = &target {
            if p.inode().is_symlink() {
                // Linux cannot change a symlink's mode.
                return_errno!(EOPNOTSUPP);
            }
        }
    }
    chmod_target(task, &target, mode)
}

pub fn sys_fchmod(task: &mut Task, fd: i32, mode: u32) -> Result<u64> {
    let (_, target) = super::fs_extra::fd_target(task, fd)?;
    chmod_target(task, &target, mode)
}
