//! `mount` and `umount2` inside the sandbox: new tmpfs mounts, bind mounts, read-only
//! remounts, propagation changes (accepted: the sandbox has one mount namespace, so there
//! is nothing to propagate to), and unmounting with `EBUSY` for mounts in use or
//! `MNT_DETACH`. Everything needs `CAP_SYS_ADMIN`.
#![deny(unsafe_code)]

use super::file::fs_ctx;
use super::fs::read_path;
use crate::error::Result;
use crate::fs::tmpfs::Tmpfs;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{Inode, MountFlags, VfsPath};
use crate::{errno, return_errno};
use std::sync::Arc;

const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_SILENT: u64 = 32768;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_PROPAGATION: u64 = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;
const MS_NOUSER: u64 = 1 << 31;
/// The old magic number some callers still put in the top half (`MS_MGC_VAL`).
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;

const MNT_FORCE: i32 = 1;
const MNT_DETACH: i32 = 2;
const MNT_EXPIRE: i32 = 4;
const UMOUNT_NOFOLLOW: i32 = 8;

const CAP_SYS_ADMIN: u32 = 21;

/// `capable(CAP_SYS_ADMIN)`. The sentry does not drop the effective set when the euid
/// leaves 0, so a non-root euid counts as not capable, as it would in Linux.
fn may_mount(task: &Task) -> bool {
    task.creds.euid == 0 && task.creds.cap_effective & (1 << CAP_SYS_ADMIN) != 0
}

/// A string argument of at most a page (`strndup_user`/`copy_mount_options`); `None` for
/// NULL.
fn read_opt_string(task: &Task, addr: UserAddr) -> Result<Option<Vec<u8>>> {
    if addr.is_null() {
        return Ok(None);
    }
    match task.read_cstring(addr, 4096) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.errno == crate::Errno::ENAMETOOLONG => Err(errno!(EINVAL)),
        Err(e) => Err(e),
    }
}

