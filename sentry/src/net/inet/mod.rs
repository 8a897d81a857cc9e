//! `AF_INET` and `AF_INET6` sockets (`SOCK_STREAM` TCP and `SOCK_DGRAM` UDP) on the
//! sentry's own TCP/IP stack (`stack.rs`, smoltcp). With `--network=none` that stack has
//! only the loopback interface: processes of the sandbox reach each other over 127.0.0.1
//! and ::1, and nothing outside. No host socket is ever made for the application.
//!
//! ICMP sockets (ping and raw) are in `icmp.rs`.
//!
//! Not done: `MSG_OOB` (`EOPNOTSUPP`); UDP multicast and broadcast; `IP_RECVERR` (ICMP
//! errors reach only connected UDP sockets, as `ECONNREFUSED`); `SO_LINGER` with a timeout
//! does not make `close` wait; `TIME_WAIT` is not kept, so a port is free again at once;
//! addresses of 127.0.0.0/8 other than 127.0.0.1 are not the sandbox's; options changed
//! after a connection exists do not resize its buffers.
#![deny(unsafe_code)]

pub mod addr;
mod device;
pub mod icmp;
mod ndisc;
pub mod packet;
pub mod stack;

pub use device::LO_MTU;

use super::{wait_ready, Received, SendRequest, Socket};
use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{FileDescription, Stat, StatusFlags, Timespec};
use crate::{errno, return_errno};
use stack::Proto;
use std::sync::Arc;
use std::time::Duration;

/// `IPPROTO_TCP` options not in the libc crate's constants for every target.
const TCP_KEEPIDLE: i32 = 4;
const TCP_KEEPINTVL: i32 = 5;
const TCP_KEEPCNT: i32 = 6;
const TCP_INFO: i32 = 11;
const TCP_QUICKACK: i32 = 12;
const TCP_USER_TIMEOUT: i32 = 18;
const TCP_CONGESTION: i32 = 13;
/// `SIOCINQ`/`SIOCOUTQ`.
const SIOCOUTQ: u64 = 0x5411;

/// An open inet socket; its state lives in the stack, under its id.
pub struct InetSocket {
    id: u64,
    family: i32,
    ty: i32,
    protocol: i32,
    queue: Arc<WaitQueue>,
    flags: StatusFlags,
    ino: u64,
    uid: u32,
    gid: u32,
    created: Timespec,
}

impl Drop for InetSocket {
    fn drop(&mut self) {
        let id = self.id;
        let _ = stack::with(|st| {
            st.close(id);
            Ok(())
        });
    }
}

fn status(nonblock: bool) -> u32 {
    libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 }
}

/// The socket type and protocol `socket(family, ty, protocol)` makes, or why not.
pub fn check_type(ty: i32, protocol: i32) -> Result<i32> {
    match ty {
        libc::SOCK_STREAM if protocol == 0 || protocol == libc::IPPROTO_TCP => {
            Ok(libc::IPPROTO_TCP)
        }
        libc::SOCK_DGRAM if protocol == 0 || protocol == libc::IPPROTO_UDP => Ok(libc::IPPROTO_UDP),
        // ICMP: ping and raw sockets (`icmp.rs`); other raw sockets are not made.
        libc::SOCK_DGRAM | libc::SOCK_RAW if protocol == libc::IPPROTO_ICMP => Ok(protocol),
        libc::SOCK_STREAM | libc::SOCK_DGRAM => Err(errno!(EPROTONOSUPPORT)),
        libc::SOCK_RAW => Err(errno!(EPROTONOSUPPORT)),
        _ => Err(errno!(ESOCKTNOSUPPORT)),
    }
}

impl InetSocket {
    fn wrap(
        task: &Task,
        id: u64,
        queue: Arc<WaitQueue>,
        family: i32,
        ty: i32,
        nonblock: bool,
    ) -> Arc<InetSocket> {
        Arc::new(InetSocket {
            id,
            family,
            ty,
            protocol: if ty == libc::SOCK_STREAM {
                libc::IPPROTO_TCP
            } else {
                libc::IPPROTO_UDP
            },
            queue,
            flags: StatusFlags::new(status(nonblock)),
            ino: stack::peek(|st| st.ino_of(id)).unwrap_or_else(super::new_ino),
            uid: task.creds.euid,
            gid: task.creds.egid,
            created: Timespec::now(),
        })
    }

