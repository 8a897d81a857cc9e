//! A sandbox console: a devpts pty whose slave is the first process's stdio and
//! controlling terminal, and whose master is bridged to a host terminal fd.
//!
//! This is how a terminal reaches a sandboxed program (`carapace do --tty`, and the OCI
//! runtime's `terminal: true` with `--console-socket`): the host side is only a transport.
//! For the OCI case the CLI makes a host pty pair, sends the host master over the console
//! socket and gives the host slave to the sentry as [`crate::boot::SandboxConfig::console`].
//! The host terminal is put in raw mode, so every byte the user types (^C included)
//! reaches the sandbox's own line discipline, and job control, echo and signals are the
//! sandbox's; resizes of the host terminal are noticed (polled every [`POLL`]) and
//! become the pty's size and a SIGWINCH. When the host side hangs up, so does the pty.
//!
//! Two sentry threads copy the bytes; they never run application code and use only
//! read, write, poll and the terminal ioctls on the one host fd.
#![deny(unsafe_code)]

use super::{file_status, new_pty_at, MasterFile, Pty, SlaveFile};
use crate::error::Result;
use crate::host::{tty_ioctl, TtyIoctl};
use crate::kernel::wait::{events, Blocker};
use crate::vfs::{FileDescription, FsContext, StatusFlags};
use crate::{errno, Errno};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the bridge looks at the host terminal's size and at its stop flag.
pub const POLL: Duration = Duration::from_millis(200);
/// How long [`ConsoleBridge::finish`] waits for the last output to reach the host.
const DRAIN: Duration = Duration::from_secs(2);

/// A running console bridge.
pub struct ConsoleBridge {
    pty: Arc<Pty>,
    slave: Arc<SlaveFile>,
    host: Arc<OwnedFd>,
    /// The host terminal's settings before raw mode, restored at the end.
    saved: Option<termios::Termios>,
    stop: Arc<AtomicBool>,
    output_done: mpsc::Receiver<()>,
}

fn host_winsize(fd: BorrowedFd<'_>) -> Option<[u16; 4]> {
    let mut buf = [0u8; 8];
    tty_ioctl(fd, TtyIoctl::Tiocgwinsz, &mut buf).ok()?;
    let mut w = [0u16; 4];
    for (v, ch) in w.iter_mut().zip(buf.chunks_exact(2)) {
        *v = u16::from_ne_bytes([
            ch.first().copied().unwrap_or(0),
            ch.get(1).copied().unwrap_or(0),
        ]);
    }
    Some(w)
}

impl ConsoleBridge {
    /// Make a pty in the devpts at `/dev/pts` of `ctx` (its slave owned by `uid`, group
    /// tty or `gid`) and bridge its master to `host`, a terminal.
    pub fn new(ctx: &FsContext, host: OwnedFd, uid: u32, gid: u32) -> Result<ConsoleBridge> {
        if !nix::unistd::isatty(host.as_fd()).unwrap_or(false) {
            return Err(errno!(ENOTTY, "the console is not a terminal"));
        }
        let ptmx = ctx.lookup(&ctx.root, b"/dev/pts/ptmx", true)?;
        let pty = new_pty_at(ctx, &ptmx, uid, gid)?;
        pty.lock().locked = false;
        if let Some(w) = host_winsize(host.as_fd()) {
            pty.set_winsize(w);
        }
        let master = Arc::new(MasterFile {
            pty: pty.clone(),
            flags: StatusFlags::new(file_status(libc::O_RDWR as u32)),
            path: ptmx,
        });
        let slave = SlaveFile::open(pty.clone(), libc::O_RDWR as u32, None)?;
        let saved = termios::tcgetattr(host.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(host.as_fd(), SetArg::TCSANOW, &raw)?;
        }
        let host = Arc::new(host);
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, output_done) = mpsc::channel();
        {
            let (master, host, stop) = (master.clone(), host.clone(), stop.clone());
            std::thread::Builder::new()
                .name("console-in".into())
                .spawn(move || host_to_master(&host, &master, &stop))
                .map_err(|_| errno!(EAGAIN))?;
        }
        {
            let (host, stop) = (host.clone(), stop.clone());
            std::thread::Builder::new()
                .name("console-out".into())
                .spawn(move || {
                    master_to_host(&master, &host, &stop);
                    let _ = done_tx.send(());
                })
                .map_err(|_| errno!(EAGAIN))?;
        }
        Ok(ConsoleBridge {
            pty,
            slave,
            host,
            saved,
            stop,
            output_done,
        })
    }

    /// The slave description for the first process's stdio (one description, as a
    /// terminal opened once and duplicated).
    pub fn slave(&self) -> Arc<dyn FileDescription> {
        self.slave.clone()
    }

    /// The slave's node (`/dev/pts/N`), what `/dev/console` is bound to.
    pub fn slave_path(&self) -> Option<crate::vfs::VfsPath> {
        self.pty.slave_path.get().cloned()
    }

    /// The pty's index (`/dev/pts/N`).
    pub fn index(&self) -> u32 {
        self.pty.index()
    }

    /// The sandbox is over: let the last output reach the host (up to [`DRAIN`]) and give
    /// the host terminal its settings back.
    pub fn finish(self) {
        // The slave stays open here (our reference), so the output thread reads what is
        // queued until the master runs dry, then sees the stop flag.
        self.stop.store(true, Ordering::Release);
        self.pty.notify_both();
        let _ = self.output_done.recv_timeout(DRAIN);
    }
}

