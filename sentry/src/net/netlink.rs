//! `AF_NETLINK` sockets of the `NETLINK_ROUTE` protocol (`rtnetlink(7)`), answered by
//! the sentry from the sandbox's interfaces (`iface.rs`): the `RTM_GETLINK`,
//! `RTM_GETADDR` and `RTM_GETROUTE` dumps that `ip`, `getifaddrs`, `if_nameindex` and
//! glibc's `getaddrinfo` (`AI_ADDRCONFIG`) ask for, and `RTM_GETLINK` for one interface.
//! Requests that change the network are refused with `EPERM`; others with `EOPNOTSUPP`.
//! Multicast groups are accepted and never sent to: nothing changes to announce.
#![deny(unsafe_code)]

use super::iface::{self, IfAddr, Iface, Route};
use super::{wait_ready, CommonOpts, Received, SendRequest, Socket};
use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{FileDescription, Stat, StatusFlags, Timespec};
use crate::{errno, return_errno};
use smoltcp::wire::IpAddress;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub const NETLINK_ROUTE: i32 = 0;
const SOL_NETLINK: i32 = 270;
/// `sizeof(struct sockaddr_nl)`.
const SNL_LEN: usize = 12;
const NLMSG_HDRLEN: usize = 16;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_MIN_TYPE: u16 = 0x10;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
/// The last `RTM_*` type Linux knows; `RTM_GET*` are those with `type & 3 == 2`.
const RTM_MAX: u16 = 0x73;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_QDISC: u16 = 6;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_GROUP: u16 = 27;
const IFLA_CARRIER: u16 = 33;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_CACHEINFO: u16 = 6;
const IFA_FLAGS: u16 = 8;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_TABLE: u16 = 15;
const RTA_PREF: u16 = 20;

/// One message's header, as sent.
#[derive(Clone, Copy)]
struct Header {
    ty: u16,
    flags: u16,
    seq: u32,
}

/// Builds reply messages.
struct Writer {
    out: Vec<u8>,
    pid: u32,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Writer {
    /// Start a message; `finish` fills in its length.
    fn begin(&mut self, ty: u16, flags: u16, seq: u32) -> usize {
        let at = self.out.len();
        self.out.extend_from_slice(&0u32.to_ne_bytes());
        self.out.extend_from_slice(&ty.to_ne_bytes());
        self.out.extend_from_slice(&flags.to_ne_bytes());
        self.out.extend_from_slice(&seq.to_ne_bytes());
        self.out.extend_from_slice(&self.pid.to_ne_bytes());
        at
    }

    fn finish(&mut self, at: usize) {
        let len = (self.out.len() - at) as u32;
        if let Some(b) = self.out.get_mut(at..at + 4) {
            b.copy_from_slice(&len.to_ne_bytes());
        }
        self.out.resize(align4(self.out.len()), 0);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.out.extend_from_slice(&len.to_ne_bytes());
        self.out.extend_from_slice(&ty.to_ne_bytes());
        self.out.extend_from_slice(payload);
        self.out.resize(align4(self.out.len()), 0);
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v);
    }

    fn error(&mut self, h: &Header, raw: &[u8], errno: i32) {
        let at = self.begin(NLMSG_ERROR, 0, h.seq);
        self.bytes(&(-errno).to_ne_bytes());
        // The request's header goes back with the error (not its payload: NETLINK_CAP_ACK
        // style, which every reader accepts).
        let mut hdr = raw.get(..NLMSG_HDRLEN).unwrap_or(&[]).to_vec();
        hdr.resize(NLMSG_HDRLEN, 0);
        self.bytes(&hdr);
        self.finish(at);
    }

    fn done(&mut self, h: &Header) {
        let at = self.begin(NLMSG_DONE, NLM_F_MULTI, h.seq);
        self.bytes(&0i32.to_ne_bytes());
        self.finish(at);
    }

