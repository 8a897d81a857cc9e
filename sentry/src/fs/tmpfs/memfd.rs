//! `memfd_create(2)`: an anonymous tmpfs file, unlinked from the start, and the file seals
//! (`fcntl(2)` `F_ADD_SEALS`) that limit what may be done to it.
//!
//! Each memfd lives alone in a tmpfs instance of its own that is mounted nowhere, under
//! the name `memfd:NAME`, removed at once: `/proc/PID/fd/N` then reads
//! `/memfd:NAME (deleted)`, as in Linux, and reopening it there reaches the same inode.
#![deny(unsafe_code)]

use super::{Tmpfs, TmpfsInode};
use crate::error::Result;
use crate::mm::MemoryFile;
use crate::return_errno;
use crate::vfs::{Creds, Dentry, Inode, Mount, VfsPath};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Seal bits (`linux/fcntl.h`).
pub const F_SEAL_SEAL: u32 = 0x01;
pub const F_SEAL_SHRINK: u32 = 0x02;
pub const F_SEAL_GROW: u32 = 0x04;
pub const F_SEAL_WRITE: u32 = 0x08;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
pub const ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// `memfd_create` flags (`linux/memfd.h`).
pub const MFD_CLOEXEC: u32 = 0x01;
pub const MFD_ALLOW_SEALING: u32 = 0x02;
pub const MFD_HUGETLB: u32 = 0x04;
pub const MFD_NOEXEC_SEAL: u32 = 0x08;
pub const MFD_EXEC: u32 = 0x10;
/// The hugetlb page-size bits that may accompany `MFD_HUGETLB`.
const MFD_HUGE_MASK: u32 = 0x3f << 26;

/// Longest name: `NAME_MAX` less the `memfd:` prefix.
pub const MFD_NAME_MAX_LEN: usize = 255 - 6;

/// Create the memfd file `name` (without its prefix) for `flags`, owned by `creds`; the
/// caller opens it read-write. `EINVAL` for unknown or contradictory flags; hugetlb
/// pages do not exist here (`EINVAL`, as a kernel without hugetlbfs says).
pub fn create(mf: &Arc<MemoryFile>, name: &[u8], flags: u32, creds: &Creds) -> Result<VfsPath> {
    let known = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
    if flags & !known != 0 && (flags & MFD_HUGETLB == 0 || flags & !(known | MFD_HUGE_MASK) != 0) {
        return_errno!(EINVAL);
    }
    if flags & MFD_HUGETLB != 0 {
        return_errno!(EINVAL, "no hugetlb pages");
    }
    if flags & MFD_NOEXEC_SEAL != 0 && flags & MFD_EXEC != 0 {
        return_errno!(EINVAL);
    }
    if name.len() > MFD_NAME_MAX_LEN {
        return_errno!(EINVAL);
    }
    let mut full = b"memfd:".to_vec();
    full.extend_from_slice(name);
    // Linux makes it S_IRWXUGO, umask aside; MFD_NOEXEC_SEAL takes the execute bits away
    // for good.
    let mode = if flags & MFD_NOEXEC_SEAL != 0 {
        0o666
    } else {
        0o777
    };
    let root = Tmpfs::new_root(mf, 0o1777);
    let file = root.create(&full, mode, creds)?;
    let seals = if flags & MFD_NOEXEC_SEAL != 0 {
        F_SEAL_EXEC
    } else if flags & MFD_ALLOW_SEALING != 0 {
        0
    } else {
        F_SEAL_SEAL
    };
    let tmpfs_file = file
        .as_any_arc()
        .downcast::<TmpfsInode>()
        .map_err(|_| crate::errno!(EINVAL))?;
    tmpfs_file
        .file_data()?
        .seals
        .store(seals, Ordering::Relaxed);
    let root_dentry = Dentry::new_root(root.clone());
    let dentry = root_dentry.lookup(&full)?;
    root.unlink(&full)?;
    root_dentry.remove_child(&full);
    let mount = Arc::new(Mount::new(0, "tmpfs", root_dentry, None, false));
    Ok(VfsPath { mount, dentry })
}
