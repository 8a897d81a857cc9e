//! Open files: the [`FileDescription`] trait and the pieces every filesystem shares
//! (offset and status flags, directory files, `O_PATH` files, `getdents` packing).

use super::mount::VfsPath;
use super::types::{dtype_of_mode, DirEntry, Stat, StatFs};
use crate::error::Result;
use crate::kernel::Task;
use crate::mm::{MappableFile, UserAddr};
use crate::{errno, return_errno};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// An open file description (Linux `struct file`): shared by every fd that `dup`s it and
/// across `fork`. The syscall layer has already checked the access mode (`EBADF` for a read
/// on an `O_WRONLY` description) before calling `read`/`write`.
pub trait FileDescription: Send + Sync {
    /// Read into `buf` at `offset`, or at the description's own offset (advancing it) when
    /// `offset` is `None`.
    fn read(&self, _buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EINVAL))
    }

    /// Write `buf` at `offset`, or at the description's offset (end of file with
    /// `O_APPEND`) when `None`.
    fn write(&self, _buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EINVAL))
    }

    /// `lseek(2)`: the new offset.
    fn seek(&self, _offset: i64, _whence: i32) -> Result<u64> {
        Err(errno!(ESPIPE))
    }

    fn stat(&self) -> Result<Stat>;

    fn statfs(&self) -> Result<StatFs> {
        match self.path() {
            Some(p) => p.inode().statfs(),
            None => Err(errno!(ENOSYS)),
        }
    }

    /// Pack directory entries from the current position into `sink`, advancing it.
    fn getdents(&self, _sink: &mut DirentSink) -> Result<()> {
        Err(errno!(ENOTDIR))
    }

    /// A device- or file-specific `ioctl(2)`; FIOCLEX/FIONCLEX never get here.
    fn ioctl(&self, _task: &Task, _cmd: u32, _arg: UserAddr) -> Result<u64> {
        Err(errno!(ENOTTY))
    }

    /// Access mode and status flags, as `F_GETFL` reports them.
    fn status_flags(&self) -> u32;

    /// `F_SETFL`: only `O_APPEND`, `O_NONBLOCK`, `O_ASYNC`, `O_DIRECT`, `O_NOATIME` change.
    fn set_status_flags(&self, flags: u32) -> Result<()>;

    /// The pages behind a regular file, for `mmap` and the ELF loader.
    fn mappable(&self) -> Option<Arc<dyn MappableFile>> {
        None
    }

    /// Where the file was opened, if it has a place in the tree (`fchdir`, `*at` calls).
    fn path(&self) -> Option<VfsPath> {
        None
    }

    // ---- readiness, for poll, select and epoll ----

    /// The events ready now (`events::IN`, `OUT`, `HUP`…). Files that never block are
    /// always readable and writable.
    fn readiness(&self) -> u32 {
        use crate::kernel::wait::events;
        events::IN | events::OUT | events::RDNORM | events::WRNORM
    }

    /// The queue notified when readiness changes; `None` if it never changes.
    fn wait_queue(&self) -> Option<std::sync::Arc<crate::kernel::wait::WaitQueue>> {
        None
    }

    /// How long a blocking read waits for data before it returns 0 instead (a
    /// terminal's VTIME with VMIN 0); `None` to wait as long as it takes.
    fn read_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// The terminal this file is, for job control and controlling terminals. `None` for
    /// files that are not terminals (and for pty masters), which job control never
    /// touches.
    fn tty(&self) -> Option<Arc<dyn crate::kernel::tty::Terminal>> {
        None
    }

    /// Writes succeed without reading the caller's buffer (`/dev/null`), so a bad
    /// pointer is not an error, as in Linux.
    fn discards_writes(&self) -> bool {
        false
    }

    /// `ftruncate(2)`.
    fn truncate(&self, _size: u64) -> Result<()> {
        Err(errno!(EINVAL))
    }

    /// The concrete description, for the few calls that only make sense on one kind of
    /// file (`F_SETPIPE_SZ` on a pipe, nesting checks in `epoll_ctl`), as Linux's
    /// `get_pipe_info` or `is_file_epoll` look at `f_op`.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// The socket behind a socket file, for the socket syscalls (`ENOTSOCK` otherwise).
    fn as_socket(&self) -> Option<&dyn crate::net::Socket> {
        None
    }

    /// A name for logs and `/proc/self/maps`: the absolute path if the file has one.
    fn path_name(&self) -> String {
        self.path()
            .map(|p| String::from_utf8_lossy(&p.absolute()).into_owned())
            .unwrap_or_default()
    }
}

/// Flags `F_SETFL` may change.
pub const SETFL_MASK: u32 =
    (libc::O_APPEND | libc::O_NONBLOCK | libc::O_ASYNC | libc::O_DIRECT | libc::O_NOATIME) as u32;

