//! The virtual filesystem: mount tree, dentries, path walk, file descriptions, fd table.
//!
//! - [`Inode`]: what a filesystem implements for each object (lookup, readdir, create…);
//!   default methods return the errno Linux gives when an object does not support the
//!   operation.
//! - [`Dentry`]: a cached name → inode link with a parent pointer; [`Mount`]s are keyed by
//!   (parent mount, mount-point dentry); a [`VfsPath`] is a (mount, dentry) pair.
//! - [`FileDescription`]: an open file (what an fd points at).
//! - [`FdTable`] and [`FsContext`]: the per-process tables the syscalls use.
#![deny(unsafe_code)]

mod dentry;
mod fd_table;
mod file;
mod inode;
mod mount;
pub mod notify;
mod ops;
mod path;
mod types;

pub use dentry::Dentry;
pub use fd_table::{FdFlags, FdTable, DEFAULT_NOFILE};
pub use file::{
    dtype_of, seek_offset, DirFile, DirentFormat, DirentSink, FileDescription, FileState,
    OPathFile, StatusFlags, SETFL_MASK,
};
pub use inode::{
    check_permission, check_search, check_sticky, Creds, Inode, FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE, MAY_EXEC, MAY_READ, MAY_WRITE, XATTR_CREATE, XATTR_REPLACE,
    XATTR_SIZE_MAX,
};
pub use mount::{Mount, MountFlags, Vfs, VfsPath};
pub use ops::{check_device_mount, open_for_exec, remove_privs, ExecFile, OpenHow};
pub use path::{with_creds, Resolve, ResolveFlags, MAXSYMLINKS};
pub use types::{dtype_of_mode, DirEntry, Stat, StatFs, Timespec};

/// A process's filesystem context: root, working directory, umask (`CLONE_FS` shares it).
#[derive(Clone)]
pub struct FsContext {
    pub vfs: std::sync::Arc<Vfs>,
    pub root: VfsPath,
    pub cwd: VfsPath,
    pub umask: u32,
}

impl FsContext {
    /// A context rooted at the VFS root, with `/` as working directory and umask 022.
    pub fn new(vfs: std::sync::Arc<Vfs>) -> FsContext {
        let root = vfs.root();
        FsContext {
            vfs,
            cwd: root.clone(),
            root,
            umask: 0o022,
        }
    }
}

/// A fresh device number for an in-sentry filesystem (Linux's anonymous `0:N` devices).
pub fn anon_dev() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(16);
    let minor = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // makedev(0, minor): the minor's low 8 bits and its high bits are split in dev_t.
    ((minor & 0xff) | ((minor & !0xff) << 12)) & 0xffff_ffff_ffff
}

#[cfg(test)]
mod tests;
