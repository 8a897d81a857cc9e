//! signalfd: reading pending signals as data (signalfd(2)).
//!
//! The file takes signals from the queues of the task that created it (its thread, then
//! its process), the way a program uses it; Linux reads the queues of whichever task
//! reads, which only differs when the fd is passed to another process.
#![deny(unsafe_code)]

use super::eventfd::anon_inode_stat;
use crate::error::Result;
use crate::kernel::process::{lock, TaskShared};
use crate::kernel::signal::{unblockable_mask, SigInfo};
use crate::kernel::wait::{events, WaitQueue};
use crate::vfs::{FileDescription, Stat, StatusFlags};
use crate::{errno, return_errno};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// `sizeof(struct signalfd_siginfo)`.
pub const SIGNALFD_SIGINFO_SIZE: usize = 128;

pub struct SignalFd {
    owner: Weak<TaskShared>,
    mask: AtomicU64,
    flags: StatusFlags,
    queue: Arc<WaitQueue>,
}

impl SignalFd {
    pub fn new(owner: &Arc<TaskShared>, mask: u64, flags: u32) -> SignalFd {
        SignalFd {
            owner: Arc::downgrade(owner),
            mask: AtomicU64::new(mask & !unblockable_mask()),
            flags: StatusFlags::new(flags),
            queue: owner.tg.signal_events.clone(),
        }
    }

    /// `signalfd` on an existing fd replaces the mask.
    pub fn set_mask(&self, mask: u64) {
        self.mask
            .store(mask & !unblockable_mask(), Ordering::Relaxed);
        self.queue.notify(events::IN);
    }

    fn pending(&self) -> u64 {
        let Some(t) = self.owner.upgrade() else {
            return 0;
        };
        let p = lock(&t.signals).pending.mask() | t.tg.state().pending.mask();
        p & self.mask.load(Ordering::Relaxed)
    }

    fn take(&self) -> Option<SigInfo> {
        let t = self.owner.upgrade()?;
        // As Linux's dequeue_signal: the thread's own queue first, then the process's,
        // lowest signal first in each.
        let blocked = !self.mask.load(Ordering::Relaxed);
        let own = lock(&t.signals).pending.take(blocked);
        own.or_else(|| t.tg.state().pending.take(blocked))
    }
}

/// `struct signalfd_siginfo` for one signal.
fn encode(info: &SigInfo) -> [u8; SIGNALFD_SIGINFO_SIZE] {
    let mut b = [0u8; SIGNALFD_SIGINFO_SIZE];
    let mut put = |off: usize, v: &[u8]| {
        if let Some(d) = b.get_mut(off..off + v.len()) {
            d.copy_from_slice(v);
        }
    };
    put(0, &(info.signo as u32).to_le_bytes()); // ssi_signo
    put(4, &info.errno.to_le_bytes()); // ssi_errno
    put(8, &info.code.to_le_bytes()); // ssi_code
                                      // The rest by the kind of signal, as Linux's signalfd_copyinfo.
    let fault = matches!(
        info.signo,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP
    ) && info.code > 0;
    if info.signo == libc::SIGSYS && info.code > 0 {
        // seccomp's SIGSYS: `status` holds si_syscall and si_arch.
        put(84, &(info.status as u32).to_le_bytes()); // ssi_syscall
        put(88, &info.addr.to_le_bytes()); // ssi_call_addr
        put(96, &((info.status >> 32) as u32).to_le_bytes()); // ssi_arch
    } else if fault {
        put(72, &info.addr.to_le_bytes()); // ssi_addr
    } else {
        put(12, &(info.pid as u32).to_le_bytes()); // ssi_pid
        put(16, &info.uid.to_le_bytes()); // ssi_uid
        if info.signo == libc::SIGCHLD {
            put(40, &(info.status as i32).to_le_bytes()); // ssi_status
        } else {
            // The sigval: ssi_int is its int, the low half of the value.
            put(44, &(info.status as i32).to_le_bytes()); // ssi_int
            put(48, &(info.status as u64).to_le_bytes()); // ssi_ptr
        }
    }
    b
}

impl FileDescription for SignalFd {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        if buf.len() < SIGNALFD_SIGINFO_SIZE {
            return_errno!(EINVAL);
        }
        let mut n = 0;
        while n + SIGNALFD_SIGINFO_SIZE <= buf.len() {
            let Some(info) = self.take() else { break };
            let out = buf
                .get_mut(n..n + SIGNALFD_SIGINFO_SIZE)
                .ok_or(errno!(EINVAL))?;
            out.copy_from_slice(&encode(&info));
            n += SIGNALFD_SIGINFO_SIZE;
        }
        if n == 0 {
            return_errno!(EAGAIN);
        }
        Ok(n)
    }

    fn write(&self, _buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EINVAL))
    }

    fn stat(&self) -> Result<Stat> {
        Ok(anon_inode_stat())
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn readiness(&self) -> u32 {
        if self.pending() != 0 {
            events::IN | events::RDNORM
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
