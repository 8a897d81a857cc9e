//! overlay: a writable filesystem made of a read-only lower layer (the gofer's root) and an
//! upper tmpfs in sentry memory, behaving as Linux's overlayfs does for an application.
//!
//! - An object lives in the upper layer, the lower one, or both (a directory merged from
//!   both, or a file copied up). Reads go to the upper layer when there is one.
//! - Any change to a lower object first *copies it up*: its parents, then the object itself
//!   (data, mode, owner, times, xattrs) are recreated in the upper tmpfs.
//! - Removing a name the lower layer has leaves a *whiteout* in the directory; creating a
//!   name again over a whiteout makes the new object *replace* the lower one, which for a
//!   directory means it is opaque (the lower directory's entries stay hidden).
//! - Inode numbers are the lower object's for anything that came from the lower layer (so
//!   they survive copy-up), and the upper tmpfs number with the top bit set otherwise. Every
//!   object reports the overlay's own device number.
//! - Renaming a directory that has lower content is `EXDEV`, as in overlayfs without
//!   `redirect_dir`; `mv` falls back to copying.
//!
//! Whiteouts and opaque markers are kept in the overlay's directory objects rather than as
//! `0/0` character devices in the upper layer: the upper tmpfs is private to the overlay,
//! and every directory object stays cached (like the VFS dentries above it) while it exists.
//! One lock serializes lookups, copy-up and namespace changes; data I/O does not take it.
#![deny(unsafe_code)]

use crate::error::{Errno, Result};
use crate::fs::tmpfs::{Tmpfs, TmpfsInode};
use crate::kernel::Task;
use crate::mm::{MappableFile, MemoryFile, UserAddr};
use crate::vfs::{
    anon_dev, Creds, Dentry, DirEntry, DirentSink, FileDescription, Inode, Mount, Stat, StatFs,
    Timespec, VfsPath,
};
use crate::{errno, return_errno};
use std::any::Any;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// `f_type` of an overlay (`OVERLAYFS_SUPER_MAGIC`).
pub const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
/// Set in the inode number of objects created in the upper layer.
const UPPER_INO_BIT: u64 = 1 << 63;
/// Bytes copied per step of a copy-up.
const COPY_CHUNK: usize = 1 << 20;

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn absent_ok<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.errno == Errno::ENOENT || e.errno == Errno::ENOTDIR => Ok(None),
        Err(e) => Err(e),
    }
}

fn to_tmpfs(i: Arc<dyn Inode>) -> Result<Arc<TmpfsInode>> {
    i.as_any_arc()
        .downcast::<TmpfsInode>()
        .map_err(|_| errno!(EIO, "overlay upper layer is not tmpfs"))
}

/// One overlay instance (a superblock).
pub struct OverlayFs {
    dev: u64,
    /// Serializes lookups, copy-up and namespace changes.
    ns: Mutex<()>,
    /// Upper tmpfs inode number → overlay inode number, for copied-up objects (so that
    /// `readdir` reports the same `d_ino` as `stat`).
    origins: Mutex<HashMap<u64, u64>>,
    /// Mounts that exist only to give files opened on a layer a place (`VfsPath`); the
    /// overlay's files report the overlay path instead.
    lower_mount: Arc<Mount>,
    upper_mount: Arc<Mount>,
}

#[derive(Default)]
struct DirState {
    /// Every child looked up or created so far, kept while it exists.
    children: HashMap<Vec<u8>, Arc<OverlayInode>>,
    /// Lower names removed in the overlay.
    whiteouts: BTreeSet<Vec<u8>>,
    /// Names whose upper object replaced a removed lower one: the lower one is not merged.
    replaced: BTreeSet<Vec<u8>>,
}

pub struct OverlayInode {
    fs: Arc<OverlayFs>,
    me: Weak<OverlayInode>,
    ino: u64,
    /// The lower object this one came from (`None` for objects made in the overlay and for
    /// opaque directories).
    lower: Option<Arc<dyn Inode>>,
    upper: Mutex<Option<Arc<TmpfsInode>>>,
    /// Where the object is, for copying its parents up; `None` for the root.
    parent: Mutex<Option<(Arc<OverlayInode>, Vec<u8>)>>,
    dir: Mutex<DirState>,
}

