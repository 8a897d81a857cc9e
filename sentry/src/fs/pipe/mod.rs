//! Pipes and FIFOs (`pipe(7)`, `fifo(7)`): a [`Pipe`] is the shared buffer and the
//! reader and writer counts; each open end is a [`PipeFile`].
//!
//! Reads and writes never block here: they return `EAGAIN` and the syscall layer waits on
//! the pipe's [`WaitQueue`] when the description is blocking (one wait path for every
//! kind of file). Data changes are announced on the queue after the pipe's lock is
//! released, so an epoll callback may look at the pipe again.
#![deny(unsafe_code)]

pub mod buffer;

use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{anon_dev, FileDescription, Stat, StatusFlags, Timespec, VfsPath, SETFL_MASK};
use crate::{errno, return_errno};
use buffer::{PipeBuffer, PAGE_SIZE};
pub use buffer::{PAGE_SIZE as PIPE_PAGE_SIZE, PIPE_BUF};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// `/proc/sys/fs/pipe-max-size`: the largest size an unprivileged `F_SETPIPE_SZ` may ask.
pub const PIPE_MAX_SIZE: usize = 1 << 20;
/// Linux refuses sizes above 2^31 whatever the privilege (`round_pipe_size`).
const PIPE_HARD_MAX: u64 = 1 << 31;

struct PipeState {
    buf: PipeBuffer,
    readers: u32,
    writers: u32,
    /// How many times a read or write end was opened: a FIFO opener waits for the other
    /// side's counter to move, not for it to be open right now (Linux's `r_counter`).
    r_counter: u64,
    w_counter: u64,
}

/// The pipe shared by both ends (Linux's `pipe_inode_info`).
pub struct Pipe {
    state: Mutex<PipeState>,
    queue: Arc<WaitQueue>,
    ino: u64,
    uid: u32,
    gid: u32,
    created: Timespec,
}

fn pipefs_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(anon_dev)
}

