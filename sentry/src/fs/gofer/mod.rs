//! A filesystem served by the gofer: the host root read-only (`carapace do`), or a tree the
//! gofer serves read-write (OCI bundles without an overlay).
//!
//! Every lookup, stat, readlink and directory listing is a gofer request; opening a
//! regular file gets a host fd donated by the gofer, which the sentry `pread`s (and
//! `pwrite`s when writable). The sentry never names a host path. Read-only: any change is
//! `EROFS` (the mount is read-only; the VFS checks that before calling in), and attributes
//! are cached since the image does not change. Read-write: namespace and attribute changes
//! are gofer requests, and `stat` asks the gofer every time.
#![deny(unsafe_code)]

use ::gofer::client;

pub use client::Client;

use crate::error::{Errno, Error, Result};
use crate::kernel::process::lock;
use crate::mm::{FileCache, MappableFile, MemoryFile};
use crate::vfs::{
    anon_dev, Creds, DirEntry, FileDescription, FileState, Inode, Stat, StatFs, Timespec, VfsPath,
};
use crate::{errno, return_errno};
use ::gofer::protocol::{
    self, SETATTR_ATIME, SETATTR_GID, SETATTR_MODE, SETATTR_MTIME, SETATTR_SIZE, SETATTR_UID,
};
use client::{Attr, Handle, SetAttr};
use std::any::Any;
use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

fn gerr(e: client::Errno) -> Error {
    Error::new(Errno::from_raw(e.0))
}

/// One gofer-served filesystem (a mount of the gofer's root).
pub struct GoferFs {
    client: Arc<Client>,
    dev: u64,
    /// The gofer serves this tree read-write.
    writable: bool,
}

impl GoferFs {
    /// Attach to the gofer's root, read-only: the root inode of the filesystem.
    pub fn attach(client: Arc<Client>) -> Result<Arc<GoferInode>> {
        Self::attach_with(client, false)
    }

    /// Attach to the gofer's root; `writable` when the gofer serves it read-write.
    pub fn attach_with(client: Arc<Client>, writable: bool) -> Result<Arc<GoferInode>> {
        let (handle, attr) = client.attach().map_err(gerr)?;
        let fs = Arc::new(GoferFs {
            client,
            dev: anon_dev(),
            writable,
        });
        Ok(GoferInode::new(&fs, handle, attr))
    }
}

pub struct GoferInode {
    fs: Arc<GoferFs>,
    handle: Handle,
    /// Read-only: as walked. Read-write: refreshed by `stat` and after every change.
    attr: Mutex<Attr>,
    /// The symlink target, read once.
    link: OnceLock<Vec<u8>>,
    /// The donated read-only host fd of a regular file, opened once and shared by every
    /// open description and mapping of the file.
    host_fd: Mutex<Option<Arc<HostFdMappable>>>,
    /// The donated read-write host fd of a regular file of a writable tree.
    rw_fd: Mutex<Option<Arc<HostFdMappable>>>,
    /// Read-only trees: every extended attribute, fetched once (`ls -l` asks for a few
    /// names per file; most files have none, which one request answers).
    xattrs: Mutex<Option<Arc<XattrList>>>,
    /// Read-only trees: names a lookup in this directory did not find, which it never
    /// will (the dynamic linker and interpreters probe many: each was a gofer walk).
    missing: Mutex<HashSet<Vec<u8>>>,
}

/// How many missing names a directory remembers; past that it starts again.
const MISSING_MAX: usize = 1024;

type XattrList = Vec<(Vec<u8>, Vec<u8>)>;

impl GoferInode {
    fn new(fs: &Arc<GoferFs>, handle: Handle, attr: Attr) -> Arc<GoferInode> {
        Arc::new(GoferInode {
            fs: fs.clone(),
            handle,
            attr: Mutex::new(attr),
            link: OnceLock::new(),
            host_fd: Mutex::new(None),
            rw_fd: Mutex::new(None),
            xattrs: Mutex::new(None),
            missing: Mutex::new(HashSet::new()),
        })
    }

    fn remember_missing(&self, name: &[u8]) {
        let mut missing = lock(&self.missing);
        if missing.len() >= MISSING_MAX {
            missing.clear();
        }
        missing.insert(name.to_vec());
    }

