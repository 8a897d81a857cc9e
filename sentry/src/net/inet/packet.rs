//! `--network=sandbox`: the stack's link to the network namespace the sandbox runs in.
//!
//! Before confining the sentry, `carapace` reads the namespace's interface (MAC, MTU,
//! IPv4 addresses, routes), takes the addresses off the host interface so that the host
//! kernel no longer answers for them, and opens an `AF_PACKET` socket bound to it. The
//! sentry gets that descriptor and the description ([`attach`]) and is from then on the
//! only one speaking for those addresses: Ethernet frames go in and out through the
//! descriptor (`read`/`write`/`poll`, calls its seccomp policy allows anyway), and no
//! socket of the application ever becomes a host socket.
//!
//! The stack's smoltcp interface works on IP packets (`Medium::Ip`), one device for
//! loopback and the link: the device keeps packets for the sandbox's own addresses and
//! hands the others to the [`Wire`], which resolves the next hop with ARP and frames them.
//! Frames read from the descriptor go into the same receive queue the loopback fills, so
//! listen backlogs and the rest of `stack.rs` treat both alike.
//!
//! Not done: IPv6 on the link (no neighbour discovery; only loopback has `::1`), more than
//! one interface, multicast, IP fragments, and giving the addresses back when the sandbox
//! ends (`carapace do` does that itself).
#![deny(unsafe_code)]

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, Ipv4Address, Ipv4Cidr,
};
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The interface index the link has inside the sandbox (`lo` is 1).
pub const LINK_INDEX: u32 = 2;

/// A route through the link, as read from the namespace's main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRoute {
    pub dst: Ipv4Address,
    pub dst_len: u8,
    /// `None`: the destination is on the link.
    pub gateway: Option<Ipv4Address>,
}

/// What `carapace` read about the interface the sandbox takes over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkDesc {
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IPv4 addresses and their prefix lengths.
    pub addrs: Vec<(Ipv4Address, u8)>,
    pub routes: Vec<LinkRoute>,
}

struct Attached {
    desc: LinkDesc,
    fd: OwnedFd,
}

static LINK: OnceLock<Attached> = OnceLock::new();

/// Give the stack its link: `fd` is an `AF_PACKET` socket bound to the interface `desc`
/// describes, in non-blocking mode. Call once, before the first socket, after the
/// sentry is confined (it starts the receiving thread).
pub fn attach(fd: OwnedFd, desc: LinkDesc) -> Result<(), String> {
    if desc.mtu < 576 || desc.mtu > 65535 {
        return Err(format!("{}: MTU {} out of range", desc.name, desc.mtu));
    }
    LINK.set(Attached { desc, fd })
        .map_err(|_| "the link is attached already".to_string())?;
    std::thread::Builder::new()
        .name("netstack-rx".into())
        .spawn(receive_loop)
        .map(drop)
        .map_err(|e| format!("cannot start the link's receiving thread: {e}"))
}

/// The attached link's description.
pub fn desc() -> Option<&'static LinkDesc> {
    LINK.get().map(|a| &a.desc)
}

/// Wait for frames and feed them to the stack, for as long as the sandbox lives.
fn receive_loop() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Some(link) = LINK.get() else { return };
    loop {
        let mut fds = [PollFd::new(link.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("netstack: polling the link: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = super::stack::with(|st| {
            st.receive_link();
            Ok(())
        });
    }
}

