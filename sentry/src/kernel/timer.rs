//! Timers: `alarm`/`setitimer` and POSIX timers, served by one sentry thread.
//!
//! Wall-clock timers sleep until their deadline. CPU-time timers (ITIMER_VIRTUAL,
//! ITIMER_PROF, timers on CPU clocks) cannot be woken by the host when the application has
//! used enough CPU, so while any is armed the thread polls their clocks every few
//! milliseconds — timer resolution is that period, and no CPU is spent when none is armed.
#![deny(unsafe_code)]

use super::process::{lock, TaskShared, ThreadGroup};
use super::signal::SigInfo;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often armed CPU-time timers are checked.
const CPU_POLL: Duration = Duration::from_millis(5);

/// A clock that reads the CPU time a process or thread has used.
pub type CpuClock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// What a timer measures.
#[derive(Clone)]
pub enum TimerClock {
    /// Wall-clock time (CLOCK_REALTIME, MONOTONIC, BOOTTIME, ITIMER_REAL).
    Wall,
    /// CPU time, read from the clock.
    Cpu(CpuClock),
}

/// Where an expiry goes.
#[derive(Clone)]
pub enum TimerTarget {
    Process(Weak<ThreadGroup>),
    Thread(Weak<TaskShared>),
    /// SIGEV_NONE: only the overrun count and `timer_gettime` change.
    Nowhere,
}

enum Deadline {
    At(Instant),
    Cpu(Duration),
}

struct TimerState {
    deadline: Option<Deadline>,
    interval: Duration,
    /// Expirations since the last signal was taken (`timer_getoverrun`).
    overrun: u64,
    /// A signal for this timer is queued and not yet delivered.
    signal_pending: bool,
}

pub struct Timer {
    pub clock: TimerClock,
    pub target: TimerTarget,
    /// The signal and its `siginfo` template (SI_TIMER with the timer id and value for
    /// POSIX timers; SI_KERNEL for itimers).
    pub info: SigInfo,
    state: Mutex<TimerState>,
}

impl Timer {
    pub fn new(clock: TimerClock, target: TimerTarget, info: SigInfo) -> Arc<Timer> {
        Arc::new(Timer {
            clock,
            target,
            info,
            state: Mutex::new(TimerState {
                deadline: None,
                interval: Duration::ZERO,
                overrun: 0,
                signal_pending: false,
            }),
        })
    }

    fn cpu_now(&self) -> Duration {
        match &self.clock {
            TimerClock::Cpu(c) => c(),
            TimerClock::Wall => Duration::ZERO,
        }
    }

    /// Time left and interval, as `getitimer`/`timer_gettime` report them.
    pub fn get(&self) -> (Duration, Duration) {
        let st = lock(&self.state);
        let left = match &st.deadline {
            None => Duration::ZERO,
            Some(Deadline::At(t)) => t.saturating_duration_since(Instant::now()),
            Some(Deadline::Cpu(d)) => d.saturating_sub(self.cpu_now()),
        };
        (left, st.interval)
    }

    /// Arm (or with `value` zero, disarm) the timer; returns the previous setting.
    pub fn set(
        &self,
        service: &TimerService,
        value: Duration,
        interval: Duration,
    ) -> (Duration, Duration) {
        let old = self.get();
        {
            let mut st = lock(&self.state);
            st.interval = interval;
            st.overrun = 0;
            st.deadline = if value.is_zero() {
                None
            } else {
                Some(match self.clock {
                    TimerClock::Wall => Deadline::At(Instant::now() + value),
                    TimerClock::Cpu(_) => Deadline::Cpu(self.cpu_now() + value),
                })
            };
        }
        service.changed();
        old
    }

    pub fn overrun(&self) -> u64 {
        lock(&self.state).overrun
    }

    /// The application took this timer's signal: the overrun it reports, and the next
    /// expiry queues a new signal.
    pub fn signal_taken(&self) -> u64 {
        let mut st = lock(&self.state);
        st.signal_pending = false;
        std::mem::take(&mut st.overrun)
    }

