//! Advisory file locks: `flock` (per open file description) and POSIX record locks
//! (per process, or per open file description for OFD locks), as flock(2) and fcntl(2)
//! describe them, kept by the sentry for the whole sandbox.
#![deny(unsafe_code)]

use super::process::lock;
use super::wait::{events, WaitQueue};
use crate::vfs::FileDescription;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// A file, by device and inode number.
pub type FileKey = (u64, u64);

/// Who holds a record lock.
#[derive(Clone, Debug)]
pub enum Owner {
    /// Classic POSIX locks belong to a process.
    Process(i32),
    /// OFD locks belong to an open file description.
    Description(Weak<dyn FileDescription>),
}

impl Owner {
    fn same(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::Process(a), Owner::Process(b)) => a == b,
            (Owner::Description(a), Owner::Description(b)) => Weak::ptr_eq(a, b),
            _ => false,
        }
    }

    fn alive(&self) -> bool {
        match self {
            Owner::Process(_) => true,
            Owner::Description(d) => d.strong_count() > 0,
        }
    }
}

/// One record lock: `[start, end]`, end inclusive (u64::MAX = to the end of the file).
#[derive(Clone, Debug)]
pub struct RecordLock {
    pub owner: Owner,
    pub start: u64,
    pub end: u64,
    pub write: bool,
    /// What F_GETLK reports: the owning pid, or -1 for OFD locks.
    pub pid: i32,
}

struct FlockEntry {
    owner: Weak<dyn FileDescription>,
    exclusive: bool,
}

#[derive(Default)]
struct FileLocks {
    flocks: Vec<FlockEntry>,
    records: Vec<RecordLock>,
}

#[derive(Default)]
pub struct LockTable {
    files: Mutex<HashMap<FileKey, FileLocks>>,
    /// For deadlock detection: the process each blocked process waits on.
    waits_for: Mutex<HashMap<i32, i32>>,
    /// Notified whenever a lock is released.
    pub released: WaitQueue,
}

fn overlaps(a: &RecordLock, start: u64, end: u64) -> bool {
    a.start <= end && start <= a.end
}

impl LockTable {
    /// Try to take a flock; `false` if another description holds a conflicting one.
    pub fn try_flock(
        &self,
        key: FileKey,
        file: &Arc<dyn FileDescription>,
        exclusive: bool,
    ) -> bool {
        let mut files = lock(&self.files);
        let fl = files.entry(key).or_default();
        fl.flocks.retain(|e| e.owner.strong_count() > 0);
        let me = Arc::downgrade(file);
        let conflict = fl
            .flocks
            .iter()
            .any(|e| !Weak::ptr_eq(&e.owner, &me) && (exclusive || e.exclusive));
        if conflict {
            return false;
        }
        // Converting a lock replaces ours.
        fl.flocks.retain(|e| !Weak::ptr_eq(&e.owner, &me));
        fl.flocks.push(FlockEntry {
            owner: me,
            exclusive,
        });
        true
    }

    pub fn unflock(&self, key: FileKey, file: &Arc<dyn FileDescription>) {
        let me = Arc::downgrade(file);
        if let Some(fl) = lock(&self.files).get_mut(&key) {
            fl.flocks
                .retain(|e| !Weak::ptr_eq(&e.owner, &me) && e.owner.strong_count() > 0);
        }
        self.released.notify(events::ALL);
    }

    /// The first lock of another owner that conflicts with the request (F_GETLK).
    pub fn conflict(
        &self,
        key: FileKey,
        owner: &Owner,
        start: u64,
        end: u64,
        write: bool,
    ) -> Option<RecordLock> {
        let mut files = lock(&self.files);
        let fl = files.get_mut(&key)?;
        fl.records.retain(|r| r.owner.alive());
        fl.records
            .iter()
            .find(|r| !r.owner.same(owner) && overlaps(r, start, end) && (write || r.write))
            .cloned()
    }

    /// Set (or with `kind` None, clear) the owner's lock on `[start, end]`, splitting and
    /// merging its existing locks as POSIX does. Conflicts are the caller's to check.
    pub fn set_record(
        &self,
        key: FileKey,
        owner: &Owner,
        pid: i32,
        start: u64,
        end: u64,
        write: Option<bool>,
    ) {
        let mut files = lock(&self.files);
        let fl = files.entry(key).or_default();
        let mut kept = Vec::new();
        for r in fl.records.drain(..) {
            if !r.owner.same(owner) || !overlaps(&r, start, end) {
                kept.push(r);
                continue;
            }
            // Keep the parts of our old lock outside the new range.
            if r.start < start {
                kept.push(RecordLock {
                    end: start - 1,
                    ..r.clone()
                });
            }
            if r.end > end {
                kept.push(RecordLock {
                    start: end + 1,
                    ..r.clone()
                });
            }
        }
        if let Some(w) = write {
            kept.push(RecordLock {
                owner: owner.clone(),
                start,
                end,
                write: w,
                pid,
            });
        }
        fl.records = kept;
        drop(files);
        self.released.notify(events::ALL);
    }

    /// A process closed a descriptor of the file, or exited: its POSIX locks on it go
    /// (fcntl(2): "closing any descriptor releases all the process's locks on the file").
    pub fn release_process(&self, key: Option<FileKey>, pid: i32) {
        let mut files = lock(&self.files);
        for (k, fl) in files.iter_mut() {
            if key.is_none_or(|want| want == *k) {
                fl.records
                    .retain(|r| !matches!(r.owner, Owner::Process(p) if p == pid));
            }
        }
        drop(files);
        lock(&self.waits_for).remove(&pid);
        self.released.notify(events::ALL);
    }

    /// Record that `waiter` blocks on `holder`; `false` if that closes a cycle (EDEADLK).
    pub fn begin_wait(&self, waiter: i32, holder: i32) -> bool {
        let mut w = lock(&self.waits_for);
        let mut cur = holder;
        for _ in 0..1024 {
            if cur == waiter {
                return false;
            }
            match w.get(&cur) {
                Some(next) => cur = *next,
                None => break,
            }
        }
        w.insert(waiter, holder);
        true
    }

    pub fn end_wait(&self, waiter: i32) {
        lock(&self.waits_for).remove(&waiter);
    }
}
