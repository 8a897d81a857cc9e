//! tmpfs: files, directories, symlinks and device nodes that live in sentry memory.
//!
//! A regular file's data lives in a [`PageCache`] in the sandbox's MemoryFile: `MAP_SHARED`
//! mappings map those very pages, so stores through a mapping and `write(2)` see each
//! other, and the memory is the sandbox's like the rest of the application's.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::Task;
use crate::mm::{MappableFile, MemoryFile, PageCache, UserAddr};
use crate::vfs::{
    anon_dev, Creds, DirEntry, FileDescription, FileState, Inode, Stat, StatFs, Timespec, VfsPath,
};
use crate::{errno, return_errno};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub mod memfd;
use std::sync::{Arc, Mutex, MutexGuard};

pub const TMPFS_MAGIC: i64 = 0x0102_1994;
/// Largest tmpfs file (`EFBIG` beyond).
pub const MAX_FILE_SIZE: u64 = 1 << 32;
/// Default size limit of one tmpfs instance (`ENOSPC` beyond).
pub const DEFAULT_SIZE_LIMIT: u64 = 1 << 33;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One tmpfs instance (a superblock).
pub struct Tmpfs {
    dev: u64,
    /// Where file data lives.
    mf: Arc<MemoryFile>,
    next_ino: AtomicU64,
    /// Bytes of file data in use, against `size_limit`.
    used: AtomicU64,
    size_limit: u64,
    /// Serializes namespace changes (create, unlink, rename…) so that operations touching
    /// two directories cannot deadlock; lookups and data I/O do not take it.
    namespace: Mutex<()>,
}

struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

enum Kind {
    Dir(Mutex<BTreeMap<Vec<u8>, Arc<TmpfsInode>>>),
    File(FileData),
    Symlink(Vec<u8>),
    /// A character or block device node; opening it asks `fs::dev` for the driver.
    Device(u64),
}

/// A regular file's bytes. `io` serializes the calls that change the size (writes,
/// truncation), so that an append and the size accounting see one size; reads and stores
/// through mappings go straight to the cache.
struct FileData {
    io: Mutex<()>,
    cache: Arc<PageCache>,
    /// File seals (`F_ADD_SEALS`, see [`memfd`]). Changed under `io`, so a write or a
    /// truncation sees one set for its whole length. Files not made by `memfd_create`
    /// carry `F_SEAL_SEAL` from the start, as in Linux's shmem.
    seals: AtomicU32,
}

impl FileData {
    fn new(mf: &Arc<MemoryFile>) -> FileData {
        FileData {
            io: Mutex::new(()),
            cache: Arc::new(PageCache::new(mf.clone())),
            seals: AtomicU32::new(memfd::F_SEAL_SEAL),
        }
    }

    fn seals(&self) -> u32 {
        self.seals.load(Ordering::Relaxed)
    }
}

pub struct TmpfsInode {
    fs: Arc<Tmpfs>,
    ino: u64,
    meta: Mutex<Meta>,
    kind: Kind,
    /// Extended attributes by full name (`user.x`, `trusted.y`).
    xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// Most bytes of names and values one inode's extended attributes may hold (`ENOSPC`).
pub const XATTR_BYTES_PER_INODE: usize = 1 << 20;

impl Tmpfs {
    /// A new, empty tmpfs keeping its files' data in `mf`; returns its root directory with
    /// permission bits `mode`.
    pub fn new_root(mf: &Arc<MemoryFile>, mode: u32) -> Arc<TmpfsInode> {
        let fs = Arc::new(Tmpfs {
            dev: anon_dev(),
            mf: mf.clone(),
            next_ino: AtomicU64::new(1),
            used: AtomicU64::new(0),
            size_limit: DEFAULT_SIZE_LIMIT,
            namespace: Mutex::new(()),
        });
        let root = TmpfsInode::new(
            &fs,
            libc::S_IFDIR | (mode & 0o7777),
            &Creds::root(),
            Kind::Dir(Mutex::new(BTreeMap::new())),
        );
        lock(&root.meta).nlink = 2;
        root
    }

