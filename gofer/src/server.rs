//! The gofer server: serves one tree to one sentry over a `SOCK_SEQPACKET` socket.
//!
//! Every request is hostile until checked. The invariants that keep the sentry inside the
//! tree:
//! - a handle is an `O_PATH|O_NOFOLLOW` fd, reached one checked [`Name`] at a time from the
//!   root, so no symlink is ever followed and `..` never appears;
//! - files are opened with `openat(parent, name, flags|O_NOFOLLOW)` (directories with
//!   `openat(fd, ".")`), and the result is checked to be the inode the handle names;
//! - in read-only mode nothing that writes is done (`EROFS`);
//! - no device node is made (`EPERM`), and only `user.`/`trusted.` extended attributes are
//!   written: `security.` ones (file capabilities, LSM labels) would change what the host
//!   grants, so the sandbox may read them but never set them.

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use nix::fcntl::{openat, renameat2, AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{fstat, mkdirat, mknodat, FileStat, Mode, SFlag};
use nix::unistd::{fchownat, ftruncate, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use crate::protocol::{
    decode_header, dirent_encoded_len, Attr, DecodeError, Dirent, Errno, Handle, Name, Request,
    Response, SetAttr, StatFs, XattrName, DIRENTS_OVERHEAD, FALLOCATE_MODES, MAX_PACKET,
    MAX_PAYLOAD, RENAME_EXCHANGE, RENAME_NOREPLACE, SETATTR_ATIME, SETATTR_GID, SETATTR_MODE,
    SETATTR_MTIME, SETATTR_SIZE, SETATTR_UID, SYMLINK_MAX, XATTR_VALUE_MAX,
};
use crate::sys;

/// How the tree is served.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    /// Refuse every operation that would change the tree, and writable opens (`EROFS`).
    pub read_only: bool,
}

/// Most live handles; one more is `ENFILE`.
pub const MAX_HANDLES: usize = 1 << 20;

/// `open(2)` flags the sentry may ask for. Anything else (`O_PATH`, `O_TMPFILE`, unknown bits)
/// is `EINVAL`.
const OPEN_ALLOWED: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_TRUNC
    | libc::O_NONBLOCK
    | libc::O_DIRECTORY
    | libc::O_LARGEFILE
    | libc::O_NOATIME
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_DIRECT
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOFOLLOW
    | libc::O_CLOEXEC
    | libc::O_NOCTTY;

/// One walked path.
struct Node {
    /// `O_PATH|O_NOFOLLOW` fd of the file itself.
    fd: Rc<OwnedFd>,
    /// The directory it was found in and its name there; `None` only for the root.
    parent: Option<Parent>,
    dev: u64,
    ino: u64,
    /// `mode & S_IFMT` at walk time (a file's type never changes).
    fmt: u32,
}

struct Parent {
    fd: Rc<OwnedFd>,
    dev: u64,
    ino: u64,
    name: Name,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.fmt == libc::S_IFDIR
    }
}

