//! The interface ioctls any socket answers (`netdevice(7)`): `SIOCGIFCONF`,
//! `SIOCGIFNAME`, `SIOCGIFINDEX`, `SIOCGIFFLAGS`, `SIOCGIFADDR`, `SIOCGIFNETMASK`,
//! `SIOCGIFBRDADDR`, `SIOCGIFMTU`, `SIOCGIFHWADDR`, `SIOCGIFTXQLEN`, from the
//! sandbox's interfaces (`iface.rs`). Changing an interface is not allowed (`EPERM`).
#![deny(unsafe_code)]

use super::iface::{self, Iface};
use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::{errno, return_errno};
use smoltcp::wire::IpAddress;

const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;
/// The `SIOCS*` requests that change an interface.
const SETTERS: [u32; 11] = [
    0x8914, 0x8916, 0x8918, 0x891a, 0x891c, 0x891e, 0x8922, 0x8924, 0x8934, 0x8943, 0x8923,
];

/// `sizeof(struct ifreq)`; its name is the first `IFNAMSIZ` bytes.
const IFREQ: usize = 40;
const IFNAMSIZ: usize = 16;

/// `struct sockaddr_in` for an IPv4 address (`0.0.0.0` otherwise).
fn sockaddr_in(a: Option<IpAddress>) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    if let Some(IpAddress::Ipv4(a)) = a {
        v[4..8].copy_from_slice(&a.octets());
    }
    v
}

fn v4_of(i: &Iface) -> Option<iface::IfAddr> {
    iface::addresses()
        .into_iter()
        .find(|a| a.index == i.index && matches!(a.addr, IpAddress::Ipv4(_)))
}

/// An ioctl that is not a socket's own: the interface requests, or `ENOTTY`.
pub fn ioctl(task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
    if cmd == SIOCGIFCONF {
        return ifconf(task, arg);
    }
    if SETTERS.contains(&cmd) {
        return_errno!(EPERM);
    }
    if ![
        SIOCGIFNAME,
        SIOCGIFFLAGS,
        SIOCGIFADDR,
        SIOCGIFBRDADDR,
        SIOCGIFNETMASK,
        SIOCGIFMTU,
        SIOCGIFHWADDR,
        SIOCGIFINDEX,
        SIOCGIFTXQLEN,
    ]
    .contains(&cmd)
    {
        return_errno!(ENOTTY);
    }
    let mut req = [0u8; IFREQ];
    task.copy_in(arg, &mut req)?;
    let int_at = |v: i32, req: &mut [u8; IFREQ]| req[16..20].copy_from_slice(&v.to_ne_bytes());
    if cmd == SIOCGIFNAME {
        let index = i32::from_ne_bytes([req[16], req[17], req[18], req[19]]);
        let i = u32::try_from(index)
            .ok()
            .and_then(iface::by_index)
            .ok_or(errno!(ENODEV))?;
        req[..IFNAMSIZ].fill(0);
        req[..i.name.len()].copy_from_slice(i.name.as_bytes());
        task.copy_out(arg, &req)?;
        return Ok(0);
    }
    let name_len = req[..IFNAMSIZ]
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(IFNAMSIZ);
    let i = iface::by_name(&req[..name_len]).ok_or(errno!(ENODEV))?;
    req[16..].fill(0);
    match cmd {
        SIOCGIFFLAGS => req[16..18].copy_from_slice(&(i.flags as u16).to_ne_bytes()),
        SIOCGIFINDEX => int_at(i.index as i32, &mut req),
        SIOCGIFMTU => int_at(i.mtu as i32, &mut req),
        SIOCGIFTXQLEN => int_at(i.txqlen as i32, &mut req),
        SIOCGIFHWADDR => {
            req[16..18].copy_from_slice(&i.arphrd.to_ne_bytes());
            req[18..24].copy_from_slice(&i.hwaddr);
        }
        SIOCGIFADDR | SIOCGIFNETMASK | SIOCGIFBRDADDR => {
            let a = v4_of(&i).ok_or(errno!(EADDRNOTAVAIL))?;
            let v = match cmd {
                SIOCGIFADDR => Some(a.addr),
                SIOCGIFNETMASK => {
                    let bits = u32::MAX
                        .checked_shl(32 - u32::from(a.prefix.min(32)))
                        .unwrap_or(0);
                    Some(IpAddress::Ipv4(bits.to_be_bytes().into()))
                }
                // Loopback has no broadcast address.
                _ => None,
            };
            req[16..32].copy_from_slice(&sockaddr_in(v));
        }
        _ => return_errno!(ENOTTY),
    }
    task.copy_out(arg, &req)?;
    Ok(0)
}

/// `SIOCGIFCONF`: an `ifreq` per IPv4 address; with no buffer, the length needed.
fn ifconf(task: &Task, arg: UserAddr) -> Result<u64> {
    let mut conf = [0u8; 16];
    task.copy_in(arg, &mut conf)?;
    let len = i32::from_ne_bytes([conf[0], conf[1], conf[2], conf[3]]);
    let buf = u64::from_ne_bytes(conf[8..16].try_into().map_err(|_| errno!(EINVAL))?);
    let mut out = Vec::new();
    for a in iface::addresses() {
        if !matches!(a.addr, IpAddress::Ipv4(_)) {
            continue;
        }
        let mut req = [0u8; IFREQ];
        let n = a.label.len().min(IFNAMSIZ - 1);
        req[..n].copy_from_slice(&a.label.as_bytes()[..n]);
        req[16..32].copy_from_slice(&sockaddr_in(Some(a.addr)));
        out.extend_from_slice(&req);
    }
    let written = if buf == 0 {
        out.len()
    } else {
        let room = usize::try_from(len).unwrap_or(0) / IFREQ * IFREQ;
        let n = room.min(out.len());
        if n > 0 {
            task.copy_out(UserAddr(buf), out.get(..n).ok_or(errno!(EINVAL))?)?;
        }
        n
    };
    task.write_obj(arg, &(written as i32))?;
    Ok(0)
}
