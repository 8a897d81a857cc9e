//! Path walk (`namei`): components, `.` and `..`, mount crossings, symlinks, and the
//! `openat2(2)` `RESOLVE_*` restrictions.

use super::inode::{check_search, Creds};
use super::mount::{Vfs, VfsPath};
use crate::error::Result;
use crate::{errno, return_errno};

/// Linux's limit on symlinks followed in one lookup (`MAXSYMLINKS`).
pub const MAXSYMLINKS: u32 = 40;
/// Longest single name component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// `openat2(2)` resolve flags (`struct open_how.resolve`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolveFlags(pub u64);

impl ResolveFlags {
    pub const NO_XDEV: u64 = 0x01;
    pub const NO_MAGICLINKS: u64 = 0x02;
    pub const NO_SYMLINKS: u64 = 0x04;
    pub const BENEATH: u64 = 0x08;
    pub const IN_ROOT: u64 = 0x10;
    pub const CACHED: u64 = 0x20;
    pub const ALL: u64 = 0x3f;

    pub fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }
}

/// One path resolution: the root it may not climb above, where relative paths start,
/// the restrictions, and the symlink budget shared by every step (including the
/// symlinks `open(O_CREAT)` follows at the end).
pub struct Resolve<'a> {
    pub vfs: &'a Vfs,
    pub root: VfsPath,
    pub start: VfsPath,
    pub flags: ResolveFlags,
    symlinks: u32,
    /// Whose search permission every directory crossed needs: the calling task's, or
    /// `None` (no checks) for the sandbox's own lookups outside any task.
    creds: Option<Creds>,
}

