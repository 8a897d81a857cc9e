//! The file descriptor table of a process.

use super::file::FileDescription;
use super::notify;
use crate::error::Result;
use crate::{errno, return_errno};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The default soft `RLIMIT_NOFILE`.
pub const DEFAULT_NOFILE: u32 = 1024;

/// Per-descriptor flags (`F_GETFD`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdFlags {
    pub cloexec: bool,
}

struct Entry {
    file: Arc<dyn FileDescription>,
    flags: FdFlags,
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        Entry {
            file: self.file.clone(),
            flags: self.flags,
        }
    }
}

impl Drop for FdTable {
    /// The last user of the table is gone (exit): its files close.
    fn drop(&mut self) {
        for e in self.entries.values() {
            notify::releasing(&e.file);
        }
    }
}

/// fd → open file description. `Clone` gives the copy `fork` without `CLONE_FILES` makes.
#[derive(Clone)]
pub struct FdTable {
    entries: BTreeMap<i32, Entry>,
    /// Descriptors must be below this (`RLIMIT_NOFILE` soft limit).
    pub limit: u32,
}

impl Default for FdTable {
    fn default() -> FdTable {
        FdTable {
            entries: BTreeMap::new(),
            limit: DEFAULT_NOFILE,
        }
    }
}

impl FdTable {
    pub fn new() -> FdTable {
        FdTable::default()
    }

    /// The description behind `fd`; `EBADF` if none.
    pub fn get(&self, fd: i32) -> Result<Arc<dyn FileDescription>> {
        self.entries
            .get(&fd)
            .map(|e| e.file.clone())
            .ok_or(errno!(EBADF))
    }

    pub fn flags(&self, fd: i32) -> Result<FdFlags> {
        self.entries.get(&fd).map(|e| e.flags).ok_or(errno!(EBADF))
    }

    pub fn set_flags(&mut self, fd: i32, flags: FdFlags) -> Result<()> {
        let e = self.entries.get_mut(&fd).ok_or(errno!(EBADF))?;
        e.flags = flags;
        Ok(())
    }

    /// The lowest free descriptor `>= min`; `EMFILE` at the limit (or `EINVAL` if `min`
    /// itself is out of range, as `F_DUPFD` wants).
    fn lowest_free(&self, min: i32) -> Result<i32> {
        let mut fd = min;
        for (&used, _) in self.entries.range(min..) {
            if used != fd {
                break;
            }
            fd = fd.checked_add(1).ok_or(errno!(EMFILE))?;
        }
        if i64::from(fd) >= i64::from(self.limit) {
            return_errno!(EMFILE);
        }
        Ok(fd)
    }

    /// Install `file` at the lowest free descriptor.
    pub fn insert(&mut self, file: Arc<dyn FileDescription>, flags: FdFlags) -> Result<i32> {
        self.insert_from(0, file, flags)
    }

    /// Install `file` at the lowest free descriptor `>= min` (`F_DUPFD`).
    pub fn insert_from(
        &mut self,
        min: i32,
        file: Arc<dyn FileDescription>,
        flags: FdFlags,
    ) -> Result<i32> {
        if min < 0 || i64::from(min) >= i64::from(self.limit) {
            return_errno!(EINVAL);
        }
        let fd = self.lowest_free(min)?;
        self.entries.insert(fd, Entry { file, flags });
        Ok(fd)
    }

    /// Install `file` at exactly `fd`, replacing (and returning) what was there (`dup2`).
    /// `EBADF` if `fd` is out of range.
    pub fn insert_at(
        &mut self,
        fd: i32,
        file: Arc<dyn FileDescription>,
        flags: FdFlags,
    ) -> Result<Option<Arc<dyn FileDescription>>> {
        if fd < 0 || i64::from(fd) >= i64::from(self.limit) {
            return_errno!(EBADF);
        }
        let old = self
            .entries
            .insert(fd, Entry { file, flags })
            .map(|e| e.file);
        if let Some(f) = &old {
            notify::releasing(f);
        }
        Ok(old)
    }

    /// Remove `fd`; the description is returned so the caller drops it outside the lock.
    pub fn remove(&mut self, fd: i32) -> Result<Arc<dyn FileDescription>> {
        let file = self
            .entries
            .remove(&fd)
            .map(|e| e.file)
            .ok_or(errno!(EBADF))?;
        notify::releasing(&file);
        Ok(file)
    }

    /// Remove every descriptor in `[first, last]`, or only mark them close-on-exec.
    pub fn close_range(
        &mut self,
        first: u32,
        last: u32,
        cloexec_only: bool,
    ) -> Vec<Arc<dyn FileDescription>> {
        let lo = i32::try_from(first).unwrap_or(i32::MAX);
        let hi = i32::try_from(last).unwrap_or(i32::MAX);
        let fds: Vec<i32> = self.entries.range(lo..=hi).map(|(&fd, _)| fd).collect();
        let mut dropped = Vec::new();
        for fd in fds {
            if cloexec_only {
                if let Some(e) = self.entries.get_mut(&fd) {
                    e.flags.cloexec = true;
                }
            } else if let Some(e) = self.entries.remove(&fd) {
                notify::releasing(&e.file);
                dropped.push(e.file);
            }
        }
        dropped
    }

    /// Drop every close-on-exec descriptor (`execve`); returns them to drop unlocked.
    pub fn close_on_exec(&mut self) -> Vec<Arc<dyn FileDescription>> {
        let fds: Vec<i32> = self
            .entries
            .iter()
            .filter(|(_, e)| e.flags.cloexec)
            .map(|(&fd, _)| fd)
            .collect();
        let files: Vec<_> = fds
            .into_iter()
            .filter_map(|fd| self.entries.remove(&fd).map(|e| e.file))
            .collect();
        files.iter().for_each(notify::releasing);
        files
    }

    /// The open descriptors, ascending (for `/proc/self/fd`).
    pub fn fds(&self) -> Vec<i32> {
        self.entries.keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
