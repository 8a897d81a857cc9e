//! Host fds the sentry was given (the container's stdio): data goes to and from the host
//! fd, a few terminal `ioctl`s are forwarded, everything else is the sentry's own.
//!
//! A host fd is never read or written while it would block: readiness comes from a
//! zero-timeout host `poll`, and a task that must wait sleeps on the file's wait queue,
//! which the [`notifier`] thread wakes. The host fd itself keeps its blocking mode: it may
//! be shared with processes outside the sandbox (a terminal), so the sentry must not set
//! `O_NONBLOCK` on it.
#![deny(unsafe_code)]

pub mod notifier;

use crate::error::Result;
use crate::host::{tty_ioctl, TtyIoctl};
use crate::kernel::tty::{JobControl, Terminal};
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{anon_dev, FileDescription, FileState, Stat, Timespec};
use crate::{errno, return_errno};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, OnceLock};

/// An open description over a donated host fd (a tty, pipe, or file on the host side).
pub struct HostFile {
    fd: OwnedFd,
    state: FileState,
    /// Inode numbers are the sentry's, stable per description (the host's would leak).
    ino: u64,
    /// Made on first use: `None` if the host fd cannot be waited for (a regular file).
    queue: OnceLock<Option<Arc<WaitQueue>>>,
    /// The console, if the host fd is a terminal.
    console: Option<Arc<HostConsole>>,
}

fn host_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(anon_dev)
}

impl HostFile {
    /// Wrap `fd`; `flags` are the access mode and status flags the application sees.
    pub fn new(fd: OwnedFd, flags: u32) -> HostFile {
        let console = HostConsole::over(&fd);
        HostFile::with_console(fd, flags, console)
    }

    /// Wrap `fd`, a terminal that is `console` (shared with the other descriptions of
    /// the same terminal), or not a terminal (`None`).
    pub fn with_console(fd: OwnedFd, flags: u32, console: Option<Arc<HostConsole>>) -> HostFile {
        static NEXT_INO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let ino = NEXT_INO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HostFile {
            fd,
            state: FileState::new(flags),
            ino,
            queue: OnceLock::new(),
            console,
        }
    }

    /// `EAGAIN` unless the host fd has one of `wanted` (or an error or hang-up) now, for
    /// fds that can block; reads and writes then never block in the host.
    fn check_ready(&self, wanted: u32) -> Result<()> {
        if self.wait_queue().is_some()
            && self.readiness() & (wanted | events::ERR | events::HUP) == 0
        {
            return_errno!(EAGAIN);
        }
        Ok(())
    }

    /// The access mode of a host fd, from `F_GETFL`.
    pub fn host_access_mode(fd: &OwnedFd) -> u32 {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
            .map(|f| (f & libc::O_ACCMODE) as u32)
            .unwrap_or(libc::O_RDWR as u32)
    }
}