/// The link as the device uses it: addresses, routes, the neighbour cache and the
/// packets waiting for a neighbour's address.
pub struct Wire {
    fd: BorrowedFd<'static>,
    mac: EthernetAddress,
    pub mtu: usize,
    addrs: Vec<Ipv4Cidr>,
    /// Routes through a gateway, the longest prefix first.
    gateways: Vec<(Ipv4Cidr, Ipv4Address)>,
    neighbors: HashMap<Ipv4Address, EthernetAddress>,
    /// When each address was last asked for.
    asked: HashMap<Ipv4Address, Instant>,
    waiting: VecDeque<(Ipv4Address, Vec<u8>)>,
    /// Frames and bytes received and sent (`/proc/net/dev`).
    pub counts: LinkCounts,
    /// Where frames are read into (a frame from a veth peer may be a 64 KiB GSO one).
    rx_buf: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LinkCounts {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
}

/// Packets kept while their next hop is being resolved.
const WAITING_MAX: usize = 256;
/// How often an unanswered address is asked for again.
const ARP_RETRY: Duration = Duration::from_secs(1);
/// Frames read in one go before the stack runs again.
const RX_BATCH: usize = 256;
/// The largest frame: a 64 KiB IP packet and its Ethernet header.
const RX_BUF: usize = 65536 + 14;

impl Wire {
    /// The attached link, if there is one.
    pub fn attached() -> Option<Wire> {
        let link = LINK.get()?;
        let d = &link.desc;
        let mut gateways: Vec<(Ipv4Cidr, Ipv4Address)> = d
            .routes
            .iter()
            .filter_map(|r| Some((Ipv4Cidr::new(r.dst, r.dst_len.min(32)), r.gateway?)))
            .collect();
        gateways.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
        Some(Wire {
            fd: link.fd.as_fd(),
            mac: EthernetAddress(d.mac),
            mtu: d.mtu as usize,
            addrs: d
                .addrs
                .iter()
                .map(|(a, p)| Ipv4Cidr::new(*a, (*p).min(32)))
                .collect(),
            gateways,
            neighbors: HashMap::new(),
            asked: HashMap::new(),
            waiting: VecDeque::new(),
            counts: LinkCounts::default(),
            rx_buf: vec![0u8; RX_BUF],
        })
    }

    pub fn addrs(&self) -> impl Iterator<Item = Ipv4Cidr> + '_ {
        self.addrs.iter().copied()
    }

