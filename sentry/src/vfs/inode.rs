//! The [`Inode`] trait every filesystem implements, and permission checks.

use super::file::FileDescription;
use super::mount::VfsPath;
use super::types::{DirEntry, Stat, StatFs, Timespec};
use crate::errno;
use crate::error::Result;
use std::any::Any;
use std::sync::Arc;

/// The credentials a filesystem operation runs with (fsuid/fsgid, groups, and the
/// effective capability set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Effective capabilities, one bit per `CAP_*` number.
    pub caps: u64,
}

impl Creds {
    /// Root with every capability (the sandbox's own setup).
    pub fn root() -> Creds {
        Creds {
            caps: crate::kernel::creds::CAP_FULL,
            ..Creds::default()
        }
    }

    pub fn has_cap(&self, cap: u32) -> bool {
        cap < 64 && self.caps & (1u64 << cap) != 0
    }

    /// `in_group_p`: the filesystem gid or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// `inode_owner_or_capable`: the file's owner, or `CAP_FOWNER`.
    pub fn owns(&self, st: &Stat) -> bool {
        self.uid == st.uid || self.has_cap(crate::kernel::creds::CAP_FOWNER)
    }
}

/// `may_delete`'s sticky-directory rule: in a directory with the sticky bit, only the
/// file's owner, the directory's owner or `CAP_FOWNER` may remove or rename an entry
/// (`EPERM`).
pub fn check_sticky(dir: &Stat, child: &Stat, creds: &Creds) -> Result<()> {
    if dir.mode & libc::S_ISVTX == 0
        || creds.uid == child.uid
        || creds.uid == dir.uid
        || creds.has_cap(crate::kernel::creds::CAP_FOWNER)
    {
        return Ok(());
    }
    Err(errno!(EPERM))
}

pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