/// The kernel's `O_LARGEFILE` on x86_64, which 64-bit opens always get and `F_GETFL`
/// shows (glibc, and so the libc crate, define it as 0 there).
pub const O_LARGEFILE: u32 = 0o100000;

/// Flags `open` does not keep in the description (Linux's `do_dentry_open`).
const OPEN_ONLY_FLAGS: u32 =
    (libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC) as u32;

/// The offset and status flags most descriptions carry.
/// The status flags of a file with no offset (pipes, eventfd, timerfd, epoll, signalfd):
/// what `F_GETFL` reports and the part of it `F_SETFL` may change.
pub struct StatusFlags(AtomicU32);

impl StatusFlags {
    pub fn new(flags: u32) -> StatusFlags {
        StatusFlags(AtomicU32::new(flags))
    }

    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// `F_SETFL`: only the bits of SETFL_MASK change.
    pub fn set(&self, new: u32) {
        let old = self.get();
        self.0
            .store((old & !SETFL_MASK) | (new & SETFL_MASK), Ordering::Relaxed);
    }
}

pub struct FileState {
    flags: AtomicU32,
    offset: Mutex<u64>,
}

impl FileState {
    pub fn new(open_flags: u32) -> FileState {
        FileState {
            flags: AtomicU32::new((open_flags & !OPEN_ONLY_FLAGS) | O_LARGEFILE),
            offset: Mutex::new(0),
        }
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn set_flags(&self, new: u32) {
        let old = self.flags();
        self.flags
            .store((old & !SETFL_MASK) | (new & SETFL_MASK), Ordering::Relaxed);
    }

    pub fn append(&self) -> bool {
        self.flags() & libc::O_APPEND as u32 != 0
    }

    /// The offset, locked: positioned I/O holds it across the operation as Linux's
    /// `f_pos_lock` does.
    pub fn offset(&self) -> MutexGuard<'_, u64> {
        self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `io` at `offset`, or at the description's offset and advance it.
    pub fn with_offset(
        &self,
        offset: Option<u64>,
        io: impl FnOnce(u64) -> Result<usize>,
    ) -> Result<usize> {
        match offset {
            Some(off) => io(off),
            None => {
                let mut pos = self.offset();
                let n = io(*pos)?;
                *pos = pos.checked_add(n as u64).ok_or(errno!(EOVERFLOW))?;
                Ok(n)
            }
        }
    }

    /// `lseek` over a file of `size` bytes.
    pub fn seek(&self, offset: i64, whence: i32, size: u64) -> Result<u64> {
        let mut pos = self.offset();
        let new = seek_offset(*pos, size, offset, whence)?;
        *pos = new;
        Ok(new)
    }
}

/// The new offset for `lseek(offset, whence)` from `cur` in a file of `size` bytes
/// (`generic_file_llseek`): `EINVAL` for a negative result or unknown `whence`, `ENXIO`
/// for `SEEK_DATA`/`SEEK_HOLE` at or past the end.
pub fn seek_offset(cur: u64, size: u64, offset: i64, whence: i32) -> Result<u64> {
    let base = match whence {
        libc::SEEK_SET => 0i128,
        libc::SEEK_CUR => i128::from(cur),
        libc::SEEK_END => i128::from(size),
        libc::SEEK_DATA | libc::SEEK_HOLE => {
            let off = u64::try_from(offset).map_err(|_| errno!(ENXIO))?;
            if off >= size {
                return_errno!(ENXIO);
            }
            return Ok(if whence == libc::SEEK_DATA { off } else { size });
        }
        _ => return_errno!(EINVAL),
    };
    let new = base + i128::from(offset);
    if new < 0 {
        return_errno!(EINVAL);
    }
    // Linux's MAX_LFS_FILESIZE is i64::MAX.
    u64::try_from(new)
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
        .ok_or(errno!(EOVERFLOW))
}

/// Which `getdents` record layout to pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirentFormat {
    /// `struct linux_dirent64` (`getdents64`).
    Dirent64,
    /// The old `struct linux_dirent` (`getdents`), `d_type` in the last byte.
    Dirent,
}

/// A bounded buffer of packed directory records.
pub struct DirentSink {
    buf: Vec<u8>,
    cap: usize,
    format: DirentFormat,
}

impl DirentSink {
    pub fn new(cap: usize, format: DirentFormat) -> DirentSink {
        DirentSink {
            buf: Vec::new(),
            cap,
            format,
        }
    }

