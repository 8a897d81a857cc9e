//! The CLI's host-call layer: the only place in this crate with `unsafe`.

use std::os::fd::{FromRawFd, OwnedFd};

/// Take ownership of a descriptor the parent process left open for us and named on our
/// command line (`--sock-fd 3`).
pub fn take_inherited_fd(fd: i32) -> anyhow::Result<OwnedFd> {
    if fd < 3 {
        anyhow::bail!("fd {fd} is standard I/O, not an inherited descriptor");
    }
    // SAFETY: F_GETFD only reads the descriptor table entry for `fd`.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        anyhow::bail!("fd {fd} is not open");
    }
    // SAFETY: the fd is open (checked above) and was handed to this process by number;
    // nothing else in this process owns it, so the OwnedFd becomes its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
