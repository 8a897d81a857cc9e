//! The sentry's side of the gofer protocol.
//!
//! One request is in flight at a time: a call holds the socket lock from send to reply, so
//! replies cannot be confused between threads, and the tag check catches a server that is out
//! of step. Replies are treated as possibly malformed: anything unexpected is `EIO`.

#![deny(unsafe_code)]

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

pub use crate::protocol::{Attr, Dirent, Errno, Handle, SetAttr, StatFs};
use crate::protocol::{Name, Request, Response, XattrName, MAX_PACKET, MAX_WALK_NAMES};
use crate::sys;

pub type Result<T> = std::result::Result<T, Errno>;

/// Most entries `getdents` collects from one directory before giving up with `EIO`, so a
/// confused server cannot make the sentry allocate without bound.
pub const GETDENTS_MAX_ENTRIES: usize = 1 << 24;

const EIO: Errno = Errno(libc::EIO);

/// A connection to a gofer. `Send + Sync`: share it between sentry threads.
pub struct Client {
    conn: Mutex<Conn>,
}

struct Conn {
    sock: OwnedFd,
    next_tag: u32,
    buf: Vec<u8>,
}

fn is_dir(attr: &Attr) -> bool {
    attr.mode & libc::S_IFMT == libc::S_IFDIR
}

impl Client {
    /// Wraps the sentry's end of the gofer socketpair.
    pub fn new(sock: OwnedFd) -> Client {
        Client {
            conn: Mutex::new(Conn {
                sock,
                next_tag: 1,
                buf: vec![0; MAX_PACKET],
            }),
        }
    }

    /// Sends `req` and returns its reply with the fd that came beside it, if any. An `Error`
    /// reply becomes `Err`. Requests without a reply return `Response::Ok` once sent.
    fn call(&self, req: &Request) -> Result<(Response, Option<OwnedFd>)> {
        // A panic while holding the lock cannot leave the connection half-used in a way the
        // tag check would miss, so a poisoned lock is still usable.
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let conn = &mut *guard;
        let tag = conn.next_tag;
        conn.next_tag = conn.next_tag.wrapping_add(1);
        let packet = req.encode(tag)?;
        sys::send_packet(conn.sock.as_fd(), &packet, None).map_err(|e| {
            tracing::warn!(%e, "gofer client: send failed");
            EIO
        })?;
        if !req.expects_reply() {
            return Ok((Response::Ok, None));
        }
        let got = sys::recv_packet(conn.sock.as_fd(), &mut conn.buf, 1).map_err(|e| {
            tracing::warn!(%e, "gofer client: receive failed");
            EIO
        })?;
        // Any fd that came is owned (and closed on return) from here on, whatever happens.
        let mut fds = got.fds.into_iter();
        let fd = fds.next();
        if got.len == 0 || got.truncated || got.fds_truncated || fds.next().is_some() {
            tracing::warn!(len = got.len, "gofer client: bad reply packet");
            return Err(EIO);
        }
        let data = conn.buf.get(..got.len).ok_or(EIO)?;
        let (reply_tag, reply) = Response::decode(data).map_err(|e| {
            tracing::warn!(%e, "gofer client: malformed reply");
            EIO
        })?;
        if reply_tag != tag {
            tracing::warn!(tag, reply_tag, "gofer client: reply for another request");
            return Err(EIO);
        }
        match reply {
            Response::Error(e) => Err(e),
            r => Ok((r, fd)),
        }
    }

    /// A reply of a kind the request cannot have: log it and report `EIO`.
    fn unexpected<T>(what: &str, r: &Response) -> Result<T> {
        tracing::warn!(what, kind = r.kind(), "gofer client: unexpected reply");
        Err(EIO)
    }

    fn node(&self, req: &Request, what: &str) -> Result<(Handle, Attr)> {
        match self.call(req)? {
            (Response::Node { handle, attr }, _) => Ok((handle, attr)),
            (r, _) => Self::unexpected(what, &r),
        }
    }

