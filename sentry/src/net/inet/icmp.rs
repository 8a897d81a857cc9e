//! ICMP sockets on the sentry's stack (IPv4): ping sockets (`SOCK_DGRAM`,
//! `IPPROTO_ICMP`, for the groups in `ping_group_range`) and raw ICMP sockets
//! (`SOCK_RAW`, `IPPROTO_ICMP`, for `CAP_NET_RAW`), in `--network=none` and `sandbox`.
//!
//! Both live beside smoltcp rather than in it: the stack hands every ICMP packet it
//! receives to them before smoltcp sees it ([`Stack::deliver_icmp`]; smoltcp still
//! answers echo requests to the sandbox's addresses itself), and what they send is put
//! on the device as a finished IPv4 packet. As in Linux (`net/ipv4/ping.c`, `raw.c`):
//! - a ping socket sends echo requests only; the kernel sets the identifier to the
//!   socket's "port" (bound, or chosen at the first send) and the checksum, and the
//!   socket receives the echo replies carrying that identifier, without the IP header;
//! - a raw socket sends ICMP messages as given (checksum included) and receives a copy
//!   of every ICMP packet that arrives, IP header included, less the types its
//!   `ICMP_FILTER` drops.
//!
//! Not done: ICMPv6 (`EPROTONOSUPPORT`), `IP_HDRINCL`, `IP_RECVERR` and the error queue,
//! ancillary data (`IP_RECVTTL`, timestamps).
#![deny(unsafe_code)]

use super::addr::{self, Parsed};
use super::stack::{self, Stack};
use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::net::{wait_ready, CommonOpts, Received, SendRequest, Socket};
use crate::vfs::{FileDescription, Stat, StatusFlags, Timespec};
use crate::{errno, return_errno};
use smoltcp::wire::{IpAddress, Ipv4Address};
use std::collections::VecDeque;
use std::sync::Arc;

/// `CAP_NET_RAW`.
const CAP_NET_RAW: u32 = 13;
/// `SOL_RAW` and its `ICMP_FILTER` option.
const SOL_RAW: i32 = 255;
const ICMP_FILTER: i32 = 1;
const ICMP_ECHO: u8 = 8;
const ICMP_ECHOREPLY: u8 = 0;
/// Received packets a socket keeps before dropping more.
const QUEUE_MAX: usize = 256;

/// One ICMP socket's state in the stack.
pub struct IcmpEntry {
    raw: bool,
    queue: Arc<WaitQueue>,
    pub opts: CommonOpts,
    /// The bound address (`None`: any).
    local: Option<Ipv4Address>,
    /// A ping socket's identifier, once bound or used.
    ident: Option<u16>,
    /// The `connect`ed destination.
    peer: Option<Ipv4Address>,
    ttl: u8,
    tos: u8,
    /// `ICMP_FILTER`: bit N drops type N.
    filter: u32,
    rx: VecDeque<(Vec<u8>, Ipv4Address)>,
    shut_rd: bool,
}

/// Whether `socket(family, ty, protocol)` is an ICMP socket this module makes.
pub fn is_icmp(family: i32, ty: i32, protocol: i32) -> bool {
    family == libc::AF_INET
        && protocol == libc::IPPROTO_ICMP
        && (ty == libc::SOCK_DGRAM || ty == libc::SOCK_RAW)
}

pub struct IcmpSocket {
    id: u64,
    ty: i32,
    queue: Arc<WaitQueue>,
    flags: StatusFlags,
    ino: u64,
    uid: u32,
    gid: u32,
    created: Timespec,
}

impl Drop for IcmpSocket {
    fn drop(&mut self) {
        let id = self.id;
        let _ = stack::with(|st| {
            st.icmp.remove(&id);
            Ok(())
        });
    }
}

