//! Blocking: how a task sleeps in the sentry until an event, a signal, or a deadline.
//!
//! Every task has one [`Blocker`]. Objects that tasks wait on (a pipe, a child process, a
//! futex word) own a [`WaitQueue`] and notify it when their state changes; a waiting task
//! registers its blocker on the queues it cares about, re-checks its condition, and only
//! then sleeps, so no wake-up is lost between the check and the sleep. A signal sent to
//! the task interrupts the sleep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct BlockState {
    /// An event the task may be waiting for happened since it last slept.
    notified: bool,
    /// A signal arrived: the task must return to its syscall loop.
    interrupted: bool,
}

/// What a task sleeps on.
#[derive(Default)]
pub struct Blocker {
    state: Mutex<BlockState>,
    cv: Condvar,
}

/// Why [`Blocker::sleep`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Notified,
    Interrupted,
    TimedOut,
}

impl Blocker {
    pub fn new() -> Arc<Blocker> {
        Arc::new(Blocker::default())
    }

    /// Something the task may be waiting for changed.
    pub fn notify(&self) {
        lock(&self.state).notified = true;
        self.cv.notify_all();
    }

    /// A signal is pending for the task: any sleep ends with [`Wake::Interrupted`] until
    /// [`Blocker::clear_interrupt`].
    pub fn interrupt(&self) {
        lock(&self.state).interrupted = true;
        self.cv.notify_all();
    }

    /// The task has dealt with its pending signals.
    pub fn clear_interrupt(&self) {
        lock(&self.state).interrupted = false;
    }

    pub fn is_interrupted(&self) -> bool {
        lock(&self.state).interrupted
    }

    /// Sleep until notified, interrupted, or `deadline`. A notification that came before
    /// the call counts (and is consumed), so register-check-sleep never loses one.
    pub fn sleep(&self, deadline: Option<Instant>) -> Wake {
        let mut st = lock(&self.state);
        loop {
            if st.interrupted {
                return Wake::Interrupted;
            }
            if st.notified {
                st.notified = false;
                return Wake::Notified;
            }
            st = match deadline {
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Wake::TimedOut;
                    }
                    self.cv
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// Readiness bits, as `poll(2)` and `epoll(7)` name them (the same values in both).
pub mod events {
    pub const IN: u32 = libc::POLLIN as u32;
    pub const PRI: u32 = libc::POLLPRI as u32;
    pub const OUT: u32 = libc::POLLOUT as u32;
    pub const ERR: u32 = libc::POLLERR as u32;
    pub const HUP: u32 = libc::POLLHUP as u32;
    pub const NVAL: u32 = libc::POLLNVAL as u32;
    pub const RDNORM: u32 = libc::POLLRDNORM as u32;
    pub const RDBAND: u32 = libc::POLLRDBAND as u32;
    pub const WRNORM: u32 = libc::POLLWRNORM as u32;
    pub const WRBAND: u32 = libc::POLLWRBAND as u32;
    pub const RDHUP: u32 = libc::POLLRDHUP as u32;
    /// Every event a waiter can ask for.
    pub const ALL: u32 = u32::MAX;
}

/// Who a wait-queue entry wakes.
enum Waiter {
    /// A task sleeping in [`Blocker::sleep`].
    Task(Arc<Blocker>),
    /// A function called with the events (masked) on each notification: how an epoll
    /// instance learns that a file in its interest list changed. It runs with the queue
    /// locked, so it must be short and must not register on or unregister from this queue.
    Callback(Arc<dyn Fn(u32) + Send + Sync>),
}

struct Entry {
    id: u64,
    mask: u32,
    waiter: Waiter,
}

/// Tasks waiting for an object's state to change.
#[derive(Default)]
pub struct WaitQueue {
    entries: Mutex<Vec<Entry>>,
}

static NEXT_ENTRY: AtomicU64 = AtomicU64::new(1);

impl WaitQueue {
    pub fn new() -> WaitQueue {
        WaitQueue::default()
    }

    /// Wake every waiter interested in any of `events`. Tasks are woken once the queue is
    /// unlocked: a woken task leaves the queue first thing, and would otherwise find it
    /// locked and sleep again (two more switches for every `wait` that a child's exit
    /// ends, when both run on one CPU).
    pub fn notify(&self, events: u32) {
        let mut first: Option<Arc<Blocker>> = None;
        let mut more: Vec<Arc<Blocker>> = Vec::new();
        for e in lock(&self.entries).iter() {
            if e.mask & events != 0 {
                match &e.waiter {
                    Waiter::Task(b) if first.is_none() => first = Some(b.clone()),
                    Waiter::Task(b) => more.push(b.clone()),
                    Waiter::Callback(f) => f(e.mask & events),
                }
            }
        }
        for b in first.iter().chain(more.iter()) {
            b.notify();
        }
    }

    /// Register `blocker` for `mask`; the registration ends when the returned guard drops.
    pub fn register(&self, blocker: &Arc<Blocker>, mask: u32) -> Registration<'_> {
        let id = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
        lock(&self.entries).push(Entry {
            id,
            mask,
            waiter: Waiter::Task(blocker.clone()),
        });
        Registration { queue: self, id }
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.entries).is_empty()
    }
}

/// A blocker's place on a wait queue; leaving scope removes it.
pub struct Registration<'a> {
    queue: &'a WaitQueue,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.queue.entries).retain(|e| e.id != self.id);
    }
}

