//! `sockaddr_in` and `sockaddr_in6` (ip(7), ipv6(7)), and the rules for which bound
//! addresses overlap. Inside the stack an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
//! kept as the IPv4 address it maps, so that a dual-stack `AF_INET6` socket and an
//! `AF_INET` one talk over the same IPv4 packets, as in Linux.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::{errno, return_errno};
use smoltcp::wire::{IpAddress, Ipv4Address, Ipv6Address};

/// `sizeof(struct sockaddr_in)`.
pub const SIN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SIN6_LEN: usize = 28;
/// The shortest `sockaddr_in6` Linux takes (RFC 2133's, without `sin6_scope_id`).
const SIN6_LEN_RFC2133: usize = 24;

/// An address given to bind, connect or sendto.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// `AF_UNSPEC`: "dissolve the association" for connect.
    Unspec,
    /// `addr` is `None` for the wildcard (`INADDR_ANY`, `::`).
    Addr { addr: Option<IpAddress>, port: u16 },
}

fn u16_at(raw: &[u8], at: usize) -> Result<[u8; 2]> {
    raw.get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .ok_or(errno!(EINVAL))
}

/// The family field of a raw `sockaddr`.
pub fn family_of(raw: &[u8]) -> Result<i32> {
    Ok(i32::from(u16::from_ne_bytes(u16_at(raw, 0)?)))
}

/// A v4-mapped IPv6 address as its IPv4 address; the wildcard as `None`.
pub fn canonical(a: IpAddress) -> Option<IpAddress> {
    match a {
        IpAddress::Ipv4(v4) if v4.is_unspecified() => None,
        IpAddress::Ipv6(v6) if v6.is_unspecified() => None,
        IpAddress::Ipv6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some(IpAddress::Ipv4(v4)),
            None => Some(a),
        },
        a => Some(a),
    }
}

/// Decode `raw` for a socket of `family` (Linux's `inet_bind`/`inet6_bind` checks: a
/// short address is `EINVAL`, another family `EAFNOSUPPORT`).
pub fn parse(family: i32, raw: &[u8]) -> Result<Parsed> {
    if raw.len() < 2 {
        return_errno!(EINVAL);
    }
    let fam = family_of(raw)?;
    if fam == libc::AF_UNSPEC {
        // Linux takes AF_UNSPEC with INADDR_ANY as AF_INET in bind, for old programs;
        // the callers decide what it means.
        return Ok(Parsed::Unspec);
    }
    if family == libc::AF_INET {
        if raw.len() < SIN_LEN {
            return_errno!(EINVAL);
        }
        if fam != libc::AF_INET {
            return_errno!(EAFNOSUPPORT);
        }
        let port = u16::from_be_bytes(u16_at(raw, 2)?);
        let a: [u8; 4] = raw
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(errno!(EINVAL))?;
        return Ok(Parsed::Addr {
            addr: canonical(IpAddress::Ipv4(Ipv4Address::from(a))),
            port,
        });
    }
    if raw.len() < SIN6_LEN_RFC2133 {
        return_errno!(EINVAL);
    }
    if fam != libc::AF_INET6 {
        return_errno!(EAFNOSUPPORT);
    }
    let port = u16::from_be_bytes(u16_at(raw, 2)?);
    let a: [u8; 16] = raw
        .get(8..24)
        .and_then(|b| b.try_into().ok())
        .ok_or(errno!(EINVAL))?;
    Ok(Parsed::Addr {
        addr: canonical(IpAddress::Ipv6(Ipv6Address::from(a))),
        port,
    })
}

