//! Socket syscalls: socket, socketpair, bind, listen, accept/accept4, connect, the send
//! and receive families (with `msghdr`, control messages and the `mmsg` forms), shutdown,
//! getsockname/getpeername and the option calls. Arguments are decoded here once; the
//! sockets themselves ([`crate::net::Socket`]) see addresses as bytes and files as
//! descriptions. Also `read`/`write`/`readv`/`writev` on a socket, which file.rs sends here.
#![deny(unsafe_code)]

use super::file::{files, get_file, read_iovecs, IoVec, CHUNK, MAX_RW_COUNT};
use super::time::Timespec;
use crate::error::Result;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::net::unix::UnixSocket;
use crate::net::{hostinet, inet, netlink, NetworkMode};
use crate::net::{Received, SendRequest, Socket, Ucred};
use crate::vfs::{FdFlags, FileDescription};
use crate::{errno, return_errno};
use std::sync::Arc;
use std::time::Instant;

/// `SOCK_MAX`: types at or above it are `EINVAL`.
const SOCK_MAX: i32 = 11;
/// `AF_MAX`.
const AF_MAX: i32 = 46;
/// `sizeof(struct sockaddr_storage)`.
const SOCKADDR_MAX: usize = 128;
/// `SCM_MAX_FD`: files one message may carry.
const SCM_MAX_FD: usize = 253;
/// `UIO_MAXIOV`, also the most messages one `sendmmsg`/`recvmmsg` handles.
const UIO_MAXIOV: usize = 1024;
/// The largest control buffer `sendmsg` copies in (Linux's `optmem_max`): `ENOBUFS` above.
const OPTMEM_MAX: usize = 131_072;
const MSG_WAITFORONE: i32 = 0x10000;
const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;
const CMSG_HDR: usize = 16;

/// `struct msghdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    _pad0: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
    flags: i32,
    _pad1: u32,
}

/// `struct mmsghdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct MMsgHdr {
    hdr: MsgHdr,
    len: u32,
    _pad: u32,
}

/// The socket behind `fd`: `EBADF` for no file, `ENOTSOCK` for another kind of file.
fn socket_file(task: &Task, fd: i32) -> Result<Arc<dyn FileDescription>> {
    let file = get_file(task, fd)?;
    if file.as_socket().is_none() {
        return_errno!(ENOTSOCK);
    }
    Ok(file)
}

fn sock(file: &Arc<dyn FileDescription>) -> Result<&dyn Socket> {
    file.as_socket().ok_or(errno!(ENOTSOCK))
}

fn is_nonblock(file: &dyn FileDescription, flags: i32) -> bool {
    file.status_flags() & libc::O_NONBLOCK as u32 != 0 || flags & libc::MSG_DONTWAIT != 0
}

/// Split `type` into the socket type and `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
fn split_type(ty: i32) -> Result<(i32, bool, bool)> {
    let flags = ty & !0xf;
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return_errno!(EINVAL);
    }
    let base = ty & 0xf;
    Ok((
        base,
        flags & libc::SOCK_NONBLOCK != 0,
        flags & libc::SOCK_CLOEXEC != 0,
    ))
}

/// Check `domain` and the protocol before `socket`/`socketpair` (Linux's
/// `__sock_create`): an unknown family is `EAFNOSUPPORT`, an unknown type `EINVAL`.
fn check_domain(domain: i32, base: i32) -> Result<()> {
    if !(0..AF_MAX).contains(&domain) {
        return_errno!(EAFNOSUPPORT);
    }
    match domain {
        libc::AF_UNIX | libc::AF_INET | libc::AF_INET6 | libc::AF_NETLINK => {}
        _ => return_errno!(EAFNOSUPPORT),
    }
    if !(0..SOCK_MAX).contains(&base) {
        return_errno!(EINVAL);
    }
    Ok(())
}

/// The `AF_UNIX` socket type for `socket`/`socketpair` (Linux's `unix_create`).
fn unix_type(base: i32, protocol: i32) -> Result<i32> {
    if protocol != 0 && protocol != libc::AF_UNIX {
        return_errno!(EPROTONOSUPPORT);
    }
    match base {
        libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET => Ok(base),
        // Linux quietly makes a raw unix socket a datagram one.
        libc::SOCK_RAW => Ok(libc::SOCK_DGRAM),
        _ => Err(errno!(ESOCKTNOSUPPORT)),
    }
}