    fn ok(&self, req: &Request, what: &str) -> Result<()> {
        match self.call(req)? {
            (Response::Ok, _) => Ok(()),
            (r, _) => Self::unexpected(what, &r),
        }
    }

    /// A new handle for the root of the served tree.
    pub fn attach(&self) -> Result<(Handle, Attr)> {
        self.node(&Request::Attach, "attach")
    }

    /// Walk `names` from `dir`. Returns the (handle, attr) of each component walked; fewer
    /// than names.len() when it stopped early (at a symlink, which is included as the last
    /// element, or at a non-directory), and Err only if the first component fails (e.g.
    /// ENOENT).
    ///
    /// Precisely:
    /// - Every name is checked first: an empty name, `.`, `..`, or one with `/` or NUL is
    ///   `Err(EINVAL)` (`ENAMETOOLONG` over 255 bytes) and nothing is walked.
    /// - `names` empty gives `Ok(vec![])`.
    /// - A symlink or any non-directory that is walked successfully is included as the last
    ///   element; symlinks are never followed.
    /// - If a later component cannot be walked (missing, `EACCES`, …) the walk stops before it
    ///   and that component is not included; its errno is not reported. To learn it, walk the
    ///   remaining names from the last returned handle: that call fails on its first component.
    /// - `dir` not a directory is `Err(ENOTDIR)`; an unknown `dir` is `Err(EBADF)`.
    ///
    /// Every returned handle is live and must be closed by the caller. Walks longer than
    /// `MAX_WALK_NAMES` are sent as several requests.
    pub fn walk(&self, dir: Handle, names: &[&[u8]]) -> Result<Vec<(Handle, Attr)>> {
        let names = names
            .iter()
            .map(|n| Name::new(n))
            .collect::<Result<Vec<_>>>()?;
        let mut out: Vec<(Handle, Attr)> = Vec::with_capacity(names.len());
        let mut from = dir;
        for chunk in names.chunks(MAX_WALK_NAMES) {
            let req = Request::Walk {
                dir: from,
                names: chunk.to_vec(),
            };
            let nodes = match self.call(&req) {
                Ok((Response::Walked(nodes), _)) => nodes,
                Ok((r, _)) => return Self::unexpected("walk", &r),
                // Only the very first component's failure is the caller's error.
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            };
            if nodes.is_empty() || nodes.len() > chunk.len() {
                tracing::warn!(
                    n = nodes.len(),
                    "gofer client: walk reply of the wrong length"
                );
                for (h, _) in out.iter().chain(&nodes) {
                    self.close(*h);
                }
                return Err(EIO);
            }
            let complete = nodes.len() == chunk.len();
            let last = nodes.last().map(|(h, a)| (*h, is_dir(a)));
            out.extend(nodes);
            match last {
                Some((h, true)) if complete => from = h,
                _ => break,
            }
        }
        Ok(out)
    }

    pub fn stat(&self, h: Handle) -> Result<Attr> {
        match self.call(&Request::Stat { handle: h })? {
            (Response::Attr(a), _) => Ok(a),
            (r, _) => Self::unexpected("stat", &r),
        }
    }

    /// Opens the file with `open(2)` flags and returns the host fd the gofer donated. Reads
    /// and writes go straight to it.
    ///
    /// `O_CREAT` is ignored (the file exists) unless with `O_EXCL` (`EEXIST`). For a file that
    /// is neither regular nor a directory (fifo, device) the fd comes back `O_NONBLOCK`, so
    /// the gofer never blocks in open; clear it with `fcntl` if the application did not ask.
    /// Symlinks are `ELOOP`. Read-only gofers refuse writes, `O_CREAT` and `O_TRUNC` (`EROFS`).
    pub fn open(&self, h: Handle, flags: i32) -> Result<OwnedFd> {
        match self.call(&Request::Open { handle: h, flags })? {
            (Response::Opened, Some(fd)) => Ok(fd),
            (r, _) => Self::unexpected("open", &r),
        }
    }

