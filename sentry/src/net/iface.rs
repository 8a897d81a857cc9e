//! The sandbox's network interfaces, addresses and routes as the application sees them
//! (netlink's `RTM_GETLINK`/`RTM_GETADDR`/`RTM_GETROUTE` and the `SIOCGIF*` ioctls).
//! With `--network=none` that is the loopback interface alone, configured as Linux
//! configures `lo` in a new network namespace once it is up; with `--network=sandbox` the
//! interface the sandbox took over follows it (`inet/packet.rs`), with its addresses and
//! the routes Linux shows for them.
#![deny(unsafe_code)]

use super::inet::packet::{is_link_local, LinkDesc, LINK_INDEX};
use smoltcp::wire::{IpAddress, Ipv4Cidr};

/// `IFF_*` interface flags.
pub const IFF_UP: u32 = 0x1;
pub const IFF_BROADCAST: u32 = 0x2;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_MULTICAST: u32 = 0x1000;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x10000;
/// `ARPHRD_LOOPBACK`.
pub const ARPHRD_LOOPBACK: u16 = 772;
/// `ARPHRD_ETHER`.
pub const ARPHRD_ETHER: u16 = 1;
/// `IF_OPER_UP`.
const IF_OPER_UP: u8 = 6;
/// `RT_SCOPE_UNIVERSE`.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_*`.
pub const RT_SCOPE_HOST: u8 = 254;
pub const RT_SCOPE_LINK: u8 = 253;
/// `IFA_F_PERMANENT`.
pub const IFA_F_PERMANENT: u32 = 0x80;

pub struct Iface {
    pub index: u32,
    pub name: &'static str,
    pub flags: u32,
    pub mtu: u32,
    pub arphrd: u16,
    pub hwaddr: [u8; 6],
    pub txqlen: u32,
    pub qdisc: &'static str,
    /// `IF_OPER_*`: loopback is "unknown".
    pub operstate: u8,
}

pub struct IfAddr {
    pub index: u32,
    pub addr: IpAddress,
    pub prefix: u8,
    pub scope: u8,
    pub flags: u32,
    pub label: &'static str,
}

pub struct Route {
    pub dst: IpAddress,
    pub dst_len: u8,
    /// `RT_TABLE_LOCAL` (255) or `RT_TABLE_MAIN` (254).
    pub table: u8,
    /// `RTPROT_KERNEL`.
    pub protocol: u8,
    pub scope: u8,
    /// `RTN_LOCAL` (2), `RTN_BROADCAST` (3), `RTN_UNICAST` (1).
    pub rtype: u8,
    pub prefsrc: Option<IpAddress>,
    /// `RTA_GATEWAY`.
    pub gateway: Option<IpAddress>,
    pub oif: u32,
}

const LO: u32 = 1;

pub fn interfaces() -> Vec<Iface> {
    let mut v = vec![Iface {
        index: LO,
        name: "lo",
        flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
        mtu: super::inet::LO_MTU as u32,
        arphrd: ARPHRD_LOOPBACK,
        hwaddr: [0; 6],
        txqlen: 1000,
        qdisc: "noqueue",
        operstate: 0,
    }];
    if let Some(l) = link() {
        v.push(Iface {
            index: LINK_INDEX,
            name: &l.name,
            flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
            mtu: l.mtu,
            arphrd: ARPHRD_ETHER,
            hwaddr: l.mac,
            txqlen: 1000,
            qdisc: "noqueue",
            operstate: IF_OPER_UP,
        });
    }
    v
}

/// The link of `--network=sandbox`, if this sandbox has one.
fn link() -> Option<&'static LinkDesc> {
    if super::mode() != super::NetworkMode::Sandbox {
        return None;
    }
    super::inet::packet::desc()
}

pub fn addresses() -> Vec<IfAddr> {
    let mut v = vec![
        IfAddr {
            index: LO,
            addr: IpAddress::v4(127, 0, 0, 1),
            prefix: 8,
            scope: RT_SCOPE_HOST,
            flags: IFA_F_PERMANENT,
            label: "lo",
        },
        IfAddr {
            index: LO,
            addr: IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1),
            prefix: 128,
            scope: RT_SCOPE_HOST,
            flags: IFA_F_PERMANENT,
            label: "lo",
        },
    ];
    if let Some(l) = link() {
        for (a, prefix) in &l.addrs {
            v.push(IfAddr {
                index: LINK_INDEX,
                addr: IpAddress::from(*a),
                prefix: *prefix,
                scope: scope_of(IpAddress::from(*a)),
                flags: IFA_F_PERMANENT,
                label: &l.name,
            });
        }
    }
    v
}

