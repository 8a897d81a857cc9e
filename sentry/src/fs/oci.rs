//! The parts of an OCI spec the sentry applies to a sandbox once its mounts are made and
//! before its first process runs: `linux.maskedPaths`, `linux.readonlyPaths`,
//! `linux.sysctl`, the cgroup limits its cgroupfs shows, and the descriptors
//! `--preserve-fds` hands to the first process.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::fs::tmpfs::Tmpfs;
use crate::mm::MemoryFile;
use crate::vfs::{Creds, Dentry, FsContext, Inode, VfsPath};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// What of the spec the sentry applies beyond mounts and the process (see the module).
#[derive(Default)]
pub struct OciSetup {
    /// Paths made unreadable: a file becomes an empty character device like `/dev/null`,
    /// a directory an empty read-only tmpfs. Missing paths are ignored, as runc does.
    pub masked_paths: Vec<Vec<u8>>,
    /// Paths made read-only by a read-only bind of themselves; missing ones are ignored.
    pub readonly_paths: Vec<Vec<u8>>,
    /// `linux.sysctl`, keys the sentry owns (checked by the runtime).
    pub sysctl: Vec<(String, String)>,
    /// The container's cgroup limits, as its `/sys/fs/cgroup` shows them.
    pub cgroup: crate::fs::cgroup::Limits,
    /// Host descriptors that become the first process's fds 3, 4… (`--preserve-fds`).
    pub extra_fds: Vec<OwnedFd>,
}

/// Apply `maskedPaths` and then `readonlyPaths`, as root resolving each path in the
/// container's tree (symlinks followed, as runc's mounts follow them).
pub fn apply_paths(fs: &FsContext, setup: &OciSetup, mf: &Arc<MemoryFile>) -> Result<()> {
    for p in &setup.readonly_paths {
        if let Some(at) = find(fs, p)? {
            let m = fs
                .vfs
                .mount_dentry(&at, at.mount.fs_type, at.dentry.clone(), true)?;
            // A bind keeps the flags of the mount it comes from (nosuid, nodev, noexec).
            m.set_flags(at.mount.flags());
            // MS_BIND | MS_REC: what is mounted below comes along (and keeps its mode).
            fs.vfs.copy_submounts(&at.mount, &at.dentry, &m);
        }
    }
    for p in &setup.masked_paths {
        let Some(at) = find(fs, p)? else { continue };
        if at.inode().is_dir() {
            fs.vfs
                .mount(&at, "tmpfs", Tmpfs::new_root(mf, 0o755), true)?
                .set_flags(crate::vfs::MountFlags::KERNEL_FS);
        } else {
            fs.vfs
                .mount_dentry(&at, "tmpfs", Dentry::new_root(null_device(mf)?), true)?;
        }
    }
    Ok(())
}

/// The place `path` names in the container, or `None` if it does not exist.
fn find(fs: &FsContext, path: &[u8]) -> Result<Option<VfsPath>> {
    if !path.starts_with(b"/") {
        return Err(crate::errno!(EINVAL, "not an absolute path"));
    }
    let found = crate::vfs::with_creds(Creds::root(), || fs.lookup(&fs.root, path, true));
    match found {
        Ok(p) => Ok(Some(fs.vfs.follow_mounts(p))),
        Err(e) if matches!(e.errno, crate::Errno::ENOENT | crate::Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A fresh `/dev/null` node (character device 1:3) to cover a masked file.
fn null_device(mf: &Arc<MemoryFile>) -> Result<Arc<dyn Inode>> {
    let dir = Tmpfs::new_root(mf, 0o755);
    let rdev = crate::fs::dev::makedev(1, 3);
    dir.mknod(b"null", libc::S_IFCHR | 0o666, rdev, &Creds::root())
}

/// Apply `linux.sysctl` to kernel `k`.
pub fn apply_sysctl(k: &crate::kernel::Kernel, setup: &OciSetup) -> Result<()> {
    for (key, value) in &setup.sysctl {
        crate::fs::proc::sysctl::apply(k, key, value)?;
    }
    Ok(())
}

/// Give the first process the preserved host descriptors as its fds 3, 4…, each a host
/// file with the access mode it was opened with.
pub fn preserve_fds(files: &mut crate::vfs::FdTable, fds: Vec<OwnedFd>) -> Result<()> {
    for (i, fd) in fds.into_iter().enumerate() {
        let n = i32::try_from(i)
            .ok()
            .and_then(|i| i.checked_add(3))
            .ok_or(crate::errno!(EMFILE))?;
        let flags = crate::fs::host::HostFile::host_access_mode(&fd);
        let file = crate::fs::host::HostFile::with_console(fd, flags, None);
        files.insert_at(n, Arc::new(file), crate::vfs::FdFlags::default())?;
    }
    Ok(())
}