impl IcmpSocket {
    /// `socket(AF_INET, ty, IPPROTO_ICMP)`: raw needs `CAP_NET_RAW` (`EPERM`), ping a
    /// group in the range (`EACCES`).
    pub fn new(task: &Task, ty: i32, nonblock: bool) -> Result<Arc<IcmpSocket>> {
        let raw = ty == libc::SOCK_RAW;
        if raw && !task.creds.has_cap(CAP_NET_RAW) {
            return_errno!(EPERM);
        }
        if !raw {
            // The sandbox's `net.ipv4.ping_group_range` (Linux's default `1 0`: nobody).
            let (lo, hi) = crate::fs::proc::sysctl::ping_group_range();
            let creds = &task.creds;
            let ok = std::iter::once(creds.egid)
                .chain(creds.groups.iter().copied())
                .any(|g| (lo..=hi).contains(&g));
            if !ok {
                return_errno!(EACCES);
            }
        }
        let queue = Arc::new(WaitQueue::new());
        let entry = IcmpEntry {
            raw,
            queue: queue.clone(),
            opts: CommonOpts::default(),
            local: None,
            ident: None,
            peer: None,
            ttl: 64,
            tos: 0,
            filter: 0,
            rx: VecDeque::new(),
            shut_rd: false,
        };
        let id = stack::with(|st| Ok(st.add_icmp(entry)))?;
        Ok(Arc::new(IcmpSocket {
            id,
            ty,
            queue,
            flags: StatusFlags::new(
                libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 },
            ),
            ino: crate::net::new_ino(),
            uid: task.creds.euid,
            gid: task.creds.egid,
            created: Timespec::now(),
        }))
    }

    fn timeouts(&self) -> (Option<std::time::Duration>, Option<std::time::Duration>) {
        stack::peek(|st| {
            st.icmp
                .get(&self.id)
                .map_or((None, None), |e| (e.opts.rcvtimeo, e.opts.sndtimeo))
        })
    }
}

fn v4(p: Parsed) -> Result<(Option<Ipv4Address>, u16)> {
    match p {
        Parsed::Addr {
            addr: Some(IpAddress::Ipv4(a)),
            port,
        } => Ok((Some(a), port)),
        Parsed::Addr { addr: None, port } => Ok((None, port)),
        Parsed::Addr { .. } => Err(errno!(EAFNOSUPPORT)),
        Parsed::Unspec => Err(errno!(EAFNOSUPPORT)),
    }
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [b] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*b) << 8);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet around an ICMP message.
fn ipv4_packet(src: Ipv4Address, dst: Ipv4Address, ttl: u8, tos: u8, icmp: &[u8]) -> Vec<u8> {
    let total = 20 + icmp.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, tos]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    let id = (crate::net::new_ino() & 0xffff) as u16;
    p.extend_from_slice(&id.to_be_bytes());
    // Don't fragment, as Linux's default path MTU discovery sets it.
    p.extend_from_slice(&[0x40, 0, ttl, libc::IPPROTO_ICMP as u8, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p);
    if let Some(field) = p.get_mut(10..12) {
        field.copy_from_slice(&c.to_be_bytes());
    }
    p.extend_from_slice(icmp);
    p
}

/// Write two bytes at `at`.
fn put(msg: &mut [u8], at: usize, v: [u8; 2]) -> Result<()> {
    msg.get_mut(at..at + 2)
        .ok_or(errno!(EINVAL))?
        .copy_from_slice(&v);
    Ok(())
}

impl Stack {
    fn add_icmp(&mut self, e: IcmpEntry) -> u64 {
        let id = self.new_id();
        self.icmp.insert(id, e);
        id
    }

    fn icmp_entry(&mut self, id: u64) -> Result<&mut IcmpEntry> {
        self.icmp.get_mut(&id).ok_or(errno!(EBADF))
    }

    /// A free identifier for a ping socket (Linux's `ping_get_port`).
    fn free_ident(&self) -> Result<u16> {
        let start = (crate::net::new_ino() % 65535) as u16;
        for i in 0..=u16::MAX {
            let cand = start.wrapping_add(i);
            if cand == 0 {
                continue;
            }
            if !self.icmp.values().any(|e| !e.raw && e.ident == Some(cand)) {
                return Ok(cand);
            }
        }
        Err(errno!(EAGAIN))
    }

    fn icmp_bind(&mut self, id: u64, p: Parsed) -> Result<()> {
        let (a, port) = v4(p)?;
        if let Some(a) = a {
            if !self.owns(IpAddress::Ipv4(a)) {
                return_errno!(EADDRNOTAVAIL);
            }
        }
        let e = self.icmp_entry(id)?;
        if e.local.is_some() || e.ident.is_some() {
            return_errno!(EINVAL);
        }
        let raw = e.raw;
        // Ping sockets are made with SO_REUSEADDR (Linux's INET_PROTOSW_REUSE), so a
        // given identifier is never refused.
        let ident = if raw {
            None
        } else if port != 0 {
            Some(port)
        } else {
            Some(self.free_ident()?)
        };
        let e = self.icmp_entry(id)?;
        e.local = a;
        e.ident = ident;
        Ok(())
    }