pub fn sys_socket(task: &mut Task, domain: i32, ty: i32, protocol: i32) -> Result<u64> {
    let (base, nonblock, cloexec) = split_type(ty)?;
    check_domain(domain, base)?;
    let file: Arc<dyn FileDescription> = match domain {
        libc::AF_INET | libc::AF_INET6 => {
            inet::check_type(base, protocol)?;
            match crate::net::mode() {
                NetworkMode::None | NetworkMode::Sandbox => {
                    if inet::icmp::is_icmp(domain, base, protocol) {
                        inet::icmp::IcmpSocket::new(task, base, nonblock)?
                    } else if protocol == libc::IPPROTO_ICMP {
                        return_errno!(EPROTONOSUPPORT);
                    } else {
                        inet::InetSocket::new(task, domain, base, nonblock)
                    }
                }
                NetworkMode::Host => {
                    hostinet::HostSocket::new(task, domain, base, protocol, nonblock)?
                }
            }
        }
        libc::AF_NETLINK => {
            if base != libc::SOCK_RAW && base != libc::SOCK_DGRAM {
                return_errno!(ESOCKTNOSUPPORT);
            }
            if protocol != netlink::NETLINK_ROUTE {
                return_errno!(EPROTONOSUPPORT);
            }
            match crate::net::mode() {
                NetworkMode::None | NetworkMode::Sandbox => {
                    netlink::NetlinkSocket::new(task, base, nonblock)
                }
                // The host's interfaces; the sentry has no capability to change them.
                NetworkMode::Host => {
                    hostinet::HostSocket::new(task, domain, base, protocol, nonblock)?
                }
            }
        }
        _ => UnixSocket::new(task, unix_type(base, protocol)?, nonblock),
    };
    Ok(files(task).insert(file, FdFlags { cloexec })? as u64)
}

pub fn sys_socketpair(
    task: &mut Task,
    domain: i32,
    ty: i32,
    protocol: i32,
    sv: UserAddr,
) -> Result<u64> {
    let (base, nonblock, cloexec) = split_type(ty)?;
    check_domain(domain, base)?;
    if domain == libc::AF_INET || domain == libc::AF_INET6 {
        inet::check_type(base, protocol)?;
        return_errno!(EOPNOTSUPP);
    }
    if domain != libc::AF_UNIX {
        return_errno!(EOPNOTSUPP);
    }
    let ty = unix_type(base, protocol)?;
    let (a, b) = UnixSocket::pair(task, ty, nonblock);
    let flags = FdFlags { cloexec };
    let (fa, fb) = {
        let mut t = files(task);
        let fa = t.insert(a, flags)?;
        match t.insert(b, flags) {
            Ok(fb) => (fa, fb),
            Err(e) => {
                let dropped = t.remove(fa);
                drop(t);
                drop(dropped);
                return Err(e);
            }
        }
    };
    if let Err(e) = task.write_obj(sv, &[fa, fb]) {
        let dropped = {
            let mut t = files(task);
            (t.remove(fa), t.remove(fb))
        };
        drop(dropped);
        return Err(e);
    }
    Ok(0)
}

/// Copy in a `sockaddr` of `len` bytes (Linux's `move_addr_to_kernel`).
fn read_sockaddr(task: &Task, addr: UserAddr, len: u32) -> Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| errno!(EINVAL))?;
    if len > SOCKADDR_MAX {
        return_errno!(EINVAL);
    }
    let mut v = vec![0u8; len];
    if len > 0 {
        task.copy_in(addr, &mut v)?;
    }
    Ok(v)
}

/// Copy out a `sockaddr` to `addr`, at most `*addrlen` bytes of it, and store its real
/// length in `*addrlen` (Linux's `move_addr_to_user`).
fn write_sockaddr(task: &Task, addr: UserAddr, addrlen: UserAddr, bytes: &[u8]) -> Result<()> {
    let len: i32 = task.read_obj(addrlen)?;
    let len = usize::try_from(len).map_err(|_| errno!(EINVAL))?;
    let n = len.min(bytes.len());
    if n > 0 {
        task.copy_out(addr, bytes.get(..n).ok_or(errno!(EINVAL))?)?;
    }
    task.write_obj(addrlen, &(bytes.len() as i32))
}