/// The options of a tmpfs (`mode=`, `uid=`, `gid=`; size limits are accepted and not
/// enforced). Unknown options are `EINVAL`, as tmpfs says.
struct TmpfsOptions {
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn tmpfs_options(data: Option<&[u8]>) -> Result<TmpfsOptions> {
    let mut o = TmpfsOptions {
        mode: 0o1777,
        uid: None,
        gid: None,
    };
    let Some(data) = data else {
        return Ok(o);
    };
    for opt in data.split(|&c| c == b',').filter(|s| !s.is_empty()) {
        let (key, val) = match opt.iter().position(|&c| c == b'=') {
            Some(i) => (opt.get(..i).unwrap_or_default(), opt.get(i + 1..)),
            None => (opt, None),
        };
        let text = |v: Option<&[u8]>| -> Result<String> {
            let v = v.ok_or(errno!(EINVAL))?;
            String::from_utf8(v.to_vec()).map_err(|_| errno!(EINVAL))
        };
        match key {
            b"mode" => {
                o.mode = u32::from_str_radix(&text(val)?, 8).map_err(|_| errno!(EINVAL))? & 0o7777;
            }
            b"uid" => o.uid = Some(text(val)?.parse().map_err(|_| errno!(EINVAL))?),
            b"gid" => o.gid = Some(text(val)?.parse().map_err(|_| errno!(EINVAL))?),
            b"size" | b"nr_blocks" | b"nr_inodes" | b"huge" | b"mpol" | b"inode64" | b"inode32"
            | b"noswap" => {}
            // Generic options the VFS takes out of the data string in Linux.
            b"rw" | b"ro" | b"nosuid" | b"nodev" | b"noexec" | b"relatime" | b"noatime"
            | b"strictatime" => {}
            _ => return_errno!(EINVAL),
        }
    }
    Ok(o)
}

/// A mount point or mount root the caller names, resolved through mounts.
fn lookup(task: &Task, path: &[u8], follow: bool) -> Result<VfsPath> {
    let ctx = fs_ctx(task);
    ctx.lookup(&ctx.cwd, path, follow)
}

pub fn sys_mount(
    task: &mut Task,
    source: UserAddr,
    target: UserAddr,
    fstype: UserAddr,
    flags: u64,
    data: UserAddr,
) -> Result<u64> {
    let fstype = read_opt_string(task, fstype)?;
    let source = read_opt_string(task, source)?;
    let data = read_opt_string(task, data)?;
    let target = read_path(task, target)?;
    let at = lookup(task, &target, true)?;
    let mut flags = flags;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    if flags & MS_NOUSER != 0 {
        return_errno!(EINVAL);
    }
    if !may_mount(task) {
        return_errno!(EPERM);
    }
    let read_only = flags & MS_RDONLY != 0;
    let mount_flags = MountFlags {
        nosuid: flags & MS_NOSUID != 0,
        nodev: flags & MS_NODEV != 0,
        noexec: flags & MS_NOEXEC != 0,
    };
    let vfs = fs_ctx(task).vfs;
    if flags & MS_REMOUNT != 0 {
        // Per-mount (with MS_BIND) or filesystem flags: either way, read-only, nosuid,
        // nodev and noexec are kept per mount here, replaced as a whole as Linux does.
        if !at.is_mount_root() {
            return_errno!(EINVAL);
        }
        at.mount.set_read_only(read_only);
        at.mount.set_flags(mount_flags);
        return Ok(0);
    }
    if flags & MS_BIND != 0 {
        let source = source.filter(|s| !s.is_empty()).ok_or(errno!(EINVAL))?;
        let from = lookup(task, &source, true)?;
        // MS_RDONLY is ignored on a new bind mount (a remount makes it read-only); with
        // MS_REC the mounts inside the source tree come along.
        let m = vfs.mount_dentry(&at, from.mount.fs_type, from.dentry.clone(), false)?;
        if flags & MS_REC != 0 {
            vfs.copy_submounts(&from.mount, &from.dentry, &m);
        }
        return Ok(0);
    }
    if flags & MS_PROPAGATION != 0 {
        // Exactly one propagation type (MS_REC and MS_SILENT aside), on a mount root.
        let kind = flags & !(MS_REC | MS_SILENT);
        if kind.count_ones() != 1 || kind & MS_PROPAGATION == 0 || !at.is_mount_root() {
            return_errno!(EINVAL);
        }
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        return_errno!(EINVAL, "MS_MOVE is not supported");
    }
    let fstype = fstype.ok_or(errno!(EINVAL))?;
    let (kind, root): (&'static str, Arc<dyn Inode>) = match fstype.as_slice() {
        b"proc" => ("proc", crate::fs::proc::new_procfs()),
        b"sysfs" => ("sysfs", crate::fs::sys::new_sysfs()),
        b"tmpfs" => {
            let o = tmpfs_options(data.as_deref())?;
            let root = Tmpfs::new_root(&task.kernel.memory_file, o.mode);
            if o.uid.is_some() || o.gid.is_some() {
                root.set_owner(o.uid, o.gid, None)?;
            }
            ("tmpfs", root)
        }
        _ => return_errno!(ENODEV),
    };
    if !at.inode().is_dir() {
        return_errno!(ENOTDIR);
    }
    let m = vfs.mount(&at, kind, root, read_only)?;
    m.set_flags(mount_flags);
    Ok(0)
}

pub fn sys_umount2(task: &mut Task, target: UserAddr, flags: i32) -> Result<u64> {
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0
        || flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0
    {
        return_errno!(EINVAL);
    }
    let target = read_path(task, target)?;
    let at = lookup(task, &target, flags & UMOUNT_NOFOLLOW == 0)?;
    if !may_mount(task) {
        return_errno!(EPERM);
    }
    if !at.is_mount_root() {
        return_errno!(EINVAL);
    }
    if flags & MNT_EXPIRE != 0 {
        // Expiry takes two calls in Linux, the first only marking the mount (EAGAIN);
        // marks are not kept here, so every call is a first one.
        return_errno!(EAGAIN);
    }
    let vfs = fs_ctx(task).vfs;
    let mount = at.mount.clone();
    // References the caller holds: `at` and the clone just made.
    drop(at);
    vfs.umount(&mount, 1, flags & MNT_DETACH != 0)?;
    Ok(0)
}
