//! Futexes: wait queues keyed by address, as futex(2) describes.
//!
//! Private futexes are keyed by (address space, address); shared ones by the MemoryFile
//! frame behind the address, so that processes mapping the same memory meet on it.

use super::wait::{Blocker, Wake};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    Private { mm: usize, addr: u64 },
    Shared { frame_offset: u64 },
}

struct Waiter {
    bitset: u32,
    woken: AtomicBool,
    blocker: Arc<Blocker>,
}

impl Waiter {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.blocker.notify();
    }
}

#[derive(Default)]
pub struct FutexTable {
    queues: Mutex<HashMap<FutexKey, Vec<Arc<Waiter>>>>,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitResult {
    Woken,
    /// The value at the address was not the expected one (`EAGAIN`).
    ValueChanged,
    TimedOut,
    /// A signal arrived first.
    Interrupted,
}

impl FutexTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FutexKey, Vec<Arc<Waiter>>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue on `key` if `still_expected()` holds (checked under the table lock, so a
    /// wake between the check and the sleep is not lost), then sleep on `blocker` until
    /// woken, interrupted by a signal, or `deadline`.
    pub fn wait(
        &self,
        key: FutexKey,
        bitset: u32,
        deadline: Option<Instant>,
        blocker: &Arc<Blocker>,
        still_expected: impl FnOnce() -> bool,
    ) -> WaitResult {
        let waiter = Arc::new(Waiter {
            bitset,
            woken: AtomicBool::new(false),
            blocker: blocker.clone(),
        });
        {
            let mut q = self.lock();
            if !still_expected() {
                return WaitResult::ValueChanged;
            }
            q.entry(key).or_default().push(waiter.clone());
        }
        loop {
            if waiter.woken.load(Ordering::Acquire) {
                return WaitResult::Woken;
            }
            match blocker.sleep(deadline) {
                Wake::Notified => {}
                Wake::TimedOut => return self.cancel(key, &waiter, WaitResult::TimedOut),
                Wake::Interrupted => return self.cancel(key, &waiter, WaitResult::Interrupted),
            }
        }
    }

    /// Leave the queue after a timeout or signal, unless a wake got there first.
    fn cancel(&self, key: FutexKey, waiter: &Arc<Waiter>, why: WaitResult) -> WaitResult {
        let mut q = self.lock();
        if let Some(list) = q.get_mut(&key) {
            if let Some(pos) = list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                list.remove(pos);
                if list.is_empty() {
                    q.remove(&key);
                }
                return why;
            }
        }
        WaitResult::Woken
    }

    /// Wake up to `n` waiters on `key` whose bitset intersects `bitset`.
    pub fn wake(&self, key: FutexKey, n: usize, bitset: u32) -> usize {
        let mut q = self.lock();
        let Some(list) = q.get_mut(&key) else {
            return 0;
        };
        let mut woken = 0;
        let mut i = 0;
        while i < list.len() && woken < n {
            if list.get(i).is_some_and(|w| w.bitset & bitset != 0) {
                list.remove(i).wake();
                woken += 1;
            } else {
                i += 1;
            }
        }
        if list.is_empty() {
            q.remove(&key);
        }
        woken
    }

    /// Wake up to `n` waiters on `from` and move up to `m` more to `to`.
    pub fn requeue(&self, from: FutexKey, to: FutexKey, n: usize, m: usize) -> usize {
        let mut q = self.lock();
        let Some(mut list) = q.remove(&from) else {
            return 0;
        };
        let wake_n = n.min(list.len());
        for w in list.drain(..wake_n) {
            w.wake();
        }
        let move_n = m.min(list.len());
        let moved: Vec<_> = list.drain(..move_n).collect();
        if !list.is_empty() {
            q.insert(from, list);
        }
        if !moved.is_empty() {
            q.entry(to).or_default().extend(moved);
        }
        wake_n + move_n
    }
}

/// A task waiting for a priority-inheritance futex to be handed to it.
pub struct PiWaiter {
    pub tid: i32,
    granted: AtomicBool,
    blocker: Arc<Blocker>,
}

/// PI futexes: the lock word names its owner; waiters queue here and an unlock hands
/// the lock to the first of them directly (futex(2), "Priority-inheritance futexes").
/// Priorities are the host's business: the sentry keeps the protocol, not the boosting.
#[derive(Default)]
pub struct PiTable {
    queues: Mutex<HashMap<FutexKey, std::collections::VecDeque<Arc<PiWaiter>>>>,
}

/// How a PI lock attempt under the table lock went.
pub enum PiAttempt {
    Acquired,
    Queued(Arc<PiWaiter>),
}

impl PiTable {
    pub fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<FutexKey, std::collections::VecDeque<Arc<PiWaiter>>>>
    {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `tid` behind the owner.
    pub fn enqueue(
        queues: &mut HashMap<FutexKey, std::collections::VecDeque<Arc<PiWaiter>>>,
        key: FutexKey,
        tid: i32,
        blocker: &Arc<Blocker>,
    ) -> Arc<PiWaiter> {
        let w = Arc::new(PiWaiter {
            tid,
            granted: AtomicBool::new(false),
            blocker: blocker.clone(),
        });
        queues.entry(key).or_default().push_back(w.clone());
        w
    }

    /// Sleep until the lock is handed over, a signal, or the deadline.
    pub fn wait(&self, key: FutexKey, w: &Arc<PiWaiter>, deadline: Option<Instant>) -> WaitResult {
        loop {
            if w.granted.load(Ordering::Acquire) {
                return WaitResult::Woken;
            }
            let why = match w.blocker.sleep(deadline) {
                Wake::Notified => continue,
                Wake::TimedOut => WaitResult::TimedOut,
                Wake::Interrupted => WaitResult::Interrupted,
            };
            let mut q = self.lock();
            if w.granted.load(Ordering::Acquire) {
                return WaitResult::Woken;
            }
            if let Some(list) = q.get_mut(&key) {
                list.retain(|x| !Arc::ptr_eq(x, w));
                if list.is_empty() {
                    q.remove(&key);
                }
            }
            return why;
        }
    }

    /// Take the first waiter for a hand-over; says whether others remain.
    pub fn next_owner(
        queues: &mut HashMap<FutexKey, std::collections::VecDeque<Arc<PiWaiter>>>,
        key: FutexKey,
    ) -> Option<(Arc<PiWaiter>, bool)> {
        let list = queues.get_mut(&key)?;
        let w = list.pop_front()?;
        let more = !list.is_empty();
        if !more {
            queues.remove(&key);
        }
        Some((w, more))
    }

    pub fn grant(w: &PiWaiter) {
        w.granted.store(true, Ordering::Release);
        w.blocker.notify();
    }
}
