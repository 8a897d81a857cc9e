//! IPv6 neighbour discovery on the link (RFC 4861), the messages only: Neighbor
//! Solicitations and Advertisements read from the wire (checked as §7.1.1 and §7.1.2
//! require, anything else dropped) and made for it. The neighbour cache that uses them,
//! beside ARP's, is the link's (`packet.rs`): smoltcp resolves neighbours only for an
//! Ethernet medium, and the stack's interface works on IP packets.
//!
//! Not done: router solicitations and advertisements (no SLAAC: the addresses and routes
//! are the ones `carapace` read), redirects, duplicate address detection (the addresses
//! were the host kernel's, which ran it), proxy and anycast advertisements.
#![deny(unsafe_code)]

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Address, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress, IPV6_HEADER_LEN, IPV6_LINK_LOCAL_ALL_NODES,
};

/// ICMPv6 types of neighbour discovery: router solicitation to redirect.
const NDISC_TYPES: std::ops::RangeInclusive<u8> = 133..=137;
/// The hop limit every neighbour discovery message carries (and must arrive with).
const HOP_LIMIT: u8 = 255;

/// A checked neighbour discovery message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ndisc {
    Solicit {
        src: Ipv6Address,
        dst: Ipv6Address,
        target: Ipv6Address,
        /// The source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    Advert {
        dst: Ipv6Address,
        target: Ipv6Address,
        flags: NdiscNeighborFlags,
        /// The target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

/// Whether an IPv6 packet is a neighbour discovery message (ICMPv6 right after the
/// header, types 133 to 137): those are the link's business, never the stack's.
pub fn is_ndisc(packet: &[u8]) -> bool {
    packet.get(6) == Some(&u8::from(IpProtocol::Icmpv6))
        && packet
            .get(IPV6_HEADER_LEN)
            .is_some_and(|t| NDISC_TYPES.contains(t))
}

/// The solicited-node multicast address of `a` (`ff02::1:ffXX:XXXX`).
pub fn solicited_node(a: Ipv6Address) -> Ipv6Address {
    let o = a.octets();
    Ipv6Address::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Whether `a` is a solicited-node multicast address.
fn is_solicited_node(a: Ipv6Address) -> bool {
    let s = a.segments();
    s[..5] == [0xff02, 0, 0, 0, 0] && s[5] == 1 && s[6] & 0xff00 == 0xff00
}

/// The Ethernet address an IPv6 multicast address is sent to (RFC 2464 §7).
pub fn multicast_mac(a: Ipv6Address) -> EthernetAddress {
    let o = a.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// An Ethernet address from a link-layer address option: six bytes, unicast.
fn ethernet(l: Option<RawHardwareAddress>) -> Result<Option<EthernetAddress>, ()> {
    let Some(l) = l else { return Ok(None) };
    let b: [u8; 6] = l.as_bytes().try_into().map_err(drop)?;
    let mac = EthernetAddress(b);
    if !mac.is_unicast() {
        return Err(());
    }
    Ok(Some(mac))
}

/// Read a neighbour solicitation or advertisement from an IPv6 packet (as long as its
/// payload length says). `None` for anything else, and for every message RFC 4861 says
/// to drop: a hop limit other than 255, a bad checksum, a code other than 0, a short
/// message, an option of length 0, a multicast target, a solicitation from the
/// unspecified address that is not for a solicited-node group or carries a link-layer
/// address, an advertisement to a multicast group with the solicited flag.
pub fn parse(packet: &[u8]) -> Option<Ndisc> {
    let ip = Ipv6Packet::new_checked(packet).ok()?;
    let ip = Ipv6Repr::parse(&ip).ok()?;
    if ip.next_header != IpProtocol::Icmpv6 || ip.hop_limit != HOP_LIMIT {
        return None;
    }
    let body = packet.get(IPV6_HEADER_LEN..)?.get(..ip.payload_len)?;
    let icmp = Icmpv6Packet::new_checked(body).ok()?;
    // The checksum is checked (the default capabilities): the kernel computes it for
    // neighbour discovery itself, never leaving it to the device.
    let repr = Icmpv6Repr::parse(
        &ip.src_addr,
        &ip.dst_addr,
        &icmp,
        &ChecksumCapabilities::default(),
    )
    .ok()?;
    if icmp.msg_code() != 0 || ip.src_addr.is_multicast() {
        return None;
    }
    let Icmpv6Repr::Ndisc(nd) = repr else {
        return None;
    };
    match nd {
        NdiscRepr::NeighborSolicit {
            target_addr,
            lladdr,
        } => {
            let lladdr = ethernet(lladdr).ok()?;
            if target_addr.is_multicast()
                || (ip.src_addr.is_unspecified()
                    && (!is_solicited_node(ip.dst_addr) || lladdr.is_some()))
            {
                return None;
            }
            Some(Ndisc::Solicit {
                src: ip.src_addr,
                dst: ip.dst_addr,
                target: target_addr,
                lladdr,
            })
        }
        NdiscRepr::NeighborAdvert {
            flags,
            target_addr,
            lladdr,
        } => {
            let lladdr = ethernet(lladdr).ok()?;
            if target_addr.is_multicast()
                || (ip.dst_addr.is_multicast() && flags.contains(NdiscNeighborFlags::SOLICITED))
            {
                return None;
            }
            Some(Ndisc::Advert {
                dst: ip.dst_addr,
                target: target_addr,
                flags,
                lladdr,
            })
        }
        _ => None,
    }
}

/// An IPv6 packet carrying `repr`, with the hop limit of 255 and its checksum.
fn packet(src: Ipv6Address, dst: Ipv6Address, repr: NdiscRepr) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(repr);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: HOP_LIMIT,
    };
    let mut buf = vec![0u8; ip.buffer_len() + icmp.buffer_len()];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut buf));
    if let Some(body) = buf.get_mut(ip.buffer_len()..) {
        icmp.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(body),
            &ChecksumCapabilities::default(),
        );
    }
    buf
}

