//! POSIX message queues (mq_overview(7)): the sandbox's queues by name (its IPC
//! namespace), the descriptions `mq_open` returns, and the mqueue filesystem that shows
//! them (OCI `mqueue` mounts, conventionally `/dev/mqueue`), where each queue is a file
//! whose contents are its status line (`QSIZE:… NOTIFY:… SIGNO:… NOTIFY_PID:…`).
//!
//! Sending and receiving never block here: a full or empty queue answers `EAGAIN` and
//! the syscall layer waits on the queue's [`WaitQueue`] (see `syscalls::mqueue`).
#![deny(unsafe_code)]

use crate::error::Result;
use crate::kernel::process::ThreadGroup;
use crate::kernel::signal::SigInfo;
use crate::kernel::wait::{events, WaitQueue};
use crate::vfs::{
    Creds, DirEntry, FileDescription, Inode, Stat, StatFs, StatusFlags, Timespec, VfsPath,
};
use crate::{errno, return_errno};
use std::any::Any;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// `MQUEUE_MAGIC`.
const MQUEUE_MAGIC: i64 = 0x1980_0202;
/// Priorities are below this (`MQ_PRIO_MAX`).
pub const MQ_PRIO_MAX: u32 = 32768;
/// The largest queue and message a privileged process may ask for (`HARD_MSGMAX`,
/// `HARD_MSGSIZEMAX`).
pub const HARD_MSGMAX: u64 = 65536;
pub const HARD_MSGSIZEMAX: u64 = 16 * 1024 * 1024;
/// `NAME_MAX`.
const NAME_MAX: usize = 255;
/// `si_code` of a message-queue notification.
pub const SI_MESGQ: i32 = -3;

/// The limits of `/proc/sys/fs/mqueue` (and OCI `fs.mqueue.*` sysctls).
pub mod limits {
    use std::sync::atomic::AtomicU64;
    pub static MSG_MAX: AtomicU64 = AtomicU64::new(10);
    pub static MSGSIZE_MAX: AtomicU64 = AtomicU64::new(8192);
    pub static QUEUES_MAX: AtomicU64 = AtomicU64::new(256);
    pub static MSG_DEFAULT: AtomicU64 = AtomicU64::new(10);
    pub static MSGSIZE_DEFAULT: AtomicU64 = AtomicU64::new(8192);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Who is told when a message reaches the empty queue (`mq_notify`).
pub struct Notify {
    /// The registering process.
    pub tgid: i32,
    pub tg: Weak<ThreadGroup>,
    /// 0 for `SIGEV_NONE`.
    pub signo: i32,
    pub value: u64,
}

struct State {
    maxmsg: u64,
    msgsize: u64,
    /// By priority (highest first), then in order of arrival.
    msgs: BTreeMap<(Reverse<u32>, u64), Vec<u8>>,
    seq: u64,
    bytes: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    notify: Option<Notify>,
    /// Receivers blocked on the empty queue: a message goes to them, not to a
    /// notification.
    waiting_receivers: usize,
    mtime: Timespec,
}

/// One message queue.
pub struct Queue {
    ino: u64,
    st: Mutex<State>,
    wq: Arc<WaitQueue>,
}

/// A queue's attributes (`struct mq_attr` without the description's flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub maxmsg: u64,
    pub msgsize: u64,
    pub curmsgs: u64,
}

static NEXT_INO: AtomicU64 = AtomicU64::new(2);

impl Queue {
    fn new(maxmsg: u64, msgsize: u64, mode: u32, creds: &Creds) -> Arc<Queue> {
        Arc::new(Queue {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            st: Mutex::new(State {
                maxmsg,
                msgsize,
                msgs: BTreeMap::new(),
                seq: 0,
                bytes: 0,
                mode: mode & 0o777,
                uid: creds.uid,
                gid: creds.gid,
                notify: None,
                waiting_receivers: 0,
                mtime: Timespec::now(),
            }),
            wq: Arc::new(WaitQueue::new()),
        })
    }

    pub fn wait_queue(&self) -> &Arc<WaitQueue> {
        &self.wq
    }

    pub fn attr(&self) -> Attr {
        let st = lock(&self.st);
        Attr {
            maxmsg: st.maxmsg,
            msgsize: st.msgsize,
            curmsgs: st.msgs.len() as u64,
        }
    }

    fn stat(&self) -> Stat {
        let st = lock(&self.st);
        Stat {
            dev: fs_dev(),
            ino: self.ino,
            mode: libc::S_IFREG | st.mode,
            nlink: 1,
            uid: st.uid,
            gid: st.gid,
            size: st.bytes,
            blksize: 4096,
            atime: st.mtime,
            mtime: st.mtime,
            ctime: st.mtime,
            ..Stat::default()
        }
    }

