//! `AF_UNIX` sockets (`unix(7)`), entirely inside the sentry: `SOCK_STREAM`,
//! `SOCK_DGRAM` and `SOCK_SEQPACKET`, path and abstract names, `SCM_RIGHTS` and
//! `SCM_CREDENTIALS`.
//!
//! An [`Endpoint`] is one socket; its open file is a [`UnixSocket`]. As in Linux, data
//! goes straight into the receiver's queue and is charged to the sender's send buffer
//! until it is read, so a writer blocks while its `SO_SNDBUF` worth is unread. A stream
//! `connect` makes the server's endpoint at once (Linux's embryo) and queues it on the
//! listener for `accept`. Peers hold each other weakly: an endpoint dies with its last
//! file, and its `Drop` tells the peer (hang-up, `ECONNRESET` if data was left unread).
//!
//! Sockets that only in-flight messages keep alive are collected by `gc`.
//!
//! Not done: `MSG_OOB` (`EOPNOTSUPP`); `POLLOUT` of a datagram sender does not reflect a
//! full receiver queue (only its own send buffer); credentials are recorded with every
//! message, not only while either side has `SO_PASSCRED`; `SO_RCVLOWAT` is kept but
//! not honoured.
//!
//! Locking: at most one endpoint lock is held at a time, except `connect`, which holds
//! the connecting socket's and then the listener's (a listener never connects). Messages
//! may carry files whose last reference closes other sockets, so they are always dropped
//! with no endpoint lock held.
#![deny(unsafe_code)]

pub mod addr;
mod gc;

use super::{
    wait_ready, CommonOpts, Received, SendRequest, Socket, Ucred, RCV_SHUTDOWN, SEND_SHUTDOWN,
    SHUTDOWN_MASK, SOMAXCONN,
};
use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{
    check_permission, Creds, FileDescription, Stat, StatusFlags, Timespec, MAY_WRITE,
};
use crate::{errno, return_errno, Errno};
use addr::{Parsed, UnixAddr};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Bytes a sender has queued at receivers and not yet seen read (Linux's
/// `sk_wmem_alloc`), with the queue to wake when they are.
struct Charge {
    bytes: AtomicUsize,
    queue: Arc<WaitQueue>,
}

impl Charge {
    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(n))
            });
        self.queue
            .notify(events::OUT | events::WRNORM | events::WRBAND);
    }
}

/// What a queued message costs its sender beyond its bytes (Linux charges an skb's
/// truesize): empty datagrams are not free, so no sender can queue without limit.
const MSG_OVERHEAD: usize = 512;

/// One queued message (a datagram, a seqpacket record, or one write on a stream).
struct Msg {
    data: Vec<u8>,
    /// Bytes of a stream message already read.
    off: usize,
    from: Option<UnixAddr>,
    cred: Ucred,
    rights: Vec<Arc<dyn FileDescription>>,
    charge: Arc<Charge>,
    /// Bytes still charged to the sender.
    charged: usize,
}

impl Msg {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.off)
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        self.charge.release(self.charged);
        gc::left(&self.rights);
    }
}

enum Conn {
    /// Not connected (Linux's `TCP_CLOSE`).
    None,
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<Endpoint>>,
        /// The listener's credentials, which connecting clients see as `SO_PEERCRED`.
        cred: Ucred,
    },
    /// Connected (or, for a datagram socket, a default destination). The peer's address
    /// is kept for `getpeername` after it is gone.
    Peer {
        ep: Weak<Endpoint>,
        addr: Option<UnixAddr>,
    },
}

struct State {
    addr: Option<UnixAddr>,
    conn: Conn,
    recvq: VecDeque<Msg>,
    /// Unread bytes in `recvq`.
    recv_bytes: usize,
    shutdown: u8,
    /// A pending error (`SO_ERROR`), reported once.
    err: Option<Errno>,
    opts: CommonOpts,
    peercred: Option<Ucred>,
    /// A server endpoint made by `connect` and not yet accepted.
    embryo: bool,
}

/// One `AF_UNIX` socket.
pub struct Endpoint {
    ty: i32,
    st: Mutex<State>,
    queue: Arc<WaitQueue>,
    /// Datagram senders waiting for room in this socket's full receive queue (Linux's
    /// `peer_wait`).
    peer_wait: Arc<WaitQueue>,
    charge: Arc<Charge>,
}

/// `net.unix.max_dgram_qlen`: a datagram socket holds this many messages (plus one) from
/// senders it is not connected to before they must wait.
const MAX_DGRAM_QLEN: usize = 10;

