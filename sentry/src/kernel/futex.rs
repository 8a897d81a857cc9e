//! Futexes: wait queues keyed by address, as futex(2) describes.
//!
//! Private futexes are keyed by (address space, address); shared ones by the MemoryFile
//! frame behind the address, so that processes mapping the same memory meet on it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    Private { mm: usize, addr: u64 },
    Shared { frame_offset: u64 },
}

struct Waiter {
    bitset: u32,
    woken: Mutex<bool>,
    cv: Condvar,
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
}

impl FutexTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FutexKey, Vec<Arc<Waiter>>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue on `key` if `still_expected()` holds (checked under the table lock, so a
    /// wake between the check and the sleep is not lost), then sleep until woken or
    /// `deadline`.
    pub fn wait(
        &self,
        key: FutexKey,
        bitset: u32,
        deadline: Option<Instant>,
        still_expected: impl FnOnce() -> bool,
    ) -> WaitResult {
        let waiter = Arc::new(Waiter {
            bitset,
            woken: Mutex::new(false),
            cv: Condvar::new(),
        });
        {
            let mut q = self.lock();
            if !still_expected() {
                return WaitResult::ValueChanged;
            }
            q.entry(key).or_default().push(waiter.clone());
        }
        let mut woken = waiter.woken.lock().unwrap_or_else(|e| e.into_inner());
        while !*woken {
            match deadline {
                None => woken = waiter.cv.wait(woken).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        drop(woken);
                        return self.cancel(key, &waiter);
                    }
                    woken = waiter
                        .cv
                        .wait_timeout(woken, d - now)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
        }
        WaitResult::Woken
    }

    /// Leave the queue after a timeout, unless a wake got there first.
    fn cancel(&self, key: FutexKey, waiter: &Arc<Waiter>) -> WaitResult {
        let mut q = self.lock();
        if let Some(list) = q.get_mut(&key) {
            if let Some(pos) = list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                list.remove(pos);
                if list.is_empty() {
                    q.remove(&key);
                }
                return WaitResult::TimedOut;
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
                let w = list.remove(i);
                *w.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
                w.cv.notify_one();
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
            *w.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
            w.cv.notify_one();
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
