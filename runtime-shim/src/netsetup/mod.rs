//! `--network=sandbox` before confinement: read the network namespace the sandbox runs
//! in (`NETLINK_ROUTE`), take its interface over, and open the packet socket the sentry
//! moves frames through (see `sentry/src/net/inet/packet.rs`).
//!
//! Taking over means what runsc does: the interface's addresses (IPv4 and IPv6, link-local
//! ones too) are removed from the host interface, so the host kernel no longer answers for
//! them (the sentry does, ARP and neighbour discovery included), and routes through it go
//! with them. The packet socket joins the Ethernet multicast groups of neighbour discovery
//! (the solicited-node groups of the IPv6 addresses, which the host interface leaves with
//! them, and all-nodes), so that a NIC that filters multicast still passes them.
//! [`Removed::restore`] puts addresses and routes back (for `carapace do`, whose namespace
//! outlives the sandbox).

mod host;

use anyhow::{bail, Context};
use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use sentry::net::inet::packet::{LinkDesc, LinkRoute};
use std::net::{IpAddr as IpAddress, Ipv4Addr as Ipv4Address, Ipv6Addr as Ipv6Address};
use std::os::fd::OwnedFd;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_CACHEINFO: u16 = 6;
/// `IFA_F_DADFAILED`: another node on the link has the address.
const IFA_F_DADFAILED: u8 = 0x08;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const ARPHRD_ETHER: u16 = 1;
const IFF_UP: u32 = 0x1;

/// A `NETLINK_ROUTE` socket and the next sequence number.
struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

/// One netlink message: its type and its body (after the header).
struct Msg {
    ty: u16,
    body: Vec<u8>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The `rtattr`s in `b`: type and payload.
fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let (Some(len), Some(ty)) = (u16_at(b, at), u16_at(b, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        let Some(payload) = b.get(at + 4..at + len) else {
            break;
        };
        out.push((ty & 0x3fff, payload));
        at += (len + 3) & !3;
    }
    out
}

fn attr_bytes(ty: u16, payload: &[u8]) -> Vec<u8> {
    let len = 4 + payload.len();
    let mut v = Vec::with_capacity((len + 3) & !3);
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize((len + 3) & !3, 0);
    v
}

/// An address of `family` (`AF_INET`/`AF_INET6`) from its bytes.
fn ip(family: u8, b: &[u8]) -> Option<IpAddress> {
    if family == libc::AF_INET as u8 {
        let a: [u8; 4] = b.try_into().ok()?;
        Some(IpAddress::V4(Ipv4Address::from(a)))
    } else if family == libc::AF_INET6 as u8 {
        let a: [u8; 16] = b.try_into().ok()?;
        Some(IpAddress::V6(Ipv6Address::from(a)))
    } else {
        None
    }
}

/// An IPv6 address of link-local scope.
fn link_local(a: &IpAddress) -> bool {
    matches!(a, IpAddress::V6(v6) if sentry::net::inet::packet::is_link_local(*v6))
}

impl Rtnl {
    fn open() -> anyhow::Result<Rtnl> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .context("socket(AF_NETLINK, NETLINK_ROUTE)")?;
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &NetlinkAddr::new(0, 0),
        )
        .context("binding the netlink socket")?;
        Ok(Rtnl { fd, seq: 1 })
    }

    fn send(&mut self, ty: u16, flags: u16, body: &[u8]) -> anyhow::Result<u32> {
        self.seq += 1;
        let len = NLMSG_HDRLEN + body.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        send(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &m,
            MsgFlags::empty(),
        )
        .context("netlink send")?;
        Ok(self.seq)
    }

    /// The replies to request `seq` until `NLMSG_DONE` (a dump) or `NLMSG_ERROR` (an
    /// acknowledgement: an error if it carries one).
    fn replies(&mut self, seq: u32) -> anyhow::Result<Vec<Msg>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                &mut buf,
                MsgFlags::empty(),
            )
            .context("netlink recv")?;
            let mut at = 0usize;
            while let (Some(len), Some(ty), Some(mseq)) =
                (u32_at(&buf, at), u16_at(&buf, at + 4), u32_at(&buf, at + 8))
            {
                let len = len as usize;
                if len < NLMSG_HDRLEN || at + len > n {
                    break;
                }
                let body = buf.get(at + NLMSG_HDRLEN..at + len).unwrap_or(&[]);
                at += (len + 3) & !3;
                if mseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = u32_at(body, 0).map_or(0, |e| e as i32);
                        if err != 0 {
                            return Err(std::io::Error::from_raw_os_error(-err).into());
                        }
                        return Ok(out);
                    }
                    _ => out.push(Msg {
                        ty,
                        body: body.to_vec(),
                    }),
                }
            }
        }
    }

    fn dump(&mut self, ty: u16, family: u8, fixed_len: usize) -> anyhow::Result<Vec<Msg>> {
        let mut body = vec![0u8; fixed_len];
        if let Some(f) = body.first_mut() {
            *f = family;
        }
        let seq = self.send(ty, NLM_F_DUMP, &body)?;
        self.replies(seq)
    }

    /// A request that changes something; waits for its acknowledgement.
    fn change(&mut self, ty: u16, flags: u16, body: &[u8]) -> anyhow::Result<()> {
        let seq = self.send(ty, flags | NLM_F_ACK, body)?;
        self.replies(seq).map(drop)
    }
}