    /// `socket(family, ty, protocol)`; the caller checked the arguments with
    /// [`check_type`].
    pub fn new(task: &Task, family: i32, ty: i32, nonblock: bool) -> Arc<InetSocket> {
        let proto = if ty == libc::SOCK_STREAM {
            Proto::Tcp
        } else {
            Proto::Udp
        };
        let uid = task.creds.euid;
        let (id, queue) = stack::with(|st| Ok(st.create(family, proto, uid)))
            .unwrap_or_else(|_| (0, Arc::new(WaitQueue::new())));
        InetSocket::wrap(task, id, queue, family, ty, nonblock)
    }

    fn tcp(&self) -> bool {
        self.ty == libc::SOCK_STREAM
    }

    fn timeouts(&self) -> (Option<Duration>, Option<Duration>) {
        stack::peek(|st| {
            st.opts_of(self.id)
                .map_or((None, None), |o| (o.rcvtimeo, o.sndtimeo))
        })
    }

    fn parse(&self, raw: &[u8]) -> Result<addr::Parsed> {
        addr::parse(self.family, raw)
    }

    /// `read(2)` without a task: a receive that does not wait.
    fn recv_nowait(&self, len: usize) -> Result<Vec<u8>> {
        let got = if self.tcp() {
            stack::with(|st| st.tcp_recv(self.id, len, false))?
        } else {
            stack::with(|st| st.udp_recv(self.id, len, false))?.map(|r| r.data)
        };
        got.ok_or(errno!(EAGAIN))
    }
}

fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

impl Socket for InetSocket {
    fn family(&self) -> i32 {
        self.family
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        self.protocol
    }

    fn bind(&self, task: &Task, raw: &[u8]) -> Result<()> {
        let p = self.parse(raw)?;
        // Ports below 1024 need CAP_NET_BIND_SERVICE, as in Linux.
        let privileged = task
            .creds
            .has_cap(crate::kernel::creds::CAP_NET_BIND_SERVICE);
        stack::with(|st| st.bind(self.id, p, privileged))
    }

    fn listen(&self, _task: &Task, backlog: i32) -> Result<()> {
        if !self.tcp() {
            return_errno!(EOPNOTSUPP);
        }
        stack::with(|st| st.listen(self.id, backlog))?;
        self.queue.notify(events::OUT);
        Ok(())
    }

    fn accept(
        &self,
        task: &Task,
        nonblock: bool,
        new_nonblock: bool,
    ) -> Result<(Arc<dyn FileDescription>, Vec<u8>)> {
        if !self.tcp() {
            return_errno!(EOPNOTSUPP);
        }
        let (rcvtimeo, _) = self.timeouts();
        let uid = task.creds.euid;
        let queues = [&*self.queue];
        let (id, queue, peer) = wait_ready(task, &queues, events::IN, nonblock, rcvtimeo, || {
            stack::with(|st| st.accept(self.id, uid))
        })?;
        let file: Arc<dyn FileDescription> =
            InetSocket::wrap(task, id, queue, self.family, self.ty, new_nonblock);
        Ok((file, peer))
    }

    fn connect(&self, task: &Task, raw: &[u8], nonblock: bool) -> Result<()> {
        let p = match addr::family_of(raw) {
            Ok(libc::AF_UNSPEC) => addr::Parsed::Unspec,
            _ => self.parse(raw)?,
        };
        if !self.tcp() {
            return stack::with(|st| st.udp_connect(self.id, p));
        }
        if !stack::with(|st| st.tcp_connect(self.id, p))? {
            return Ok(());
        }
        // Even on loopback, where the handshake is over already, Linux says EINPROGRESS.
        if nonblock {
            return_errno!(EINPROGRESS);
        }
        let (_, sndtimeo) = self.timeouts();
        let queues = [&*self.queue];
        let r = wait_ready(task, &queues, events::OUT, false, sndtimeo, || {
            stack::with(|st| st.connect_done(self.id))
        });
        match r {
            // A connect that timed out goes on in the background (Linux's EINPROGRESS).
            Err(e) if e.errno == crate::Errno::EAGAIN => Err(errno!(EINPROGRESS)),
            r => r,
        }
    }

