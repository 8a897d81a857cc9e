//! The sandbox's initial mount tree and file table.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::fs::gofer::{Client, GoferFs};
use crate::fs::host::{HostConsole, HostFile};
use crate::fs::overlay::OverlayFs;
use crate::fs::{cgroup, dev, devpts, proc, sys, tmpfs::Tmpfs};
use crate::mm::MemoryFile;
use crate::vfs::{FdFlags, FdTable, Inode, MountFlags, Vfs, VfsPath};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// How the root filesystem takes writes (`carapace do --overlay`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RootOverlay {
    /// An overlay whose upper layer is a tmpfs in sentry memory: the sandbox writes
    /// freely and the host never changes.
    #[default]
    Memory,
    /// The gofer's root as it is served: read-only for `carapace do`.
    None,
}

/// The mount tree over the gofer's root: `/` (under an in-memory overlay, or the gofer's
/// root itself), a tmpfs on `/tmp`, a devtmpfs on `/dev`, a tmpfs on `/dev/shm`, a devpts
/// on `/dev/pts`, procfs on `/proc` and a read-only sysfs on `/sys`. The
/// gofer root is mounted read-only unless the gofer serves it read-write.
/// tmpfs data (the overlay's upper layer, `/tmp`, `/dev/shm`) lives in `mf`.
pub fn build_root(
    client: Arc<Client>,
    overlay: RootOverlay,
    mf: &Arc<MemoryFile>,
) -> Result<Arc<Vfs>> {
    build_root_rw(client, overlay, false, mf)
}

/// [`build_root`] over a gofer that serves its tree read-write (`writable`): without an
/// overlay, changes then go through the gofer to the served directory.
pub fn build_root_rw(
    client: Arc<Client>,
    overlay: RootOverlay,
    writable: bool,
    mf: &Arc<MemoryFile>,
) -> Result<Arc<Vfs>> {
    build_root_with(client, overlay, writable, false, mf)
}

/// [`build_root_rw`], with the root mount read-only when `read_only` (OCI
/// `root.readonly`). Mount points missing from the image are still created in the
/// overlay's upper layer, as runc creates them before remounting the root read-only.
pub fn build_root_with(
    client: Arc<Client>,
    overlay: RootOverlay,
    writable: bool,
    read_only: bool,
    mf: &Arc<MemoryFile>,
) -> Result<Arc<Vfs>> {
    let root = GoferFs::attach_with(client, writable)?;
    root_over(root, overlay, writable, read_only, mf)
}

/// [`build_root_with`] over a gofer serving the staged layout (`carapace gofer
/// --staged`): its root holds the container's root filesystem as `root` and the sources
/// of bind mounts beside it. Returns the mount tree and the staged root, from which
/// [`mount_spec`] takes the bind sources. The gofer's own mounts decide what takes
/// writes; `writable` says whether the root filesystem does.
pub fn build_root_staged(
    client: Arc<Client>,
    overlay: RootOverlay,
    writable: bool,
    read_only: bool,
    mf: &Arc<MemoryFile>,
) -> Result<(Arc<Vfs>, Arc<dyn Inode>)> {
    let staged: Arc<dyn Inode> = GoferFs::attach_with(client, true)?;
    let root = staged.lookup(b"root")?;
    Ok((root_over(root, overlay, writable, read_only, mf)?, staged))
}

fn root_over(
    root: Arc<dyn Inode>,
    overlay: RootOverlay,
    writable: bool,
    read_only: bool,
    mf: &Arc<MemoryFile>,
) -> Result<Arc<Vfs>> {
    match overlay {
        RootOverlay::Memory => {
            new_vfs_with_root("overlay", OverlayFs::new_root(root, mf)?, read_only, mf)
        }
        RootOverlay::None => new_vfs_with_root("9p", root, read_only || !writable, mf),
    }
}

