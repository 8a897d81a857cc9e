//! devtmpfs: `/dev` as a tmpfs holding device nodes, and the drivers behind the memory
//! devices (`null`, `zero`, `full`, `random`, `urandom`); `tty` and `ptmx` are
//! `fs::devpts`'s. Opening a device node of any tmpfs comes here by device number, as
//! `chrdev_open` does in Linux.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::fs::tmpfs::{Tmpfs, TmpfsInode};
use crate::mm::{MappableFile, MemoryFile};
use crate::vfs::{Creds, FileDescription, FileState, Inode, Stat, VfsPath};
use crate::{errno, return_errno};
use std::sync::Arc;

/// `makedev(3)`: the kernel's 64-bit `dev_t` encoding.
pub const fn makedev(major: u64, minor: u64) -> u64 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

pub const fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

pub const fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// The memory devices (major 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemDevice {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
}

impl MemDevice {
    const ALL: [(MemDevice, &'static [u8], u64); 5] = [
        (MemDevice::Null, b"null", 3),
        (MemDevice::Zero, b"zero", 5),
        (MemDevice::Full, b"full", 7),
        (MemDevice::Random, b"random", 8),
        (MemDevice::Urandom, b"urandom", 9),
    ];

    fn from_rdev(rdev: u64) -> Option<MemDevice> {
        if major(rdev) != 1 {
            return None;
        }
        MemDevice::ALL
            .iter()
            .find(|(_, _, m)| *m == minor(rdev))
            .map(|(d, _, _)| *d)
    }
}

/// Open the device `rdev` behind the node `inode` (at `path`).
pub fn open_device(
    rdev: u64,
    inode: Arc<dyn Inode>,
    path: &VfsPath,
    flags: u32,
) -> Result<Arc<dyn FileDescription>> {
    if inode.mode() & libc::S_IFMT != libc::S_IFCHR {
        // No block devices in the sandbox.
        return_errno!(ENXIO);
    }
    // ENXIO for the terminal devices too: the syscall layer opens those (`fs::devpts`).
    match MemDevice::from_rdev(rdev) {
        Some(dev) => Ok(Arc::new(MemDeviceFile {
            dev,
            inode,
            path: path.clone(),
            state: FileState::new(flags),
        })),
        None => Err(errno!(ENXIO)),
    }
}

/// A fresh `/dev`: the memory devices, an empty `shm` directory to mount a tmpfs on, and
/// the conventional `fd`/`stdin`/`stdout`/`stderr` links into `/proc/self/fd`.
pub fn new_devfs(mf: &Arc<MemoryFile>) -> Result<Arc<TmpfsInode>> {
    let root = Tmpfs::new_root(mf, 0o755);
    let creds = Creds::root();
    for (_, name, minor) in MemDevice::ALL {
        root.mknod(name, libc::S_IFCHR | 0o666, makedev(1, minor), &creds)?;
    }
    // The terminal devices (major 5) are opened by the syscall layer, which knows the
    // caller (its controlling terminal, the owner of a new pty): see `fs::devpts`.
    root.mknod(b"tty", libc::S_IFCHR | 0o666, makedev(5, 0), &creds)?;
    root.mknod(b"ptmx", libc::S_IFCHR | 0o666, makedev(5, 2), &creds)?;
    root.mkdir(b"shm", 0o1777, &creds)?;
    root.mkdir(b"pts", 0o755, &creds)?;
    root.symlink(b"fd", b"/proc/self/fd", &creds)?;
    root.symlink(b"stdin", b"/proc/self/fd/0", &creds)?;
    root.symlink(b"stdout", b"/proc/self/fd/1", &creds)?;
    root.symlink(b"stderr", b"/proc/self/fd/2", &creds)?;
    Ok(root)
}

/// An open memory device.
pub struct MemDeviceFile {
    dev: MemDevice,
    inode: Arc<dyn Inode>,
    path: VfsPath,
    state: FileState,
}

/// Reads from the random devices are capped per call like Linux's (32 MiB).
const RANDOM_READ_MAX: usize = 32 << 20;

impl FileDescription for MemDeviceFile {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        match self.dev {
            MemDevice::Null => Ok(0),
            MemDevice::Zero | MemDevice::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            MemDevice::Random | MemDevice::Urandom => {
                let n = buf.len().min(RANDOM_READ_MAX);
                let chunk = buf.get_mut(..n).ok_or(errno!(EINVAL))?;
                let mut done = 0;
                while done < n {
                    let rest = chunk.get_mut(done..).ok_or(errno!(EINVAL))?;
                    done += crate::host::getrandom(rest)?;
                }
                Ok(n)
            }
        }
    }

    fn write(&self, buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        match self.dev {
            MemDevice::Full => Err(errno!(ENOSPC)),
            // Writes to random devices would mix entropy in; the sandbox's pool is the
            // host's, so they are accepted and dropped.
            _ => Ok(buf.len()),
        }
    }

    fn discards_writes(&self) -> bool {
        self.dev == MemDevice::Null
    }

    fn mappable(&self) -> Option<Arc<dyn MappableFile>> {
        // A private mapping of /dev/zero is zero-filled memory.
        (self.dev == MemDevice::Zero).then(|| Arc::new(Zeros) as Arc<dyn MappableFile>)
    }

    fn seek(&self, _offset: i64, _whence: i32) -> Result<u64> {
        // Linux's memory devices accept any seek and stay at 0.
        Ok(0)
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

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }
}

#[cfg(test)]
mod tests;

/// The bytes behind a mapping of /dev/zero.
struct Zeros;

impl MappableFile for Zeros {
    fn read_at(&self, buf: &mut [u8], _offset: u64) -> Result<usize> {
        buf.fill(0);
        Ok(buf.len())
    }
}