pub fn sys_bind(task: &mut Task, fd: i32, addr: UserAddr, len: u32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let a = read_sockaddr(task, addr, len)?;
    sock(&file)?.bind(task, &a)?;
    Ok(0)
}

pub fn sys_listen(task: &mut Task, fd: i32, backlog: i32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    sock(&file)?.listen(task, backlog)?;
    Ok(0)
}

pub fn sys_connect(task: &mut Task, fd: i32, addr: UserAddr, len: u32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let a = read_sockaddr(task, addr, len)?;
    let nonblock = is_nonblock(&*file, 0);
    sock(&file)?.connect(task, &a, nonblock)?;
    Ok(0)
}

pub fn sys_accept(task: &mut Task, fd: i32, addr: UserAddr, addrlen: UserAddr) -> Result<u64> {
    sys_accept4(task, fd, addr, addrlen, 0)
}

pub fn sys_accept4(
    task: &mut Task,
    fd: i32,
    addr: UserAddr,
    addrlen: UserAddr,
    flags: i32,
) -> Result<u64> {
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return_errno!(EINVAL);
    }
    let file = socket_file(task, fd)?;
    let nonblock = is_nonblock(&*file, 0);
    let (new, peer) = sock(&file)?.accept(task, nonblock, flags & libc::SOCK_NONBLOCK != 0)?;
    if addr.0 != 0 {
        // The connection is lost if the address cannot be stored, as in Linux.
        write_sockaddr(task, addr, addrlen, &peer)?;
    }
    let cloexec = flags & libc::SOCK_CLOEXEC != 0;
    Ok(files(task).insert(new, FdFlags { cloexec })? as u64)
}

pub fn sys_getsockname(task: &mut Task, fd: i32, addr: UserAddr, addrlen: UserAddr) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let name = sock(&file)?.sockname()?;
    write_sockaddr(task, addr, addrlen, &name)?;
    Ok(0)
}

pub fn sys_getpeername(task: &mut Task, fd: i32, addr: UserAddr, addrlen: UserAddr) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let name = sock(&file)?.peername()?;
    write_sockaddr(task, addr, addrlen, &name)?;
    Ok(0)
}

pub fn sys_shutdown(task: &mut Task, fd: i32, how: i32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    sock(&file)?.shutdown(how)?;
    Ok(0)
}

pub fn sys_getsockopt(
    task: &mut Task,
    fd: i32,
    level: i32,
    name: i32,
    optval: UserAddr,
    optlen: UserAddr,
) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let len: i32 = task.read_obj(optlen)?;
    let len = usize::try_from(len).map_err(|_| errno!(EINVAL))?;
    let v = sock(&file)?.getsockopt(task, level, name, len)?;
    let n = len.min(v.len());
    if n > 0 {
        task.copy_out(optval, v.get(..n).ok_or(errno!(EINVAL))?)?;
    }
    task.write_obj(optlen, &(n as i32))?;
    Ok(0)
}

pub fn sys_setsockopt(
    task: &mut Task,
    fd: i32,
    level: i32,
    name: i32,
    optval: UserAddr,
    optlen: u32,
) -> Result<u64> {
    let file = socket_file(task, fd)?;
    if (optlen as i32) < 0 {
        return_errno!(EINVAL);
    }
    // No option is longer than a few words: read at most a page.
    let len = (optlen as usize).min(4096);
    let mut v = vec![0u8; len];
    if len > 0 {
        task.copy_in(optval, &mut v)?;
    }
    sock(&file)?.setsockopt(task, level, name, &v)?;
    Ok(0)
}

// ---- sending ----

/// Gather `len` bytes from the buffers `iovs`.
fn gather(task: &Task, iovs: &[IoVec], len: usize) -> Result<Vec<u8>> {
    let mut data = vec![0u8; len];
    let mut at = 0usize;
    for v in iovs {
        if at >= len {
            break;
        }
        let n = usize::try_from(v.len).unwrap_or(usize::MAX).min(len - at);
        if n == 0 {
            continue;
        }
        task.copy_in(
            UserAddr(v.base),
            data.get_mut(at..at + n).ok_or(errno!(EINVAL))?,
        )?;
        at += n;
    }
    Ok(data)
}

fn total_len(iovs: &[IoVec]) -> usize {
    let t = iovs.iter().fold(0u64, |a, v| a.saturating_add(v.len));
    usize::try_from(t).unwrap_or(usize::MAX).min(MAX_RW_COUNT)
}

