//! One pseudo-terminal pair: the [`Pty`] both sides share (line discipline, window size,
//! lock, packet mode, open counts, job control), its `ioctl`s, and the open descriptions
//! of its master and slaves.
#![deny(unsafe_code)]

use super::ldisc::{LineDiscipline, Termios, TERMIOS2_SIZE, TERMIOS_SIZE};
use super::{devpts_statfs, file_status, lock, DevptsFs};
use crate::error::Result;
use crate::fs::dev::makedev;
use crate::kernel::tty::{JobControl, Terminal};
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{FdFlags, FileDescription, Stat, StatFs, StatusFlags, Timespec, VfsPath};
use crate::{errno, return_errno};
use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// The slaves' device major (`UNIX98_PTY_SLAVE_MAJOR`); minors are the pty indices.
const PTS_MAJOR: u64 = 136;

// ioctl requests not in the libc crate for x86_64 (asm-generic/ioctls.h).
const TCGETS2: u32 = 0x802c_542a;
const TCSETS2: u32 = 0x402c_542b;
const TCSETSW2: u32 = 0x402c_542c;
const TCSETSF2: u32 = 0x402c_542d;
const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPKT: u32 = 0x8004_5438;
const TIOCGPTLCK: u32 = 0x8004_5439;
const TIOCGPTPEER: u32 = 0x5441;
const TIOCSIG: u32 = 0x4004_5436;
const TIOCPKT_DATA: u8 = 0;
const TIOCPKT_FLUSHREAD: u8 = 1;
const TIOCPKT_FLUSHWRITE: u8 = 2;
const TIOCPKT_STOP: u8 = 4;
const TIOCPKT_START: u8 = 8;

// ---- the pty ----

pub(super) struct PtyState {
    pub(super) ld: LineDiscipline,
    /// `struct winsize`: rows, columns, x and y pixels.
    pub(super) winsize: [u16; 4],
    /// TIOCSPTLCK: the slave cannot be opened (a new pty starts locked).
    pub(super) locked: bool,
    pub(super) master_open: bool,
    /// Open slave descriptions.
    pub(super) slaves: u32,
    /// Every slave description that was open has closed: master reads fail with EIO
    /// and poll reports POLLHUP (Linux's TTY_OTHER_CLOSED).
    pub(super) other_closed: bool,
    /// TIOCPKT: master reads start with a status byte.
    pub(super) packet: bool,
    pub(super) pkt_status: u8,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mode: u32,
    pub(super) times: (Timespec, Timespec),
    /// The index went back to the filesystem.
    pub(super) released: bool,
}

impl PtyState {
    /// The master closed: the slave is hung up.
    pub(super) fn hung_up(&self) -> bool {
        !self.master_open
    }
}

/// A pseudo-terminal pair.
pub struct Pty {
    pub(super) index: u32,
    pub(super) fs: Weak<DevptsFs>,
    pub(super) dev: u64,
    pub(super) state: Mutex<PtyState>,
    /// Notified when the master may read or write.
    pub(super) master_queue: Arc<WaitQueue>,
    /// Notified when a slave may read or write.
    pub(super) slave_queue: Arc<WaitQueue>,
    pub(super) job: JobControl,
    /// `/dev/pts/N`, for slave descriptions opened without a path.
    pub(super) slave_path: OnceLock<VfsPath>,
}

