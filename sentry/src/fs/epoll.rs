//! `epoll(7)` instances.
//!
//! Each watched file gets a callback on its [`WaitQueue`]; when the file announces an event
//! the callback puts the item on the instance's ready list and wakes the instance's own
//! queue (where `epoll_wait` callers, `poll` callers and outer epoll instances wait). A
//! wait looks at the ready items' current readiness, as Linux's `ep_send_events` does:
//! level-triggered items that are still ready go back to the end of the list (so a small
//! `maxevents` serves every file in turn), edge-triggered ones wait for the next event,
//! one-shot ones are disabled until `EPOLL_CTL_MOD`.
//!
//! The interest list holds the file description weakly: closing the last descriptor of a
//! file removes it from every epoll set, as in Linux. Lock order: an instance's interest
//! list, then a file's wait queue, then ready lists and item settings (the callbacks run
//! under the file's queue lock and take only those).
#![deny(unsafe_code)]

use crate::error::Result;
use crate::fs::eventfd::anon_inode_stat;
use crate::kernel::wait::{events, OwnedRegistration, WaitQueue};
use crate::vfs::{FileDescription, Stat, StatusFlags};
use crate::{errno, return_errno};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
pub const EPOLLEXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;
pub const EPOLLWAKEUP: u32 = libc::EPOLLWAKEUP as u32;
pub const EPOLLONESHOT: u32 = libc::EPOLLONESHOT as u32;
pub const EPOLLET: u32 = libc::EPOLLET as u32;
/// Flags about how to report rather than which events (Linux's `EP_PRIVATE_BITS`).
const PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// What may go with `EPOLLEXCLUSIVE` (Linux's `EPOLLEXCLUSIVE_OK_BITS`).
const EXCLUSIVE_OK_BITS: u32 =
    EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE;
/// How deep epoll instances may nest (Linux's `EP_MAX_NESTS`).
const MAX_NESTS: usize = 4;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The identity of a file description: the address of its shared data.
pub fn file_addr(file: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(file) as *const u8 as usize
}

/// (fd, file address): Linux keys interest items by both.
type ItemKey = (i32, usize);

#[derive(Clone, Copy)]
struct Settings {
    /// Requested events plus `EPOLLERR | EPOLLHUP`, and the private flags.
    events: u32,
    data: u64,
}

struct Item {
    file: Weak<dyn FileDescription>,
    settings: Mutex<Settings>,
    /// On the ready list.
    queued: AtomicBool,
    /// Deleted from the interest list; a late callback must not queue it.
    removed: AtomicBool,
}

struct ReadyList {
    items: Mutex<VecDeque<Arc<Item>>>,
    /// Notified (`IN`) when an item is queued.
    queue: Arc<WaitQueue>,
}

impl ReadyList {
    fn push(&self, item: &Arc<Item>) {
        if item.removed.load(Ordering::Acquire) {
            return;
        }
        // A one-shot item that fired is disabled until EPOLL_CTL_MOD.
        if lock(&item.settings).events & !PRIVATE_BITS == 0 {
            return;
        }
        if !item.queued.swap(true, Ordering::AcqRel) {
            lock(&self.items).push_back(item.clone());
        }
        self.queue.notify(events::IN | events::RDNORM);
    }
}

struct Interest {
    item: Arc<Item>,
    _registration: Option<OwnedRegistration>,
}

/// One epoll instance (`epoll_create1`).
pub struct EpollFile {
    interest: Mutex<BTreeMap<ItemKey, Interest>>,
    ready: Arc<ReadyList>,
    flags: StatusFlags,
}

/// One reported event: `struct epoll_event`'s fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub events: u32,
    pub data: u64,
}

/// `EPOLL_CTL_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtlOp {
    Add,
    Mod,
    Del,
}

impl Default for EpollFile {
    fn default() -> Self {
        EpollFile::new()
    }
}

impl EpollFile {
    pub fn new() -> EpollFile {
        EpollFile {
            interest: Mutex::new(BTreeMap::new()),
            ready: Arc::new(ReadyList {
                items: Mutex::new(VecDeque::new()),
                queue: Arc::new(WaitQueue::new()),
            }),
            flags: StatusFlags::new(libc::O_RDWR as u32),
        }
    }