    /// The target of a symlink handle; `EINVAL` for anything else.
    pub fn readlink(&self, h: Handle) -> Result<Vec<u8>> {
        match self.call(&Request::Readlink { handle: h })? {
            (Response::Target(t), _) => Ok(t),
            (r, _) => Self::unexpected("readlink", &r),
        }
    }

    /// One page of a directory's entries from `cookie` (0 = start). Returns the entries and
    /// the cookie to continue from, or `None` at the end. `.` and `..` are not included.
    pub fn getdents_page(&self, h: Handle, cookie: u64) -> Result<(Vec<Dirent>, Option<u64>)> {
        match self.call(&Request::Getdents { handle: h, cookie })? {
            (
                Response::Dirents {
                    entries, eof: true, ..
                },
                _,
            ) => Ok((entries, None)),
            (
                Response::Dirents {
                    entries,
                    next_cookie,
                    eof: false,
                },
                _,
            ) => {
                if entries.is_empty() {
                    // A page with nothing in it and more to come would loop forever.
                    tracing::warn!("gofer client: empty getdents page before the end");
                    return Err(EIO);
                }
                Ok((entries, Some(next_cookie)))
            }
            (r, _) => Self::unexpected("getdents", &r),
        }
    }

    /// All entries of a directory (paged underneath). `.` and `..` are not included: the
    /// sentry knows them better than the gofer.
    pub fn getdents(&self, h: Handle) -> Result<Vec<Dirent>> {
        let mut all = Vec::new();
        let mut cookie = 0;
        loop {
            let (entries, next) = self.getdents_page(h, cookie)?;
            all.extend(entries);
            if all.len() > GETDENTS_MAX_ENTRIES {
                return Err(EIO);
            }
            match next {
                Some(c) => cookie = c,
                None => return Ok(all),
            }
        }
    }

    pub fn statfs(&self, h: Handle) -> Result<StatFs> {
        match self.call(&Request::StatFs { handle: h })? {
            (Response::StatFs(s), _) => Ok(s),
            (r, _) => Self::unexpected("statfs", &r),
        }
    }

    /// Forgets a handle. Fire and forget: the server sends no reply, and an unknown handle is
    /// ignored. Files already opened from it stay open.
    pub fn close(&self, h: Handle) {
        if let Err(e) = self.call(&Request::Close { handle: h }) {
            tracing::debug!(%e, h, "gofer client: close not sent");
        }
    }

    /// Creates `name` in `dir` as a regular file with exactly `mode` (the caller applies the
    /// umask) and opens it with `flags` (`O_EXCL` is implied). Returns its handle, attributes
    /// and the open fd.
    pub fn create(
        &self,
        dir: Handle,
        name: &[u8],
        flags: i32,
        mode: u32,
    ) -> Result<(Handle, Attr, OwnedFd)> {
        let req = Request::Create {
            dir,
            name: Name::new(name)?,
            flags,
            mode,
        };
        match self.call(&req)? {
            (Response::Created { handle, attr }, Some(fd)) => Ok((handle, attr, fd)),
            (r, _) => Self::unexpected("create", &r),
        }
    }

    /// Creates a directory with exactly `mode`; returns its handle.
    pub fn mkdir(&self, dir: Handle, name: &[u8], mode: u32) -> Result<(Handle, Attr)> {
        self.node(
            &Request::Mkdir {
                dir,
                name: Name::new(name)?,
                mode,
            },
            "mkdir",
        )
    }

    /// `unlinkat(2)`: `flags` is 0 or `AT_REMOVEDIR`.
    pub fn unlink(&self, dir: Handle, name: &[u8], flags: i32) -> Result<()> {
        self.ok(
            &Request::Unlink {
                dir,
                name: Name::new(name)?,
                flags,
            },
            "unlink",
        )
    }