    fn link(&mut self, i: &Iface, flags: u16, seq: u32) {
        let at = self.begin(RTM_NEWLINK, flags, seq);
        // struct ifinfomsg
        self.bytes(&[libc::AF_UNSPEC as u8, 0]);
        self.bytes(&i.arphrd.to_ne_bytes());
        self.bytes(&(i.index as i32).to_ne_bytes());
        self.bytes(&i.flags.to_ne_bytes());
        self.bytes(&0u32.to_ne_bytes());
        self.attr_str(IFLA_IFNAME, i.name);
        self.attr(IFLA_TXQLEN, &i.txqlen.to_ne_bytes());
        self.attr(IFLA_OPERSTATE, &[i.operstate]);
        self.attr(IFLA_LINKMODE, &[0]);
        self.attr(IFLA_MTU, &i.mtu.to_ne_bytes());
        self.attr(IFLA_GROUP, &0u32.to_ne_bytes());
        self.attr_str(IFLA_QDISC, i.qdisc);
        self.attr(IFLA_CARRIER, &[1]);
        self.attr(IFLA_ADDRESS, &i.hwaddr);
        let brd = if i.arphrd == iface::ARPHRD_ETHER {
            [0xff; 6]
        } else {
            [0; 6]
        };
        self.attr(IFLA_BROADCAST, &brd);
        self.finish(at);
    }

    fn addr(&mut self, a: &IfAddr, seq: u32) {
        let at = self.begin(RTM_NEWADDR, NLM_F_MULTI, seq);
        let (family, bytes) = ip_bytes(&a.addr);
        // struct ifaddrmsg
        self.bytes(&[family, a.prefix, a.flags as u8, a.scope]);
        self.bytes(&a.index.to_ne_bytes());
        self.attr(IFA_ADDRESS, &bytes);
        if family == libc::AF_INET as u8 {
            self.attr(IFA_LOCAL, &bytes);
            self.attr_str(IFA_LABEL, a.label);
        }
        self.attr(IFA_FLAGS, &a.flags.to_ne_bytes());
        // struct ifa_cacheinfo: forever.
        let mut ci = Vec::new();
        for v in [u32::MAX, u32::MAX, 0, 0] {
            ci.extend_from_slice(&v.to_ne_bytes());
        }
        self.attr(IFA_CACHEINFO, &ci);
        self.finish(at);
    }

    fn route(&mut self, r: &Route, seq: u32) {
        let at = self.begin(RTM_NEWROUTE, NLM_F_MULTI, seq);
        let (family, dst) = ip_bytes(&r.dst);
        // struct rtmsg
        self.bytes(&[
            family, r.dst_len, 0, 0, r.table, r.protocol, r.scope, r.rtype,
        ]);
        self.bytes(&0u32.to_ne_bytes());
        self.attr(RTA_TABLE, &u32::from(r.table).to_ne_bytes());
        // A default route has no destination attribute (`ip route` prints "default").
        if r.dst_len > 0 {
            self.attr(RTA_DST, &dst);
        }
        if let Some(gw) = &r.gateway {
            self.attr(RTA_GATEWAY, &ip_bytes(gw).1);
        }
        if let Some(src) = &r.prefsrc {
            self.attr(RTA_PREFSRC, &ip_bytes(src).1);
        }
        if family == libc::AF_INET6 as u8 {
            self.attr(RTA_PRIORITY, &0u32.to_ne_bytes());
        }
        self.attr(RTA_OIF, &r.oif.to_ne_bytes());
        if family == libc::AF_INET6 as u8 {
            // ICMPV6_ROUTER_PREF_MEDIUM.
            self.attr(RTA_PREF, &[0]);
        }
        self.finish(at);
    }
}

fn ip_bytes(a: &IpAddress) -> (u8, Vec<u8>) {
    match a {
        IpAddress::Ipv4(v) => (libc::AF_INET as u8, v.octets().to_vec()),
        IpAddress::Ipv6(v) => (libc::AF_INET6 as u8, v.octets().to_vec()),
    }
}

fn family_matches(filter: u8, a: &IpAddress) -> bool {
    filter == libc::AF_UNSPEC as u8 || filter == ip_bytes(a).0
}

