//! `--network=host`: `AF_INET`/`AF_INET6` sockets are host sockets that the sentry holds
//! (DESIGN.md §4, "hostinet"), in the network namespace the sandbox runs in; so are
//! `NETLINK_ROUTE` sockets, which show the host's interfaces (the sentry holds no
//! capability, so they cannot change them). The sentry
//! still decodes every call: the host socket is always nonblocking, blocking happens in
//! the sentry (interruptibly, with `SO_RCVTIMEO`/`SO_SNDTIMEO` kept here) through the
//! host fd notifier, only options whose value holds no pointer are passed on, and
//! `SIGPIPE` is the sentry's to raise. The sentry's seccomp allow-list gains the socket
//! calls in this mode only (`seccomp/sentry-hostnet.policy`).
//!
//! Not done: the interface ioctls still describe the sandbox's loopback, not the host's
//! interfaces; control messages (`IP_PKTINFO`, timestamps) are not
//! passed; `SIOCOUTQ`.
#![deny(unsafe_code)]

use super::{wait_ready, CommonOpts, Received, SendRequest, Socket};
use crate::error::Result;
use crate::fs::host::notifier;
use crate::host;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{FileDescription, Stat, StatusFlags, Timespec};
use crate::{errno, return_errno, Errno};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// The most one host receive takes at once.
const RECV_MAX: usize = 1 << 20;

/// A host `AF_INET`/`AF_INET6` socket.
pub struct HostSocket {
    fd: OwnedFd,
    family: i32,
    ty: i32,
    protocol: i32,
    queue: Arc<WaitQueue>,
    /// Only the timeouts are used: the rest of `SOL_SOCKET` lives on the host socket.
    opts: Mutex<CommonOpts>,
    flags: StatusFlags,
    ino: u64,
    uid: u32,
    gid: u32,
    created: Timespec,
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        notifier::unregister(self.fd.as_fd());
    }
}

/// Options passed to the host socket: plain integers, `linger` and the like, never a
/// value holding a pointer (`SO_ATTACH_FILTER`) or one that needs privilege the
/// application does not have in the sandbox (`SO_BINDTODEVICE`, `IP_TRANSPARENT`).
fn passable(level: i32, name: i32) -> bool {
    match level {
        libc::SOL_SOCKET => matches!(
            name,
            libc::SO_REUSEADDR
                | libc::SO_REUSEPORT
                | libc::SO_KEEPALIVE
                | libc::SO_LINGER
                | libc::SO_RCVBUF
                | libc::SO_SNDBUF
                | libc::SO_BROADCAST
                | libc::SO_OOBINLINE
                | libc::SO_RCVLOWAT
                | libc::SO_PRIORITY
                | libc::SO_TIMESTAMP
        ),
        libc::IPPROTO_TCP => matches!(
            name,
            libc::TCP_NODELAY
                | libc::TCP_MAXSEG
                | libc::TCP_CORK
                | libc::TCP_KEEPIDLE
                | libc::TCP_KEEPINTVL
                | libc::TCP_KEEPCNT
                | libc::TCP_DEFER_ACCEPT
                | libc::TCP_QUICKACK
                | libc::TCP_USER_TIMEOUT
                | libc::TCP_NOTSENT_LOWAT
        ),
        libc::IPPROTO_IP => matches!(
            name,
            libc::IP_TTL | libc::IP_TOS | libc::IP_RECVERR | libc::IP_MTU_DISCOVER
        ),
        libc::IPPROTO_IPV6 => matches!(
            name,
            libc::IPV6_V6ONLY | libc::IPV6_UNICAST_HOPS | libc::IPV6_RECVERR
        ),
        // All of netlink's options are integers.
        libc::SOL_NETLINK => true,
        _ => false,
    }
}