    fn sendmsg(&self, task: &Task, req: SendRequest<'_>, nonblock: bool) -> Result<usize> {
        let (_, sndtimeo) = self.timeouts();
        let queues = [&*self.queue];
        if !self.tcp() {
            let to = match req.addr {
                Some(raw) => Some(self.parse(raw)?),
                None => None,
            };
            return wait_ready(task, &queues, events::OUT, nonblock, sndtimeo, || {
                stack::with(|st| st.udp_send(self.id, req.data, to))
            });
        }
        let mut sent = 0usize;
        loop {
            let rest = req.data.get(sent..).ok_or(errno!(EINVAL))?;
            let r = wait_ready(task, &queues, events::OUT, nonblock, sndtimeo, || {
                stack::with(|st| st.tcp_send(self.id, rest))
            });
            match r {
                Ok(n) => sent += n,
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
            if sent >= req.data.len() {
                break;
            }
        }
        Ok(sent)
    }

    fn recvmsg(&self, task: &Task, len: usize, flags: i32, nonblock: bool) -> Result<Received> {
        let (rcvtimeo, _) = self.timeouts();
        let peek = flags & libc::MSG_PEEK != 0;
        let queues = [&*self.queue];
        if !self.tcp() {
            return wait_ready(task, &queues, events::IN, nonblock, rcvtimeo, || {
                stack::with(|st| st.udp_recv(self.id, len, peek))
            });
        }
        let waitall = flags & libc::MSG_WAITALL != 0 && !peek;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let want = len - out.len();
            let r = wait_ready(task, &queues, events::IN, nonblock, rcvtimeo, || {
                stack::with(|st| st.tcp_recv(self.id, want, peek))
            });
            let part = match r {
                Ok(p) => p,
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(e),
            };
            let eof = part.is_empty();
            out.extend_from_slice(&part);
            if !waitall || eof || out.len() >= len {
                break;
            }
        }
        Ok(Received {
            full_len: out.len(),
            data: out,
            ..Received::default()
        })
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        let r = stack::with(|st| st.shutdown(self.id, how));
        self.queue.notify(events::ALL);
        r
    }

    fn sockname(&self) -> Result<Vec<u8>> {
        stack::peek(|st| st.sockname(self.id))
    }

    fn peername(&self) -> Result<Vec<u8>> {
        stack::peek(|st| st.peername(self.id))
    }

    fn getsockopt(&self, _task: &Task, level: i32, name: i32, _len: usize) -> Result<Vec<u8>> {
        let id = self.id;
        let tcp = self.tcp();
        stack::with(|st| {
            let state = st.tcp_state(id);
            let e = st.entry(id)?;
            match level {
                libc::SOL_SOCKET => {
                    if let Some(v) = e.opts.get(name) {
                        return Ok(v);
                    }
                    Ok(match name {
                        libc::SO_TYPE => int(self.ty),
                        libc::SO_DOMAIN => int(self.family),
                        libc::SO_PROTOCOL => int(self.protocol),
                        libc::SO_ERROR => int(e.err.take().map_or(0, |e| e.raw())),
                        libc::SO_ACCEPTCONN => int(i32::from(
                            state == Some(smoltcp::socket::tcp::State::Listen),
                        )),
                        libc::SO_PASSSEC | libc::SO_PRIORITY | libc::SO_MARK => int(0),
                        _ => return_errno!(ENOPROTOOPT),
                    })
                }
                libc::IPPROTO_TCP if tcp => Ok(match name {
                    libc::TCP_NODELAY => int(i32::from(e.popts.nodelay)),
                    libc::TCP_CORK => int(i32::from(e.popts.cork)),
                    TCP_KEEPIDLE => int(e.popts.keepidle as i32),
                    TCP_KEEPINTVL => int(e.popts.keepintvl as i32),
                    TCP_KEEPCNT => int(e.popts.keepcnt as i32),
                    TCP_USER_TIMEOUT => int(e.popts.user_timeout as i32),
                    TCP_QUICKACK => int(i32::from(e.popts.quickack)),
                    libc::TCP_DEFER_ACCEPT => int(e.popts.defer_accept as i32),
                    libc::TCP_MAXSEG => int(if e.popts.maxseg > 0 {
                        e.popts.maxseg as i32
                    } else {
                        536
                    }),
                    TCP_CONGESTION => b"reno\0".to_vec(),
                    TCP_INFO => tcp_info(state),
                    _ => return_errno!(ENOPROTOOPT),
                }),
                libc::IPPROTO_IP if self.family == libc::AF_INET => Ok(match name {
                    libc::IP_TTL => int(i32::from(e.popts.ttl)),
                    libc::IP_TOS => int(i32::from(e.popts.tos)),
                    _ => return_errno!(ENOPROTOOPT),
                }),
                libc::IPPROTO_IPV6 if self.family == libc::AF_INET6 => Ok(match name {
                    libc::IPV6_V6ONLY => int(i32::from(e.v6only)),
                    libc::IPV6_UNICAST_HOPS => int(i32::from(e.popts.ttl)),
                    _ => return_errno!(ENOPROTOOPT),
                }),
                libc::IPPROTO_TCP | libc::IPPROTO_UDP => Err(errno!(ENOPROTOOPT)),
                _ => Err(errno!(EOPNOTSUPP)),
            }
        })
    }

