//! The shim's host calls that need `unsafe`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Own a descriptor that an `SCM_RIGHTS` message just installed in this process.
pub fn received_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the kernel installed `fd` in this process for the message just received;
    // nothing else refers to it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// TIOCSWINSZ: set the window size of the terminal `tty`.
pub fn set_winsize(tty: &impl AsRawFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer, which points to
    // a live local of that type for the duration of the call.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
