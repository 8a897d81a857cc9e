//! The mount tree.

use super::dentry::Dentry;
use super::inode::Inode;
use crate::error::Result;
use crate::return_errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One mounted filesystem.
pub struct Mount {
    pub id: u64,
    /// The filesystem type as `/proc/mounts` names it (`tmpfs`, `9p`…).
    pub fs_type: &'static str,
    pub root: Arc<Dentry>,
    /// Where it is mounted: `None` for the root mount.
    pub mountpoint: Option<VfsPath>,
    /// Read-only as mounted. A later `MS_REMOUNT` changes [`Mount::is_read_only`], which
    /// every write check asks.
    pub read_only: bool,
    read_only_now: AtomicBool,
    /// `MS_NOSUID`, `MS_NODEV` and `MS_NOEXEC` as they are now (set at mount time, changed
    /// by a remount).
    flags: AtomicU32,
}

/// The per-mount flags besides read-only that the sentry enforces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// Set-user-ID and set-group-ID bits do not count on `execve`.
    pub nosuid: bool,
    /// Device nodes cannot be opened (`EACCES`).
    pub nodev: bool,
    /// Programs cannot be executed (`EACCES`) nor files mapped executable (`EPERM`).
    pub noexec: bool,
}

impl MountFlags {
    const NOSUID: u32 = 1;
    const NODEV: u32 = 2;
    const NOEXEC: u32 = 4;

    /// What Linux mounts proc and sysfs with.
    pub const KERNEL_FS: MountFlags = MountFlags {
        nosuid: true,
        nodev: true,
        noexec: true,
    };

    fn bits(self) -> u32 {
        [
            (self.nosuid, Self::NOSUID),
            (self.nodev, Self::NODEV),
            (self.noexec, Self::NOEXEC),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |acc, (_, bit)| acc | bit)
    }

    fn from_bits(b: u32) -> MountFlags {
        MountFlags {
            nosuid: b & Self::NOSUID != 0,
            nodev: b & Self::NODEV != 0,
            noexec: b & Self::NOEXEC != 0,
        }
    }
}

impl Mount {
    pub fn new(
        id: u64,
        fs_type: &'static str,
        root: Arc<Dentry>,
        mountpoint: Option<VfsPath>,
        read_only: bool,
    ) -> Mount {
        Mount {
            id,
            fs_type,
            root,
            mountpoint,
            read_only,
            read_only_now: AtomicBool::new(read_only),
            flags: AtomicU32::new(0),
        }
    }

    /// Its nosuid/nodev/noexec flags now.
    pub fn flags(&self) -> MountFlags {
        MountFlags::from_bits(self.flags.load(Ordering::Relaxed))
    }

    /// Set them (a new mount's options, or a remount).
    pub fn set_flags(&self, f: MountFlags) {
        self.flags.store(f.bits(), Ordering::Relaxed);
    }

    /// Whether writes through this mount are refused (`EROFS`) now.
    pub fn is_read_only(&self) -> bool {
        self.read_only_now.load(Ordering::Relaxed)
    }

    /// `MS_REMOUNT` with or without `MS_RDONLY`.
    pub fn set_read_only(&self, ro: bool) {
        self.read_only_now.store(ro, Ordering::Relaxed);
    }
}

/// A location in the mount tree: a dentry as seen through one mount.
#[derive(Clone)]
pub struct VfsPath {
    pub mount: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl VfsPath {
    pub fn inode(&self) -> &Arc<dyn Inode> {
        self.dentry.inode()
    }

    pub fn same(&self, other: &VfsPath) -> bool {
        Arc::ptr_eq(&self.mount, &other.mount) && Arc::ptr_eq(&self.dentry, &other.dentry)
    }

    pub fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mount.root)
    }

    /// The absolute path from the top of the mount tree.
    pub fn absolute(&self) -> Vec<u8> {
        let mut top = self.clone();
        while let Some(mp) = top.mount.mountpoint.clone() {
            top = mp;
        }
        let top = VfsPath {
            dentry: top.mount.root.clone(),
            mount: top.mount,
        };
        self.path_from(&top)
    }

    /// The absolute path of `self` as seen from `root` (`getcwd`, `/proc/self/fd`). A path
    /// outside `root` is named from the topmost point reached, as Linux does.
    pub fn path_from(&self, root: &VfsPath) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = self.clone();
        loop {
            if cur.same(root) {
                break;
            }
            if cur.is_mount_root() {
                match &cur.mount.mountpoint {
                    Some(mp) => {
                        cur = mp.clone();
                        continue;
                    }
                    None => break,
                }
            }
            match cur.dentry.parent() {
                Some(p) => {
                    parts.push(cur.dentry.name());
                    cur = VfsPath {
                        mount: cur.mount.clone(),
                        dentry: p,
                    };
                }
                None => break,
            }
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }
}

/// The mount table of a sandbox (one mount namespace).
pub struct Vfs {
    root: VfsPath,
    /// (parent mount id, address of the mount-point dentry) → the mount on top. The
    /// mount holds the mount-point dentry, so the address stays valid and unique.
    mounts: Mutex<HashMap<(u64, usize), Arc<Mount>>>,
    next_mount_id: AtomicU64,
}

impl Vfs {
    pub fn new(fs_type: &'static str, root: Arc<dyn Inode>, read_only: bool) -> Arc<Vfs> {
        let mount = Arc::new(Mount::new(
            1,
            fs_type,
            Dentry::new_root(root),
            None,
            read_only,
        ));
        let root = VfsPath {
            dentry: mount.root.clone(),
            mount,
        };
        Arc::new(Vfs {
            root,
            mounts: Mutex::new(HashMap::new()),
            next_mount_id: AtomicU64::new(2),
        })
    }