    /// The queue `epoll_wait` sleeps on.
    pub fn queue(&self) -> Arc<WaitQueue> {
        self.ready.queue.clone()
    }

    /// `epoll_ctl(op, fd, event)` with `target` the description `fd` names; `me` is this
    /// instance as a description (to refuse watching itself). `event` is ignored for `Del`.
    pub fn ctl(
        &self,
        me: &Arc<dyn FileDescription>,
        op: CtlOp,
        fd: i32,
        target: &Arc<dyn FileDescription>,
        event: Event,
    ) -> Result<()> {
        let target_addr = file_addr(target);
        if target_addr == file_addr(me) {
            return_errno!(EINVAL, "an epoll instance cannot watch itself");
        }
        let Some(queue) = target.wait_queue() else {
            return_errno!(EPERM, "the file does not support epoll");
        };
        let mut ev = event.events;
        if op != CtlOp::Del && ev & EPOLLEXCLUSIVE != 0 {
            if op == CtlOp::Mod {
                return_errno!(EINVAL);
            }
            if ev & !EXCLUSIVE_OK_BITS != 0 || is_epoll(target) {
                return_errno!(EINVAL);
            }
        }
        // EPOLLWAKEUP needs CAP_BLOCK_SUSPEND; Linux drops it silently without.
        ev &= !EPOLLWAKEUP;
        ev |= EPOLLERR | EPOLLHUP;
        let key = (fd, target_addr);
        match op {
            CtlOp::Add => {
                // Held across the check and the insertion so that two instances cannot
                // be added into each other at once (Linux's epnested_mutex).
                static NESTING: Mutex<()> = Mutex::new(());
                let _nesting = is_epoll(target).then(|| lock(&NESTING));
                if let Some(inner) = target.as_any().and_then(|a| a.downcast_ref::<EpollFile>()) {
                    if inner.reaches(file_addr(me), 1)? {
                        return_errno!(ELOOP);
                    }
                }
                let mut interest = lock(&self.interest);
                prune(&mut interest);
                if interest.contains_key(&key) {
                    return_errno!(EEXIST);
                }
                let item = Arc::new(Item {
                    file: Arc::downgrade(target),
                    settings: Mutex::new(Settings {
                        events: ev,
                        data: event.data,
                    }),
                    queued: AtomicBool::new(false),
                    removed: AtomicBool::new(false),
                });
                let registration = self.register(&item, queue, ev);
                interest.insert(
                    key,
                    Interest {
                        item: item.clone(),
                        _registration: Some(registration),
                    },
                );
                drop(interest);
                // The file may be ready already: let the next wait look.
                self.ready.push(&item);
            }
            CtlOp::Mod => {
                let mut interest = lock(&self.interest);
                let entry = interest.get_mut(&key).ok_or(errno!(ENOENT))?;
                if lock(&entry.item.settings).events & EPOLLEXCLUSIVE != 0 {
                    return_errno!(EINVAL);
                }
                *lock(&entry.item.settings) = Settings {
                    events: ev,
                    data: event.data,
                };
                // The queue mask follows the new events.
                entry._registration = Some(self.register(&entry.item, queue, ev));
                let item = entry.item.clone();
                drop(interest);
                self.ready.push(&item);
            }
            CtlOp::Del => {
                let removed = lock(&self.interest).remove(&key).ok_or(errno!(ENOENT))?;
                removed.item.removed.store(true, Ordering::Release);
                drop(removed);
            }
        }
        Ok(())
    }

    fn register(&self, item: &Arc<Item>, queue: Arc<WaitQueue>, ev: u32) -> OwnedRegistration {
        let weak_item = Arc::downgrade(item);
        let weak_ready = Arc::downgrade(&self.ready);
        OwnedRegistration::with_callback(
            queue,
            ev & !PRIVATE_BITS,
            Arc::new(move |_| {
                if let (Some(item), Some(ready)) = (weak_item.upgrade(), weak_ready.upgrade()) {
                    ready.push(&item);
                }
            }),
        )
    }