/// `SCM_CREDENTIALS` may name only the sender's own pid and ids, unless it is privileged
/// (`CAP_SYS_ADMIN` for the pid, `CAP_SETUID`/`CAP_SETGID` for the ids: Linux's
/// `scm_check_creds`).
fn check_creds(task: &Task, c: &Ucred) -> Result<()> {
    use crate::kernel::creds::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
    let cr = &task.creds;
    let pid_ok = c.pid == task.tgid || cr.has_cap(CAP_SYS_ADMIN);
    let uid_ok = [cr.ruid, cr.euid, cr.suid].contains(&c.uid) || cr.has_cap(CAP_SETUID);
    let gid_ok = [cr.rgid, cr.egid, cr.sgid].contains(&c.gid) || cr.has_cap(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(errno!(EPERM))
    }
}

fn cmsg_align(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// Decode the control messages of a `sendmsg` (Linux's `__scm_send`).
type Control = (Vec<Arc<dyn FileDescription>>, Option<Ucred>);

fn parse_control(task: &Task, buf: &[u8]) -> Result<Control> {
    let mut rights: Vec<Arc<dyn FileDescription>> = Vec::new();
    let mut creds = None;
    let mut off = 0usize;
    while let Some(hdr) = buf.get(off..off.saturating_add(CMSG_HDR)) {
        let field = |r: std::ops::Range<usize>| hdr.get(r).ok_or(errno!(EINVAL));
        let clen = u64::from_ne_bytes(field(0..8)?.try_into().map_err(|_| errno!(EINVAL))?);
        let level = i32::from_ne_bytes(field(8..12)?.try_into().map_err(|_| errno!(EINVAL))?);
        let ty = i32::from_ne_bytes(field(12..16)?.try_into().map_err(|_| errno!(EINVAL))?);
        let clen = usize::try_from(clen).map_err(|_| errno!(EINVAL))?;
        let end = off.checked_add(clen).ok_or(errno!(EINVAL))?;
        if clen < CMSG_HDR || end > buf.len() {
            return_errno!(EINVAL);
        }
        let data = buf.get(off + CMSG_HDR..end).ok_or(errno!(EINVAL))?;
        if level == libc::SOL_SOCKET {
            match ty {
                libc::SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if n == 0 {
                        // An empty list is allowed and passes nothing.
                    } else if rights.len() + n > SCM_MAX_FD {
                        return_errno!(EINVAL);
                    }
                    for c in data.chunks_exact(4) {
                        let fd = i32::from_ne_bytes(c.try_into().map_err(|_| errno!(EINVAL))?);
                        rights.push(get_file(task, fd)?);
                    }
                }
                libc::SCM_CREDENTIALS => {
                    if data.len() != std::mem::size_of::<Ucred>() {
                        return_errno!(EINVAL);
                    }
                    let c: Ucred = bytemuck::pod_read_unaligned(data);
                    check_creds(task, &c)?;
                    creds = Some(c);
                }
                _ => return_errno!(EINVAL),
            }
        }
        off = off.saturating_add(cmsg_align(clen));
    }
    Ok((rights, creds))
}

/// Send `data` with the rest of `req`, and raise SIGPIPE for a broken stream unless
/// `MSG_NOSIGNAL`. Big stream writes go in chunks so no more than one is copied at once.
fn do_send(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iovs: &[IoVec],
    addr: Option<&[u8]>,
    control: Control,
    flags: i32,
) -> Result<usize> {
    let s = sock(file)?;
    if flags & libc::MSG_OOB != 0 {
        return_errno!(EOPNOTSUPP);
    }
    let nonblock = is_nonblock(&**file, flags);
    let total = total_len(iovs);
    let stream = s.sock_type() == libc::SOCK_STREAM;
    // A message must fit the send buffer whole: refuse one larger than any buffer before
    // copying it in (the socket checks its own size).
    if !stream && total > 2 * crate::net::MEM_MAX {
        return_errno!(EMSGSIZE);
    }
    let (mut rights, creds) = control;
    let r = if stream && total > CHUNK {
        let mut done = 0usize;
        let mut res = Ok(0);
        let mut rest: Vec<IoVec> = iovs.to_vec();
        while done < total {
            let want = (total - done).min(CHUNK);
            let data = gather(task, &rest, want)?;
            advance(&mut rest, want);
            let req = SendRequest {
                data: &data,
                addr,
                rights: std::mem::take(&mut rights),
                creds,
                flags,
            };
            match s.sendmsg(task, req, nonblock) {
                Ok(n) => {
                    done += n;
                    if n < want {
                        break;
                    }
                }
                Err(e) if done == 0 => {
                    res = Err(e);
                    break;
                }
                Err(_) => break,
            }
        }
        res.map(|_: usize| done)
    } else {
        let data = gather(task, iovs, total)?;
        let req = SendRequest {
            data: &data,
            addr,
            rights,
            creds,
            flags,
        };
        s.sendmsg(task, req, nonblock)
    };
    if stream && flags & libc::MSG_NOSIGNAL == 0 {
        super::file::raise_sigpipe(task, &r);
    }
    r
}