    pub fn root(&self) -> VfsPath {
        self.root.clone()
    }

    /// Mount a filesystem whose root is `root` on the directory `at`.
    pub fn mount(
        &self,
        at: &VfsPath,
        fs_type: &'static str,
        root: Arc<dyn Inode>,
        read_only: bool,
    ) -> Result<Arc<Mount>> {
        if !at.inode().is_dir() {
            return_errno!(ENOTDIR);
        }
        self.mount_dentry(at, fs_type, Dentry::new_root(root), read_only)
    }

    /// Every mount, the root first, then in the order they were made (`/proc/mounts`).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        let mut all: Vec<Arc<Mount>> = self
            .mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|m| m.id);
        all.insert(0, self.root.mount.clone());
        all
    }

    /// The mount on top of `p`, if `p` is a mount point.
    pub fn mounted_on(&self, p: &VfsPath) -> Option<Arc<Mount>> {
        let key = (p.mount.id, Arc::as_ptr(&p.dentry) as usize);
        self.mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    /// Follow mounts down: the root of the topmost mount on `p`, or `p`.
    pub fn follow_mounts(&self, mut p: VfsPath) -> VfsPath {
        while let Some(m) = self.mounted_on(&p) {
            p = VfsPath {
                dentry: m.root.clone(),
                mount: m,
            };
        }
        p
    }

    /// Mount the tree below `root` (a new filesystem's root, or an existing dentry for a
    /// bind mount) on `at`. A file may only cover a file and a directory a directory.
    pub fn mount_dentry(
        &self,
        at: &VfsPath,
        fs_type: &'static str,
        root: Arc<Dentry>,
        read_only: bool,
    ) -> Result<Arc<Mount>> {
        if at.inode().is_dir() != root.inode().is_dir() {
            return_errno!(ENOTDIR);
        }
        let mount = Arc::new(Mount::new(
            self.next_mount_id.fetch_add(1, Ordering::Relaxed),
            fs_type,
            root,
            Some(at.clone()),
            read_only,
        ));
        let key = (at.mount.id, Arc::as_ptr(&at.dentry) as usize);
        let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        if mounts.contains_key(&key) {
            // `at` is resolved through mounts, so it is never covered already; a second
            // mount on the same place stacks on the first one's root instead.
            return_errno!(EBUSY);
        }
        mounts.insert(key, mount.clone());
        Ok(mount)
    }

    /// `umount2(2)` of `m`, which the caller found as a mount root. `held` is how many
    /// references the caller itself holds to `m`. A mount still in use (an open file, a
    /// working directory, a mount below it) is `EBUSY` unless `detach`, which takes it and
    /// everything below it out of the tree while its users keep what they have
    /// (`MNT_DETACH`). The root mount cannot go (`EINVAL`).
    pub fn umount(&self, m: &Arc<Mount>, held: usize, detach: bool) -> Result<()> {
        let Some(at) = &m.mountpoint else {
            return_errno!(EINVAL);
        };
        let key = (at.mount.id, Arc::as_ptr(&at.dentry) as usize);
        let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        match mounts.get(&key) {
            Some(cur) if Arc::ptr_eq(cur, m) => {}
            // Already detached, or not a mount of this tree.
            _ => return_errno!(EINVAL),
        }
        if !detach {
            let has_children = mounts.values().any(|c| {
                c.mountpoint
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(&p.mount, m))
            });
            // The table holds one reference; anything beyond the caller's is a user.
            if has_children || Arc::strong_count(m) > held + 1 {
                return_errno!(EBUSY);
            }
        }
        mounts.remove(&key);
        // With MNT_DETACH, the mounts below go too (they are unreachable now).
        let mut gone = vec![m.id];
        while let Some(id) = gone.pop() {
            let below: Vec<_> = mounts
                .iter()
                .filter(|(_, c)| c.mountpoint.as_ref().is_some_and(|p| p.mount.id == id))
                .map(|(k, c)| (*k, c.id))
                .collect();
            for (k, cid) in below {
                mounts.remove(&k);
                gone.push(cid);
            }
        }
        Ok(())
    }

    /// After a recursive bind (`MS_BIND | MS_REC`) of `from`'s tree below `from_root` onto
    /// `to`: the mounts inside that tree appear at the same places in the copy, and the
    /// mounts inside those, recursively. Only mounts that existed before the copy count,
    /// so binding a tree into itself copies it once.
    pub fn copy_submounts(&self, from: &Arc<Mount>, from_root: &Arc<Dentry>, to: &Arc<Mount>) {
        let before: Vec<Arc<Mount>> = self
            .mounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|m| !Arc::ptr_eq(m, to))
            .cloned()
            .collect();
        self.copy_from(&before, from, from_root, to);
    }

    fn copy_from(
        &self,
        before: &[Arc<Mount>],
        from: &Arc<Mount>,
        from_root: &Arc<Dentry>,
        to: &Arc<Mount>,
    ) {
        for child in before {
            let Some(mp) = &child.mountpoint else {
                continue;
            };
            if !Arc::ptr_eq(&mp.mount, from) || !mp.dentry.is_descendant_of(from_root) {
                continue;
            }
            let at = VfsPath {
                mount: to.clone(),
                dentry: mp.dentry.clone(),
            };
            // A place already covered in the copy (stacked mounts) keeps the first.
            if let Ok(copy) = self.mount_dentry(&at, child.fs_type, child.root.clone(), false) {
                copy.set_read_only(child.is_read_only());
                copy.set_flags(child.flags());
                self.copy_from(before, child, &child.root, &copy);
            }
        }
    }
}
