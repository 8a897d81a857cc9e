//! Terminals (`ctr run -t`, `ctr task exec -t`): as runc's shim, the shim gives `carapace`
//! a `--console-socket`, receives the container's pty master on it, and copies between
//! the master and containerd's fifos (stdin → master, master → stdout); `resize_pty` sets
//! the master's window size.

use anyhow::{bail, Context};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A console socket waiting for `carapace` to send the master. The path is short (unix
/// socket paths may have 107 bytes; bundle paths under the CRI are longer) and removed
/// on drop.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new() -> anyhow::Result<ConsoleSocket> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "carapace-console-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("console socket {}", path.display()))?;
        Ok(ConsoleSocket { path, listener })
    }

    pub fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The master `carapace` sent (it has connected and sent it by the time the command
    /// that was given the socket returned successfully).
    pub fn receive(&self) -> anyhow::Result<OwnedFd> {
        self.listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let (stream, _) = loop {
            match self.listener.accept() {
                Ok(s) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        bail!("carapace did not send the console");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e).context("console socket: accept"),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("console socket: recvmsg")?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().context("console socket: control messages")? {
            if let ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        let mut owned: Vec<OwnedFd> = fds.into_iter().map(crate::host::received_fd).collect();
        match owned.len() {
            1 => owned.pop().context("console socket: no descriptor"),
            n => bail!("console socket: {n} descriptors instead of one"),
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copy containerd's stdin fifo into the master and the master into the stdout fifo,
/// each on its own thread; they end when their source does (the master reads EIO once
/// the container's side of the terminal is closed).
pub fn copy(master: &Arc<File>, stdin: Option<File>, stdout: Option<File>) {
    if let Some(mut input) = stdin {
        let m = Arc::clone(master);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut input, &mut m.as_ref());
        });
    }
    if let Some(mut out) = stdout {
        let m = Arc::clone(master);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut m.as_ref(), &mut out);
        });
    }
}

/// Set the terminal's size (`resize_pty`).
pub fn resize(master: &File, width: u32, height: u32) -> anyhow::Result<()> {
    crate::host::set_winsize(
        master,
        u16::try_from(height).unwrap_or(u16::MAX),
        u16::try_from(width).unwrap_or(u16::MAX),
    )
    .context("TIOCSWINSZ")
}