    /// Add a message; `EAGAIN` when full. Returns the notification to deliver, if the
    /// message reached an empty queue with a registration and nobody waiting for it
    /// (the registration is used up).
    pub fn send(&self, data: &[u8], prio: u32) -> Result<Option<Notify>> {
        let mut st = lock(&self.st);
        if data.len() as u64 > st.msgsize {
            return_errno!(EMSGSIZE);
        }
        if st.msgs.len() as u64 >= st.maxmsg {
            return_errno!(EAGAIN);
        }
        let was_empty = st.msgs.is_empty();
        let seq = st.seq;
        st.seq = seq.wrapping_add(1);
        st.msgs.insert((Reverse(prio), seq), data.to_vec());
        st.bytes = st.bytes.saturating_add(data.len() as u64);
        st.mtime = Timespec::now();
        let notify = if was_empty && st.waiting_receivers == 0 {
            st.notify.take()
        } else {
            None
        };
        drop(st);
        self.wq.notify(events::IN | events::RDNORM);
        Ok(notify)
    }

    /// Take the oldest message of the highest priority into a buffer of `len` bytes;
    /// `EMSGSIZE` if that is less than the queue's message size, `EAGAIN` when empty.
    pub fn receive(&self, len: usize) -> Result<(Vec<u8>, u32)> {
        let mut st = lock(&self.st);
        if (len as u64) < st.msgsize {
            return_errno!(EMSGSIZE);
        }
        let Some(((Reverse(prio), _), data)) = st.msgs.pop_first() else {
            return_errno!(EAGAIN);
        };
        st.bytes = st.bytes.saturating_sub(data.len() as u64);
        st.mtime = Timespec::now();
        drop(st);
        self.wq.notify(events::OUT | events::WRNORM);
        Ok((data, prio))
    }

    /// A receiver is about to block on the queue (or has stopped).
    pub fn receiver_waiting(&self, waiting: bool) {
        let mut st = lock(&self.st);
        st.waiting_receivers = if waiting {
            st.waiting_receivers.saturating_add(1)
        } else {
            st.waiting_receivers.saturating_sub(1)
        };
    }

    /// `mq_notify`: register `n` (`EBUSY` if another live registration exists), or with
    /// `None` remove the registration of process `tgid`, if it has one.
    pub fn set_notify(&self, tgid: i32, n: Option<Notify>) -> Result<()> {
        let mut st = lock(&self.st);
        // A registration of a process that is gone counts for nothing.
        if st.notify.as_ref().is_some_and(|cur| {
            cur.tg
                .upgrade()
                .is_none_or(|t| t.state().exit_status.is_some())
        }) {
            st.notify = None;
        }
        match n {
            Some(n) => {
                if st.notify.is_some() {
                    return_errno!(EBUSY);
                }
                st.notify = Some(n);
            }
            None => {
                if st.notify.as_ref().is_some_and(|cur| cur.tgid == tgid) {
                    st.notify = None;
                }
            }
        }
        Ok(())
    }

    /// Linux's status line, as reading the queue's file shows it.
    pub fn status_line(&self) -> Vec<u8> {
        let st = lock(&self.st);
        let (notify, signo, pid) = match &st.notify {
            // SIGEV_SIGNAL is 0, SIGEV_NONE 1.
            Some(n) => (i32::from(n.signo == 0), n.signo, n.tgid),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            st.bytes, notify, signo, pid
        )
        .into_bytes()
    }

    fn readiness(&self) -> u32 {
        let st = lock(&self.st);
        let mut r = 0;
        if !st.msgs.is_empty() {
            r |= events::IN | events::RDNORM;
        }
        if (st.msgs.len() as u64) < st.maxmsg {
            r |= events::OUT | events::WRNORM;
        }
        r
    }
}

/// `close` of `file` by process `tgid`: if it is a queue, the process's notification
/// registration on it goes (Linux's `mq_flush`).
pub fn closed_by(file: &dyn FileDescription, tgid: i32) {
    if let Some(mq) = file.as_any().and_then(|a| a.downcast_ref::<MqFile>()) {
        let _ = mq.queue.set_notify(tgid, None);
    }
}

/// The notification signal for `n`, sent by process `pid` with real uid `uid`.
pub fn notification(n: &Notify, pid: i32, uid: u32) -> Option<(Arc<ThreadGroup>, SigInfo)> {
    if n.signo == 0 {
        return None;
    }
    let tg = n.tg.upgrade()?;
    Some((
        tg,
        SigInfo {
            signo: n.signo,
            code: SI_MESGQ,
            pid,
            uid,
            status: n.value as i64,
            ..SigInfo::default()
        },
    ))
}