impl Endpoint {
    fn new(ty: i32) -> Arc<Endpoint> {
        let queue = Arc::new(WaitQueue::new());
        Arc::new(Endpoint {
            ty,
            st: Mutex::new(State {
                addr: None,
                conn: Conn::None,
                recvq: VecDeque::new(),
                recv_bytes: 0,
                shutdown: 0,
                err: None,
                opts: CommonOpts::default(),
                peercred: None,
                embryo: false,
            }),
            charge: Arc::new(Charge {
                bytes: AtomicUsize::new(0),
                queue: queue.clone(),
            }),
            queue,
            peer_wait: Arc::new(WaitQueue::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection_oriented(&self) -> bool {
        self.ty != libc::SOCK_DGRAM
    }

    fn wmem(&self) -> usize {
        self.charge.bytes.load(Ordering::Acquire)
    }

    /// The readiness `poll` reports (Linux's `unix_poll`/`unix_dgram_poll`).
    fn readiness(&self) -> u32 {
        let st = self.lock();
        let mut r = 0;
        if st.err.is_some() {
            r |= events::ERR;
        }
        if st.shutdown == SHUTDOWN_MASK {
            r |= events::HUP;
        }
        if st.shutdown & RCV_SHUTDOWN != 0 {
            r |= events::RDHUP | events::IN | events::RDNORM;
        }
        if !st.recvq.is_empty() {
            r |= events::IN | events::RDNORM;
        }
        let listening = match &st.conn {
            Conn::Listening { pending, .. } => {
                if !pending.is_empty() {
                    r |= events::IN | events::RDNORM;
                }
                true
            }
            Conn::None if self.connection_oriented() => {
                r |= events::HUP;
                false
            }
            _ => false,
        };
        // Writable while at most a quarter of the send buffer is in flight.
        if !listening && self.wmem().saturating_mul(4) <= st.opts.sndbuf {
            r |= events::OUT | events::WRNORM | events::WRBAND;
        }
        r
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let st = self.st.get_mut().unwrap_or_else(|e| e.into_inner());
        let conn = std::mem::replace(&mut st.conn, Conn::None);
        let unread = !st.recvq.is_empty() || st.embryo;
        let recvq = std::mem::take(&mut st.recvq);
        if let Conn::Peer { ep, .. } = &conn {
            if self.ty != libc::SOCK_DGRAM {
                if let Some(peer) = ep.upgrade() {
                    {
                        let mut ps = peer.lock();
                        ps.shutdown = SHUTDOWN_MASK;
                        if unread {
                            ps.err = Some(Errno::ECONNRESET);
                        }
                    }
                    peer.queue.notify(events::ALL);
                }
            }
        }
        // Pending connections die with the listener; their clients see ECONNRESET.
        drop(conn);
        drop(recvq);
        // Connectors and datagram senders waiting on this socket find it gone.
        self.queue.notify(events::ALL);
        self.peer_wait.notify(events::ALL);
    }
}

/// An open `AF_UNIX` socket.
pub struct UnixSocket {
    ep: Arc<Endpoint>,
    flags: StatusFlags,
    ino: u64,
    uid: u32,
    gid: u32,
    created: Timespec,
    /// Who made the socket: the credentials of data written with `write(2)`, which has
    /// no task at hand.
    owner: Ucred,
}

impl Drop for UnixSocket {
    /// Like Linux, any socket's release looks for unreachable sockets in flight.
    fn drop(&mut self) {
        if gc::anything_in_flight() {
            gc::collect();
        }
    }
}

fn status(nonblock: bool) -> u32 {
    libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 }
}

impl UnixSocket {
    fn wrap(ep: Arc<Endpoint>, task: &Task, nonblock: bool) -> Arc<UnixSocket> {
        Arc::new(UnixSocket {
            ep,
            flags: StatusFlags::new(status(nonblock)),
            ino: super::new_ino(),
            uid: task.creds.euid,
            gid: task.creds.egid,
            created: Timespec::now(),
            owner: Ucred::of_task(task),
        })
    }

    /// `socket(AF_UNIX, ty, 0)`; the caller checked `ty`.
    pub fn new(task: &Task, ty: i32, nonblock: bool) -> Arc<UnixSocket> {
        UnixSocket::wrap(Endpoint::new(ty), task, nonblock)
    }

    /// `socketpair(AF_UNIX, ty, 0)`: two sockets connected to each other.
    pub fn pair(task: &Task, ty: i32, nonblock: bool) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        let a = Endpoint::new(ty);
        let b = Endpoint::new(ty);
        let cred = Ucred::of_task(task);
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut st = x.lock();
            st.conn = Conn::Peer {
                ep: Arc::downgrade(y),
                addr: None,
            };
            st.peercred = Some(cred);
        }
        (
            UnixSocket::wrap(a, task, nonblock),
            UnixSocket::wrap(b, task, nonblock),
        )
    }

    fn autobind(&self) -> Result<()> {
        if self.ep.lock().addr.is_some() {
            return Ok(());
        }
        let name = addr::autobind(&self.ep)?;
        self.ep.lock().addr = Some(UnixAddr::Abstract(name));
        Ok(())
    }

    fn wants_autobind(&self) -> bool {
        let st = self.ep.lock();
        st.opts.passcred && st.addr.is_none()
    }

    /// The socket bound to `a` (Linux's `unix_find_other`): a path must name a socket
    /// inode the caller may write, with a live socket of the same type behind it.
    fn find(&self, task: &Task, a: &UnixAddr) -> Result<Arc<Endpoint>> {
        let ep = match a {
            UnixAddr::Path(p) => {
                let ctx = task.fs().clone();
                let vp = ctx.lookup(&ctx.cwd, p, true)?;
                let st = vp.inode().stat()?;
                check_permission(&st, &fs_creds(task), MAY_WRITE)?;
                if st.mode & libc::S_IFMT != libc::S_IFSOCK {
                    return_errno!(ECONNREFUSED);
                }
                addr::find_node((st.dev, st.ino)).ok_or(errno!(ECONNREFUSED))?
            }
            UnixAddr::Abstract(n) => addr::find_abstract(n).ok_or(errno!(ECONNREFUSED))?,
        };
        if ep.ty != self.ep.ty {
            return_errno!(EPROTOTYPE);
        }
        Ok(ep)
    }

    fn connect_stream(&self, task: &Task, target: UnixAddr, nonblock: bool) -> Result<()> {
        {
            let st = self.ep.lock();
            match st.conn {
                Conn::Peer { .. } => return_errno!(EISCONN),
                Conn::Listening { .. } => return_errno!(EINVAL),
                Conn::None => {}
            }
        }
        if self.wants_autobind() {
            self.autobind()?;
        }
        // Held weakly while waiting, so a listener closed meanwhile really goes.
        let (other_queue, weak_other) = {
            let other = self.find(task, &target)?;
            (other.queue.clone(), Arc::downgrade(&other))
        };
        let me = Ucred::of_task(task);
        let timeout = self.ep.lock().opts.sndtimeo;
        let queues = [&*other_queue];
        wait_ready(task, &queues, events::OUT, nonblock, timeout, || {
            let Some(other) = weak_other.upgrade() else {
                return_errno!(ECONNREFUSED);
            };
            let mut st = self.ep.lock();
            if !matches!(st.conn, Conn::None) {
                return_errno!(EISCONN);
            }
            let server = Endpoint::new(self.ep.ty);
            let mut os = other.lock();
            let os = &mut *os;
            let (backlog, pending, cred) = match &mut os.conn {
                Conn::Listening {
                    backlog,
                    pending,
                    cred,
                } => (*backlog, pending, *cred),
                _ => return_errno!(ECONNREFUSED),
            };
            if pending.len() > backlog {
                return Ok(None);
            }
            {
                let mut ss = server.lock();
                ss.addr = os.addr.clone();
                ss.conn = Conn::Peer {
                    ep: Arc::downgrade(&self.ep),
                    addr: st.addr.clone(),
                };
                ss.peercred = Some(me);
                ss.embryo = true;
                ss.opts.passcred = os.opts.passcred;
            }
            pending.push_back(server.clone());
            st.conn = Conn::Peer {
                ep: Arc::downgrade(&server),
                addr: os.addr.clone(),
            };
            st.peercred = Some(cred);
            Ok(Some(()))
        })?;
        other_queue.notify(events::IN | events::RDNORM);
        self.ep.queue.notify(events::OUT | events::WRNORM);
        Ok(())
    }

    fn shutdown_bits(&self) -> u8 {
        self.ep.lock().shutdown
    }

    /// One attempt at queuing (part of) `data` at the peer: `None` when the send buffer
    /// is full.
    fn send_once(
        &self,
        data: &[u8],
        to: Option<&Weak<Endpoint>>,
        cred: Ucred,
        rights: &mut Vec<Arc<dyn FileDescription>>,
    ) -> Result<Option<usize>> {
        let (peer, sndbuf, from) = {
            let mut st = self.ep.lock();
            if st.shutdown & SEND_SHUTDOWN != 0 {
                return_errno!(EPIPE);
            }
            let peer = match (to, &st.conn) {
                (Some(t), _) => Some(t.upgrade().ok_or(errno!(ECONNREFUSED))?),
                (None, Conn::Peer { ep, .. }) => match ep.upgrade() {
                    Some(p) => Some(p),
                    None if self.ep.ty == libc::SOCK_DGRAM => {
                        // The peer is gone: the association ends (unix_dgram_sendmsg).
                        st.conn = Conn::None;
                        return_errno!(ECONNREFUSED);
                    }
                    None => return_errno!(EPIPE),
                },
                (None, _) => None,
            };
            (peer, st.opts.sndbuf, st.addr.clone())
        };
        let Some(peer) = peer else {
            return_errno!(ENOTCONN);
        };
        let stream = self.ep.ty == libc::SOCK_STREAM;
        if !stream && data.len() > sndbuf.saturating_sub(32) {
            return_errno!(EMSGSIZE);
        }
        let wmem = self.ep.wmem();
        if wmem >= sndbuf {
            return Ok(None);
        }
        let n = if stream {
            data.len().min(sndbuf - wmem)
        } else {
            data.len()
        };
        let body = data.get(..n).ok_or(errno!(EINVAL))?.to_vec();
        {
            let mut ps = peer.lock();
            if ps.shutdown & RCV_SHUTDOWN != 0 {
                return_errno!(EPIPE);
            }
            if self.ep.ty == libc::SOCK_DGRAM {
                // A socket connected to someone else takes nothing from us; one not
                // connected to us takes a bounded number of messages.
                let ours = match &ps.conn {
                    Conn::Peer { ep, .. } if std::ptr::eq(ep.as_ptr(), Arc::as_ptr(&self.ep)) => {
                        true
                    }
                    Conn::Peer { .. } => return_errno!(EPERM),
                    _ => false,
                };
                if !ours && ps.recvq.len() > MAX_DGRAM_QLEN {
                    return Ok(None);
                }
            }
            self.ep
                .charge
                .bytes
                .fetch_add(n + MSG_OVERHEAD, Ordering::AcqRel);
            ps.recv_bytes = ps.recv_bytes.saturating_add(n);
            ps.recvq.push_back(Msg {
                data: body,
                off: 0,
                from,
                cred,
                rights: {
                    gc::sent(rights);
                    std::mem::take(rights)
                },
                charge: self.ep.charge.clone(),
                charged: n + MSG_OVERHEAD,
            });
        }
        peer.queue.notify(events::IN | events::RDNORM);
        Ok(Some(n))
    }

    /// One attempt at receiving: `None` if there is nothing yet. Consumed messages are
    /// moved to `dead`, to be dropped by the caller once no lock is held.
    fn recv_once(&self, len: usize, flags: i32, dead: &mut Vec<Msg>) -> Result<Option<Received>> {
        let peek = flags & libc::MSG_PEEK != 0;
        let mut st = self.ep.lock();
        if let Some(e) = st.err.take() {
            return Err(crate::Error::new(e));
        }
        let passcred = st.opts.passcred;
        if st.recvq.is_empty() {
            if st.shutdown & RCV_SHUTDOWN != 0 {
                return Ok(Some(Received::default()));
            }
            match (&st.conn, self.ep.ty) {
                (Conn::Peer { .. }, _) | (_, libc::SOCK_DGRAM) => return Ok(None),
                (_, libc::SOCK_STREAM) => return_errno!(EINVAL),
                _ => return_errno!(ENOTCONN),
            }
        }
        let mut out = Received::default();
        let st = &mut *st;
        if self.ep.ty == libc::SOCK_STREAM {
            let mut first_cred = None;
            let mut i = 0;
            while out.data.len() < len {
                let Some(m) = st.recvq.get_mut(i) else { break };
                match first_cred {
                    None => {
                        first_cred = Some(m.cred);
                        out.addr = m.from.as_ref().map(|a| addr::encode(Some(a)));
                    }
                    Some(c) if passcred && c != m.cred => break,
                    Some(_) => {}
                }
                let take = m.remaining().min(len - out.data.len());
                let part = m.data.get(m.off..m.off + take).ok_or(errno!(EIO))?;
                out.data.extend_from_slice(part);
                let had_rights = !m.rights.is_empty();
                if had_rights {
                    if peek {
                        out.rights.extend(m.rights.iter().cloned());
                    } else {
                        gc::left(&m.rights);
                        out.rights.append(&mut m.rights);
                    }
                }
                if peek {
                    i += 1;
                } else {
                    m.off += take;
                    // The overhead goes when the message does.
                    let released = take.min(m.charged.saturating_sub(MSG_OVERHEAD));
                    m.charged -= released;
                    m.charge.release(released);
                    st.recv_bytes = st.recv_bytes.saturating_sub(take);
                    if m.remaining() == 0 {
                        if let Some(m) = st.recvq.pop_front() {
                            dead.push(m);
                        }
                    }
                }
                // Files end a read: they belong with the bytes they came with.
                if had_rights {
                    break;
                }
            }
            out.full_len = out.data.len();
            if passcred {
                out.creds = first_cred;
            }
        } else {
            let Some(m) = st.recvq.front_mut() else {
                return Ok(None);
            };
            let take = m.data.len().min(len);
            out.data = m.data.get(..take).ok_or(errno!(EIO))?.to_vec();
            out.full_len = m.data.len();
            out.truncated = m.data.len() > len;
            // An unbound sender leaves the address empty (Linux's `unix_copy_addr`).
            out.addr = m.from.as_ref().map(|a| addr::encode(Some(a)));
            if passcred {
                out.creds = Some(m.cred);
            }
            if peek {
                out.rights = m.rights.clone();
            } else {
                gc::left(&m.rights);
                out.rights = std::mem::take(&mut m.rights);
                st.recv_bytes = st.recv_bytes.saturating_sub(m.data.len());
                if let Some(m) = st.recvq.pop_front() {
                    dead.push(m);
                }
            }
        }
        Ok(Some(out))
    }

    /// `read(2)` without a task: a non-blocking receive that drops any files.
    fn read_nowait(&self, buf: &mut [u8]) -> Result<usize> {
        let mut dead = Vec::new();
        let r = self.recv_once(buf.len(), 0, &mut dead);
        if !dead.is_empty() {
            self.ep.peer_wait.notify(events::OUT | events::WRNORM);
        }
        drop(dead);
        let got = r?.ok_or(errno!(EAGAIN))?;
        let n = got.data.len().min(buf.len());
        buf.get_mut(..n)
            .ok_or(errno!(EIO))?
            .copy_from_slice(got.data.get(..n).ok_or(errno!(EIO))?);
        Ok(n)
    }
}

fn fs_creds(task: &Task) -> Creds {
    task.creds.fs_creds()
}

impl Socket for UnixSocket {
    fn family(&self) -> i32 {
        libc::AF_UNIX
    }

