//! The host fd notifier: one sentry thread waits (with a host epoll instance) for the
//! host fds behind [`super::HostFile`]s and notifies their wait queues, so that a task
//! blocked on a host terminal or pipe sleeps in the sentry (interruptibly) instead of in
//! a host `read`. gVisor calls this fdnotifier.
//!
//! Registrations are edge-triggered: waiters always re-check readiness with a zero-timeout
//! host `poll` after registering, so only changes need announcing.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::wait::WaitQueue;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock, Weak};

struct Notifier {
    epoll: Epoll,
    queues: Mutex<HashMap<RawFd, Weak<WaitQueue>>>,
}

fn notifier() -> Option<&'static Notifier> {
    static N: OnceLock<Option<&'static Notifier>> = OnceLock::new();
    *N.get_or_init(|| {
        let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!("host fd notifier: epoll_create1: {e}");
                return None;
            }
        };
        let n: &'static Notifier = Box::leak(Box::new(Notifier {
            epoll,
            queues: Mutex::new(HashMap::new()),
        }));
        match std::thread::Builder::new()
            .name("fdnotifier".into())
            .spawn(move || run(n))
        {
            Ok(_) => Some(n),
            Err(e) => {
                tracing::error!("host fd notifier: cannot start its thread: {e}");
                None
            }
        }
    })
}

fn run(n: &Notifier) {
    let mut evs = [EpollEvent::empty(); 64];
    loop {
        let got = match n.epoll.wait(&mut evs, EpollTimeout::NONE) {
            Ok(k) => k,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("host fd notifier: epoll_wait: {e}");
                return;
            }
        };
        for ev in evs.iter().take(got) {
            let Ok(fd) = RawFd::try_from(ev.data()) else {
                continue;
            };
            let q = n
                .queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&fd)
                .and_then(Weak::upgrade);
            if let Some(q) = q {
                q.notify(ev.events().bits() as u32);
            }
        }
    }
}

/// Watch `fd` and notify `queue` of its events. `Ok(false)` if the host cannot poll it
/// (a regular file: always ready, nothing to wait for).
pub fn register(fd: BorrowedFd<'_>, queue: &Arc<WaitQueue>) -> Result<bool> {
    let Some(n) = notifier() else {
        return Ok(false);
    };
    let raw = fd.as_raw_fd();
    let data = u64::try_from(raw).map_err(|_| crate::errno!(EBADF))?;
    let flags = EpollFlags::EPOLLIN
        | EpollFlags::EPOLLOUT
        | EpollFlags::EPOLLPRI
        | EpollFlags::EPOLLRDHUP
        | EpollFlags::EPOLLET;
    // In the map first, so that no event between the two is lost.
    n.queues
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(raw, Arc::downgrade(queue));
    match n.epoll.add(fd, EpollEvent::new(flags, data)) {
        Ok(()) => Ok(true),
        Err(e) => {
            n.queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&raw);
            if e == nix::errno::Errno::EPERM {
                Ok(false)
            } else {
                Err(e.into())
            }
        }
    }
}

/// Stop watching `fd`; call before closing it.
pub fn unregister(fd: BorrowedFd<'_>) {
    let Some(n) = notifier() else { return };
    let _ = n.epoll.delete(fd);
    n.queues
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&fd.as_raw_fd());
}