impl HostSocket {
    fn wrap(
        task: &Task,
        fd: OwnedFd,
        family: i32,
        ty: i32,
        protocol: i32,
        nonblock: bool,
    ) -> Result<Arc<HostSocket>> {
        let queue = Arc::new(WaitQueue::new());
        notifier::register(fd.as_fd(), &queue)?;
        Ok(Arc::new(HostSocket {
            fd,
            family,
            ty,
            protocol,
            queue,
            opts: Mutex::new(CommonOpts::default()),
            flags: StatusFlags::new(
                libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 },
            ),
            ino: super::new_ino(),
            uid: task.creds.euid,
            gid: task.creds.egid,
            created: Timespec::now(),
        }))
    }

    /// `socket(family, ty, protocol)` on the host; the caller checked the arguments.
    pub fn new(
        task: &Task,
        family: i32,
        ty: i32,
        protocol: i32,
        nonblock: bool,
    ) -> Result<Arc<HostSocket>> {
        let fd = host::socket(family, ty, protocol)?;
        let protocol = if protocol != 0 || family == libc::AF_NETLINK {
            protocol
        } else if ty == libc::SOCK_STREAM {
            libc::IPPROTO_TCP
        } else {
            libc::IPPROTO_UDP
        };
        HostSocket::wrap(task, fd, family, ty, protocol, nonblock)
    }

    fn timeouts(&self) -> (Option<std::time::Duration>, Option<std::time::Duration>) {
        let o = self.opts.lock().unwrap_or_else(|e| e.into_inner());
        (o.rcvtimeo, o.sndtimeo)
    }

    /// A host call that may say EAGAIN: `None` then.
    fn again<T>(r: Result<T>) -> Result<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.errno == Errno::EAGAIN => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Socket for HostSocket {
    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, _task: &Task, addr: &[u8]) -> Result<()> {
        host::sock_addr_call(self.fd.as_fd(), addr, false)
    }

    fn listen(&self, _task: &Task, backlog: i32) -> Result<()> {
        host::listen(self.fd.as_fd(), backlog)
    }

    fn accept(
        &self,
        task: &Task,
        nonblock: bool,
        new_nonblock: bool,
    ) -> Result<(Arc<dyn FileDescription>, Vec<u8>)> {
        let (rcvtimeo, _) = self.timeouts();
        let queues = [&*self.queue];
        let (fd, peer) = wait_ready(task, &queues, events::IN, nonblock, rcvtimeo, || {
            HostSocket::again(host::accept(self.fd.as_fd()))
        })?;
        let file: Arc<dyn FileDescription> =
            HostSocket::wrap(task, fd, self.family, self.ty, self.protocol, new_nonblock)?;
        Ok((file, peer))
    }

    fn connect(&self, task: &Task, addr: &[u8], nonblock: bool) -> Result<()> {
        match host::sock_addr_call(self.fd.as_fd(), addr, true) {
            Err(e) if e.errno == Errno::EINPROGRESS && !nonblock => {}
            r => return r,
        }
        let (_, sndtimeo) = self.timeouts();
        let queues = [&*self.queue];
        let r = wait_ready(task, &queues, events::OUT, false, sndtimeo, || {
            if self.readiness() & (events::OUT | events::ERR | events::HUP) == 0 {
                return Ok(None);
            }
            let v = host::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_ERROR, 4)?;
            match super::opt_int(&v)? {
                0 => Ok(Some(())),
                e => Err(crate::Error::new(Errno::from_raw(e))),
            }
        });
        match r {
            Err(e) if e.errno == Errno::EAGAIN => Err(errno!(EINPROGRESS)),
            r => r,
        }
    }

    fn sendmsg(&self, task: &Task, req: SendRequest<'_>, nonblock: bool) -> Result<usize> {
        let (_, sndtimeo) = self.timeouts();
        let queues = [&*self.queue];
        let flags = (req.flags & (libc::MSG_MORE | libc::MSG_EOR | libc::MSG_CONFIRM))
            | libc::MSG_NOSIGNAL
            | libc::MSG_DONTWAIT;
        let mut sent = 0usize;
        loop {
            let rest = req.data.get(sent..).ok_or(errno!(EINVAL))?;
            let r = wait_ready(task, &queues, events::OUT, nonblock, sndtimeo, || {
                HostSocket::again(host::send(self.fd.as_fd(), rest, req.addr, flags))
            });
            match r {
                Ok(n) => sent += n,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
            if sent >= req.data.len() || self.ty != libc::SOCK_STREAM {
                break;
            }
        }
        Ok(sent)
    }

    fn recvmsg(&self, task: &Task, len: usize, flags: i32, nonblock: bool) -> Result<Received> {
        let (rcvtimeo, _) = self.timeouts();
        let queues = [&*self.queue];
        let host_flags = (flags & (libc::MSG_PEEK | libc::MSG_TRUNC)) | libc::MSG_DONTWAIT;
        let waitall = flags & libc::MSG_WAITALL != 0
            && flags & libc::MSG_PEEK == 0
            && self.ty == libc::SOCK_STREAM;
        let mut out = Received::default();
        let mut buf = vec![0u8; len.min(RECV_MAX)];
        loop {
            let have = out.data.len();
            let want = (len - have).min(buf.len());
            let chunk = buf.get_mut(..want).ok_or(errno!(EINVAL))?;
            let r = wait_ready(task, &queues, events::IN, nonblock, rcvtimeo, || {
                HostSocket::again(host::recv(self.fd.as_fd(), chunk, host_flags))
            });
            let (n, from, mflags) = match r {
                Ok(v) => v,
                Err(_) if have > 0 => break,
                Err(e) => return Err(e),
            };
            let took = n.min(want);
            out.data
                .extend_from_slice(buf.get(..took).ok_or(errno!(EIO))?);
            out.full_len = if self.ty == libc::SOCK_STREAM {
                out.data.len()
            } else {
                n
            };
            out.truncated = mflags & libc::MSG_TRUNC != 0;
            if !from.is_empty() {
                out.addr = Some(from);
            }
            if !waitall || n == 0 || out.data.len() >= len {
                break;
            }
        }
        Ok(out)
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        host::shutdown(self.fd.as_fd(), how)
    }

    fn sockname(&self) -> Result<Vec<u8>> {
        host::sock_name(self.fd.as_fd(), false)
    }

    fn peername(&self) -> Result<Vec<u8>> {
        host::sock_name(self.fd.as_fd(), true)
    }

    fn getsockopt(&self, _task: &Task, level: i32, name: i32, len: usize) -> Result<Vec<u8>> {
        if level == libc::SOL_SOCKET {
            let o = self.opts.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO | 66 | 67) {
                return o.get(name).ok_or(errno!(ENOPROTOOPT));
            }
        }
        if !matches!(
            level,
            libc::SOL_SOCKET
                | libc::IPPROTO_TCP
                | libc::IPPROTO_UDP
                | libc::IPPROTO_IP
                | libc::IPPROTO_IPV6
        ) {
            return_errno!(ENOPROTOOPT);
        }
        host::getsockopt(self.fd.as_fd(), level, name, len)
    }

    fn setsockopt(&self, _task: &Task, level: i32, name: i32, val: &[u8]) -> Result<()> {
        if level == libc::SOL_SOCKET
            && matches!(name, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO | 66 | 67)
        {
            let mut o = self.opts.lock().unwrap_or_else(|e| e.into_inner());
            o.set(name, val)?;
            return Ok(());
        }
        if !passable(level, name) {
            return_errno!(ENOPROTOOPT);
        }
        host::setsockopt(self.fd.as_fd(), level, name, val)
    }
}

impl FileDescription for HostSocket {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        let (n, _, _) = host::recv(self.fd.as_fd(), buf, libc::MSG_DONTWAIT)?;
        Ok(n.min(buf.len()))
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        host::send(
            self.fd.as_fd(),
            buf,
            None,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
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
        if u64::from(cmd) == libc::FIONREAD {
            let n = host::fionread(self.fd.as_fd())?;
            task.write_obj(arg, &n)?;
            return Ok(0);
        }
        super::ifreq::ioctl(task, cmd, arg)
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn readiness(&self) -> u32 {
        let want = libc::POLLIN | libc::POLLOUT | libc::POLLPRI | libc::POLLRDHUP;
        host::poll_now(self.fd.as_fd(), want).unwrap_or(events::ERR)
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.queue.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn as_socket(&self) -> Option<&dyn Socket> {
        Some(self)
    }

    fn path_name(&self) -> String {
        format!("socket:[{}]", self.ino)
    }
}
