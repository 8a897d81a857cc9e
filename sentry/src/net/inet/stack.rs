//! The sandbox's TCP/IP stack: one smoltcp [`Interface`] on a loopback device (`lo`:
//! 127.0.0.1/8 and ::1/128) and every inet socket of the sandbox, behind one lock.
//!
//! smoltcp is a stack for one program with a fixed set of sockets; Linux's socket layer
//! is built around it here:
//! - **Entries.** Each open socket is an [`Entry`] (keyed by id): its options, its bound
//!   address, its pending error, and the smoltcp socket(s) it uses. Ports are handed out
//!   and checked for `EADDRINUSE` here; smoltcp never sees an unbound socket.
//! - **Listen backlogs.** smoltcp's listening socket becomes the connection. So a listener
//!   has no smoltcp socket: before a SYN reaches smoltcp, [`Stack::admit`] finds the
//!   listener it is for and makes a fresh smoltcp socket listening on exactly that
//!   address, or drops the SYN when the accept queue is full (Linux drops it too; the
//!   client's SYN is retransmitted later). Connections are queued for `accept` once
//!   established.
//! - **Pumping.** Every operation runs the stack until it is quiet ([`Stack::pump`]): on
//!   loopback a connect, a send or a window update is carried to the other socket before
//!   the call returns. The sockets whose readiness changed are woken afterwards, with the
//!   lock released. What needs time (retransmissions, keep-alive, the end of a closed
//!   connection) is driven by one timer thread that sleeps until smoltcp's next deadline.
//! - **Closing.** A closed connection is handed to smoltcp to finish (FIN, or RST when data
//!   was left unread or `SO_LINGER` is zero), and removed once done or after
//!   `FIN_TIMEOUT`. Linux's `TIME_WAIT` is not kept: nothing on loopback needs it.
#![deny(unsafe_code)]

use super::addr::{self, Claim, Parsed};
use super::device::Loopback;
use crate::error::Result;
use crate::kernel::wait::{events, WaitQueue};
use crate::net::{CommonOpts, Received, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK, SOMAXCONN};
use crate::{errno, return_errno, Errno};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, IpProtocol, Ipv4Packet,
    Ipv6Packet, TcpPacket, UdpPacket,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// `/proc/sys/net/ipv4/ip_local_port_range`.
const EPHEMERAL: std::ops::RangeInclusive<u16> = 32768..=60999;
/// How long a closed connection may wait for its peer (`tcp_fin_timeout`).
const FIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Linux's `tcp_keepalive_time`, `_intvl` and `_probes`.
const KEEPIDLE: u32 = 7200;
const KEEPINTVL: u32 = 75;
const KEEPCNT: u32 = 9;
/// The largest UDP payload over IPv4 and IPv6.
const UDP_MAX_V4: usize = 65507;
const UDP_MAX_V6: usize = 65527;
/// Datagrams a UDP socket queues each way.
const UDP_PACKETS: usize = 256;
/// smoltcp's socket buffers are fixed at creation; these bound what the options ask for.
/// Linux grows a connection's buffers as it goes (autotuning); a generous fixed floor
/// stands in for that (256 KiB: loopback throughput doubled over 64 KiB).
const TCP_BUF_MIN: usize = 256 * 1024;
const TCP_BUF_MAX: usize = 4 * 1024 * 1024;
/// How many times one pump asks smoltcp for more to send on the link.
const EGRESS_ROUNDS: usize = 256;
/// TCP's default `SO_SNDBUF` and `SO_RCVBUF` (`tcp_wmem[1]`, `tcp_rmem[1]`).
pub const TCP_SNDBUF: usize = 16384;
pub const TCP_RCVBUF: usize = 131_072;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Options of the TCP and IP levels.
#[derive(Clone, Copy, Debug)]
pub struct ProtoOpts {
    pub nodelay: bool,
    pub cork: bool,
    pub keepidle: u32,
    pub keepintvl: u32,
    pub keepcnt: u32,
    pub user_timeout: u32,
    pub maxseg: u32,
    pub ttl: u8,
    pub tos: u8,
    pub quickack: bool,
    pub defer_accept: u32,
}

impl Default for ProtoOpts {
    fn default() -> ProtoOpts {
        ProtoOpts {
            nodelay: false,
            cork: false,
            keepidle: KEEPIDLE,
            keepintvl: KEEPINTVL,
            keepcnt: KEEPCNT,
            user_timeout: 0,
            maxseg: 0,
            ttl: 64,
            tos: 0,
            quickack: true,
            defer_accept: 0,
        }
    }
}

/// Where a TCP socket is.
pub enum TcpConn {
    /// No connection: new, or shut down before connecting.
    Idle,
    /// Connecting, connected or closed; `reported` once connect has said so.
    Conn {
        handle: SocketHandle,
        reported: bool,
    },
    Listen {
        backlog: usize,
        /// Handshakes under way.
        pending: Vec<SocketHandle>,
        /// Established, for `accept`.
        ready: VecDeque<SocketHandle>,
    },
}

/// One open inet socket.
pub struct Entry {
    pub family: i32,
    pub proto: Proto,
    pub queue: Arc<WaitQueue>,
    pub opts: CommonOpts,
    pub popts: ProtoOpts,
    pub v6only: bool,
    /// The bound address (`None`: the wildcard) and port.
    pub local: Option<(Option<IpAddress>, u16)>,
    pub uid: u32,
    pub shutdown: u8,
    /// The pending error (`SO_ERROR`).
    pub err: Option<Errno>,
    pub tcp: TcpConn,
    /// The smoltcp state seen last, to tell a reset from an orderly end.
    last: tcp::State,
    /// The application reset the connection itself.
    aborted: bool,
    pub udp: Option<SocketHandle>,
    /// A UDP socket's default destination.
    pub peer: Option<IpEndpoint>,
    /// What waiters last saw: readiness, queued bytes each way.
    sig: (u32, usize, usize),
    /// The socket's inode number (`/proc/net/tcp`, the fd's `socket:[N]`).
    pub ino: u64,
}

impl Entry {
    fn claim(&self) -> Claim {
        Claim {
            family: self.family,
            v6only: self.v6only,
            addr: self.local.and_then(|l| l.0),
        }
    }

    fn conn_handle(&self) -> Option<SocketHandle> {
        match self.tcp {
            TcpConn::Conn { handle, .. } => Some(handle),
            _ => None,
        }
    }

    fn is_listening(&self) -> bool {
        matches!(self.tcp, TcpConn::Listen { .. })
    }
}

/// An accepted connection: its id, its wait queue and the peer's address.
pub type Accepted = (u64, Arc<WaitQueue>, Vec<u8>);

