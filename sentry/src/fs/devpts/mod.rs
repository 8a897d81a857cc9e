//! devpts: Unix 98 pseudo-terminals (pts(4), `Documentation/filesystems/devpts.rst`).
//!
//! Opening `ptmx` (the devpts node or `/dev/ptmx`, which finds the devpts mounted on its
//! sibling `pts` as Linux does) makes a [`Pty`] and returns its master; the slave appears
//! as `/dev/pts/N` (mode 0620, owned by the opener, group tty), starts locked
//! (`unlockpt`), and its node goes when the master closes, as in Linux. Both sides go
//! through one [`ldisc::LineDiscipline`]; job control (controlling terminal, foreground
//! group, SIGTTIN/SIGTTOU, hang-up) is `kernel::tty`'s, shared with the host console.
//!
//! Reads and writes never block here: they answer `EAGAIN` and the syscall layer waits
//! on the side's wait queue, like pipes.
#![deny(unsafe_code)]

pub mod bridge;
pub mod ldisc;

use crate::error::Result;
use crate::fs::dev::{major, makedev, minor};
use crate::kernel::tty::{JobControl, Terminal};
use crate::kernel::wait::{events, WaitQueue};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{
    anon_dev, check_permission, Creds, DirEntry, FdFlags, FileDescription, FsContext, Inode, Stat,
    StatFs, StatusFlags, Timespec, VfsPath, MAY_READ, MAY_WRITE,
};
use crate::{errno, return_errno};
use ldisc::{LineDiscipline, Termios, TERMIOS2_SIZE, TERMIOS_SIZE};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// `DEVPTS_SUPER_MAGIC`.
const DEVPTS_MAGIC: i64 = 0x1cd1;
/// The slaves' device major (`UNIX98_PTY_SLAVE_MAJOR`); minors are the pty indices.
const PTS_MAJOR: u64 = 136;
/// `/dev/tty` and `/dev/ptmx` (`TTYAUX_MAJOR`).
pub const TTYAUX_MAJOR: u64 = 5;
/// `/proc/sys/kernel/pty/max`'s default.
const PTY_MAX: u32 = 4096;
/// How much of `/etc/group` is read to find the tty group.
const GROUP_FILE_MAX: usize = 1 << 20;

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
const TIOCPKT_DATA: u8 = 0;
const TIOCPKT_FLUSHREAD: u8 = 1;
const TIOCPKT_FLUSHWRITE: u8 = 2;
const TIOCPKT_STOP: u8 = 4;
const TIOCPKT_START: u8 = 8;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- the filesystem ----

/// One devpts instance: its ptys by index.
pub struct DevptsFs {
    dev: u64,
    state: Mutex<FsState>,
    created: Timespec,
    /// The `tty` group of the sandbox's `/etc/group`, looked up once (`None` inside: none).
    tty_gid: OnceLock<Option<u32>>,
}

#[derive(Default)]
struct FsState {
    /// Ptys whose master is open: the `/dev/pts/N` nodes.
    nodes: BTreeMap<u32, Arc<Pty>>,
    /// Indices in use (a slave may outlive its master's node).
    used: BTreeSet<u32>,
}

impl DevptsFs {
    /// A new devpts instance; its root directory inode.
    pub fn new_root() -> Arc<dyn Inode> {
        Arc::new(DevptsRoot {
            fs: Arc::new(DevptsFs {
                dev: anon_dev(),
                state: Mutex::new(FsState::default()),
                created: Timespec::now(),
                tty_gid: OnceLock::new(),
            }),
        })
    }

    /// A new pty whose slave is owned by `uid` and group `gid`: the lowest free index.
    fn new_pty(self: &Arc<Self>, uid: u32, gid: u32) -> Result<Arc<Pty>> {
        let mut st = lock(&self.state);
        let index = (0..PTY_MAX)
            .find(|i| !st.used.contains(i))
            .ok_or(errno!(ENOSPC))?;
        let now = Timespec::now();
        let pty = Arc::new(Pty {
            index,
            fs: Arc::downgrade(self),
            dev: self.dev,
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
        });
        st.used.insert(index);
        st.nodes.insert(index, pty.clone());
        Ok(pty)
    }

