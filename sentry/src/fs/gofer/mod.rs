//! The host root filesystem, served read-only by the gofer.
//!
//! Every lookup, stat, readlink and directory listing is a gofer request; opening a
//! regular file gets a host fd donated by the gofer, which the sentry only `pread`s. The
//! sentry never names a host path. Any change to this filesystem is `EROFS` (the mount is
//! read-only; the VFS checks that before calling in). Dentries and attributes are cached
//! by the VFS dentry tree and here: the image under a read-only root does not change.
#![deny(unsafe_code)]

use ::gofer::client;

pub use client::Client;

use crate::error::{Errno, Error, Result};
use crate::mm::MappableFile;
use crate::vfs::{
    anon_dev, DirEntry, FileDescription, FileState, Inode, Stat, StatFs, Timespec, VfsPath,
};
use crate::{errno, return_errno};
use client::{Attr, Handle};
use std::any::Any;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};

fn gerr(e: client::Errno) -> Error {
    Error::new(Errno::from_raw(e.0))
}

/// One gofer-served filesystem (a mount of the gofer's root).
pub struct GoferFs {
    client: Arc<Client>,
    dev: u64,
}

impl GoferFs {
    /// Attach to the gofer's root: the root inode of the filesystem.
    pub fn attach(client: Arc<Client>) -> Result<Arc<GoferInode>> {
        let (handle, attr) = client.attach().map_err(gerr)?;
        let fs = Arc::new(GoferFs {
            client,
            dev: anon_dev(),
        });
        Ok(GoferInode::new(&fs, handle, attr))
    }
}

pub struct GoferInode {
    fs: Arc<GoferFs>,
    handle: Handle,
    attr: Attr,
    /// The symlink target, read once.
    link: OnceLock<Vec<u8>>,
    /// The donated read-only host fd of a regular file, opened once and shared by every
    /// open description and mapping of the file.
    host_fd: Mutex<Option<Arc<HostFdMappable>>>,
}

impl GoferInode {
    fn new(fs: &Arc<GoferFs>, handle: Handle, attr: Attr) -> Arc<GoferInode> {
        Arc::new(GoferInode {
            fs: fs.clone(),
            handle,
            attr,
            link: OnceLock::new(),
            host_fd: Mutex::new(None),
        })
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
        let f = Arc::new(HostFdMappable { fd });
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
        let a = &self.attr;
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
        self.attr.mode
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        if !self.is_dir() {
            return_errno!(ENOTDIR);
        }
        let walked = self.fs.client.walk(self.handle, &[name]).map_err(gerr)?;
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
        if acc != libc::O_RDONLY as u32 || flags & libc::O_TRUNC as u32 != 0 {
            return_errno!(EROFS);
        }
        match self.attr.mode & libc::S_IFMT {
            libc::S_IFREG => {
                let fd = self.host_fd()?;
                Ok(Arc::new(GoferFile {
                    inode: self.clone(),
                    fd,
                    path: path.clone(),
                    state: FileState::new(flags),
                }))
            }
            libc::S_IFCHR => crate::fs::dev::open_device(self.attr.rdev, self.clone(), path, flags),
            // FIFOs and sockets in the image would need host-side support.
            _ => Err(errno!(ENXIO)),
        }
    }

    fn create(&self, _: &[u8], _: u32, _: &crate::vfs::Creds) -> Result<Arc<dyn Inode>> {
        Err(errno!(EROFS))
    }
    fn mkdir(&self, _: &[u8], _: u32, _: &crate::vfs::Creds) -> Result<Arc<dyn Inode>> {
        Err(errno!(EROFS))
    }
    fn symlink(&self, _: &[u8], _: &[u8], _: &crate::vfs::Creds) -> Result<Arc<dyn Inode>> {
        Err(errno!(EROFS))
    }
    fn link(&self, _: &[u8], _: &Arc<dyn Inode>) -> Result<()> {
        Err(errno!(EROFS))
    }
    fn unlink(&self, _: &[u8]) -> Result<()> {
        Err(errno!(EROFS))
    }
    fn rmdir(&self, _: &[u8]) -> Result<()> {
        Err(errno!(EROFS))
    }
    fn rename(&self, _: &[u8], _: &Arc<dyn Inode>, _: &[u8], _: u32) -> Result<()> {
        Err(errno!(EROFS))
    }
    fn truncate(&self, _: u64) -> Result<()> {
        Err(errno!(EROFS))
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
            flags: i64::from(libc::ST_RDONLY as i32),
        })
    }
}

/// A donated read-only host fd of a regular file: `pread` only.
pub struct HostFdMappable {
    fd: OwnedFd,
}

impl MappableFile for HostFdMappable {
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

    fn write(&self, _buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        // Only reachable through a description opened read-only: EBADF is caught above.
        Err(errno!(EROFS))
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        self.state.seek(offset, whence, self.inode.attr.size)
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

    fn truncate(&self, _size: u64) -> Result<()> {
        Err(errno!(EROFS))
    }
}

#[cfg(test)]
mod tests;