impl Pipe {
    /// An empty pipe owned by `uid`/`gid` (the creator's filesystem ids), with no ends.
    pub fn new(uid: u32, gid: u32) -> Arc<Pipe> {
        static NEXT_INO: AtomicU64 = AtomicU64::new(1);
        Arc::new(Pipe {
            state: Mutex::new(PipeState {
                buf: PipeBuffer::default(),
                readers: 0,
                writers: 0,
                r_counter: 0,
                w_counter: 0,
            }),
            queue: Arc::new(WaitQueue::new()),
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            uid,
            gid,
            created: Timespec::now(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The size in bytes (`F_GETPIPE_SZ`).
    pub fn size(&self) -> usize {
        self.lock().buf.capacity()
    }

    /// `F_SETPIPE_SZ`: round `size` up to a power-of-two number of pages; `EPERM` above
    /// [`PIPE_MAX_SIZE`] unless `privileged`, `EBUSY` if the data would not fit. Returns
    /// the new size.
    pub fn set_size(&self, size: u64, privileged: bool) -> Result<usize> {
        if size > PIPE_HARD_MAX {
            return_errno!(EINVAL);
        }
        let pages = size.div_ceil(PAGE_SIZE as u64).max(1).next_power_of_two();
        let slots = usize::try_from(pages).map_err(|_| errno!(EINVAL))?;
        let bytes = slots.checked_mul(PAGE_SIZE).ok_or(errno!(EINVAL))?;
        if bytes > PIPE_MAX_SIZE && !privileged {
            return_errno!(EPERM);
        }
        let grew = {
            let mut st = self.lock();
            let old = st.buf.capacity();
            st.buf.set_slots(slots)?;
            bytes > old
        };
        if grew {
            self.queue.notify(events::OUT | events::WRNORM);
        }
        Ok(bytes)
    }

    /// Unread bytes (`FIONREAD`).
    pub fn available(&self) -> usize {
        self.lock().buf.len()
    }

    fn open_end(&self, read: bool, write: bool) {
        let mut st = self.lock();
        if read {
            st.readers = st.readers.saturating_add(1);
            st.r_counter = st.r_counter.wrapping_add(1);
        }
        if write {
            st.writers = st.writers.saturating_add(1);
            st.w_counter = st.w_counter.wrapping_add(1);
        }
        drop(st);
        // FIFO openers wait for the other side to appear.
        self.queue.notify(events::IN | events::OUT);
    }

    fn close_end(&self, read: bool, write: bool) {
        let mut ev = 0;
        {
            let mut st = self.lock();
            if read {
                st.readers = st.readers.saturating_sub(1);
                if st.readers == 0 {
                    ev |= events::OUT | events::ERR;
                }
            }
            if write {
                st.writers = st.writers.saturating_sub(1);
                if st.writers == 0 {
                    ev |= events::IN | events::HUP;
                }
            }
        }
        if ev != 0 {
            self.queue.notify(ev);
        }
    }

    fn read(&self, dst: &mut [u8]) -> Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        let n = {
            let mut st = self.lock();
            if st.buf.is_empty() {
                if st.writers == 0 {
                    return Ok(0);
                }
                return_errno!(EAGAIN);
            }
            st.buf.read(dst)
        };
        self.queue.notify(events::OUT | events::WRNORM);
        Ok(n)
    }

    fn write(&self, src: &[u8], packet: bool) -> Result<usize> {
        if src.is_empty() {
            return Ok(0);
        }
        let n = {
            let mut st = self.lock();
            if st.readers == 0 {
                // The syscall layer sends SIGPIPE to the writer with this EPIPE.
                return_errno!(EPIPE);
            }
            st.buf.write(src, packet)?
        };
        self.queue.notify(events::IN | events::RDNORM);
        Ok(n)
    }
}

/// The pipe-side halves of `splice(2)`, `tee(2)` and `vmsplice(2)`. Like reads and
/// writes they never block: `EAGAIN` asks the caller to wait on [`Pipe::queue`].
impl Pipe {
    /// The queue its readers and writers wait on.
    pub fn queue(&self) -> &Arc<WaitQueue> {
        &self.queue
    }

    /// Hand up to `max` unread bytes to `sink`, which returns how many it took; those are
    /// consumed. The pipe stays locked meanwhile, so no reader sees them twice. 0 when
    /// empty with no writer, `EAGAIN` when empty with one.
    pub fn splice_out(
        &self,
        max: usize,
        sink: impl FnOnce(&[u8]) -> Result<usize>,
    ) -> Result<usize> {
        let n = {
            let mut st = self.lock();
            if st.buf.is_empty() {
                if st.writers == 0 {
                    return Ok(0);
                }
                return_errno!(EAGAIN);
            }
            let mut data = vec![0u8; max.min(st.buf.len())];
            let got = st.buf.peek(&mut data);
            let n = sink(data.get(..got).unwrap_or_default())?.min(got);
            st.buf.consume(n);
            n
        };
        if n > 0 {
            self.queue.notify(events::OUT | events::WRNORM);
        }
        Ok(n)
    }

    /// Fill the pipe with what `source` produces when asked for at most a given number of
    /// bytes (no more than `max`, and no more than fits). `EPIPE` without a reader,
    /// `EAGAIN` when full.
    pub fn splice_in(
        &self,
        max: usize,
        source: impl FnOnce(usize) -> Result<Vec<u8>>,
    ) -> Result<usize> {
        let n = {
            let mut st = self.lock();
            if st.readers == 0 {
                return_errno!(EPIPE);
            }
            let room = st.buf.free_bytes().min(max);
            if room == 0 {
                return_errno!(EAGAIN);
            }
            let data = source(room)?;
            let data = data.get(..data.len().min(room)).unwrap_or_default();
            if data.is_empty() {
                return Ok(0);
            }
            st.buf.write(data, false)?
        };
        self.queue.notify(events::IN | events::RDNORM);
        Ok(n)
    }

    /// Move (`consume`, splice) or copy (tee) up to `max` bytes from `self` to `to`, as
    /// much as is there and fits. 0 when `self` is empty with no writer; `EPIPE` when `to`
    /// has no reader; `EAGAIN` when `self` is empty or `to` full; `EINVAL` for one pipe.
    pub fn transfer(&self, to: &Pipe, max: usize, consume: bool) -> Result<usize> {
        if std::ptr::eq(self, to) {
            return_errno!(EINVAL);
        }
        // Two pipe locks: always the lower address first.
        let (mut src, mut dst);
        if (self as *const Pipe) < (to as *const Pipe) {
            src = self.lock();
            dst = to.lock();
        } else {
            dst = to.lock();
            src = self.lock();
        }
        if src.buf.is_empty() {
            if src.writers == 0 {
                return Ok(0);
            }
            return_errno!(EAGAIN);
        }
        if dst.readers == 0 {
            return_errno!(EPIPE);
        }
        let room = dst.buf.free_bytes().min(max).min(src.buf.len());
        if room == 0 {
            return_errno!(EAGAIN);
        }
        let mut data = vec![0u8; room];
        let got = src.buf.peek(&mut data);
        let n = dst.buf.write(data.get(..got).unwrap_or_default(), false)?;
        if consume {
            src.buf.consume(n);
        }
        drop((src, dst));
        to.queue.notify(events::IN | events::RDNORM);
        if consume {
            self.queue.notify(events::OUT | events::WRNORM);
        }
        Ok(n)
    }
}

/// One open end of a pipe or FIFO.
pub struct PipeFile {
    pipe: Arc<Pipe>,
    flags: StatusFlags,
    readable: bool,
    writable: bool,
    /// The writer count this reader saw when opened: `POLLHUP` is shown only once a
    /// writer came and went, so a FIFO reader that opened first is not hung up at once.
    seen_w_counter: u64,
    /// The FIFO's place in the tree; `None` for an anonymous pipe.
    path: Option<VfsPath>,
}

impl PipeFile {
    /// Open an end of `pipe`: `flags` carry the access mode and status flags.
    fn open(pipe: Arc<Pipe>, flags: u32, path: Option<VfsPath>) -> PipeFile {
        let acc = flags & libc::O_ACCMODE as u32;
        let readable = acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32;
        let writable = acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32;
        pipe.open_end(readable, writable);
        let seen_w_counter = if path.is_some() {
            pipe.lock().w_counter
        } else {
            0
        };
        PipeFile {
            pipe,
            flags: StatusFlags::new(flags & (libc::O_ACCMODE as u32 | SETFL_MASK)),
            readable,
            writable,
            seen_w_counter,
            path,
        }
    }

    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
    }

    pub fn readable(&self) -> bool {
        self.readable
    }

    pub fn writable(&self) -> bool {
        self.writable
    }

    fn packet_mode(&self) -> bool {
        self.flags.get() & libc::O_DIRECT as u32 != 0
    }
}

impl Drop for PipeFile {
    fn drop(&mut self) {
        self.pipe.close_end(self.readable, self.writable);
    }
}

/// A new anonymous pipe (`pipe2`): the read end and the write end. `flags` may hold
/// `O_NONBLOCK` and `O_DIRECT`; the caller has rejected the rest.
pub fn new_pipe(flags: u32, uid: u32, gid: u32) -> (Arc<PipeFile>, Arc<PipeFile>) {
    let pipe = Pipe::new(uid, gid);
    let status = flags & (libc::O_NONBLOCK | libc::O_DIRECT) as u32;
    // pipe() counts as one open of each side, as Linux's counters start at 1.
    let r = PipeFile::open(pipe.clone(), libc::O_RDONLY as u32 | status, None);
    let w = PipeFile::open(pipe, libc::O_WRONLY as u32 | status, None);
    (Arc::new(r), Arc::new(w))
}

impl FileDescription for PipeFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        if !self.readable {
            return_errno!(EBADF);
        }
        self.pipe.read(buf)
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        if !self.writable {
            return_errno!(EBADF);
        }
        self.pipe.write(buf, self.packet_mode())
    }