/// An interface as `RTM_GETLINK` shows it.
struct Link {
    index: u32,
    name: String,
    mac: [u8; 6],
    mtu: u32,
    up: bool,
    ether: bool,
}

fn links(nl: &mut Rtnl) -> anyhow::Result<Vec<Link>> {
    let mut out = Vec::new();
    for m in nl.dump(RTM_GETLINK, libc::AF_UNSPEC as u8, 16)? {
        if m.ty != RTM_NEWLINK {
            continue;
        }
        let (Some(arphrd), Some(index), Some(flags)) =
            (u16_at(&m.body, 2), u32_at(&m.body, 4), u32_at(&m.body, 8))
        else {
            continue;
        };
        let mut l = Link {
            index,
            name: String::new(),
            mac: [0; 6],
            mtu: 1500,
            up: flags & IFF_UP != 0,
            ether: arphrd == ARPHRD_ETHER,
        };
        for (ty, p) in attrs(m.body.get(16..).unwrap_or(&[])) {
            match ty {
                IFLA_IFNAME => {
                    l.name = String::from_utf8_lossy(p.split(|b| *b == 0).next().unwrap_or(&[]))
                        .into_owned()
                }
                IFLA_ADDRESS => {
                    if let Ok(mac) = p.try_into() {
                        l.mac = mac;
                    }
                }
                IFLA_MTU => l.mtu = u32_at(p, 0).unwrap_or(1500),
                _ => {}
            }
        }
        out.push(l);
    }
    Ok(out)
}

/// An address of the interface: what `RTM_GETADDR` said, kept whole to delete it and to
/// give it back. `ip` is `None` for what the sandbox does not serve (other families, an
/// IPv6 address that failed duplicate address detection).
struct Addr {
    ip: Option<(IpAddress, u8)>,
    body: Vec<u8>,
}

fn addrs_of(nl: &mut Rtnl, index: u32) -> anyhow::Result<Vec<Addr>> {
    let mut out = Vec::new();
    for m in nl.dump(RTM_GETADDR, libc::AF_UNSPEC as u8, 8)? {
        if m.ty != RTM_NEWADDR || u32_at(&m.body, 4) != Some(index) {
            continue;
        }
        let (family, prefix, flags) = match (m.body.first(), m.body.get(1), m.body.get(2)) {
            (Some(f), Some(p), Some(fl)) => (*f, *p, *fl),
            _ => continue,
        };
        let a = attrs(m.body.get(8..).unwrap_or(&[]));
        // IPv4 has the interface's own address in IFA_LOCAL (IFA_ADDRESS is the peer's
        // on a point-to-point link); IPv6 only IFA_ADDRESS.
        let local = a.iter().find(|(t, _)| *t == IFA_LOCAL);
        let addr = local.or_else(|| a.iter().find(|(t, _)| *t == IFA_ADDRESS));
        let ip = addr
            .and_then(|(_, p)| ip(family, p))
            .filter(|_| flags & IFA_F_DADFAILED == 0)
            .map(|ip| (ip, prefix));
        out.push(Addr { ip, body: m.body });
    }
    Ok(out)
}

/// A unicast route of the main table through the interface, kept whole to give it back.
struct RouteMsg {
    route: LinkRoute,
    body: Vec<u8>,
}