    fn setsockopt(&self, _task: &Task, level: i32, name: i32, val: &[u8]) -> Result<()> {
        let id = self.id;
        let tcp = self.tcp();
        stack::with(|st| {
            let bound = st.entry(id)?.local.is_some();
            let e = st.entry(id)?;
            match level {
                libc::SOL_SOCKET => {
                    if e.opts.set(name, val)? {
                        return st.options_changed(id);
                    }
                    match name {
                        libc::SO_PASSSEC | libc::SO_PRIORITY | libc::SO_MARK => {
                            super::opt_int(val)?;
                            Ok(())
                        }
                        _ => Err(errno!(ENOPROTOOPT)),
                    }
                }
                libc::IPPROTO_TCP if tcp => {
                    let v = super::opt_int(val)?;
                    let pos = |v: i32, max: i32| {
                        if (1..=max).contains(&v) {
                            Ok(v as u32)
                        } else {
                            Err(errno!(EINVAL))
                        }
                    };
                    match name {
                        libc::TCP_NODELAY => e.popts.nodelay = v != 0,
                        libc::TCP_CORK => e.popts.cork = v != 0,
                        TCP_KEEPIDLE => e.popts.keepidle = pos(v, 32767)?,
                        TCP_KEEPINTVL => e.popts.keepintvl = pos(v, 32767)?,
                        TCP_KEEPCNT => e.popts.keepcnt = pos(v, 127)?,
                        TCP_USER_TIMEOUT => {
                            if v < 0 {
                                return_errno!(EINVAL);
                            }
                            e.popts.user_timeout = v as u32;
                        }
                        TCP_QUICKACK => e.popts.quickack = v != 0,
                        libc::TCP_DEFER_ACCEPT => e.popts.defer_accept = v.max(0) as u32,
                        libc::TCP_MAXSEG => {
                            if v != 0 && !(88..=32767).contains(&v) {
                                return_errno!(EINVAL);
                            }
                            e.popts.maxseg = v as u32;
                        }
                        TCP_CONGESTION => {}
                        _ => return_errno!(ENOPROTOOPT),
                    }
                    st.options_changed(id)
                }
                libc::IPPROTO_IP if self.family == libc::AF_INET => {
                    let v = super::opt_int(val)?;
                    match name {
                        libc::IP_TTL => {
                            e.popts.ttl = match v {
                                -1 => 64,
                                1..=255 => v as u8,
                                _ => return_errno!(EINVAL),
                            }
                        }
                        libc::IP_TOS => e.popts.tos = (v & 0xff) as u8,
                        _ => return_errno!(ENOPROTOOPT),
                    }
                    st.options_changed(id)
                }
                libc::IPPROTO_IPV6 if self.family == libc::AF_INET6 => {
                    let v = super::opt_int(val)?;
                    match name {
                        libc::IPV6_V6ONLY => {
                            // Linux fixes it once the socket is bound.
                            if bound {
                                return_errno!(EINVAL);
                            }
                            e.v6only = v != 0;
                        }
                        libc::IPV6_UNICAST_HOPS => {
                            e.popts.ttl = match v {
                                -1 => 64,
                                1..=255 => v as u8,
                                _ => return_errno!(EINVAL),
                            }
                        }
                        _ => return_errno!(ENOPROTOOPT),
                    }
                    st.options_changed(id)
                }
                libc::IPPROTO_TCP | libc::IPPROTO_UDP => Err(errno!(ENOPROTOOPT)),
                _ => Err(errno!(ENOPROTOOPT)),
            }
        })
    }
}

/// `struct tcp_info`'s first byte is the state (Linux's numbering); the rest is zero.
fn tcp_info(state: Option<smoltcp::socket::tcp::State>) -> Vec<u8> {
    let mut v = vec![0u8; 104];
    v[0] = state.map_or(7, stack::linux_tcp_state);
    v
}

impl FileDescription for InetSocket {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        let got = self.recv_nowait(buf.len())?;
        let n = got.len().min(buf.len());
        buf.get_mut(..n)
            .ok_or(errno!(EIO))?
            .copy_from_slice(got.get(..n).ok_or(errno!(EIO))?);
        Ok(n)
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        let r = if self.tcp() {
            stack::with(|st| st.tcp_send(self.id, buf))?
        } else {
            stack::with(|st| st.udp_send(self.id, buf, None))?
        };
        r.ok_or(errno!(EAGAIN))
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
            libc::FIONREAD => stack::with(|st| st.inq(self.id))?,
            SIOCOUTQ => stack::peek(|st| st.outq(self.id))?,
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
        stack::peek(|st| st.readiness(self.id))
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
