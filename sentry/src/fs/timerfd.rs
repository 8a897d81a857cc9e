//! `timerfd_create(2)` timers. Expirations are counted lazily from the clock whenever the
//! timer is looked at; a sentry-wide timer thread only wakes the timer's waiters at the
//! next expiry, so that blocking reads, `poll` and `epoll` see it become readable.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::fs::eventfd::anon_inode_stat;
use crate::kernel::wait::{events, WaitQueue};
use crate::vfs::{FileDescription, Stat, StatusFlags};
use crate::{errno, return_errno};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

#[derive(Default)]
struct TimerState {
    /// The next expiry; `None` when disarmed.
    next: Option<Instant>,
    /// Zero for a one-shot timer.
    interval: Duration,
    /// Expirations not yet read.
    ticks: u64,
}

impl TimerState {
    /// Count the expirations up to `now`.
    fn update(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        if self.interval.is_zero() {
            self.ticks = self.ticks.saturating_add(1);
            self.next = None;
            return;
        }
        let late = (now - next).as_nanos() / self.interval.as_nanos();
        let n = u64::try_from(late).unwrap_or(u64::MAX).saturating_add(1);
        self.ticks = self.ticks.saturating_add(n);
        self.next = u32::try_from(n)
            .ok()
            .and_then(|k| self.interval.checked_mul(k))
            .and_then(|d| next.checked_add(d));
    }
}

pub struct TimerFd {
    clock: i32,
    state: Mutex<TimerState>,
    flags: StatusFlags,
    queue: Arc<WaitQueue>,
}

impl TimerFd {
    pub fn new(clock: i32, nonblock: bool) -> TimerFd {
        let mut flags = libc::O_RDWR as u32;
        if nonblock {
            flags |= libc::O_NONBLOCK as u32;
        }
        TimerFd {
            clock,
            state: Mutex::new(TimerState::default()),
            flags: StatusFlags::new(flags),
            queue: Arc::new(WaitQueue::new()),
        }
    }

    /// The clock the timer was created on (`CLOCK_MONOTONIC`…).
    pub fn clock(&self) -> i32 {
        self.clock
    }

    fn state(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// (time to the next expiry, interval), zero when disarmed: `timerfd_gettime`.
    pub fn get(&self) -> (Duration, Duration) {
        let now = Instant::now();
        let mut st = self.state();
        st.update(now);
        let left = st
            .next
            .map(|n| n.saturating_duration_since(now))
            .unwrap_or_default();
        (left, st.interval)
    }

    /// Arm the timer to expire at `first` and every `interval` after (zero: once), or
    /// disarm it (`None`). Unread expirations are dropped. Returns the old setting as
    /// [`TimerFd::get`] does.
    pub fn set(&self, first: Option<Instant>, interval: Duration) -> (Duration, Duration) {
        let old = self.get();
        {
            let mut st = self.state();
            *st = TimerState {
                next: first,
                interval: if first.is_some() {
                    interval
                } else {
                    Duration::ZERO
                },
                ticks: 0,
            };
        }
        if let Some(at) = first {
            wake_at(at, &self.queue);
        }
        old
    }
}

impl FileDescription for TimerFd {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        let out = buf.get_mut(..8).ok_or(errno!(EINVAL))?;
        let (ticks, next) = {
            let mut st = self.state();
            st.update(Instant::now());
            let t = std::mem::take(&mut st.ticks);
            (t, st.next)
        };
        if ticks == 0 {
            return_errno!(EAGAIN);
        }
        if let Some(at) = next {
            // Readers of a periodic timer need waking at the next expiry too.
            wake_at(at, &self.queue);
        }
        out.copy_from_slice(&ticks.to_ne_bytes());
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
        let mut st = self.state();
        st.update(Instant::now());
        if st.ticks > 0 {
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

// ---- the timer thread ----

struct Wakeup {
    at: Instant,
    seq: u64,
    queue: Weak<WaitQueue>,
}

impl PartialEq for Wakeup {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Wakeup {}
impl PartialOrd for Wakeup {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Wakeup {
    /// Reversed, so that the `BinaryHeap` (a max-heap) pops the earliest first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
struct TimerThread {
    heap: Mutex<BinaryHeap<Wakeup>>,
    cv: Condvar,
}

fn timer_thread() -> &'static TimerThread {
    static T: OnceLock<&'static TimerThread> = OnceLock::new();
    T.get_or_init(|| {
        let t: &'static TimerThread = Box::leak(Box::default());
        let spawned = std::thread::Builder::new()
            .name("timerfd".into())
            .spawn(move || run_timer_thread(t));
        if let Err(e) = spawned {
            tracing::error!("cannot start the timer thread: {e}");
        }
        t
    })
}

fn run_timer_thread(t: &TimerThread) {
    let mut heap = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while heap.peek().is_some_and(|w| w.at <= now) {
            if let Some(w) = heap.pop() {
                due.push(w.queue);
            }
        }
        if !due.is_empty() {
            drop(heap);
            // A wake-up for a timer that was re-armed since is spurious and harmless:
            // waiters look at the clock again.
            for q in due.iter().filter_map(Weak::upgrade) {
                q.notify(events::IN | events::RDNORM);
            }
            heap = t.heap.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        heap = match heap.peek().map(|w| w.at) {
            Some(at) => {
                t.cv.wait_timeout(heap, at.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => t.cv.wait(heap).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// Notify `queue` (for `IN`) at `at`.
fn wake_at(at: Instant, queue: &Arc<WaitQueue>) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let t = timer_thread();
    t.heap
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Wakeup {
            at,
            seq: SEQ.fetch_add(1, Ordering::Relaxed),
            queue: Arc::downgrade(queue),
        });
    t.cv.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::wait::{Blocker, Wake};

    #[test]
    fn periodic_expirations_are_counted_lazily() {
        let start = Instant::now();
        let mut st = TimerState {
            next: Some(start),
            interval: Duration::from_millis(10),
            ticks: 0,
        };
        st.update(start + Duration::from_millis(35));
        assert_eq!(st.ticks, 4);
        assert_eq!(st.next, Some(start + Duration::from_millis(40)));
        let mut once = TimerState {
            next: Some(start),
            ..TimerState::default()
        };
        once.update(start + Duration::from_secs(5));
        assert_eq!((once.ticks, once.next), (1, None));
    }

    #[test]
    fn the_timer_thread_wakes_waiters() {
        let t = TimerFd::new(libc::CLOCK_MONOTONIC, true);
        let b = Blocker::new();
        let q = t.wait_queue();
        let _r = q.as_ref().map(|q| q.register(&b, events::IN));
        t.set(
            Some(Instant::now() + Duration::from_millis(20)),
            Duration::ZERO,
        );
        assert_eq!(
            b.sleep(Some(Instant::now() + Duration::from_secs(5))),
            Wake::Notified
        );
        let mut buf = [0u8; 8];
        assert_eq!(t.read(&mut buf, None).ok(), Some(8));
        assert_eq!(u64::from_ne_bytes(buf), 1);
    }
}