pub struct Stack {
    iface: Interface,
    dev: Loopback,
    sockets: SocketSet<'static>,
    entries: HashMap<u64, Entry>,
    /// ICMP sockets (`icmp.rs`).
    pub(super) icmp: HashMap<u64, super::icmp::IcmpEntry>,
    /// ICMP sockets that got a packet during this pump.
    icmp_woken: Vec<Arc<WaitQueue>>,
    /// Connections whose file is closed, with when to give up on them.
    dying: Vec<(SocketHandle, Instant)>,
    next_id: u64,
    next_port: u16,
    epoch: Instant,
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

impl Stack {
    fn new() -> Stack {
        let mut dev = Loopback {
            link: super::packet::Wire::attached(),
            ..Loopback::default()
        };
        let mut cfg = Config::new(HardwareAddress::Ip);
        cfg.random_seed = random_u64();
        let epoch = Instant::now();
        let mut iface = Interface::new(cfg, &mut dev, smoltcp::time::Instant::from_micros(0));
        iface.update_ip_addrs(|a| {
            // 127.0.0.1 first: smoltcp's own choice of a source address is the first IPv4
            // one; for the link's destinations `source_for` chooses.
            let _ = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
            let _ = a.push(IpCidr::new(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1), 128));
            for c in dev.link.iter().flat_map(|w| w.addrs()) {
                if a.push(c).is_err() {
                    tracing::warn!("netstack: too many addresses; {c} left out");
                }
            }
        });
        // smoltcp sends only where it has a route; the device picks the next hop itself.
        for (dst, gw) in dev.link.iter().flat_map(|w| w.routes()) {
            let route = smoltcp::iface::Route {
                cidr: dst,
                via_router: gw,
                preferred_until: None,
                expires_at: None,
            };
            iface.routes_mut().update(|r| {
                if r.push(route).is_err() {
                    tracing::warn!("netstack: too many routes; {dst} left out");
                }
            });
        }
        let span = u64::from(EPHEMERAL.end() - EPHEMERAL.start());
        Stack {
            iface,
            dev,
            sockets: SocketSet::new(Vec::new()),
            entries: HashMap::new(),
            icmp: HashMap::new(),
            icmp_woken: Vec::new(),
            dying: Vec::new(),
            next_id: 1,
            next_port: EPHEMERAL.start() + (random_u64() % span) as u16,
            epoch,
        }
    }

    fn now(&self) -> smoltcp::time::Instant {
        let us = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_micros();
        smoltcp::time::Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
    }

    pub fn entry(&mut self, id: u64) -> Result<&mut Entry> {
        self.entries.get_mut(&id).ok_or(errno!(EBADF))
    }

    /// The inode number the socket was given.
    pub fn ino_of(&self, id: u64) -> Option<u64> {
        self.entries.get(&id).map(|e| e.ino)
    }

    /// The TCP and UDP sockets as `/proc/net/{tcp,udp}{,6}` list them.
    pub fn rows(&self) -> Vec<SockRow> {
        let mut v: Vec<SockRow> = self
            .entries
            .values()
            .map(|e| {
                let mut row = SockRow {
                    family: e.family,
                    tcp: e.proto == Proto::Tcp,
                    local: e.local.unwrap_or((None, 0)),
                    remote: None,
                    state: 7,
                    txq: 0,
                    rxq: 0,
                    uid: e.uid,
                    ino: e.ino,
                };
                match &e.tcp {
                    TcpConn::Listen { ready, .. } => {
                        row.state = 10;
                        row.rxq = ready.len();
                    }
                    TcpConn::Conn { handle, .. } => {
                        let s = self.tcp(*handle);
                        row.state = linux_tcp_state(s.state());
                        row.remote = s.remote_endpoint();
                        if let Some(l) = s.local_endpoint() {
                            row.local = (Some(l.addr), l.port);
                        }
                        row.txq = s.send_queue();
                        row.rxq = s.recv_queue();
                    }
                    TcpConn::Idle => {}
                }
                if let Some(h) = e.udp {
                    let s = self.sockets.get::<udp::Socket>(h);
                    row.txq = s.send_queue();
                    row.rxq = s.recv_queue();
                    if e.peer.is_some() {
                        row.state = 1;
                        row.remote = e.peer;
                    }
                }
                row
            })
            .collect();
        v.sort_by_key(|r| r.ino);
        v
    }

    /// Packets and bytes looped back, and the link's counters.
    pub fn dev_counts(&self) -> ((u64, u64), Option<super::packet::LinkCounts>) {
        (self.dev.lo_count, self.dev.link.as_ref().map(|w| w.counts))
    }

    pub fn opts_of(&self, id: u64) -> Option<&CommonOpts> {
        self.entries.get(&id).map(|e| &e.opts)
    }