/// Drop the first `n` bytes from `iovs`.
fn advance(iovs: &mut Vec<IoVec>, mut n: usize) {
    while n > 0 {
        let Some(first) = iovs.first_mut() else {
            return;
        };
        let l = usize::try_from(first.len).unwrap_or(usize::MAX);
        if l <= n {
            n -= l;
            iovs.remove(0);
        } else {
            first.base = first.base.wrapping_add(n as u64);
            first.len -= n as u64;
            return;
        }
    }
}

pub fn sys_sendto(
    task: &mut Task,
    fd: i32,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    addrlen: u32,
) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let a = if addr.0 != 0 {
        Some(read_sockaddr(task, addr, addrlen)?)
    } else {
        None
    };
    let iov = [IoVec {
        base: buf.0,
        len: len as u64,
    }];
    let a = a.as_deref().filter(|a| !a.is_empty());
    Ok(do_send(task, &file, &iov, a, (Vec::new(), None), flags)? as u64)
}

fn read_msghdr_iovs(task: &Task, h: &MsgHdr) -> Result<Vec<IoVec>> {
    let n = usize::try_from(h.iovlen).map_err(|_| errno!(EMSGSIZE))?;
    if n > UIO_MAXIOV {
        return_errno!(EMSGSIZE);
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    read_iovecs(task, UserAddr(h.iov), n as i32)
}

fn sendmsg_one(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    h: &MsgHdr,
    flags: i32,
) -> Result<usize> {
    let iovs = read_msghdr_iovs(task, h)?;
    let addr = if h.name != 0 && h.namelen > 0 {
        Some(read_sockaddr(task, UserAddr(h.name), h.namelen)?)
    } else {
        None
    };
    let clen = usize::try_from(h.controllen).map_err(|_| errno!(ENOBUFS))?;
    if clen > OPTMEM_MAX {
        return_errno!(ENOBUFS);
    }
    let control = if clen >= CMSG_HDR {
        let mut buf = vec![0u8; clen];
        task.copy_in(UserAddr(h.control), &mut buf)?;
        parse_control(task, &buf)?
    } else {
        (Vec::new(), None)
    };
    do_send(task, file, &iovs, addr.as_deref(), control, flags)
}

pub fn sys_sendmsg(task: &mut Task, fd: i32, msg: UserAddr, flags: i32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let h: MsgHdr = task.read_obj(msg)?;
    Ok(sendmsg_one(task, &file, &h, flags)? as u64)
}

pub fn sys_sendmmsg(task: &mut Task, fd: i32, vec: UserAddr, vlen: u32, flags: i32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let vlen = (vlen as usize).min(UIO_MAXIOV);
    let size = std::mem::size_of::<MMsgHdr>() as u64;
    let mut sent = 0usize;
    for i in 0..vlen {
        let at = vec.offset(i as u64 * size)?;
        let r = task
            .read_obj::<MMsgHdr>(at)
            .and_then(|m| sendmsg_one(task, &file, &m.hdr, flags));
        match r {
            Ok(n) => {
                task.write_obj(at.offset(56)?, &(n as u32))?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent as u64)
}

// ---- receiving ----

/// Scatter `data` over `iovs`.
fn scatter(task: &Task, iovs: &[IoVec], data: &[u8]) -> Result<()> {
    let mut at = 0usize;
    for v in iovs {
        if at >= data.len() {
            break;
        }
        let n = usize::try_from(v.len)
            .unwrap_or(usize::MAX)
            .min(data.len() - at);
        if n == 0 {
            continue;
        }
        task.copy_out(
            UserAddr(v.base),
            data.get(at..at + n).ok_or(errno!(EINVAL))?,
        )?;
        at += n;
    }
    Ok(())
}

/// Control messages for a receive, in at most `cap` bytes, with the files installed in
/// the caller's table (Linux's `put_cmsg` and `scm_detach_fds`). Returns the bytes and
/// whether anything was cut (`MSG_CTRUNC`); files that do not fit are closed.
fn build_control(task: &Task, got: &mut Received, cap: usize, cloexec: bool) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut trunc = false;
    let put = |out: &mut Vec<u8>, ty: i32, payload: &[u8]| {
        let left = cap.saturating_sub(out.len());
        if left < CMSG_HDR {
            return true;
        }
        let full = CMSG_HDR + payload.len();
        let cmlen = full.min(left);
        out.extend_from_slice(&(cmlen as u64).to_ne_bytes());
        out.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        out.extend_from_slice(&ty.to_ne_bytes());
        out.extend_from_slice(payload.get(..cmlen - CMSG_HDR).unwrap_or(payload));
        let space = cmsg_align(full).min(left);
        out.resize(out.len() + (space - cmlen), 0);
        cmlen < full
    };
    if let Some(c) = got.creds {
        trunc |= put(&mut out, libc::SCM_CREDENTIALS, bytemuck::bytes_of(&c));
    }
    let rights = std::mem::take(&mut got.rights);
    if !rights.is_empty() {
        let left = cap.saturating_sub(out.len());
        let fit = left.saturating_sub(CMSG_HDR) / 4;
        let mut fds: Vec<u8> = Vec::new();
        let mut table = files(task);
        let mut dropped = Vec::new();
        for (i, f) in rights.into_iter().enumerate() {
            if i >= fit {
                trunc = true;
                dropped.push(f);
                continue;
            }
            match table.insert(f, FdFlags { cloexec }) {
                Ok(fd) => fds.extend_from_slice(&fd.to_ne_bytes()),
                Err(_) => trunc = true,
            }
        }
        drop(table);
        drop(dropped);
        if !fds.is_empty() {
            put(&mut out, libc::SCM_RIGHTS, &fds);
        }
    }
    (out, trunc)
}

/// Receive into `iovs`; the message's length as the call returns it and what came with it.
fn do_recv(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iovs: &[IoVec],
    flags: i32,
) -> Result<(usize, Received)> {
    let s = sock(file)?;
    if flags & libc::MSG_OOB != 0 {
        return_errno!(EOPNOTSUPP);
    }
    let nonblock = is_nonblock(&**file, flags);
    let len = total_len(iovs);
    let got = s.recvmsg(task, len, flags, nonblock)?;
    let stream = s.sock_type() == libc::SOCK_STREAM;
    // MSG_TRUNC on a stream discards the bytes instead of copying them.
    if !(stream && flags & libc::MSG_TRUNC != 0) {
        scatter(task, iovs, &got.data)?;
    }
    let n = if !stream && flags & libc::MSG_TRUNC != 0 {
        got.full_len
    } else {
        got.data.len()
    };
    Ok((n, got))
}

pub fn sys_recvfrom(
    task: &mut Task,
    fd: i32,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    addrlen: UserAddr,
) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let iov = [IoVec {
        base: buf.0,
        len: len as u64,
    }];
    let (n, got) = do_recv(task, &file, &iov, flags)?;
    if addr.0 != 0 {
        let name = got.addr.clone().unwrap_or_default();
        write_sockaddr(task, addr, addrlen, &name)?;
    }
    Ok(n as u64)
}

fn recvmsg_one(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    at: UserAddr,
    flags: i32,
) -> Result<usize> {
    let mut h: MsgHdr = task.read_obj(at)?;
    let iovs = read_msghdr_iovs(task, &h)?;
    let (n, mut got) = do_recv(task, file, &iovs, flags)?;
    let mut out_flags = 0;
    if got.truncated {
        out_flags |= libc::MSG_TRUNC;
    }
    let name = got.addr.clone().unwrap_or_default();
    if h.name != 0 {
        let k = (h.namelen as usize).min(name.len());
        if k > 0 {
            task.copy_out(UserAddr(h.name), name.get(..k).ok_or(errno!(EINVAL))?)?;
        }
        h.namelen = name.len() as u32;
    }
    let cap = usize::try_from(h.controllen)
        .unwrap_or(usize::MAX)
        .min(OPTMEM_MAX);
    let cap = if h.control == 0 { 0 } else { cap };
    let (ctl, trunc) = build_control(task, &mut got, cap, flags & MSG_CMSG_CLOEXEC != 0);
    if trunc {
        out_flags |= libc::MSG_CTRUNC;
    }
    if !ctl.is_empty() {
        task.copy_out(UserAddr(h.control), &ctl)?;
    }
    h.controllen = ctl.len() as u64;
    h.flags = out_flags;
    task.write_obj(at, &h)?;
    Ok(n)
}

pub fn sys_recvmsg(task: &mut Task, fd: i32, msg: UserAddr, flags: i32) -> Result<u64> {
    let file = socket_file(task, fd)?;
    Ok(recvmsg_one(task, &file, msg, flags)? as u64)
}

pub fn sys_recvmmsg(
    task: &mut Task,
    fd: i32,
    vec: UserAddr,
    vlen: u32,
    flags: i32,
    timeout: UserAddr,
) -> Result<u64> {
    let file = socket_file(task, fd)?;
    let deadline = if timeout.0 != 0 {
        let ts: Timespec = task.read_obj(timeout)?;
        let d = ts.to_duration()?;
        Some(Instant::now().checked_add(d).ok_or(errno!(EINVAL))?)
    } else {
        None
    };
    let vlen = (vlen as usize).min(UIO_MAXIOV);
    let size = std::mem::size_of::<MMsgHdr>() as u64;
    let mut flags = flags;
    let mut got = 0usize;
    for i in 0..vlen {
        let at = vec.offset(i as u64 * size)?;
        match recvmsg_one(task, &file, at, flags & !MSG_WAITFORONE) {
            Ok(n) => {
                task.write_obj(at.offset(56)?, &(n as u32))?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & MSG_WAITFORONE != 0 {
            flags |= libc::MSG_DONTWAIT;
        }
        // As in Linux, the timeout is only looked at between messages.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    if let Some(d) = deadline {
        let left = d.saturating_duration_since(Instant::now());
        task.write_obj(timeout, &Timespec::from_duration(left))?;
    }
    Ok(got as u64)
}

// ---- read/write/readv/writev on a socket ----

/// `read`/`readv` on a socket: a receive with no flags; passed files are dropped.
pub(super) fn read_socket(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iovs: &[IoVec],
) -> Result<u64> {
    let (n, got) = do_recv(task, file, iovs, 0)?;
    drop(got);
    Ok(n as u64)
}

/// `write`/`writev` on a socket: a send with no flags.
pub(super) fn write_socket(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iovs: &[IoVec],
) -> Result<u64> {
    Ok(do_send(task, file, iovs, None, (Vec::new(), None), 0)? as u64)
}

/// `sendfile` into a socket: the file is read a chunk at a time and each chunk sent as
/// `write` would send it, waiting for room in a blocking socket. `pos` is the input
/// offset, advanced by what was sent.
pub(super) fn send_from_file(
    task: &Task,
    out: &Arc<dyn FileDescription>,
    input: &dyn FileDescription,
    pos: &mut u64,
    count: usize,
) -> Result<usize> {
    let s = sock(out)?;
    let nonblock = is_nonblock(&**out, 0);
    let count = count.min(MAX_RW_COUNT);
    let mut buf = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    let mut res = Ok(());
    while done < count {
        let want = (count - done).min(CHUNK);
        let chunk = buf.get_mut(..want).ok_or(errno!(EINVAL))?;
        let n = match input.read(chunk, Some(*pos)) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                res = Err(e);
                break;
            }
        };
        let req = SendRequest {
            data: chunk.get(..n).ok_or(errno!(EIO))?,
            addr: None,
            rights: Vec::new(),
            creds: None,
            flags: 0,
        };
        match s.sendmsg(task, req, nonblock) {
            Ok(w) => {
                done += w;
                *pos = pos.checked_add(w as u64).ok_or(errno!(EOVERFLOW))?;
                if w < n {
                    break;
                }
            }
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    match res {
        Err(e) if done == 0 => {
            let r = Err(e);
            if s.sock_type() == libc::SOCK_STREAM {
                super::file::raise_sigpipe(task, &r);
            }
            r
        }
        _ => Ok(done),
    }
}