/// The standard mounts over any root filesystem. A mount point missing from a root that
/// cannot create it (a read-only gofer tree) is skipped with a warning.
pub fn new_vfs_with_root(
    fs_type: &'static str,
    root: Arc<dyn Inode>,
    read_only: bool,
    mf: &Arc<MemoryFile>,
) -> Result<Arc<Vfs>> {
    let vfs = Vfs::new(fs_type, root, read_only);
    let r = vfs.root();
    // With the flags runc and Docker give these mounts.
    let flags = |nosuid, nodev, noexec| MountFlags {
        nosuid,
        nodev,
        noexec,
    };
    let set = |p: Option<VfsPath>, f: MountFlags| {
        if let Some(p) = &p {
            p.mount.set_flags(f);
        }
        p
    };
    let tmp = mount_at(&vfs, &r, b"tmp", "tmpfs", Tmpfs::new_root(mf, 0o1777))?;
    set(tmp, flags(true, true, false));
    let devp = mount_at(&vfs, &r, b"dev", "devtmpfs", dev::new_devfs(mf)?)?;
    if let Some(devp) = set(devp, flags(true, false, false)) {
        let shm = mount_at(&vfs, &devp, b"shm", "tmpfs", Tmpfs::new_root(mf, 0o1777))?;
        set(shm, MountFlags::KERNEL_FS);
        let pts = mount_at(&vfs, &devp, b"pts", "devpts", devpts::DevptsFs::new_root())?;
        set(pts, flags(true, false, true));
    }
    let proc = mount_at(&vfs, &r, b"proc", "proc", proc::new_procfs())?;
    set(proc, MountFlags::KERNEL_FS);
    let sys = mount_at_ro(&vfs, &r, b"sys", "sysfs", sys::new_sysfs())?;
    if let Some(sysp) = set(sys, MountFlags::KERNEL_FS) {
        // The container's own cgroup, read-only, as runc mounts it for a container
        // without CAP_SYS_ADMIN.
        let fsdir = VfsPath {
            dentry: sysp.dentry.lookup(b"fs")?,
            mount: sysp.mount.clone(),
        };
        let cg = mount_at_ro(&vfs, &fsdir, b"cgroup", "cgroup2", cgroup::new_cgroupfs())?;
        set(cg, MountFlags::KERNEL_FS);
    }
    Ok(vfs)
}

/// Mount `root` on `dir/name`, creating the directory if the parent is writable. Returns
/// the new mount's root, or `None` if there was no mount point.
fn mount_at(
    vfs: &Arc<Vfs>,
    dir: &VfsPath,
    name: &[u8],
    fs_type: &'static str,
    root: Arc<dyn Inode>,
) -> Result<Option<VfsPath>> {
    mount_with(vfs, dir, name, fs_type, root, false)
}

/// [`mount_at`], read-only (sysfs, as containers get it).
fn mount_at_ro(
    vfs: &Arc<Vfs>,
    dir: &VfsPath,
    name: &[u8],
    fs_type: &'static str,
    root: Arc<dyn Inode>,
) -> Result<Option<VfsPath>> {
    mount_with(vfs, dir, name, fs_type, root, true)
}

fn mount_with(
    vfs: &Arc<Vfs>,
    dir: &VfsPath,
    name: &[u8],
    fs_type: &'static str,
    root: Arc<dyn Inode>,
    read_only: bool,
) -> Result<Option<VfsPath>> {
    let dentry = match dir.dentry.lookup(name) {
        Ok(d) => d,
        Err(e) if e.errno == crate::Errno::ENOENT => {
            match dir.inode().mkdir(name, 0o755, &crate::vfs::Creds::root()) {
                Ok(_) => dir.dentry.lookup(name)?,
                Err(e) => {
                    tracing::warn!(
                        "no mount point {:?} for {fs_type}: {e}",
                        String::from_utf8_lossy(name)
                    );
                    return Ok(None);
                }
            }
        }
        Err(e) => {
            tracing::warn!(
                "no mount point {:?} for {fs_type}: {e}",
                String::from_utf8_lossy(name)
            );
            return Ok(None);
        }
    };
    let at = VfsPath {
        mount: dir.mount.clone(),
        dentry,
    };
    let m = vfs.mount(&at, fs_type, root, read_only)?;
    Ok(Some(VfsPath {
        dentry: m.root.clone(),
        mount: m,
    }))
}