/// The unspecified `sockaddr` of `family`'s kind with `addr`'s bytes (`None`: wildcard).
pub fn encode(family: i32, addr: Option<IpAddress>, port: u16) -> Vec<u8> {
    if family == libc::AF_INET {
        let mut v = vec![0u8; SIN_LEN];
        v[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v[2..4].copy_from_slice(&port.to_be_bytes());
        if let Some(IpAddress::Ipv4(a)) = addr {
            v[4..8].copy_from_slice(&a.octets());
        }
        return v;
    }
    let mut v = vec![0u8; SIN6_LEN];
    v[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    v[2..4].copy_from_slice(&port.to_be_bytes());
    let a = match addr {
        Some(IpAddress::Ipv4(a)) => a.to_ipv6_mapped(),
        Some(IpAddress::Ipv6(a)) => a,
        None => Ipv6Address::UNSPECIFIED,
    };
    v[8..24].copy_from_slice(&a.octets());
    // A link-local address is on the link (`--network=sandbox`'s only interface): Linux
    // names it in `sin6_scope_id`.
    if super::packet::is_link_local(a) {
        v[24..28].copy_from_slice(&super::packet::LINK_INDEX.to_ne_bytes());
    }
    v
}

/// Whether a socket bound to the wildcard in `family` takes packets of `v4`-ness.
pub fn wildcard_covers(family: i32, v6only: bool, v4: bool) -> bool {
    if family == libc::AF_INET {
        v4
    } else {
        !v4 || !v6only
    }
}

/// One socket's claim on a port, for bind's `EADDRINUSE` checks.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub family: i32,
    pub v6only: bool,
    pub addr: Option<IpAddress>,
}

/// Whether two claims on one port name a common address.
pub fn overlaps(a: &Claim, b: &Claim) -> bool {
    let v4 = |x: &IpAddress| matches!(x, IpAddress::Ipv4(_));
    match (a.addr, b.addr) {
        (Some(x), Some(y)) => x == y,
        (Some(x), None) => wildcard_covers(b.family, b.v6only, v4(&x)),
        (None, Some(y)) => wildcard_covers(a.family, a.v6only, v4(&y)),
        (None, None) => [true, false].iter().any(|&v| {
            wildcard_covers(a.family, a.v6only, v) && wildcard_covers(b.family, b.v6only, v)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_ipv4_inside() {
        let lo = Ipv4Address::new(127, 0, 0, 1);
        let raw = encode(libc::AF_INET6, Some(IpAddress::Ipv4(lo)), 80);
        assert_eq!(raw.len(), SIN6_LEN);
        assert_eq!(
            parse(libc::AF_INET6, &raw).ok(),
            Some(Parsed::Addr {
                addr: Some(IpAddress::Ipv4(lo)),
                port: 80
            })
        );
        let any = encode(libc::AF_INET, None, 7);
        assert_eq!(
            parse(libc::AF_INET, &any).ok(),
            Some(Parsed::Addr {
                addr: None,
                port: 7
            })
        );
    }

    #[test]
    fn link_local_addresses_have_the_link_as_scope() {
        let a = "fe80::1".parse::<Ipv6Address>().unwrap();
        let v = encode(libc::AF_INET6, Some(IpAddress::Ipv6(a)), 80);
        assert_eq!(v[24..28], 2u32.to_ne_bytes());
        let v = encode(
            libc::AF_INET6,
            Some(IpAddress::v6(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            80,
        );
        assert_eq!(v[24..28], [0; 4]);
    }

    #[test]
    fn short_or_foreign_addresses_fail() {
        let raw = encode(libc::AF_INET, None, 1);
        assert_eq!(
            parse(libc::AF_INET, &raw[..8]).map_err(|e| e.errno),
            Err(crate::Errno::EINVAL)
        );
        assert_eq!(
            parse(libc::AF_INET6, &encode(libc::AF_INET6, None, 1)[..20]).map_err(|e| e.errno),
            Err(crate::Errno::EINVAL)
        );
        let mut v6 = encode(libc::AF_INET6, None, 1);
        v6[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        assert_eq!(
            parse(libc::AF_INET6, &v6).map_err(|e| e.errno),
            Err(crate::Errno::EAFNOSUPPORT)
        );
    }

    #[test]
    fn dual_stack_wildcards_overlap_ipv4() {
        let v4any = Claim {
            family: libc::AF_INET,
            v6only: false,
            addr: None,
        };
        let v6any = Claim {
            family: libc::AF_INET6,
            v6only: false,
            addr: None,
        };
        let v6only = Claim {
            v6only: true,
            ..v6any
        };
        let lo = Claim {
            family: libc::AF_INET,
            v6only: false,
            addr: Some(IpAddress::v4(127, 0, 0, 1)),
        };
        assert!(overlaps(&v4any, &v6any));
        assert!(!overlaps(&v4any, &v6only));
        assert!(overlaps(&lo, &v6any));
        assert!(!overlaps(&lo, &v6only));
    }
}