fn fs_dev() -> u64 {
    static DEV: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *DEV.get_or_init(crate::vfs::anon_dev)
}

/// The sandbox's queues by name (its IPC namespace: one per sentry).
fn registry() -> MutexGuard<'static, BTreeMap<Vec<u8>, Arc<Queue>>> {
    static R: Mutex<BTreeMap<Vec<u8>, Arc<Queue>>> = Mutex::new(BTreeMap::new());
    lock(&R)
}

/// A queue name as `mq_open` passes it (glibc strips the leading slash): `ENOENT` if
/// empty, `EACCES` with a slash or as `.`/`..`, `ENAMETOOLONG` past `NAME_MAX`.
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return_errno!(ENOENT);
    }
    if name.len() > NAME_MAX {
        return_errno!(ENAMETOOLONG);
    }
    if name.contains(&b'/') || name == b"." || name == b".." {
        return_errno!(EACCES);
    }
    Ok(())
}

/// What `mq_open` asks for when it may create the queue.
pub struct Create {
    pub exclusive: bool,
    pub mode: u32,
    /// `(maxmsg, msgsize)` from the caller's `mq_attr`, or the defaults.
    pub attr: Option<(i64, i64)>,
}

/// The queue `name`, created if `create` says so; checks the creator's limits and an
/// opener's access (`MAY_READ`/`MAY_WRITE` in `access`).
pub fn open(
    name: &[u8],
    create: Option<Create>,
    access: u32,
    creds: &Creds,
    resource: bool,
) -> Result<Arc<Queue>> {
    check_name(name)?;
    let mut reg = registry();
    if let Some(q) = reg.get(name) {
        if create.as_ref().is_some_and(|c| c.exclusive) {
            return_errno!(EEXIST);
        }
        crate::vfs::check_permission(&q.stat(), creds, access)?;
        return Ok(q.clone());
    }
    let Some(c) = create else {
        return_errno!(ENOENT);
    };
    let (maxmsg, msgsize) = match c.attr {
        Some((m, s)) => {
            let (Ok(m), Ok(s)) = (u64::try_from(m), u64::try_from(s)) else {
                return_errno!(EINVAL);
            };
            if m == 0 || s == 0 || m > HARD_MSGMAX || s > HARD_MSGSIZEMAX {
                return_errno!(EINVAL);
            }
            let over = m > limits::MSG_MAX.load(Ordering::Relaxed)
                || s > limits::MSGSIZE_MAX.load(Ordering::Relaxed);
            if over && !resource {
                return_errno!(EINVAL);
            }
            (m, s)
        }
        None => (
            limits::MSG_DEFAULT.load(Ordering::Relaxed),
            limits::MSGSIZE_DEFAULT.load(Ordering::Relaxed),
        ),
    };
    if reg.len() as u64 >= limits::QUEUES_MAX.load(Ordering::Relaxed) && !resource {
        return_errno!(ENOSPC);
    }
    let q = Queue::new(maxmsg, msgsize, c.mode, creds);
    reg.insert(name.to_vec(), q.clone());
    Ok(q)
}

/// `mq_unlink`: the name goes; open descriptions keep the queue. Only the owner (or
/// `CAP_FOWNER`) may remove it, as in Linux's sticky `/dev/mqueue`.
pub fn unlink(name: &[u8], creds: &Creds) -> Result<()> {
    check_name(name)?;
    let mut reg = registry();
    let q = reg.get(name).ok_or(errno!(ENOENT))?;
    let st = q.stat();
    if st.uid != creds.uid && !creds.has_cap(crate::kernel::creds::CAP_FOWNER) {
        return_errno!(EACCES);
    }
    reg.remove(name);
    Ok(())
}

/// An open queue (what `mq_open` returns, or an open of a file of the mqueue
/// filesystem).
pub struct MqFile {
    pub queue: Arc<Queue>,
    flags: StatusFlags,
    offset: Mutex<u64>,
    path: Option<VfsPath>,
}

impl MqFile {
    pub fn new(queue: Arc<Queue>, flags: u32, path: Option<VfsPath>) -> MqFile {
        MqFile {
            queue,
            flags: StatusFlags::new(flags),
            offset: Mutex::new(0),
            path,
        }
    }

    pub fn readable(&self) -> bool {
        self.flags.get() & libc::O_ACCMODE as u32 != libc::O_WRONLY as u32
    }

    pub fn writable(&self) -> bool {
        self.flags.get() & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32
    }
}