    /// The attributes of a file of a read-only tree, from the cache or the gofer.
    fn cached_xattrs(&self) -> Result<Arc<XattrList>> {
        let mut slot = self.xattrs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(x) = &*slot {
            return Ok(x.clone());
        }
        let c = &self.fs.client;
        let mut all = Vec::new();
        for name in c.listxattr(self.handle).map_err(gerr)? {
            match c.getxattr(self.handle, &name) {
                Ok(v) => all.push((name, v)),
                // Removed on the host in between: it is not there.
                Err(e) if e.0 == libc::ENODATA => {}
                Err(e) => return Err(gerr(e)),
            }
        }
        let all = Arc::new(all);
        *slot = Some(all.clone());
        Ok(all)
    }

    fn attr(&self) -> Attr {
        *self.attr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ask the gofer for fresh attributes (read-write trees change under the cache).
    fn refresh(&self) -> Result<Attr> {
        let a = self.fs.client.stat(self.handle).map_err(gerr)?;
        *self.attr.lock().unwrap_or_else(|e| e.into_inner()) = a;
        Ok(a)
    }

    fn check_writable(&self) -> Result<()> {
        if !self.fs.writable {
            return_errno!(EROFS);
        }
        Ok(())
    }

    fn setstat(&self, attr: &SetAttr) -> Result<()> {
        self.check_writable()?;
        self.fs.client.setstat(self.handle, attr).map_err(gerr)?;
        self.refresh()?;
        Ok(())
    }

    /// Make a new object's owner the creator's (the gofer creates as itself).
    fn chown_new(&self, h: Handle, attr: &Attr, creds: &Creds) {
        if attr.uid != creds.uid || attr.gid != creds.gid {
            let set = SetAttr {
                mask: SETATTR_UID | SETATTR_GID,
                uid: creds.uid,
                gid: creds.gid,
                ..SetAttr::default()
            };
            if let Err(e) = self.fs.client.setstat(h, &set) {
                tracing::debug!(?e, "gofer: cannot give a new file its owner");
            }
        }
    }

    fn new_child(&self, h: Handle, creds: &Creds, attr: Attr) -> Arc<GoferInode> {
        self.chown_new(h, &attr, creds);
        let attr = self.fs.client.stat(h).unwrap_or(attr);
        GoferInode::new(&self.fs, h, attr)
    }

    fn rw_fd(&self) -> Result<Arc<HostFdMappable>> {
        let mut slot = self.rw_fd.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = &*slot {
            return Ok(f.clone());
        }
        let fd = self
            .fs
            .client
            .open(self.handle, libc::O_RDWR)
            .map_err(gerr)?;
        let f = Arc::new(HostFdMappable::new(fd, None));
        *slot = Some(f.clone());
        Ok(f)
    }

    fn host_fd(&self) -> Result<Arc<HostFdMappable>> {
        let mut slot = self.host_fd.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = &*slot {
            return Ok(f.clone());
        }
        let fd = self
            .fs
            .client
            .open(self.handle, libc::O_RDONLY)
            .map_err(gerr)?;
        // A read-only tree does not change: its pages may be cached for mappings.
        let size = (!self.fs.writable).then(|| self.attr().size);
        let f = Arc::new(HostFdMappable::new(fd, size));
        *slot = Some(f.clone());
        Ok(f)
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        // Nothing useful to do if the gofer is gone; the handle dies with it.
        self.fs.client.close(self.handle);
    }
}

fn ts(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    }
}