    /// Account `delta` more bytes of data; `ENOSPC` past the limit.
    fn grow(&self, delta: u64) -> Result<()> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let new = cur
                .checked_add(delta)
                .filter(|&n| n <= self.size_limit)
                .ok_or(errno!(ENOSPC))?;
            match self
                .used
                .compare_exchange(cur, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    fn shrink(&self, delta: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(delta))
            });
    }
}

impl TmpfsInode {
    fn new(fs: &Arc<Tmpfs>, mode: u32, creds: &Creds, kind: Kind) -> Arc<TmpfsInode> {
        let now = Timespec::now();
        Arc::new(TmpfsInode {
            fs: fs.clone(),
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            meta: Mutex::new(Meta {
                mode,
                uid: creds.uid,
                gid: creds.gid,
                nlink: 1,
                atime: now,
                mtime: now,
                ctime: now,
            }),
            kind,
            xattrs: Mutex::new(BTreeMap::new()),
        })
    }

    fn entries(&self) -> Result<MutexGuard<'_, BTreeMap<Vec<u8>, Arc<TmpfsInode>>>> {
        match &self.kind {
            Kind::Dir(e) => Ok(lock(e)),
            _ => Err(errno!(ENOTDIR)),
        }
    }

    fn touch_dir(&self) {
        let now = Timespec::now();
        let mut m = lock(&self.meta);
        m.mtime = now;
        m.ctime = now;
    }

    fn add_nlink(&self, delta: i64) {
        let mut m = lock(&self.meta);
        m.nlink = m.nlink.saturating_add_signed(delta);
        m.ctime = Timespec::now();
    }

    fn is_dir_kind(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    /// Add a new child made by `make` under `name`; `EEXIST` if taken.
    fn add_child(&self, name: &[u8], child: Arc<TmpfsInode>) -> Result<Arc<dyn Inode>> {
        let _ns = lock(&self.fs.namespace);
        if lock(&self.meta).nlink == 0 {
            return_errno!(ENOENT, "directory was removed");
        }
        let mut entries = self.entries()?;
        if entries.contains_key(name) {
            return_errno!(EEXIST);
        }
        if child.is_dir_kind() {
            self.add_nlink(1);
        }
        entries.insert(name.to_vec(), child.clone());
        drop(entries);
        self.touch_dir();
        Ok(child)
    }

    fn file_data(&self) -> Result<&FileData> {
        match &self.kind {
            Kind::File(d) => Ok(d),
            _ => Err(errno!(EINVAL)),
        }
    }

    /// Change the size of a regular file's data, with accounting. The caller holds `io`.
    fn set_size(&self, data: &FileData, size: u64) -> Result<()> {
        if size > MAX_FILE_SIZE {
            return_errno!(EFBIG);
        }
        let old = data.cache.size();
        let seals = data.seals();
        if (size < old && seals & memfd::F_SEAL_SHRINK != 0)
            || (size > old && seals & memfd::F_SEAL_GROW != 0)
        {
            return_errno!(EPERM, "sealed against resizing");
        }
        if size > old {
            self.fs.grow(size - old)?;
            if let Err(e) = data.cache.truncate(size) {
                self.fs.shrink(size - old);
                return Err(e);
            }
        } else {
            data.cache.truncate(size)?;
            self.fs.shrink(old - size);
        }
        Ok(())
    }

    fn read_data(&self, buf: &mut [u8], off: u64) -> Result<usize> {
        self.file_data()?.cache.read_at(buf, off)
    }

    /// Write at `off` (or at the end when `off` is `None`); returns bytes written and the
    /// offset after them.
    fn write_data(&self, buf: &[u8], off: Option<u64>) -> Result<(usize, u64)> {
        let data = self.file_data()?;
        let _io = lock(&data.io);
        let start = off.unwrap_or(data.cache.size());
        if data.seals() & (memfd::F_SEAL_WRITE | memfd::F_SEAL_FUTURE_WRITE) != 0 {
            return_errno!(EPERM, "sealed against writing");
        }
        if buf.is_empty() {
            return Ok((0, start));
        }
        let end = start.checked_add(buf.len() as u64).ok_or(errno!(EFBIG))?;
        if end > MAX_FILE_SIZE {
            if start >= MAX_FILE_SIZE {
                return_errno!(EFBIG);
            }
            // Partial write up to the limit, as Linux does at RLIMIT_FSIZE/s_maxbytes.
            return self.write_locked(
                data,
                start,
                buf.get(..(MAX_FILE_SIZE - start) as usize)
                    .unwrap_or_default(),
            );
        }
        self.write_locked(data, start, buf)
    }

    /// Write `buf` at `off` (overlay copy-up fills its upper files with this).
    pub fn write_at(&self, buf: &[u8], off: u64) -> Result<usize> {
        Ok(self.write_data(buf, Some(off))?.0)
    }

    fn write_locked(&self, data: &FileData, start: u64, buf: &[u8]) -> Result<(usize, u64)> {
        let end = start.checked_add(buf.len() as u64).ok_or(errno!(EFBIG))?;
        let old = data.cache.size();
        if end > old && data.seals() & memfd::F_SEAL_GROW != 0 {
            return_errno!(EPERM, "sealed against growing");
        }
        if end > old {
            self.fs.grow(end - old)?;
        }
        if let Err(e) = data.cache.write_at(buf, start) {
            if end > old {
                self.fs.shrink(end - old);
            }
            return Err(e);
        }
        let now = Timespec::now();
        let mut m = lock(&self.meta);
        m.mtime = now;
        m.ctime = now;
        Ok((buf.len(), end))
    }

    fn size(&self) -> u64 {
        match &self.kind {
            Kind::File(d) => d.cache.size(),
            Kind::Symlink(t) => t.len() as u64,
            Kind::Dir(_) => 4096,
            Kind::Device(_) => 0,
        }
    }
}