    fn tcp(&self, h: SocketHandle) -> &tcp::Socket<'static> {
        self.sockets.get::<tcp::Socket>(h)
    }

    fn tcp_mut(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket>(h)
    }

    // ---- creation and ports ----

    /// A fresh socket id.
    pub(super) fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn create(&mut self, family: i32, proto: Proto, uid: u32) -> (u64, Arc<WaitQueue>) {
        let id = self.new_id();
        let queue = Arc::new(WaitQueue::new());
        let mut opts = CommonOpts::default();
        if proto == Proto::Tcp {
            opts.sndbuf = TCP_SNDBUF;
            opts.rcvbuf = TCP_RCVBUF;
        }
        self.entries.insert(
            id,
            Entry {
                family,
                proto,
                queue: queue.clone(),
                opts,
                popts: ProtoOpts::default(),
                v6only: false,
                local: None,
                uid,
                shutdown: 0,
                err: None,
                tcp: TcpConn::Idle,
                last: tcp::State::Closed,
                aborted: false,
                udp: None,
                peer: None,
                sig: (0, 0, 0),
                ino: crate::net::new_ino(),
            },
        );
        (id, queue)
    }

    /// Whether `port` is free for `me` (Linux's `inet_csk_bind_conflict`): a bound socket
    /// on an overlapping address conflicts unless both set `SO_REUSEADDR` and it does not
    /// listen (any state for UDP), or both set `SO_REUSEPORT` and belong to one user.
    fn port_free(&self, me: u64, port: u16, claim: &Claim) -> bool {
        let Some(e) = self.entries.get(&me) else {
            return false;
        };
        self.entries.iter().all(|(id, o)| {
            *id == me
                || o.proto != e.proto
                || o.local.map(|l| l.1) != Some(port)
                || !addr::overlaps(claim, &o.claim())
                || (e.opts.reuseport && o.opts.reuseport && e.uid == o.uid)
                || (e.opts.reuseaddr
                    && o.opts.reuseaddr
                    && (e.proto == Proto::Udp || !o.is_listening()))
        })
    }

    fn ephemeral(&mut self, me: u64, claim: &Claim) -> Result<u16> {
        let span = EPHEMERAL.end() - EPHEMERAL.start() + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                p + 1
            };
            let busy = self.sockets.iter().any(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => t.local_endpoint().is_some_and(|l| l.port == p),
                _ => false,
            });
            if !busy && self.port_free(me, p, claim) {
                return Ok(p);
            }
        }
        Err(errno!(EADDRINUSE))
    }

    /// An address the sandbox owns (bind's `EADDRNOTAVAIL` otherwise).
    fn is_local(&self, a: IpAddress) -> bool {
        self.iface.has_ip_addr(a)
    }

    /// The source address for packets to `remote` that leave through the link (`None`:
    /// smoltcp's choice, right for loopback).
    fn source_for(&self, remote: IpAddress) -> Option<IpAddress> {
        let w = self.dev.link.as_ref()?;
        if self.is_local(remote) && !w.reaches(remote) {
            // Loopback, or one of the link's own addresses: talk to it from itself.
            let lo = match remote {
                IpAddress::Ipv4(v4) => v4.is_loopback(),
                IpAddress::Ipv6(v6) => v6.is_loopback(),
            };
            return (!lo).then_some(remote);
        }
        w.source_for(remote)
    }

    /// An address of the sandbox.
    pub(super) fn owns(&self, a: IpAddress) -> bool {
        self.is_local(a)
    }

    /// Whether the link reaches `a`.
    pub(super) fn reaches(&self, a: IpAddress) -> bool {
        self.dev.link.as_ref().is_some_and(|w| w.reaches(a))
    }

    /// The source address for a packet to `dst` (`None`: loopback's).
    pub(super) fn source_address(&self, dst: IpAddress) -> Option<IpAddress> {
        self.source_for(dst)
    }

    /// Put a finished IP packet on the device, as smoltcp would.
    pub(super) fn transmit_ip(&mut self, packet: Vec<u8>) {
        match self.dev.link.as_mut() {
            Some(w) if !w.stays_local(&packet) => w.send(packet),
            _ => self.dev.queue.push_back(packet),
        }
    }

    /// Frames waiting on the link join the receive queue (the link's thread calls this
    /// through [`with`], which then runs the stack on them).
    pub fn receive_link(&mut self) {
        if let Some(w) = self.dev.link.as_mut() {
            w.receive(&mut self.dev.queue);
        }
    }

    pub fn bind(&mut self, id: u64, p: Parsed, privileged: bool) -> Result<()> {
        let e = self.entry(id)?;
        let (addr, port) = match p {
            Parsed::Addr { addr, port } => (addr, port),
            // Linux takes AF_UNSPEC as AF_INET for the wildcard only.
            Parsed::Unspec if e.family == libc::AF_INET => (None, 0),
            Parsed::Unspec => return_errno!(EAFNOSUPPORT),
        };
        if e.local.is_some() || e.conn_handle().is_some() {
            return_errno!(EINVAL);
        }
        if let Some(a) = addr {
            if e.family == libc::AF_INET6 && e.v6only && matches!(a, IpAddress::Ipv4(_)) {
                return_errno!(EINVAL);
            }
            if !self.is_local(a) {
                return_errno!(EADDRNOTAVAIL);
            }
        }
        if port != 0
            && u32::from(port) < crate::fs::proc::sysctl::unprivileged_port_start()
            && !privileged
        {
            return_errno!(EACCES);
        }
        self.bind_to(id, addr, port)
    }

    /// Take `port` (0: an ephemeral one) on `addr` for `id`.
    fn bind_to(&mut self, id: u64, addr: Option<IpAddress>, port: u16) -> Result<()> {
        let e = self.entry(id)?;
        let claim = Claim { addr, ..e.claim() };
        let port = if port == 0 {
            self.ephemeral(id, &claim)?
        } else if self.port_free(id, port, &claim) {
            port
        } else {
            return_errno!(EADDRINUSE);
        };
        let e = self.entry(id)?;
        e.local = Some((addr, port));
        if e.proto == Proto::Udp {
            self.open_udp(id)?;
        }
        Ok(())
    }

    fn autobind(&mut self, id: u64) -> Result<()> {
        if self.entry(id)?.local.is_none() {
            self.bind_to(id, None, 0)?;
        }
        Ok(())
    }

    // ---- TCP ----

    fn new_tcp(e: &Entry) -> tcp::Socket<'static> {
        let rx = e.opts.rcvbuf.clamp(TCP_BUF_MIN, TCP_BUF_MAX);
        let tx = e.opts.sndbuf.clamp(TCP_BUF_MIN, TCP_BUF_MAX);
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; rx]),
            tcp::SocketBuffer::new(vec![0u8; tx]),
        );
        // Loopback acknowledges at once: a delayed ACK only adds latency here.
        s.set_ack_delay(None);
        apply_tcp_opts(&mut s, &e.opts, &e.popts);
        s
    }

    /// Options changed: pass them on to the connection.
    pub fn options_changed(&mut self, id: u64) -> Result<()> {
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        if let Some(h) = e.conn_handle() {
            apply_tcp_opts(self.sockets.get_mut::<tcp::Socket>(h), &e.opts, &e.popts);
        }
        Ok(())
    }

    pub fn listen(&mut self, id: u64, backlog: i32) -> Result<()> {
        let backlog = usize::try_from(backlog).unwrap_or(0).min(SOMAXCONN);
        let e = self.entry(id)?;
        if e.proto != Proto::Tcp {
            return_errno!(EOPNOTSUPP);
        }
        match &mut e.tcp {
            TcpConn::Listen { backlog: b, .. } => {
                *b = backlog;
                return Ok(());
            }
            TcpConn::Conn { .. } => return_errno!(EINVAL),
            TcpConn::Idle => {}
        }
        if e.shutdown != 0 {
            return_errno!(EINVAL);
        }
        self.autobind(id)?;
        let e = self.entry(id)?;
        let (_, port) = e.local.ok_or(errno!(EINVAL))?;
        let claim = e.claim();
        // Only one of the sockets sharing a port may listen, unless all use SO_REUSEPORT.
        let (reuseport, uid) = (e.opts.reuseport, e.uid);
        let clash = self.entries.iter().any(|(o_id, o)| {
            *o_id != id
                && o.proto == Proto::Tcp
                && o.is_listening()
                && o.local.map(|l| l.1) == Some(port)
                && addr::overlaps(&claim, &o.claim())
                && !(reuseport && o.opts.reuseport && uid == o.uid)
        });
        if clash {
            return_errno!(EADDRINUSE);
        }
        self.entry(id)?.tcp = TcpConn::Listen {
            backlog,
            pending: Vec::new(),
            ready: VecDeque::new(),
        };
        Ok(())
    }

    /// One attempt at `accept`.
    pub fn accept(&mut self, id: u64, uid: u32) -> Result<Option<Accepted>> {
        let e = self.entry(id)?;
        let TcpConn::Listen { ready, .. } = &mut e.tcp else {
            return_errno!(EINVAL);
        };
        let Some(h) = ready.pop_front() else {
            return Ok(None);
        };
        let (family, opts, popts, v6only, local) =
            (e.family, e.opts.clone(), e.popts, e.v6only, e.local);
        let (nid, queue) = self.create(family, Proto::Tcp, uid);
        let s = self.tcp(h);
        let state = s.state();
        let remote = s.remote_endpoint();
        let n = self.entry(nid)?;
        n.opts = opts;
        n.popts = popts;
        n.v6only = v6only;
        n.local = local;
        n.tcp = TcpConn::Conn {
            handle: h,
            reported: true,
        };
        n.last = state;
        if state == tcp::State::Closed {
            n.err = Some(Errno::ECONNRESET);
        }
        let peer = remote.map_or_else(
            || addr::encode(family, None, 0),
            |r| addr::encode(family, Some(r.addr), r.port),
        );
        Ok(Some((nid, queue, peer)))
    }

    /// Where a destination goes: only the sandbox's own addresses are reachable, and the
    /// wildcard means this host, as in Linux.
    fn route(&self, e: &Entry, a: Option<IpAddress>) -> Result<IpAddress> {
        let a = match a {
            None if e.family == libc::AF_INET => IpAddress::v4(127, 0, 0, 1),
            None => IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1),
            Some(a) => a,
        };
        if e.family == libc::AF_INET6 && e.v6only && matches!(a, IpAddress::Ipv4(_)) {
            return_errno!(ENETUNREACH);
        }
        let outside = self.dev.link.as_ref().is_some_and(|w| w.reaches(a));
        if !self.is_local(a) && !outside {
            return_errno!(ENETUNREACH);
        }
        Ok(a)
    }

    /// Start a TCP connect: `Ok(true)` if a handshake began, `Ok(false)` if a
    /// nonblocking connect's earlier handshake is now reported done (or `AF_UNSPEC`).
    pub fn tcp_connect(&mut self, id: u64, p: Parsed) -> Result<bool> {
        let e = self.entry(id)?;
        let (addr, port) = match p {
            Parsed::Addr { addr, port } => (addr, port),
            Parsed::Unspec => {
                // Linux disconnects a socket that is not yet connected.
                return Ok(false);
            }
        };
        match &e.tcp {
            TcpConn::Listen { .. } => return_errno!(EISCONN),
            TcpConn::Conn { handle, reported } => {
                let (h, reported) = (*handle, *reported);
                match self.tcp(h).state() {
                    tcp::State::SynSent | tcp::State::SynReceived => return_errno!(EALREADY),
                    tcp::State::Closed => {
                        if let Some(err) = self.entry(id)?.err.take() {
                            return Err(crate::Error::new(err));
                        }
                        self.sockets.remove(h);
                        self.entry(id)?.tcp = TcpConn::Idle;
                    }
                    _ if !reported => {
                        if let TcpConn::Conn { reported, .. } = &mut self.entry(id)?.tcp {
                            *reported = true;
                        }
                        return Ok(false);
                    }
                    _ => return_errno!(EISCONN),
                }
            }
            TcpConn::Idle => {}
        }
        let e = self.entry(id)?;
        if e.shutdown != 0 {
            // Linux lets a shut-down socket connect again only through a fresh state.
            e.shutdown = 0;
        }
        if port == 0 {
            return_errno!(ECONNREFUSED);
        }
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        let remote = self.route(e, addr)?;
        self.autobind(id)?;
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        let (laddr, lport) = e.local.ok_or(errno!(EINVAL))?;
        if let Some(l) = laddr {
            if std::mem::discriminant(&l) != std::mem::discriminant(&remote) {
                return_errno!(ENETUNREACH);
            }
        }
        let mut s = Stack::new_tcp(e);
        let local = IpListenEndpoint {
            addr: laddr.or_else(|| self.source_for(remote)),
            port: lport,
        };
        s.connect(self.iface.context(), IpEndpoint::new(remote, port), local)
            .map_err(|_| errno!(EADDRNOTAVAIL))?;
        let h = self.sockets.add(s);
        let e = self.entry(id)?;
        e.tcp = TcpConn::Conn {
            handle: h,
            reported: false,
        };
        e.last = tcp::State::SynSent;
        e.aborted = false;
        e.err = None;
        Ok(true)
    }

    /// Whether a connect has finished: `Ok(Some)` connected, an error if it failed.
    pub fn connect_done(&mut self, id: u64) -> Result<Option<()>> {
        let e = self.entry(id)?;
        let Some(h) = e.conn_handle() else {
            return Err(e.err.take().map_or(errno!(ECONNREFUSED), crate::Error::new));
        };
        match self.tcp(h).state() {
            tcp::State::SynSent | tcp::State::SynReceived => Ok(None),
            tcp::State::Closed => {
                let e = self.entry(id)?;
                Err(e.err.take().map_or(errno!(ECONNREFUSED), crate::Error::new))
            }
            _ => {
                if let TcpConn::Conn { reported, .. } = &mut self.entry(id)?.tcp {
                    *reported = true;
                }
                Ok(Some(()))
            }
        }
    }

    /// One attempt at a TCP send: `None` when there is no room.
    pub fn tcp_send(&mut self, id: u64, data: &[u8]) -> Result<Option<usize>> {
        let e = self.entry(id)?;
        if let Some(err) = e.err.take() {
            return Err(crate::Error::new(err));
        }
        if e.shutdown & SEND_SHUTDOWN != 0 {
            return_errno!(EPIPE);
        }
        let Some(h) = e.conn_handle() else {
            return_errno!(EPIPE);
        };
        let s = self.tcp_mut(h);
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => return Ok(None),
            _ if !s.may_send() => return_errno!(EPIPE),
            _ => {}
        }
        if data.is_empty() {
            return Ok(Some(0));
        }
        match s.send_slice(data) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(errno!(EPIPE)),
        }
    }

    /// One attempt at a TCP receive: `None` when nothing is there yet; empty at EOF.
    pub fn tcp_recv(&mut self, id: u64, len: usize, peek: bool) -> Result<Option<Vec<u8>>> {
        let e = self.entry(id)?;
        let rcv_shut = e.shutdown & RCV_SHUTDOWN != 0;
        let h = match &e.tcp {
            TcpConn::Conn { handle, .. } => *handle,
            _ => {
                if let Some(err) = e.err.take() {
                    return Err(crate::Error::new(err));
                }
                return_errno!(ENOTCONN);
            }
        };
        let s = self.tcp_mut(h);
        let queued = s.recv_queue();
        if queued > 0 && len > 0 {
            let mut buf = vec![0u8; len.min(queued)];
            let n = if peek {
                s.peek_slice(&mut buf).unwrap_or(0)
            } else {
                s.recv_slice(&mut buf).unwrap_or(0)
            };
            buf.truncate(n);
            return Ok(Some(buf));
        }
        let state = s.state();
        let e = self.entry(id)?;
        if let Some(err) = e.err.take() {
            return Err(crate::Error::new(err));
        }
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        match state {
            tcp::State::SynSent | tcp::State::SynReceived => Ok(None),
            tcp::State::Established | tcp::State::FinWait1 | tcp::State::FinWait2 if !rcv_shut => {
                Ok(None)
            }
            _ => Ok(Some(Vec::new())),
        }
    }

    // ---- UDP ----

    fn open_udp(&mut self, id: u64) -> Result<()> {
        let e = self.entry(id)?;
        if e.udp.is_some() {
            return Ok(());
        }
        let (addr, port) = e.local.ok_or(errno!(EINVAL))?;
        let rx = e.opts.rcvbuf.max(2 * UDP_MAX_V6);
        let tx = 2 * UDP_MAX_V6;
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; rx]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0u8; tx]),
        );
        s.bind(IpListenEndpoint { addr, port })
            .map_err(|_| errno!(EINVAL))?;
        let h = self.sockets.add(s);
        self.entry(id)?.udp = Some(h);
        Ok(())
    }

    pub fn udp_connect(&mut self, id: u64, p: Parsed) -> Result<()> {
        let (addr, port) = match p {
            Parsed::Unspec => {
                self.entry(id)?.peer = None;
                return Ok(());
            }
            Parsed::Addr { addr, port } => (addr, port),
        };
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        let remote = self.route(e, addr)?;
        self.autobind(id)?;
        self.entry(id)?.peer = Some(IpEndpoint::new(remote, port));
        Ok(())
    }

    pub fn udp_send(&mut self, id: u64, data: &[u8], to: Option<Parsed>) -> Result<Option<usize>> {
        let e = self.entry(id)?;
        if let Some(err) = e.err.take() {
            return Err(crate::Error::new(err));
        }
        if e.shutdown & SEND_SHUTDOWN != 0 {
            return_errno!(EPIPE);
        }
        let dest = match to {
            Some(Parsed::Addr { addr, port }) => {
                let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
                IpEndpoint::new(self.route(e, addr)?, port)
            }
            Some(Parsed::Unspec) => return_errno!(EAFNOSUPPORT),
            None => e.peer.ok_or(errno!(EDESTADDRREQ))?,
        };
        if dest.port == 0 {
            return_errno!(EINVAL);
        }
        let max = if matches!(dest.addr, IpAddress::Ipv4(_)) {
            UDP_MAX_V4
        } else {
            UDP_MAX_V6
        };
        if data.len() > max {
            return_errno!(EMSGSIZE);
        }
        self.autobind(id)?;
        let e = self.entry(id)?;
        let h = e.udp.ok_or(errno!(EINVAL))?;
        let local = e.local.and_then(|l| l.0);
        if let Some(l) = local {
            if std::mem::discriminant(&l) != std::mem::discriminant(&dest.addr) {
                return_errno!(ENETUNREACH);
            }
        }
        let meta = udp::UdpMetadata {
            endpoint: dest,
            local_address: local.or_else(|| self.source_for(dest.addr)),
            meta: Default::default(),
        };
        match self
            .sockets
            .get_mut::<udp::Socket>(h)
            .send_slice(data, meta)
        {
            Ok(()) => Ok(Some(data.len())),
            Err(udp::SendError::BufferFull) => Ok(None),
            Err(udp::SendError::Unaddressable) => Err(errno!(EINVAL)),
        }
    }

    pub fn udp_recv(&mut self, id: u64, len: usize, peek: bool) -> Result<Option<Received>> {
        let e = self.entry(id)?;
        if let Some(err) = e.err.take() {
            return Err(crate::Error::new(err));
        }
        let (family, shut) = (e.family, e.shutdown & RCV_SHUTDOWN != 0);
        let Some(h) = e.udp else {
            return if shut {
                Ok(Some(Received::default()))
            } else {
                Ok(None)
            };
        };
        let s = self.sockets.get_mut::<udp::Socket>(h);
        let got = if peek {
            s.peek().ok().map(|(d, m)| (d.to_vec(), m.endpoint))
        } else {
            s.recv().ok().map(|(d, m)| (d.to_vec(), m.endpoint))
        };
        let Some((data, from)) = got else {
            return if shut {
                Ok(Some(Received::default()))
            } else {
                Ok(None)
            };
        };
        let full_len = data.len();
        let mut out = Received {
            full_len,
            truncated: full_len > len,
            addr: Some(addr::encode(family, Some(from.addr), from.port)),
            ..Received::default()
        };
        out.data = data;
        out.data.truncate(len);
        Ok(Some(out))
    }

    // ---- both ----

    pub fn shutdown(&mut self, id: u64, how: i32) -> Result<()> {
        let mode = match how {
            libc::SHUT_RD => RCV_SHUTDOWN,
            libc::SHUT_WR => SEND_SHUTDOWN,
            libc::SHUT_RDWR => SHUTDOWN_MASK,
            _ => return_errno!(EINVAL),
        };
        let e = self.entry(id)?;
        if e.proto == Proto::Udp {
            let connected = e.peer.is_some();
            e.shutdown |= mode;
            if !connected {
                return_errno!(ENOTCONN);
            }
            return Ok(());
        }
        match &e.tcp {
            TcpConn::Idle => {
                e.shutdown |= mode;
                return_errno!(ENOTCONN);
            }
            TcpConn::Listen { .. } => {
                if mode & RCV_SHUTDOWN != 0 {
                    self.stop_listening(id)?;
                }
                Ok(())
            }
            TcpConn::Conn { handle, .. } => {
                let h = *handle;
                let state = self.tcp(h).state();
                if matches!(state, tcp::State::SynSent) {
                    // Linux disconnects a socket still connecting.
                    self.tcp_mut(h).abort();
                    self.entry(id)?.aborted = true;
                    return Ok(());
                }
                if state == tcp::State::Closed {
                    return_errno!(ENOTCONN);
                }
                self.entry(id)?.shutdown |= mode;
                if mode & SEND_SHUTDOWN != 0 {
                    self.tcp_mut(h).close();
                }
                Ok(())
            }
        }
    }

    fn stop_listening(&mut self, id: u64) -> Result<()> {
        let e = self.entry(id)?;
        let old = std::mem::replace(&mut e.tcp, TcpConn::Idle);
        if let TcpConn::Listen { pending, ready, .. } = old {
            for h in pending.into_iter().chain(ready) {
                self.tcp_mut(h).abort();
                self.dying.push((h, Instant::now() + FIN_TIMEOUT));
            }
        }
        Ok(())
    }

    /// The file is closed.
    pub fn close(&mut self, id: u64) {
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        let (linger0, udp, listening, conn) = (
            e.opts.linger == (1, 0),
            e.udp,
            e.is_listening(),
            e.conn_handle(),
        );
        if let Some(h) = udp {
            self.sockets.remove(h);
        }
        if listening {
            let _ = self.stop_listening(id);
        }
        if let Some(h) = conn {
            let s = self.tcp_mut(h);
            // Unread data or a zero linger time resets the connection (tcp_close).
            if s.recv_queue() > 0 || linger0 {
                s.abort();
            } else {
                s.close();
            }
            self.dying.push((h, Instant::now() + FIN_TIMEOUT));
        }
        self.entries.remove(&id);
    }

    pub fn sockname(&self, id: u64) -> Result<Vec<u8>> {
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        let (mut a, port) = e.local.unwrap_or((None, 0));
        if a.is_none() {
            // A connected socket shows the address it uses.
            if let Some(h) = e.conn_handle() {
                a = self.tcp(h).local_endpoint().map(|l| l.addr);
            } else if let Some(p) = e.peer {
                a = Some(self.source_for(p.addr).unwrap_or(p.addr));
            }
        }
        Ok(addr::encode(e.family, a, port))
    }

    pub fn peername(&self, id: u64) -> Result<Vec<u8>> {
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        let r = match (e.proto, e.conn_handle()) {
            (Proto::Udp, _) => e.peer,
            (Proto::Tcp, Some(h)) => {
                let s = self.tcp(h);
                match s.state() {
                    tcp::State::SynSent | tcp::State::Closed => None,
                    _ => s.remote_endpoint(),
                }
            }
            _ => None,
        };
        let r = r.ok_or(errno!(ENOTCONN))?;
        Ok(addr::encode(e.family, Some(r.addr), r.port))
    }

    /// `FIONREAD`: unread bytes; for UDP the next datagram's size.
    pub fn inq(&mut self, id: u64) -> Result<usize> {
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        if let Some(h) = e.udp {
            return Ok(self
                .sockets
                .get_mut::<udp::Socket>(h)
                .peek()
                .map_or(0, |(d, _)| d.len()));
        }
        if e.is_listening() {
            return_errno!(EINVAL);
        }
        Ok(e.conn_handle().map_or(0, |h| self.tcp(h).recv_queue()))
    }

    /// `SIOCOUTQ`: bytes not yet acknowledged.
    pub fn outq(&self, id: u64) -> Result<usize> {
        let e = self.entries.get(&id).ok_or(errno!(EBADF))?;
        if let Some(h) = e.udp {
            return Ok(self.sockets.get::<udp::Socket>(h).send_queue());
        }
        Ok(e.conn_handle().map_or(0, |h| self.tcp(h).send_queue()))
    }

    pub fn tcp_state(&self, id: u64) -> Option<tcp::State> {
        let e = self.entries.get(&id)?;
        match &e.tcp {
            TcpConn::Listen { .. } => Some(tcp::State::Listen),
            TcpConn::Idle => Some(tcp::State::Closed),
            TcpConn::Conn { handle, .. } => Some(self.tcp(*handle).state()),
        }
    }

    /// `poll` bits (Linux's `tcp_poll` and `udp_poll`).
    pub fn readiness(&self, id: u64) -> u32 {
        let Some(e) = self.entries.get(&id) else {
            return events::HUP | events::ERR;
        };
        let mut r = 0;
        if e.err.is_some() {
            r |= events::ERR;
        }
        let rw_in = events::IN | events::RDNORM;
        let rw_out = events::OUT | events::WRNORM | events::WRBAND;
        if e.proto == Proto::Udp {
            if let Some(h) = e.udp {
                let s = self.sockets.get::<udp::Socket>(h);
                if s.can_recv() {
                    r |= rw_in;
                }
                if s.can_send() {
                    r |= rw_out;
                }
            } else {
                r |= rw_out;
            }
            if e.shutdown & RCV_SHUTDOWN != 0 {
                r |= rw_in | events::RDHUP;
            }
            if e.shutdown == SHUTDOWN_MASK {
                r |= events::HUP;
            }
            return r;
        }
        match &e.tcp {
            TcpConn::Listen { ready, .. } => {
                if !ready.is_empty() {
                    r |= rw_in;
                }
            }
            TcpConn::Idle => {
                r |= events::HUP | rw_out;
                if e.shutdown & RCV_SHUTDOWN != 0 {
                    r |= rw_in | events::RDHUP;
                }
            }
            TcpConn::Conn { handle, .. } => {
                let s = self.tcp(*handle);
                let state = s.state();
                if matches!(state, tcp::State::SynSent | tcp::State::SynReceived) {
                    return r;
                }
                let peer_done = !matches!(
                    state,
                    tcp::State::Established | tcp::State::FinWait1 | tcp::State::FinWait2
                );
                let shut = if state == tcp::State::Closed {
                    SHUTDOWN_MASK
                } else {
                    e.shutdown | if peer_done { RCV_SHUTDOWN } else { 0 }
                };
                if shut == SHUTDOWN_MASK {
                    r |= events::HUP;
                }
                if shut & RCV_SHUTDOWN != 0 {
                    r |= rw_in | events::RDHUP;
                }
                if s.recv_queue() > 0 {
                    r |= rw_in;
                }
                if shut & SEND_SHUTDOWN != 0 || !s.may_send() {
                    r |= rw_out;
                } else {
                    // Writable while at least a third of the buffer is free
                    // (`sk_stream_is_writeable`, roughly).
                    let free = s.send_capacity().saturating_sub(s.send_queue());
                    if free.saturating_mul(3) >= s.send_capacity() {
                        r |= rw_out;
                    }
                }
            }
        }
        r
    }

    fn sig(&self, id: u64) -> (u32, usize, usize) {
        let Some(e) = self.entries.get(&id) else {
            return (0, 0, 0);
        };
        let r = self.readiness(id);
        if let Some(h) = e.udp {
            let s = self.sockets.get::<udp::Socket>(h);
            return (r, s.payload_recv_capacity(), s.send_queue());
        }
        match &e.tcp {
            TcpConn::Conn { handle, .. } => {
                let s = self.tcp(*handle);
                (r, s.recv_queue(), s.send_queue())
            }
            TcpConn::Listen { ready, pending, .. } => (r, ready.len(), pending.len()),
            TcpConn::Idle => (r, 0, 0),
        }
    }

    // ---- running the stack ----

    /// Whether the packet at the head of the device queue may go to smoltcp. A SYN for a
    /// listener gets a fresh smoltcp socket listening on exactly its address; one for a
    /// listener whose accept queue is full is dropped, as Linux drops it.
    fn admit(&mut self, head: &[u8]) -> bool {
        let Some((proto, src, dst, l4)) = parse_l4(head) else {
            return true;
        };
        if proto == IpProtocol::Udp {
            return self.admit_udp(src, dst, l4);
        }
        if proto == IpProtocol::Icmp || proto == IpProtocol::Icmpv6 {
            self.note_unreachable(proto, l4);
            return true;
        }
        if proto != IpProtocol::Tcp {
            return true;
        }
        let Ok(t) = TcpPacket::new_checked(l4) else {
            return true;
        };
        if !t.syn() || t.ack() {
            return true;
        }
        let (sport, dport) = (t.src_port(), t.dst_port());
        // A SYN for a connection that exists already is that connection's business.
        let known = self.sockets.iter().any(|(_, s)| match s {
            smoltcp::socket::Socket::Tcp(s) => {
                s.remote_endpoint() == Some(IpEndpoint::new(src, sport))
                    && s.local_endpoint() == Some(IpEndpoint::new(dst, dport))
            }
            _ => false,
        });
        if known {
            return true;
        }
        let v4 = matches!(dst, IpAddress::Ipv4(_));
        let mut best: Option<(u8, u64)> = None;
        let mut ties = Vec::new();
        for (id, e) in &self.entries {
            if e.proto != Proto::Tcp || !e.is_listening() {
                continue;
            }
            let Some((a, p)) = e.local else { continue };
            if p != dport {
                continue;
            }
            let score = match a {
                Some(a) if a == dst => 2,
                Some(_) => continue,
                None if addr::wildcard_covers(e.family, e.v6only, v4) => 1,
                None => continue,
            };
            match best {
                Some((s, _)) if s > score => {}
                Some((s, _)) if s == score => ties.push(*id),
                _ => {
                    best = Some((score, *id));
                    ties.clear();
                    ties.push(*id);
                }
            }
        }
        if best.is_none() {
            // No listener: smoltcp answers with a reset.
            return true;
        }
        // SO_REUSEPORT listeners share connections by the client's port.
        ties.sort_unstable();
        let Some(&id) = ties.get(usize::from(sport) % ties.len().max(1)) else {
            return true;
        };
        let Some(e) = self.entries.get(&id) else {
            return true;
        };
        let TcpConn::Listen {
            backlog,
            pending,
            ready,
        } = &e.tcp
        else {
            return true;
        };
        if pending.len() + ready.len() > *backlog {
            return false;
        }
        let mut s = Stack::new_tcp(e);
        if s.listen(IpListenEndpoint {
            addr: Some(dst),
            port: dport,
        })
        .is_err()
        {
            return true;
        }
        let h = self.sockets.add(s);
        if let Some(TcpConn::Listen { pending, .. }) = self.entries.get_mut(&id).map(|e| &mut e.tcp)
        {
            pending.push(h);
        }
        true
    }

    /// A datagram goes to a socket bound to its port and address that is not connected
    /// to another sender; with none, it is dropped on arrival, as in Linux.
    fn admit_udp(&self, src: IpAddress, dst: IpAddress, l4: &[u8]) -> bool {
        let Ok(u) = UdpPacket::new_checked(l4) else {
            return true;
        };
        let from = IpEndpoint::new(src, u.src_port());
        let v4 = matches!(dst, IpAddress::Ipv4(_));
        let mut bound = false;
        for e in self.entries.values() {
            let Some((a, p)) = e.local else { continue };
            if e.proto != Proto::Udp || p != u.dst_port() {
                continue;
            }
            let addr_ok = match a {
                Some(a) => a == dst,
                None => addr::wildcard_covers(e.family, e.v6only, v4),
            };
            if !addr_ok {
                continue;
            }
            bound = true;
            if e.peer.is_none_or(|peer| peer == from) {
                return true;
            }
        }
        // Unbound ports get smoltcp's port-unreachable answer.
        !bound
    }

    /// An ICMP "port unreachable" about a datagram of a connected UDP socket becomes its
    /// pending `ECONNREFUSED` (Linux's `__udp4_lib_err`; unconnected sockets are not
    /// told, as without `IP_RECVERR`).
    fn note_unreachable(&mut self, proto: IpProtocol, icmp: &[u8]) {
        let (ty, code) = match (icmp.first(), icmp.get(1)) {
            (Some(t), Some(c)) => (*t, *c),
            _ => return,
        };
        let unreachable = match proto {
            IpProtocol::Icmp => ty == 3 && code == 3,
            _ => ty == 1 && code == 4,
        };
        if !unreachable {
            return;
        }
        let Some((inner, _osrc, odst, l4)) = icmp.get(8..).and_then(parse_l4) else {
            return;
        };
        if inner != IpProtocol::Udp || l4.len() < 4 {
            return;
        }
        let sport = u16::from_be_bytes([l4[0], l4[1]]);
        let dport = u16::from_be_bytes([l4[2], l4[3]]);
        let to = IpEndpoint::new(odst, dport);
        for e in self.entries.values_mut() {
            if e.proto == Proto::Udp && e.local.map(|l| l.1) == Some(sport) && e.peer == Some(to) {
                e.err = Some(Errno::ECONNREFUSED);
            }
        }
    }

    /// After each packet: note resets and finished handshakes.
    fn track(&mut self) {
        let sockets = &mut self.sockets;
        for e in self.entries.values_mut() {
            match &mut e.tcp {
                TcpConn::Conn { handle, .. } => {
                    let st = sockets.get::<tcp::Socket>(*handle).state();
                    if st == e.last {
                        continue;
                    }
                    if st == tcp::State::Closed && !e.aborted {
                        // tcp_reset: what the application hears depends on where it was.
                        e.err = match e.last {
                            tcp::State::SynSent => Some(Errno::ECONNREFUSED),
                            tcp::State::CloseWait => Some(Errno::EPIPE),
                            tcp::State::LastAck | tcp::State::TimeWait | tcp::State::Closing => {
                                e.err
                            }
                            _ => Some(Errno::ECONNRESET),
                        };
                    }
                    e.last = st;
                }
                TcpConn::Listen { pending, ready, .. } => {
                    let mut i = 0;
                    while let Some(&h) = pending.get(i) {
                        match sockets.get::<tcp::Socket>(h).state() {
                            tcp::State::Listen | tcp::State::SynReceived => i += 1,
                            tcp::State::Closed => {
                                pending.swap_remove(i);
                                sockets.remove(h);
                            }
                            _ => {
                                pending.swap_remove(i);
                                ready.push_back(h);
                            }
                        }
                    }
                }
                TcpConn::Idle => {}
            }
        }
        // A closed socket that receives data resets the connection (tcp_rcv_state_process).
        for (h, _) in &self.dying {
            let s = sockets.get_mut::<tcp::Socket>(*h);
            if s.recv_queue() > 0 {
                s.abort();
            }
        }
    }

    /// Drop finished connections, and listening sockets no SYN came to.
    fn reap(&mut self) {
        let now = Instant::now();
        let sockets = &mut self.sockets;
        self.dying.retain(|(h, deadline)| {
            let s = sockets.get_mut::<tcp::Socket>(*h);
            let done = matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait);
            if done {
                sockets.remove(*h);
                return false;
            }
            if now >= *deadline {
                s.abort();
            }
            true
        });
        for e in self.entries.values_mut() {
            if let TcpConn::Listen { pending, .. } = &mut e.tcp {
                pending.retain(|h| {
                    if sockets.get::<tcp::Socket>(*h).state() == tcp::State::Listen {
                        sockets.remove(*h);
                        return false;
                    }
                    true
                });
            }
        }
    }

    /// Run the stack until no packet is left in flight; the wait queues to wake.
    fn pump(&mut self) -> Vec<(Arc<WaitQueue>, u32)> {
        loop {
            let now = self.now();
            // smoltcp sends at most one segment per socket per call. On loopback the
            // segment comes straight back and the loop runs again; what goes out on the
            // link does not, so keep asking while sockets have more (a window's worth).
            let rounds = if self.dev.link.is_some() {
                EGRESS_ROUNDS
            } else {
                1
            };
            for _ in 0..rounds {
                let r = self
                    .iface
                    .poll_egress(now, &mut self.dev, &mut self.sockets);
                if r == smoltcp::iface::PollResult::None {
                    break;
                }
            }
            let Some(head) = self.dev.queue.front() else {
                break;
            };
            // ICMP sockets get their copy before smoltcp answers (`icmp.rs`).
            if head.first().is_some_and(|b| b >> 4 == 4)
                && head.get(9) == Some(&(libc::IPPROTO_ICMP as u8))
                && !self.icmp.is_empty()
            {
                let whole = head.clone();
                let woken = self.deliver_icmp(&whole);
                self.icmp_woken.extend(woken);
            }
            let Some(head) = self.dev.queue.front() else {
                break;
            };
            let head: Vec<u8> = head.iter().take(128).copied().collect();
            if !self.admit(&head) {
                self.dev.queue.pop_front();
                continue;
            }
            self.iface
                .poll_ingress_single(now, &mut self.dev, &mut self.sockets);
            self.track();
        }
        self.reap();
        // A second pass: a reset sent by reap's aborts.
        if !self.dev.queue.is_empty() {
            return self.pump();
        }
        let ids: Vec<u64> = self.entries.keys().copied().collect();
        let mut wakes: Vec<(Arc<WaitQueue>, u32)> = self
            .icmp_woken
            .drain(..)
            .map(|q| (q, events::IN | events::OUT))
            .collect();
        for id in ids {
            let sig = self.sig(id);
            if let Some(e) = self.entries.get_mut(&id) {
                if e.sig != sig {
                    e.sig = sig;
                    wakes.push((e.queue.clone(), sig.0 | events::IN | events::OUT));
                }
            }
        }
        wakes
    }

    /// When the stack next needs to run by itself.
    fn next_run(&mut self) -> Option<Instant> {
        let now = self.now();
        let delay = self.iface.poll_delay(now, &self.sockets);
        let dying = self.dying.iter().map(|(_, d)| *d).min();
        let smol = delay.map(|d| {
            Instant::now() + Duration::from_micros(d.total_micros()).max(Duration::from_millis(1))
        });
        match (smol, dying) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One socket as `/proc/net/tcp` and friends show it.
pub struct SockRow {
    pub family: i32,
    pub tcp: bool,
    pub local: (Option<IpAddress>, u16),
    pub remote: Option<IpEndpoint>,
    /// Linux's `TCP_*` state number (UDP: 7 unconnected, 1 connected).
    pub state: u8,
    pub txq: usize,
    pub rxq: usize,
    pub uid: u32,
    pub ino: u64,
}

/// Linux's numbering of TCP states (`include/net/tcp_states.h`).
pub fn linux_tcp_state(s: tcp::State) -> u8 {
    use tcp::State as S;
    match s {
        S::Established => 1,
        S::SynSent => 2,
        S::SynReceived => 3,
        S::FinWait1 => 4,
        S::FinWait2 => 5,
        S::TimeWait => 6,
        S::Closed => 7,
        S::CloseWait => 8,
        S::LastAck => 9,
        S::Listen => 10,
        S::Closing => 11,
    }
}

fn apply_tcp_opts(s: &mut tcp::Socket<'static>, opts: &CommonOpts, popts: &ProtoOpts) {
    s.set_nagle_enabled(!popts.nodelay);
    s.set_keep_alive(
        opts.keepalive
            .then(|| smoltcp::time::Duration::from_secs(u64::from(popts.keepidle.max(1)))),
    );
    s.set_hop_limit(Some(popts.ttl.max(1)));
    s.set_timeout(
        (popts.user_timeout > 0)
            .then(|| smoltcp::time::Duration::from_millis(u64::from(popts.user_timeout))),
    );
}

/// The transport protocol, addresses and transport header of an IP packet (no IPv6
/// extension headers: smoltcp sends none).
fn parse_l4(p: &[u8]) -> Option<(IpProtocol, IpAddress, IpAddress, &[u8])> {
    match p.first()? >> 4 {
        4 => {
            if p.len() < 20 {
                return None;
            }
            let ip = Ipv4Packet::new_unchecked(p);
            let hl = usize::from(p.first()? & 0xf) * 4;
            Some((
                ip.next_header(),
                IpAddress::Ipv4(ip.src_addr()),
                IpAddress::Ipv4(ip.dst_addr()),
                p.get(hl..)?,
            ))
        }
        6 => {
            // Only the head of the packet is at hand: no length check.
            if p.len() < 40 {
                return None;
            }
            let ip = Ipv6Packet::new_unchecked(p);
            Some((
                ip.next_header(),
                IpAddress::Ipv6(ip.src_addr()),
                IpAddress::Ipv6(ip.dst_addr()),
                p.get(40..)?,
            ))
        }
        _ => None,
    }
}

fn global() -> &'static Mutex<Stack> {
    static STACK: OnceLock<Mutex<Stack>> = OnceLock::new();
    STACK.get_or_init(|| Mutex::new(Stack::new()))
}