/// An address's `RT_SCOPE_*`: link for IPv6 link-local ones.
fn scope_of(a: IpAddress) -> u8 {
    match a {
        IpAddress::Ipv6(v6) if is_link_local(v6) => RT_SCOPE_LINK,
        _ => RT_SCOPE_UNIVERSE,
    }
}

/// The kernel's routes for `lo` (`ip route show table all` in a fresh namespace), and
/// for the link: its subnets, the routes read from the namespace, and the local table's
/// entries for its addresses.
pub fn routes() -> Vec<Route> {
    let lo4 = IpAddress::v4(127, 0, 0, 1);
    let route = |table, dst, dst_len, rtype, scope, prefsrc, oif| Route {
        dst,
        dst_len,
        table,
        protocol: 2,
        scope,
        rtype,
        prefsrc,
        gateway: None,
        oif,
    };
    let local =
        |dst, dst_len, rtype, scope, prefsrc| route(255, dst, dst_len, rtype, scope, prefsrc, LO);
    let mut v = Vec::new();
    if let Some(l) = link() {
        for r in &l.routes {
            let dst = IpAddress::from(r.dst);
            let v4 = matches!(dst, IpAddress::Ipv4(_));
            // IPv4 subnets have the address on them as their source; IPv6 routes have
            // none and are all of universe scope.
            let prefsrc = match dst {
                IpAddress::Ipv4(dst) if r.gateway.is_none() => l.addrs.iter().find_map(|(a, p)| {
                    let std::net::IpAddr::V4(a) = *a else {
                        return None;
                    };
                    Ipv4Cidr::new(a, (*p).min(32))
                        .contains_addr(&dst)
                        .then_some(IpAddress::Ipv4(a))
                }),
                _ => None,
            };
            v.push(Route {
                // RTPROT_BOOT for what was configured; RTPROT_KERNEL for subnets.
                protocol: if r.gateway.is_some() { 3 } else { 2 },
                gateway: r.gateway.map(IpAddress::from),
                prefsrc,
                ..route(
                    254,
                    dst,
                    r.dst_len,
                    1,
                    if r.gateway.is_none() && v4 {
                        RT_SCOPE_LINK
                    } else {
                        RT_SCOPE_UNIVERSE
                    },
                    None,
                    LINK_INDEX,
                )
            });
        }
    }
    v.extend([
        local(IpAddress::v4(127, 0, 0, 0), 8, 2, RT_SCOPE_HOST, Some(lo4)),
        local(lo4, 32, 2, RT_SCOPE_HOST, Some(lo4)),
        local(
            IpAddress::v4(127, 255, 255, 255),
            32,
            3,
            RT_SCOPE_LINK,
            Some(lo4),
        ),
    ]);
    if let Some(l) = link() {
        for (a, p) in &l.addrs {
            let std::net::IpAddr::V4(a4) = *a else {
                continue;
            };
            let me = IpAddress::Ipv4(a4);
            v.push(route(255, me, 32, 2, RT_SCOPE_HOST, Some(me), LINK_INDEX));
            if let Some(b) = Ipv4Cidr::new(a4, (*p).min(32)).broadcast() {
                v.push(route(
                    255,
                    IpAddress::Ipv4(b),
                    32,
                    3,
                    RT_SCOPE_LINK,
                    Some(me),
                    LINK_INDEX,
                ));
            }
        }
    }
    v.push(local(
        IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1),
        128,
        2,
        0,
        None,
    ));
    // The link's IPv6 addresses are local on the link (Linux's `local ADDR dev eth0
    // table local`), and its multicast route (`multicast ff00::/8`, `RTN_MULTICAST`).
    if let Some(l) = link() {
        let mut any = false;
        for (a, _) in &l.addrs {
            if let std::net::IpAddr::V6(a6) = *a {
                let me = IpAddress::Ipv6(a6);
                v.push(route(255, me, 128, 2, RT_SCOPE_UNIVERSE, None, LINK_INDEX));
                any = true;
            }
        }
        if any {
            v.push(route(
                255,
                IpAddress::v6(0xff00, 0, 0, 0, 0, 0, 0, 0),
                8,
                5,
                RT_SCOPE_UNIVERSE,
                None,
                LINK_INDEX,
            ));
        }
    }
    v
}

pub fn by_index(index: u32) -> Option<Iface> {
    interfaces().into_iter().find(|i| i.index == index)
}

pub fn by_name(name: &[u8]) -> Option<Iface> {
    interfaces().into_iter().find(|i| i.name.as_bytes() == name)
}
