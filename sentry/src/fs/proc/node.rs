//! The inodes procfs and sysfs are built from: files whose contents are generated when
//! they are opened (a snapshot, like Linux's seq files), directories whose entries are
//! generated when listed or looked up, and symlinks whose target is generated when read
//! (some of them "magic": following them leads to an object, not to their text).

use crate::error::Result;
use crate::vfs::{
    dtype_of, Dentry, DirEntry, FileDescription, FileState, Inode, Stat, StatFs, Timespec, VfsPath,
};
use crate::{errno, return_errno};
use std::any::Any;
use std::sync::{Arc, OnceLock};

/// Generates a file's contents or a link's target.
pub type Gen = Box<dyn Fn() -> Result<Vec<u8>> + Send + Sync>;
/// Takes what was written to a file.
pub type Writer = Box<dyn Fn(&[u8]) -> Result<()> + Send + Sync>;
/// A directory's entries (name, inode).
pub type Entries = Vec<(Vec<u8>, Arc<dyn Inode>)>;
/// Lists a directory's entries.
pub type Lister = Box<dyn Fn() -> Result<Entries> + Send + Sync>;
/// Finds one entry of a directory without listing all of them.
pub type Finder = Box<dyn Fn(&[u8]) -> Result<Arc<dyn Inode>> + Send + Sync>;
/// Where a magic link leads; gets the link's own place.
pub type Magic = Box<dyn Fn(&VfsPath) -> Result<VfsPath> + Send + Sync>;
/// Opens a file that is not a snapshot (`/proc/PID/mem`); gets the file's place and the
/// open flags.
pub type Opener = Box<dyn Fn(&VfsPath, u32) -> Result<Arc<dyn FileDescription>> + Send + Sync>;
/// Whether the object a node shows still exists.
pub type Alive = Arc<dyn Fn() -> bool + Send + Sync>;
/// The owner (uid, gid) a node reports.
pub type Owner = Arc<dyn Fn() -> (u32, u32) + Send + Sync>;

pub enum Kind {
    File {
        gen: Gen,
        write: Option<Writer>,
    },
    Dir {
        list: Lister,
        find: Option<Finder>,
    },
    Link {
        target: Gen,
        magic: Option<Magic>,
    },
    /// A file whose open makes its own description.
    Special {
        open: Opener,
    },
}

/// One procfs/sysfs object.
pub struct Node {
    pub ino: u64,
    /// Type and permission bits.
    pub mode: u32,
    pub dev: u64,
    pub fs_magic: i64,
    pub owner: Option<Owner>,
    pub alive: Option<Alive>,
    pub kind: Kind,
}

/// An inode number for a node, stable across lookups: a hash of what it shows.
pub fn ino_of(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    // Keep clear of 0 and of the root's 1.
    (h.finish() >> 1) | 2
}

/// Builds the nodes of one filesystem (its device number and magic).
#[derive(Clone)]
pub struct Builder {
    pub dev: u64,
    pub fs_magic: i64,
    pub owner: Option<Owner>,
    pub alive: Option<Alive>,
}

impl Builder {
    pub fn new(fs_magic: i64) -> Builder {
        Builder {
            dev: crate::vfs::anon_dev(),
            fs_magic,
            owner: None,
            alive: None,
        }
    }

    /// The same builder for nodes owned by, and living as long as, one object.
    pub fn with(&self, owner: Owner, alive: Alive) -> Builder {
        Builder {
            owner: Some(owner),
            alive: Some(alive),
            ..self.clone()
        }
    }

    fn node(&self, key: &str, mode: u32, kind: Kind) -> Arc<dyn Inode> {
        Arc::new(Node {
            ino: ino_of(key),
            mode,
            dev: self.dev,
            fs_magic: self.fs_magic,
            owner: self.owner.clone(),
            alive: self.alive.clone(),
            kind,
        })
    }

    /// The root directory (inode 1).
    pub fn root(&self, list: Lister, find: Option<Finder>) -> Arc<dyn Inode> {
        Arc::new(Node {
            ino: 1,
            mode: libc::S_IFDIR | 0o555,
            dev: self.dev,
            fs_magic: self.fs_magic,
            owner: None,
            alive: None,
            kind: Kind::Dir { list, find },
        })
    }

    pub fn file(
        &self,
        key: &str,
        perm: u32,
        gen: impl Fn() -> Result<Vec<u8>> + Send + Sync + 'static,
    ) -> Arc<dyn Inode> {
        self.node(
            key,
            libc::S_IFREG | perm,
            Kind::File {
                gen: Box::new(gen),
                write: None,
            },
        )
    }