    fn pty(&self, index: u32) -> Option<Arc<Pty>> {
        lock(&self.state).nodes.get(&index).cloned()
    }
}

/// The root directory of a devpts: `ptmx` and one node per open pty.
struct DevptsRoot {
    fs: Arc<DevptsFs>,
}

fn parse_index(name: &[u8]) -> Option<u32> {
    if name.len() > 1 && name.first() == Some(&b'0') {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

fn devpts_statfs() -> StatFs {
    StatFs {
        fs_type: DEVPTS_MAGIC,
        bsize: 4096,
        blocks: 0,
        bfree: 0,
        bavail: 0,
        files: 0,
        ffree: 0,
        fsid: [0, 0],
        namelen: 255,
        frsize: 4096,
        flags: 0,
    }
}

impl Inode for DevptsRoot {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        Ok(Stat {
            dev: self.fs.dev,
            ino: 1,
            mode: libc::S_IFDIR | 0o755,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            size: 0,
            blksize: 1024,
            blocks: 0,
            atime: self.fs.created,
            mtime: self.fs.created,
            ctime: self.fs.created,
        })
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtmxNode {
                fs: self.fs.clone(),
            }));
        }
        let index = parse_index(name).ok_or(errno!(ENOENT))?;
        self.fs.pty(index).ok_or(errno!(ENOENT))?;
        // The node looks its pty up on every use: a dentry cached for /dev/pts/3 must
        // not keep showing a pty that is gone, nor miss a new pty 3.
        Ok(Arc::new(SlaveNode {
            fs: self.fs.clone(),
            index,
        }))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>> {
        let mut v = vec![DirEntry {
            ino: 2,
            d_type: libc::DT_CHR,
            name: b"ptmx".to_vec(),
        }];
        for &i in lock(&self.fs.state).nodes.keys() {
            v.push(DirEntry {
                ino: u64::from(i) + 3,
                d_type: libc::DT_CHR,
                name: i.to_string().into_bytes(),
            });
        }
        Ok(v)
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(devpts_statfs())
    }
}

/// `/dev/pts/ptmx`: opened by [`open_tty_device`] like `/dev/ptmx`.
struct PtmxNode {
    fs: Arc<DevptsFs>,
}

impl Inode for PtmxNode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        Ok(Stat {
            dev: self.fs.dev,
            ino: 2,
            // Linux's default ptmxmode is 000; 0666 is what runc and Docker mount with,
            // so that /dev/pts/ptmx is usable as well as /dev/ptmx.
            mode: libc::S_IFCHR | 0o666,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: makedev(TTYAUX_MAJOR, 2),
            size: 0,
            blksize: 1024,
            blocks: 0,
            atime: self.fs.created,
            mtime: self.fs.created,
            ctime: self.fs.created,
        })
    }

    // `open` stays the default ENXIO: the syscall layer opens it with the task at hand.

    fn statfs(&self) -> Result<StatFs> {
        Ok(devpts_statfs())
    }
}

/// `/dev/pts/N`.
struct SlaveNode {
    fs: Arc<DevptsFs>,
    index: u32,
}

impl SlaveNode {
    fn pty(&self) -> Result<Arc<Pty>> {
        self.fs.pty(self.index).ok_or(errno!(ENOENT))
    }
}

impl Inode for SlaveNode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        Ok(self.pty()?.stat())
    }

    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        let pty = self.pty()?;
        Ok(SlaveFile::open(pty, flags, Some(path.clone()))?)
    }

    fn set_mode(&self, mode: u32) -> Result<()> {
        let pty = self.pty()?;
        let mut st = pty.lock();
        st.mode = mode & 0o7777;
        Ok(())
    }

    fn set_owner(&self, uid: Option<u32>, gid: Option<u32>, new_mode: Option<u32>) -> Result<()> {
        let pty = self.pty()?;
        let mut st = pty.lock();
        if let Some(u) = uid {
            st.uid = u;
        }
        if let Some(g) = gid {
            st.gid = g;
        }
        if let Some(m) = new_mode {
            st.mode = m & 0o7777;
        }
        Ok(())
    }

    fn set_times(&self, atime: Option<Timespec>, mtime: Option<Timespec>) -> Result<()> {
        let pty = self.pty()?;
        let mut st = pty.lock();
        if let Some(a) = atime {
            st.times.0 = a;
        }
        if let Some(m) = mtime {
            st.times.1 = m;
        }
        Ok(())
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(devpts_statfs())
    }
}

