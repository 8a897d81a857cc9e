//! `/proc/net/*` from the sentry's own state, in Linux's formats, so that `ss`, `netstat`,
//! `route` and `ifconfig` read the sandbox's sockets and interfaces: `dev`, `tcp`, `tcp6`,
//! `udp`, `udp6`, `route`, `ipv6_route`, `if_inet6`, and `unix` (its header only: Unix sockets are not
//! listed yet). With `--network=host` the inet tables are empty: the sockets are the
//! host's.
#![deny(unsafe_code)]

use super::iface;
use super::inet::stack::{self, SockRow};
use smoltcp::wire::IpAddress;

/// What makes one file's contents.
pub type Maker = fn() -> Vec<u8>;

/// The files, by name, and what makes each.
pub const FILES: &[(&str, Maker)] = &[
    ("dev", dev),
    ("tcp", || sockets(libc::AF_INET, true)),
    ("tcp6", || sockets(libc::AF_INET6, true)),
    ("udp", || sockets(libc::AF_INET, false)),
    ("udp6", || sockets(libc::AF_INET6, false)),
    ("route", route),
    ("ipv6_route", ipv6_route),
    ("if_inet6", if_inet6),
    ("unix", unix),
];

fn stack_in_use() -> bool {
    super::mode() != super::NetworkMode::Host
}

