//! Dentries: the cached name tree over a filesystem's inodes.
//!
//! A dentry holds its parent (strongly, as in Linux) and caches the children looked up so
//! far. All namespace changes go through the VFS, which keeps the cache in step with the
//! filesystem (unlink drops the child, rename moves it). Mount points are keyed by the
//! dentry's address, so a dentry's identity must not change while it is cached.

use super::inode::Inode;
use crate::error::Result;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct Dentry {
    inode: Arc<dyn Inode>,
    /// `None` for the root of a filesystem.
    parent: Mutex<Option<Arc<Dentry>>>,
    name: Mutex<Vec<u8>>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    /// Set once the name was removed (rmdir/unlink): `getcwd` then fails with ENOENT.
    deleted: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dentry {
    /// The root dentry of a filesystem.
    pub fn new_root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            inode,
            parent: Mutex::new(None),
            name: Mutex::new(b"/".to_vec()),
            children: Mutex::new(HashMap::new()),
            deleted: AtomicBool::new(false),
        })
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    pub fn parent(&self) -> Option<Arc<Dentry>> {
        lock(&self.parent).clone()
    }

    pub fn name(&self) -> Vec<u8> {
        lock(&self.name).clone()
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    /// The child `name`, from the cache or the filesystem.
    pub fn lookup(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>> {
        {
            let mut children = lock(&self.children);
            if let Some(d) = children.get(name) {
                if d.inode.revalidate() {
                    return Ok(d.clone());
                }
                if let Some(stale) = children.remove(name) {
                    stale.deleted.store(true, Ordering::Relaxed);
                }
            }
        }
        let inode = self.inode.lookup(name)?;
        let mut children = lock(&self.children);
        // Names that went away by themselves (`/proc/PID` of dead processes) would pile
        // up: sweep them now and then, at sizes that keep the cost amortized.
        if children.len() >= 64 && children.len().is_power_of_two() {
            children.retain(|_, d| {
                let keep = d.inode.revalidate();
                if !keep {
                    d.deleted.store(true, Ordering::Relaxed);
                }
                keep
            });
        }
        // Another thread may have raced us to it; keep the first so identities stay unique.
        let d = children.entry(name.to_vec()).or_insert_with(|| {
            Arc::new(Dentry {
                inode,
                parent: Mutex::new(Some(self.clone())),
                name: Mutex::new(name.to_vec()),
                children: Mutex::new(HashMap::new()),
                deleted: AtomicBool::new(false),
            })
        });
        Ok(d.clone())
    }

    /// The cached child `name`, if any, without asking the filesystem.
    pub fn cached_child(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        lock(&self.children).get(name).cloned()
    }

    /// Forget the child `name` after the filesystem removed it.
    pub fn remove_child(&self, name: &[u8]) {
        if let Some(d) = lock(&self.children).remove(name) {
            d.deleted.store(true, Ordering::Relaxed);
        }
    }

    /// Forget the child `name` without marking it deleted (it was replaced or moved).
    pub fn forget_child(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        lock(&self.children).remove(name)
    }

    /// After a rename: put `child` under `self` as `name`.
    pub fn adopt(self: &Arc<Self>, name: &[u8], child: Arc<Dentry>) {
        *lock(&child.parent) = Some(self.clone());
        *lock(&child.name) = name.to_vec();
        if let Some(old) = lock(&self.children).insert(name.to_vec(), child) {
            old.deleted.store(true, Ordering::Relaxed);
        }
    }

    /// Whether `self` is `other` or lies below it (same filesystem).
    pub fn is_descendant_of(self: &Arc<Self>, other: &Arc<Dentry>) -> bool {
        let mut cur = Some(self.clone());
        while let Some(d) = cur {
            if Arc::ptr_eq(&d, other) {
                return true;
            }
            cur = d.parent();
        }
        false
    }
}