impl OverlayFs {
    /// An overlay over `lower` with a fresh upper tmpfs keeping its data in `mf`; returns
    /// its root directory.
    pub fn new_root(lower: Arc<dyn Inode>, mf: &Arc<MemoryFile>) -> Result<Arc<OverlayInode>> {
        let st = lower.stat()?;
        if !st.is_dir() {
            return_errno!(ENOTDIR);
        }
        let upper = Tmpfs::new_root(mf, st.mode & 0o7777);
        upper.set_owner(Some(st.uid), Some(st.gid), None)?;
        upper.set_times(Some(st.atime), Some(st.mtime))?;
        let layer_mount = |root: Arc<dyn Inode>| {
            Arc::new(Mount::new(
                0,
                "overlay-layer",
                Dentry::new_root(root),
                None,
                true,
            ))
        };
        let fs = Arc::new(OverlayFs {
            dev: anon_dev(),
            ns: Mutex::new(()),
            origins: Mutex::new(HashMap::new()),
            lower_mount: layer_mount(lower.clone()),
            upper_mount: layer_mount(upper.clone()),
        });
        lock(&fs.origins).insert(upper.stat()?.ino, st.ino);
        Ok(OverlayInode::new(
            &fs,
            st.ino,
            Some(lower),
            Some(upper),
            None,
        ))
    }

    fn layer_path(&self, inode: Arc<dyn Inode>, upper: bool) -> VfsPath {
        VfsPath {
            mount: if upper {
                self.upper_mount.clone()
            } else {
                self.lower_mount.clone()
            },
            dentry: Dentry::new_root(inode),
        }
    }

    fn upper_ino(&self, upper_ino: u64) -> u64 {
        lock(&self.origins)
            .get(&upper_ino)
            .copied()
            .unwrap_or(upper_ino | UPPER_INO_BIT)
    }
}

impl OverlayInode {
    fn new(
        fs: &Arc<OverlayFs>,
        ino: u64,
        lower: Option<Arc<dyn Inode>>,
        upper: Option<Arc<TmpfsInode>>,
        parent: Option<(Arc<OverlayInode>, Vec<u8>)>,
    ) -> Arc<OverlayInode> {
        Arc::new_cyclic(|me| OverlayInode {
            fs: fs.clone(),
            me: me.clone(),
            ino,
            lower,
            upper: Mutex::new(upper),
            parent: Mutex::new(parent),
            dir: Mutex::new(DirState::default()),
        })
    }

    fn arc(&self) -> Result<Arc<OverlayInode>> {
        self.me.upgrade().ok_or(errno!(EIO))
    }

    fn upper(&self) -> Option<Arc<TmpfsInode>> {
        lock(&self.upper).clone()
    }

