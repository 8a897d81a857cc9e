//! inotify(7): an instance is a queue of events about the inodes it watches, filled by the
//! VFS's notification hooks ([`crate::vfs::notify`]) and drained by `read(2)`.
//!
//! Like Linux: an event identical to the last one queued is merged into it; at
//! `MAX_QUEUED_EVENTS` one `IN_Q_OVERFLOW` (wd -1) ends the queue until it is read; a read
//! returns whole events only (`EINVAL` if the first does not fit); names are NUL-padded to
//! a multiple of the event header's size.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::fs::eventfd::anon_inode_stat;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::notify::{self, NotifySink, IN_IGNORED, IN_MASK_ADD, IN_Q_OVERFLOW};
use crate::vfs::{FileDescription, Inode, Stat, StatusFlags};
use crate::{errno, return_errno};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// `/proc/sys/fs/inotify/max_queued_events`.
pub const MAX_QUEUED_EVENTS: usize = 16384;
/// `/proc/sys/fs/inotify/max_user_watches` (per instance here).
pub const MAX_WATCHES: usize = 65536;
/// `sizeof(struct inotify_event)`.
const EVENT_HEADER: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The `len` field: the name, its NUL, padded to a multiple of the header size.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).next_multiple_of(EVENT_HEADER)
        }
    }

    fn size(&self) -> usize {
        EVENT_HEADER + self.name_len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = self.name_len();
        out.extend_from_slice(&self.wd.to_ne_bytes());
        out.extend_from_slice(&self.mask.to_ne_bytes());
        out.extend_from_slice(&self.cookie.to_ne_bytes());
        // A name is at most NAME_MAX bytes, so the padded length fits.
        out.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
        out.extend_from_slice(&self.name);
        out.resize(out.len() + len - self.name.len(), 0);
    }
}

struct WatchEntry {
    /// Held so the inode (and so its key) lives as long as the watch.
    _inode: Arc<dyn Inode>,
    key: usize,
    mask: u32,
}

#[derive(Default)]
struct State {
    events: VecDeque<Event>,
    /// Bytes `read` would return for all queued events (`FIONREAD`).
    bytes: usize,
    next_wd: i32,
    watches: HashMap<i32, WatchEntry>,
    by_key: HashMap<usize, i32>,
}

pub struct Inotify {
    me: Weak<Inotify>,
    state: Mutex<State>,
    flags: StatusFlags,
    queue: Arc<WaitQueue>,
}