/// Serves `root` to the peer on `sock` until the peer closes its end.
///
/// `root` may be an `O_PATH` or `O_DIRECTORY` fd; it must be a directory. Returns `Ok` when
/// the peer hangs up (or sends an empty packet, which on `SOCK_SEQPACKET` cannot be told
/// apart from the end of the stream), and `Err` on a socket error.
pub fn serve(root: OwnedFd, sock: OwnedFd, opts: ServeOptions) -> std::io::Result<()> {
    let root = openat(
        &root,
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let mut server = Server::new(root, opts).map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let packet = match sys::recv_packet(sock.as_fd(), &mut buf, 0) {
            Ok(p) => p,
            Err(nix::errno::Errno::ECONNRESET) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if packet.len == 0 {
            return Ok(());
        }
        let data = buf.get(..packet.len).unwrap_or_default();
        let Some((tag, reply, fd)) = server.handle_packet(data, packet.truncated) else {
            continue;
        };
        let out = match reply.encode(tag) {
            Ok(out) => out,
            Err(e) => {
                tracing::warn!(tag, %e, "gofer: reply does not encode");
                Response::Error(Errno(libc::EIO))
                    .encode(tag)
                    .map_err(io_err)?
            }
        };
        match sys::send_packet(sock.as_fd(), &out, fd.as_ref().map(|f| f.as_fd())) {
            Ok(()) => {}
            Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn io_err(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.0)
}

type Reply = (Response, Option<OwnedFd>);

struct Server {
    root: Rc<OwnedFd>,
    root_stat: FileStat,
    nodes: HashMap<Handle, Node>,
    next_handle: Handle,
    read_only: bool,
}

impl Server {
    fn new(root: OwnedFd, opts: ServeOptions) -> Result<Server, Errno> {
        let root_stat = fstat(&root)?;
        Ok(Server {
            root: Rc::new(root),
            root_stat,
            nodes: HashMap::new(),
            next_handle: 1,
            read_only: opts.read_only,
        })
    }

    /// Handles one packet; returns the tag, reply and fd to send, or `None` for no reply.
    fn handle_packet(
        &mut self,
        data: &[u8],
        truncated: bool,
    ) -> Option<(u32, Response, Option<OwnedFd>)> {
        // The tag, if there is one, even for a packet too broken to decode.
        let tag = data
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_le_bytes(*b));
        if truncated {
            tracing::debug!(tag, "gofer: packet over {MAX_PACKET} bytes");
            return Some((tag, Response::Error(Errno(libc::EMSGSIZE)), None));
        }
        let (header, payload) = match decode_header(data) {
            Ok(x) => x,
            Err(e) => return Some((tag, bad_packet(tag, e), None)),
        };
        let req = match Request::decode_payload(header.kind, payload) {
            Ok(r) => r,
            Err(e) => return Some((tag, bad_packet(tag, e), None)),
        };
        let expects_reply = req.expects_reply();
        let (reply, fd) = match self.dispatch(req) {
            Ok(r) => r,
            Err(e) => (Response::Error(e), None),
        };
        expects_reply.then_some((tag, reply, fd))
    }

    fn dispatch(&mut self, req: Request) -> Result<Reply, Errno> {
        if self.read_only && is_mutating(&req) {
            return Err(Errno(libc::EROFS));
        }
        match req {
            Request::Attach => self.attach(),
            Request::Walk { dir, names } => self.walk(dir, &names),
            Request::Stat { handle } => {
                let st = fstat(&*self.node(handle)?.fd)?;
                Ok((Response::Attr(attr_of(&st)), None))
            }
            Request::Open { handle, flags } => self.open(handle, flags),
            Request::Readlink { handle } => self.readlink(handle),
            Request::Getdents { handle, cookie } => self.getdents(handle, cookie),
            Request::StatFs { handle } => self.statfs(handle),
            Request::Close { handle } => {
                self.nodes.remove(&handle);
                Ok((Response::Ok, None))
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
            } => self.create(dir, &name, flags, mode),
            Request::Mkdir { dir, name, mode } => self.mkdir(dir, &name, mode),
            Request::Unlink { dir, name, flags } => self.unlink(dir, &name, flags),
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => self.rename(old_dir, &old_name, new_dir, &new_name, flags),
            Request::Symlink { dir, name, target } => self.symlink(dir, &name, &target),
            Request::Link { dir, name, target } => self.link(dir, &name, target),
            Request::SetStat { handle, attr } => self.setstat(handle, &attr),
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
            } => self.mknod(dir, &name, mode, rdev),
            Request::GetXattr { handle, name } => self.getxattr(handle, &name),
            Request::SetXattr {
                handle,
                name,
                value,
                flags,
            } => self.setxattr(handle, &name, &value, flags),
            Request::ListXattr { handle } => self.listxattr(handle),
            Request::RemoveXattr { handle, name } => self.removexattr(handle, &name),
            Request::Fsync { handle, data_only } => self.fsync(handle, data_only),
            Request::Fallocate {
                handle,
                mode,
                offset,
                len,
            } => self.fallocate(handle, mode, offset, len),
        }
    }

    fn node(&self, h: Handle) -> Result<&Node, Errno> {
        self.nodes.get(&h).ok_or(Errno(libc::EBADF))
    }

    fn dir_node(&self, h: Handle) -> Result<&Node, Errno> {
        let n = self.node(h)?;
        if n.is_dir() {
            Ok(n)
        } else {
            Err(Errno(libc::ENOTDIR))
        }
    }

    fn insert(&mut self, node: Node) -> Result<Handle, Errno> {
        if self.nodes.len() >= MAX_HANDLES {
            return Err(Errno(libc::ENFILE));
        }
        let h = self.next_handle;
        // Handles are never reused, so a stale handle in the sentry cannot alias a new file.
        self.next_handle = h.checked_add(1).ok_or(Errno(libc::ENFILE))?;
        self.nodes.insert(h, node);
        Ok(h)
    }

    fn attach(&mut self) -> Result<Reply, Errno> {
        let st = self.root_stat;
        let handle = self.insert(Node {
            fd: Rc::clone(&self.root),
            parent: None,
            dev: st.st_dev,
            ino: st.st_ino,
            fmt: libc::S_IFDIR,
        })?;
        // Fresh attributes: the root may have changed since serve() began.
        let attr = attr_of(&fstat(&*self.root)?);
        Ok((Response::Node { handle, attr }, None))
    }

    /// Opens `name` in `parent` as a new handle, without following a symlink.
    fn walk_one(&mut self, parent: &Parent) -> Result<(Handle, Attr), Errno> {
        let fd = openat(
            &*parent.fd,
            parent.name.as_bytes(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        self.insert_opened(fd, parent)
    }

    /// Makes a handle of `fd`, just opened `O_PATH` as `parent`/`name`.
    fn insert_opened(&mut self, fd: OwnedFd, parent: &Parent) -> Result<(Handle, Attr), Errno> {
        let st = fstat(&fd)?;
        let attr = attr_of(&st);
        let handle = self.insert(Node {
            fd: Rc::new(fd),
            parent: Some(Parent {
                fd: Rc::clone(&parent.fd),
                dev: parent.dev,
                ino: parent.ino,
                name: parent.name.clone(),
            }),
            dev: st.st_dev,
            ino: st.st_ino,
            fmt: st.st_mode & libc::S_IFMT,
        })?;
        Ok((handle, attr))
    }

    fn child(&self, dir: Handle, name: &Name) -> Result<Parent, Errno> {
        let d = self.dir_node(dir)?;
        Ok(Parent {
            fd: Rc::clone(&d.fd),
            dev: d.dev,
            ino: d.ino,
            name: name.clone(),
        })
    }

    fn walk(&mut self, dir: Handle, names: &[Name]) -> Result<Reply, Errno> {
        let mut out = Vec::with_capacity(names.len());
        let mut cur = dir;
        for name in names {
            let step = self.child(cur, name).and_then(|p| self.walk_one(&p));
            let (h, attr) = match step {
                Ok(x) => x,
                // Only the first component's failure is an error; later ones end the walk.
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            };
            out.push((h, attr));
            if attr.mode & libc::S_IFMT != libc::S_IFDIR {
                // A symlink (never followed) or a non-directory ends the walk; it is included.
                break;
            }
            cur = h;
        }
        Ok((Response::Walked(out), None))
    }

    /// Checks that `fd`, just opened for `node`, is still the same file.
    fn same_file(node: &Node, fd: &OwnedFd) -> Result<FileStat, Errno> {
        let st = fstat(fd)?;
        if st.st_dev != node.dev || st.st_ino != node.ino {
            // The name was replaced since the walk.
            return Err(Errno(libc::ESTALE));
        }
        Ok(st)
    }

    /// Opens the file a handle names, never following a symlink.
    fn open_node(node: &Node, flags: OFlag) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = match (&node.parent, node.is_dir()) {
            // "." of a directory fd is that directory; no name to race on.
            (_, true) => openat(&*node.fd, ".", flags, Mode::empty())?,
            (Some(p), false) => openat(&*p.fd, p.name.as_bytes(), flags, Mode::empty())?,
            (None, false) => return Err(Errno(libc::EBADF)),
        };
        Self::same_file(node, &fd)?;
        Ok(fd)
    }

    fn open(&mut self, handle: Handle, flags: i32) -> Result<Reply, Errno> {
        let node = self.node(handle)?;
        if flags & !OPEN_ALLOWED != 0 {
            return Err(Errno(libc::EINVAL));
        }
        let acc = flags & libc::O_ACCMODE;
        if acc == libc::O_ACCMODE {
            return Err(Errno(libc::EINVAL));
        }
        if self.read_only && (acc != libc::O_RDONLY || flags & (libc::O_CREAT | libc::O_TRUNC) != 0)
        {
            return Err(Errno(libc::EROFS));
        }
        if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 {
            // The handle names an existing file.
            return Err(Errno(libc::EEXIST));
        }
        if node.fmt == libc::S_IFLNK {
            // What open(2) with O_NOFOLLOW says for a symlink.
            return Err(Errno(libc::ELOOP));
        }
        let mut host = OFlag::from_bits_truncate(flags & !(libc::O_CREAT | libc::O_EXCL));
        // Truncate only after checking the file is the handle's (below), unless the open is
        // read-only, where ftruncate cannot be used.
        let truncate_after = host.contains(OFlag::O_TRUNC) && acc != libc::O_RDONLY;
        if truncate_after {
            host.remove(OFlag::O_TRUNC);
        }
        if node.fmt != libc::S_IFREG && !node.is_dir() {
            // A fifo or device could block the gofer's only thread in open(2). The sentry gets
            // the fd non-blocking and clears O_NONBLOCK itself if the application wanted.
            host.insert(OFlag::O_NONBLOCK);
        }
        let fd = Self::open_node(node, host)?;
        if truncate_after && node.fmt == libc::S_IFREG {
            ftruncate(&fd, 0)?;
        }
        Ok((Response::Opened, Some(fd)))
    }

    fn readlink(&mut self, handle: Handle) -> Result<Reply, Errno> {
        let node = self.node(handle)?;
        if node.fmt != libc::S_IFLNK {
            return Err(Errno(libc::EINVAL));
        }
        // With an empty path, readlinkat reads the link an O_PATH fd refers to: no lookup.
        let target = nix::fcntl::readlinkat(&*node.fd, "")?;
        let target = std::os::unix::ffi::OsStringExt::into_vec(target);
        if target.len() > SYMLINK_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        Ok((Response::Target(target), None))
    }

    /// One page of entries from `cookie`, as many as fit one reply.
    fn getdents(&mut self, handle: Handle, cookie: u64) -> Result<Reply, Errno> {
        let node = self.dir_node(handle)?;
        let dir = openat(
            &*node.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // Cookies are the kernel's d_off values, passed through bit for bit.
        let offset = i64::from_ne_bytes(cookie.to_ne_bytes());
        nix::unistd::lseek(&dir, offset, nix::unistd::Whence::SeekSet)?;
        let mut entries = Vec::new();
        let mut used = DIRENTS_OVERHEAD;
        let mut pos = cookie;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = sys::getdents64(dir.as_fd(), &mut buf)?;
            if n == 0 {
                return Ok((
                    Response::Dirents {
                        entries,
                        next_cookie: pos,
                        eof: true,
                    },
                    None,
                ));
            }
            let mut rest = buf.get(..n).ok_or(Errno(libc::EIO))?;
            while !rest.is_empty() {
                let (rec, tail) = split_linux_dirent64(rest)?;
                rest = tail;
                if rec.name != b"." && rec.name != b".." {
                    let need = dirent_encoded_len(rec.name.len());
                    if used.saturating_add(need) > MAX_PAYLOAD {
                        let next_cookie = pos;
                        return Ok((
                            Response::Dirents {
                                entries,
                                next_cookie,
                                eof: false,
                            },
                            None,
                        ));
                    }
                    if rec.name.len() <= usize::from(u8::MAX) {
                        used += need;
                        entries.push(Dirent {
                            ino: rec.ino,
                            d_type: rec.d_type,
                            name: rec.name.to_vec(),
                        });
                    } else {
                        tracing::warn!("gofer: skipping a directory entry over 255 bytes");
                    }
                }
                pos = rec.off;
            }
        }
    }

    fn statfs(&mut self, handle: Handle) -> Result<Reply, Errno> {
        let node = self.node(handle)?;
        let s = sys::fstatfs(node.fd.as_fd())?;
        // Host values copied as they are; the casts only change the nominal integer type.
        let st = StatFs {
            fs_type: s.f_type as u64,
            bsize: s.f_bsize as u64,
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            namelen: s.f_namelen as u64,
            frsize: s.f_frsize as u64,
            // libc hides statfs.f_flags on some targets; statvfs carries the same ST_* bits.
            flags: nix::sys::statvfs::fstatvfs(&*node.fd)?.flags().bits() as u64,
        };
        Ok((Response::StatFs(st), None))
    }

    fn create(&mut self, dir: Handle, name: &Name, flags: i32, mode: u32) -> Result<Reply, Errno> {
        let parent = self.child(dir, name)?;
        if flags & !OPEN_ALLOWED != 0
            || flags & libc::O_ACCMODE == libc::O_ACCMODE
            || flags & libc::O_DIRECTORY != 0
        {
            return Err(Errno(libc::EINVAL));
        }
        let host = OFlag::from_bits_truncate(flags & !libc::O_TRUNC)
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY;
        let file = openat(
            &*parent.fd,
            name.as_bytes(),
            host,
            Mode::from_bits_truncate(mode),
        )?;
        // Undo the gofer's umask: the sentry has applied the application's before asking.
        let got = fstat(&file)?.st_mode;
        if got & 0o777 != mode & 0o777 {
            let want = (got & 0o7000) | (mode & 0o777);
            nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(want))?;
        }
        let path = openat(
            &*parent.fd,
            name.as_bytes(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let (fst, pst) = (fstat(&file)?, fstat(&path)?);
        if (fst.st_dev, fst.st_ino) != (pst.st_dev, pst.st_ino) {
            return Err(Errno(libc::ESTALE));
        }
        let (handle, attr) = self.insert_opened(path, &parent)?;
        Ok((Response::Created { handle, attr }, Some(file)))
    }

    fn mkdir(&mut self, dir: Handle, name: &Name, mode: u32) -> Result<Reply, Errno> {
        let parent = self.child(dir, name)?;
        mkdirat(
            &*parent.fd,
            name.as_bytes(),
            Mode::from_bits_truncate(mode & 0o7777),
        )?;
        let (handle, attr) = self.walk_one(&parent)?;
        if attr.mode & 0o777 != mode & 0o777 {
            // Undo the gofer's umask (the sentry applied the application's). The special bits
            // are left as the kernel made them: a set-group-ID parent passes its bit on.
            self.chmod(handle, (attr.mode & 0o7000) | (mode & 0o777))?;
        }
        let attr = attr_of(&fstat(&*self.node(handle)?.fd)?);
        Ok((Response::Node { handle, attr }, None))
    }

    fn unlink(&mut self, dir: Handle, name: &Name, flags: i32) -> Result<Reply, Errno> {
        let parent = self.child(dir, name)?;
        let how = match flags {
            0 => UnlinkatFlags::NoRemoveDir,
            libc::AT_REMOVEDIR => UnlinkatFlags::RemoveDir,
            _ => return Err(Errno(libc::EINVAL)),
        };
        unlinkat(&*parent.fd, name.as_bytes(), how)?;
        Ok((Response::Ok, None))
    }

    fn rename(
        &mut self,
        old_dir: Handle,
        old_name: &Name,
        new_dir: Handle,
        new_name: &Name,
        flags: u32,
    ) -> Result<Reply, Errno> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || flags == RENAME_NOREPLACE | RENAME_EXCHANGE
        {
            return Err(Errno(libc::EINVAL));
        }
        let old = self.child(old_dir, old_name)?;
        let new = self.child(new_dir, new_name)?;
        let host = RenameFlags::from_bits_truncate(flags);
        renameat2(
            &*old.fd,
            old_name.as_bytes(),
            &*new.fd,
            new_name.as_bytes(),
            host,
        )?;
        // Handles follow the files they name: the moved file now lives under the new name,
        // and with RENAME_EXCHANGE the other file under the old one.
        let exchange = flags & RENAME_EXCHANGE != 0;
        let as_parent = |p: &Parent, name: &Name| Parent {
            fd: Rc::clone(&p.fd),
            dev: p.dev,
            ino: p.ino,
            name: name.clone(),
        };
        for node in self.nodes.values_mut() {
            if let Some(p) = &mut node.parent {
                if (p.dev, p.ino) == (old.dev, old.ino) && p.name == *old_name {
                    *p = as_parent(&new, new_name);
                } else if exchange && (p.dev, p.ino) == (new.dev, new.ino) && p.name == *new_name {
                    *p = as_parent(&old, old_name);
                }
            }
        }
        Ok((Response::Ok, None))
    }

    fn symlink(&mut self, dir: Handle, name: &Name, target: &[u8]) -> Result<Reply, Errno> {
        let parent = self.child(dir, name)?;
        symlinkat(target, &*parent.fd, name.as_bytes())?;
        let (handle, attr) = self.walk_one(&parent)?;
        Ok((Response::Node { handle, attr }, None))
    }

    fn link(&mut self, dir: Handle, name: &Name, target: Handle) -> Result<Reply, Errno> {
        let parent = self.child(dir, name)?;
        let t = self.node(target)?;
        if t.is_dir() {
            return Err(Errno(libc::EPERM));
        }
        let tp = t.parent.as_ref().ok_or(Errno(libc::EPERM))?;
        // Flags 0: linkat does not follow a symlink at oldpath.
        linkat(
            &*tp.fd,
            tp.name.as_bytes(),
            &*parent.fd,
            name.as_bytes(),
            AtFlags::empty(),
        )?;
        let (target_dev, target_ino) = (t.dev, t.ino);
        let (handle, attr) = self.walk_one(&parent)?;
        if (attr.dev, attr.ino) != (target_dev, target_ino) {
            // The old name was swapped under us; do not leave a link to the wrong file.
            self.nodes.remove(&handle);
            let _ = unlinkat(&*parent.fd, name.as_bytes(), UnlinkatFlags::NoRemoveDir);
            return Err(Errno(libc::ESTALE));
        }
        Ok((Response::Node { handle, attr }, None))
    }

    /// `mknodat(2)` of a FIFO or socket with exactly `mode`'s permission bits. Device nodes
    /// would hand the sandbox host devices: refused.
    fn mknod(&mut self, dir: Handle, name: &Name, mode: u32, rdev: u64) -> Result<Reply, Errno> {
        let parent = self.child(dir, name)?;
        let kind = mode & libc::S_IFMT;
        match kind {
            libc::S_IFIFO | libc::S_IFSOCK => {}
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno(libc::EPERM)),
            _ => return Err(Errno(libc::EINVAL)),
        }
        if rdev != 0 {
            return Err(Errno(libc::EINVAL));
        }
        // mknodat never follows a symlink at the last component: an existing name is EEXIST.
        mknodat(
            &*parent.fd,
            name.as_bytes(),
            SFlag::from_bits_truncate(kind),
            Mode::from_bits_truncate(mode & 0o7777),
            0,
        )?;
        let (handle, attr) = self.walk_one(&parent)?;
        if attr.mode & libc::S_IFMT != kind {
            // Replaced between mknod and the walk.
            self.nodes.remove(&handle);
            return Err(Errno(libc::ESTALE));
        }
        if attr.mode & 0o7777 != mode & 0o7777 {
            // Undo the gofer's umask, as for mkdir. chmod goes through the O_PATH fd, never
            // an open (which could block on a FIFO or fail on a socket).
            sys::fchmod_fd(self.node(handle)?.fd.as_fd(), mode & 0o7777)?;
        }
        let attr = attr_of(&fstat(&*self.node(handle)?.fd)?);
        Ok((Response::Node { handle, attr }, None))
    }

    /// An fd on which `f*xattr` and `fsync` work: a real open of a regular file or
    /// directory (an `O_PATH` fd refuses them). Other types have no such fd here: for
    /// symlinks, FIFOs and sockets an open could follow, block or fail.
    fn data_fd(node: &Node, flags: OFlag) -> Result<Option<OwnedFd>, Errno> {
        match node.fmt {
            libc::S_IFREG => Self::open_node(node, flags | OFlag::O_NONBLOCK).map(Some),
            libc::S_IFDIR => Self::open_node(node, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map(Some),
            _ => Ok(None),
        }
    }

    fn getxattr(&mut self, handle: Handle, name: &XattrName) -> Result<Reply, Errno> {
        xattr_readable(name)?;
        let node = self.node(handle)?;
        let Some(fd) = Self::data_fd(node, OFlag::O_RDONLY)? else {
            return Err(Errno(libc::ENODATA));
        };
        let cname = xattr_cstr(name)?;
        let value = read_sized(|buf| sys::fgetxattr(fd.as_fd(), &cname, buf))?;
        Ok((Response::Value(value), None))
    }

    fn setxattr(
        &mut self,
        handle: Handle,
        name: &XattrName,
        value: &[u8],
        flags: u32,
    ) -> Result<Reply, Errno> {
        xattr_writable(name)?;
        if flags & !((libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32) != 0 {
            return Err(Errno(libc::EINVAL));
        }
        let node = self.node(handle)?;
        let Some(fd) = Self::data_fd(node, OFlag::O_RDONLY)? else {
            // What Linux says for user.* on a special file; trusted.* there is not served.
            return Err(Errno(libc::EPERM));
        };
        let flags = i32::try_from(flags).map_err(|_| Errno(libc::EINVAL))?;
        sys::fsetxattr(fd.as_fd(), &xattr_cstr(name)?, value, flags)?;
        Ok((Response::Ok, None))
    }

    fn listxattr(&mut self, handle: Handle) -> Result<Reply, Errno> {
        let node = self.node(handle)?;
        let Some(fd) = Self::data_fd(node, OFlag::O_RDONLY)? else {
            return Ok((Response::Value(Vec::new()), None));
        };
        // A filesystem without xattr support lists none (as listxattr(2) does there).
        let all = match read_sized(|buf| sys::flistxattr(fd.as_fd(), buf)) {
            Err(e) if e.0 == libc::EOPNOTSUPP => Vec::new(),
            r => r?,
        };
        // Only the names the sandbox may read (no system.* ACLs).
        let mut out = Vec::with_capacity(all.len());
        for n in all.split(|&c| c == 0).filter(|n| !n.is_empty()) {
            if XattrName::new(n).is_ok_and(|x| xattr_readable(&x).is_ok()) {
                out.extend_from_slice(n);
                out.push(0);
            }
        }
        Ok((Response::Value(out), None))
    }

    fn removexattr(&mut self, handle: Handle, name: &XattrName) -> Result<Reply, Errno> {
        xattr_writable(name)?;
        let node = self.node(handle)?;
        let Some(fd) = Self::data_fd(node, OFlag::O_RDONLY)? else {
            return Err(Errno(libc::ENODATA));
        };
        sys::fremovexattr(fd.as_fd(), &xattr_cstr(name)?)?;
        Ok((Response::Ok, None))
    }

    fn fsync(&mut self, handle: Handle, data_only: bool) -> Result<Reply, Errno> {
        let node = self.node(handle)?;
        let Some(fd) = Self::data_fd(node, OFlag::O_RDONLY)? else {
            return Err(Errno(libc::EINVAL));
        };
        if data_only {
            nix::unistd::fdatasync(&fd)?;
        } else {
            nix::unistd::fsync(&fd)?;
        }
        Ok((Response::Ok, None))
    }

    fn fallocate(
        &mut self,
        handle: Handle,
        mode: u32,
        offset: u64,
        len: u64,
    ) -> Result<Reply, Errno> {
        if mode & !FALLOCATE_MODES != 0 {
            return Err(Errno(libc::EOPNOTSUPP));
        }
        let node = self.node(handle)?;
        if node.is_dir() {
            return Err(Errno(libc::EISDIR));
        }
        if node.fmt != libc::S_IFREG {
            return Err(Errno(libc::ENODEV));
        }
        let offset = i64::try_from(offset).map_err(|_| Errno(libc::EFBIG))?;
        let len = i64::try_from(len).map_err(|_| Errno(libc::EFBIG))?;
        let fd = Self::open_node(node, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
        let flags = nix::fcntl::FallocateFlags::from_bits_truncate(
            i32::try_from(mode).map_err(|_| Errno(libc::EINVAL))?,
        );
        nix::fcntl::fallocate(&fd, flags, offset, len)?;
        Ok((Response::Ok, None))
    }

    /// chmod without following a symlink or racing on a name.
    fn chmod(&self, handle: Handle, mode: u32) -> Result<(), Errno> {
        let node = self.node(handle)?;
        if node.fmt == libc::S_IFLNK {
            // Linux has no symlink modes (fchmodat with AT_SYMLINK_NOFOLLOW says so).
            return Err(Errno(libc::EOPNOTSUPP));
        }
        match sys::fchmod_fd(node.fd.as_fd(), mode) {
            Err(nix::errno::Errno::ENOSYS) => {
                // Before Linux 6.6: chmod through a real open of the file.
                let fd = Self::open_node(node, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
                nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode))?;
                Ok(())
            }
            r => r.map_err(Errno::from),
        }
    }

    fn setstat(&mut self, handle: Handle, attr: &SetAttr) -> Result<Reply, Errno> {
        let node = self.node(handle)?;
        if attr.mask & SETATTR_SIZE != 0 {
            if node.is_dir() {
                return Err(Errno(libc::EISDIR));
            }
            if node.fmt != libc::S_IFREG {
                return Err(Errno(libc::EINVAL));
            }
            let size = i64::try_from(attr.size).map_err(|_| Errno(libc::EFBIG))?;
            let fd = Self::open_node(node, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
            ftruncate(&fd, size)?;
        }
        if attr.mask & SETATTR_MODE != 0 {
            self.chmod(handle, attr.mode & 0o7777)?;
        }
        let node = self.node(handle)?;
        if attr.mask & (SETATTR_UID | SETATTR_GID) != 0 {
            let uid = (attr.mask & SETATTR_UID != 0).then(|| Uid::from_raw(attr.uid));
            let gid = (attr.mask & SETATTR_GID != 0).then(|| Gid::from_raw(attr.gid));
            fchownat(
                &*node.fd,
                "",
                uid,
                gid,
                AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        if attr.mask & (SETATTR_ATIME | SETATTR_MTIME) != 0 {
            let ts = |set: bool, sec: i64, nsec: i64| libc::timespec {
                tv_sec: if set { sec } else { 0 },
                tv_nsec: if set { nsec } else { libc::UTIME_OMIT },
            };
            let times = [
                ts(
                    attr.mask & SETATTR_ATIME != 0,
                    attr.atime_sec,
                    attr.atime_nsec,
                ),
                ts(
                    attr.mask & SETATTR_MTIME != 0,
                    attr.mtime_sec,
                    attr.mtime_nsec,
                ),
            ];
            sys::utimens_fd(node.fd.as_fd(), &times)?;
        }
        Ok((Response::Ok, None))
    }
}

fn is_mutating(req: &Request) -> bool {
    matches!(
        req,
        Request::Create { .. }
            | Request::Mkdir { .. }
            | Request::Unlink { .. }
            | Request::Rename { .. }
            | Request::Symlink { .. }
            | Request::Link { .. }
            | Request::SetStat { .. }
            | Request::Mknod { .. }
            | Request::SetXattr { .. }
            | Request::RemoveXattr { .. }
            | Request::Fallocate { .. }
    )
}

/// Names the sandbox may read: `user.`, `trusted.` and `security.` (`system.` ACLs are not
/// served; reading one finds nothing, as on a filesystem without ACLs).
fn xattr_readable(name: &XattrName) -> Result<(), Errno> {
    let n = name.as_bytes();
    if [&b"user."[..], b"trusted.", b"security."]
        .iter()
        .any(|p| n.starts_with(p) && n.len() > p.len())
    {
        Ok(())
    } else if n.starts_with(b"system.") {
        Err(Errno(libc::ENODATA))
    } else {
        Err(Errno(libc::EOPNOTSUPP))
    }
}

/// Names the sandbox may write: `user.` and `trusted.` only. `security.` would let it set
/// file capabilities or labels the host honours, and `trusted.overlay.` would steer a host
/// overlayfs built on this tree (`EPERM` for both); `system.` ACLs are not served.
fn xattr_writable(name: &XattrName) -> Result<(), Errno> {
    let n = name.as_bytes();
    if n.starts_with(b"trusted.overlay.") {
        return Err(Errno(libc::EPERM));
    }
    if [&b"user."[..], b"trusted."]
        .iter()
        .any(|p| n.starts_with(p) && n.len() > p.len())
    {
        Ok(())
    } else if n.starts_with(b"security.") {
        Err(Errno(libc::EPERM))
    } else {
        Err(Errno(libc::EOPNOTSUPP))
    }
}

fn xattr_cstr(name: &XattrName) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(name.as_bytes()).map_err(|_| Errno(libc::EINVAL))
}

/// Calls a `*xattr` reader that takes a buffer (size 0 = "how big?") until the value fits,
/// as it may grow between the two calls. Values over `XATTR_VALUE_MAX` are `E2BIG`.
fn read_sized(
    mut read: impl FnMut(&mut [u8]) -> Result<usize, nix::errno::Errno>,
) -> Result<Vec<u8>, Errno> {
    for _ in 0..8 {
        let want = read(&mut [])?;
        if want == 0 {
            return Ok(Vec::new());
        }
        if want > XATTR_VALUE_MAX {
            return Err(Errno(libc::E2BIG));
        }
        let mut buf = vec![0u8; want];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(nix::errno::Errno::ERANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno(libc::EAGAIN))
}

fn bad_packet(tag: u32, e: DecodeError) -> Response {
    tracing::debug!(tag, %e, "gofer: malformed request");
    Response::Error(e.errno())
}

/// One record of `getdents64(2)` output.
struct LinuxDirent<'a> {
    ino: u64,
    off: u64,
    d_type: u8,
    name: &'a [u8],
}

/// Splits the first `struct linux_dirent64` off `buf`:
/// `d_ino: u64, d_off: i64, d_reclen: u16, d_type: u8, d_name: [u8]` NUL-terminated.
fn split_linux_dirent64(buf: &[u8]) -> Result<(LinuxDirent<'_>, &[u8]), Errno> {
    const NAME_AT: usize = 19;
    let bad = Errno(libc::EIO);
    let field = |at: usize| buf.get(at..).and_then(|s| s.first_chunk::<8>()).ok_or(bad);
    let (ino, off) = (
        u64::from_ne_bytes(*field(0)?),
        u64::from_ne_bytes(*field(8)?),
    );
    let reclen = buf
        .get(16..)
        .and_then(|s| s.first_chunk::<2>())
        .ok_or(bad)?;
    let reclen = usize::from(u16::from_ne_bytes(*reclen));
    if reclen <= NAME_AT {
        return Err(bad);
    }
    let (rec, rest) = buf.split_at_checked(reclen).ok_or(bad)?;
    let d_type = *rec.get(18).ok_or(bad)?;
    let tail = rec.get(NAME_AT..).ok_or(bad)?;
    let nul = tail.iter().position(|&c| c == 0).ok_or(bad)?;
    let name = tail.get(..nul).ok_or(bad)?;
    Ok((
        LinuxDirent {
            ino,
            off,
            d_type,
            name,
        },
        rest,
    ))
}

fn attr_of(st: &FileStat) -> Attr {
    // stat fields are signed or narrower on some architectures; sizes and counts are never
    // negative, so a failed conversion can only mean a broken host and reads as 0.
    Attr {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        #[allow(clippy::useless_conversion)]
        nlink: u64::from(st.st_nlink),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: u64::try_from(st.st_size).unwrap_or(0),
        blksize: u64::try_from(st.st_blksize).unwrap_or(0),
        blocks: u64::try_from(st.st_blocks).unwrap_or(0),
        atime_sec: st.st_atime,
        atime_nsec: st.st_atime_nsec,
        mtime_sec: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec,
        ctime_sec: st.st_ctime,
        ctime_nsec: st.st_ctime_nsec,
    }
}