impl FileDescription for HostFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        self.check_ready(events::IN)?;
        match offset {
            Some(off) => {
                let off = i64::try_from(off).map_err(|_| errno!(EINVAL))?;
                Ok(nix::sys::uio::pread(self.fd.as_fd(), buf, off)?)
            }
            None => Ok(nix::unistd::read(self.fd.as_fd(), buf)?),
        }
    }

    fn write(&self, buf: &[u8], offset: Option<u64>) -> Result<usize> {
        // TODO: a write larger than the room in a host pipe still blocks in the host
        // until the reader drains it; cut writes to PIPE_BUF for host FIFOs if it matters.
        self.check_ready(events::OUT)?;
        match offset {
            Some(off) => {
                let off = i64::try_from(off).map_err(|_| errno!(EINVAL))?;
                Ok(nix::sys::uio::pwrite(self.fd.as_fd(), buf, off)?)
            }
            None => Ok(nix::unistd::write(self.fd.as_fd(), buf)?),
        }
    }

    fn tty(&self) -> Option<Arc<dyn Terminal>> {
        self.console.clone().map(|c| c as Arc<dyn Terminal>)
    }

    /// Stdio redirected to a file seeks like it would for a child process: the offset is
    /// the host file description's, shared with whoever handed it to the sandbox.
    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        let whence = match whence {
            libc::SEEK_SET => nix::unistd::Whence::SeekSet,
            libc::SEEK_CUR => nix::unistd::Whence::SeekCur,
            libc::SEEK_END => nix::unistd::Whence::SeekEnd,
            libc::SEEK_DATA => nix::unistd::Whence::SeekData,
            libc::SEEK_HOLE => nix::unistd::Whence::SeekHole,
            _ => return Err(errno!(EINVAL)),
        };
        let pos = nix::unistd::lseek(self.fd.as_fd(), offset, whence)?;
        u64::try_from(pos).map_err(|_| errno!(EOVERFLOW))
    }

    fn stat(&self) -> Result<Stat> {
        let st = nix::sys::stat::fstat(self.fd.as_fd())?;
        let now = Timespec::now();
        // Only the type and permission bits, size and rdev of the host object are shown;
        // identity (dev, ino, owners) is the sandbox's.
        let mode = st.st_mode & (libc::S_IFMT | 0o7777);
        Ok(Stat {
            dev: host_dev(),
            ino: self.ino,
            mode,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: if mode & libc::S_IFMT == libc::S_IFCHR {
                st.st_rdev
            } else {
                0
            },
            size: if mode & libc::S_IFMT == libc::S_IFREG {
                u64::try_from(st.st_size).unwrap_or(0)
            } else {
                0
            },
            blksize: 4096,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
        })
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        if let Some(term) = self.tty() {
            let flags = self.state.flags();
            if let Some(r) =
                crate::kernel::tty::job_control_ioctl(task, &term, false, flags, cmd, arg)
            {
                return r;
            }
        } else if JOB_CONTROL_IOCTLS.contains(&u64::from(cmd)) {
            return_errno!(ENOTTY);
        }
        let Some(op) = TtyIoctl::from_cmd(cmd) else {
            return_errno!(ENOTTY)
        };
        let mut buf = [0u8; crate::host::KERNEL_TERMIOS_SIZE];
        let arg_buf = buf.get_mut(..op.arg_size()).ok_or(errno!(EINVAL))?;
        if op.reads_arg() {
            task.copy_in(arg, arg_buf)?;
        }
        if let (TtyIoctl::Tcsets(_), Some(term)) = (op, self.tty()) {
            // A background job changing the terminal's settings is stopped first, as on
            // any terminal (Linux's tty_check_change).
            crate::kernel::tty::check_background(task, &*term, libc::SIGTTOU)?;
        }
        let r = tty_ioctl(self.fd.as_fd(), op, arg_buf)?;
        if !op.reads_arg() {
            task.copy_out(arg, arg_buf)?;
        }
        Ok(u64::try_from(r).unwrap_or(0))
    }

    fn status_flags(&self) -> u32 {
        self.state.flags()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        // O_NONBLOCK stays the sentry's business: the host fd keeps blocking semantics;
        // the application's flag decides whether the syscall layer waits on `EAGAIN`.
        self.state.set_flags(flags);
        Ok(())
    }

    fn readiness(&self) -> u32 {
        let want = PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLPRI;
        let mut fds = [PollFd::new(self.fd.as_fd(), want)];
        match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds
                .first()
                .and_then(PollFd::revents)
                .map(|r| r.bits() as u16 as u32)
                .unwrap_or(0),
            Err(_) => events::ERR,
        }
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        self.queue
            .get_or_init(|| {
                let q = Arc::new(WaitQueue::new());
                match notifier::register(self.fd.as_fd(), &q) {
                    Ok(true) => Some(q),
                    Ok(false) => None,
                    Err(e) => {
                        tracing::warn!("host fd {}: cannot watch it: {e}", self.ino);
                        None
                    }
                }
            })
            .clone()
    }
}

/// The requests [`crate::kernel::tty::job_control_ioctl`] answers: `ENOTTY` on a host fd
/// that is not a terminal, never forwarded.
const JOB_CONTROL_IOCTLS: [u64; 5] = [
    libc::TIOCGPGRP,
    libc::TIOCSPGRP,
    libc::TIOCGSID,
    libc::TIOCSCTTY,
    libc::TIOCNOTTY,
];

impl Drop for HostFile {
    fn drop(&mut self) {
        if self.queue.get().is_some_and(Option::is_some) {
            notifier::unregister(self.fd.as_fd());
        }
    }
}

/// The host terminal the sandbox's stdio is (when it is one), as the sandbox's console:
/// its session and foreground process group are the sandbox's own, kept here in sandbox
/// ids, so the host's process groups never leak in and the host terminal's foreground
/// group never changes. The stdio descriptions over it share one console.
pub struct HostConsole {
    job: JobControl,
    /// A duplicate of one stdio fd on the terminal, to open it again as `/dev/tty`.
    fd: OwnedFd,
}

impl HostConsole {
    /// A console over `fd` if it is a terminal.
    pub fn over(fd: &OwnedFd) -> Option<Arc<HostConsole>> {
        if !nix::unistd::isatty(fd.as_fd()).unwrap_or(false) {
            return None;
        }
        let fd = fd.try_clone().ok()?;
        Some(Arc::new(HostConsole {
            job: JobControl::default(),
            fd,
        }))
    }
}

impl Terminal for HostConsole {
    fn job(&self) -> &JobControl {
        &self.job
    }

    fn tostop(&self) -> bool {
        nix::sys::termios::tcgetattr(self.fd.as_fd())
            .map(|t| {
                t.local_flags
                    .contains(nix::sys::termios::LocalFlags::TOSTOP)
            })
            .unwrap_or(false)
    }

    fn device(&self) -> u64 {
        // The host terminal's number, as the sandbox's stdio already shows it in fstat.
        nix::sys::stat::fstat(self.fd.as_fd())
            .map(|st| st.st_rdev)
            .unwrap_or(0)
    }

    fn reopen(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileDescription>> {
        let fd = self.fd.try_clone().map_err(|_| errno!(EIO))?;
        Ok(Arc::new(HostFile::with_console(fd, flags, Some(self))))
    }
}