impl FileDescription for MqFile {
    /// The status line, from the description's offset.
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        let line = self.queue.status_line();
        let mut off = lock(&self.offset);
        let start = usize::try_from(offset.unwrap_or(*off)).unwrap_or(usize::MAX);
        let rest = line.get(start..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), rest.get(..n)) {
            d.copy_from_slice(s);
        }
        if offset.is_none() {
            *off = off.saturating_add(n as u64);
        }
        Ok(n)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        let mut off = lock(&self.offset);
        let base: i64 = match whence {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => i64::try_from(*off).map_err(|_| errno!(EINVAL))?,
            _ => return_errno!(EINVAL),
        };
        let new = base.checked_add(offset).ok_or(errno!(EINVAL))?;
        *off = u64::try_from(new).map_err(|_| errno!(EINVAL))?;
        Ok(*off)
    }

    fn stat(&self) -> Result<Stat> {
        Ok(self.queue.stat())
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(mq_statfs())
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn path(&self) -> Option<VfsPath> {
        self.path.clone()
    }

    fn readiness(&self) -> u32 {
        self.queue.readiness()
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.wq.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

fn mq_statfs() -> StatFs {
    StatFs {
        fs_type: MQUEUE_MAGIC,
        bsize: 4096,
        frsize: 4096,
        namelen: NAME_MAX as i64,
        ..StatFs::default()
    }
}

/// The root of an mqueue filesystem: every queue of the sandbox, by name.
pub struct MqueueRoot;

/// A fresh mqueue filesystem (all mounts show the same queues).
pub fn new_mqueuefs() -> Arc<dyn Inode> {
    Arc::new(MqueueRoot)
}

/// A queue as a file of the mqueue filesystem.
struct QueueInode(Arc<Queue>);

impl Inode for QueueInode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        Ok(self.0.stat())
    }

    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        Ok(Arc::new(MqFile::new(
            self.0.clone(),
            flags,
            Some(path.clone()),
        )))
    }

    fn truncate(&self, _size: u64) -> Result<()> {
        Ok(())
    }

    fn set_mode(&self, mode: u32) -> Result<()> {
        lock(&self.0.st).mode = mode & 0o777;
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>, new_mode: Option<u32>) -> Result<()> {
        let mut st = lock(&self.0.st);
        if let Some(m) = new_mode {
            st.mode = m & 0o777;
        }
        if let Some(u) = uid {
            st.uid = u;
        }
        if let Some(g) = gid {
            st.gid = g;
        }
        Ok(())
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(mq_statfs())
    }
}

impl Inode for MqueueRoot {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        Ok(Stat {
            dev: fs_dev(),
            ino: 1,
            mode: libc::S_IFDIR | 0o1777,
            nlink: 2,
            blksize: 4096,
            ..Stat::default()
        })
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        let q = registry().get(name).cloned().ok_or(errno!(ENOENT))?;
        Ok(Arc::new(QueueInode(q)))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>> {
        Ok(registry()
            .iter()
            .map(|(name, q)| DirEntry {
                ino: q.ino,
                d_type: libc::DT_REG,
                name: name.clone(),
            })
            .collect())
    }

    /// `open(O_CREAT)` (or `touch`) in the filesystem makes a queue with the defaults.
    fn create(&self, name: &[u8], mode: u32, creds: &Creds) -> Result<Arc<dyn Inode>> {
        let c = Create {
            exclusive: true,
            mode,
            attr: None,
        };
        let q = open(name, Some(c), 0, creds, false)?;
        Ok(Arc::new(QueueInode(q)))
    }

    fn unlink(&self, name: &[u8]) -> Result<()> {
        // The VFS checked the sticky directory already.
        registry().remove(name).map(|_| ()).ok_or(errno!(ENOENT))
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(mq_statfs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_fifo_and_limits() {
        let q = Queue::new(2, 8, 0o600, &Creds::root());
        assert!(q.send(b"a", 1).is_ok());
        assert!(q.send(b"b", 5).is_ok());
        assert_eq!(
            q.send(b"c", 1).map_err(|e| e.errno).err(),
            Some(crate::Errno::EAGAIN)
        );
        assert_eq!(
            q.receive(4).map_err(|e| e.errno).err(),
            Some(crate::Errno::EMSGSIZE)
        );
        assert_eq!(q.receive(8).ok(), Some((b"b".to_vec(), 5)));
        assert_eq!(q.receive(8).ok(), Some((b"a".to_vec(), 1)));
        assert!(q.receive(8).is_err());
        assert!(q.status_line().starts_with(b"QSIZE:0 "));
    }

    #[test]
    fn names() {
        assert!(check_name(b"q").is_ok());
        assert!(check_name(b"").is_err());
        assert!(check_name(b"a/b").is_err());
        assert!(check_name(&[b'x'; 256]).is_err());
    }
}
