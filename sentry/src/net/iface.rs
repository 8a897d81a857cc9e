//! The sandbox's network interfaces, addresses and routes as the application sees them
//! (netlink's `RTM_GETLINK`/`RTM_GETADDR`/`RTM_GETROUTE` and the `SIOCGIF*` ioctls).
//! With `--network=none` that is the loopback interface alone, configured as Linux
//! configures `lo` in a new network namespace once it is up.
#![deny(unsafe_code)]

use smoltcp::wire::IpAddress;

/// `IFF_*` interface flags.
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_RUNNING: u32 = 0x40;
pub const IFF_LOWER_UP: u32 = 0x10000;
/// `ARPHRD_LOOPBACK`.
pub const ARPHRD_LOOPBACK: u16 = 772;
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
    pub oif: u32,
}

const LO: u32 = 1;

pub fn interfaces() -> Vec<Iface> {
    vec![Iface {
        index: LO,
        name: "lo",
        flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
        mtu: super::inet::LO_MTU as u32,
        arphrd: ARPHRD_LOOPBACK,
        hwaddr: [0; 6],
        txqlen: 1000,
        qdisc: "noqueue",
        operstate: 0,
    }]
}

pub fn addresses() -> Vec<IfAddr> {
    vec![
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
    ]
}

/// The kernel's routes for `lo` (`ip route show table all` in a fresh namespace).
pub fn routes() -> Vec<Route> {
    let lo4 = IpAddress::v4(127, 0, 0, 1);
    let local = |dst, dst_len, rtype, scope, prefsrc| Route {
        dst,
        dst_len,
        table: 255,
        protocol: 2,
        scope,
        rtype,
        prefsrc,
        oif: LO,
    };
    vec![
        local(IpAddress::v4(127, 0, 0, 0), 8, 2, RT_SCOPE_HOST, Some(lo4)),
        local(lo4, 32, 2, RT_SCOPE_HOST, Some(lo4)),
        local(
            IpAddress::v4(127, 255, 255, 255),
            32,
            3,
            RT_SCOPE_LINK,
            Some(lo4),
        ),
        local(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1), 128, 2, 0, None),
    ]
}

pub fn by_index(index: u32) -> Option<Iface> {
    interfaces().into_iter().find(|i| i.index == index)
}

pub fn by_name(name: &[u8]) -> Option<Iface> {
    interfaces().into_iter().find(|i| i.name.as_bytes() == name)
}
