//! Namespace operations on top of the path walk: open, mkdir, unlink, rmdir, symlink,
//! link, rename, readlink, and `open_for_exec`. They take an [`FsContext`] snapshot (the
//! syscall layer clones it out of the lock) and the directory relative paths start from.

use super::file::{DirFile, FileDescription, OPathFile};
use super::inode::{check_permission, check_sticky, Creds, MAY_EXEC, MAY_READ, MAY_WRITE};
use super::mount::VfsPath;
use super::notify;
use super::path::{Last, Resolve, ResolveFlags};
use super::FsContext;
use crate::error::{Errno, Result};
use crate::kernel::Task;
use crate::mm::MappableFile;
use crate::{errno, return_errno};
use std::sync::Arc;

/// `struct open_how` after decoding: `open(2)` flags, creation mode, resolve flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenHow {
    pub flags: u32,
    pub mode: u32,
    pub resolve: ResolveFlags,
}

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
const RENAME_WHITEOUT: u32 = 4;

fn has(flags: u32, bit: i32) -> bool {
    flags & bit as u32 != 0
}

fn lookup_child(parent: &VfsPath, name: &[u8], ctx: &FsContext) -> Result<VfsPath> {
    let dentry = parent.dentry.lookup(name)?;
    Ok(ctx.vfs.follow_mounts(VfsPath {
        mount: parent.mount.clone(),
        dentry,
    }))
}