/// A registration that owns its queue, for waiters that outlive a borrow (epoll).
pub struct OwnedRegistration {
    queue: Arc<WaitQueue>,
    id: u64,
}

impl OwnedRegistration {
    pub fn new(queue: Arc<WaitQueue>, blocker: &Arc<Blocker>, mask: u32) -> OwnedRegistration {
        OwnedRegistration::with_waiter(queue, Waiter::Task(blocker.clone()), mask)
    }

    /// Call `f` (with the notified events that are in `mask`) on every notification of
    /// `queue` for as long as the registration lives. See [`Waiter::Callback`] for what
    /// `f` may do.
    pub fn with_callback(
        queue: Arc<WaitQueue>,
        mask: u32,
        f: Arc<dyn Fn(u32) + Send + Sync>,
    ) -> OwnedRegistration {
        OwnedRegistration::with_waiter(queue, Waiter::Callback(f), mask)
    }

    fn with_waiter(queue: Arc<WaitQueue>, waiter: Waiter, mask: u32) -> OwnedRegistration {
        let id = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
        lock(&queue.entries).push(Entry { id, mask, waiter });
        OwnedRegistration { queue, id }
    }
}

impl Drop for OwnedRegistration {
    fn drop(&mut self) {
        lock(&self.queue.entries).retain(|e| e.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn notify_before_sleep_is_not_lost() {
        let b = Blocker::new();
        let q = WaitQueue::new();
        let _r = q.register(&b, events::IN);
        q.notify(events::IN);
        assert_eq!(b.sleep(Some(Instant::now())), Wake::Notified);
        assert_eq!(
            b.sleep(Some(Instant::now() + Duration::from_millis(5))),
            Wake::TimedOut
        );
    }

    #[test]
    fn uninterested_waiters_stay_asleep() {
        let b = Blocker::new();
        let q = WaitQueue::new();
        let _r = q.register(&b, events::OUT);
        q.notify(events::IN);
        assert_eq!(b.sleep(Some(Instant::now())), Wake::TimedOut);
    }

    #[test]
    fn interrupt_wakes_a_sleeper_on_another_thread() {
        let b = Blocker::new();
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.sleep(None));
        std::thread::sleep(Duration::from_millis(10));
        b.interrupt();
        assert_eq!(t.join().ok(), Some(Wake::Interrupted));
        assert!(b.is_interrupted());
        b.clear_interrupt();
        assert!(!b.is_interrupted());
    }

    #[test]
    fn callbacks_see_the_events_they_asked_for() {
        let seen = Arc::new(AtomicU64::new(0));
        let q = Arc::new(WaitQueue::new());
        let s2 = seen.clone();
        let r = OwnedRegistration::with_callback(
            q.clone(),
            events::IN | events::HUP,
            Arc::new(move |ev| {
                s2.fetch_or(u64::from(ev), Ordering::Relaxed);
            }),
        );
        q.notify(events::OUT);
        assert_eq!(seen.load(Ordering::Relaxed), 0);
        q.notify(events::IN | events::OUT);
        assert_eq!(seen.load(Ordering::Relaxed), u64::from(events::IN));
        drop(r);
        assert!(q.is_empty());
    }

    #[test]
    fn dropping_a_registration_unregisters() {
        let b = Blocker::new();
        let q = WaitQueue::new();
        {
            let _r = q.register(&b, events::ALL);
            assert!(!q.is_empty());
        }
        assert!(q.is_empty());
    }
}