/// Open a terminal device node (major 5) at `p` for `task`: `/dev/tty` is the caller's
/// controlling terminal; `/dev/ptmx` (found here or as `ptmx` of a devpts) makes a new
/// pty whose slave the caller owns. These need the caller, which an inode's `open` does
/// not have; filesystems answer ENXIO and the syscall layer comes here. `Ok(None)` if
/// `p` is not one of them.
pub fn open_tty_device(
    task: &Task,
    ctx: &FsContext,
    p: &VfsPath,
    flags: u32,
    creds: &Creds,
) -> Result<Option<Arc<dyn FileDescription>>> {
    let st = p.inode().stat()?;
    if st.mode & libc::S_IFMT != libc::S_IFCHR || major(st.rdev) != TTYAUX_MAJOR {
        return Ok(None);
    }
    let want = match flags & libc::O_ACCMODE as u32 {
        a if a == libc::O_RDONLY as u32 => MAY_READ,
        a if a == libc::O_WRONLY as u32 => MAY_WRITE,
        _ => MAY_READ | MAY_WRITE,
    };
    check_permission(&st, creds, want)?;
    match minor(st.rdev) {
        0 => crate::kernel::tty::open_controlling(task, flags).map(Some),
        2 => {
            let pty = new_pty_at(ctx, p, creds.uid, creds.gid)?;
            Ok(Some(Arc::new(MasterFile {
                pty,
                flags: StatusFlags::new(file_status(flags)),
                path: p.clone(),
            })))
        }
        _ => Err(errno!(ENXIO)),
    }
}

/// The devpts a ptmx node belongs to: its own filesystem for `pts/ptmx`, else the devpts
/// mounted on the `pts` directory next to it (Linux's `devpts_mntget`).
/// Also returns the root of the devpts mount, where its slave nodes are named.
fn devpts_for_ptmx(ctx: &FsContext, p: &VfsPath) -> Option<(Arc<DevptsFs>, VfsPath)> {
    let root_of = |p: &VfsPath| -> Option<(Arc<DevptsFs>, VfsPath)> {
        let root = p.mount.root.inode().clone().as_any_arc();
        let fs = root.downcast::<DevptsRoot>().ok().map(|r| r.fs.clone())?;
        let root_path = VfsPath {
            mount: p.mount.clone(),
            dentry: p.mount.root.clone(),
        };
        Some((fs, root_path))
    };
    if let Some(found) = root_of(p) {
        return Some(found);
    }
    let parent = p.dentry.parent()?;
    let pts = parent.lookup(b"pts").ok()?;
    let pts = ctx.vfs.follow_mounts(VfsPath {
        mount: p.mount.clone(),
        dentry: pts,
    });
    root_of(&pts)
}

/// A new pty in the devpts `ptmx` node `p` belongs to, its slave owned by `uid`; the
/// slave's path (`/dev/pts/N`) is remembered for descriptions opened without a path
/// (`/dev/tty`, TIOCGPTPEER, the console), so that they name it as Linux's do.
fn new_pty_at(ctx: &FsContext, p: &VfsPath, uid: u32, gid: u32) -> Result<Arc<Pty>> {
    let (fs, root) = devpts_for_ptmx(ctx, p).ok_or(errno!(ENODEV))?;
    let tty_gid = *fs.tty_gid.get_or_init(|| tty_group(ctx));
    let pty = fs.new_pty(uid, tty_gid.unwrap_or(gid))?;
    if let Ok(dentry) = root.dentry.lookup(pty.index.to_string().as_bytes()) {
        let _ = pty.slave_path.set(VfsPath {
            mount: root.mount.clone(),
            dentry,
        });
    }
    Ok(pty)
}