    /// `renameat2(2)` with `flags` of `RENAME_NOREPLACE` or `RENAME_EXCHANGE` (0 for a plain
    /// rename). Handles of the moved files follow them.
    pub fn rename(
        &self,
        old_dir: Handle,
        old_name: &[u8],
        new_dir: Handle,
        new_name: &[u8],
        flags: u32,
    ) -> Result<()> {
        let req = Request::Rename {
            old_dir,
            old_name: Name::new(old_name)?,
            new_dir,
            new_name: Name::new(new_name)?,
            flags,
        };
        self.ok(&req, "rename")
    }

    /// Creates a FIFO or socket `name` with exactly `mode` (type and permission bits);
    /// device nodes are `EPERM`. Returns its handle.
    pub fn mknod(&self, dir: Handle, name: &[u8], mode: u32, rdev: u64) -> Result<(Handle, Attr)> {
        let req = Request::Mknod {
            dir,
            name: Name::new(name)?,
            mode,
            rdev,
        };
        self.node(&req, "mknod")
    }

    fn value(&self, req: &Request, what: &str) -> Result<Vec<u8>> {
        match self.call(req)? {
            (Response::Value(v), _) => Ok(v),
            (r, _) => Self::unexpected(what, &r),
        }
    }

    /// The value of extended attribute `name` (`ENODATA` if absent).
    pub fn getxattr(&self, h: Handle, name: &[u8]) -> Result<Vec<u8>> {
        let req = Request::GetXattr {
            handle: h,
            name: XattrName::new(name)?,
        };
        self.value(&req, "getxattr")
    }

    /// Sets `name` to `value`; `flags` is `XATTR_CREATE`/`XATTR_REPLACE`. Only `user.` and
    /// `trusted.` names are writable.
    pub fn setxattr(&self, h: Handle, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let req = Request::SetXattr {
            handle: h,
            name: XattrName::new(name)?,
            value: value.to_vec(),
            flags,
        };
        self.ok(&req, "setxattr")
    }

    /// The names of the file's readable extended attributes.
    pub fn listxattr(&self, h: Handle) -> Result<Vec<Vec<u8>>> {
        let list = self.value(&Request::ListXattr { handle: h }, "listxattr")?;
        Ok(list
            .split(|&c| c == 0)
            .filter(|n| !n.is_empty())
            .map(<[u8]>::to_vec)
            .collect())
    }

    pub fn removexattr(&self, h: Handle, name: &[u8]) -> Result<()> {
        let req = Request::RemoveXattr {
            handle: h,
            name: XattrName::new(name)?,
        };
        self.ok(&req, "removexattr")
    }

    /// `fsync(2)` (`fdatasync(2)` with `data_only`) of a regular file or directory.
    pub fn fsync(&self, h: Handle, data_only: bool) -> Result<()> {
        self.ok(
            &Request::Fsync {
                handle: h,
                data_only,
            },
            "fsync",
        )
    }

    /// `fallocate(2)` of a regular file: `mode` 0, keep-size and/or punch-hole.
    pub fn fallocate(&self, h: Handle, mode: u32, offset: u64, len: u64) -> Result<()> {
        let req = Request::Fallocate {
            handle: h,
            mode,
            offset,
            len,
        };
        self.ok(&req, "fallocate")
    }

    /// Creates a symlink `name` → `target` in `dir`; returns its handle.
    pub fn symlink(&self, dir: Handle, name: &[u8], target: &[u8]) -> Result<(Handle, Attr)> {
        let req = Request::Symlink {
            dir,
            name: Name::new(name)?,
            target: target.to_vec(),
        };
        self.node(&req, "symlink")
    }

    /// Makes `dir`/`name` a hard link to the file of `target`; returns the new name's handle.
    pub fn link(&self, dir: Handle, name: &[u8], target: Handle) -> Result<(Handle, Attr)> {
        self.node(
            &Request::Link {
                dir,
                name: Name::new(name)?,
                target,
            },
            "link",
        )
    }

    /// Changes the attributes selected by `attr.mask` (`SETATTR_*`).
    pub fn setstat(&self, h: Handle, attr: &SetAttr) -> Result<()> {
        self.ok(
            &Request::SetStat {
                handle: h,
                attr: *attr,
            },
            "setstat",
        )
    }
}