/// Like `lookup_child` but `None` for a name that does not exist.
fn try_child(parent: &VfsPath, name: &[u8], ctx: &FsContext) -> Result<Option<VfsPath>> {
    match lookup_child(parent, name, ctx) {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.errno == Errno::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

fn name_of(last: Last, otherwise: Errno) -> Result<Vec<u8>> {
    match last {
        Last::Name(n) => Ok(n),
        _ => Err(otherwise.into()),
    }
}

/// `file_remove_privs`: writing to or truncating a regular file without `CAP_FSETID`
/// clears its set-user-ID bit, and its set-group-ID bit when group-execute is set or the
/// writer is not in the file's group (`setattr_should_drop_suidgid`).
pub fn remove_privs(p: &VfsPath, creds: &Creds) -> Result<()> {
    let mode = p.inode().mode();
    if mode & libc::S_IFMT != libc::S_IFREG || mode & (libc::S_ISUID | libc::S_ISGID) == 0 {
        return Ok(());
    }
    if creds.has_cap(crate::kernel::creds::CAP_FSETID) {
        return Ok(());
    }
    let st = p.inode().stat()?;
    let old = st.mode & 0o7777;
    let mut m = old & !libc::S_ISUID;
    if m & libc::S_IXGRP != 0 || !creds.in_group(st.gid) {
        m &= !libc::S_ISGID;
    }
    if m != old {
        p.inode().set_mode(m)?;
        notify::path_event(p, notify::IN_ATTRIB);
    }
    Ok(())
}

/// Whether a `RENAME_EXCHANGE` moves the directory `new` to the other parent.
fn exchange_dir(new: &Option<VfsPath>, flags: u32) -> bool {
    flags & RENAME_EXCHANGE != 0 && new.as_ref().is_some_and(|n| n.inode().is_dir())
}

/// The credentials a new inode in `parent` is created with, and its permission bits:
/// in a set-group-ID directory it takes the directory's group (and a new directory the
/// set-group-ID bit too); a set-group-ID executable file there keeps the bit only for a
/// member of that group or with `CAP_FSETID` (`inode_init_owner`, `mode_strip_sgid`).
fn new_owner(parent: &VfsPath, creds: &Creds, mode: u32, is_dir: bool) -> Result<(Creds, u32)> {
    let st = parent.inode().stat()?;
    if st.mode & libc::S_ISGID == 0 {
        return Ok((creds.clone(), mode));
    }
    let owner = Creds {
        gid: st.gid,
        ..creds.clone()
    };
    let mut mode = mode;
    if is_dir {
        mode |= libc::S_ISGID;
    } else if mode & (libc::S_ISGID | libc::S_IXGRP) == libc::S_ISGID | libc::S_IXGRP
        && !creds.in_group(st.gid)
        && !creds.has_cap(crate::kernel::creds::CAP_FSETID)
    {
        mode &= !libc::S_ISGID;
    }
    Ok((owner, mode))
}

fn check_writable_mount(p: &VfsPath) -> Result<()> {
    if p.mount.is_read_only() {
        return_errno!(EROFS);
    }
    Ok(())
}

impl FsContext {
    /// A resolver for a path relative to `dir` (the dirfd's path or the cwd).
    pub fn resolver(&self, dir: &VfsPath, flags: ResolveFlags) -> Resolve<'_> {
        Resolve::new(&self.vfs, self.root.clone(), dir.clone(), flags)
    }

    /// Resolve `path` from `dir`.
    pub fn lookup(&self, dir: &VfsPath, path: &[u8], follow: bool) -> Result<VfsPath> {
        self.resolver(dir, ResolveFlags::default())
            .path(path, follow)
    }

    /// `openat2(2)`.
    pub fn open(
        &self,
        dir: &VfsPath,
        path: &[u8],
        how: &OpenHow,
        creds: &Creds,
    ) -> Result<Arc<dyn FileDescription>> {
        let flags = how.flags;
        if has(flags, libc::O_TMPFILE & !libc::O_DIRECTORY) {
            return_errno!(EOPNOTSUPP, "O_TMPFILE");
        }
        if has(flags, libc::O_CREAT) && has(flags, libc::O_DIRECTORY) {
            return_errno!(EINVAL);
        }
        let path_only = has(flags, libc::O_PATH);
        let nofollow = has(flags, libc::O_NOFOLLOW);
        let mut r = self.resolver(dir, how.resolve);
        let mut created = false;
        let target = if has(flags, libc::O_CREAT) && !path_only {
            let (mut parent, mut last, mut trailing) = r.parent(path)?;
            loop {
                let name = name_of(last, Errno::EISDIR)?;
                if trailing {
                    return_errno!(EISDIR);
                }
                match try_child(&parent, &name, self)? {
                    Some(child) => {
                        if has(flags, libc::O_EXCL) {
                            return_errno!(EEXIST);
                        }
                        if child.inode().is_symlink() {
                            if nofollow {
                                return_errno!(ELOOP);
                            }
                            if let Some(target) = r.follow_magic(&child) {
                                break target?;
                            }
                            // A dangling symlink is created through, as in Linux.
                            let target = r.read_symlink(&child)?;
                            (parent, last, trailing) = r.parent_from(parent, &target)?;
                            continue;
                        }
                        if child.inode().is_dir() {
                            return_errno!(EISDIR);
                        }
                        break child;
                    }
                    None => {
                        check_writable_mount(&parent)?;
                        check_permission(&parent.inode().stat()?, creds, MAY_WRITE | MAY_EXEC)?;
                        let mode = how.mode & 0o7777 & !self.umask;
                        let (owner, mode) = new_owner(&parent, creds, mode, false)?;
                        parent.inode().create(&name, mode, &owner)?;
                        notify::child_event(&parent, &name, notify::IN_CREATE, false, 0);
                        created = true;
                        break lookup_child(&parent, &name, self)?;
                    }
                }
            }
        } else {
            r.path(path, !nofollow)?
        };
        self.open_resolved(&target, flags, created, creds)
    }

    /// The checks and the open itself once the path is known.
    fn open_resolved(
        &self,
        target: &VfsPath,
        flags: u32,
        created: bool,
        creds: &Creds,
    ) -> Result<Arc<dyn FileDescription>> {
        let inode = target.inode();
        let st = inode.stat()?;
        let is_dir = st.is_dir();
        if has(flags, libc::O_DIRECTORY) && !is_dir {
            return_errno!(ENOTDIR);
        }
        if has(flags, libc::O_PATH) {
            return Ok(Arc::new(OPathFile::new(target.clone(), flags)));
        }
        if st.is_symlink() {
            // Only reachable with O_NOFOLLOW.
            return_errno!(ELOOP);
        }
        check_device_mount(target, st.mode)?;
        let acc = flags & libc::O_ACCMODE as u32;
        let wants_write = acc != libc::O_RDONLY as u32 || has(flags, libc::O_TRUNC);
        let wants_read = acc != libc::O_WRONLY as u32;
        if is_dir && wants_write {
            return_errno!(EISDIR);
        }
        if !created {
            let mut mask = 0;
            if wants_read {
                mask |= MAY_READ;
            }
            if wants_write {
                mask |= MAY_WRITE;
            }
            check_permission(&st, creds, mask)?;
        }
        // may_open: only the owner (or CAP_FOWNER) may ask not to update the access time.
        if has(flags, libc::O_NOATIME) && !creds.owns(&st) {
            return_errno!(EPERM);
        }
        if wants_write && (st.is_reg() || is_dir) {
            check_writable_mount(target)?;
        }
        if has(flags, libc::O_TRUNC) && st.is_reg() && !created {
            remove_privs(target, creds)?;
            inode.truncate(0)?;
            notify::path_event(target, notify::IN_MODIFY);
        }
        let file: Arc<dyn FileDescription> = if is_dir {
            Arc::new(DirFile::new(target.clone(), flags))
        } else {
            inode.clone().open(target, flags)?
        };
        notify::path_event(target, notify::IN_OPEN);
        Ok(file)
    }

    /// `mkdirat(2)`; `mode` before the umask.
    pub fn mkdir(&self, dir: &VfsPath, path: &[u8], mode: u32, creds: &Creds) -> Result<()> {
        let (parent, last, _) = self.resolver(dir, ResolveFlags::default()).parent(path)?;
        let name = name_of(last, Errno::EEXIST)?;
        if try_child(&parent, &name, self)?.is_some() {
            return_errno!(EEXIST);
        }
        check_writable_mount(&parent)?;
        check_permission(&parent.inode().stat()?, creds, MAY_WRITE | MAY_EXEC)?;
        let (owner, mode) = new_owner(&parent, creds, mode & 0o1777 & !self.umask, true)?;
        parent.inode().mkdir(&name, mode, &owner)?;
        notify::child_event(&parent, &name, notify::IN_CREATE, true, 0);
        Ok(())
    }

    /// `mknodat(2)`: a regular file, FIFO, socket or device node at `path`; `mode` holds
    /// the type and the permission bits before the umask. The caller checked the type;
    /// `may_mknod_dev` is `CAP_MKNOD`, which device nodes need (checked last, as Linux does).
    pub fn mknod(
        &self,
        dir: &VfsPath,
        path: &[u8],
        mode: u32,
        rdev: u64,
        creds: &Creds,
        may_mknod_dev: bool,
    ) -> Result<()> {
        let (parent, last, trailing) = self.resolver(dir, ResolveFlags::default()).parent(path)?;
        let name = name_of(last, Errno::EEXIST)?;
        if try_child(&parent, &name, self)?.is_some() {
            return_errno!(EEXIST);
        }
        if trailing {
            return_errno!(ENOENT);
        }
        check_writable_mount(&parent)?;
        check_permission(&parent.inode().stat()?, creds, MAY_WRITE | MAY_EXEC)?;
        let perm = mode & 0o7777 & !self.umask;
        let kind = mode & libc::S_IFMT;
        if matches!(kind, libc::S_IFCHR | libc::S_IFBLK) && !may_mknod_dev {
            return_errno!(EPERM);
        }
        let (owner, perm) = new_owner(&parent, creds, perm, false)?;
        if kind == libc::S_IFREG {
            parent.inode().create(&name, perm, &owner)?;
        } else {
            parent.inode().mknod(&name, kind | perm, rdev, &owner)?;
        }
        notify::child_event(&parent, &name, notify::IN_CREATE, false, 0);
        Ok(())
    }

    /// `unlinkat(2)` without `AT_REMOVEDIR`.
    pub fn unlink(&self, dir: &VfsPath, path: &[u8], creds: &Creds) -> Result<()> {
        let (parent, last, trailing) = self.resolver(dir, ResolveFlags::default()).parent(path)?;
        let name = name_of(last, Errno::EISDIR)?;
        check_writable_mount(&parent)?;
        let child = lookup_child(&parent, &name, self)?;
        if child.inode().is_dir() {
            return_errno!(EISDIR);
        }
        if trailing {
            return_errno!(ENOTDIR);
        }
        let parent_st = parent.inode().stat()?;
        check_permission(&parent_st, creds, MAY_WRITE | MAY_EXEC)?;
        check_sticky(&parent_st, &child.inode().stat()?, creds)?;
        if !Arc::ptr_eq(&child.mount, &parent.mount) {
            return_errno!(EBUSY, "mount point");
        }
        let links = notify::links_before(child.inode());
        parent.inode().unlink(&name)?;
        parent.dentry.remove_child(&name);
        // As d_delete_notify: the file's own events, then the directory's.
        notify::unlinked(&child, links);
        notify::child_event(&parent, &name, notify::IN_DELETE, false, 0);
        Ok(())
    }

    /// `rmdir(2)`.
    pub fn rmdir(&self, dir: &VfsPath, path: &[u8], creds: &Creds) -> Result<()> {
        let (parent, last, _) = self.resolver(dir, ResolveFlags::default()).parent(path)?;
        let name = match last {
            Last::Name(n) => n,
            Last::Dot => return_errno!(EINVAL),
            Last::DotDot => return_errno!(ENOTEMPTY),
            Last::Root => return_errno!(EBUSY),
        };
        check_writable_mount(&parent)?;
        let child = lookup_child(&parent, &name, self)?;
        if !Arc::ptr_eq(&child.mount, &parent.mount) {
            return_errno!(EBUSY, "mount point");
        }
        if !child.inode().is_dir() {
            return_errno!(ENOTDIR);
        }
        let parent_st = parent.inode().stat()?;
        check_permission(&parent_st, creds, MAY_WRITE | MAY_EXEC)?;
        check_sticky(&parent_st, &child.inode().stat()?, creds)?;
        parent.inode().rmdir(&name)?;
        parent.dentry.remove_child(&name);
        notify::inode_deleted(child.inode());
        notify::child_event(&parent, &name, notify::IN_DELETE, true, 0);
        Ok(())
    }

    /// `symlinkat(2)`: a symlink at `path` containing `target`.
    pub fn symlink(&self, target: &[u8], dir: &VfsPath, path: &[u8], creds: &Creds) -> Result<()> {
        if target.is_empty() {
            return_errno!(ENOENT);
        }
        let (parent, last, trailing) = self.resolver(dir, ResolveFlags::default()).parent(path)?;
        let name = name_of(last, Errno::EEXIST)?;
        if try_child(&parent, &name, self)?.is_some() {
            return_errno!(EEXIST);
        }
        if trailing {
            return_errno!(ENOENT);
        }
        check_writable_mount(&parent)?;
        check_permission(&parent.inode().stat()?, creds, MAY_WRITE | MAY_EXEC)?;
        let (owner, _) = new_owner(&parent, creds, 0o777, false)?;
        parent.inode().symlink(&name, target, &owner)?;
        notify::child_event(&parent, &name, notify::IN_CREATE, false, 0);
        Ok(())
    }

    /// `linkat(2)`: `old` must already be resolved (it may come from `AT_EMPTY_PATH`).
    pub fn link(&self, old: &VfsPath, dir: &VfsPath, path: &[u8], creds: &Creds) -> Result<()> {
        if old.inode().is_dir() {
            return_errno!(EPERM);
        }
        let (parent, last, trailing) = self.resolver(dir, ResolveFlags::default()).parent(path)?;
        let name = name_of(last, Errno::EEXIST)?;
        if try_child(&parent, &name, self)?.is_some() {
            return_errno!(EEXIST);
        }
        if trailing {
            return_errno!(ENOENT);
        }
        if !Arc::ptr_eq(&old.mount, &parent.mount) {
            return_errno!(EXDEV);
        }
        check_writable_mount(&parent)?;
        check_permission(&parent.inode().stat()?, creds, MAY_WRITE | MAY_EXEC)?;
        parent.inode().link(&name, old.inode())?;
        notify::inode_event(old.inode(), notify::IN_ATTRIB);
        notify::child_event(&parent, &name, notify::IN_CREATE, false, 0);
        Ok(())
    }

    /// `renameat2(2)`.
    pub fn rename(
        &self,
        old_dir: &VfsPath,
        old_path: &[u8],
        new_dir: &VfsPath,
        new_path: &[u8],
        flags: u32,
        creds: &Creds,
    ) -> Result<()> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
            || (flags & RENAME_NOREPLACE != 0 && flags & RENAME_EXCHANGE != 0)
        {
            return_errno!(EINVAL);
        }
        if flags & RENAME_WHITEOUT != 0 {
            return_errno!(EINVAL, "RENAME_WHITEOUT is for overlayfs");
        }
        let none = ResolveFlags::default();
        let (op, olast, otrail) = self.resolver(old_dir, none).parent(old_path)?;
        let (np, nlast, ntrail) = self.resolver(new_dir, none).parent(new_path)?;
        let oname = name_of(olast, Errno::EBUSY)?;
        let nname = match nlast {
            Last::Name(n) => n,
            _ if flags & RENAME_NOREPLACE != 0 => return_errno!(EEXIST),
            _ => return_errno!(EBUSY),
        };
        if !Arc::ptr_eq(&op.mount, &np.mount) {
            return_errno!(EXDEV);
        }
        check_writable_mount(&op)?;
        let old = lookup_child(&op, &oname, self)?;
        let old_is_dir = old.inode().is_dir();
        if (otrail || ntrail) && !old_is_dir {
            return_errno!(ENOTDIR);
        }
        let new = try_child(&np, &nname, self)?;
        if flags & RENAME_NOREPLACE != 0 && new.is_some() {
            return_errno!(EEXIST);
        }
        if flags & RENAME_EXCHANGE != 0 && new.is_none() {
            return_errno!(ENOENT);
        }
        // may_delete on the source, may_create or may_delete on the target: write and
        // search on both directories, the sticky rule for each name removed or replaced,
        // and write on a directory that changes parent (its `..` changes).
        let op_st = op.inode().stat()?;
        let np_st = np.inode().stat()?;
        check_permission(&op_st, creds, MAY_WRITE | MAY_EXEC)?;
        check_permission(&np_st, creds, MAY_WRITE | MAY_EXEC)?;
        let old_st = old.inode().stat()?;
        check_sticky(&op_st, &old_st, creds)?;
        if let Some(n) = &new {
            check_sticky(&np_st, &n.inode().stat()?, creds)?;
        }
        let moves_dir = !Arc::ptr_eq(&op.dentry, &np.dentry);
        if moves_dir && old_is_dir {
            check_permission(&old_st, creds, MAY_WRITE)?;
        }
        if moves_dir && exchange_dir(&new, flags) {
            if let Some(n) = &new {
                check_permission(&n.inode().stat()?, creds, MAY_WRITE)?;
            }
        }
        if old.is_mount_root() || new.as_ref().is_some_and(|n| n.is_mount_root()) {
            return_errno!(EBUSY);
        }
        if let Some(n) = &new {
            if Arc::ptr_eq(old.inode(), n.inode()) || old.same(n) {
                // Two names for one inode: POSIX says do nothing.
                return Ok(());
            }
            let new_is_dir = n.inode().is_dir();
            if flags & RENAME_EXCHANGE == 0 {
                if old_is_dir && !new_is_dir {
                    return_errno!(ENOTDIR);
                }
                if !old_is_dir && new_is_dir {
                    return_errno!(EISDIR);
                }
            } else if new_is_dir && op.dentry.is_descendant_of(&n.dentry) {
                return_errno!(EINVAL);
            }
        }
        if old_is_dir && np.dentry.is_descendant_of(&old.dentry) {
            return_errno!(EINVAL, "moving a directory below itself");
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        let replaced_links = match &new {
            Some(n) if !exchange => notify::links_before(n.inode()),
            _ => None,
        };
        op.inode().rename(&oname, np.inode(), &nname, flags)?;
        // Keep the dentry cache in step: the moved dentries keep their identity.
        let moved = op.dentry.forget_child(&oname);
        if flags & RENAME_EXCHANGE != 0 {
            let other = np.dentry.forget_child(&nname);
            if let Some(o) = other {
                op.dentry.adopt(&oname, o);
            }
        } else {
            np.dentry.remove_child(&nname);
        }
        if let Some(m) = moved {
            np.dentry.adopt(&nname, m);
        }
        // fsnotify_move: both names with one cookie, then the mover itself; a replaced file
        // goes last.
        let notify_move =
            |from: &VfsPath, fname: &[u8], to: &VfsPath, tname: &[u8], who: &VfsPath| {
                let cookie = notify::next_cookie();
                let dir = who.inode().is_dir();
                notify::child_event(from, fname, notify::IN_MOVED_FROM, dir, cookie);
                notify::child_event(to, tname, notify::IN_MOVED_TO, dir, cookie);
            };
        if notify::active() {
            notify_move(&op, &oname, &np, &nname, &old);
            notify::inode_event(old.inode(), notify::IN_MOVE_SELF);
            if let Some(n) = new {
                if exchange {
                    notify_move(&np, &nname, &op, &oname, &n);
                    notify::inode_event(n.inode(), notify::IN_MOVE_SELF);
                } else {
                    // The replaced file goes when its dentry is put, after the move.
                    notify::unlinked(&n, replaced_links);
                }
            }
        }
        Ok(())
    }

    /// `readlinkat(2)`: the target of the symlink at `path` (`EINVAL` if not a symlink).
    pub fn readlink(&self, dir: &VfsPath, path: &[u8]) -> Result<Vec<u8>> {
        let p = self.lookup(dir, path, false)?;
        if !p.inode().is_symlink() {
            return_errno!(EINVAL);
        }
        p.inode().readlink()
    }

    /// Open `path` for `execve`: a regular file with execute permission (`EACCES`).
    pub fn open_for_exec(&self, path: &[u8], creds: &Creds) -> Result<ExecFile> {
        let p = self.lookup(&self.cwd, path, true)?;
        let st = p.inode().stat()?;
        if !st.is_reg() {
            return_errno!(EACCES, "execve of a non-regular file");
        }
        check_permission(&st, creds, MAY_EXEC)?;
        if p.mount.flags().noexec {
            return_errno!(EACCES, "execve from a noexec mount");
        }
        let file = self.open_resolved(&p, libc::O_RDONLY as u32, false, creds)?;
        let mappable = file
            .mappable()
            .ok_or(errno!(EACCES, "file cannot be mapped"))?;
        Ok(ExecFile {
            file,
            mappable,
            path: p.path_from(&self.root),
        })
    }
}

/// `may_open_dev`: device nodes on a `nodev` mount cannot be opened.
pub fn check_device_mount(p: &VfsPath, mode: u32) -> Result<()> {
    let fmt = mode & libc::S_IFMT;
    if (fmt == libc::S_IFCHR || fmt == libc::S_IFBLK) && p.mount.flags().nodev {
        return_errno!(EACCES, "device node on a nodev mount");
    }
    Ok(())
}

/// A program opened for `execve` and the ELF loader.
pub struct ExecFile {
    pub file: Arc<dyn FileDescription>,
    pub mappable: Arc<dyn MappableFile>,
    /// The resolved absolute path (for `AT_EXECFN`-like uses and `/proc/self/exe`).
    pub path: Vec<u8>,
}

impl ExecFile {
    /// Read up to `buf.len()` bytes at `off`; fewer only at end of file.
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize> {
        self.mappable.read_at(buf, off)
    }

    pub fn mappable(&self) -> Arc<dyn MappableFile> {
        self.mappable.clone()
    }
}

/// `open_for_exec` for a task: its root, cwd and credentials.
pub fn open_for_exec(task: &Task, path: &[u8]) -> Result<ExecFile> {
    if path.is_empty() {
        return_errno!(ENOENT);
    }
    let ctx = task.fs.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ctx.open_for_exec(path, &task.creds.fs_creds())
}