impl Drop for TmpfsInode {
    fn drop(&mut self) {
        if let Kind::File(d) = &self.kind {
            self.fs.shrink(d.cache.size());
        }
    }
}

impl MappableFile for TmpfsInode {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.read_data(buf, offset)
    }

    fn page_cache(&self) -> Option<Arc<PageCache>> {
        match &self.kind {
            Kind::File(d) => Some(d.cache.clone()),
            _ => None,
        }
    }
}

type Entries = BTreeMap<Vec<u8>, Arc<TmpfsInode>>;

/// The destination directory's entries during a rename: its own guard, or the source's
/// when both are the same directory.
fn dst_map<'m>(
    src: &'m mut Entries,
    dst: &'m mut Option<MutexGuard<'_, Entries>>,
) -> &'m mut Entries {
    match dst {
        Some(g) => g,
        None => src,
    }
}

fn downcast(inode: &Arc<dyn Inode>) -> Result<Arc<TmpfsInode>> {
    inode
        .clone()
        .as_any_arc()
        .downcast::<TmpfsInode>()
        .map_err(|_| errno!(EXDEV))
}

impl Inode for TmpfsInode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn set_mode(&self, mode: u32) -> Result<()> {
        let exec_sealed =
            matches!(&self.kind, Kind::File(d) if d.seals() & memfd::F_SEAL_EXEC != 0);
        let mut m = lock(&self.meta);
        if exec_sealed && (m.mode ^ mode) & 0o111 != 0 {
            return_errno!(EPERM, "sealed against changing the execute bits");
        }
        m.mode = (m.mode & libc::S_IFMT) | (mode & 0o7777);
        m.ctime = Timespec::now();
        Ok(())
    }

    fn stat(&self) -> Result<Stat> {
        let size = self.size();
        let m = lock(&self.meta);
        Ok(Stat {
            dev: self.fs.dev,
            ino: self.ino,
            mode: m.mode,
            nlink: m.nlink,
            uid: m.uid,
            gid: m.gid,
            rdev: if let Kind::Device(r) = self.kind {
                r
            } else {
                0
            },
            size,
            blksize: 4096,
            blocks: size.div_ceil(4096) * 8,
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        })
    }

    fn mode(&self) -> u32 {
        lock(&self.meta).mode
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        let entries = self.entries()?;
        let child = entries.get(name).ok_or(errno!(ENOENT))?;
        Ok(child.clone())
    }

    fn readdir(&self) -> Result<Vec<DirEntry>> {
        let entries = self.entries()?;
        Ok(entries
            .iter()
            .map(|(name, i)| DirEntry {
                ino: i.ino,
                d_type: crate::vfs::dtype_of_mode(i.mode()),
                name: name.clone(),
            })
            .collect())
    }

    fn readlink(&self) -> Result<Vec<u8>> {
        match &self.kind {
            Kind::Symlink(t) => Ok(t.clone()),
            _ => Err(errno!(EINVAL)),
        }
    }

    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        match self.kind {
            Kind::File(_) => Ok(Arc::new(TmpfsFile {
                inode: self.clone(),
                path: path.clone(),
                state: FileState::new(flags),
            })),
            // FIFOs open as pipes once pipes exist; until then, and for sockets always (as
            // in Linux), opening one is ENXIO.
            Kind::Device(_)
                if matches!(self.mode() & libc::S_IFMT, libc::S_IFIFO | libc::S_IFSOCK) =>
            {
                Err(errno!(ENXIO))
            }
            Kind::Device(rdev) => crate::fs::dev::open_device(rdev, self.clone(), path, flags),
            Kind::Dir(_) => Err(errno!(EISDIR)),
            Kind::Symlink(_) => Err(errno!(ELOOP)),
        }
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        let f = TmpfsInode::new(
            &self.fs,
            libc::S_IFREG | (mode & 0o7777),
            creds,
            Kind::File(FileData::new(&self.fs.mf)),
        );
        self.add_child(name, f)
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        let d = TmpfsInode::new(
            &self.fs,
            libc::S_IFDIR | (mode & 0o7777),
            creds,
            Kind::Dir(Mutex::new(BTreeMap::new())),
        );
        lock(&d.meta).nlink = 2;
        self.add_child(name, d)
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<Arc<dyn Inode>> {
        let s = TmpfsInode::new(
            &self.fs,
            libc::S_IFLNK | 0o777,
            creds,
            Kind::Symlink(target.to_vec()),
        );
        self.add_child(name, s)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<()> {
        let t = downcast(target)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return_errno!(EXDEV);
        }
        if t.is_dir_kind() {
            return_errno!(EPERM);
        }
        let _ns = lock(&self.fs.namespace);
        if lock(&t.meta).nlink == 0 {
            return_errno!(ENOENT);
        }
        let mut entries = self.entries()?;
        if entries.contains_key(name) {
            return_errno!(EEXIST);
        }
        entries.insert(name.to_vec(), t.clone());
        drop(entries);
        t.add_nlink(1);
        self.touch_dir();
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<()> {
        let _ns = lock(&self.fs.namespace);
        let mut entries = self.entries()?;
        let child = entries.get(name).ok_or(errno!(ENOENT))?;
        if child.is_dir_kind() {
            return_errno!(EISDIR);
        }
        if let Some(c) = entries.remove(name) {
            c.add_nlink(-1);
        }
        drop(entries);
        self.touch_dir();
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<()> {
        let _ns = lock(&self.fs.namespace);
        let mut entries = self.entries()?;
        let child = entries.get(name).ok_or(errno!(ENOENT))?;
        if !child.is_dir_kind() {
            return_errno!(ENOTDIR);
        }
        if !child.entries()?.is_empty() {
            return_errno!(ENOTEMPTY);
        }
        if let Some(c) = entries.remove(name) {
            lock(&c.meta).nlink = 0;
        }
        drop(entries);
        self.add_nlink(-1);
        self.touch_dir();
        Ok(())
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
        let _ns = lock(&self.fs.namespace);
        let same_dir = std::ptr::eq(self, Arc::as_ptr(&nd));
        let mut src = self.entries()?;
        let mut dst_guard = if same_dir { None } else { Some(nd.entries()?) };
        let old = src.get(old_name).cloned().ok_or(errno!(ENOENT))?;
        let existing = match &dst_guard {
            Some(d) => d.get(new_name).cloned(),
            None => src.get(new_name).cloned(),
        };
        if existing.as_ref().is_some_and(|e| Arc::ptr_eq(e, &old)) {
            return Ok(());
        }
        const RENAME_NOREPLACE: u32 = 1;
        const RENAME_EXCHANGE: u32 = 2;
        if flags & RENAME_EXCHANGE != 0 {
            let other = existing.ok_or(errno!(ENOENT))?;
            dst_map(&mut src, &mut dst_guard).insert(new_name.to_vec(), old.clone());
            src.insert(old_name.to_vec(), other.clone());
            if !same_dir && old.is_dir_kind() != other.is_dir_kind() {
                let delta = if old.is_dir_kind() { 1 } else { -1 };
                nd.add_nlink(delta);
                self.add_nlink(-delta);
            }
        } else {
            if let Some(e) = &existing {
                if flags & RENAME_NOREPLACE != 0 {
                    return_errno!(EEXIST);
                }
                match (old.is_dir_kind(), e.is_dir_kind()) {
                    (true, false) => return_errno!(ENOTDIR),
                    (false, true) => return_errno!(EISDIR),
                    (true, true) if !e.entries()?.is_empty() => return_errno!(ENOTEMPTY),
                    _ => {}
                }
            }
            src.remove(old_name);
            if let Some(e) =
                dst_map(&mut src, &mut dst_guard).insert(new_name.to_vec(), old.clone())
            {
                if e.is_dir_kind() {
                    lock(&e.meta).nlink = 0;
                    nd.add_nlink(-1);
                } else {
                    e.add_nlink(-1);
                }
            }
            if old.is_dir_kind() && !same_dir {
                self.add_nlink(-1);
                nd.add_nlink(1);
            }
        }
        drop(dst_guard);
        drop(src);
        old.add_nlink(0);
        self.touch_dir();
        nd.touch_dir();
        Ok(())
    }

    fn truncate(&self, size: u64) -> Result<()> {
        let Kind::File(data) = &self.kind else {
            return_errno!(EINVAL)
        };
        let _io = lock(&data.io);
        self.set_size(data, size)?;
        let now = Timespec::now();
        let mut m = lock(&self.meta);
        m.mtime = now;
        m.ctime = now;
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>, new_mode: Option<u32>) -> Result<()> {
        let mut m = lock(&self.meta);
        if let Some(u) = uid {
            m.uid = u;
        }
        if let Some(g) = gid {
            m.gid = g;
        }
        if let Some(mode) = new_mode {
            m.mode = (m.mode & libc::S_IFMT) | (mode & 0o7777);
        }
        m.ctime = Timespec::now();
        Ok(())
    }

    fn set_times(&self, atime: Option<Timespec>, mtime: Option<Timespec>) -> Result<()> {
        let mut m = lock(&self.meta);
        if let Some(a) = atime {
            m.atime = a;
        }
        if let Some(t) = mtime {
            m.mtime = t;
        }
        m.ctime = Timespec::now();
        Ok(())
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, creds: &Creds) -> Result<Arc<dyn Inode>> {
        let kind = match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File(FileData::new(&self.fs.mf)),
            libc::S_IFCHR | libc::S_IFBLK => Kind::Device(rdev),
            libc::S_IFIFO | libc::S_IFSOCK => Kind::Device(0),
            _ => return_errno!(EINVAL),
        };
        let node = TmpfsInode::new(&self.fs, mode, creds, kind);
        self.add_child(name, node)
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<()> {
        let Kind::File(data) = &self.kind else {
            return_errno!(ENODEV)
        };
        let end = offset.checked_add(len).ok_or(errno!(EFBIG))?;
        let _io = lock(&data.io);
        let size = data.cache.size();
        match mode {
            0 => {
                if end > size {
                    self.set_size(data, end)?;
                    let mut m = lock(&self.meta);
                    m.ctime = Timespec::now();
                }
            }
            // Memory is allocated on write; there is nothing to reserve.
            crate::vfs::FALLOC_FL_KEEP_SIZE => {
                if end > MAX_FILE_SIZE {
                    return_errno!(EFBIG);
                }
            }
            m if m == crate::vfs::FALLOC_FL_KEEP_SIZE | crate::vfs::FALLOC_FL_PUNCH_HOLE => {
                if data.seals() & (memfd::F_SEAL_WRITE | memfd::F_SEAL_FUTURE_WRITE) != 0 {
                    return_errno!(EPERM, "sealed against writing");
                }
                data.cache.punch_hole(offset.min(size), end.min(size))?;
                let now = Timespec::now();
                let mut m = lock(&self.meta);
                m.mtime = now;
                m.ctime = now;
            }
            _ => return_errno!(EOPNOTSUPP),
        }
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>> {
        lock(&self.xattrs).get(name).cloned().ok_or(errno!(ENODATA))
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let mut x = lock(&self.xattrs);
        let exists = x.contains_key(name);
        if flags & crate::vfs::XATTR_CREATE != 0 && exists {
            return_errno!(EEXIST);
        }
        if flags & crate::vfs::XATTR_REPLACE != 0 && !exists {
            return_errno!(ENODATA);
        }
        let others: usize = x
            .iter()
            .filter(|(k, _)| k.as_slice() != name)
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if others + name.len() + value.len() > XATTR_BYTES_PER_INODE {
            return_errno!(ENOSPC);
        }
        x.insert(name.to_vec(), value.to_vec());
        drop(x);
        lock(&self.meta).ctime = Timespec::now();
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>> {
        Ok(lock(&self.xattrs).keys().cloned().collect())
    }

    fn removexattr(&self, name: &[u8]) -> Result<()> {
        lock(&self.xattrs).remove(name).ok_or(errno!(ENODATA))?;
        lock(&self.meta).ctime = Timespec::now();
        Ok(())
    }

    fn statfs(&self) -> Result<StatFs> {
        let used_blocks = self.fs.used.load(Ordering::Relaxed).div_ceil(4096);
        let blocks = self.fs.size_limit / 4096;
        let free = blocks.saturating_sub(used_blocks);
        Ok(StatFs {
            fs_type: TMPFS_MAGIC,
            bsize: 4096,
            blocks,
            bfree: free,
            bavail: free,
            files: 1 << 20,
            ffree: (1u64 << 20).saturating_sub(self.fs.next_ino.load(Ordering::Relaxed)),
            fsid: [0, 0],
            namelen: 255,
            frsize: 4096,
            flags: 0,
        })
    }
}

/// An open regular tmpfs file.
pub struct TmpfsFile {
    inode: Arc<TmpfsInode>,
    path: VfsPath,
    state: FileState,
}

impl FileDescription for TmpfsFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        self.state
            .with_offset(offset, |off| self.inode.read_data(buf, off))
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        match offset {
            // pwrite ignores O_APPEND in neither Linux nor here: Linux appends anyway.
            Some(off) if !self.state.append() => Ok(self.inode.write_data(buf, Some(off))?.0),
            Some(_) => Ok(self.inode.write_data(buf, None)?.0),
            None => {
                let mut pos = self.state.offset();
                let at = if self.state.append() {
                    None
                } else {
                    Some(*pos)
                };
                let (n, end) = self.inode.write_data(buf, at)?;
                *pos = end;
                Ok(n)
            }
        }
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        self.state.seek(offset, whence, self.inode.size())
    }

    fn stat(&self) -> Result<Stat> {
        self.inode.stat()
    }

    fn ioctl(&self, _task: &Task, _cmd: u32, _arg: UserAddr) -> Result<u64> {
        Err(errno!(ENOTTY))
    }

    fn status_flags(&self) -> u32 {
        self.state.flags()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.state.set_flags(flags);
        Ok(())
    }

    fn mappable(&self) -> Option<Arc<dyn MappableFile>> {
        Some(self.inode.clone())
    }

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }

    fn truncate(&self, size: u64) -> Result<()> {
        self.inode.truncate(size)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl TmpfsFile {
    /// The file's seals (`F_GET_SEALS`).
    pub fn seals(&self) -> u32 {
        self.inode.file_data().map(FileData::seals).unwrap_or(0)
    }

    /// `F_ADD_SEALS`: only through a description open for writing (`EPERM`), never once
    /// `F_SEAL_SEAL` is set (`EPERM`).
    pub fn add_seals(&self, add: u32) -> Result<()> {
        if add & !memfd::ALL_SEALS != 0 {
            return_errno!(EINVAL);
        }
        if self.state.flags() & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
            return_errno!(EPERM);
        }
        let data = self.inode.file_data()?;
        let _io = lock(&data.io);
        let cur = data.seals();
        if cur & memfd::F_SEAL_SEAL != 0 {
            return_errno!(EPERM);
        }
        // mapping_deny_writable: no shared mapping may write the pages any more.
        if add & memfd::F_SEAL_WRITE != 0 && data.cache.writably_mapped() {
            return_errno!(EBUSY);
        }
        data.seals.store(cur | add, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