/// A solicitation for `target` from `src`, carrying our link-layer address: to the
/// target's solicited-node group (resolving), or to the target itself (`unicast`:
/// checking that a known neighbour is still there). The IPv6 packet and its
/// destination.
pub fn solicit(
    src: Ipv6Address,
    target: Ipv6Address,
    mac: EthernetAddress,
    unicast: bool,
) -> (Ipv6Address, Vec<u8>) {
    let dst = if unicast {
        target
    } else {
        solicited_node(target)
    };
    let repr = NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(mac)),
    };
    (dst, packet(src, dst, repr))
}

/// The advertisement answering a solicitation from `asker` for our address `target`:
/// solicited and overriding, to the asker; or, for a solicitation from the unspecified
/// address (another node's duplicate address detection), unsolicited to all nodes
/// (RFC 4861 §7.2.4). Never with the router flag: the sandbox routes nothing. The IPv6
/// packet and its destination.
pub fn advert(
    target: Ipv6Address,
    asker: Ipv6Address,
    mac: EthernetAddress,
) -> (Ipv6Address, Vec<u8>) {
    let (dst, flags) = if asker.is_unspecified() {
        (IPV6_LINK_LOCAL_ALL_NODES, NdiscNeighborFlags::OVERRIDE)
    } else {
        (
            asker,
            NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        )
    };
    let repr = NdiscRepr::NeighborAdvert {
        flags,
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(mac)),
    };
    (dst, packet(target, dst, repr))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const PEER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 9]);

    fn a(s: &str) -> Ipv6Address {
        s.parse().unwrap()
    }

    #[test]
    fn solicited_node_groups_and_their_macs() {
        let g = solicited_node(a("fd00::12:3456"));
        assert_eq!(g, a("ff02::1:ff12:3456"));
        assert!(is_solicited_node(g));
        assert!(!is_solicited_node(a("ff02::1")));
        assert_eq!(
            multicast_mac(g),
            EthernetAddress([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
        );
    }

    #[test]
    fn messages_round_trip() {
        let (dst, p) = solicit(a("fe80::9"), a("fe80::1"), PEER, false);
        assert_eq!(dst, a("ff02::1:ff00:1"));
        assert!(is_ndisc(&p));
        assert_eq!(
            parse(&p),
            Some(Ndisc::Solicit {
                src: a("fe80::9"),
                dst,
                target: a("fe80::1"),
                lladdr: Some(PEER),
            })
        );
        let (dst, p) = advert(a("fd00::1"), a("fd00::9"), MAC);
        assert_eq!(dst, a("fd00::9"));
        assert_eq!(
            parse(&p),
            Some(Ndisc::Advert {
                dst,
                target: a("fd00::1"),
                flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                lladdr: Some(MAC),
            })
        );
        // Answering duplicate address detection: to all nodes, not solicited.
        let (dst, p) = advert(a("fd00::1"), Ipv6Address::UNSPECIFIED, MAC);
        assert_eq!(dst, IPV6_LINK_LOCAL_ALL_NODES);
        assert!(matches!(parse(&p), Some(Ndisc::Advert { flags, .. })
            if flags == NdiscNeighborFlags::OVERRIDE));
    }

    #[test]
    fn malformed_messages_are_dropped() {
        let (_, good) = solicit(a("fe80::9"), a("fe80::1"), PEER, false);
        // A hop limit other than 255 (as a router would have left it).
        let mut p = good.clone();
        p[7] = 64;
        assert_eq!(parse(&p), None);
        // A bad checksum.
        let mut p = good.clone();
        p[IPV6_HEADER_LEN + 2] ^= 1;
        assert_eq!(parse(&p), None);
        // A code other than 0 (checksum fixed up).
        let mut p = good.clone();
        p[IPV6_HEADER_LEN + 1] = 1;
        let mut icmp = Icmpv6Packet::new_unchecked(&mut p[IPV6_HEADER_LEN..]);
        icmp.fill_checksum(&a("fe80::9"), &a("ff02::1:ff00:1"));
        assert_eq!(parse(&p), None);
        p[IPV6_HEADER_LEN + 1] = 0;
        let mut icmp = Icmpv6Packet::new_unchecked(&mut p[IPV6_HEADER_LEN..]);
        icmp.fill_checksum(&a("fe80::9"), &a("ff02::1:ff00:1"));
        assert!(parse(&p).is_some());
        // An option of length zero.
        let mut p = good.clone();
        p[IPV6_HEADER_LEN + 25] = 0;
        assert_eq!(parse(&p), None);
        // Truncated anywhere, or with a payload length beyond the bytes.
        for n in 0..good.len() {
            assert_eq!(parse(&good[..n]), None, "{n} bytes");
        }
        let mut p = good.clone();
        p[5] = p[5].wrapping_add(8);
        assert_eq!(parse(&p), None);
        // A multicast target.
        let (_, p) = solicit(a("fe80::9"), a("ff02::1"), PEER, true);
        assert_eq!(parse(&p), None);
        // From the unspecified address: only to a solicited-node group, without a
        // link-layer address.
        let (_, p) = solicit(Ipv6Address::UNSPECIFIED, a("fe80::1"), PEER, false);
        assert_eq!(parse(&p), None);
        // A solicited advertisement to a multicast group.
        let repr = NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED,
            target_addr: a("fe80::1"),
            lladdr: None,
        };
        assert_eq!(
            parse(&packet(a("fe80::1"), IPV6_LINK_LOCAL_ALL_NODES, repr)),
            None
        );
        // Garbage.
        for len in [0usize, 1, 39, 40, 64, 100] {
            let mut p = vec![0xa5u8; len];
            if len > 7 {
                p[0] = 0x60;
                p[6] = 58;
                p[7] = 255;
            }
            assert_eq!(parse(&p), None);
        }
    }
}