/// `generic_permission`: may `creds` access an inode with attributes `st` for `mask`
/// (`MAY_*` bits)? The owner gets the owner bits only, a member of the file's group the
/// group bits, everyone else the other bits. Then the capabilities: `CAP_DAC_READ_SEARCH`
/// reads any file and reads or searches any directory; `CAP_DAC_OVERRIDE` does anything
/// except execute a non-directory without any execute bit. `EACCES` otherwise.
/// Read-only mounts are checked by the caller, which knows the mount.
pub fn check_permission(st: &Stat, creds: &Creds, mask: u32) -> Result<()> {
    use crate::kernel::creds::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    let mask = mask & (MAY_READ | MAY_WRITE | MAY_EXEC);
    let bits = if creds.uid == st.uid {
        (st.mode >> 6) & 7
    } else if creds.in_group(st.gid) {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    };
    if bits & mask == mask {
        return Ok(());
    }
    if st.is_dir() {
        if mask & MAY_WRITE == 0 && creds.has_cap(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        if creds.has_cap(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(errno!(EACCES));
    }
    if mask == MAY_READ && creds.has_cap(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    if (mask & MAY_EXEC == 0 || st.mode & 0o111 != 0) && creds.has_cap(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    Err(errno!(EACCES))
}

/// Search permission on a directory for a path walk, without a full `stat` when the
/// answer is plain: the capabilities pass any directory, and one executable by all is
/// searchable by all.
pub fn check_search(dir: &dyn Inode, creds: &Creds) -> Result<()> {
    use crate::kernel::creds::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    if creds.has_cap(CAP_DAC_READ_SEARCH)
        || creds.has_cap(CAP_DAC_OVERRIDE)
        || dir.mode() & 0o111 == 0o111
    {
        return Ok(());
    }
    check_permission(&dir.stat()?, creds, MAY_EXEC)
}

/// One filesystem object. The VFS calls these after resolving a path; a filesystem
/// overrides what it supports. Names passed in are single components, never `.`/`..`,
/// never empty, without `/`.
pub trait Inode: Send + Sync {
    /// For filesystems that need their concrete type back (rename, link across dirs).
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;

    fn stat(&self) -> Result<Stat>;

    /// File type and permission bits; cheap, used on every path-walk step.
    fn mode(&self) -> u32 {
        self.stat().map(|s| s.mode).unwrap_or(0)
    }

    fn is_dir(&self) -> bool {
        self.mode() & libc::S_IFMT == libc::S_IFDIR
    }

    fn is_symlink(&self) -> bool {
        self.mode() & libc::S_IFMT == libc::S_IFLNK
    }

    /// The child `name` of a directory: `ENOENT` if absent.
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>> {
        Err(errno!(ENOTDIR))
    }

    /// All entries of a directory except `.` and `..`, in a stable order.
    fn readdir(&self) -> Result<Vec<DirEntry>> {
        Err(errno!(ENOTDIR))
    }

    fn readlink(&self) -> Result<Vec<u8>> {
        Err(errno!(EINVAL))
    }

    /// For "magic" links (`/proc/PID/fd/N`, `exe`, `cwd`, `root`): where following the
    /// link leads, instead of resolving the text `readlink` shows. `link` is where the
    /// link itself is. `None` for ordinary symlinks.
    fn magic_link(&self, _link: &VfsPath) -> Option<Result<VfsPath>> {
        None
    }

    /// Whether a cached dentry for this inode still names it (Linux's `d_revalidate`):
    /// `/proc/PID` goes away with the process without anyone unlinking it.
    fn revalidate(&self) -> bool {
        true
    }

    /// Open a non-directory (directories are opened by the VFS as a [`super::DirFile`]).
    /// `flags` are the `open(2)` flags after the VFS checked them.
    fn open(self: Arc<Self>, _path: &VfsPath, _flags: u32) -> Result<Arc<dyn FileDescription>> {
        Err(errno!(ENXIO))
    }

    /// Create a regular file `name` with permission bits `mode` (umask already applied).
    fn create(&self, _name: &[u8], _mode: u32, _creds: &Creds) -> Result<Arc<dyn Inode>> {
        Err(errno!(EPERM))
    }

    fn mkdir(&self, _name: &[u8], _mode: u32, _creds: &Creds) -> Result<Arc<dyn Inode>> {
        Err(errno!(EPERM))
    }

    fn symlink(&self, _name: &[u8], _target: &[u8], _creds: &Creds) -> Result<Arc<dyn Inode>> {
        Err(errno!(EPERM))
    }

    /// Make `name` another link to `target` (same filesystem, never a directory).
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<()> {
        Err(errno!(EPERM))
    }

    /// Remove the non-directory `name`.
    fn unlink(&self, _name: &[u8]) -> Result<()> {
        Err(errno!(EPERM))
    }

    /// Remove the empty directory `name`.
    fn rmdir(&self, _name: &[u8]) -> Result<()> {
        Err(errno!(EPERM))
    }

    /// Move `old_name` in this directory to `new_name` in `new_dir` (same filesystem),
    /// with `renameat2` flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
    fn rename(
        &self,
        _old_name: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new_name: &[u8],
        _flags: u32,
    ) -> Result<()> {
        Err(errno!(EPERM))
    }

    /// Set the size of a regular file (`O_TRUNC`, `truncate`).
    /// Change the permission bits (`chmod(2)`); only the low 12 bits of `mode` count.
    fn set_mode(&self, _mode: u32) -> Result<()> {
        Err(errno!(EPERM))
    }

    fn truncate(&self, _size: u64) -> Result<()> {
        Err(errno!(EINVAL))
    }

    fn statfs(&self) -> Result<StatFs>;

    // ---- ownership, times, special files, allocation, xattrs (filesystems work) ----
    // The VFS and the syscall layer check permissions and read-only mounts before these.

    /// Change the owner and/or the group (`chown(2)`); `None` leaves one as it is. Also
    /// applies the mode change that goes with it (`new_mode`: setuid/setgid cleared).
    fn set_owner(
        &self,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _new_mode: Option<u32>,
    ) -> Result<()> {
        Err(errno!(EPERM))
    }

    /// Set the access and/or modification time (`utimensat(2)`); the change time becomes
    /// now.
    fn set_times(&self, _atime: Option<Timespec>, _mtime: Option<Timespec>) -> Result<()> {
        Err(errno!(EPERM))
    }

    /// Create a special file `name` (FIFO, socket, character or block device) with type
    /// and permission bits `mode` (umask applied) and device number `rdev`.
    fn mknod(
        &self,
        _name: &[u8],
        _mode: u32,
        _rdev: u64,
        _creds: &Creds,
    ) -> Result<Arc<dyn Inode>> {
        Err(errno!(EPERM))
    }

    /// `fallocate(2)` on a regular file: `mode` is 0, `FALLOC_FL_KEEP_SIZE` or
    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`; the range is checked.
    fn fallocate(&self, _mode: u32, _offset: u64, _len: u64) -> Result<()> {
        Err(errno!(EOPNOTSUPP))
    }

    /// Flush the file to stable storage (`fsync(2)`): nothing to do for memory.
    fn fsync(&self, _data_only: bool) -> Result<()> {
        Ok(())
    }

    /// The value of extended attribute `name` (full name, `user.foo`). Filesystems without
    /// xattrs have none: `ENODATA`.
    fn getxattr(&self, _name: &[u8]) -> Result<Vec<u8>> {
        Err(errno!(ENODATA))
    }

    /// Set `name` to `value`; `flags` is `XATTR_CREATE` and/or `XATTR_REPLACE`.
    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: u32) -> Result<()> {
        Err(errno!(EOPNOTSUPP))
    }

    /// The names of all extended attributes.
    fn listxattr(&self) -> Result<Vec<Vec<u8>>> {
        Ok(Vec::new())
    }

    fn removexattr(&self, _name: &[u8]) -> Result<()> {
        Err(errno!(ENODATA))
    }
}

/// `setxattr(2)` flags.
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;
/// Largest extended attribute value (`XATTR_SIZE_MAX`).
pub const XATTR_SIZE_MAX: usize = 65536;
/// `fallocate(2)` modes.
pub const FALLOC_FL_KEEP_SIZE: u32 = 1;
pub const FALLOC_FL_PUNCH_HOLE: u32 = 2;