impl Pty {
    /// A new pty `index` of `fs` (device `dev`), locked, its slave owned by `uid`/`gid`.
    pub(super) fn new(index: u32, fs: Weak<DevptsFs>, dev: u64, uid: u32, gid: u32) -> Arc<Pty> {
        let now = Timespec::now();
        Arc::new(Pty {
            index,
            fs,
            dev,
            state: Mutex::new(PtyState {
                ld: LineDiscipline::default(),
                winsize: [0; 4],
                locked: true,
                master_open: true,
                slaves: 0,
                other_closed: false,
                packet: false,
                pkt_status: 0,
                uid,
                gid,
                mode: 0o620,
                times: (now, now),
                released: false,
            }),
            master_queue: Arc::new(WaitQueue::new()),
            slave_queue: Arc::new(WaitQueue::new()),
            job: JobControl::default(),
            slave_path: OnceLock::new(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, PtyState> {
        lock(&self.state)
    }

    /// The pty's index: the N of `/dev/pts/N`.
    pub fn index(&self) -> u32 {
        self.index
    }

    pub(super) fn stat(&self) -> Stat {
        let st = self.lock();
        Stat {
            dev: self.dev,
            ino: u64::from(self.index) + 3,
            mode: libc::S_IFCHR | st.mode,
            nlink: 1,
            uid: st.uid,
            gid: st.gid,
            rdev: makedev(PTS_MAJOR, u64::from(self.index)),
            size: 0,
            blksize: 1024,
            blocks: 0,
            atime: st.times.0,
            mtime: st.times.1,
            ctime: st.times.1,
        }
    }

    pub(super) fn notify_both(&self) {
        self.master_queue.notify(events::ALL);
        self.slave_queue.notify(events::ALL);
    }

    /// Both sides are closed: the index may be used again (once).
    pub(super) fn release_if_unused(&self, st: &mut PtyState) {
        if st.master_open || st.slaves > 0 || st.released {
            return;
        }
        st.released = true;
        if let Some(fs) = self.fs.upgrade() {
            lock(&fs.state).used.remove(&self.index);
        }
    }

    /// The master's last close (or the host side of a bridged console went away): the
    /// slave hangs up and its node goes (Linux's `pty_close` with `devpts_pty_kill` and
    /// `tty_vhangup`). Only the first call does anything.
    pub fn hang_up(&self) {
        {
            let mut st = self.lock();
            if !st.master_open {
                return;
            }
            st.master_open = false;
        }
        // The node goes before the index is free for another pty.
        if let Some(fs) = self.fs.upgrade() {
            let mut fst = lock(&fs.state);
            if fst
                .nodes
                .get(&self.index)
                .is_some_and(|p| std::ptr::eq(Arc::as_ptr(p), self))
            {
                fst.nodes.remove(&self.index);
            }
        }
        self.release_if_unused(&mut self.lock());
        self.notify_both();
        self.job.hangup();
    }

    /// A new window size; the foreground group gets SIGWINCH if it changed.
    pub fn set_winsize(&self, w: [u16; 4]) {
        let changed = {
            let mut st = self.lock();
            let changed = st.winsize != w;
            st.winsize = w;
            changed
        };
        if changed {
            self.job.signal_foreground(libc::SIGWINCH);
        }
    }

    /// Input typed at the master.
    pub(super) fn master_write(&self, data: &[u8]) -> Result<usize> {
        let r = {
            let mut st = self.lock();
            let r = st.ld.receive(data);
            if st.packet {
                if r.flushed {
                    st.pkt_status |= TIOCPKT_FLUSHREAD;
                }
                if r.stop_changed {
                    st.pkt_status &= !(TIOCPKT_STOP | TIOCPKT_START);
                    st.pkt_status |= if st.ld.stopped {
                        TIOCPKT_STOP
                    } else {
                        TIOCPKT_START
                    };
                }
            }
            r
        };
        self.notify_both();
        for sig in &r.signals {
            self.job.signal_foreground(*sig);
        }
        if r.consumed == 0 && !data.is_empty() {
            return_errno!(EAGAIN);
        }
        Ok(r.consumed)
    }

    /// Output for the master to read.
    pub(super) fn master_read(&self, buf: &mut [u8]) -> Result<usize> {
        let n = {
            let mut st = self.lock();
            if st.packet {
                let Some((first, rest)) = buf.split_first_mut() else {
                    return Ok(0);
                };
                if st.pkt_status != 0 {
                    *first = st.pkt_status;
                    st.pkt_status = 0;
                    1
                } else if !st.ld.out.is_empty() {
                    *first = TIOCPKT_DATA;
                    1 + st.ld.read_output(rest)
                } else if st.other_closed {
                    return_errno!(EIO);
                } else {
                    return_errno!(EAGAIN);
                }
            } else if !st.ld.out.is_empty() {
                st.ld.read_output(buf)
            } else if buf.is_empty() {
                0
            } else if st.other_closed {
                return_errno!(EIO);
            } else {
                return_errno!(EAGAIN);
            }
        };
        self.slave_queue.notify(events::OUT | events::WRNORM);
        Ok(n)
    }

    pub(super) fn slave_read(&self, buf: &mut [u8]) -> Result<usize> {
        let n = {
            let mut st = self.lock();
            if st.hung_up() {
                return Ok(0);
            }
            st.ld.read(buf).ok_or(errno!(EAGAIN))?
        };
        self.master_queue.notify(events::OUT | events::WRNORM);
        Ok(n)
    }

    pub(super) fn slave_write(&self, data: &[u8]) -> Result<usize> {
        let n = {
            let mut st = self.lock();
            if st.hung_up() {
                return_errno!(EIO);
            }
            st.ld.write(data)
        };
        if n == 0 && !data.is_empty() {
            return_errno!(EAGAIN);
        }
        self.master_queue.notify(events::IN | events::RDNORM);
        Ok(n)
    }

    pub(super) fn master_readiness(&self) -> u32 {
        let st = self.lock();
        let mut ev = 0;
        if !st.ld.out.is_empty() || (st.packet && st.pkt_status != 0) {
            ev |= events::IN | events::RDNORM;
        }
        if st.packet && st.pkt_status != 0 {
            ev |= events::PRI;
        }
        if st.ld.input_room() {
            ev |= events::OUT | events::WRNORM;
        }
        if st.other_closed {
            ev |= events::HUP;
        }
        ev
    }

    pub(super) fn slave_readiness(&self) -> u32 {
        let st = self.lock();
        if st.hung_up() {
            return events::IN
                | events::OUT
                | events::ERR
                | events::HUP
                | events::RDNORM
                | events::WRNORM;
        }
        let mut ev = 0;
        if st.ld.readable() {
            ev |= events::IN | events::RDNORM;
        }
        if st.ld.output_room() {
            ev |= events::OUT | events::WRNORM;
        }
        ev
    }

    /// The `ioctl`s both sides share (on the master they act on the slave, as Linux's
    /// `tty_mode_ioctl` and `tiocswinsz` do through `tty->link`).
    pub(super) fn ioctl(
        self: &Arc<Self>,
        task: &Task,
        master: bool,
        file_flags: u32,
        cmd: u32,
        arg: UserAddr,
    ) -> Result<u64> {
        if !master && self.lock().hung_up() {
            // Linux's hung_up_tty_ioctl.
            if u64::from(cmd) == libc::TIOCSPGRP {
                return_errno!(ENOTTY);
            }
            return_errno!(EIO);
        }
        let term: Arc<dyn Terminal> = self.clone();
        if let Some(r) =
            crate::kernel::tty::job_control_ioctl(task, &term, master, file_flags, cmd, arg)
        {
            return r;
        }
        let check_bg = || -> Result<()> {
            if master {
                Ok(())
            } else {
                crate::kernel::tty::check_background(task, &**self, libc::SIGTTOU)
            }
        };
        match cmd {
            c if u64::from(c) == libc::TCGETS || c == TCGETS2 => {
                let t = self.lock().ld.termios;
                task.copy_out(arg, &t.to_bytes(c == TCGETS2))?;
                Ok(0)
            }
            c if [libc::TCSETS, libc::TCSETSW, libc::TCSETSF].contains(&u64::from(c))
                || [TCSETS2, TCSETSW2, TCSETSF2].contains(&c) =>
            {
                let long = [TCSETS2, TCSETSW2, TCSETSF2].contains(&c);
                let mut buf = vec![0u8; if long { TERMIOS2_SIZE } else { TERMIOS_SIZE }];
                task.copy_in(arg, &mut buf)?;
                let t = Termios::from_bytes(&buf).ok_or(errno!(EINVAL))?;
                check_bg()?;
                {
                    let mut st = self.lock();
                    // TCSETSW would wait for output to drain: the master's queue is
                    // never "in transmission", as Linux's pty has no chars_in_buffer.
                    if u64::from(c) == libc::TCSETSF || c == TCSETSF2 {
                        st.ld.flush_input();
                    }
                    st.ld.set_termios(t);
                }
                self.notify_both();
                Ok(0)
            }
            c if u64::from(c) == libc::TIOCGWINSZ => {
                let w = self.lock().winsize;
                let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_ne_bytes()).collect();
                task.copy_out(arg, &bytes)?;
                Ok(0)
            }
            c if u64::from(c) == libc::TIOCSWINSZ => {
                let mut bytes = [0u8; 8];
                task.copy_in(arg, &mut bytes)?;
                let mut w = [0u16; 4];
                for (v, ch) in w.iter_mut().zip(bytes.chunks_exact(2)) {
                    *v = u16::from_ne_bytes([
                        ch.first().copied().unwrap_or(0),
                        ch.get(1).copied().unwrap_or(0),
                    ]);
                }
                self.set_winsize(w);
                Ok(0)
            }
            c if u64::from(c) == libc::FIONREAD => {
                let n = {
                    let st = self.lock();
                    if master {
                        st.ld.out.len()
                    } else {
                        st.ld.input_len()
                    }
                };
                task.write_obj(arg, &i32::try_from(n).unwrap_or(i32::MAX))?;
                Ok(0)
            }
            c if u64::from(c) == libc::TIOCOUTQ => {
                // Linux's pty keeps nothing "in the driver": 0 on both sides.
                task.write_obj(arg, &0i32)?;
                Ok(0)
            }
            c if u64::from(c) == libc::TCFLSH => {
                check_bg()?;
                let which = i32::try_from(arg.0).map_err(|_| errno!(EINVAL))?;
                // The master's input is the slave's output and the other way round.
                let (slave_in, slave_out) = match (which, master) {
                    (libc::TCIFLUSH, false) | (libc::TCOFLUSH, true) => (true, false),
                    (libc::TCOFLUSH, false) | (libc::TCIFLUSH, true) => (false, true),
                    (libc::TCIOFLUSH, _) => (true, true),
                    _ => return_errno!(EINVAL),
                };
                {
                    let mut st = self.lock();
                    if slave_in {
                        st.ld.flush_input();
                    }
                    if slave_out {
                        st.ld.flush_output();
                    }
                    if st.packet {
                        if slave_in {
                            st.pkt_status |= TIOCPKT_FLUSHREAD;
                        }
                        if slave_out {
                            st.pkt_status |= TIOCPKT_FLUSHWRITE;
                        }
                    }
                }
                self.notify_both();
                Ok(0)
            }
            c if u64::from(c) == libc::TCXONC => {
                check_bg()?;
                let action = i32::try_from(arg.0).map_err(|_| errno!(EINVAL))?;
                {
                    let mut st = self.lock();
                    match action {
                        libc::TCOOFF => st.ld.stopped = true,
                        libc::TCOON => st.ld.stopped = false,
                        // Sending STOP/START characters to a pty's other side is a
                        // no-op here: nothing reads flow-control characters from it.
                        libc::TCIOFF | libc::TCION => {}
                        _ => return_errno!(EINVAL),
                    }
                }
                self.notify_both();
                Ok(0)
            }
            c if u64::from(c) == libc::TCSBRK || u64::from(c) == libc::TCSBRKP => {
                // tcdrain() and tcsendbreak(): nothing waits for a pty.
                Ok(0)
            }
            c if u64::from(c) == libc::TIOCSTI => {
                // Faking input is off, as with Linux's dev.tty.legacy_tiocsti = 0.
                return_errno!(EIO)
            }
            c if u64::from(c) == libc::TIOCEXCL || u64::from(c) == libc::TIOCNXCL => Ok(0),
            c if u64::from(c) == libc::TIOCGETD => {
                // The line discipline: always N_TTY.
                task.write_obj(arg, &0i32)?;
                Ok(0)
            }
            c if u64::from(c) == libc::TIOCSETD => {
                let ld: i32 = task.read_obj(arg)?;
                if ld != 0 {
                    return_errno!(EINVAL);
                }
                Ok(0)
            }
            _ if master => self.master_ioctl(task, cmd, arg),
            _ => Err(errno!(ENOTTY)),
        }
    }

    /// The requests only a master answers (Linux's `pty_unix98_ioctl`).
    pub(super) fn master_ioctl(
        self: &Arc<Self>,
        task: &Task,
        cmd: u32,
        arg: UserAddr,
    ) -> Result<u64> {
        match cmd {
            TIOCSPTLCK => {
                let on: i32 = task.read_obj(arg)?;
                self.lock().locked = on != 0;
                Ok(0)
            }
            TIOCGPTLCK => {
                let on = i32::from(self.lock().locked);
                task.write_obj(arg, &on)?;
                Ok(0)
            }
            TIOCGPTN => {
                task.write_obj(arg, &self.index)?;
                Ok(0)
            }
            c if u64::from(c) == libc::TIOCPKT => {
                let on: i32 = task.read_obj(arg)?;
                let mut st = self.lock();
                st.packet = on != 0;
                st.pkt_status = 0;
                Ok(0)
            }
            TIOCSIG => {
                // Signal the slave's foreground group, as if the key had been typed;
                // only the three signal keys' signals (Linux's pty_signal).
                let sig = i32::try_from(arg.0).map_err(|_| errno!(EINVAL))?;
                if ![libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP].contains(&sig) {
                    return_errno!(EINVAL);
                }
                self.job.signal_foreground(sig);
                Ok(0)
            }
            TIOCGPKT => {
                let on = i32::from(self.lock().packet);
                task.write_obj(arg, &on)?;
                Ok(0)
            }
            TIOCGPTPEER => {
                // The argument is the open flags of the new slave description.
                // Like open(2), flags it has no use for are ignored.
                let kept =
                    (libc::O_ACCMODE | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK) as u32;
                let flags = u32::try_from(arg.0).map_err(|_| errno!(EINVAL))? & kept;
                let file = SlaveFile::open(self.clone(), flags, None)?;
                let cloexec = flags & libc::O_CLOEXEC as u32 != 0;
                let fd = task.files().insert(file, FdFlags { cloexec })?;
                Ok(fd as u64)
            }
            _ => Err(errno!(ENOTTY)),
        }
    }
}

impl Terminal for Pty {
    fn job(&self) -> &JobControl {
        &self.job
    }

    fn tostop(&self) -> bool {
        self.lock().ld.termios.l(libc::TOSTOP)
    }

    fn reopen(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileDescription>> {
        Ok(SlaveFile::open(self, flags, None)?)
    }

    fn device(&self) -> u64 {
        makedev(PTS_MAJOR, u64::from(self.index))
    }
}

// ---- open descriptions ----

/// An open master (from `/dev/ptmx`).
pub struct MasterFile {
    pub(super) pty: Arc<Pty>,
    pub(super) flags: StatusFlags,
    pub(super) path: VfsPath,
}

impl MasterFile {
    pub fn pty(&self) -> &Arc<Pty> {
        &self.pty
    }
}

impl Drop for MasterFile {
    fn drop(&mut self) {
        self.pty.hang_up();
    }
}

impl FileDescription for MasterFile {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        self.pty.master_read(buf)
    }

    fn write(&self, buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        self.pty.master_write(buf)
    }

    fn stat(&self) -> Result<Stat> {
        self.path.inode().stat()
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        self.pty.ioctl(task, true, self.flags.get(), cmd, arg)
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }

    fn readiness(&self) -> u32 {
        self.pty.master_readiness()
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.pty.master_queue.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

/// An open slave (`/dev/pts/N`, TIOCGPTPEER, or `/dev/tty`).
pub struct SlaveFile {
    pub(super) pty: Arc<Pty>,
    pub(super) flags: StatusFlags,
    pub(super) path: Option<VfsPath>,
}

impl SlaveFile {
    /// A new slave description: `EIO` while the pty is locked or after its master
    /// closed, as Linux's `pty_open`.
    pub(super) fn open(pty: Arc<Pty>, flags: u32, path: Option<VfsPath>) -> Result<Arc<SlaveFile>> {
        {
            let mut st = pty.lock();
            if st.locked || st.hung_up() {
                return_errno!(EIO);
            }
            st.slaves = st.slaves.saturating_add(1);
            st.other_closed = false;
        }
        pty.master_queue.notify(events::ALL);
        let path = path.or_else(|| pty.slave_path.get().cloned());
        Ok(Arc::new(SlaveFile {
            pty,
            flags: StatusFlags::new(file_status(flags)),
            path,
        }))
    }
}

impl Drop for SlaveFile {
    fn drop(&mut self) {
        {
            let mut st = self.pty.lock();
            st.slaves = st.slaves.saturating_sub(1);
            if st.slaves == 0 {
                st.other_closed = true;
            }
            self.pty.release_if_unused(&mut st);
        }
        self.pty.notify_both();
    }
}

impl FileDescription for SlaveFile {
    fn read(&self, buf: &mut [u8], _offset: Option<u64>) -> Result<usize> {
        self.pty.slave_read(buf)
    }

    fn write(&self, buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        self.pty.slave_write(buf)
    }

    fn stat(&self) -> Result<Stat> {
        Ok(self.pty.stat())
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(devpts_statfs())
    }

    fn ioctl(&self, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
        self.pty.ioctl(task, false, self.flags.get(), cmd, arg)
    }

    fn status_flags(&self) -> u32 {
        self.flags.get()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.flags.set(flags);
        Ok(())
    }

    fn path(&self) -> Option<VfsPath> {
        self.path.clone()
    }

    fn readiness(&self) -> u32 {
        self.pty.slave_readiness()
    }

    fn wait_queue(&self) -> Option<Arc<WaitQueue>> {
        Some(self.pty.slave_queue.clone())
    }

    fn read_timeout(&self) -> Option<std::time::Duration> {
        self.pty.lock().ld.read_timeout()
    }

    fn tty(&self) -> Option<Arc<dyn Terminal>> {
        if self.pty.lock().hung_up() {
            return None;
        }
        Some(self.pty.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