    fn sock_type(&self) -> i32 {
        self.ep.ty
    }

    fn protocol(&self) -> i32 {
        0
    }

    fn bind(&self, task: &Task, raw: &[u8]) -> Result<()> {
        let parsed = addr::parse(raw)?;
        let bound = self.ep.lock().addr.is_some();
        match parsed {
            Parsed::Unspec => return_errno!(EINVAL),
            // Autobinding a bound socket is a no-op (unix_autobind).
            Parsed::Autobind => self.autobind(),
            Parsed::Addr(UnixAddr::Abstract(_)) if bound => return_errno!(EINVAL),
            Parsed::Addr(UnixAddr::Abstract(name)) => {
                addr::bind_abstract(&name, &self.ep)?;
                self.ep.lock().addr = Some(UnixAddr::Abstract(name));
                Ok(())
            }
            Parsed::Addr(UnixAddr::Path(p)) => {
                let ctx = task.fs().clone();
                let mode = libc::S_IFSOCK | 0o777;
                let made = ctx.mknod(&ctx.cwd, &p, mode, 0, &fs_creds(task), false);
                match made {
                    Err(e) if e.errno == Errno::EEXIST => return_errno!(EADDRINUSE),
                    r => r?,
                }
                let mut me = self.ep.lock();
                if me.addr.is_some() {
                    // The name is made before the socket is found bound, as in Linux's
                    // unix_bind_bsd, and taken back.
                    drop(me);
                    let _ = ctx.unlink(&ctx.cwd, &p, &fs_creds(task));
                    return_errno!(EINVAL);
                }
                let st = ctx.lookup(&ctx.cwd, &p, false)?.inode().stat()?;
                addr::bind_node((st.dev, st.ino), &self.ep);
                me.addr = Some(UnixAddr::Path(p));
                Ok(())
            }
        }
    }