/// The first process's fd table: 0, 1, 2 over the host stdio fds the sentry was given.
/// Those that are terminals share one console (its job-control state), as the old
/// single-console sandbox had: the usual case is one terminal on all three.
pub fn initial_fd_table(stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd) -> Result<FdTable> {
    let mut t = FdTable::new();
    let mut console: Option<Arc<HostConsole>> = None;
    for (want, fd) in [(0, stdin), (1, stdout), (2, stderr)] {
        let flags = HostFile::host_access_mode(&fd);
        let is_tty = nix::unistd::isatty(std::os::fd::AsFd::as_fd(&fd)).unwrap_or(false);
        if is_tty && console.is_none() {
            console = HostConsole::over(&fd);
        }
        let file = HostFile::with_console(fd, flags, console.clone().filter(|_| is_tty));
        t.insert_at(want, Arc::new(file), FdFlags::default())?;
    }
    Ok(t)
}

/// A filesystem the container's spec mounts somewhere (OCI `mounts`), by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecFs {
    /// A fresh tmpfs whose root has permission bits `mode`.
    Tmpfs {
        mode: u32,
    },
    Proc,
    Sysfs,
    Devpts,
    Mqueue,
    Cgroup,
    /// A bind mount: entry `name` of the gofer's staged root (a file or a directory).
    Bind {
        name: Vec<u8>,
        file: bool,
    },
}

impl SpecFs {
    /// The filesystem type as `mount(8)` names it.
    pub fn name(&self) -> &'static str {
        match self {
            SpecFs::Tmpfs { .. } => "tmpfs",
            SpecFs::Proc => "proc",
            SpecFs::Sysfs => "sysfs",
            SpecFs::Devpts => "devpts",
            SpecFs::Mqueue => "mqueue",
            SpecFs::Cgroup => "cgroup",
            SpecFs::Bind { .. } => "bind",
        }
    }
}

/// One entry of the spec's `mounts`, already checked by the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecMount {
    /// Absolute path inside the container.
    pub destination: Vec<u8>,
    pub fs: SpecFs,
    pub read_only: bool,
    /// `nosuid`, `nodev`, `noexec` from its options.
    pub flags: MountFlags,
}