    /// A file whose descriptions are made by `open`, not generated contents.
    pub fn special(
        &self,
        key: &str,
        perm: u32,
        open: impl Fn(&VfsPath, u32) -> Result<Arc<dyn FileDescription>> + Send + Sync + 'static,
    ) -> Arc<dyn Inode> {
        self.node(
            key,
            libc::S_IFREG | perm,
            Kind::Special {
                open: Box::new(open),
            },
        )
    }

    /// A file with fixed contents.
    pub fn text(&self, key: &str, contents: impl Into<Vec<u8>>) -> Arc<dyn Inode> {
        let c: Vec<u8> = contents.into();
        self.file(key, 0o444, move || Ok(c.clone()))
    }

    pub fn file_rw(
        &self,
        key: &str,
        perm: u32,
        gen: impl Fn() -> Result<Vec<u8>> + Send + Sync + 'static,
        write: impl Fn(&[u8]) -> Result<()> + Send + Sync + 'static,
    ) -> Arc<dyn Inode> {
        self.node(
            key,
            libc::S_IFREG | perm,
            Kind::File {
                gen: Box::new(gen),
                write: Some(Box::new(write)),
            },
        )
    }

    pub fn dir(
        &self,
        key: &str,
        perm: u32,
        list: impl Fn() -> Result<Entries> + Send + Sync + 'static,
    ) -> Arc<dyn Inode> {
        self.node(
            key,
            libc::S_IFDIR | perm,
            Kind::Dir {
                list: Box::new(list),
                find: None,
            },
        )
    }

    /// A directory whose entries are many: `find` makes the one a lookup asks for.
    pub fn dir_find(
        &self,
        key: &str,
        perm: u32,
        list: impl Fn() -> Result<Entries> + Send + Sync + 'static,
        find: impl Fn(&[u8]) -> Result<Arc<dyn Inode>> + Send + Sync + 'static,
    ) -> Arc<dyn Inode> {
        self.node(
            key,
            libc::S_IFDIR | perm,
            Kind::Dir {
                list: Box::new(list),
                find: Some(Box::new(find)),
            },
        )
    }

    /// A directory with a fixed set of entries.
    pub fn static_dir(&self, key: &str, entries: Vec<(&str, Arc<dyn Inode>)>) -> Arc<dyn Inode> {
        let entries: Entries = entries
            .into_iter()
            .map(|(n, i)| (n.as_bytes().to_vec(), i))
            .collect();
        self.dir(key, 0o555, move || Ok(entries.clone()))
    }

    pub fn link(
        &self,
        key: &str,
        perm: u32,
        target: impl Fn() -> Result<Vec<u8>> + Send + Sync + 'static,
        magic: Option<Magic>,
    ) -> Arc<dyn Inode> {
        self.node(
            key,
            libc::S_IFLNK | perm,
            Kind::Link {
                target: Box::new(target),
                magic,
            },
        )
    }
}

fn boot_time() -> Timespec {
    static T: OnceLock<Timespec> = OnceLock::new();
    *T.get_or_init(Timespec::now)
}

impl Node {
    fn entries(&self) -> Result<Entries> {
        match &self.kind {
            Kind::Dir { list, .. } => list(),
            _ => Err(errno!(ENOTDIR)),
        }
    }

    fn check_alive(&self) -> Result<()> {
        match &self.alive {
            Some(a) if !a() => Err(errno!(ENOENT)),
            _ => Ok(()),
        }
    }
}