    fn icmp_send(&mut self, id: u64, data: &[u8], to: Option<Parsed>) -> Result<usize> {
        let e = self.icmp.get(&id).ok_or(errno!(EBADF))?;
        let dst = match to {
            Some(p) => v4(p)?.0.unwrap_or(Ipv4Address::new(127, 0, 0, 1)),
            None => e.peer.ok_or(errno!(EDESTADDRREQ))?,
        };
        let (raw, local, ttl, tos) = (e.raw, e.local, e.ttl, e.tos);
        if data.len() > 65507 {
            return_errno!(EMSGSIZE);
        }
        let dst_ip = IpAddress::Ipv4(dst);
        if !self.owns(dst_ip) && !self.reaches(dst_ip) {
            return_errno!(ENETUNREACH);
        }
        if dst.is_broadcast() && !e.opts.broadcast {
            return_errno!(EACCES);
        }
        let mut msg = data.to_vec();
        if !raw {
            // ping_common_sendmsg: an echo request with the socket's identifier.
            if msg.len() < 8 {
                return_errno!(EINVAL);
            }
            if msg.first() != Some(&ICMP_ECHO) || msg.get(1) != Some(&0) {
                return_errno!(EINVAL);
            }
            let ident = match self.icmp_entry(id)?.ident {
                Some(i) => i,
                None => {
                    let i = self.free_ident()?;
                    self.icmp_entry(id)?.ident = Some(i);
                    i
                }
            };
            put(&mut msg, 4, ident.to_be_bytes())?;
            put(&mut msg, 2, [0, 0])?;
            let c = checksum(&msg);
            put(&mut msg, 2, c.to_be_bytes())?;
        } else if msg.is_empty() {
            return_errno!(EINVAL);
        }
        let src = match local {
            Some(a) => a,
            None => match self.source_address(dst_ip) {
                Some(IpAddress::Ipv4(a)) => a,
                _ => Ipv4Address::new(127, 0, 0, 1),
            },
        };
        let packet = ipv4_packet(src, dst, ttl, tos, &msg);
        self.transmit_ip(packet);
        Ok(data.len())
    }

    fn icmp_recv(&mut self, id: u64, len: usize, peek: bool) -> Result<Option<Received>> {
        let e = self.icmp_entry(id)?;
        let got = if peek {
            e.rx.front().cloned()
        } else {
            e.rx.pop_front()
        };
        let Some((data, from)) = got else {
            return Ok(if e.shut_rd {
                Some(Received::default())
            } else {
                None
            });
        };
        let full_len = data.len();
        let mut data = data;
        data.truncate(len);
        Ok(Some(Received {
            data,
            full_len,
            truncated: full_len > len,
            addr: Some(addr::encode(libc::AF_INET, Some(IpAddress::Ipv4(from)), 0)),
            ..Received::default()
        }))
    }

    /// Hand an incoming ICMP packet (IPv4, whole) to the ICMP sockets it is for; the
    /// queues to wake.
    pub(super) fn deliver_icmp(&mut self, packet: &[u8]) -> Vec<Arc<WaitQueue>> {
        let mut wakes = Vec::new();
        if self.icmp.is_empty() {
            return wakes;
        }
        let hl = usize::from(packet.first().map_or(0, |b| b & 0xf)) * 4;
        let (Some(icmp), Some(src), Some(dst)) = (
            packet.get(hl..),
            packet.get(12..16).and_then(|b| <[u8; 4]>::try_from(b).ok()),
            packet.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok()),
        ) else {
            return wakes;
        };
        let (src, dst) = (Ipv4Address::from(src), Ipv4Address::from(dst));
        let Some(&ty) = icmp.first() else {
            return wakes;
        };
        let ident = icmp.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
        for e in self.icmp.values_mut() {
            if e.local.is_some_and(|l| l != dst) || e.rx.len() >= QUEUE_MAX {
                continue;
            }
            let copy = if e.raw {
                let filtered = ty < 32 && e.filter & (1 << ty) != 0;
                (!filtered).then(|| packet.to_vec())
            } else {
                (ty == ICMP_ECHOREPLY && e.ident.is_some() && ident == e.ident)
                    .then(|| icmp.to_vec())
            };
            if let Some(c) = copy {
                e.rx.push_back((c, src));
                wakes.push(e.queue.clone());
            }
        }
        wakes
    }

    fn icmp_readiness(&self, id: u64) -> u32 {
        let Some(e) = self.icmp.get(&id) else {
            return events::HUP | events::ERR;
        };
        let mut r = events::OUT | events::WRNORM;
        if !e.rx.is_empty() || e.shut_rd {
            r |= events::IN | events::RDNORM;
        }
        r
    }
}