/// Mount `m` on its destination, creating missing directories on a writable root.
/// Filesystems the sentry does not have yet (devpts elsewhere than `/dev/pts`) leave
/// the mount point as an empty directory and are logged: the container still starts.
pub fn mount_spec(
    vfs: &Arc<Vfs>,
    m: &SpecMount,
    mf: &Arc<MemoryFile>,
    staged: Option<&Arc<dyn Inode>>,
) -> Result<()> {
    let dest = String::from_utf8_lossy(&m.destination);
    // What every sandbox has already: the sentry's own /dev (a tmpfs /dev would be
    // filled with the same nodes; gVisor does the same), /dev/pts, /proc and /sys.
    let standard = matches!(
        (&m.fs, m.destination.as_slice()),
        (SpecFs::Tmpfs { .. }, b"/dev")
            | (SpecFs::Devpts, b"/dev/pts")
            | (SpecFs::Proc, b"/proc")
            | (SpecFs::Sysfs, b"/sys")
            | (SpecFs::Cgroup, b"/sys/fs/cgroup")
    );
    if standard {
        return Ok(());
    }
    let (fs_type, root): (&'static str, Arc<dyn Inode>) = match &m.fs {
        SpecFs::Tmpfs { mode } => ("tmpfs", Tmpfs::new_root(mf, *mode)),
        SpecFs::Proc => ("proc", proc::new_procfs()),
        SpecFs::Sysfs => ("sysfs", sys::new_sysfs()),
        SpecFs::Cgroup => ("cgroup2", cgroup::new_cgroupfs()),
        SpecFs::Mqueue => ("mqueue", crate::fs::mqueue::new_mqueuefs()),
        SpecFs::Bind { name, file } => {
            let staged =
                staged.ok_or(crate::errno!(EINVAL, "bind mount without a staged gofer"))?;
            let source = staged.lookup(name)?;
            if source.is_dir() == *file {
                return Err(crate::errno!(ENOTDIR, "the bind source changed type"));
            }
            let at = if *file {
                make_file(vfs, &m.destination)?
            } else {
                make_dirs(vfs, &m.destination)?
            };
            // A file is mounted on a file (as `mount --bind` allows), not only on a
            // directory.
            let mount = vfs.mount_dentry(
                &at,
                "bind",
                crate::vfs::Dentry::new_root(source),
                m.read_only,
            )?;
            mount.set_flags(m.flags);
            return Ok(());
        }
        other => {
            // A debug-level note, not a warning on the container's stderr.
            tracing::info!(
                "{} is not implemented in the sentry yet: {dest} is left as an empty directory",
                other.name()
            );
            make_dirs(vfs, &m.destination)?;
            return Ok(());
        }
    };
    let at = make_dirs(vfs, &m.destination)?;
    vfs.mount(&at, fs_type, root, m.read_only)?
        .set_flags(m.flags);
    Ok(())
}

/// `/dev/console` for a sandbox with a console: the console pty's slave bound over an
/// empty file, as runc binds it.
pub fn mount_console(vfs: &Arc<Vfs>, slave: &VfsPath) -> Result<()> {
    let at = make_file(vfs, b"/dev/console")?;
    let m = vfs.mount_dentry(&at, "devpts", slave.dentry.clone(), false)?;
    m.set_flags(MountFlags {
        nosuid: true,
        nodev: false,
        noexec: true,
    });
    Ok(())
}

/// The file at `path` to mount a file on, made empty (with its directories) if missing.
fn make_file(vfs: &Arc<Vfs>, path: &[u8]) -> Result<VfsPath> {
    let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(crate::errno!(EINVAL));
    }
    let parent = make_dirs(vfs, dir)?;
    let dentry = match parent.dentry.lookup(name) {
        Ok(d) => d,
        Err(e) if e.errno == crate::Errno::ENOENT => {
            parent
                .inode()
                .create(name, 0o644, &crate::vfs::Creds::root())?;
            parent.dentry.lookup(name)?
        }
        Err(e) => return Err(e),
    };
    let at = VfsPath {
        mount: parent.mount.clone(),
        dentry,
    };
    if at.inode().is_dir() {
        return Err(crate::errno!(EISDIR));
    }
    Ok(vfs.follow_mounts(at))
}

/// Walk `path` from the root, following mounts and creating missing directories (even on
/// a read-only mount: this is setup, not the application; a filesystem that cannot
/// create them says so); returns the directory to mount on.
fn make_dirs(vfs: &Arc<Vfs>, path: &[u8]) -> Result<VfsPath> {
    let mut at = vfs.root();
    for name in path.split(|&b| b == b'/') {
        if name.is_empty() || name == b"." {
            continue;
        }
        if name == b".." {
            return Err(crate::errno!(EINVAL));
        }
        at = vfs.follow_mounts(at);
        let dentry = match at.dentry.lookup(name) {
            Ok(d) => d,
            Err(e) if e.errno == crate::Errno::ENOENT => {
                at.inode().mkdir(name, 0o755, &crate::vfs::Creds::root())?;
                at.dentry.lookup(name)?
            }
            Err(e) => return Err(e),
        };
        at = VfsPath {
            mount: at.mount.clone(),
            dentry,
        };
        if !at.inode().is_dir() {
            return Err(crate::errno!(ENOTDIR));
        }
    }
    Ok(vfs.follow_mounts(at))
}