fn lock() -> MutexGuard<'static, Stack> {
    global().lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f` on the stack, then carry every packet it caused, wake the sockets that
/// changed (with the stack unlocked) and set the timer.
pub fn with<T>(f: impl FnOnce(&mut Stack) -> Result<T>) -> Result<T> {
    let mut st = lock();
    let r = f(&mut st);
    let wakes = st.pump();
    let next = st.next_run();
    drop(st);
    for (q, ev) in wakes {
        q.notify(ev);
    }
    timer::arm(next);
    r
}

/// Read the stack without running it.
pub fn peek<T>(f: impl FnOnce(&Stack) -> T) -> T {
    f(&lock())
}

/// The thread that runs the stack when time passes: retransmissions, keep-alive probes
/// and closing connections. It sleeps until the earliest deadline and is only made once
/// some socket needs it.
mod timer {
    use super::*;

    struct Timer {
        at: Mutex<(Option<Instant>, bool)>,
        cv: Condvar,
    }

    fn timer() -> &'static Timer {
        static T: OnceLock<Timer> = OnceLock::new();
        T.get_or_init(|| Timer {
            at: Mutex::new((None, false)),
            cv: Condvar::new(),
        })
    }

    pub fn arm(when: Option<Instant>) {
        let Some(when) = when else { return };
        let t = timer();
        let mut g = t.at.lock().unwrap_or_else(|e| e.into_inner());
        if !g.1 {
            let spawned = std::thread::Builder::new()
                .name("netstack-timer".into())
                .spawn(run);
            match spawned {
                Ok(_) => g.1 = true,
                Err(e) => {
                    tracing::warn!("netstack: cannot start the timer thread: {e}");
                    return;
                }
            }
        }
        if g.0.is_none_or(|a| when < a) {
            g.0 = Some(when);
            t.cv.notify_one();
        }
    }

    fn run() {
        let t = timer();
        loop {
            {
                let mut g = t.at.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    match g.0 {
                        None => g = t.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                        Some(a) => {
                            let now = Instant::now();
                            if now >= a {
                                g.0 = None;
                                break;
                            }
                            g =
                                t.cv.wait_timeout(g, a - now)
                                    .unwrap_or_else(|e| e.into_inner())
                                    .0;
                        }
                    }
                }
            }
            let _ = with(|_| Ok(()));
        }
    }
}