    pub fn gateways(&self) -> impl Iterator<Item = (Ipv4Cidr, Ipv4Address)> + '_ {
        self.gateways.iter().copied()
    }

    fn owns(&self, a: Ipv4Address) -> bool {
        self.addrs.iter().any(|c| c.address() == a)
    }

    /// Where a packet for `dst` goes first: `dst` itself on the link's subnets, else the
    /// gateway of the most specific route.
    fn next_hop(&self, dst: Ipv4Address) -> Option<Ipv4Address> {
        if dst.is_broadcast() || self.addrs.iter().any(|c| c.contains_addr(&dst)) {
            return Some(dst);
        }
        self.gateways
            .iter()
            .find(|(c, _)| c.contains_addr(&dst))
            .map(|(_, gw)| *gw)
    }

    /// Whether the link reaches `a` (an address not the sandbox's own).
    pub fn reaches(&self, a: IpAddress) -> bool {
        match a {
            IpAddress::Ipv4(v4) => !v4.is_loopback() && self.next_hop(v4).is_some(),
            IpAddress::Ipv6(_) => false,
        }
    }

    /// The source address for packets to `dst`: the sandbox's address on the subnet of
    /// the next hop, else its first one.
    pub fn source_for(&self, dst: IpAddress) -> Option<IpAddress> {
        let IpAddress::Ipv4(dst) = dst else {
            return None;
        };
        if self.owns(dst) {
            return Some(IpAddress::Ipv4(dst));
        }
        let hop = self.next_hop(dst)?;
        self.addrs
            .iter()
            .find(|c| c.contains_addr(&hop))
            .or(self.addrs.first())
            .map(|c| IpAddress::Ipv4(c.address()))
    }

    /// Whether an IP packet smoltcp sent stays inside the sandbox: IPv6 (only `::1`
    /// exists), the loopback net, and the sandbox's own addresses.
    pub fn stays_local(&self, packet: &[u8]) -> bool {
        match ipv4_dst(packet) {
            Some(dst) => dst.is_loopback() || self.owns(dst),
            None => true,
        }
    }

    /// Send an IP packet out: framed for its next hop, or kept until ARP answers.
    pub fn send(&mut self, packet: Vec<u8>) {
        let Some(dst) = ipv4_dst(&packet) else {
            return;
        };
        let Some(hop) = self.next_hop(dst) else {
            return;
        };
        if dst.is_broadcast() || self.addrs.iter().any(|c| c.broadcast() == Some(dst)) {
            self.frame(EthernetAddress::BROADCAST, EthernetProtocol::Ipv4, &packet);
            return;
        }
        if let Some(mac) = self.neighbors.get(&hop).copied() {
            self.frame(mac, EthernetProtocol::Ipv4, &packet);
            return;
        }
        if self.waiting.len() >= WAITING_MAX {
            self.waiting.pop_front();
        }
        self.waiting.push_back((hop, packet));
        self.ask(hop);
    }

    /// An ARP request for `hop`, unless one went out lately.
    fn ask(&mut self, hop: Ipv4Address) {
        let now = Instant::now();
        if self
            .asked
            .get(&hop)
            .is_some_and(|t| now.saturating_duration_since(*t) < ARP_RETRY)
        {
            return;
        }
        let Some(src) = self
            .addrs
            .iter()
            .find(|c| c.contains_addr(&hop))
            .or(self.addrs.first())
            .map(|c| c.address())
        else {
            return;
        };
        self.asked.insert(hop, now);
        let repr = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: src,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: hop,
        };
        self.arp(EthernetAddress::BROADCAST, &repr);
    }

    fn arp(&mut self, to: EthernetAddress, repr: &ArpRepr) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf));
        self.frame(to, EthernetProtocol::Arp, &buf);
    }

    /// Write one Ethernet frame; a full transmit queue drops it, as a NIC would (TCP
    /// sends it again).
    fn frame(&mut self, to: EthernetAddress, proto: EthernetProtocol, payload: &[u8]) {
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: to,
            ethertype: proto,
        };
        let mut buf = vec![0u8; eth.buffer_len() + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf);
        eth.emit(&mut f);
        f.payload_mut().copy_from_slice(payload);
        match nix::unistd::write(self.fd, &buf) {
            Ok(_) => {
                self.counts.tx_packets += 1;
                self.counts.tx_bytes += buf.len() as u64;
            }
            Err(e) => {
                self.counts.tx_dropped += 1;
                tracing::debug!("netstack: link write: {e}");
            }
        }
    }

    /// Read the frames waiting on the descriptor: ARP is answered here, IPv4 packets go
    /// to `into` for the stack.
    pub fn receive(&mut self, into: &mut VecDeque<Vec<u8>>) {
        let mut buf = std::mem::take(&mut self.rx_buf);
        for _ in 0..RX_BATCH {
            let n = match nix::unistd::read(self.fd, &mut buf) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            };
            let Some(frame) = buf.get(..n) else { break };
            self.counts.rx_packets += 1;
            self.counts.rx_bytes += n as u64;
            self.on_frame(frame, into);
        }
        self.rx_buf = buf;
    }

    fn on_frame(&mut self, frame: &[u8], into: &mut VecDeque<Vec<u8>>) {
        let Ok(f) = EthernetFrame::new_checked(frame) else {
            return;
        };
        let to = f.dst_addr();
        if to != self.mac && !to.is_broadcast() {
            return;
        }
        match f.ethertype() {
            EthernetProtocol::Arp => self.on_arp(f.payload()),
            EthernetProtocol::Ipv4 => {
                let p = f.payload();
                // Ethernet pads short frames: keep the IP packet only.
                let total = p
                    .get(2..4)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                    .unwrap_or(0);
                if total >= 20 && total <= p.len() {
                    if let Some(ip) = p.get(..total) {
                        into.push_back(ip.to_vec());
                    }
                }
            }
            _ => {}
        }
    }

    fn on_arp(&mut self, payload: &[u8]) {
        let Ok(pkt) = ArpPacket::new_checked(payload) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&pkt)
        else {
            return;
        };
        if !source_hardware_addr.is_unicast() {
            return;
        }
        let for_us = self.owns(target_protocol_addr);
        let known = self.neighbors.contains_key(&source_protocol_addr)
            || self.asked.contains_key(&source_protocol_addr);
        // Learn the sender when the message is for us or answers what we asked (Linux's
        // arp_process updates an existing entry on any message).
        if for_us || known {
            self.neighbors
                .insert(source_protocol_addr, source_hardware_addr);
            self.asked.remove(&source_protocol_addr);
            self.flush(source_protocol_addr, source_hardware_addr);
        }
        if operation == ArpOperation::Request && for_us {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: self.mac,
                source_protocol_addr: target_protocol_addr,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            self.arp(source_hardware_addr, &reply);
        }
    }

    /// Send what waited for `hop`.
    fn flush(&mut self, hop: Ipv4Address, mac: EthernetAddress) {
        let (ready, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(h, _)| *h == hop);
        self.waiting = rest;
        for (_, p) in ready {
            self.frame(mac, EthernetProtocol::Ipv4, &p);
        }
    }
}