impl Socket for IcmpSocket {
    fn family(&self) -> i32 {
        libc::AF_INET
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        libc::IPPROTO_ICMP
    }

    fn bind(&self, _task: &Task, raw: &[u8]) -> Result<()> {
        let p = addr::parse(libc::AF_INET, raw)?;
        let p = match p {
            Parsed::Unspec => Parsed::Addr {
                addr: None,
                port: 0,
            },
            p => p,
        };
        stack::with(|st| st.icmp_bind(self.id, p))
    }

    fn listen(&self, _task: &Task, _backlog: i32) -> Result<()> {
        Err(errno!(EOPNOTSUPP))
    }

    fn accept(
        &self,
        _task: &Task,
        _nonblock: bool,
        _new_nonblock: bool,
    ) -> Result<(Arc<dyn FileDescription>, Vec<u8>)> {
        Err(errno!(EOPNOTSUPP))
    }

    fn connect(&self, _task: &Task, raw: &[u8], _nonblock: bool) -> Result<()> {
        let p = addr::parse(libc::AF_INET, raw)?;
        stack::with(|st| {
            let dst = match p {
                Parsed::Unspec => None,
                p => Some(v4(p)?.0.unwrap_or(Ipv4Address::new(127, 0, 0, 1))),
            };
            st.icmp_entry(self.id)?.peer = dst;
            Ok(())
        })
    }

    fn sendmsg(&self, task: &Task, req: SendRequest<'_>, nonblock: bool) -> Result<usize> {
        if req.flags & libc::MSG_OOB != 0 {
            return_errno!(EOPNOTSUPP);
        }
        let to = match req.addr {
            Some(raw) => Some(addr::parse(libc::AF_INET, raw)?),
            None => None,
        };
        let (_, sndtimeo) = self.timeouts();
        let queues = [&*self.queue];
        wait_ready(task, &queues, events::OUT, nonblock, sndtimeo, || {
            stack::with(|st| st.icmp_send(self.id, req.data, to)).map(Some)
        })
    }

    fn recvmsg(&self, task: &Task, len: usize, flags: i32, nonblock: bool) -> Result<Received> {
        if flags & libc::MSG_ERRQUEUE != 0 {
            return_errno!(EAGAIN);
        }
        let peek = flags & libc::MSG_PEEK != 0;
        let (rcvtimeo, _) = self.timeouts();
        let queues = [&*self.queue];
        wait_ready(task, &queues, events::IN, nonblock, rcvtimeo, || {
            stack::with(|st| st.icmp_recv(self.id, len, peek))
        })
    }