fn routes_of(nl: &mut Rtnl, index: u32) -> anyhow::Result<Vec<RouteMsg>> {
    let mut out = routes_of_family(nl, index, libc::AF_INET as u8)?;
    out.extend(routes_of_family(nl, index, libc::AF_INET6 as u8)?);
    Ok(out)
}

fn routes_of_family(nl: &mut Rtnl, index: u32, family: u8) -> anyhow::Result<Vec<RouteMsg>> {
    let mut out = Vec::new();
    for m in nl.dump(RTM_GETROUTE, family, 12)? {
        if m.ty != RTM_NEWROUTE || m.body.first() != Some(&family) {
            continue;
        }
        let (Some(&dst_len), Some(&table), Some(&rtype)) =
            (m.body.get(1), m.body.get(4), m.body.get(7))
        else {
            continue;
        };
        let a = attrs(m.body.get(12..).unwrap_or(&[]));
        let table = a
            .iter()
            .find(|(t, _)| *t == RTA_TABLE)
            .and_then(|(_, p)| u32_at(p, 0))
            .unwrap_or(u32::from(table));
        let oif = a
            .iter()
            .find(|(t, _)| *t == RTA_OIF)
            .and_then(|(_, p)| u32_at(p, 0));
        if table != RT_TABLE_MAIN || rtype != RTN_UNICAST || oif != Some(index) {
            continue;
        }
        let unspecified = if family == libc::AF_INET as u8 {
            IpAddress::V4(Ipv4Address::UNSPECIFIED)
        } else {
            IpAddress::V6(Ipv6Address::UNSPECIFIED)
        };
        let dst = a
            .iter()
            .find(|(t, _)| *t == RTA_DST)
            .and_then(|(_, p)| ip(family, p))
            .unwrap_or(unspecified);
        let gateway = a
            .iter()
            .find(|(t, _)| *t == RTA_GATEWAY)
            .and_then(|(_, p)| ip(family, p));
        out.push(RouteMsg {
            route: LinkRoute {
                dst,
                dst_len,
                gateway,
            },
            body: m.body,
        });
    }
    Ok(out)
}

/// The interface `--network=sandbox` takes: the first one that is up, Ethernet-like
/// and has an IPv4 address or an IPv6 one beyond link-local (which every interface with
/// IPv6 has). `None` when the namespace has only loopback (or nothing usable).
fn choose(nl: &mut Rtnl) -> anyhow::Result<Option<(Link, Vec<Addr>)>> {
    let mut candidates = Vec::new();
    for l in links(nl)? {
        if !l.up || !l.ether {
            continue;
        }
        let addrs = addrs_of(nl, l.index)?;
        if addrs
            .iter()
            .any(|a| a.ip.is_some_and(|(ip, _)| !link_local(&ip)))
        {
            candidates.push((l, addrs));
        }
    }
    if candidates.len() > 1 {
        let names: Vec<&str> = candidates.iter().map(|(l, _)| l.name.as_str()).collect();
        tracing::warn!(
            "--network=sandbox: interfaces {names:?}: only the first is attached to the sandbox"
        );
    }
    Ok(candidates.into_iter().next())
}

/// The OCI runtime's `--network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Network {
    Sandbox,
    None,
    Host,
}