    fn listen(&self, task: &Task, backlog: i32) -> Result<()> {
        if self.ep.ty == libc::SOCK_DGRAM {
            return_errno!(EOPNOTSUPP);
        }
        let backlog = usize::try_from(backlog).unwrap_or(0).min(SOMAXCONN);
        let mut st = self.ep.lock();
        if st.addr.is_none() {
            return_errno!(EINVAL);
        }
        match &mut st.conn {
            Conn::Listening { backlog: b, .. } => *b = backlog,
            Conn::None => {
                st.conn = Conn::Listening {
                    backlog,
                    pending: VecDeque::new(),
                    cred: Ucred::of_task(task),
                }
            }
            Conn::Peer { .. } => return_errno!(EINVAL),
        }
        drop(st);
        // Connectors waiting for room in a larger backlog.
        self.ep.queue.notify(events::OUT);
        Ok(())
    }

    fn accept(
        &self,
        task: &Task,
        nonblock: bool,
        new_nonblock: bool,
    ) -> Result<(Arc<dyn FileDescription>, Vec<u8>)> {
        if self.ep.ty == libc::SOCK_DGRAM {
            return_errno!(EOPNOTSUPP);
        }
        let timeout = self.ep.lock().opts.rcvtimeo;
        let queues = [&*self.ep.queue];
        let server = wait_ready(task, &queues, events::IN, nonblock, timeout, || {
            let mut st = self.ep.lock();
            match &mut st.conn {
                Conn::Listening { pending, .. } => Ok(pending.pop_front()),
                _ => Err(errno!(EINVAL)),
            }
        })?;
        // Room in the backlog for a waiting connector.
        self.ep.queue.notify(events::OUT);
        let peer_addr = {
            let mut ss = server.lock();
            ss.embryo = false;
            match &ss.conn {
                Conn::Peer { addr, .. } => addr::encode(addr.as_ref()),
                _ => addr::encode(None),
            }
        };
        let file: Arc<dyn FileDescription> = UnixSocket::wrap(server, task, new_nonblock);
        Ok((file, peer_addr))
    }

