//! The thin host-call layer: the only module of the gofer crate with `unsafe`.
//!
//! Everything `nix` already wraps safely is called through `nix` elsewhere; what is here has
//! no safe wrapper that fits (packet I/O with fds, raw `getdents64`, `AT_EMPTY_PATH` forms).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};

/// One received packet.
pub struct Packet {
    /// Bytes stored in the buffer.
    pub len: usize,
    /// The packet was longer than the buffer (the rest is lost).
    pub truncated: bool,
    /// The fds beside it, if any were accepted.
    pub fds: Vec<OwnedFd>,
    /// More fds were sent than fit; the kernel closed the extras.
    pub fds_truncated: bool,
}

/// Receives one packet. With `max_fds == 0` any fds the peer sends are refused (the kernel
/// closes them). Retries on `EINTR`. A zero `len` means end of stream (or an empty packet,
/// which a SEQPACKET reader cannot tell apart).
pub fn recv_packet(sock: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> Result<Packet, Errno> {
    // Room for up to 4 fds; callers ask for at most 1.
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let cbuf = if max_fds > 0 {
            Some(cmsg.as_mut_slice())
        } else {
            None
        };
        let msg = match socket::recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            cbuf,
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            r => r?,
        };
        let mut fds = Vec::new();
        let mut fds_truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
        if max_fds > 0 {
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    for fd in raw {
                        // SAFETY: the kernel just installed `fd` in our table for this message
                        // (SCM_RIGHTS); nothing else owns it, so taking ownership is sound and
                        // ensures it is closed if we drop it.
                        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
        }
        if fds.len() > max_fds {
            fds_truncated = true;
        }
        return Ok(Packet {
            len: msg.bytes,
            truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
            fds,
            fds_truncated,
        });
    }
}

/// Sends one packet, with an optional fd beside it. Never raises `SIGPIPE`.
pub fn send_packet(
    sock: BorrowedFd<'_>,
    data: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    let iov = [IoSlice::new(data)];
    let raw;
    let mut cmsgs = Vec::new();
    if let Some(fd) = fd {
        raw = [fd.as_raw_fd()];
        cmsgs.push(ControlMessage::ScmRights(&raw));
    }
    loop {
        match socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(n) if n == data.len() => return Ok(()),
            // SEQPACKET sends are atomic; a short send means something is badly wrong.
            Ok(_) => return Err(Errno::EMSGSIZE),
        }
    }
}

/// `getdents64(2)` into `buf`; returns the number of bytes filled, 0 at the end.
pub fn getdents64(dir: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, which we borrow mutably
    // for the duration of the call; `dir` is a live fd.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    };
    let n = Errno::result(n)?;
    usize::try_from(n).map_err(|_| Errno::EIO)
}

/// `fstatfs(2)`; works on `O_PATH` fds.
pub fn fstatfs(fd: BorrowedFd<'_>) -> Result<libc::statfs, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is a valid out-pointer for one `struct statfs`; `fd` is live.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    Errno::result(r)?;
    // SAFETY: fstatfs returned success, so it filled the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`: set times on the file `fd` refers to (an
/// `O_PATH` fd is fine, and a symlink is not followed).
pub fn utimens_fd(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> Result<(), Errno> {
    // SAFETY: the path is a NUL-terminated empty string and `times` points to two timespecs,
    // both alive across the call.
    let r = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)` (Linux 6.6+): chmod the file `fd` refers to,
/// which may be an `O_PATH` fd, without a path lookup that could race.
pub fn fchmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: the path is a NUL-terminated empty string alive across the call; the other
    // arguments are plain integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// `fgetxattr(2)`: the value of `name` into `buf` (size 0 asks for the length).
pub fn fgetxattr(
    fd: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    buf: &mut [u8],
) -> Result<usize, Errno> {
    // SAFETY: `name` is NUL-terminated; the kernel writes at most `buf.len()` bytes into
    // `buf`, which we borrow mutably across the call; `fd` is live.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(Errno::result(n)?).map_err(|_| Errno::EIO)
}

/// `fsetxattr(2)`.
pub fn fsetxattr(
    fd: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    value: &[u8],
    flags: i32,
) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and `value` is a live slice of `value.len()` bytes,
    // both borrowed across the call; `fd` is live.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    Errno::result(r).map(drop)
}

/// `flistxattr(2)`: NUL-terminated names into `buf` (size 0 asks for the length).
pub fn flistxattr(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`, borrowed mutably
    // across the call; `fd` is live.
    let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(Errno::result(n)?).map_err(|_| Errno::EIO)
}

/// `fremovexattr(2)`.
pub fn fremovexattr(fd: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and alive across the call; `fd` is live.
    let r = unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) };
    Errno::result(r).map(drop)
}