fn ipv4_dst(packet: &[u8]) -> Option<Ipv4Address> {
    if packet.first()? >> 4 != 4 {
        return None;
    }
    let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
    Some(Ipv4Address::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire() -> Wire {
        // A descriptor nobody reads: writes to /dev/null vanish.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let fd: &'static OwnedFd = Box::leak(Box::new(OwnedFd::from(f)));
        Wire {
            fd: fd.as_fd(),
            mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            addrs: vec![Ipv4Cidr::new(Ipv4Address::new(10, 1, 0, 2), 24)],
            gateways: vec![(
                Ipv4Cidr::new(Ipv4Address::new(0, 0, 0, 0), 0),
                Ipv4Address::new(10, 1, 0, 1),
            )],
            neighbors: HashMap::new(),
            asked: HashMap::new(),
            waiting: VecDeque::new(),
            counts: LinkCounts::default(),
            rx_buf: vec![0u8; RX_BUF],
        }
    }

    #[test]
    fn next_hops_and_sources() {
        let w = wire();
        let out = Ipv4Address::new(8, 8, 8, 8);
        assert_eq!(w.next_hop(out), Some(Ipv4Address::new(10, 1, 0, 1)));
        let peer = Ipv4Address::new(10, 1, 0, 9);
        assert_eq!(w.next_hop(peer), Some(peer));
        assert_eq!(
            w.source_for(IpAddress::Ipv4(out)),
            Some(IpAddress::v4(10, 1, 0, 2))
        );
        assert!(!w.reaches(IpAddress::v4(127, 0, 0, 1)));
        assert!(w.reaches(IpAddress::Ipv4(out)));
    }

    #[test]
    fn unresolved_packets_wait_for_arp() {
        let mut w = wire();
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[10, 1, 0, 9]);
        w.send(p);
        assert_eq!(w.waiting.len(), 1);
        assert!(w.asked.contains_key(&Ipv4Address::new(10, 1, 0, 9)));
        // The answer arrives: the packet leaves.
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 9]),
            source_protocol_addr: Ipv4Address::new(10, 1, 0, 9),
            target_hardware_addr: w.mac,
            target_protocol_addr: Ipv4Address::new(10, 1, 0, 2),
        };
        let mut buf = vec![0u8; reply.buffer_len()];
        reply.emit(&mut ArpPacket::new_unchecked(&mut buf));
        w.on_arp(&buf);
        assert!(w.waiting.is_empty());
        assert_eq!(w.neighbors.len(), 1);
    }

    #[test]
    fn garbage_frames_are_ignored() {
        let mut w = wire();
        let mut q = VecDeque::new();
        for len in [0usize, 5, 14, 20, 60] {
            let mut f = vec![0xffu8; len];
            if len >= 14 {
                f[12] = 0x08;
                f[13] = 0x00;
            }
            w.on_frame(&f, &mut q);
        }
        assert!(q.is_empty());
    }
}