impl Inode for GoferInode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        let a = &if self.fs.writable {
            self.refresh()?
        } else {
            self.attr()
        };
        Ok(Stat {
            // The sandbox's device number, so host device numbers do not leak.
            dev: self.fs.dev,
            ino: a.ino,
            mode: a.mode,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            size: a.size,
            blksize: u32::try_from(a.blksize).unwrap_or(4096),
            blocks: a.blocks,
            atime: ts(a.atime_sec, a.atime_nsec),
            mtime: ts(a.mtime_sec, a.mtime_nsec),
            ctime: ts(a.ctime_sec, a.ctime_nsec),
        })
    }

    fn mode(&self) -> u32 {
        self.attr().mode
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        if !self.is_dir() {
            return_errno!(ENOTDIR);
        }
        if !self.fs.writable && lock(&self.missing).contains(name) {
            return_errno!(ENOENT);
        }
        let walked = match self.fs.client.walk(self.handle, &[name]) {
            Ok(w) => w,
            Err(e) => {
                if e.0 == libc::ENOENT && !self.fs.writable {
                    self.remember_missing(name);
                }
                return Err(gerr(e));
            }
        };
        let mut it = walked.into_iter();
        let (h, attr) = it.next().ok_or(errno!(ENOENT))?;
        // A one-name walk gives at most one handle; close any extra defensively.
        for (extra, _) in it {
            self.fs.client.close(extra);
        }
        Ok(GoferInode::new(&self.fs, h, attr))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>> {
        if !self.is_dir() {
            return_errno!(ENOTDIR);
        }
        let ents = self.fs.client.getdents(self.handle).map_err(gerr)?;
        Ok(ents
            .into_iter()
            .filter(|d| d.name != b"." && d.name != b"..")
            .map(|d| DirEntry {
                ino: d.ino,
                d_type: d.d_type,
                name: d.name,
            })
            .collect())
    }

    fn readlink(&self) -> Result<Vec<u8>> {
        if !self.is_symlink() {
            return_errno!(EINVAL);
        }
        if let Some(t) = self.link.get() {
            return Ok(t.clone());
        }
        let t = self.fs.client.readlink(self.handle).map_err(gerr)?;
        Ok(self.link.get_or_init(|| t).clone())
    }

    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        let acc = flags & libc::O_ACCMODE as u32;
        let writes = acc != libc::O_RDONLY as u32 || flags & libc::O_TRUNC as u32 != 0;
        if writes {
            self.check_writable()?;
        }
        let attr = self.attr();
        match attr.mode & libc::S_IFMT {
            libc::S_IFREG => {
                let fd = if writes {
                    self.rw_fd()?
                } else {
                    self.host_fd()?
                };
                Ok(Arc::new(GoferFile {
                    inode: self.clone(),
                    fd,
                    path: path.clone(),
                    state: FileState::new(flags),
                }))
            }
            libc::S_IFCHR => crate::fs::dev::open_device(attr.rdev, self.clone(), path, flags),
            // FIFOs and sockets in the image would need host-side support.
            _ => Err(errno!(ENXIO)),
        }
    }

    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.check_writable()?;
        let (h, attr, fd) = self
            .fs
            .client
            .create(self.handle, name, libc::O_RDWR, mode)
            .map_err(gerr)?;
        let child = self.new_child(h, creds, attr);
        *child.rw_fd.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Arc::new(HostFdMappable::new(fd, None)));
        Ok(child)
    }

    fn mkdir(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.check_writable()?;
        let (h, attr) = self
            .fs
            .client
            .mkdir(self.handle, name, mode)
            .map_err(gerr)?;
        Ok(self.new_child(h, creds, attr))
    }

    fn symlink(&self, name: &[u8], target: &[u8], creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.check_writable()?;
        let (h, attr) = self
            .fs
            .client
            .symlink(self.handle, name, target)
            .map_err(gerr)?;
        Ok(self.new_child(h, creds, attr))
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<()> {
        self.check_writable()?;
        let t = target
            .clone()
            .as_any_arc()
            .downcast::<GoferInode>()
            .map_err(|_| errno!(EXDEV))?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return_errno!(EXDEV);
        }
        let (h, _) = self
            .fs
            .client
            .link(self.handle, name, t.handle)
            .map_err(gerr)?;
        self.fs.client.close(h);
        t.refresh()?;
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.fs.client.unlink(self.handle, name, 0).map_err(gerr)
    }

    fn rmdir(&self, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.fs
            .client
            .unlink(self.handle, name, libc::AT_REMOVEDIR)
            .map_err(gerr)
    }

    fn rename(&self, old: &[u8], new_dir: &Arc<dyn Inode>, new: &[u8], flags: u32) -> Result<()> {
        self.check_writable()?;
        let nd = new_dir
            .clone()
            .as_any_arc()
            .downcast::<GoferInode>()
            .map_err(|_| errno!(EXDEV))?;
        if !Arc::ptr_eq(&nd.fs, &self.fs) {
            return_errno!(EXDEV);
        }
        // The VFS checked the flags against its view; the host checks again atomically.
        let flags = flags & (protocol::RENAME_NOREPLACE | protocol::RENAME_EXCHANGE);
        self.fs
            .client
            .rename(self.handle, old, nd.handle, new, flags)
            .map_err(gerr)
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, creds: &Creds) -> Result<Arc<dyn Inode>> {
        self.check_writable()?;
        if matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK) {
            // Device nodes on the host would reach host devices; the gofer refuses them too.
            return_errno!(EPERM, "device node on a gofer filesystem");
        }
        let (h, attr) = self
            .fs
            .client
            .mknod(self.handle, name, mode, rdev)
            .map_err(gerr)?;
        Ok(self.new_child(h, creds, attr))
    }

    fn fallocate(&self, mode: u32, offset: u64, len: u64) -> Result<()> {
        self.check_writable()?;
        self.fs
            .client
            .fallocate(self.handle, mode, offset, len)
            .map_err(gerr)?;
        self.refresh()?;
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>> {
        if !self.fs.writable {
            return self
                .cached_xattrs()?
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or(errno!(ENODATA));
        }
        self.fs.client.getxattr(self.handle, name).map_err(gerr)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        self.check_writable()?;
        self.fs
            .client
            .setxattr(self.handle, name, value, flags)
            .map_err(gerr)?;
        self.refresh()?;
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>> {
        if !self.fs.writable {
            return Ok(self
                .cached_xattrs()?
                .iter()
                .map(|(n, _)| n.clone())
                .collect());
        }
        self.fs.client.listxattr(self.handle).map_err(gerr)
    }

    fn removexattr(&self, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.fs
            .client
            .removexattr(self.handle, name)
            .map_err(gerr)?;
        self.refresh()?;
        Ok(())
    }

    fn set_mode(&self, mode: u32) -> Result<()> {
        self.setstat(&SetAttr {
            mask: SETATTR_MODE,
            mode: mode & 0o7777,
            ..SetAttr::default()
        })
    }

    fn truncate(&self, size: u64) -> Result<()> {
        self.setstat(&SetAttr {
            mask: SETATTR_SIZE,
            size,
            ..SetAttr::default()
        })
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>, new_mode: Option<u32>) -> Result<()> {
        let mut set = SetAttr::default();
        if let Some(u) = uid {
            set.mask |= SETATTR_UID;
            set.uid = u;
        }
        if let Some(g) = gid {
            set.mask |= SETATTR_GID;
            set.gid = g;
        }
        self.setstat(&set)?;
        // Linux clears the set-id bits after the owner change (the host would too, but
        // only for an unprivileged gofer), so apply the mode last.
        if let Some(m) = new_mode {
            self.set_mode(m)?;
        }
        Ok(())
    }

    fn set_times(&self, atime: Option<Timespec>, mtime: Option<Timespec>) -> Result<()> {
        let mut set = SetAttr::default();
        if let Some(a) = atime {
            set.mask |= SETATTR_ATIME;
            (set.atime_sec, set.atime_nsec) = (a.sec, i64::from(a.nsec));
        }
        if let Some(m) = mtime {
            set.mask |= SETATTR_MTIME;
            (set.mtime_sec, set.mtime_nsec) = (m.sec, i64::from(m.nsec));
        }
        self.setstat(&set)
    }

    fn fsync(&self, data_only: bool) -> Result<()> {
        if !self.fs.writable {
            // Nothing of a read-only tree can be dirty.
            return Ok(());
        }
        let fd = self.rw_fd.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match fd {
            Some(f) if data_only => nix::unistd::fdatasync(f.fd.as_fd())?,
            Some(f) => nix::unistd::fsync(f.fd.as_fd())?,
            // Directories, and files only read so far: the gofer opens and syncs them.
            None => self.fs.client.fsync(self.handle, data_only).map_err(gerr)?,
        }
        Ok(())
    }

    fn statfs(&self) -> Result<StatFs> {
        let s = self.fs.client.statfs(self.handle).map_err(gerr)?;
        Ok(StatFs {
            fs_type: i64::try_from(s.fs_type).unwrap_or(0),
            bsize: i64::try_from(s.bsize).unwrap_or(4096),
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            fsid: [0, 0],
            namelen: i64::try_from(s.namelen).unwrap_or(255),
            frsize: i64::try_from(s.frsize).unwrap_or(4096),
            flags: if self.fs.writable {
                0
            } else {
                i64::from(libc::ST_RDONLY as i32)
            },
        })
    }
}

/// A donated read-only host fd of a regular file: `pread` only.
pub struct HostFdMappable {
    fd: OwnedFd,
    /// The file's size if it never changes (a read-only tree): then private mappings share
    /// its pages through a [`FileCache`], made on first use.
    fixed_size: Option<u64>,
    cache: OnceLock<Arc<FileCache>>,
}

impl HostFdMappable {
    fn new(fd: OwnedFd, fixed_size: Option<u64>) -> HostFdMappable {
        HostFdMappable {
            fd,
            fixed_size,
            cache: OnceLock::new(),
        }
    }
}

impl MappableFile for HostFdMappable {
    fn file_cache(&self, mf: &Arc<MemoryFile>) -> Option<Arc<FileCache>> {
        let size = self.fixed_size?;
        let cache = self.cache.get_or_init(|| FileCache::new(mf, size));
        // One MemoryFile per sandbox; another one (tests) copies as before.
        cache.is_in(mf).then(|| cache.clone())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let off = offset.checked_add(done as u64).ok_or(errno!(EOVERFLOW))?;
            let off = i64::try_from(off).map_err(|_| errno!(EOVERFLOW))?;
            let rest = buf.get_mut(done..).ok_or(errno!(EINVAL))?;
            match nix::sys::uio::pread(self.fd.as_fd(), rest, off) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) if done == 0 => return Err(e.into()),
                Err(_) => break,
            }
        }
        Ok(done)
    }
}