    /// When it next fires, for the service's sleep: wall deadline or "poll".
    fn next(&self) -> Option<Instant> {
        match &lock(&self.state).deadline {
            None => None,
            Some(Deadline::At(t)) => Some(*t),
            Some(Deadline::Cpu(_)) => Some(Instant::now() + CPU_POLL),
        }
    }

    /// Fire if due; rearm periodic timers, counting missed periods as overruns.
    fn fire_if_due(&self, kernel: &super::Kernel) {
        let due = {
            let mut st = lock(&self.state);
            let (due, missed, rearm) = match &st.deadline {
                None => (false, 0, None),
                Some(Deadline::At(t)) => {
                    let now = Instant::now();
                    if now < *t {
                        (false, 0, None)
                    } else if st.interval.is_zero() {
                        (true, 0, None)
                    } else {
                        let late = now.duration_since(*t).as_nanos() / st.interval.as_nanos();
                        let periods = u32::try_from(late + 1).unwrap_or(u32::MAX);
                        (
                            true,
                            late as u64,
                            Some(Deadline::At(*t + st.interval * periods)),
                        )
                    }
                }
                Some(Deadline::Cpu(d)) => {
                    let now = self.cpu_now();
                    if now < *d {
                        (false, 0, None)
                    } else if st.interval.is_zero() {
                        (true, 0, None)
                    } else {
                        let late = (now - *d).as_nanos() / st.interval.as_nanos();
                        let periods = u32::try_from(late + 1).unwrap_or(u32::MAX);
                        (
                            true,
                            late as u64,
                            Some(Deadline::Cpu(*d + st.interval * periods)),
                        )
                    }
                }
            };
            if due {
                st.deadline = rearm;
                if st.signal_pending {
                    st.overrun = st.overrun.saturating_add(1 + missed);
                    false
                } else {
                    st.overrun = missed;
                    st.signal_pending = true;
                    true
                }
            } else {
                false
            }
        };
        if !due {
            return;
        }
        let mut info = self.info;
        if info.signo == 0 {
            let _ = self.signal_taken();
            return;
        }
        info.errno = 0;
        match &self.target {
            TimerTarget::Process(tg) => {
                if let Some(tg) = tg.upgrade() {
                    kernel.signal_group(&tg, info);
                }
            }
            TimerTarget::Thread(t) => {
                if let Some(t) = t.upgrade() {
                    kernel.signal_thread(&t, info);
                }
            }
            TimerTarget::Nowhere => {}
        }
        // POSIX timers stay "pending" until the signal is taken (which reports the
        // overruns); itimers queue a signal per expiry like Linux's.
        if self.info.code != super::signal::code::SI_TIMER {
            self.signal_taken();
        }
    }
}

/// The thread that fires timers.
#[derive(Default)]
pub struct TimerService {
    /// The timers, and whether one changed since the thread last looked.
    timers: Mutex<(Vec<Weak<Timer>>, bool)>,
    cv: Condvar,
    started: std::sync::OnceLock<()>,
}

impl TimerService {
    /// Track `timer`; it stops being tracked when its last owner drops it.
    pub fn add(&self, kernel: &Arc<super::Kernel>, timer: &Arc<Timer>) {
        lock(&self.timers).0.push(Arc::downgrade(timer));
        let k = Arc::downgrade(kernel);
        self.started.get_or_init(|| {
            let _ = std::thread::Builder::new()
                .name("timers".into())
                .spawn(move || run(k));
        });
        self.changed();
    }

    fn changed(&self) {
        lock(&self.timers).1 = true;
        self.cv.notify_all();
    }
}

fn run(kernel: Weak<super::Kernel>) {
    loop {
        let Some(k) = kernel.upgrade() else { return };
        let service = &k.timers;
        let live: Vec<Arc<Timer>> = {
            let mut list = lock(&service.timers);
            list.1 = false;
            list.0.retain(|t| t.strong_count() > 0);
            list.0.iter().filter_map(Weak::upgrade).collect()
        };
        for t in &live {
            t.fire_if_due(&k);
        }
        let next = live.iter().filter_map(|t| t.next()).min();
        drop(live);
        let guard = lock(&service.timers);
        if guard.1 {
            continue;
        }
        let wait = match next {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        let _ = service.cv.wait_timeout(guard, wait);
    }
}