    /// Whether the instance at address `target` is this one or nested in it, counting
    /// `depth` levels above; too deep counts as a loop (`ELOOP`), as in Linux.
    fn reaches(&self, target: usize, depth: usize) -> Result<bool> {
        if depth > MAX_NESTS {
            return Ok(true);
        }
        let inner: Vec<Arc<dyn FileDescription>> = lock(&self.interest)
            .values()
            .filter_map(|i| i.item.file.upgrade())
            .filter(is_epoll)
            .collect();
        for f in inner {
            if file_addr(&f) == target {
                return Ok(true);
            }
            if let Some(e) = f.as_any().and_then(|a| a.downcast_ref::<EpollFile>()) {
                if e.reaches(target, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Take up to `max` events off the ready list without waiting.
    pub fn collect(&self, max: usize) -> Vec<Event> {
        let pending = lock(&self.ready.items).len();
        let mut out = Vec::new();
        let mut again = Vec::new();
        let mut dead = false;
        for _ in 0..pending {
            if out.len() >= max {
                break;
            }
            let Some(item) = lock(&self.ready.items).pop_front() else {
                break;
            };
            // Cleared before looking, so an event from here on queues it again.
            item.queued.store(false, Ordering::Release);
            if item.removed.load(Ordering::Acquire) {
                continue;
            }
            let Some(file) = item.file.upgrade() else {
                dead = true;
                continue;
            };
            let settings = *lock(&item.settings);
            if settings.events & !PRIVATE_BITS == 0 {
                continue;
            }
            let revents = file.readiness() & settings.events & !PRIVATE_BITS;
            if revents == 0 {
                continue;
            }
            out.push(Event {
                events: revents,
                data: settings.data,
            });
            if settings.events & EPOLLONESHOT != 0 {
                lock(&item.settings).events &= PRIVATE_BITS;
            } else if settings.events & EPOLLET == 0 {
                again.push(item);
            }
        }
        for item in again {
            if !item.queued.swap(true, Ordering::AcqRel) {
                lock(&self.ready.items).push_back(item);
            }
        }
        if dead {
            prune(&mut lock(&self.interest));
        }
        out
    }

    /// Files in the interest list (for tests and `/proc/PID/fdinfo`).
    pub fn len(&self) -> usize {
        let mut interest = lock(&self.interest);
        prune(&mut interest);
        interest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drop the items whose file is gone: its last descriptor was closed.
fn prune(interest: &mut BTreeMap<ItemKey, Interest>) {
    interest.retain(|_, i| {
        let alive = i.item.file.strong_count() > 0;
        if !alive {
            i.item.removed.store(true, Ordering::Release);
        }
        alive
    });
}

fn is_epoll(f: &Arc<dyn FileDescription>) -> bool {
    f.as_any().is_some_and(|a| a.is::<EpollFile>())
}

impl FileDescription for EpollFile {
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

    /// Readable when a wait would report something (without consuming edge events).
    fn readiness(&self) -> u32 {
        let items: Vec<Arc<Item>> = lock(&self.ready.items).iter().cloned().collect();
        let ready = items.iter().any(|item| {
            let settings = *lock(&item.settings);
            !item.removed.load(Ordering::Acquire)
                && item
                    .file
                    .upgrade()
                    .is_some_and(|f| f.readiness() & settings.events & !PRIVATE_BITS != 0)
        });
        if ready {
            events::IN | events::RDNORM
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.ready.queue.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::eventfd::EventFd;
    use crate::fs::pipe::new_pipe;

    fn ev(events: u32, data: u64) -> Event {
        Event { events, data }
    }

    fn as_file<T: FileDescription + 'static>(f: Arc<T>) -> Arc<dyn FileDescription> {
        f
    }

    #[test]
    fn level_and_edge_triggered() {
        let ep: Arc<dyn FileDescription> = Arc::new(EpollFile::new());
        let e = ep.as_any().and_then(|a| a.downcast_ref::<EpollFile>());
        let Some(e) = e else { panic!("not an epoll") };
        let (r, w) = new_pipe(0, 0, 0);
        let (r, w) = (as_file(r), as_file(w));
        assert!(e.ctl(&ep, CtlOp::Add, 3, &r, ev(EPOLLIN, 7)).is_ok());
        assert!(e.ctl(&ep, CtlOp::Add, 3, &r, ev(EPOLLIN, 7)).is_err());
        assert!(e.collect(8).is_empty());
        assert_eq!(w.write(b"x", None).ok(), Some(1));
        assert_eq!(e.collect(8), vec![ev(EPOLLIN, 7)]);
        // Level-triggered: still there.
        assert_eq!(e.collect(8), vec![ev(EPOLLIN, 7)]);
        assert!(e
            .ctl(&ep, CtlOp::Mod, 3, &r, ev(EPOLLIN | EPOLLET, 8))
            .is_ok());
        assert_eq!(e.collect(8), vec![ev(EPOLLIN, 8)]);
        assert!(e.collect(8).is_empty());
        assert_eq!(w.write(b"y", None).ok(), Some(1));
        assert_eq!(e.collect(8), vec![ev(EPOLLIN, 8)]);
        assert!(e.ctl(&ep, CtlOp::Del, 3, &r, ev(0, 0)).is_ok());
        assert_eq!(w.write(b"z", None).ok(), Some(1));
        assert!(e.collect(8).is_empty());
        assert!(e.is_empty());
    }

    #[test]
    fn oneshot_closing_and_round_robin() {
        let ep: Arc<dyn FileDescription> = Arc::new(EpollFile::new());
        let Some(e) = ep.as_any().and_then(|a| a.downcast_ref::<EpollFile>()) else {
            panic!("not an epoll")
        };
        let a = as_file(Arc::new(EventFd::new(1, true, false)));
        let b = as_file(Arc::new(EventFd::new(1, true, false)));
        assert!(e.ctl(&ep, CtlOp::Add, 4, &a, ev(EPOLLIN, 1)).is_ok());
        assert!(e
            .ctl(&ep, CtlOp::Add, 5, &b, ev(EPOLLIN | EPOLLONESHOT, 2))
            .is_ok());
        // maxevents 1: both are served in turn.
        let first = e.collect(1);
        let second = e.collect(1);
        assert_eq!(first.len() + second.len(), 2);
        assert_ne!(first, second);
        // b was one-shot: only a stays.
        assert_eq!(e.collect(8), vec![ev(EPOLLIN, 1)]);
        drop(a);
        assert!(e.collect(8).is_empty());
        assert_eq!(e.len(), 1);
        // Re-arming a one-shot item.
        assert!(e.ctl(&ep, CtlOp::Mod, 5, &b, ev(EPOLLIN, 3)).is_ok());
        assert_eq!(e.collect(8), vec![ev(EPOLLIN, 3)]);
    }

    #[test]
    fn nesting_loops_are_refused() {
        let e1: Arc<dyn FileDescription> = Arc::new(EpollFile::new());
        let e2: Arc<dyn FileDescription> = Arc::new(EpollFile::new());
        let Some(ep1) = e1.as_any().and_then(|a| a.downcast_ref::<EpollFile>()) else {
            panic!()
        };
        let Some(ep2) = e2.as_any().and_then(|a| a.downcast_ref::<EpollFile>()) else {
            panic!()
        };
        assert!(ep1.ctl(&e1, CtlOp::Add, 1, &e2, ev(EPOLLIN, 0)).is_ok());
        assert_eq!(
            ep2.ctl(&e2, CtlOp::Add, 2, &e1, ev(EPOLLIN, 0))
                .map_err(|e| e.errno),
            Err(crate::Errno::ELOOP)
        );
        assert_eq!(
            ep1.ctl(&e1, CtlOp::Add, 3, &e1, ev(EPOLLIN, 0))
                .map_err(|e| e.errno),
            Err(crate::Errno::EINVAL)
        );
        // The outer instance sees the inner one become ready.
        let (r, w) = new_pipe(0, 0, 0);
        let r = as_file(r);
        assert!(ep2.ctl(&e2, CtlOp::Add, 4, &r, ev(EPOLLIN, 9)).is_ok());
        assert!(ep1.collect(8).is_empty());
        assert_eq!(w.write(b"x", None).ok(), Some(1));
        assert_eq!(ep1.collect(8), vec![ev(EPOLLIN, 0)]);
    }
}
