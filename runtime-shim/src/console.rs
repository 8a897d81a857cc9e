//! Terminals for `process.terminal`, as runc makes them: a host pty whose master goes to
//! whoever asked with `--console-socket` (podman's conmon, containerd's shim) and whose
//! slave goes to the sentry, which bridges it to a pty of the sandbox (see
//! `sentry::fs::devpts::bridge`). Also the client side of fd passing on the control socket.

use anyhow::{bail, Context};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// A new host pty: (master, slave), the slave `rows` x `cols` when a size is given.
pub fn open_pty(size: Option<(u16, u16)>) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let ws = size.map(|(rows, cols)| nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty = nix::pty::openpty(ws.as_ref(), None).context("cannot open a pseudo-terminal")?;
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .context("pty: FD_CLOEXEC")?;
    }
    Ok((pty.master, pty.slave))
}

/// runc's console-socket protocol: connect to the unix socket at `path` and send
/// `master` in one message, with the pty's name as the data and the fd in an
/// `SCM_RIGHTS` control message.
pub fn send_console(path: &Path, master: &OwnedFd) -> anyhow::Result<()> {
    let sock = UnixStream::connect(path)
        .with_context(|| format!("--console-socket {}: cannot connect", path.display()))?;
    send_with_fds(&sock, b"/dev/ptmx", &[master.as_fd()]).with_context(|| {
        format!(
            "--console-socket {}: cannot send the console",
            path.display()
        )
    })
}

/// Send all of `data` on `sock`, with `fds` in an `SCM_RIGHTS` message beside its first
/// byte (so a reader receives them with the first bytes it reads).
pub fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[BorrowedFd<'_>]) -> anyhow::Result<()> {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut sent = 0;
    while sent < data.len() {
        let rest = data.get(sent..).unwrap_or_default();
        let iov = [IoSlice::new(rest)];
        let cmsg = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage<'_>] = if sent == 0 && !raw.is_empty() {
            &cmsg
        } else {
            &[]
        };
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(0) => bail!("the peer closed the socket"),
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