impl Inode for Node {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        self.check_alive()?;
        let (uid, gid) = self.owner.as_ref().map_or((0, 0), |o| o());
        let t = boot_time();
        Ok(Stat {
            dev: self.dev,
            ino: self.ino,
            mode: self.mode,
            nlink: if self.mode & libc::S_IFMT == libc::S_IFDIR {
                2
            } else {
                1
            },
            uid,
            gid,
            blksize: 1024,
            atime: t,
            mtime: t,
            ctime: t,
            ..Stat::default()
        })
    }

    fn mode(&self) -> u32 {
        self.mode
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>> {
        self.check_alive()?;
        if let Kind::Dir { find: Some(f), .. } = &self.kind {
            return f(name);
        }
        self.entries()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| i)
            .ok_or(errno!(ENOENT))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>> {
        self.check_alive()?;
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|(name, inode)| {
                let st = inode.stat().ok()?;
                Some(DirEntry {
                    ino: st.ino,
                    d_type: dtype_of(&st),
                    name,
                })
            })
            .collect())
    }

    fn readlink(&self) -> Result<Vec<u8>> {
        self.check_alive()?;
        match &self.kind {
            Kind::Link { target, .. } => target(),
            _ => Err(errno!(EINVAL)),
        }
    }

    fn magic_link(&self, link: &VfsPath) -> Option<Result<VfsPath>> {
        match &self.kind {
            Kind::Link { magic: Some(m), .. } => Some(self.check_alive().and_then(|()| m(link))),
            _ => None,
        }
    }

    fn revalidate(&self) -> bool {
        self.alive.as_ref().is_none_or(|a| a())
    }

    fn open(self: Arc<Self>, path: &VfsPath, flags: u32) -> Result<Arc<dyn FileDescription>> {
        self.check_alive()?;
        if let Kind::Special { open } = &self.kind {
            return open(path, flags);
        }
        let Kind::File { gen, .. } = &self.kind else {
            return_errno!(ENXIO);
        };
        // Write-only opens never read, so they do not generate (comm, oom_score_adj).
        let data = if flags & libc::O_ACCMODE as u32 == libc::O_WRONLY as u32 {
            Vec::new()
        } else {
            gen()?
        };
        Ok(Arc::new(SeqFile {
            node: self.clone(),
            data,
            path: path.clone(),
            state: FileState::new(flags),
        }))
    }

    fn truncate(&self, _size: u64) -> Result<()> {
        // `echo x > /proc/self/comm` opens with O_TRUNC, which these files ignore.
        match &self.kind {
            Kind::File { write: Some(_), .. } => Ok(()),
            _ => Err(errno!(EACCES)),
        }
    }

    fn statfs(&self) -> Result<StatFs> {
        Ok(StatFs {
            fs_type: self.fs_magic,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            ..StatFs::default()
        })
    }
}

/// An open procfs/sysfs file: the contents generated at open.
pub struct SeqFile {
    node: Arc<Node>,
    data: Vec<u8>,
    path: VfsPath,
    state: FileState,
}

impl FileDescription for SeqFile {
    fn read(&self, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
        self.state.with_offset(offset, |off| {
            let start = usize::try_from(off).unwrap_or(usize::MAX);
            let rest = self.data.get(start..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            Ok(n)
        })
    }

    fn write(&self, buf: &[u8], _offset: Option<u64>) -> Result<usize> {
        match &self.node.kind {
            Kind::File { write: Some(w), .. } => {
                w(buf)?;
                Ok(buf.len())
            }
            _ => Err(errno!(EINVAL)),
        }
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<u64> {
        self.state.seek(offset, whence, self.data.len() as u64)
    }

    fn stat(&self) -> Result<Stat> {
        self.node.stat()
    }

    fn status_flags(&self) -> u32 {
        self.state.flags()
    }

    fn set_status_flags(&self, flags: u32) -> Result<()> {
        self.state.set_flags(flags);
        Ok(())
    }

    fn path(&self) -> Option<VfsPath> {
        Some(self.path.clone())
    }
}

/// An open file with no place in the tree (a pipe, an eventfd, a host fd handed in as
/// stdio) as the target of a `/proc/PID/fd/N` link: opening it gives the same description
/// back (Linux opens the same object anew; the difference is a shared offset, which such
/// files do not use). It is shown as owned by `owner`, the process holding it: the
/// sandbox gives host fds no owner of their own, and a process may reopen its own stdio
/// (`echo x > /dev/stderr`) as on Linux, where that is the user's terminal or pipe.
pub struct FileInode {
    pub file: Arc<dyn FileDescription>,
    pub owner: (u32, u32),
}

impl Inode for FileInode {
    fn as_any_arc(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn stat(&self) -> Result<Stat> {
        let mut st = self.file.stat()?;
        (st.uid, st.gid) = self.owner;
        Ok(st)
    }

    fn open(self: Arc<Self>, _path: &VfsPath, _flags: u32) -> Result<Arc<dyn FileDescription>> {
        Ok(self.file.clone())
    }

    fn truncate(&self, size: u64) -> Result<()> {
        // `echo x > /dev/stderr` opens with O_TRUNC; a host file handed in as stdio
        // cannot be truncated by the sandbox, and stays as it is.
        match self.file.truncate(size) {
            Err(e) if e.errno == crate::Errno::EINVAL => Ok(()),
            other => other,
        }
    }

    fn statfs(&self) -> Result<StatFs> {
        self.file.statfs()
    }
}

/// A place for an inode outside the tree, on the mount of `link` (for magic links to
/// objects without a path).
pub fn detached(link: &VfsPath, inode: Arc<dyn Inode>) -> VfsPath {
    VfsPath {
        mount: link.mount.clone(),
        dentry: Dentry::new_root(inode),
    }
}