/// Answer the requests in `buf` (Linux's `netlink_rcv_skb` + `rtnetlink_rcv_msg`).
fn answer(buf: &[u8], pid: u32) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        pid,
    };
    let mut off = 0usize;
    while let Some(raw) = buf.get(off..off + NLMSG_HDRLEN) {
        let len = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            break;
        }
        let msg = buf.get(off..off + len).unwrap_or(&[]);
        let h = Header {
            ty: u16::from_ne_bytes([raw[4], raw[5]]),
            flags: u16::from_ne_bytes([raw[6], raw[7]]),
            seq: u32::from_ne_bytes([raw[8], raw[9], raw[10], raw[11]]),
        };
        off += align4(len);
        if h.flags & NLM_F_REQUEST == 0 {
            continue;
        }
        if h.ty < NLMSG_MIN_TYPE {
            if h.flags & NLM_F_ACK != 0 {
                w.error(&h, msg, 0);
            }
            continue;
        }
        let body = msg.get(NLMSG_HDRLEN..).unwrap_or(&[]);
        let family = body.first().copied().unwrap_or(0);
        let dump = h.flags & NLM_F_DUMP == NLM_F_DUMP;
        let r: std::result::Result<(), i32> = match h.ty {
            RTM_GETLINK if dump => {
                for i in iface::interfaces() {
                    w.link(&i, NLM_F_MULTI, h.seq);
                }
                w.done(&h);
                Ok(())
            }
            RTM_GETLINK => get_link(body).map(|i| w.link(&i, 0, h.seq)),
            RTM_GETADDR if dump => {
                for a in iface::addresses() {
                    if family_matches(family, &a.addr) {
                        w.addr(&a, h.seq);
                    }
                }
                w.done(&h);
                Ok(())
            }
            RTM_GETROUTE if dump => {
                for r in iface::routes() {
                    if family_matches(family, &r.dst) {
                        w.route(&r, h.seq);
                    }
                }
                w.done(&h);
                Ok(())
            }
            t if t > RTM_MAX => Err(libc::EOPNOTSUPP),
            t if t & 3 == 2 => Err(libc::EOPNOTSUPP),
            // New, delete and set requests: the sandbox may not change its network.
            _ => Err(libc::EPERM),
        };
        match r {
            Err(e) => w.error(&h, msg, e),
            Ok(()) if h.flags & NLM_F_ACK != 0 && !dump => w.error(&h, msg, 0),
            Ok(()) => {}
        }
    }
    w.out
}

/// `RTM_GETLINK` for one interface: by index, else by `IFLA_IFNAME`.
fn get_link(body: &[u8]) -> std::result::Result<Iface, i32> {
    let index = body
        .get(4..8)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0);
    if index > 0 {
        return iface::by_index(index as u32).ok_or(libc::ENODEV);
    }
    let mut off = 16usize;
    while let Some(a) = body.get(off..off + 4) {
        let len = usize::from(u16::from_ne_bytes([a[0], a[1]]));
        let ty = u16::from_ne_bytes([a[2], a[3]]);
        if len < 4 {
            break;
        }
        if ty == IFLA_IFNAME {
            let name = body.get(off + 4..off + len).unwrap_or(&[]);
            let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
            return iface::by_name(name).ok_or(libc::ENODEV);
        }
        off += align4(len);
    }
    Err(libc::EINVAL)
}

struct State {
    port: u32,
    recvq: VecDeque<Vec<u8>>,
    opts: CommonOpts,
    nlopts: HashMap<i32, i32>,
    shutdown: bool,
}

/// An open `NETLINK_ROUTE` socket.
pub struct NetlinkSocket {
    ty: i32,
    st: Mutex<State>,
    queue: Arc<WaitQueue>,
    flags: StatusFlags,
    ino: u64,
    uid: u32,
    gid: u32,
    created: Timespec,
    tgid: i32,
}

/// Port ids handed out to sockets that did not pick one; the first socket of a process
/// gets its pid, as in Linux, the others negative numbers.
static NEXT_PORT: AtomicU32 = AtomicU32::new(0x8000_0000);

