//! fsnotify: change notifications from the VFS to watchers (inotify instances).
//!
//! The VFS and the syscall layer report what happened to which object here, whatever the
//! filesystem; watchers register per inode. A watch is keyed by the inode object's address
//! and holds the inode (as Linux's mark pins it), so the address cannot be reused while the
//! watch exists. With no watch anywhere, every hook is one atomic load.
//!
//! Delivery order follows Linux's `fsnotify`: a directory watching its children hears
//! about an event (with the child's name) before the child's own watch does.
#![deny(unsafe_code)]

use super::file::FileDescription;
use super::inode::Inode;
use super::mount::VfsPath;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;

/// What receives the events of its watches: an inotify instance.
pub trait NotifySink: Send + Sync {
    /// Queue one event for watch `wd`.
    fn queue_event(&self, wd: i32, mask: u32, cookie: u32, name: &[u8]);
    /// Watch `wd` is gone from the registry (after a oneshot event or its inode's
    /// deletion); `IN_IGNORED` was already queued.
    fn watch_removed(&self, wd: i32);
}

struct Watch {
    sink: Weak<dyn NotifySink>,
    /// Tells the watches of one sink apart from another's (the sink's address).
    sink_id: usize,
    wd: i32,
    mask: u32,
}

/// Inode key → its watches.
type Registry = HashMap<usize, Vec<Watch>>;

/// How many watches exist, for the fast path.
static WATCHES: AtomicUsize = AtomicUsize::new(0);

fn registry() -> MutexGuard<'static, Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Whether any watch exists (every hook checks this first).
pub fn active() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

/// The key a watch on `inode` is filed under.
pub fn inode_key(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode).cast::<()>() as usize
}

/// Add sink `sink_id`'s watch `wd` on the inode `key`, or replace its mask.
pub fn set_watch(key: usize, sink: Weak<dyn NotifySink>, sink_id: usize, wd: i32, mask: u32) {
    let mut r = registry();
    let list = r.entry(key).or_default();
    if let Some(w) = list.iter_mut().find(|w| w.sink_id == sink_id && w.wd == wd) {
        w.mask = mask;
        return;
    }
    list.push(Watch {
        sink,
        sink_id,
        wd,
        mask,
    });
    WATCHES.fetch_add(1, Ordering::Relaxed);
}

/// Remove sink `sink_id`'s watch `wd` from the inode `key` (no event).
pub fn remove_watch(key: usize, sink_id: usize, wd: i32) {
    let mut r = registry();
    if let Some(list) = r.get_mut(&key) {
        let before = list.len();
        list.retain(|w| !(w.sink_id == sink_id && w.wd == wd));
        WATCHES.fetch_sub(before - list.len(), Ordering::Relaxed);
        if list.is_empty() {
            r.remove(&key);
        }
    }
}

/// A fresh cookie tying an `IN_MOVED_FROM` to its `IN_MOVED_TO`.
pub fn next_cookie() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One event to hand to a sink once the registry lock is released.
struct Delivery {
    sink: Arc<dyn NotifySink>,
    wd: i32,
    mask: u32,
    /// The watch ended with this event (oneshot): queue `IN_IGNORED` after it.
    ended: bool,
}

/// Deliver `mask` (an event bit, maybe with `IN_ISDIR`) to the watches on `key` that ask
/// for it. `child_unlinked` drops it for watches with `IN_EXCL_UNLINK` (an event about a
/// child that is no longer linked in the directory).
fn deliver(key: usize, mask: u32, cookie: u32, name: &[u8], child_unlinked: bool) {
    let out: Vec<Delivery> = {
        let mut r = registry();
        let Some(list) = r.get_mut(&key) else {
            return;
        };
        let mut out = Vec::new();
        list.retain(|w| {
            if w.mask & mask & IN_ALL_EVENTS == 0 || child_unlinked && w.mask & IN_EXCL_UNLINK != 0
            {
                return true;
            }
            let Some(sink) = w.sink.upgrade() else {
                return true;
            };
            let ended = w.mask & IN_ONESHOT != 0;
            out.push(Delivery {
                sink,
                wd: w.wd,
                mask,
                ended,
            });
            !ended
        });
        let gone = out.iter().filter(|d| d.ended).count();
        WATCHES.fetch_sub(gone, Ordering::Relaxed);
        if list.is_empty() {
            r.remove(&key);
        }
        out
    };
    for d in out {
        d.sink.queue_event(d.wd, d.mask, cookie, name);
        if d.ended {
            d.sink.queue_event(d.wd, IN_IGNORED, 0, b"");
            d.sink.watch_removed(d.wd);
        }
    }
}

fn isdir(inode: &Arc<dyn Inode>) -> u32 {
    if inode.is_dir() {
        IN_ISDIR
    } else {
        0
    }
}

