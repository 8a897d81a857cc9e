//! The host calls of `--network=sandbox` setup that nix has no safe form for: a packet
//! socket bound to one interface, and its multicast memberships.

use anyhow::Context;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `PACKET_IGNORE_OUTGOING` (Linux 4.20): the libc crate lacks it.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// What the socket may queue: a burst of full-size frames from a fast peer.
const RCVBUF: libc::c_int = 4 << 20;

/// An `AF_PACKET`/`SOCK_RAW` socket for every protocol, bound to interface `index`,
/// non-blocking, that does not see its own frames.
pub fn packet_socket(index: u32) -> anyhow::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) takes plain integers; the returned descriptor is checked and
    // owned by the OwnedFd alone.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::c_int::from(proto),
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET, SOCK_RAW)");
    }
    // SAFETY: `raw` is a descriptor this process just made and owns nowhere else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ifindex = libc::c_int::try_from(index).context("interface index")?;
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value of it.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    // SAFETY: `sll` is a sockaddr_ll of the size passed, read by the kernel during the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("binding the packet socket");
    }
    setsockopt_int(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        .context("PACKET_IGNORE_OUTGOING")?;
    // Best effort: without CAP_NET_ADMIN the default size stays.
    let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF);
    let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, RCVBUF);
    Ok(fd)
}

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: the option value is an int that lives across the call, of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Make the packet socket a member of the Ethernet multicast group `mac` on interface
/// `index` (`PACKET_ADD_MEMBERSHIP`, `PACKET_MR_MULTICAST`): the interface then passes
/// frames sent to it, for as long as the socket lives.
pub fn join_multicast(fd: &OwnedFd, index: u32, mac: [u8; 6]) -> anyhow::Result<()> {
    let ifindex = libc::c_int::try_from(index).context("interface index")?;
    let mut address = [0u8; 8];
    address[..6].copy_from_slice(&mac);
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex,
        mr_type: libc::PACKET_MR_MULTICAST as libc::c_ushort,
        mr_alen: 6,
        mr_address: address,
    };
    // SAFETY: the option value is a packet_mreq that lives across the call, of the size
    // passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("PACKET_ADD_MEMBERSHIP");
    }
    Ok(())
}