impl Network {
    pub fn name(self) -> &'static str {
        match self {
            Network::Sandbox => "sandbox",
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// The spec's `linux.namespaces` entry of type `network`: `None` if there is none (the
/// container shares the caller's namespace), `Some(None)` for a new one, `Some(path)` to
/// join one.
fn spec_netns(bundle: &std::path::Path) -> anyhow::Result<Option<Option<std::path::PathBuf>>> {
    use oci_spec::runtime::{LinuxNamespaceType, Spec};
    let path = bundle.join("config.json");
    let spec = Spec::load(&path).with_context(|| format!("{}", path.display()))?;
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|n| {
            n.iter()
                .find(|n| n.typ() == LinuxNamespaceType::Network)
                .cloned()
        });
    Ok(ns.map(|n| n.path().clone()))
}

/// Enter the container's network namespace as the spec asks (joining
/// `linux.namespaces[type=network].path`, or a new one) and settle the mode: the given
/// one, or `sandbox` when the spec names a namespace that has an interface to take,
/// else `none`. With `sandbox`, the interface is taken over here.
pub fn prepare_oci(
    bundle: &std::path::Path,
    flag: Option<Network>,
) -> anyhow::Result<(sentry::net::NetworkMode, Option<Taken>)> {
    use nix::sched::{setns, unshare, CloneFlags};
    let ns = spec_netns(bundle)?;
    match &ns {
        Some(Some(path)) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("linux.namespaces: network path {}", path.display()))?;
            setns(&f, CloneFlags::CLONE_NEWNET).with_context(|| {
                format!(
                    "linux.namespaces: joining network namespace {}",
                    path.display()
                )
            })?;
        }
        // A new, empty one. (Only `host` keeps it: the others make their own.)
        Some(None) if flag == Some(Network::Host) => {
            unshare(CloneFlags::CLONE_NEWNET).context("unshare(network namespace)")?;
        }
        _ => {}
    }
    let mode = match flag {
        Some(Network::Host) => return Ok((sentry::net::NetworkMode::Host, None)),
        Some(Network::None) => return Ok((sentry::net::NetworkMode::None, None)),
        Some(Network::Sandbox) => true,
        // The caller's own namespace is never taken over unasked.
        None => matches!(ns, Some(Some(_))) && has_interface(),
    };
    if !mode {
        return Ok((sentry::net::NetworkMode::None, None));
    }
    Ok((sentry::net::NetworkMode::Sandbox, Some(take_over()?)))
}

/// Whether this network namespace has an interface `--network=sandbox` can take (the
/// OCI runtime's default).
pub fn has_interface() -> bool {
    Rtnl::open()
        .and_then(|mut nl| choose(&mut nl))
        .is_ok_and(|c| c.is_some())
}

/// An interface taken over: the packet socket and description for the sentry, and what
/// was removed from the host, to give it back.
pub struct Taken {
    pub fd: OwnedFd,
    pub desc: LinkDesc,
    pub removed: Removed,
}

/// The addresses and routes taken off the host interface.
pub struct Removed {
    name: String,
    addrs: Vec<Vec<u8>>,
    routes: Vec<Vec<u8>>,
}

/// Take this namespace's interface over (see the module comment).
pub fn take_over() -> anyhow::Result<Taken> {
    let mut nl = Rtnl::open()?;
    let Some((link, addrs)) = choose(&mut nl)? else {
        bail!(
            "--network=sandbox: this network namespace has no interface that is up with an \
             IPv4 or global IPv6 address (use --network=none for loopback only)"
        );
    };
    let routes = routes_of(&mut nl, link.index)?;
    let fd = host::packet_socket(link.index)
        .with_context(|| format!("opening a packet socket on {}", link.name))?;
    let desc = LinkDesc {
        name: link.name.clone(),
        mac: link.mac,
        mtu: link.mtu,
        addrs: addrs.iter().filter_map(|a| a.ip).collect(),
        routes: routes.iter().map(|r| r.route.clone()).collect(),
    };
    for group in ndisc_groups(&desc) {
        // veth passes every frame anyway; a NIC that filters multicast needs this, or
        // the sandbox never hears its neighbours ask for it.
        if let Err(e) = host::join_multicast(&fd, link.index, group) {
            tracing::warn!(
                "--network=sandbox: {}: joining multicast {group:02x?}: {e:#}",
                link.name
            );
        }
    }
    let mut removed = Removed {
        name: link.name.clone(),
        addrs: Vec::new(),
        routes: routes.into_iter().map(|r| r.body).collect(),
    };
    for a in addrs {
        if let Err(e) = nl.change(RTM_DELADDR, 0, &a.body) {
            removed.restore();
            return Err(e.context(format!("removing an address from {}", link.name)));
        }
        removed.addrs.push(a.body);
    }
    tracing::debug!("--network=sandbox: took over {desc:?}");
    Ok(Taken { fd, desc, removed })
}

