//! `eventfd(2)`: a 64-bit counter that reads drain (or decrement, in semaphore mode) and
//! writes add to. Like pipes, it never blocks itself: `EAGAIN` lets the syscall layer wait.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::vfs::{FileDescription, Stat, StatusFlags};
use crate::{errno, return_errno};
use std::sync::{Arc, Mutex, OnceLock};

/// The largest value the counter holds: a write that would pass it waits.
const MAX_COUNT: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    flags: StatusFlags,
    queue: Arc<WaitQueue>,
}

impl EventFd {
    /// `flags`: `O_NONBLOCK` (status) and whether reads decrement by one.
    pub fn new(initval: u32, nonblock: bool, semaphore: bool) -> EventFd {
        let mut flags = libc::O_RDWR as u32;
        if nonblock {
            flags |= libc::O_NONBLOCK as u32;
        }
        EventFd {
            count: Mutex::new(u64::from(initval)),
            semaphore,
            flags: StatusFlags::new(flags),
            queue: Arc::new(WaitQueue::new()),
        }
    }

    fn count(&self) -> std::sync::MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The stat of the kernel's one anonymous inode, shared by eventfd, timerfd, epoll…:
/// no file type, mode 0600 (Linux's `anon_inode_inode`).
pub fn anon_inode_stat() -> Stat {
    static DEV: OnceLock<u64> = OnceLock::new();
    Stat {
        dev: *DEV.get_or_init(crate::vfs::anon_dev),
        ino: 1,
        mode: 0o600,
        nlink: 1,
        blksize: 4096,
        ..Stat::default()
    }
}

impl FileDescription for EventFd {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        let out = buf.get_mut(..8).ok_or(errno!(EINVAL))?;
        let v = {
            let mut c = self.count();
            if *c == 0 {
                return_errno!(EAGAIN);
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            v
        };
        out.copy_from_slice(&v.to_ne_bytes());
        self.queue.notify(events::OUT | events::WRNORM);
        Ok(8)
    }

    fn write(&self, buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        let bytes: [u8; 8] = buf
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(errno!(EINVAL))?;
        let v = u64::from_ne_bytes(bytes);
        if v == u64::MAX {
            return_errno!(EINVAL);
        }
        {
            let mut c = self.count();
            match c.checked_add(v) {
                Some(sum) if sum <= MAX_COUNT => *c = sum,
                _ => return_errno!(EAGAIN),
            }
        }
        if v != 0 {
            self.queue.notify(events::IN | events::RDNORM);
        }
        Ok(8)
    }

    fn stat(&self) -> Result<Stat> {
        Ok(anon_inode_stat())
    }

    /// Linux's `noop_llseek`: the position stays 0.
    fn seek(&self, _offset: i64, _whence: i32) -> Result<u64> {
        Ok(0)
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn readiness(&self) -> u32 {
        let c = *self.count();
        let mut r = 0;
        if c > 0 {
            r |= events::IN | events::RDNORM;
        }
        if c < MAX_COUNT {
            r |= events::OUT | events::WRNORM;
        }
        if c == u64::MAX {
            r |= events::ERR;
        }
        r
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(e: &EventFd) -> Result<u64> {
        let mut b = [0u8; 8];
        e.read(&mut b, None)?;
        Ok(u64::from_ne_bytes(b))
    }

    #[test]
    fn counter_and_semaphore_modes() {
        let e = EventFd::new(3, false, false);
        assert_eq!(read(&e).ok(), Some(3));
        assert!(read(&e).is_err());
        let s = EventFd::new(2, false, true);
        assert_eq!(read(&s).ok(), Some(1));
        assert_eq!(read(&s).ok(), Some(1));
        assert!(read(&s).is_err());
    }

    #[test]
    fn overflow_waits_and_short_buffers_are_einval() {
        let e = EventFd::new(0, false, false);
        assert_eq!(e.write(&(MAX_COUNT).to_ne_bytes(), None).ok(), Some(8));
        assert_eq!(e.readiness() & events::OUT, 0);
        assert_eq!(
            e.write(&1u64.to_ne_bytes(), None).map_err(|x| x.errno),
            Err(crate::Errno::EAGAIN)
        );
        assert_eq!(
            e.write(&u64::MAX.to_ne_bytes(), None).map_err(|x| x.errno),
            Err(crate::Errno::EINVAL)
        );
        let mut small = [0u8; 4];
        assert!(e.read(&mut small, None).is_err());
    }
}