    /// The layer that answers reads: the upper one if the object has been copied up.
    fn top(&self) -> Result<Arc<dyn Inode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        self.lower.clone().ok_or(errno!(EIO))
    }

    /// Whether this object is in the upper layer (for tests and diagnostics).
    pub fn is_upper(&self) -> bool {
        self.upper().is_some()
    }

    fn lower_has(&self, name: &[u8]) -> Result<bool> {
        match &self.lower {
            Some(l) => Ok(absent_ok(l.lookup(name))?.is_some()),
            None => Ok(false),
        }
    }

    fn lookup_locked(&self, name: &[u8]) -> Result<Arc<OverlayInode>> {
        if !self.is_dir() {
            return_errno!(ENOTDIR);
        }
        let replaced = {
            let d = lock(&self.dir);
            if let Some(c) = d.children.get(name) {
                return Ok(c.clone());
            }
            if d.whiteouts.contains(name) {
                return_errno!(ENOENT);
            }
            d.replaced.contains(name)
        };
        let upper = match self.upper() {
            Some(u) => absent_ok(u.lookup(name))?.map(to_tmpfs).transpose()?,
            None => None,
        };
        let upper_is_dir = upper.as_ref().map(|u| u.is_dir());
        let lower = match (&self.lower, upper_is_dir) {
            (Some(l), None | Some(true)) if !replaced => absent_ok(l.lookup(name))?
                // Only directories merge; an upper directory hides a lower file.
                .filter(|l| upper_is_dir.is_none() || l.is_dir()),
            _ => None,
        };
        let ino = match (&lower, &upper) {
            (Some(l), _) => l.stat()?.ino,
            (None, Some(u)) => self.fs.upper_ino(u.stat()?.ino),
            (None, None) => return_errno!(ENOENT),
        };
        let child = OverlayInode::new(
            &self.fs,
            ino,
            lower,
            upper,
            Some((self.arc()?, name.to_vec())),
        );
        lock(&self.dir)
            .children
            .insert(name.to_vec(), child.clone());
        Ok(child)
    }

    /// The merged listing (without `.` and `..`).
    fn readdir_locked(&self) -> Result<Vec<DirEntry>> {
        if !self.is_dir() {
            return_errno!(ENOTDIR);
        }
        let d = lock(&self.dir);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        if let Some(u) = self.upper() {
            for e in u.readdir()? {
                let ino = match d.children.get(&e.name) {
                    Some(c) => c.ino,
                    None => self.fs.upper_ino(e.ino),
                };
                seen.insert(e.name.clone());
                out.push(DirEntry { ino, ..e });
            }
        }
        if let Some(l) = &self.lower {
            for e in l.readdir()? {
                if seen.contains(&e.name)
                    || d.whiteouts.contains(&e.name)
                    || d.replaced.contains(&e.name)
                {
                    continue;
                }
                let ino = d.children.get(&e.name).map_or(e.ino, |c| c.ino);
                out.push(DirEntry { ino, ..e });
            }
        }
        Ok(out)
    }

    /// Copy this object (and its parents) to the upper layer if it is not there yet;
    /// returns its upper inode. The caller holds the namespace lock.
    fn copy_up_locked(&self) -> Result<Arc<TmpfsInode>> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let (parent, name) = lock(&self.parent).clone().ok_or(errno!(EIO))?;
        let pu = parent.copy_up_locked()?;
        let lower = self.lower.clone().ok_or(errno!(EIO))?;
        let st = lower.stat()?;
        let perm = st.mode & 0o7777;
        let owner = Creds {
            uid: st.uid,
            gid: st.gid,
            ..Creds::root()
        };
        let new = match st.file_type() {
            libc::S_IFDIR => pu.mkdir(&name, perm, &owner)?,
            libc::S_IFLNK => pu.symlink(&name, &lower.readlink()?, &owner)?,
            libc::S_IFREG => {
                let f = to_tmpfs(pu.create(&name, perm, &owner)?)?;
                if let Err(e) = self.copy_data(&lower, &f) {
                    let _ = pu.unlink(&name);
                    return Err(e);
                }
                f
            }
            _ => pu.mknod(&name, st.mode, st.rdev, &owner)?,
        };
        let new = to_tmpfs(new)?;
        for x in lower.listxattr()? {
            new.setxattr(&x, &lower.getxattr(&x)?, 0)?;
        }
        new.set_owner(None, None, Some(perm))?;
        new.set_times(Some(st.atime), Some(st.mtime))?;
        lock(&self.fs.origins).insert(new.stat()?.ino, self.ino);
        *lock(&self.upper) = Some(new.clone());
        Ok(new)
    }

    fn copy_data(&self, lower: &Arc<dyn Inode>, to: &TmpfsInode) -> Result<()> {
        let path = self.fs.layer_path(lower.clone(), false);
        let file = lower.clone().open(&path, libc::O_RDONLY as u32)?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut off = 0u64;
        loop {
            let n = file.read(&mut buf, Some(off))?;
            if n == 0 {
                return Ok(());
            }
            to.write_at(buf.get(..n).ok_or(errno!(EIO))?, off)?;
            off = off.checked_add(n as u64).ok_or(errno!(EFBIG))?;
        }
    }

    /// Lock the namespace and copy up: the upper inode to change.
    fn for_change(&self) -> Result<Arc<TmpfsInode>> {
        let _ns = lock(&self.fs.ns);
        self.copy_up_locked()
    }

    /// A new upper object `name` made by `make` in this directory's upper layer.
    fn create_with(
        &self,
        name: &[u8],
        make: impl FnOnce(&TmpfsInode) -> Result<Arc<dyn Inode>>,
    ) -> Result<Arc<dyn Inode>> {
        let _ns = lock(&self.fs.ns);
        let pu = self.copy_up_locked()?;
        let up = to_tmpfs(make(&pu)?)?;
        let ino = up.stat()?.ino | UPPER_INO_BIT;
        Ok(self.place(name, ino, up)?)
    }

    /// Record a new upper object under `name`.
    fn place(&self, name: &[u8], ino: u64, up: Arc<TmpfsInode>) -> Result<Arc<OverlayInode>> {
        let child = OverlayInode::new(
            &self.fs,
            ino,
            None,
            Some(up),
            Some((self.arc()?, name.to_vec())),
        );
        let mut d = lock(&self.dir);
        if d.whiteouts.remove(name) {
            d.replaced.insert(name.to_vec());
        }
        d.children.insert(name.to_vec(), child.clone());
        Ok(child)
    }

    /// `name` is gone from the overlay: forget it and hide the lower one, if any.
    fn hide(&self, name: &[u8]) -> Result<()> {
        let lower = self.lower_has(name)?;
        let mut d = lock(&self.dir);
        d.children.remove(name);
        d.replaced.remove(name);
        if lower {
            d.whiteouts.insert(name.to_vec());
        }
        Ok(())
    }

    /// An upper object was moved to `name`: it replaces any lower one.
    fn arrive(&self, name: &[u8], child: Arc<OverlayInode>) -> Result<()> {
        let lower = self.lower_has(name)?;
        *lock(&child.parent) = Some((self.arc()?, name.to_vec()));
        let mut d = lock(&self.dir);
        d.whiteouts.remove(name);
        if lower {
            d.replaced.insert(name.to_vec());
        }
        d.children.insert(name.to_vec(), child);
        Ok(())
    }
}

