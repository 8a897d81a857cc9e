//! The mount tree.

use super::dentry::Dentry;
use super::inode::Inode;
use crate::error::Result;
use crate::return_errno;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One mounted filesystem.
pub struct Mount {
    pub id: u64,
    /// The filesystem type as `/proc/mounts` names it (`tmpfs`, `9p`…).
    pub fs_type: &'static str,
    pub root: Arc<Dentry>,
    /// Where it is mounted: `None` for the root mount.
    pub mountpoint: Option<VfsPath>,
    pub read_only: bool,
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
        let mount = Arc::new(Mount {
            id: 1,
            fs_type,
            root: Dentry::new_root(root),
            mountpoint: None,
            read_only,
        });
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
        let mount = Arc::new(Mount {
            id: self.next_mount_id.fetch_add(1, Ordering::Relaxed),
            fs_type,
            root: Dentry::new_root(root),
            mountpoint: Some(at.clone()),
            read_only,
        });
        let key = (at.mount.id, Arc::as_ptr(&at.dentry) as usize);
        let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        if mounts.contains_key(&key) {
            // Stacking mounts is legal in Linux, but nothing needs it yet.
            return_errno!(EBUSY);
        }
        mounts.insert(key, mount.clone());
        Ok(mount)
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
}