impl NetlinkSocket {
    pub fn new(task: &Task, ty: i32, nonblock: bool) -> Arc<NetlinkSocket> {
        Arc::new(NetlinkSocket {
            ty,
            st: Mutex::new(State {
                port: 0,
                recvq: VecDeque::new(),
                opts: CommonOpts::default(),
                nlopts: HashMap::new(),
                shutdown: false,
            }),
            queue: Arc::new(WaitQueue::new()),
            flags: StatusFlags::new(
                libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 },
            ),
            ino: super::new_ino(),
            uid: task.creds.euid,
            gid: task.creds.egid,
            created: Timespec::now(),
            tgid: task.tgid,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn autobind(st: &mut State, tgid: i32) {
        if st.port == 0 {
            st.port = u32::try_from(tgid)
                .ok()
                .filter(|p| *p != 0 && !TAKEN.lock().is_ok_and(|t| t.contains(p)))
                .unwrap_or_else(|| NEXT_PORT.fetch_add(1, Ordering::Relaxed));
            if let Ok(mut t) = TAKEN.lock() {
                t.push(st.port);
            }
        }
    }

    fn encode(port: u32) -> Vec<u8> {
        let mut v = vec![0u8; SNL_LEN];
        v[..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
        v[4..8].copy_from_slice(&port.to_ne_bytes());
        v
    }

    fn send_now(&self, data: &[u8]) -> usize {
        let reply = {
            let mut st = self.lock();
            NetlinkSocket::autobind(&mut st, self.tgid);
            let r = answer(data, st.port);
            if !r.is_empty() {
                st.recvq.push_back(r);
            }
            true
        };
        if reply {
            self.queue.notify(events::IN | events::RDNORM);
        }
        data.len()
    }
}

/// Port ids in use.
static TAKEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

impl Drop for NetlinkSocket {
    fn drop(&mut self) {
        let port = self.lock().port;
        if let Ok(mut t) = TAKEN.lock() {
            t.retain(|p| *p != port);
        }
    }
}

impl Socket for NetlinkSocket {
    fn family(&self) -> i32 {
        libc::AF_NETLINK
    }

    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn protocol(&self) -> i32 {
        NETLINK_ROUTE
    }

    fn bind(&self, _task: &Task, addr: &[u8]) -> Result<()> {
        if addr.len() < SNL_LEN {
            return_errno!(EINVAL);
        }
        if u16::from_ne_bytes([addr[0], addr[1]]) != libc::AF_NETLINK as u16 {
            return_errno!(EINVAL);
        }
        let want = u32::from_ne_bytes([addr[4], addr[5], addr[6], addr[7]]);
        let mut st = self.lock();
        if st.port != 0 {
            // Bound already: only the same port (or none) again.
            if want != 0 && want != st.port {
                return_errno!(EINVAL);
            }
            return Ok(());
        }
        if want == 0 {
            NetlinkSocket::autobind(&mut st, self.tgid);
            return Ok(());
        }
        let mut taken = TAKEN.lock().map_err(|_| errno!(EIO))?;
        if taken.contains(&want) {
            return_errno!(EADDRINUSE);
        }
        taken.push(want);
        st.port = want;
        Ok(())
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

    fn connect(&self, _task: &Task, addr: &[u8], _nonblock: bool) -> Result<()> {
        if addr.len() < SNL_LEN {
            return_errno!(EINVAL);
        }
        let mut st = self.lock();
        NetlinkSocket::autobind(&mut st, self.tgid);
        Ok(())
    }

    fn sendmsg(&self, _task: &Task, req: SendRequest<'_>, _nonblock: bool) -> Result<usize> {
        if let Some(a) = req.addr {
            if a.len() < SNL_LEN {
                return_errno!(EINVAL);
            }
            // Only the kernel (port 0) answers.
            if a.get(4..8) != Some(&[0, 0, 0, 0]) {
                return_errno!(ECONNREFUSED);
            }
        }
        Ok(self.send_now(req.data))
    }

    fn recvmsg(&self, task: &Task, len: usize, flags: i32, nonblock: bool) -> Result<Received> {
        let peek = flags & libc::MSG_PEEK != 0;
        let timeout = self.lock().opts.rcvtimeo;
        let queues = [&*self.queue];
        wait_ready(task, &queues, events::IN, nonblock, timeout, || {
            let mut st = self.lock();
            let msg = if peek {
                st.recvq.front().cloned()
            } else {
                st.recvq.pop_front()
            };
            let Some(m) = msg else {
                return Ok(st.shutdown.then(Received::default));
            };
            let full_len = m.len();
            let mut data = m;
            data.truncate(len);
            Ok(Some(Received {
                data,
                full_len,
                truncated: full_len > len,
                addr: Some(NetlinkSocket::encode(0)),
                ..Received::default()
            }))
        })
    }

    fn shutdown(&self, _how: i32) -> Result<()> {
        Err(errno!(EOPNOTSUPP))
    }

    fn sockname(&self) -> Result<Vec<u8>> {
        Ok(NetlinkSocket::encode(self.lock().port))
    }

    fn peername(&self) -> Result<Vec<u8>> {
        Ok(NetlinkSocket::encode(0))
    }

    fn getsockopt(&self, _task: &Task, level: i32, name: i32, _len: usize) -> Result<Vec<u8>> {
        let st = self.lock();
        let int = |v: i32| v.to_ne_bytes().to_vec();
        match level {
            libc::SOL_SOCKET => {
                if let Some(v) = st.opts.get(name) {
                    return Ok(v);
                }
                Ok(match name {
                    libc::SO_TYPE => int(self.ty),
                    libc::SO_DOMAIN => int(libc::AF_NETLINK),
                    libc::SO_PROTOCOL => int(NETLINK_ROUTE),
                    libc::SO_ERROR => int(0),
                    _ => return_errno!(ENOPROTOOPT),
                })
            }
            SOL_NETLINK => Ok(int(st.nlopts.get(&name).copied().unwrap_or(0))),
            _ => Err(errno!(ENOPROTOOPT)),
        }
    }

    fn setsockopt(&self, _task: &Task, level: i32, name: i32, val: &[u8]) -> Result<()> {
        let mut st = self.lock();
        match level {
            libc::SOL_SOCKET => {
                if st.opts.set(name, val)? {
                    return Ok(());
                }
                Err(errno!(ENOPROTOOPT))
            }
            SOL_NETLINK => {
                // Group membership and the reporting options (ACKs, extended ACKs,
                // strict checking) are kept; no notification is ever sent.
                let v = super::opt_int(val)?;
                st.nlopts.insert(name, v);
                Ok(())
            }
            _ => Err(errno!(ENOPROTOOPT)),
        }
    }
}

impl FileDescription for NetlinkSocket {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        let m = self.lock().recvq.pop_front().ok_or(errno!(EAGAIN))?;
        let n = m.len().min(buf.len());
        buf.get_mut(..n)
            .ok_or(errno!(EIO))?
            .copy_from_slice(m.get(..n).ok_or(errno!(EIO))?);
        Ok(n)
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        if offset.is_some() {
            return_errno!(ESPIPE);
        }
        Ok(self.send_now(buf))
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
            let n = self.lock().recvq.front().map_or(0, |m| m.len());
            task.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
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
        let mut r = events::OUT | events::WRNORM;
        if !self.lock().recvq.is_empty() {
            r |= events::IN | events::RDNORM;
        }
        r
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

    fn request(ty: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&7u32.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(body);
        v
    }

    /// (type, flags, seq, pid) of each message in `buf`.
    fn messages(buf: &[u8]) -> Vec<(u16, u16, u32, u32)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off + 16 <= buf.len() {
            let b = &buf[off..];
            let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
            out.push((
                u16::from_ne_bytes(b[4..6].try_into().unwrap()),
                u16::from_ne_bytes(b[6..8].try_into().unwrap()),
                u32::from_ne_bytes(b[8..12].try_into().unwrap()),
                u32::from_ne_bytes(b[12..16].try_into().unwrap()),
            ));
            off += align4(len.max(16));
        }
        out
    }

    #[test]
    fn link_dump_ends_with_done() {
        let r = answer(
            &request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[0; 16]),
            42,
        );
        let m = messages(&r);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0], (RTM_NEWLINK, NLM_F_MULTI, 7, 42));
        assert_eq!(m[1].0, NLMSG_DONE);
    }

    #[test]
    fn address_dump_filters_by_family() {
        let mut body = [0u8; 8];
        body[0] = libc::AF_INET6 as u8;
        let r = answer(&request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &body), 1);
        let m = messages(&r);
        assert_eq!(m.len(), 2);
        assert_eq!(r[16], libc::AF_INET6 as u8);
    }

    #[test]
    fn changes_are_refused_and_garbage_ignored() {
        let r = answer(
            &request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, &[0; 16]),
            1,
        );
        let m = messages(&r);
        assert_eq!(m[0].0, NLMSG_ERROR);
        assert_eq!(
            i32::from_ne_bytes(r[16..20].try_into().unwrap()),
            -libc::EPERM
        );
        assert!(answer(&[0xff; 7], 1).is_empty());
        let mut short = request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &[0; 16]);
        short[0] = 200;
        assert!(answer(&short, 1).is_empty());
    }
}