impl Drop for ConsoleBridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.pty.notify_both();
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(self.host.as_fd(), SetArg::TCSADRAIN, t);
        }
    }
}

/// What the host types becomes master input; the host terminal's size is kept in step.
fn host_to_master(host: &OwnedFd, master: &MasterFile, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    let mut size = host_winsize(host.as_fd());
    let poll_ms = u16::try_from(POLL.as_millis()).unwrap_or(u16::MAX);
    while !stop.load(Ordering::Acquire) {
        let now = host_winsize(host.as_fd());
        if now.is_some() && now != size {
            size = now;
            if let Some(w) = now {
                master.pty.set_winsize(w);
            }
        }
        let mut fds = [PollFd::new(host.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(poll_ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        match nix::unistd::read(host.as_fd(), &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => {
                // The host side hung up (the console socket's peer closed the master).
                master.pty.hang_up();
                return;
            }
            Ok(n) => {
                if !feed(master, buf.get(..n).unwrap_or_default(), stop) {
                    return;
                }
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => {
                tracing::warn!("console: reading the host terminal: {e}");
                master.pty.hang_up();
                return;
            }
        }
    }
}

/// Write all of `data` to the master, waiting while the slave's input queue is full.
fn feed(master: &MasterFile, data: &[u8], stop: &AtomicBool) -> bool {
    let blocker = Blocker::new();
    let mut off = 0;
    while off < data.len() {
        let _reg = master.pty.master_queue.register(&blocker, events::OUT);
        match master.write(data.get(off..).unwrap_or_default(), None) {
            Ok(n) => off += n,
            Err(e) if e.errno == Errno::EAGAIN => {
                if stop.load(Ordering::Acquire) {
                    return false;
                }
                blocker.sleep(Some(Instant::now() + POLL));
            }
            Err(_) => return false,
        }
    }
    true
}

/// The master's output (what the sandbox writes and echoes) goes to the host, until
/// every slave has closed.
fn master_to_host(master: &MasterFile, host: &OwnedFd, stop: &AtomicBool) {
    let blocker = Blocker::new();
    let mut buf = [0u8; 4096];
    loop {
        let _reg = master
            .pty
            .master_queue
            .register(&blocker, events::IN | events::HUP);
        match master.read(&mut buf, None) {
            Ok(n) if n > 0 => {
                if !write_all(host.as_fd(), buf.get(..n).unwrap_or_default()) {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) if e.errno == Errno::EAGAIN => {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                blocker.sleep(Some(Instant::now() + POLL));
            }
            // EIO: every slave is closed, the sandbox is done with its terminal.
            Err(_) => return,
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return false,
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