/// The gid of the `tty` group in the sandbox's `/etc/group`, if it has one: slaves get
/// that group (mode 0620 lets `write(1)` and `wall(1)` reach them), as devpts mounted with
/// `gid=` does; without one they get the opener's group, as Linux's default.
fn tty_group(ctx: &FsContext) -> Option<u32> {
    let how = crate::vfs::OpenHow {
        flags: libc::O_RDONLY as u32,
        ..Default::default()
    };
    let f = ctx
        .open(&ctx.root, b"/etc/group", &how, &Creds::root())
        .ok()?;
    let mut data = Vec::new();
    let mut buf = vec![0u8; 65536];
    while data.len() < GROUP_FILE_MAX {
        match f.read(&mut buf, None) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(buf.get(..n)?),
        }
    }
    data.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b':');
        if fields.next()? != b"tty" {
            return None;
        }
        let gid = fields.nth(1)?;
        std::str::from_utf8(gid).ok()?.trim().parse().ok()
    })
}

/// The status flags an open description keeps (`open` adds O_LARGEFILE on 64-bit).
fn file_status(flags: u32) -> u32 {
    let dropped = libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_CLOEXEC;
    (flags & !(dropped as u32)) | libc::O_LARGEFILE as u32
}

// ---- the pty ----

struct PtyState {
    ld: LineDiscipline,
    /// `struct winsize`: rows, columns, x and y pixels.
    winsize: [u16; 4],
    /// TIOCSPTLCK: the slave cannot be opened (a new pty starts locked).
    locked: bool,
    master_open: bool,
    /// Open slave descriptions.
    slaves: u32,
    /// Every slave description that was open has closed: master reads fail with EIO
    /// and poll reports POLLHUP (Linux's TTY_OTHER_CLOSED).
    other_closed: bool,
    /// TIOCPKT: master reads start with a status byte.
    packet: bool,
    pkt_status: u8,
    uid: u32,
    gid: u32,
    mode: u32,
    times: (Timespec, Timespec),
    /// The index went back to the filesystem.
    released: bool,
}

impl PtyState {
    /// The master closed: the slave is hung up.
    fn hung_up(&self) -> bool {
        !self.master_open
    }
}

/// A pseudo-terminal pair.
pub struct Pty {
    index: u32,
    fs: Weak<DevptsFs>,
    dev: u64,
    state: Mutex<PtyState>,
    /// Notified when the master may read or write.
    master_queue: Arc<WaitQueue>,
    /// Notified when a slave may read or write.
    slave_queue: Arc<WaitQueue>,
    job: JobControl,
    /// `/dev/pts/N`, for slave descriptions opened without a path.
    slave_path: OnceLock<VfsPath>,
}

impl Pty {
    fn lock(&self) -> MutexGuard<'_, PtyState> {
        lock(&self.state)
    }

    /// The pty's index: the N of `/dev/pts/N`.
    pub fn index(&self) -> u32 {
        self.index
    }

    fn stat(&self) -> Stat {
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

    fn notify_both(&self) {
        self.master_queue.notify(events::ALL);
        self.slave_queue.notify(events::ALL);
    }

    /// Both sides are closed: the index may be used again (once).
    fn release_if_unused(&self, st: &mut PtyState) {
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
    fn master_write(&self, data: &[u8]) -> Result<usize> {
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
    fn master_read(&self, buf: &mut [u8]) -> Result<usize> {
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

    fn slave_read(&self, buf: &mut [u8]) -> Result<usize> {
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

    fn slave_write(&self, data: &[u8]) -> Result<usize> {
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

    fn master_readiness(&self) -> u32 {
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

    fn slave_readiness(&self) -> u32 {
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
    fn ioctl(
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
    fn master_ioctl(self: &Arc<Self>, task: &Task, cmd: u32, arg: UserAddr) -> Result<u64> {
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
}

// ---- open descriptions ----

/// An open master (from `/dev/ptmx`).
pub struct MasterFile {
    pty: Arc<Pty>,
    flags: StatusFlags,
    path: VfsPath,
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
    pty: Arc<Pty>,
    flags: StatusFlags,
    path: Option<VfsPath>,
}

impl SlaveFile {
    /// A new slave description: `EIO` while the pty is locked or after its master
    /// closed, as Linux's `pty_open`.
    fn open(pty: Arc<Pty>, flags: u32, path: Option<VfsPath>) -> Result<Arc<SlaveFile>> {
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

#[cfg(test)]
mod tests;
