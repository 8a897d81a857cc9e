//! The host-call layer: the few host system calls the sentry makes that have no safe
//! wrapper in `nix`. Each is a small function whose `unsafe` block is justified in place;
//! callers (vfs/, fs/, syscalls/) stay free of `unsafe`.

use crate::errno;
use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Fill `buf` from the host's random pool (`getrandom(2)`, no flags: blocks only until
/// the pool is initialized at boot). Returns the number of bytes written.
pub fn getrandom(buf: &mut [u8]) -> Result<usize> {
    loop {
        // SAFETY: the pointer and length describe `buf`, which we borrow mutably for the
        // duration of the call; the kernel writes at most `buf.len()` bytes.
        let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return usize::try_from(n).map_err(|_| errno!(EIO));
        }
        let e = Error::last_os_error();
        if e.errno != crate::error::Errno::EINTR {
            return Err(e);
        }
    }
}

/// The terminal `ioctl`s forwarded to host stdio fds, with the size of the argument each
/// reads or writes (the kernel's `struct termios` is 36 bytes on x86_64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtyIoctl {
    /// `TCGETS`: the kernel writes a `struct termios`.
    Tcgets,
    /// `TCSETS`, `TCSETSW`, `TCSETSF`: the kernel reads a `struct termios`.
    Tcsets(u64),
    /// `TIOCGWINSZ`: writes a `struct winsize`.
    Tiocgwinsz,
    /// `TIOCSWINSZ`: reads a `struct winsize`.
    Tiocswinsz,
    /// `TIOCGPGRP`: writes a `pid_t`.
    Tiocgpgrp,
    /// `FIONREAD`: writes an `int`.
    Fionread,
}

pub const KERNEL_TERMIOS_SIZE: usize = 36;

impl TtyIoctl {
    pub fn from_cmd(cmd: u32) -> Option<TtyIoctl> {
        match u64::from(cmd) {
            libc::TCGETS => Some(TtyIoctl::Tcgets),
            c @ (libc::TCSETS | libc::TCSETSW | libc::TCSETSF) => Some(TtyIoctl::Tcsets(c)),
            libc::TIOCGWINSZ => Some(TtyIoctl::Tiocgwinsz),
            libc::TIOCSWINSZ => Some(TtyIoctl::Tiocswinsz),
            libc::FIONREAD => Some(TtyIoctl::Fionread),
            _ => None,
        }
    }

    /// Bytes of argument the host kernel touches.
    pub fn arg_size(self) -> usize {
        match self {
            TtyIoctl::Tcgets | TtyIoctl::Tcsets(_) => KERNEL_TERMIOS_SIZE,
            TtyIoctl::Tiocgwinsz | TtyIoctl::Tiocswinsz => 8,
            TtyIoctl::Tiocgpgrp | TtyIoctl::Fionread => 4,
        }
    }

    /// Whether the host reads the argument (the sentry must copy it in first).
    pub fn reads_arg(self) -> bool {
        matches!(self, TtyIoctl::Tcsets(_) | TtyIoctl::Tiocswinsz)
    }

    fn request(self) -> u64 {
        match self {
            TtyIoctl::Tcgets => libc::TCGETS,
            TtyIoctl::Tcsets(c) => c,
            TtyIoctl::Tiocgwinsz => libc::TIOCGWINSZ,
            TtyIoctl::Tiocswinsz => libc::TIOCSWINSZ,
            TtyIoctl::Tiocgpgrp => libc::TIOCGPGRP,
            TtyIoctl::Fionread => libc::FIONREAD,
        }
    }
}

/// Run a terminal `ioctl` on a host fd with `buf` as its argument (in and/or out).
pub fn tty_ioctl(fd: BorrowedFd<'_>, op: TtyIoctl, buf: &mut [u8]) -> Result<i32> {
    if buf.len() < op.arg_size() {
        return Err(errno!(EINVAL));
    }
    // SAFETY: `fd` is a live borrowed fd; every request in `TtyIoctl` reads or writes at
    // most `op.arg_size()` bytes through its pointer argument, and `buf` is at least that
    // long and mutably borrowed for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), op.request(), buf.as_mut_ptr()) };
    if r < 0 {
        return Err(Error::last_os_error());
    }
    Ok(r)
}

/// A value from the sentry's own auxiliary vector (0 if absent).
pub fn getauxval(key: u64) -> u64 {
    // SAFETY: getauxval only reads the process's auxiliary vector.
    unsafe { libc::getauxval(key) }
}

/// The CPU the calling thread is running on (`sched_getcpu`, served by the vDSO).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu takes no arguments and only reads the CPU number.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// Read from the unix stream `sock` into `buf`, taking the descriptors that come with the
/// bytes in `SCM_RIGHTS` messages (close-on-exec; at most 8 per read, the kernel closes
/// any beyond that). Returns the byte count (0 at end of stream) and the descriptors.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Vec<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 8]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(m) => m,
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: the kernel has just installed `fd` in this process's table
                    // for this message (SCM_RIGHTS); nothing else owns it, so the OwnedFd
                    // becomes its only owner and closes it when dropped.
                    fds.push(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        return Ok((msg.bytes, fds));
    }
}

// ---- host sockets, for `--network=host` only (`net/hostinet.rs`) ----
//
// Addresses and option values are the application's bytes, copied into sentry memory by
// the syscall layer; the host kernel reads at most the lengths given here.