    fn connect(&self, task: &Task, raw: &[u8], nonblock: bool) -> Result<()> {
        let target = match addr::parse(raw)? {
            Parsed::Addr(a) => a,
            Parsed::Unspec if self.ep.ty == libc::SOCK_DGRAM => {
                self.ep.lock().conn = Conn::None;
                return Ok(());
            }
            _ => return_errno!(EINVAL),
        };
        if self.ep.ty != libc::SOCK_DGRAM {
            return self.connect_stream(task, target, nonblock);
        }
        if self.wants_autobind() {
            self.autobind()?;
        }
        let other = self.find(task, &target)?;
        self.ep.lock().conn = Conn::Peer {
            ep: Arc::downgrade(&other),
            addr: Some(target),
        };
        Ok(())
    }

    fn sendmsg(&self, task: &Task, mut req: SendRequest<'_>, nonblock: bool) -> Result<usize> {
        let to = match (req.addr, self.ep.ty) {
            (Some(raw), libc::SOCK_DGRAM) => {
                let a = match addr::parse(raw)? {
                    Parsed::Addr(a) => a,
                    _ => return_errno!(EINVAL),
                };
                if self.wants_autobind() {
                    self.autobind()?;
                }
                Some(self.find(task, &a)?)
            }
            (Some(_), libc::SOCK_STREAM) => {
                return match self.ep.lock().conn {
                    Conn::Peer { .. } => Err(errno!(EISCONN)),
                    _ => Err(errno!(EOPNOTSUPP)),
                };
            }
            _ => {
                if self.ep.ty == libc::SOCK_DGRAM && self.wants_autobind() {
                    self.autobind()?;
                }
                None
            }
        };
        if self.ep.ty != libc::SOCK_DGRAM && !matches!(self.ep.lock().conn, Conn::Peer { .. }) {
            return_errno!(ENOTCONN);
        }
        if self.ep.ty == libc::SOCK_STREAM && req.data.is_empty() {
            // Nothing is queued, not even passed files (unix_stream_sendmsg).
            if self.shutdown_bits() & SEND_SHUTDOWN != 0 {
                return_errno!(EPIPE);
            }
            return Ok(0);
        }
        let cred = req.creds.unwrap_or_else(|| Ucred::real_of_task(task));
        let timeout = self.ep.lock().opts.sndtimeo;
        // A datagram sender also waits for room at its destination; both are held weakly
        // so that a receiver closed meanwhile really goes.
        let dest = match &to {
            Some(t) => Some(t.clone()),
            None if self.ep.ty == libc::SOCK_DGRAM => match &self.ep.lock().conn {
                Conn::Peer { ep, .. } => ep.upgrade(),
                _ => None,
            },
            None => None,
        };
        let dest_wait = dest.as_ref().map(|d| d.peer_wait.clone());
        drop(dest);
        let to = to.map(|t| Arc::downgrade(&t));
        let mut queues: Vec<&WaitQueue> = vec![&self.ep.queue];
        if let Some(q) = &dest_wait {
            queues.push(q);
        }
        let mut sent = 0usize;
        loop {
            let rest = req.data.get(sent..).ok_or(errno!(EINVAL))?;
            let r = wait_ready(task, &queues, events::OUT, nonblock, timeout, || {
                self.send_once(rest, to.as_ref(), cred, &mut req.rights)
            });
            match r {
                Ok(n) => sent += n,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
            if sent >= req.data.len() || self.ep.ty != libc::SOCK_STREAM {
                break;
            }
        }
        Ok(sent)
    }

    fn recvmsg(&self, task: &Task, len: usize, flags: i32, nonblock: bool) -> Result<Received> {
        let timeout = self.ep.lock().opts.rcvtimeo;
        let peek = flags & libc::MSG_PEEK != 0;
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek && self.ep.ty == libc::SOCK_STREAM;
        let mut out: Option<Received> = None;
        loop {
            let have = out.as_ref().map_or(0, |o| o.data.len());
            let mut dead = Vec::new();
            let queues = [&*self.ep.queue];
            let r = wait_ready(task, &queues, events::IN, nonblock, timeout, || {
                self.recv_once(len - have, flags, &mut dead)
            });
            if !dead.is_empty() && self.ep.ty == libc::SOCK_DGRAM {
                self.ep.peer_wait.notify(events::OUT | events::WRNORM);
            }
            drop(dead);
            let part = match r {
                Ok(p) => p,
                Err(_) if have > 0 => break,
                Err(e) => return Err(e),
            };
            let eof = part.data.is_empty();
            let rights = !part.rights.is_empty();
            match out.as_mut() {
                None => out = Some(part),
                Some(o) => {
                    o.data.extend_from_slice(&part.data);
                    o.full_len = o.data.len();
                    o.rights.extend(part.rights);
                }
            }
            let have = out.as_ref().map_or(0, |o| o.data.len());
            if !waitall || eof || rights || have >= len {
                break;
            }
        }
        Ok(out.unwrap_or_default())
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        let mode = match how {
            libc::SHUT_RD => RCV_SHUTDOWN,
            libc::SHUT_WR => SEND_SHUTDOWN,
            libc::SHUT_RDWR => SHUTDOWN_MASK,
            _ => return_errno!(EINVAL),
        };
        let peer = {
            let mut st = self.ep.lock();
            st.shutdown |= mode;
            match &st.conn {
                Conn::Peer { ep, .. } if self.ep.connection_oriented() => ep.upgrade(),
                _ => None,
            }
        };
        self.ep.queue.notify(events::ALL);
        if let Some(p) = peer {
            let mut peer_mode = 0;
            if mode & RCV_SHUTDOWN != 0 {
                peer_mode |= SEND_SHUTDOWN;
            }
            if mode & SEND_SHUTDOWN != 0 {
                peer_mode |= RCV_SHUTDOWN;
            }
            p.lock().shutdown |= peer_mode;
            p.queue.notify(events::ALL);
        }
        Ok(())
    }

    fn sockname(&self) -> Result<Vec<u8>> {
        Ok(addr::encode(self.ep.lock().addr.as_ref()))
    }

    fn peername(&self) -> Result<Vec<u8>> {
        match &self.ep.lock().conn {
            Conn::Peer { addr, .. } => Ok(addr::encode(addr.as_ref())),
            _ => Err(errno!(ENOTCONN)),
        }
    }

    fn getsockopt(&self, _task: &Task, level: i32, name: i32, _len: usize) -> Result<Vec<u8>> {
        if level != libc::SOL_SOCKET {
            return_errno!(EOPNOTSUPP);
        }
        let int = |v: i32| v.to_ne_bytes().to_vec();
        let mut st = self.ep.lock();
        if let Some(v) = st.opts.get(name) {
            return Ok(v);
        }
        Ok(match name {
            libc::SO_TYPE => int(self.ep.ty),
            libc::SO_DOMAIN => int(libc::AF_UNIX),
            libc::SO_PROTOCOL => int(0),
            libc::SO_ERROR => int(st.err.take().map_or(0, |e| e.raw())),
            libc::SO_ACCEPTCONN => int(i32::from(matches!(st.conn, Conn::Listening { .. }))),
            libc::SO_PEERCRED => {
                bytemuck::bytes_of(&st.peercred.unwrap_or_else(Ucred::none)).to_vec()
            }
            libc::SO_PASSSEC => int(0),
            _ => return_errno!(ENOPROTOOPT),
        })
    }

    fn setsockopt(&self, _task: &Task, level: i32, name: i32, val: &[u8]) -> Result<()> {
        if level != libc::SOL_SOCKET {
            return_errno!(EOPNOTSUPP);
        }
        let mut st = self.ep.lock();
        if st.opts.set(name, val)? {
            drop(st);
            // A larger send buffer may make the socket writable.
            self.ep.queue.notify(events::OUT | events::WRNORM);
            return Ok(());
        }
        match name {
            libc::SO_PASSSEC => {
                super::opt_int(val)?;
                Ok(())
            }
            _ => Err(errno!(ENOPROTOOPT)),
        }
    }
}

impl FileDescription for UnixSocket {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        self.read_nowait(buf)
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        if self.ep.ty != libc::SOCK_DGRAM && !matches!(self.ep.lock().conn, Conn::Peer { .. }) {
            return_errno!(ENOTCONN);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut rights = Vec::new();
        self.send_once(buf, None, self.owner, &mut rights)?
            .ok_or(errno!(EAGAIN))
    }