/// `/proc/net/dev`: loopback counts what it carried both ways.
fn dev() -> Vec<u8> {
    let mut out = String::from(
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    let ((lo_p, lo_b), link) = if stack_in_use() {
        stack::peek(|st| st.dev_counts())
    } else {
        ((0, 0), None)
    };
    for i in iface::interfaces() {
        let (rb, rp, tb, tp, td) = if i.index == 1 {
            (lo_b, lo_p, lo_b, lo_p, 0)
        } else {
            link.map_or((0, 0, 0, 0, 0), |c| {
                (
                    c.rx_bytes,
                    c.rx_packets,
                    c.tx_bytes,
                    c.tx_packets,
                    c.tx_dropped,
                )
            })
        };
        out.push_str(&format!(
            "{:>6}: {rb:>7} {rp:>7}    0    0    0     0          0         0 {tb:>8} {tp:>7}    0 {td:>4}    0     0       0          0\n",
            i.name
        ));
    }
    out.into_bytes()
}

/// An IPv4 address as Linux prints it in these files: the network-order bytes read as a
/// native (little-endian) word.
fn hex4(o: [u8; 4]) -> String {
    format!("{:08X}", u32::from_ne_bytes(o))
}

fn hex6(o: [u8; 16]) -> String {
    o.chunks_exact(4)
        .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// An address for a socket of `family`: IPv4 ones of an `AF_INET6` socket are shown
/// v4-mapped, as Linux keeps them.
fn addr(family: i32, a: Option<IpAddress>) -> String {
    match (family, a) {
        (libc::AF_INET, Some(IpAddress::Ipv4(v))) => hex4(v.octets()),
        (libc::AF_INET, _) => hex4([0; 4]),
        (_, Some(IpAddress::Ipv6(v))) => hex6(v.octets()),
        (_, Some(IpAddress::Ipv4(v))) => hex6(v.to_ipv6_mapped().octets()),
        (_, None) => hex6([0; 16]),
    }
}

fn sockets(family: i32, tcp: bool) -> Vec<u8> {
    let mut out = if family == libc::AF_INET {
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            .to_string()
    } else {
        "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n".to_string()
    };
    let rows: Vec<SockRow> = if stack_in_use() {
        stack::peek(|st| st.rows())
    } else {
        Vec::new()
    };
    for (n, r) in rows
        .iter()
        .filter(|r| r.family == family && r.tcp == tcp)
        .enumerate()
    {
        let (raddr, rport) = r.remote.map_or((None, 0), |e| (Some(e.addr), e.port));
        out.push_str(&format!(
            "{n:>4}: {}:{:04X} {}:{:04X} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:>5} {:>8} {} 1 0000000000000000 100 0 0 10 0\n",
            addr(family, r.local.0),
            r.local.1,
            addr(family, raddr),
            rport,
            r.state,
            r.txq,
            r.rxq,
            r.uid,
            0,
            r.ino
        ));
    }
    out.into_bytes()
}

/// `/proc/net/route`: the main table's IPv4 routes.
fn route() -> Vec<u8> {
    let mut out = String::from(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
    );
    let names = iface::interfaces();
    for r in iface::routes() {
        let (IpAddress::Ipv4(dst), true) = (r.dst, r.table == 254) else {
            continue;
        };
        let Some(name) = names.iter().find(|i| i.index == r.oif).map(|i| i.name) else {
            continue;
        };
        let gw = match r.gateway {
            Some(IpAddress::Ipv4(g)) => g.octets(),
            _ => [0; 4],
        };
        let mask = u32::MAX
            .checked_shl(32 - u32::from(r.dst_len.min(32)))
            .unwrap_or(0)
            .to_be_bytes();
        // RTF_UP, and RTF_GATEWAY for a route through one.
        let flags = 1 | if r.gateway.is_some() { 2 } else { 0 };
        out.push_str(&format!(
            "{name}\t{}\t{}\t{flags:04X}\t0\t0\t0\t{}\t0\t0\t0\n",
            hex4(dst.octets()),
            hex4(gw),
            hex4(mask)
        ));
    }
    out.into_bytes()
}

/// An IPv6 address as `ipv6_route` and `if_inet6` print it: its bytes in order.
fn hex6_plain(o: [u8; 16]) -> String {
    o.iter().map(|b| format!("{b:02x}")).collect()
}

/// `/proc/net/ipv6_route`: the IPv6 routes of every table (destination, prefix length,
/// source and its length, next hop, metric, reference and use counts, flags, device).
fn ipv6_route() -> Vec<u8> {
    let mut out = String::new();
    let names = iface::interfaces();
    let none = hex6_plain([0; 16]);
    for r in iface::routes() {
        let IpAddress::Ipv6(dst) = r.dst else {
            continue;
        };
        let Some(name) = names.iter().find(|i| i.index == r.oif).map(|i| i.name) else {
            continue;
        };
        let gw = match r.gateway {
            Some(IpAddress::Ipv6(g)) => g.octets(),
            _ => [0; 16],
        };
        // RTF_UP, with RTF_GATEWAY through a gateway; local entries RTF_LOCAL and
        // RTF_NONEXTHOP too.
        let flags: u32 = match (r.rtype, r.gateway) {
            (2, _) => 0x8020_0001,
            (_, Some(_)) => 0x3,
            _ => 0x1,
        };
        out.push_str(&format!(
            "{} {:02x} {none} 00 {} 00000000 00000000 00000000 {flags:08x} {name:>8}\n",
            hex6_plain(dst.octets()),
            r.dst_len,
            hex6_plain(gw),
        ));
    }
    out.into_bytes()
}

/// `/proc/net/if_inet6`: address, interface index, prefix length, scope, flags, name.
fn if_inet6() -> Vec<u8> {
    let mut out = String::new();
    for a in iface::addresses() {
        let IpAddress::Ipv6(v) = a.addr else { continue };
        // IPV6_ADDR_LOOPBACK is 0x10 in this file's scope column, IPV6_ADDR_LINKLOCAL
        // 0x20.
        let scope = if v.is_loopback() {
            0x10
        } else if crate::net::inet::packet::is_link_local(v) {
            0x20
        } else {
            0
        };
        let hex = hex6_plain(v.octets());
        out.push_str(&format!(
            "{hex} {:02x} {:02x} {scope:02x} {:02x} {:>8}\n",
            a.index, a.prefix, a.flags, a.label
        ));
    }
    out.into_bytes()
}

fn unix() -> Vec<u8> {
    b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_linux_does() {
        assert_eq!(hex4([127, 0, 0, 1]), "0100007F");
        assert_eq!(
            addr(libc::AF_INET6, Some(IpAddress::v6(0, 0, 0, 0, 0, 0, 0, 1))),
            "00000000000000000000000001000000"
        );
    }

    #[test]
    fn loopback_routes_and_addresses() {
        let v6 = String::from_utf8(if_inet6()).unwrap();
        assert!(v6.starts_with("00000000000000000000000000000001 01 80 10 80"));
        let r = String::from_utf8(route()).unwrap();
        assert!(r.starts_with("Iface\tDestination"));
        let r6 = String::from_utf8(ipv6_route()).unwrap();
        assert!(
            r6.starts_with(
                "00000000000000000000000000000001 80 00000000000000000000000000000000 00 \
                 00000000000000000000000000000000 00000000 00000000 00000000 80200001       lo\n"
            ),
            "{r6}"
        );
    }
}