    /// Append one record; false (and nothing written) if it does not fit.
    pub fn push(&mut self, ino: u64, off: i64, d_type: u8, name: &[u8]) -> bool {
        // Header: ino(8) off(8) reclen(2) [+ type(1) for dirent64], name, NUL [, type].
        let header = match self.format {
            DirentFormat::Dirent64 => 19,
            DirentFormat::Dirent => 18,
        };
        let trailer = match self.format {
            DirentFormat::Dirent64 => 1,
            DirentFormat::Dirent => 2,
        };
        let reclen = (header + name.len() + trailer + 7) & !7;
        let Ok(reclen16) = u16::try_from(reclen) else {
            return false;
        };
        if self.buf.len() + reclen > self.cap {
            return false;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(&ino.to_ne_bytes());
        self.buf.extend_from_slice(&off.to_ne_bytes());
        self.buf.extend_from_slice(&reclen16.to_ne_bytes());
        if self.format == DirentFormat::Dirent64 {
            self.buf.push(d_type);
        }
        self.buf.extend_from_slice(name);
        self.buf.resize(start + reclen, 0);
        if self.format == DirentFormat::Dirent {
            if let Some(last) = self.buf.last_mut() {
                *last = d_type;
            }
        }
        true
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// An open directory of any filesystem: lists `.`, `..` and the inode's entries. The
/// listing is snapshotted at offset 0 so that positions stay stable while it is read.
pub struct DirFile {
    path: VfsPath,
    state: FileState,
    snapshot: Mutex<Vec<DirEntry>>,
}

impl DirFile {
    pub fn new(path: VfsPath, flags: u32) -> DirFile {
        DirFile {
            path,
            state: FileState::new(flags),
            snapshot: Mutex::new(Vec::new()),
        }
    }

    fn parent_ino(&self) -> u64 {
        let mut cur = self.path.clone();
        while cur.is_mount_root() {
            match &cur.mount.mountpoint {
                Some(mp) => cur = mp.clone(),
                None => break,
            }
        }
        let parent = cur.dentry.parent().unwrap_or_else(|| cur.dentry.clone());
        parent.inode().stat().map(|s| s.ino).unwrap_or(0)
    }
}

impl FileDescription for DirFile {
    fn read(&self, _buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EISDIR))
    }

    fn write(&self, _buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EISDIR))
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        if whence != libc::SEEK_SET && whence != libc::SEEK_CUR {
            return_errno!(EINVAL);
        }
        self.state.seek(offset, whence, 0)
    }

    fn stat(&self) -> Result<Stat> {
        self.path.inode().stat()
    }

    fn getdents(&self, sink: &mut DirentSink) -> Result<()> {
        let mut pos = self.state.offset();
        let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if *pos == 0 || snap.is_empty() {
            let st = self.path.inode().stat()?;
            let mut all = vec![
                DirEntry {
                    ino: st.ino,
                    d_type: libc::DT_DIR,
                    name: b".".to_vec(),
                },
                DirEntry {
                    ino: self.parent_ino(),
                    d_type: libc::DT_DIR,
                    name: b"..".to_vec(),
                },
            ];
            all.extend(self.path.inode().readdir()?);
            *snap = all;
        }
        let start = usize::try_from(*pos).unwrap_or(usize::MAX);
        let mut next = start;
        for e in snap.iter().skip(start) {
            let off = i64::try_from(next).unwrap_or(i64::MAX).saturating_add(1);
            if !sink.push(e.ino, off, e.d_type, &e.name) {
                if sink.is_empty() {
                    return_errno!(EINVAL, "getdents buffer too small for one entry");
                }
                break;
            }
            next += 1;
        }
        *pos = next as u64;
        Ok(())
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

/// An `O_PATH` description: names a place, allows `fstat`, `fchdir` (for directories) and
/// `*at` lookups; everything else is `EBADF`.
pub struct OPathFile {
    path: VfsPath,
    state: FileState,
}

impl OPathFile {
    pub fn new(path: VfsPath, flags: u32) -> OPathFile {
        // Linux keeps only O_PATH, O_DIRECTORY, O_NOFOLLOW (and the access mode bits are
        // ignored) for O_PATH descriptions.
        let keep = (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW) as u32;
        OPathFile {
            path,
            state: FileState::new(flags & keep),
        }
    }
}

impl FileDescription for OPathFile {
    fn read(&self, _buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EBADF))
    }
    fn write(&self, _buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EBADF))
    }
    fn seek(&self, _offset: i64, _whence: i32) -> Result<u64> {
        Err(errno!(EBADF))
    }
    fn stat(&self) -> Result<Stat> {
        self.path.inode().stat()
    }
    fn getdents(&self, _sink: &mut DirentSink) -> Result<()> {
        Err(errno!(EBADF))
    }
    fn ioctl(&self, _task: &Task, _cmd: u32, _arg: UserAddr) -> Result<u64> {
        Err(errno!(EBADF))
    }
    fn status_flags(&self) -> u32 {
        self.state.flags()
    }
    fn set_status_flags(&self, _flags: u32) -> Result<()> {
        Err(errno!(EBADF))
    }
    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }
    fn truncate(&self, _size: u64) -> Result<()> {
        Err(errno!(EBADF))
    }
}

/// `d_type` for an inode's stat, for filesystems building [`DirEntry`]s.
pub fn dtype_of(st: &Stat) -> u8 {
    dtype_of_mode(st.mode)
}
