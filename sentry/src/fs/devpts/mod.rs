//! devpts: Unix 98 pseudo-terminals (pts(4), `Documentation/filesystems/devpts.rst`).
//!
//! Opening `ptmx` (the devpts node or `/dev/ptmx`, which finds the devpts mounted on its
//! sibling `pts` as Linux does) makes a [`Pty`] and returns its master; the slave appears
//! as `/dev/pts/N` (mode 0620, owned by the opener, group tty if the sandbox has one),
//! starts locked (`unlockpt`), and its node goes when the master closes, as in Linux.
//! Both sides go through one [`ldisc::LineDiscipline`]; job control (controlling
//! terminal, foreground group, SIGTTIN/SIGTTOU, hang-up) is `kernel::tty`'s, shared with
//! the host console. The pty itself and its open descriptions are in `pty.rs`.
//!
//! Reads and writes never block here: they answer `EAGAIN` and the syscall layer waits
//! on the side's wait queue, like pipes.
#![deny(unsafe_code)]

pub mod bridge;
pub mod ldisc;
mod pty;

pub use pty::{MasterFile, Pty, SlaveFile};

use crate::errno;
use crate::error::Result;
use crate::fs::dev::{major, makedev, minor};
use crate::kernel::Task;
use crate::vfs::{
    anon_dev, check_permission, Creds, DirEntry, FileDescription, FsContext, Inode, Stat, StatFs,
    StatusFlags, Timespec, VfsPath, MAY_READ, MAY_WRITE,
};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// `DEVPTS_SUPER_MAGIC`.
const DEVPTS_MAGIC: i64 = 0x1cd1;
/// `/dev/tty` and `/dev/ptmx` (`TTYAUX_MAJOR`).
pub const TTYAUX_MAJOR: u64 = 5;
/// `/proc/sys/kernel/pty/max`'s default.
const PTY_MAX: u32 = 4096;
/// How much of `/etc/group` is read to find the tty group.
const GROUP_FILE_MAX: usize = 1 << 20;

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
        let pty = Pty::new(index, Arc::downgrade(self), self.dev, uid, gid);
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
    crate::vfs::check_device_mount(p, st.mode)?;
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

#[cfg(test)]
mod tests;