    fn shutdown(&self, how: i32) -> Result<()> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return_errno!(EINVAL);
        }
        let r = stack::with(|st| {
            let e = st.icmp_entry(self.id)?;
            if e.peer.is_none() {
                return_errno!(ENOTCONN);
            }
            if how != libc::SHUT_WR {
                e.shut_rd = true;
            }
            Ok(())
        });
        self.queue.notify(events::ALL);
        r
    }

    fn sockname(&self) -> Result<Vec<u8>> {
        stack::peek(|st| {
            let e = st.icmp.get(&self.id).ok_or(errno!(EBADF))?;
            Ok(addr::encode(
                libc::AF_INET,
                e.local.map(IpAddress::Ipv4),
                e.ident.unwrap_or(0),
            ))
        })
    }

    fn peername(&self) -> Result<Vec<u8>> {
        // Linux's inet_getname wants a peer port, which ICMP sockets never have.
        Err(errno!(ENOTCONN))
    }

    fn getsockopt(&self, _task: &Task, level: i32, name: i32, _len: usize) -> Result<Vec<u8>> {
        let int = |v: i32| v.to_ne_bytes().to_vec();
        stack::with(|st| {
            let e = st.icmp_entry(self.id)?;
            match level {
                libc::SOL_SOCKET => {
                    if let Some(v) = e.opts.get(name) {
                        return Ok(v);
                    }
                    Ok(match name {
                        libc::SO_TYPE => int(self.ty),
                        libc::SO_DOMAIN => int(libc::AF_INET),
                        libc::SO_PROTOCOL => int(libc::IPPROTO_ICMP),
                        libc::SO_ERROR | libc::SO_PRIORITY | libc::SO_MARK => int(0),
                        libc::SO_ACCEPTCONN => int(0),
                        _ => return_errno!(ENOPROTOOPT),
                    })
                }
                libc::IPPROTO_IP => Ok(match name {
                    libc::IP_TTL => int(i32::from(e.ttl)),
                    libc::IP_TOS => int(i32::from(e.tos)),
                    _ => return_errno!(ENOPROTOOPT),
                }),
                SOL_RAW if e.raw && name == ICMP_FILTER => Ok(e.filter.to_ne_bytes().to_vec()),
                _ => Err(errno!(ENOPROTOOPT)),
            }
        })
    }

    fn setsockopt(&self, _task: &Task, level: i32, name: i32, val: &[u8]) -> Result<()> {
        stack::with(|st| {
            let e = st.icmp_entry(self.id)?;
            match level {
                libc::SOL_SOCKET => {
                    if e.opts.set(name, val)? {
                        return Ok(());
                    }
                    match name {
                        libc::SO_PRIORITY | libc::SO_MARK | libc::SO_TIMESTAMP => {
                            crate::net::opt_int(val).map(drop)
                        }
                        _ => Err(errno!(ENOPROTOOPT)),
                    }
                }
                libc::IPPROTO_IP => {
                    let v = crate::net::opt_int(val)?;
                    match name {
                        libc::IP_TTL => {
                            e.ttl = match v {
                                -1 => 64,
                                1..=255 => v as u8,
                                _ => return_errno!(EINVAL),
                            }
                        }
                        libc::IP_TOS => e.tos = (v & 0xff) as u8,
                        // Accepted without the ancillary data they ask for.
                        libc::IP_RECVTTL | libc::IP_RECVERR | libc::IP_MTU_DISCOVER => {}
                        _ => return_errno!(ENOPROTOOPT),
                    }
                    Ok(())
                }
                SOL_RAW if e.raw && name == ICMP_FILTER => {
                    e.filter = crate::net::opt_int(val)? as u32;
                    Ok(())
                }
                _ => Err(errno!(ENOPROTOOPT)),
            }
        })
    }
}

impl FileDescription for IcmpSocket {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        let got =
            stack::with(|st| st.icmp_recv(self.id, buf.len(), false))?.ok_or(errno!(EAGAIN))?;
        let n = got.data.len().min(buf.len());
        buf.get_mut(..n)
            .ok_or(errno!(EIO))?
            .copy_from_slice(got.data.get(..n).ok_or(errno!(EIO))?);
        Ok(n)
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        stack::with(|st| st.icmp_send(self.id, buf, None))
    }

    fn stat(&self) -> Result<Stat> {
        Ok(crate::net::sockfs_stat(
            self.ino,
            self.uid,
            self.gid,
            self.created,
        ))
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        if u64::from(cmd) == libc::FIONREAD {
            let n = stack::peek(|st| {
                st.icmp
                    .get(&self.id)
                    .and_then(|e| e.rx.front().map(|(d, _)| d.len()))
                    .unwrap_or(0)
            });
            task.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
            return Ok(0);
        }
        crate::net::ifreq::ioctl(task, cmd, arg)
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn readiness(&self) -> u32 {
        stack::peek(|st| st.icmp_readiness(self.id))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        // An echo request with id 1, seq 1 and no data: 0xf7fd.
        let msg = [8u8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(checksum(&msg), 0xf7fd);
        let p = ipv4_packet(
            Ipv4Address::new(127, 0, 0, 1),
            Ipv4Address::new(127, 0, 0, 1),
            64,
            0,
            &msg,
        );
        // A header with its checksum in place sums to zero.
        assert_eq!(checksum(&p[..20]), 0);
        assert_eq!(p.len(), 28);
    }
}