fn downcast(inode: &Arc<dyn Inode>) -> Result<Arc<OverlayInode>> {
    inode
        .clone()
        .as_any_arc()
        .downcast::<OverlayInode>()
        .map_err(|_| errno!(EXDEV))
}

impl Inode for OverlayInode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        let st = self.top()?.stat()?;
        Ok(Stat {
            dev: self.fs.dev,
            ino: self.ino,
            ..st
        })
    }

    fn mode(&self) -> u32 {
        self.top().map(|t| t.mode()).unwrap_or(0)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        let _ns = lock(&self.fs.ns);
        Ok(self.lookup_locked(name)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>> {
        let _ns = lock(&self.fs.ns);
        self.readdir_locked()
    }

    fn readlink(&self) -> Result<Vec<u8>> {
        self.top()?.readlink()
    }

    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        let acc = flags & libc::O_ACCMODE as u32;
        let writes = acc != libc::O_RDONLY as u32 || flags & libc::O_TRUNC as u32 != 0;
        let (inner, in_upper): (Arc<dyn Inode>, bool) =
            if writes && self.mode() & libc::S_IFMT == libc::S_IFREG {
                (self.for_change()?, true)
            } else {
                match self.upper() {
                    Some(u) => (u, true),
                    None => (self.lower.clone().ok_or(errno!(EIO))?, false),
                }
            };
        let inner_path = self.fs.layer_path(inner.clone(), in_upper);
        let file = inner.open(&inner_path, flags)?;
        Ok(Arc::new(OverlayFile {
            inode: self,
            path: path.clone(),
            inner: file,
        }))
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.create_with(name, |pu| pu.create(name, mode, creds))
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.create_with(name, |pu| pu.mkdir(name, mode, creds))
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.create_with(name, |pu| pu.symlink(name, target, creds))
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.create_with(name, |pu| pu.mknod(name, mode, rdev, creds))
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<()> {
        let t = downcast(target)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return_errno!(EXDEV);
        }
        let _ns = lock(&self.fs.ns);
        let tu = t.copy_up_locked()?;
        let pu = self.copy_up_locked()?;
        let tu_dyn: Arc<dyn Inode> = tu.clone();
        pu.link(name, &tu_dyn)?;
        self.place(name, t.ino, tu)?;
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<()> {
        let _ns = lock(&self.fs.ns);
        let child = self.lookup_locked(name)?;
        if child.is_dir() {
            return_errno!(EISDIR);
        }
        if child.upper().is_some() {
            self.upper().ok_or(errno!(EIO))?.unlink(name)?;
        }
        self.hide(name)
    }

    fn rmdir(&self, name: &[u8]) -> Result<()> {
        let _ns = lock(&self.fs.ns);
        let child = self.lookup_locked(name)?;
        if !child.is_dir() {
            return_errno!(ENOTDIR);
        }
        if !child.readdir_locked()?.is_empty() {
            return_errno!(ENOTEMPTY);
        }
        if child.upper().is_some() {
            self.upper().ok_or(errno!(EIO))?.rmdir(name)?;
        }
        self.hide(name)
    }

    fn rename(
        &self,
        old_name: &[u8],
        new_dir: &Arc<dyn Inode>,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()> {
        let nd = downcast(new_dir)?;
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return_errno!(EXDEV);
        }
        let _ns = lock(&self.fs.ns);
        let src = self.lookup_locked(old_name)?;
        let dst = absent_ok(nd.lookup_locked(new_name))?;
        if let Some(d) = &dst {
            if Arc::ptr_eq(d, &src) {
                return Ok(());
            }
        }
        // Directories with lower content cannot move (overlayfs without redirect_dir).
        if src.is_dir() && src.lower.is_some() {
            return_errno!(EXDEV, "renaming a lower directory");
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        match &dst {
            Some(d) if exchange && d.is_dir() && d.lower.is_some() => {
                return_errno!(EXDEV, "renaming a lower directory")
            }
            Some(d) if !exchange && d.is_dir() && !d.readdir_locked()?.is_empty() => {
                return_errno!(ENOTEMPTY)
            }
            None if exchange => return_errno!(ENOENT),
            _ => {}
        }
        src.copy_up_locked()?;
        if exchange {
            if let Some(d) = &dst {
                d.copy_up_locked()?;
            }
        }
        let ou = self.copy_up_locked()?;
        let nu: Arc<dyn Inode> = nd.copy_up_locked()?;
        ou.rename(
            old_name,
            &nu,
            new_name,
            flags & (RENAME_NOREPLACE | RENAME_EXCHANGE),
        )?;
        lock(&self.dir).children.remove(old_name);
        lock(&nd.dir).children.remove(new_name);
        match (exchange, dst) {
            (true, Some(d)) => self.arrive(old_name, d)?,
            _ => self.hide(old_name)?,
        }
        nd.arrive(new_name, src)
    }

    fn set_mode(&self, mode: u32) -> Result<()> {
        self.for_change()?.set_mode(mode)
    }

    fn truncate(&self, size: u64) -> Result<()> {
        self.for_change()?.truncate(size)
    }

    fn statfs(&self) -> Result<StatFs> {
        let upper = match self.upper() {
            Some(u) => u.statfs()?,
            None => self.fs.upper_mount.root.inode().statfs()?,
        };
        Ok(StatFs {
            fs_type: OVERLAYFS_SUPER_MAGIC,
            ..upper
        })
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>, new_mode: Option<u32>) -> Result<()> {
        self.for_change()?.set_owner(uid, gid, new_mode)
    }

    fn set_times(&self, atime: Option<Timespec>, mtime: Option<Timespec>) -> Result<()> {
        self.for_change()?.set_times(atime, mtime)
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<()> {
        self.for_change()?.fallocate(mode, offset, len)
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>> {
        self.top()?.getxattr(name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.for_change()?.setxattr(name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>> {
        self.top()?.listxattr()
    }

    fn removexattr(&self, name: &[u8]) -> Result<()> {
        // Nothing to copy up for an attribute that is not there.
        if let (None, Some(l)) = (self.upper(), &self.lower) {
            l.getxattr(name)?;
        }
        self.for_change()?.removexattr(name)
    }
}

/// An open overlay file: the layer's own description, reporting the overlay's attributes
/// and place. A file opened for reading before a copy-up keeps reading the lower layer, as
/// in overlayfs.
pub struct OverlayFile {
    inode: Arc<OverlayInode>,
    path: VfsPath,
    inner: Arc<dyn FileDescription>,
}

impl FileDescription for OverlayFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        self.inner.read(buf, offset)
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        self.inner.write(buf, offset)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        self.inner.seek(offset, whence)
    }

    fn stat(&self) -> Result<Stat> {
        self.inode.stat()
    }

    fn statfs(&self) -> Result<StatFs> {
        self.inode.statfs()
    }

    fn getdents(&self, sink: &mut DirentSink) -> Result<()> {
        self.inner.getdents(sink)
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        self.inner.ioctl(task, cmd, arg)
    }

    fn status_flags(&self) -> u32 {
        self.inner.status_flags()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.inner.set_status_flags(flags)
    }

    fn mappable(&self) -> Option<Arc<dyn MappableFile>> {
        self.inner.mappable()
    }

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }

    fn discards_writes(&self) -> bool {
        self.inner.discards_writes()
    }

    fn truncate(&self, size: u64) -> Result<()> {
        self.inner.truncate(size)
    }
}

#[cfg(test)]
mod tests;