    fn stat(&self) -> Result<Stat> {
        Ok(super::sockfs_stat(
            self.ino,
            self.uid,
            self.gid,
            self.created,
        ))
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        let n = match u64::from(cmd) {
            // FIONREAD/SIOCINQ: unread bytes; the next datagram's size for datagrams.
            libc::FIONREAD => {
                let st = self.ep.lock();
                if self.ep.ty == libc::SOCK_STREAM {
                    st.recv_bytes
                } else {
                    st.recvq.front().map_or(0, |m| m.data.len())
                }
            }
            // SIOCOUTQ: bytes sent and not yet read.
            0x5411 => self.ep.wmem(),
            _ => return super::ifreq::ioctl(task, cmd, arg),
        };
        task.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
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
        self.ep.readiness()
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.ep.queue.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn as_socket(&self) -> Option<&dyn Socket> {
        Some(self)
    }

    /// What `/proc/<pid>/fd` shows for a socket.
    fn path_name(&self) -> String {
        format!("socket:[{}]", self.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ep: &Arc<Endpoint>, data: &[u8]) -> Msg {
        ep.charge.bytes.fetch_add(data.len(), Ordering::AcqRel);
        Msg {
            data: data.to_vec(),
            off: 0,
            from: None,
            cred: Ucred::default(),
            rights: Vec::new(),
            charge: ep.charge.clone(),
            charged: data.len(),
        }
    }

    #[test]
    fn dropping_a_queued_message_uncharges_its_sender() {
        let a = Endpoint::new(libc::SOCK_DGRAM);
        let m = msg(&a, b"hello");
        assert_eq!(a.wmem(), 5);
        drop(m);
        assert_eq!(a.wmem(), 0);
    }

    #[test]
    fn closing_one_end_hangs_up_the_other() {
        let a = Endpoint::new(libc::SOCK_STREAM);
        let b = Endpoint::new(libc::SOCK_STREAM);
        a.lock().conn = Conn::Peer {
            ep: Arc::downgrade(&b),
            addr: None,
        };
        b.lock().conn = Conn::Peer {
            ep: Arc::downgrade(&a),
            addr: None,
        };
        let m = msg(&b, b"unread");
        a.lock().recvq.push_back(m);
        drop(a);
        assert_eq!(b.wmem(), 0);
        let r = b.readiness();
        assert_ne!(r & events::HUP, 0);
        assert_ne!(r & events::RDHUP, 0);
        assert_eq!(b.lock().err, Some(Errno::ECONNRESET));
    }
}