impl Inotify {
    pub fn new(nonblock: bool) -> Arc<Inotify> {
        let mut flags = libc::O_RDONLY as u32;
        if nonblock {
            flags |= libc::O_NONBLOCK as u32;
        }
        Arc::new_cyclic(|me| Inotify {
            me: me.clone(),
            state: Mutex::new(State::default()),
            flags: StatusFlags::new(flags),
            queue: Arc::new(WaitQueue::new()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn id(&self) -> usize {
        self.me.as_ptr().cast::<()>() as usize
    }

    /// `inotify_add_watch` once the path is resolved: a new watch descriptor, or the
    /// existing one for this inode with its mask replaced (or extended with
    /// `IN_MASK_ADD`). `IN_MASK_CREATE` on a watched inode is `EEXIST`.
    pub fn add_watch(&self, inode: Arc<dyn Inode>, mask: u32) -> Result<i32> {
        let key = notify::inode_key(&inode);
        let mut st = self.state();
        let (wd, new_mask) = match st.by_key.get(&key).copied() {
            Some(wd) => {
                if mask & notify::IN_MASK_CREATE != 0 {
                    return_errno!(EEXIST);
                }
                let w = st.watches.get_mut(&wd).ok_or(errno!(EIO))?;
                w.mask = if mask & IN_MASK_ADD != 0 {
                    w.mask | mask
                } else {
                    mask
                } & !(IN_MASK_ADD | notify::IN_MASK_CREATE);
                (wd, w.mask)
            }
            None => {
                if st.watches.len() >= MAX_WATCHES {
                    return_errno!(ENOSPC);
                }
                // Watch descriptors count up from 1 and are not reused soon (idr_alloc_cyclic).
                let wd = st.next_wd.checked_add(1).ok_or(errno!(ENOSPC))?;
                st.next_wd = wd;
                let m = mask & !(IN_MASK_ADD | notify::IN_MASK_CREATE);
                st.watches.insert(
                    wd,
                    WatchEntry {
                        _inode: inode,
                        key,
                        mask: m,
                    },
                );
                st.by_key.insert(key, wd);
                (wd, m)
            }
        };
        drop(st);
        let sink: Weak<dyn NotifySink> = self.me.clone();
        notify::set_watch(key, sink, self.id(), wd, new_mask);
        Ok(wd)
    }

    /// `inotify_rm_watch`: the watch ends with `IN_IGNORED`; `EINVAL` for an unknown wd.
    pub fn rm_watch(&self, wd: i32) -> Result<()> {
        let key = {
            let mut st = self.state();
            let w = st.watches.remove(&wd).ok_or(errno!(EINVAL))?;
            st.by_key.remove(&w.key);
            w.key
        };
        notify::remove_watch(key, self.id(), wd);
        self.queue_event(wd, IN_IGNORED, 0, b"");
        Ok(())
    }

    fn readable(&self) -> bool {
        !self.state().events.is_empty()
    }
}

impl NotifySink for Inotify {
    fn queue_event(&self, wd: i32, mask: u32, cookie: u32, name: &[u8]) {
        let ev = Event {
            wd,
            mask,
            cookie,
            name: name.to_vec(),
        };
        {
            let mut st = self.state();
            // inotify_merge: the same event as the last one queued adds nothing.
            if st.events.back() == Some(&ev) {
                return;
            }
            let ev = if st.events.len() >= MAX_QUEUED_EVENTS {
                let overflow = Event {
                    wd: -1,
                    mask: IN_Q_OVERFLOW,
                    cookie: 0,
                    name: Vec::new(),
                };
                if st.events.back() == Some(&overflow) {
                    return;
                }
                overflow
            } else {
                ev
            };
            st.bytes += ev.size();
            st.events.push_back(ev);
        }
        self.queue.notify(events::IN | events::RDNORM);
    }

    fn watch_removed(&self, wd: i32) {
        let mut st = self.state();
        if let Some(w) = st.watches.remove(&wd) {
            st.by_key.remove(&w.key);
        }
    }
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let id = self.id();
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (wd, w) in st.watches.drain() {
            notify::remove_watch(w.key, id, wd);
        }
    }
}

impl FileDescription for Inotify {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        let mut out = Vec::new();
        {
            let mut st = self.state();
            let Some(first) = st.events.front() else {
                return_errno!(EAGAIN);
            };
            if first.size() > buf.len() {
                return_errno!(EINVAL);
            }
            while let Some(ev) = st.events.front() {
                if out.len() + ev.size() > buf.len() {
                    break;
                }
                ev.encode(&mut out);
                let size = ev.size();
                st.bytes = st.bytes.saturating_sub(size);
                st.events.pop_front();
            }
        }
        let dst = buf.get_mut(..out.len()).ok_or(errno!(EINVAL))?;
        dst.copy_from_slice(&out);
        Ok(out.len())
    }

    fn write(&self, _buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        Err(errno!(EINVAL))
    }

    /// Linux's `noop_llseek`: the position stays 0.
    fn seek(&self, _offset: i64, _whence: i32) -> Result<u64> {
        Ok(0)
    }

    fn stat(&self) -> Result<Stat> {
        Ok(anon_inode_stat())
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        if u64::from(cmd) == libc::FIONREAD {
            let n = i32::try_from(self.state().bytes).unwrap_or(i32::MAX);
            task.write_obj(arg, &n)?;
            return Ok(0);
        }
        Err(errno!(ENOTTY))
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn readiness(&self) -> u32 {
        if self.readable() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::notify::{IN_CREATE, IN_MODIFY};

    fn drain(i: &Inotify) -> Vec<(i32, u32, u32, Vec<u8>)> {
        let mut buf = vec![0u8; 4096];
        let n = match i.read(&mut buf, None) {
            Ok(n) => n,
            Err(_) => return Vec::new(),
        };
        let mut out = Vec::new();
        let mut at = 0;
        while at < n {
            let f = |o: usize| u32::from_ne_bytes(buf[at + o..at + o + 4].try_into().unwrap());
            let len = f(12) as usize;
            let name = buf[at + 16..at + 16 + len]
                .iter()
                .copied()
                .take_while(|&c| c != 0)
                .collect();
            out.push((f(0) as i32, f(4), f(8), name));
            at += 16 + len;
        }
        out
    }

    #[test]
    fn events_merge_pad_and_overflow() {
        let i = Inotify::new(true);
        assert_eq!(
            i.read(&mut [0u8; 64], None).unwrap_err().errno,
            crate::Errno::EAGAIN
        );
        i.queue_event(1, IN_MODIFY, 0, b"");
        i.queue_event(1, IN_MODIFY, 0, b"");
        i.queue_event(1, IN_CREATE, 0, b"abc");
        // A buffer too small for the first event.
        assert_eq!(
            i.read(&mut [0u8; 15], None).unwrap_err().errno,
            crate::Errno::EINVAL
        );
        assert_eq!(i.state().bytes, 16 + 16 + 16);
        assert_eq!(
            drain(&i),
            vec![
                (1, IN_MODIFY, 0, vec![]),
                (1, IN_CREATE, 0, b"abc".to_vec())
            ]
        );
        for n in 0..MAX_QUEUED_EVENTS + 5 {
            i.queue_event(1, IN_MODIFY, n as u32, b"");
        }
        let st = i.state();
        assert_eq!(st.events.len(), MAX_QUEUED_EVENTS + 1);
        assert_eq!(st.events.back().map(|e| e.mask), Some(IN_Q_OVERFLOW));
    }

    #[test]
    fn reads_return_whole_events_only() {
        let i = Inotify::new(true);
        i.queue_event(1, IN_CREATE, 0, b"a");
        i.queue_event(1, IN_CREATE, 0, b"b");
        let mut buf = [0u8; 40];
        assert_eq!(i.read(&mut buf, None).unwrap(), 32);
        assert_eq!(i.read(&mut buf, None).unwrap(), 32);
    }
}