/// An open regular file of the gofer root.
pub struct GoferFile {
    inode: Arc<GoferInode>,
    fd: Arc<HostFdMappable>,
    path: VfsPath,
    state: FileState,
}

impl FileDescription for GoferFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        self.state.with_offset(offset, |off| {
            let off = i64::try_from(off).map_err(|_| errno!(EINVAL))?;
            Ok(nix::sys::uio::pread(self.fd.fd.as_fd(), buf, off)?)
        })
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        // Descriptions opened read-only never get here (EBADF above); a read-only tree
        // never opens one for writing.
        self.inode.check_writable()?;
        let pwrite = |off: u64| -> Result<usize> {
            let off = i64::try_from(off).map_err(|_| errno!(EFBIG))?;
            Ok(nix::sys::uio::pwrite(self.fd.fd.as_fd(), buf, off)?)
        };
        if self.state.append() {
            let mut pos = self.state.offset();
            let end = self.host_size()?;
            let n = pwrite(end)?;
            if offset.is_none() {
                *pos = end.checked_add(n as u64).ok_or(errno!(EFBIG))?;
            }
            return Ok(n);
        }
        self.state.with_offset(offset, pwrite)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        let size = if self.inode.fs.writable {
            self.host_size()?
        } else {
            self.inode.attr().size
        };
        self.state.seek(offset, whence, size)
    }

    fn stat(&self) -> Result<Stat> {
        self.inode.stat()
    }

    fn status_flags(&self) -> u32 {
        self.state.flags()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.state.set_flags(flags);
        Ok(())
    }

    fn mappable(&self) -> Option<Arc<dyn MappableFile>> {
        Some(self.fd.clone())
    }

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }

    fn truncate(&self, size: u64) -> Result<()> {
        self.inode.truncate(size)
    }
}

impl GoferFile {
    /// The file's size as the host sees it now.
    fn host_size(&self) -> Result<u64> {
        let st = nix::sys::stat::fstat(self.fd.fd.as_fd())?;
        u64::try_from(st.st_size).map_err(|_| errno!(EIO))
    }
}

#[cfg(test)]
mod tests;