thread_local! {
    /// Credentials that replace the task's for the walks `with_creds` runs.
    static OVERRIDE: std::cell::RefCell<Option<Creds>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` with its path walks checked against `creds` rather than the task's own
/// (Linux's `override_creds`, which `access(2)` uses for the real ids).
pub fn with_creds<T>(creds: Creds, f: impl FnOnce() -> T) -> T {
    let old = OVERRIDE.with(|o| o.replace(Some(creds)));
    let r = f();
    OVERRIDE.with(|o| *o.borrow_mut() = old);
    r
}

/// The filesystem credentials of the task this host thread runs, as it last published
/// them (it does after every syscall that changes them).
fn caller_creds() -> Option<Creds> {
    if let Some(c) = OVERRIDE.with(|o| o.borrow().clone()) {
        return Some(c);
    }
    let (_, t) = crate::kernel::task::current()?;
    let view = t.proc.lock().unwrap_or_else(|e| e.into_inner());
    Some(view.creds.fs_creds())
}

/// The last component of a path, split off by [`Resolve::parent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Last {
    /// A real name.
    Name(Vec<u8>),
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// The path was only slashes: `/`.
    Root,
}

impl<'a> Resolve<'a> {
    /// `RESOLVE_BENEATH` and `RESOLVE_IN_ROOT` make `start` the root of the lookup.
    pub fn new(vfs: &'a Vfs, root: VfsPath, start: VfsPath, flags: ResolveFlags) -> Self {
        let root = if flags.has(ResolveFlags::BENEATH) || flags.has(ResolveFlags::IN_ROOT) {
            start.clone()
        } else {
            root
        };
        Resolve {
            vfs,
            root,
            start,
            flags,
            symlinks: 0,
            creds: caller_creds(),
        }
    }

    /// `may_lookup`: search (execute) permission on a directory about to be looked in.
    fn may_lookup(&self, dir: &VfsPath) -> Result<()> {
        match &self.creds {
            Some(c) => check_search(dir.inode().as_ref(), c),
            None => Ok(()),
        }
    }

    /// Resolve `path` from `self.start`; `follow` says whether a final symlink is
    /// followed (a trailing slash always follows). `ENOENT` for an empty path.
    pub fn path(&mut self, path: &[u8], follow: bool) -> Result<VfsPath> {
        if path.is_empty() {
            return_errno!(ENOENT);
        }
        let start = self.start.clone();
        self.walk(start, path, follow)
    }

    /// Resolve all but the last component of `path`: the parent directory, the last
    /// component, and whether `path` ended with a slash.
    pub fn parent(&mut self, path: &[u8]) -> Result<(VfsPath, Last, bool)> {
        let start = self.start.clone();
        self.parent_from(start, path)
    }

    pub fn parent_from(&mut self, start: VfsPath, path: &[u8]) -> Result<(VfsPath, Last, bool)> {
        if path.is_empty() {
            return_errno!(ENOENT);
        }
        let trailing = path.ends_with(b"/");
        let trimmed_len = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        let trimmed = path.get(..trimmed_len).unwrap_or_default();
        if trimmed.is_empty() {
            // Only slashes.
            let root = self.jump_root(&start)?;
            return Ok((root, Last::Root, trailing));
        }
        let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (
                trimmed.get(..=i).unwrap_or_default(),
                trimmed.get(i + 1..).unwrap_or_default(),
            ),
            None => (&b""[..], trimmed),
        };
        let dir = if dir_part.is_empty() {
            start
        } else {
            self.walk(start, dir_part, true)?
        };
        if !dir.inode().is_dir() {
            return_errno!(ENOTDIR);
        }
        self.may_lookup(&dir)?;
        let last = match name {
            b"." => Last::Dot,
            b".." => Last::DotDot,
            n if n.len() > NAME_MAX => return_errno!(ENAMETOOLONG),
            n => Last::Name(n.to_vec()),
        };
        Ok((dir, last, trailing))
    }

    /// Count one symlink traversal against the budget and the `RESOLVE_NO_SYMLINKS` ban.
    pub fn count_symlink(&mut self) -> Result<()> {
        if self.flags.has(ResolveFlags::NO_SYMLINKS) {
            return_errno!(ELOOP);
        }
        self.symlinks += 1;
        if self.symlinks > MAXSYMLINKS {
            return_errno!(ELOOP);
        }
        Ok(())
    }

    /// The symlink `link` found in directory `dir`, counted and read (never empty).
    pub fn read_symlink(&mut self, link: &VfsPath) -> Result<Vec<u8>> {
        self.count_symlink()?;
        let target = link.inode().readlink()?;
        if target.is_empty() {
            return_errno!(ENOENT);
        }
        Ok(target)
    }

    /// Follow `link` if it is a magic link (see [`super::Inode::magic_link`]): counted
    /// like any symlink, refused under `RESOLVE_NO_MAGICLINKS` (`ELOOP`) and where the
    /// lookup must stay below a directory (`EXDEV`), as in Linux.
    pub fn follow_magic(&mut self, link: &VfsPath) -> Option<Result<VfsPath>> {
        let target = link.inode().magic_link(link)?;
        Some(self.count_symlink().and_then(|()| {
            if self.flags.has(ResolveFlags::NO_MAGICLINKS) {
                return_errno!(ELOOP);
            }
            if self.flags.has(ResolveFlags::BENEATH) || self.flags.has(ResolveFlags::IN_ROOT) {
                return_errno!(EXDEV, "magic link under RESOLVE_BENEATH/IN_ROOT");
            }
            target
        }))
    }

    fn jump_root(&self, from: &VfsPath) -> Result<VfsPath> {
        if self.flags.has(ResolveFlags::BENEATH) {
            return_errno!(EXDEV, "absolute path under RESOLVE_BENEATH");
        }
        if self.flags.has(ResolveFlags::NO_XDEV)
            && !std::sync::Arc::ptr_eq(&from.mount, &self.root.mount)
        {
            return_errno!(EXDEV);
        }
        Ok(self.root.clone())
    }

    fn dotdot(&self, mut cur: VfsPath) -> Result<VfsPath> {
        loop {
            if cur.same(&self.root) {
                if self.flags.has(ResolveFlags::BENEATH) {
                    return_errno!(EXDEV, "'..' above the RESOLVE_BENEATH root");
                }
                return Ok(cur);
            }
            if !cur.is_mount_root() {
                return Ok(match cur.dentry.parent() {
                    Some(p) => VfsPath {
                        mount: cur.mount,
                        dentry: p,
                    },
                    None => cur,
                });
            }
            match cur.mount.mountpoint.clone() {
                Some(mp) => {
                    if self.flags.has(ResolveFlags::NO_XDEV) {
                        return_errno!(EXDEV);
                    }
                    cur = mp;
                }
                None => return Ok(cur),
            }
        }
    }

    fn step(&self, dir: &VfsPath, name: &[u8]) -> Result<VfsPath> {
        if name.len() > NAME_MAX {
            return_errno!(ENAMETOOLONG);
        }
        let dentry = dir.dentry.lookup(name)?;
        let child = VfsPath {
            mount: dir.mount.clone(),
            dentry,
        };
        let below = self.vfs.follow_mounts(child);
        if self.flags.has(ResolveFlags::NO_XDEV)
            && !std::sync::Arc::ptr_eq(&below.mount, &dir.mount)
        {
            return_errno!(EXDEV);
        }
        Ok(below)
    }

    /// Walk `path` from `start` (or the root if it is absolute).
    pub fn walk(&mut self, start: VfsPath, path: &[u8], follow_last: bool) -> Result<VfsPath> {
        let mut cur = if path.first() == Some(&b'/') {
            self.jump_root(&start)?
        } else {
            start
        };
        let trailing = path.ends_with(b"/");
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let n = comps.len();
        for (i, comp) in comps.into_iter().enumerate() {
            let last = i + 1 == n;
            if !cur.inode().is_dir() {
                return_errno!(ENOTDIR);
            }
            self.may_lookup(&cur)?;
            match comp {
                b"." => continue,
                b".." => {
                    cur = self.dotdot(cur)?;
                    continue;
                }
                _ => {}
            }
            let child = self.step(&cur, comp)?;
            if child.inode().is_symlink() && (!last || follow_last || trailing) {
                if let Some(target) = self.follow_magic(&child) {
                    cur = target?;
                    continue;
                }
                let target = self.read_symlink(&child)?;
                cur = self.walk(cur, &target, true)?;
            } else {
                cur = child;
            }
        }
        if trailing && !cur.inode().is_dir() {
            return Err(errno!(ENOTDIR));
        }
        Ok(cur)
    }
}