fn check(r: libc::c_int) -> Result<libc::c_int> {
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn own(fd: libc::c_int) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: `fd` was just returned by the host kernel as a new descriptor that nothing
    // else owns.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// `socket(domain, ty | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol)`.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> Result<std::os::fd::OwnedFd> {
    // SAFETY: plain integer arguments.
    let fd = check(unsafe {
        libc::socket(
            domain,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    })?;
    Ok(own(fd))
}

/// `bind` or `connect` with a raw address.
pub fn sock_addr_call(fd: BorrowedFd<'_>, addr: &[u8], connect: bool) -> Result<()> {
    let len = libc::socklen_t::try_from(addr.len()).map_err(|_| errno!(EINVAL))?;
    let p = addr.as_ptr().cast::<libc::sockaddr>();
    // SAFETY: `p` and `len` describe `addr`, borrowed for the call; the kernel reads at
    // most `len` bytes from it.
    let r = unsafe {
        if connect {
            libc::connect(fd.as_raw_fd(), p, len)
        } else {
            libc::bind(fd.as_raw_fd(), p, len)
        }
    };
    check(r).map(|_| ())
}

pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> Result<()> {
    // SAFETY: plain integer arguments on a live fd.
    check(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(|_| ())
}

pub fn shutdown(fd: BorrowedFd<'_>, how: i32) -> Result<()> {
    // SAFETY: plain integer arguments on a live fd.
    check(unsafe { libc::shutdown(fd.as_raw_fd(), how) }).map(|_| ())
}

/// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the new fd and the peer's address.
pub fn accept(fd: BorrowedFd<'_>) -> Result<(std::os::fd::OwnedFd, Vec<u8>)> {
    let mut addr = [0u8; 128];
    let mut len = addr.len() as libc::socklen_t;
    // SAFETY: `addr` is writable for `len` bytes and `len` is a valid in/out length; the
    // kernel writes at most `len` bytes and stores the full length in `len`.
    let fd = check(unsafe {
        libc::accept4(
            fd.as_raw_fd(),
            addr.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })?;
    let n = (len as usize).min(addr.len());
    Ok((own(fd), addr.get(..n).unwrap_or(&[]).to_vec()))
}

/// `getsockname` (or `getpeername`).
pub fn sock_name(fd: BorrowedFd<'_>, peer: bool) -> Result<Vec<u8>> {
    let mut addr = [0u8; 128];
    let mut len = addr.len() as libc::socklen_t;
    // SAFETY: as in `accept`: `addr` is writable for `len` bytes.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), addr.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), addr.as_mut_ptr().cast(), &mut len)
        }
    };
    check(r)?;
    let n = (len as usize).min(addr.len());
    Ok(addr.get(..n).unwrap_or(&[]).to_vec())
}

pub fn getsockopt(fd: BorrowedFd<'_>, level: i32, name: i32, len: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len.min(512)];
    let mut l = v.len() as libc::socklen_t;
    // SAFETY: `v` is writable for `l` bytes; the kernel writes at most `l` and stores
    // the length it wrote.
    check(unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, v.as_mut_ptr().cast(), &mut l) })?;
    v.truncate(l as usize);
    Ok(v)
}

pub fn setsockopt(fd: BorrowedFd<'_>, level: i32, name: i32, val: &[u8]) -> Result<()> {
    let l = libc::socklen_t::try_from(val.len()).map_err(|_| errno!(EINVAL))?;
    // SAFETY: `val` is readable for `l` bytes for the duration of the call. Only options
    // whose value holds no pointer reach here (`hostinet` checks the name).
    check(unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, val.as_ptr().cast(), l) })
        .map(|_| ())
}

/// `sendmsg` of one buffer, to `addr` if given.
pub fn send(fd: BorrowedFd<'_>, data: &[u8], addr: Option<&[u8]>, flags: i32) -> Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control).
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if let Some(a) = addr {
        mh.msg_name = a.as_ptr() as *mut libc::c_void;
        mh.msg_namelen = libc::socklen_t::try_from(a.len()).map_err(|_| errno!(EINVAL))?;
    }
    // SAFETY: `mh` points at `iov` (describing `data`) and at `addr`, all borrowed for
    // the call; the kernel only reads through them.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &mh, flags) };
    if n < 0 {
        return Err(Error::last_os_error());
    }
    usize::try_from(n).map_err(|_| errno!(EIO))
}

/// `recvmsg` into `buf`: the length (the real one with `MSG_TRUNC`), the sender's
/// address and the returned `msg_flags`.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> Result<(usize, Vec<u8>, i32)> {
    let mut addr = [0u8; 128];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control).
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_name = addr.as_mut_ptr().cast();
    mh.msg_namelen = addr.len() as libc::socklen_t;
    // SAFETY: `mh` points at `iov` (describing `buf`, borrowed mutably) and at `addr`,
    // both writable for the lengths given; no control buffer.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut mh, flags) };
    if n < 0 {
        return Err(Error::last_os_error());
    }
    let alen = (mh.msg_namelen as usize).min(addr.len());
    Ok((
        usize::try_from(n).map_err(|_| errno!(EIO))?,
        addr.get(..alen).unwrap_or(&[]).to_vec(),
        mh.msg_flags,
    ))
}

/// `ioctl(fd, FIONREAD)`.
pub fn fionread(fd: BorrowedFd<'_>) -> Result<i32> {
    let mut v: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `v`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut v) })?;
    Ok(v)
}

/// The host's `poll` bits for `fd` right now (all of them, `POLLRDHUP` included).
pub fn poll_now(fd: BorrowedFd<'_>, events: i16) -> Result<u32> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, borrowed mutably for the call; zero timeout.
    check(unsafe { libc::poll(&mut p, 1, 0) })?;
    Ok(u32::from(p.revents as u16))
}
