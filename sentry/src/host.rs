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