/// `event` happened to the object at `path` (open, access, modify, attrib, close): its
/// directory hears it with the name, then the object itself.
pub fn path_event(path: &VfsPath, event: u32) {
    if !active() {
        return;
    }
    let inode = path.inode();
    let mask = event | isdir(inode);
    if !path.is_mount_root() {
        if let Some(parent) = path.dentry.parent() {
            let name = path.dentry.name();
            let unlinked = path.dentry.is_deleted();
            deliver(inode_key(parent.inode()), mask, 0, &name, unlinked);
        }
    }
    deliver(inode_key(inode), mask, 0, b"", false);
}

/// `event` happened to the name `name` in directory `dir` (create, delete, moved from/to);
/// `is_dir` says whether the child is a directory.
pub fn child_event(dir: &VfsPath, name: &[u8], event: u32, is_dir: bool, cookie: u32) {
    if !active() {
        return;
    }
    let mask = event | if is_dir { IN_ISDIR } else { 0 };
    deliver(inode_key(dir.inode()), mask, cookie, name, false);
}

/// `event` happened to `inode` itself only (its link count changed, it moved). Linux
/// reports these without `IN_ISDIR`.
pub fn inode_event(inode: &Arc<dyn Inode>, event: u32) {
    if !active() {
        return;
    }
    deliver(inode_key(inode), event, 0, b"", false);
}

/// `inode` lost its last name: `IN_DELETE_SELF`, then every watch on it ends with
/// `IN_IGNORED`.
pub fn inode_deleted(inode: &Arc<dyn Inode>) {
    if !active() {
        return;
    }
    let key = inode_key(inode);
    deliver(key, IN_DELETE_SELF, 0, b"", false);
    let gone: Vec<Watch> = {
        let mut r = registry();
        let gone = r.remove(&key).unwrap_or_default();
        WATCHES.fetch_sub(gone.len(), Ordering::Relaxed);
        gone
    };
    for w in gone {
        if let Some(sink) = w.sink.upgrade() {
            sink.queue_event(w.wd, IN_IGNORED, 0, b"");
            sink.watch_removed(w.wd);
        }
    }
}

/// The link count of `inode` before a name of it goes, when anyone is watching (for
/// [`unlinked`]; asking afterwards would not work for an overlay's lower files).
pub fn links_before(inode: &Arc<dyn Inode>) -> Option<u64> {
    active().then(|| inode.stat().map(|s| s.nlink).unwrap_or(1))
}

/// Inodes that lost their last name while still open: `IN_DELETE_SELF` waits for the
/// last close, as Linux's waits for the last reference.
fn pending_deletes() -> MutexGuard<'static, HashSet<usize>> {
    static P: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    P.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// After the name of `gone` was removed (unlink, or replaced by a rename; the dentry cache
/// already forgot it) when the file had `links` links: its link count changed
/// (`IN_ATTRIB`), and a file that had one link is deleted, at once or, while a
/// description still has it open, at the last close.
pub fn unlinked(gone: &VfsPath, links: Option<u64>) {
    let Some(links) = links else {
        return;
    };
    let inode = gone.inode();
    if inode.is_dir() {
        inode_deleted(inode);
        return;
    }
    inode_event(inode, IN_ATTRIB);
    if links > 1 {
        return;
    }
    // `gone` is the only holder of the dentry unless some open file still names it.
    if Arc::strong_count(&gone.dentry) > 1 {
        pending_deletes().insert(inode_key(inode));
    } else {
        inode_deleted(inode);
    }
}

/// The fd table is about to drop `file`; if this is its last reference, the file closes
/// (`IN_CLOSE_WRITE` or `IN_CLOSE_NOWRITE`), and an unlinked file nobody else has open
/// is deleted now.
pub fn releasing(file: &Arc<dyn FileDescription>) {
    if !active() || Arc::strong_count(file) != 1 {
        return;
    }
    let Some(p) = file.path() else {
        return;
    };
    let flags = file.status_flags();
    if flags & libc::O_PATH as u32 == 0 {
        let event = if flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
            IN_CLOSE_NOWRITE
        } else {
            IN_CLOSE_WRITE
        };
        path_event(&p, event);
    }
    // Held by the closing description and by `p`: nobody else.
    if p.dentry.is_deleted() && Arc::strong_count(&p.dentry) <= 2 {
        let key = inode_key(p.inode());
        if pending_deletes().remove(&key) {
            inode_deleted(p.inode());
        }
    }
}

/// `file` was read (`IN_ACCESS`) or written (`IN_MODIFY`) through.
pub fn file_event(file: &dyn FileDescription, event: u32) {
    if !active() {
        return;
    }
    if let Some(p) = file.path() {
        path_event(&p, event);
    }
}