/// The Ethernet multicast addresses neighbour discovery reaches the link's IPv6
/// addresses at (RFC 2464 §7): all-nodes (`ff02::1`) and each address's solicited-node
/// group (`ff02::1:ffXX:XXXX`).
fn ndisc_groups(desc: &LinkDesc) -> Vec<[u8; 6]> {
    let mut out = Vec::new();
    for (a, _) in &desc.addrs {
        let IpAddress::V6(v6) = a else { continue };
        if out.is_empty() {
            out.push([0x33, 0x33, 0, 0, 0, 1]);
        }
        let o = v6.octets();
        let g = [0x33, 0x33, 0xff, o[13], o[14], o[15]];
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

/// Wait until the sentry has ended (without reaping it). Meanwhile a termination signal
/// to `carapace do` (Ctrl-C, `timeout`, `kill`) ends the sentry instead of this
/// process, so that the caller still gives the interface back afterwards. Single
/// threaded: this process unshared its pid namespace and can make no threads.
pub fn wait_ending_sentry_on_signal(sentry: nix::unistd::Pid) {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    let mut old = SigSet::empty();
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
    {
        tracing::warn!("blocking termination signals: {e}");
        return;
    }
    let sfd = match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("signalfd: {e}");
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            return;
        }
    };
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    while let Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) =
        waitid(Id::Pid(sentry), flags)
    {
        match sfd.read_signal() {
            Ok(Some(info)) if info.ssi_signo != Signal::SIGCHLD as u32 => {
                let _ = nix::sys::signal::kill(sentry, Signal::SIGKILL);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("reading signals: {e}");
                break;
            }
        }
    }
    drop(sfd);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
}

impl Removed {
    /// Give the host its addresses and routes back (the sandbox is over). Failures are
    /// logged: there is nobody else to tell.
    pub fn restore(&self) {
        let mut nl = match Rtnl::open() {
            Ok(nl) => nl,
            Err(e) => {
                tracing::warn!("restoring {}: {e:#}", self.name);
                return;
            }
        };
        for a in &self.addrs {
            // Without the cache information: the address is permanent again.
            let (fixed, rest) = a.split_at(8.min(a.len()));
            let mut body = fixed.to_vec();
            for (ty, p) in attrs(rest) {
                if ty != IFA_CACHEINFO {
                    body.extend_from_slice(&attr_bytes(ty, p));
                }
            }
            if let Err(e) = nl.change(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &body) {
                tracing::warn!("restoring an address of {}: {e:#}", self.name);
            }
        }
        for r in &self.routes {
            // Routes the kernel made for the addresses are back already.
            if let Err(e) = nl.change(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r) {
                let exists = e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.raw_os_error() == Some(libc::EEXIST));
                if !exists {
                    tracing::warn!("restoring a route of {}: {e:#}", self.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = attr_bytes(IFLA_IFNAME, b"eth0\0");
        b.extend_from_slice(&attr_bytes(IFLA_MTU, &1500u32.to_ne_bytes()));
        let a = attrs(&b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (IFLA_IFNAME, &b"eth0\0"[..]));
        assert_eq!(u32_at(a[1].1, 0), Some(1500));
        // Truncated or nonsense lengths end the walk instead of panicking.
        assert!(attrs(&[8, 0, 1, 0, 1]).is_empty());
        assert!(attrs(&[0, 0, 0, 0]).is_empty());
    }

    #[test]
    fn addresses_and_neighbour_discovery_groups() {
        let v4 = ip(libc::AF_INET as u8, &[10, 0, 0, 2]);
        assert_eq!(v4, Some("10.0.0.2".parse().unwrap()));
        let mut b = [0u8; 16];
        b[0] = 0xfe;
        b[1] = 0x80;
        b[13] = 0x12;
        b[14] = 0x34;
        b[15] = 0x56;
        let ll = ip(libc::AF_INET6 as u8, &b).unwrap();
        assert!(link_local(&ll));
        // Wrong lengths and families are nothing.
        assert_eq!(ip(libc::AF_INET as u8, &b), None);
        assert_eq!(ip(libc::AF_INET6 as u8, &[1, 2, 3, 4]), None);
        assert_eq!(ip(libc::AF_PACKET as u8, &[1, 2, 3, 4]), None);
        let mut desc = LinkDesc {
            name: "eth0".into(),
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            addrs: vec![(v4.unwrap(), 24)],
            routes: Vec::new(),
        };
        assert!(ndisc_groups(&desc).is_empty());
        desc.addrs.push((ll, 64));
        desc.addrs.push(("fd00::12:3456".parse().unwrap(), 64));
        assert_eq!(
            ndisc_groups(&desc),
            vec![
                [0x33, 0x33, 0, 0, 0, 1],
                [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]
            ]
        );
    }

    #[test]
    fn the_namespace_can_be_read() {
        // Every namespace has at least `lo`.
        let mut nl = Rtnl::open().unwrap();
        assert!(links(&mut nl).unwrap().iter().any(|l| l.name == "lo"));
    }
}