    fn stat(&self) -> Result<Stat> {
        if let Some(p) = &self.path {
            return p.inode().stat();
        }
        let p = &self.pipe;
        Ok(Stat {
            dev: pipefs_dev(),
            ino: p.ino,
            mode: libc::S_IFIFO | 0o600,
            nlink: 1,
            uid: p.uid,
            gid: p.gid,
            rdev: 0,
            size: 0,
            blksize: PAGE_SIZE as u32,
            blocks: 0,
            atime: p.created,
            mtime: p.created,
            ctime: p.created,
        })
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        if u64::from(cmd) == libc::FIONREAD {
            let n = i32::try_from(self.pipe.available()).unwrap_or(i32::MAX);
            task.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(errno!(ENOTTY))
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn path(&self) -> Option<VfsPath> {
        self.path.clone()
    }

    fn readiness(&self) -> u32 {
        let st = self.pipe.lock();
        let mut r = 0;
        if self.readable {
            if !st.buf.is_empty() {
                r |= events::IN | events::RDNORM;
            }
            if st.writers == 0 && st.w_counter != self.seen_w_counter {
                r |= events::HUP;
            }
        }
        if self.writable {
            if !st.buf.is_full() {
                r |= events::OUT | events::WRNORM;
            }
            if st.readers == 0 {
                r |= events::ERR;
            }
        }
        r
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.pipe.queue.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// What identifies a FIFO's inode: (device, inode number).
pub type FifoKey = (u64, u64);

/// The pipes behind FIFOs that are open somewhere, by inode. A FIFO's data lives only
/// while some end is open; the next open after the last close starts empty (fifo(7)).
#[derive(Default)]
pub struct FifoRegistry {
    pipes: Mutex<HashMap<FifoKey, Weak<Pipe>>>,
}

impl FifoRegistry {
    /// The pipe for `key`, made if no end is open.
    pub fn pipe_for(&self, key: FifoKey, uid: u32, gid: u32) -> Arc<Pipe> {
        let mut m = self.pipes.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, w| w.strong_count() > 0);
        if let Some(p) = m.get(&key).and_then(Weak::upgrade) {
            return p;
        }
        let p = Pipe::new(uid, gid);
        m.insert(key, Arc::downgrade(&p));
        p
    }
}

/// The sandbox's FIFO registry.
pub fn fifos() -> &'static FifoRegistry {
    static FIFOS: OnceLock<FifoRegistry> = OnceLock::new();
    FIFOS.get_or_init(FifoRegistry::default)
}

/// `open(2)` of a FIFO at `path` (an `S_IFIFO` inode identified by `key`), with the
/// open flags `flags`. As fifo(7) and Linux's `fifo_open`: `O_RDWR` never waits;
/// `O_RDONLY` waits for a writer unless `O_NONBLOCK`; `O_WRONLY` waits for a reader, or
/// fails with `ENXIO` under `O_NONBLOCK`. Waits end with `ERESTARTSYS` on a signal.
pub fn open_fifo(
    task: &Task,
    registry: &FifoRegistry,
    key: FifoKey,
    path: VfsPath,
    flags: u32,
) -> Result<Arc<dyn FileDescription>> {
    let pipe = registry.pipe_for(key, task.creds.fsuid, task.creds.fsgid);
    let acc = flags & libc::O_ACCMODE as u32;
    let nonblock = flags & libc::O_NONBLOCK as u32 != 0;
    let status = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_TRUNC | libc::O_NOCTTY) as u32;
    let status = status & !(libc::O_CLOEXEC as u32);
    if acc == libc::O_WRONLY as u32 && nonblock && pipe.lock().readers == 0 {
        return_errno!(ENXIO);
    }
    // Count this end as open first, so that an opener of the other side stops waiting.
    let file = Arc::new(PipeFile::open(pipe.clone(), status, Some(path)));
    if nonblock || acc == libc::O_RDWR as u32 {
        return Ok(file);
    }
    let other_side = |st: &PipeState| {
        if acc == libc::O_RDONLY as u32 {
            (st.writers, st.w_counter)
        } else {
            (st.readers, st.r_counter)
        }
    };
    let (open_now, counter_at_open) = other_side(&pipe.lock());
    if open_now > 0 {
        return Ok(file);
    }
    // Wait for the other side's open counter to move: it may open and close again before
    // we run, and that still ends the wait (Linux's wait_for_partner).
    task.block_until(&[(&pipe.queue, events::IN | events::OUT)], None, || {
        Ok((other_side(&pipe.lock()).1 != counter_at_open).then_some(()))
    })?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_halves_never_lose_or_repeat_bytes() {
        let (r, w) = new_pipe(0, 0, 0);
        let (r2, w2) = new_pipe(0, 0, 0);
        let p = r.pipe().clone();
        assert_eq!(p.splice_in(3, |room| Ok(vec![b'a'; room])).ok(), Some(3));
        // A sink that takes only part: the rest stays for the next reader.
        assert_eq!(p.splice_out(10, |d| Ok(d.len() - 1)).ok(), Some(2));
        assert_eq!(p.available(), 1);
        // A failing sink consumes nothing.
        let e = p.splice_out(10, |_| Err(errno!(EIO))).unwrap_err();
        assert_eq!(e.errno, crate::Errno::EIO);
        assert_eq!(p.available(), 1);
        // tee copies, splice moves; a pipe cannot feed itself.
        assert_eq!(p.transfer(w2.pipe(), 10, false).ok(), Some(1));
        assert_eq!(p.available(), 1);
        assert_eq!(p.transfer(w2.pipe(), 10, true).ok(), Some(1));
        assert_eq!((p.available(), r2.pipe().available()), (0, 2));
        assert_eq!(
            p.transfer(&p, 1, true).unwrap_err().errno,
            crate::Errno::EINVAL
        );
        assert_eq!(
            p.transfer(w2.pipe(), 1, true).unwrap_err().errno,
            crate::Errno::EAGAIN
        );
        drop(w);
        assert_eq!(p.transfer(w2.pipe(), 1, true).ok(), Some(0));
        drop(r);
        assert_eq!(
            p.splice_in(1, |_| Ok(vec![1])).unwrap_err().errno,
            crate::Errno::EPIPE
        );
    }

    #[test]
    fn ends_see_each_other_close() {
        let (r, w) = new_pipe(0, 0, 0);
        assert_eq!(r.readiness() & events::IN, 0);
        assert_ne!(w.readiness() & events::OUT, 0);
        assert_eq!(w.write(b"hi", None).ok(), Some(2));
        assert_ne!(r.readiness() & events::IN, 0);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf, None).ok(), Some(2));
        assert_eq!(
            r.read(&mut buf, None).map_err(|e| e.errno),
            Err(crate::Errno::EAGAIN)
        );
        drop(w);
        assert_ne!(r.readiness() & events::HUP, 0);
        assert_eq!(r.read(&mut buf, None).ok(), Some(0));
    }

    #[test]
    fn writing_without_readers_is_epipe() {
        let (r, w) = new_pipe(0, 0, 0);
        drop(r);
        assert_ne!(w.readiness() & events::ERR, 0);
        assert_eq!(
            w.write(b"x", None).map_err(|e| e.errno),
            Err(crate::Errno::EPIPE)
        );
    }

    #[test]
    fn set_size_rounds_to_powers_of_two_pages() {
        let p = Pipe::new(0, 0);
        assert_eq!(p.set_size(1, false).ok(), Some(4096));
        assert_eq!(p.set_size(3 * 4096, false).ok(), Some(4 * 4096));
        assert_eq!(
            p.set_size(2 << 20, false).map_err(|e| e.errno),
            Err(crate::Errno::EPERM)
        );
        assert_eq!(p.set_size(2 << 20, true).ok(), Some(2 << 20));
        assert!(p.set_size(u64::MAX, true).is_err());
    }

    #[test]
    fn the_registry_forgets_closed_fifos() {
        let reg = FifoRegistry::default();
        let a = reg.pipe_for((1, 2), 0, 0);
        assert!(Arc::ptr_eq(&a, &reg.pipe_for((1, 2), 0, 0)));
        drop(a);
        let b = reg.pipe_for((1, 2), 0, 0);
        assert_eq!(b.available(), 0);
        assert_eq!(reg.pipes.lock().map(|m| m.len()).unwrap_or(0), 1);
    }
}
