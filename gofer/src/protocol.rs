//! The gofer wire protocol: one message per `SOCK_SEQPACKET` packet.
//!
//! A packet is a fixed header followed by a payload:
//!
//! ```text
//! offset 0  tag:  u32   chosen by the client, echoed in the reply
//! offset 4  kind: u16   REQ_* for requests, RESP_* for replies
//! offset 6  len:  u32   payload length; must equal packet length - HEADER_LEN
//! offset 10 payload
//! ```
//!
//! Integers are little endian. Names are `u8` length + bytes; other byte strings are `u32`
//! length + bytes; vectors are `u32` count + elements. Open host fds travel beside the packet
//! with `SCM_RIGHTS` (only in `Opened` and `Created` replies). Every length is bounded and
//! every decode is fallible: the server treats requests as hostile and the client treats
//! replies as possibly malformed, so decoding never panics.

#![deny(unsafe_code)]

/// A server-side id for a walked path.
pub type Handle = u64;

/// Size of the fixed packet header.
pub const HEADER_LEN: usize = 10;
/// Largest packet, header included.
pub const MAX_PACKET: usize = 64 * 1024;
/// Largest payload.
pub const MAX_PAYLOAD: usize = MAX_PACKET - HEADER_LEN;
/// Longest single path component (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest symlink target (Linux `PATH_MAX` minus the NUL).
pub const SYMLINK_MAX: usize = 4095;
/// Most names in one Walk request; chosen so any valid request and its reply fit a packet.
/// The client splits longer walks.
pub const MAX_WALK_NAMES: usize = 128;
/// Longest extended attribute name (Linux `XATTR_NAME_MAX`).
pub const XATTR_NAME_MAX: usize = 255;
/// Largest extended attribute value (or name list) that crosses the protocol: Linux's
/// `XATTR_SIZE_MAX` (64 KiB) less room for the rest of a SetXattr request, so any request
/// that encodes fits one packet. Host filesystems keep values far smaller (ext4: a block).
pub const XATTR_VALUE_MAX: usize = MAX_PAYLOAD - 1024;
/// `Rename::flags` the protocol carries (`renameat2(2)`).
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
/// `Fallocate::mode` bits the protocol carries (`fallocate(2)`): keep size, punch hole.
pub const FALLOCATE_MODES: u32 = 0x3;

/// A Linux errno; errors cross the protocol as these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (errno {})",
            nix::errno::Errno::from_raw(self.0).desc(),
            self.0
        )
    }
}

impl std::error::Error for Errno {}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Self {
        Errno(e as i32)
    }
}

impl Errno {
    /// Whether this is a value a Linux syscall could return (1..=4095).
    pub fn is_valid(self) -> bool {
        (1..=4095).contains(&self.0)
    }
}

/// File attributes, as `struct stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attr {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime_sec: i64,
    pub atime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
}

/// One directory entry. `.` and `..` are never sent: the sentry synthesizes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    /// `DT_*` from `getdents64(2)`.
    pub d_type: u8,
    pub name: Vec<u8>,
}

/// Filesystem statistics, as `struct statfs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

/// `SetAttr::mask` bits.
pub const SETATTR_MODE: u32 = 1 << 0;
pub const SETATTR_UID: u32 = 1 << 1;
pub const SETATTR_GID: u32 = 1 << 2;
pub const SETATTR_SIZE: u32 = 1 << 3;
pub const SETATTR_ATIME: u32 = 1 << 4;
pub const SETATTR_MTIME: u32 = 1 << 5;
const SETATTR_ALL: u32 = (1 << 6) - 1;

/// What SetStat changes: only the fields whose bit is in `mask`. Times take `utimensat(2)`
/// values, so `*_nsec == libc::UTIME_NOW` means "now".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mask: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime_sec: i64,
    pub atime_nsec: i64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
}

/// A single path component: 1..=255 bytes, no `/`, no NUL, not `.` or `..`.
///
/// Holding a `Name` proves it was checked, so the server can hand it to `*at()` calls as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(Vec<u8>);

impl Name {
    /// Checks `bytes` and copies it; `EINVAL` if it is not a single component
    /// (`ENAMETOOLONG` if longer than `NAME_MAX`).
    pub fn new(bytes: &[u8]) -> Result<Name, Errno> {
        if bytes.len() > NAME_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
            return Err(Errno(libc::EINVAL));
        }
        if bytes.contains(&0) {
            return Err(Errno(libc::EINVAL));
        }
        Ok(Name(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An extended attribute name: 1..=255 bytes without NUL (`user.foo`). Which namespaces
/// may be used is the server's decision, not the wire format's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XattrName(Vec<u8>);

impl XattrName {
    /// `ERANGE` for an empty or over-long name (what `setxattr(2)` says), `EINVAL` for NUL.
    pub fn new(bytes: &[u8]) -> Result<XattrName, Errno> {
        if bytes.is_empty() || bytes.len() > XATTR_NAME_MAX {
            return Err(Errno(libc::ERANGE));
        }
        if bytes.contains(&0) {
            return Err(Errno(libc::EINVAL));
        }
        Ok(XattrName(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Request kinds.
pub const REQ_ATTACH: u16 = 1;
pub const REQ_WALK: u16 = 2;
pub const REQ_STAT: u16 = 3;
pub const REQ_OPEN: u16 = 4;
pub const REQ_READLINK: u16 = 5;
pub const REQ_GETDENTS: u16 = 6;
pub const REQ_STATFS: u16 = 7;
pub const REQ_CLOSE: u16 = 8;
pub const REQ_CREATE: u16 = 9;
pub const REQ_MKDIR: u16 = 10;
pub const REQ_UNLINK: u16 = 11;
pub const REQ_RENAME: u16 = 12;
pub const REQ_SYMLINK: u16 = 13;
pub const REQ_LINK: u16 = 14;
pub const REQ_SETSTAT: u16 = 15;
pub const REQ_MKNOD: u16 = 16;
pub const REQ_GETXATTR: u16 = 17;
pub const REQ_SETXATTR: u16 = 18;
pub const REQ_LISTXATTR: u16 = 19;
pub const REQ_REMOVEXATTR: u16 = 20;
pub const REQ_FSYNC: u16 = 21;
pub const REQ_FALLOCATE: u16 = 22;

/// Reply kinds.
pub const RESP_ERROR: u16 = 0x8000;
pub const RESP_OK: u16 = 0x8001;
pub const RESP_NODE: u16 = 0x8002;
pub const RESP_WALKED: u16 = 0x8003;
pub const RESP_ATTR: u16 = 0x8004;
pub const RESP_OPENED: u16 = 0x8005;
pub const RESP_CREATED: u16 = 0x8006;
pub const RESP_TARGET: u16 = 0x8007;
pub const RESP_DIRENTS: u16 = 0x8008;
pub const RESP_STATFS: u16 = 0x8009;
pub const RESP_VALUE: u16 = 0x800a;

/// A message from the sentry to the gofer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A new handle for the root of the served tree. Reply: `Node`.
    Attach,
    /// Walk `names` from directory `dir`. Reply: `Walked` (see `client::Client::walk`).
    Walk { dir: Handle, names: Vec<Name> },
    /// Reply: `Attr`.
    Stat { handle: Handle },
    /// Open the file with `open(2)` flags. Reply: `Opened` with the fd beside it.
    Open { handle: Handle, flags: i32 },
    /// Reply: `Target`.
    Readlink { handle: Handle },
    /// Entries of a directory from `cookie` (0 = start). Reply: `Dirents`.
    Getdents { handle: Handle, cookie: u64 },
    /// Reply: `StatFs`.
    StatFs { handle: Handle },
    /// Forget a handle. No reply, ever (fire and forget).
    Close { handle: Handle },
    /// Create and open a regular file (always `O_EXCL`). Reply: `Created` with the fd.
    Create {
        dir: Handle,
        name: Name,
        flags: i32,
        mode: u32,
    },
    /// Reply: `Node` of the new directory.
    Mkdir { dir: Handle, name: Name, mode: u32 },
    /// `flags` is 0 or `AT_REMOVEDIR`. Reply: `Ok`.
    Unlink { dir: Handle, name: Name, flags: i32 },
    /// `renameat2(2)` with `flags` of `RENAME_NOREPLACE`/`RENAME_EXCHANGE`. Reply: `Ok`.
    Rename {
        old_dir: Handle,
        old_name: Name,
        new_dir: Handle,
        new_name: Name,
        flags: u32,
    },
    /// Reply: `Node` of the new symlink.
    Symlink {
        dir: Handle,
        name: Name,
        target: Vec<u8>,
    },
    /// Make `dir/name` a hard link to `target`. Reply: `Node` of the new name.
    Link {
        dir: Handle,
        name: Name,
        target: Handle,
    },
    /// Reply: `Ok`.
    SetStat { handle: Handle, attr: SetAttr },
    /// A FIFO or socket (`mode` holds the type and exact permission bits); device nodes
    /// are refused (`EPERM`). Reply: `Node` of the new file.
    Mknod {
        dir: Handle,
        name: Name,
        mode: u32,
        rdev: u64,
    },
    /// Reply: `Value` with the attribute's value.
    GetXattr { handle: Handle, name: XattrName },
    /// `flags` is `XATTR_CREATE`/`XATTR_REPLACE`. Reply: `Ok`.
    SetXattr {
        handle: Handle,
        name: XattrName,
        value: Vec<u8>,
        flags: u32,
    },
    /// Reply: `Value` with the names, each followed by a NUL (as `listxattr(2)`).
    ListXattr { handle: Handle },
    /// Reply: `Ok`.
    RemoveXattr { handle: Handle, name: XattrName },
    /// `fsync(2)`, or `fdatasync(2)` with `data_only`. Reply: `Ok`.
    Fsync { handle: Handle, data_only: bool },
    /// `fallocate(2)` of a regular file. Reply: `Ok`.
    Fallocate {
        handle: Handle,
        mode: u32,
        offset: u64,
        len: u64,
    },
}

/// A message from the gofer to the sentry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Error(Errno),
    Ok,
    Node {
        handle: Handle,
        attr: Attr,
    },
    Walked(Vec<(Handle, Attr)>),
    Attr(Attr),
    /// The opened fd travels beside the packet.
    Opened,
    /// The opened fd of the new file travels beside the packet.
    Created {
        handle: Handle,
        attr: Attr,
    },
    Target(Vec<u8>),
    /// `next_cookie` continues the listing unless `eof`.
    Dirents {
        entries: Vec<Dirent>,
        next_cookie: u64,
        eof: bool,
    },
    StatFs(StatFs),
    /// An extended attribute value or name list (at most `XATTR_VALUE_MAX` bytes).
    Value(Vec<u8>),
}

/// Why a packet could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet truncated")]
    Truncated,
    #[error("packet longer than {MAX_PACKET} bytes")]
    TooLong,
    #[error("header length does not match the packet")]
    LengthMismatch,
    #[error("bytes left over after the payload")]
    TrailingBytes,
    #[error("unknown message kind {0:#x}")]
    UnknownKind(u16),
    #[error("invalid name")]
    BadName,
    #[error("field out of range")]
    BadValue,
}

impl DecodeError {
    /// The errno the server replies with.
    pub fn errno(self) -> Errno {
        Errno(libc::EINVAL)
    }
}

/// The fixed header of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub tag: u32,
    pub kind: u16,
    pub len: u32,
}

/// Splits a packet into its header and payload, checking the length field.
pub fn decode_header(packet: &[u8]) -> Result<(Header, &[u8]), DecodeError> {
    if packet.len() > MAX_PACKET {
        return Err(DecodeError::TooLong);
    }
    let mut r = Reader::new(packet);
    let tag = r.u32()?;
    let kind = r.u16()?;
    let len = r.u32()?;
    let payload = r.rest();
    if usize::try_from(len).ok() != Some(payload.len()) {
        return Err(DecodeError::LengthMismatch);
    }
    Ok((Header { tag, kind, len }, payload))
}

/// Why a message could not be encoded (a field over its bound). Carries the errno to report.
fn finish(tag: u32, kind: u16, w: Writer) -> Result<Vec<u8>, Errno> {
    let payload = w.0;
    if payload.len() > MAX_PAYLOAD {
        return Err(Errno(libc::EMSGSIZE));
    }
    let len = u32::try_from(payload.len()).map_err(|_| Errno(libc::EMSGSIZE))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

impl Request {
    pub fn kind(&self) -> u16 {
        match self {
            Request::Attach => REQ_ATTACH,
            Request::Walk { .. } => REQ_WALK,
            Request::Stat { .. } => REQ_STAT,
            Request::Open { .. } => REQ_OPEN,
            Request::Readlink { .. } => REQ_READLINK,
            Request::Getdents { .. } => REQ_GETDENTS,
            Request::StatFs { .. } => REQ_STATFS,
            Request::Close { .. } => REQ_CLOSE,
            Request::Create { .. } => REQ_CREATE,
            Request::Mkdir { .. } => REQ_MKDIR,
            Request::Unlink { .. } => REQ_UNLINK,
            Request::Rename { .. } => REQ_RENAME,
            Request::Symlink { .. } => REQ_SYMLINK,
            Request::Link { .. } => REQ_LINK,
            Request::SetStat { .. } => REQ_SETSTAT,
            Request::Mknod { .. } => REQ_MKNOD,
            Request::GetXattr { .. } => REQ_GETXATTR,
            Request::SetXattr { .. } => REQ_SETXATTR,
            Request::ListXattr { .. } => REQ_LISTXATTR,
            Request::RemoveXattr { .. } => REQ_REMOVEXATTR,
            Request::Fsync { .. } => REQ_FSYNC,
            Request::Fallocate { .. } => REQ_FALLOCATE,
        }
    }

    /// Whether the server sends a reply to this request.
    pub fn expects_reply(&self) -> bool {
        !matches!(self, Request::Close { .. })
    }

    /// Encodes a whole packet. Fails with `EINVAL`/`ENAMETOOLONG`/`EMSGSIZE` if a field is
    /// over its bound, so a request that encodes also decodes.
    pub fn encode(&self, tag: u32) -> Result<Vec<u8>, Errno> {
        let mut w = Writer::default();
        match self {
            Request::Attach => {}
            Request::Walk { dir, names } => {
                if names.is_empty() || names.len() > MAX_WALK_NAMES {
                    return Err(Errno(libc::EINVAL));
                }
                w.u64(*dir);
                w.count(names.len())?;
                for n in names {
                    w.name(n);
                }
            }
            Request::Stat { handle }
            | Request::Readlink { handle }
            | Request::StatFs { handle }
            | Request::ListXattr { handle }
            | Request::Close { handle } => w.u64(*handle),
            Request::Open { handle, flags } => {
                w.u64(*handle);
                w.i32(*flags);
            }
            Request::Getdents { handle, cookie } => {
                w.u64(*handle);
                w.u64(*cookie);
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
            } => {
                w.u64(*dir);
                w.name(name);
                w.i32(*flags);
                w.u32(*mode);
            }
            Request::Mkdir { dir, name, mode } => {
                w.u64(*dir);
                w.name(name);
                w.u32(*mode);
            }
            Request::Unlink { dir, name, flags } => {
                w.u64(*dir);
                w.name(name);
                w.i32(*flags);
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                w.u64(*old_dir);
                w.name(old_name);
                w.u64(*new_dir);
                w.name(new_name);
                w.u32(*flags);
            }
            Request::Symlink { dir, name, target } => {
                check_target(target)?;
                w.u64(*dir);
                w.name(name);
                w.bytes(target)?;
            }
            Request::Link { dir, name, target } => {
                w.u64(*dir);
                w.name(name);
                w.u64(*target);
            }
            Request::SetStat { handle, attr } => {
                w.u64(*handle);
                w.u32(attr.mask);
                w.u32(attr.mode);
                w.u32(attr.uid);
                w.u32(attr.gid);
                w.u64(attr.size);
                w.i64(attr.atime_sec);
                w.i64(attr.atime_nsec);
                w.i64(attr.mtime_sec);
                w.i64(attr.mtime_nsec);
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
            } => {
                w.u64(*dir);
                w.name(name);
                w.u32(*mode);
                w.u64(*rdev);
            }
            Request::GetXattr { handle, name } | Request::RemoveXattr { handle, name } => {
                w.u64(*handle);
                w.xattr_name(name);
            }
            Request::SetXattr {
                handle,
                name,
                value,
                flags,
            } => {
                if value.len() > XATTR_VALUE_MAX {
                    return Err(Errno(libc::E2BIG));
                }
                w.u64(*handle);
                w.xattr_name(name);
                w.bytes(value)?;
                w.u32(*flags);
            }
            Request::Fsync { handle, data_only } => {
                w.u64(*handle);
                w.u8(u8::from(*data_only));
            }
            Request::Fallocate {
                handle,
                mode,
                offset,
                len,
            } => {
                w.u64(*handle);
                w.u32(*mode);
                w.u64(*offset);
                w.u64(*len);
            }
        }
        finish(tag, self.kind(), w)
    }

    /// Decodes a whole packet into its tag and request.
    pub fn decode(packet: &[u8]) -> Result<(u32, Request), DecodeError> {
        let (h, payload) = decode_header(packet)?;
        Ok((h.tag, Request::decode_payload(h.kind, payload)?))
    }

    /// Decodes the payload of a request of `kind`.
    pub fn decode_payload(kind: u16, payload: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(payload);
        let req = match kind {
            REQ_ATTACH => Request::Attach,
            REQ_WALK => {
                let dir = r.u64()?;
                let n = r.count()?;
                if n == 0 || n > MAX_WALK_NAMES {
                    return Err(DecodeError::BadValue);
                }
                let mut names = Vec::with_capacity(n);
                for _ in 0..n {
                    names.push(r.name()?);
                }
                Request::Walk { dir, names }
            }
            REQ_STAT => Request::Stat { handle: r.u64()? },
            REQ_OPEN => Request::Open {
                handle: r.u64()?,
                flags: r.i32()?,
            },
            REQ_READLINK => Request::Readlink { handle: r.u64()? },
            REQ_GETDENTS => Request::Getdents {
                handle: r.u64()?,
                cookie: r.u64()?,
            },
            REQ_STATFS => Request::StatFs { handle: r.u64()? },
            REQ_CLOSE => Request::Close { handle: r.u64()? },
            REQ_CREATE => Request::Create {
                dir: r.u64()?,
                name: r.name()?,
                flags: r.i32()?,
                mode: r.u32()?,
            },
            REQ_MKDIR => Request::Mkdir {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
            },
            REQ_UNLINK => Request::Unlink {
                dir: r.u64()?,
                name: r.name()?,
                flags: r.i32()?,
            },
            REQ_RENAME => Request::Rename {
                old_dir: r.u64()?,
                old_name: r.name()?,
                new_dir: r.u64()?,
                new_name: r.name()?,
                flags: r.u32()?,
            },
            REQ_SYMLINK => {
                let dir = r.u64()?;
                let name = r.name()?;
                let target = r.bytes(SYMLINK_MAX)?.to_vec();
                check_target(&target).map_err(|_| DecodeError::BadValue)?;
                Request::Symlink { dir, name, target }
            }
            REQ_LINK => Request::Link {
                dir: r.u64()?,
                name: r.name()?,
                target: r.u64()?,
            },
            REQ_SETSTAT => {
                let handle = r.u64()?;
                let attr = SetAttr {
                    mask: r.u32()?,
                    mode: r.u32()?,
                    uid: r.u32()?,
                    gid: r.u32()?,
                    size: r.u64()?,
                    atime_sec: r.i64()?,
                    atime_nsec: r.i64()?,
                    mtime_sec: r.i64()?,
                    mtime_nsec: r.i64()?,
                };
                if attr.mask & !SETATTR_ALL != 0 {
                    return Err(DecodeError::BadValue);
                }
                Request::SetStat { handle, attr }
            }
            REQ_MKNOD => Request::Mknod {
                dir: r.u64()?,
                name: r.name()?,
                mode: r.u32()?,
                rdev: r.u64()?,
            },
            REQ_GETXATTR => Request::GetXattr {
                handle: r.u64()?,
                name: r.xattr_name()?,
            },
            REQ_SETXATTR => Request::SetXattr {
                handle: r.u64()?,
                name: r.xattr_name()?,
                value: r.bytes(XATTR_VALUE_MAX)?.to_vec(),
                flags: r.u32()?,
            },
            REQ_LISTXATTR => Request::ListXattr { handle: r.u64()? },
            REQ_REMOVEXATTR => Request::RemoveXattr {
                handle: r.u64()?,
                name: r.xattr_name()?,
            },
            REQ_FSYNC => Request::Fsync {
                handle: r.u64()?,
                data_only: match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::BadValue),
                },
            },
            REQ_FALLOCATE => Request::Fallocate {
                handle: r.u64()?,
                mode: r.u32()?,
                offset: r.u64()?,
                len: r.u64()?,
            },
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(req)
    }
}

fn check_target(target: &[u8]) -> Result<(), Errno> {
    if target.len() > SYMLINK_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    if target.is_empty() || target.contains(&0) {
        // symlink(2) with an empty target is ENOENT.
        return Err(Errno(if target.is_empty() {
            libc::ENOENT
        } else {
            libc::EINVAL
        }));
    }
    Ok(())
}

/// Encoded size of one `Dirent`, for paging replies under `MAX_PAYLOAD`.
pub fn dirent_encoded_len(name_len: usize) -> usize {
    8 + 1 + 1 + name_len
}

/// Payload bytes of a `Dirents` reply besides its entries.
pub const DIRENTS_OVERHEAD: usize = 8 + 1 + 4;

impl Response {
    pub fn kind(&self) -> u16 {
        match self {
            Response::Error(_) => RESP_ERROR,
            Response::Ok => RESP_OK,
            Response::Node { .. } => RESP_NODE,
            Response::Walked(_) => RESP_WALKED,
            Response::Attr(_) => RESP_ATTR,
            Response::Opened => RESP_OPENED,
            Response::Created { .. } => RESP_CREATED,
            Response::Target(_) => RESP_TARGET,
            Response::Dirents { .. } => RESP_DIRENTS,
            Response::StatFs(_) => RESP_STATFS,
            Response::Value(_) => RESP_VALUE,
        }
    }

    /// Encodes a whole packet; `EMSGSIZE` if it would exceed `MAX_PACKET`.
    pub fn encode(&self, tag: u32) -> Result<Vec<u8>, Errno> {
        let mut w = Writer::default();
        match self {
            Response::Error(e) => w.i32(e.0),
            Response::Ok | Response::Opened => {}
            Response::Node { handle, attr } | Response::Created { handle, attr } => {
                w.u64(*handle);
                w.attr(attr);
            }
            Response::Walked(nodes) => {
                w.count(nodes.len())?;
                for (h, a) in nodes {
                    w.u64(*h);
                    w.attr(a);
                }
            }
            Response::Attr(a) => w.attr(a),
            Response::Target(t) => {
                if t.len() > SYMLINK_MAX {
                    return Err(Errno(libc::ENAMETOOLONG));
                }
                w.bytes(t)?;
            }
            Response::Dirents {
                entries,
                next_cookie,
                eof,
            } => {
                w.u64(*next_cookie);
                w.u8(u8::from(*eof));
                w.count(entries.len())?;
                for d in entries {
                    let len = u8::try_from(d.name.len()).map_err(|_| Errno(libc::ENAMETOOLONG))?;
                    w.u64(d.ino);
                    w.u8(d.d_type);
                    w.u8(len);
                    w.0.extend_from_slice(&d.name);
                }
            }
            Response::StatFs(s) => {
                for v in [
                    s.fs_type, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.namelen,
                    s.frsize, s.flags,
                ] {
                    w.u64(v);
                }
            }
            Response::Value(v) => {
                if v.len() > XATTR_VALUE_MAX {
                    return Err(Errno(libc::E2BIG));
                }
                w.bytes(v)?;
            }
        }
        finish(tag, self.kind(), w)
    }

    /// Decodes a whole packet into its tag and reply.
    pub fn decode(packet: &[u8]) -> Result<(u32, Response), DecodeError> {
        let (h, payload) = decode_header(packet)?;
        Ok((h.tag, Response::decode_payload(h.kind, payload)?))
    }

    pub fn decode_payload(kind: u16, payload: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(payload);
        let resp = match kind {
            RESP_ERROR => {
                let e = Errno(r.i32()?);
                if !e.is_valid() {
                    return Err(DecodeError::BadValue);
                }
                Response::Error(e)
            }
            RESP_OK => Response::Ok,
            RESP_NODE => Response::Node {
                handle: r.u64()?,
                attr: r.attr()?,
            },
            RESP_WALKED => {
                let n = r.count()?;
                if n > MAX_WALK_NAMES {
                    return Err(DecodeError::BadValue);
                }
                let mut nodes = Vec::with_capacity(n);
                for _ in 0..n {
                    nodes.push((r.u64()?, r.attr()?));
                }
                Response::Walked(nodes)
            }
            RESP_ATTR => Response::Attr(r.attr()?),
            RESP_OPENED => Response::Opened,
            RESP_CREATED => Response::Created {
                handle: r.u64()?,
                attr: r.attr()?,
            },
            RESP_TARGET => Response::Target(r.bytes(SYMLINK_MAX)?.to_vec()),
            RESP_DIRENTS => {
                let next_cookie = r.u64()?;
                let eof = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::BadValue),
                };
                let n = r.count()?;
                // Never trust a count for an allocation: bound it by the bytes present.
                let mut entries = Vec::with_capacity(n.min(r.remaining() / dirent_encoded_len(1)));
                for _ in 0..n {
                    let ino = r.u64()?;
                    let d_type = r.u8()?;
                    let name = r.name()?;
                    entries.push(Dirent {
                        ino,
                        d_type,
                        name: name.0,
                    });
                }
                Response::Dirents {
                    entries,
                    next_cookie,
                    eof,
                }
            }
            RESP_STATFS => Response::StatFs(StatFs {
                fs_type: r.u64()?,
                bsize: r.u64()?,
                blocks: r.u64()?,
                bfree: r.u64()?,
                bavail: r.u64()?,
                files: r.u64()?,
                ffree: r.u64()?,
                namelen: r.u64()?,
                frsize: r.u64()?,
                flags: r.u64()?,
            }),
            RESP_VALUE => Response::Value(r.bytes(XATTR_VALUE_MAX)?.to_vec()),
            other => return Err(DecodeError::UnknownKind(other)),
        };
        r.finish()?;
        Ok(resp)
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn count(&mut self, n: usize) -> Result<(), Errno> {
        self.u32(u32::try_from(n).map_err(|_| Errno(libc::EMSGSIZE))?);
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), Errno> {
        self.count(b.len())?;
        self.0.extend_from_slice(b);
        Ok(())
    }
    fn name(&mut self, n: &Name) {
        // A Name is at most NAME_MAX (255) bytes, so its length fits a u8.
        self.0.push(n.0.len() as u8);
        self.0.extend_from_slice(&n.0);
    }
    fn xattr_name(&mut self, n: &XattrName) {
        // An XattrName is at most XATTR_NAME_MAX (255) bytes, so its length fits a u8.
        self.0.push(n.0.len() as u8);
        self.0.extend_from_slice(&n.0);
    }
    fn attr(&mut self, a: &Attr) {
        self.u64(a.dev);
        self.u64(a.ino);
        self.u32(a.mode);
        self.u64(a.nlink);
        self.u32(a.uid);
        self.u32(a.gid);
        self.u64(a.rdev);
        self.u64(a.size);
        self.u64(a.blksize);
        self.u64(a.blocks);
        self.i64(a.atime_sec);
        self.i64(a.atime_nsec);
        self.i64(a.mtime_sec);
        self.i64(a.mtime_nsec);
        self.i64(a.ctime_sec);
        self.i64(a.ctime_nsec);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn remaining(&self) -> usize {
        self.buf.len()
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.buf = tail;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn count(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(self.u32()?).map_err(|_| DecodeError::BadValue)
    }
    fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.count()?;
        if n > max {
            return Err(DecodeError::BadValue);
        }
        self.take(n)
    }
    fn name(&mut self) -> Result<Name, DecodeError> {
        let n = usize::from(self.u8()?);
        let bytes = self.take(n)?;
        Name::new(bytes).map_err(|_| DecodeError::BadName)
    }
    fn xattr_name(&mut self) -> Result<XattrName, DecodeError> {
        let n = usize::from(self.u8()?);
        let bytes = self.take(n)?;
        XattrName::new(bytes).map_err(|_| DecodeError::BadName)
    }
    fn attr(&mut self) -> Result<Attr, DecodeError> {
        Ok(Attr {
            dev: self.u64()?,
            ino: self.u64()?,
            mode: self.u32()?,
            nlink: self.u64()?,
            uid: self.u32()?,
            gid: self.u32()?,
            rdev: self.u64()?,
            size: self.u64()?,
            blksize: self.u64()?,
            blocks: self.u64()?,
            atime_sec: self.i64()?,
            atime_nsec: self.i64()?,
            mtime_sec: self.i64()?,
            mtime_nsec: self.i64()?,
            ctime_sec: self.i64()?,
            ctime_nsec: self.i64()?,
        })
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new(s.as_bytes()).unwrap()
    }

    fn sample_attr() -> Attr {
        Attr {
            dev: 1,
            ino: 2,
            mode: 0o100644,
            nlink: 3,
            uid: 4,
            gid: 5,
            rdev: 6,
            size: 7,
            blksize: 4096,
            blocks: 8,
            atime_sec: -9,
            atime_nsec: 10,
            mtime_sec: 11,
            mtime_nsec: 12,
            ctime_sec: 13,
            ctime_nsec: 999_999_999,
        }
    }

    fn all_requests() -> Vec<Request> {
        vec![
            Request::Attach,
            Request::Walk {
                dir: 7,
                names: vec![name("a"), name("b c"), name(&"x".repeat(255))],
            },
            Request::Stat { handle: u64::MAX },
            Request::Open {
                handle: 1,
                flags: libc::O_RDWR | libc::O_APPEND,
            },
            Request::Readlink { handle: 2 },
            Request::Getdents {
                handle: 3,
                cookie: 0x1234_5678_9abc,
            },
            Request::StatFs { handle: 4 },
            Request::Close { handle: 5 },
            Request::Create {
                dir: 1,
                name: name("f"),
                flags: libc::O_WRONLY,
                mode: 0o644,
            },
            Request::Mkdir {
                dir: 1,
                name: name("d"),
                mode: 0o755,
            },
            Request::Unlink {
                dir: 1,
                name: name("d"),
                flags: libc::AT_REMOVEDIR,
            },
            Request::Rename {
                old_dir: 1,
                old_name: name("a"),
                new_dir: 2,
                new_name: name("b"),
                flags: RENAME_EXCHANGE,
            },
            Request::Symlink {
                dir: 1,
                name: name("l"),
                target: b"../../x".to_vec(),
            },
            Request::Link {
                dir: 1,
                name: name("h"),
                target: 9,
            },
            Request::SetStat {
                handle: 1,
                attr: SetAttr {
                    mask: SETATTR_MODE | SETATTR_MTIME,
                    mode: 0o600,
                    mtime_sec: 5,
                    mtime_nsec: libc::UTIME_NOW,
                    ..Default::default()
                },
            },
            Request::Mknod {
                dir: 1,
                name: name("fifo"),
                mode: libc::S_IFIFO | 0o640,
                rdev: 0,
            },
            Request::GetXattr {
                handle: 2,
                name: XattrName::new(b"user.a/b").unwrap(),
            },
            Request::SetXattr {
                handle: 2,
                name: XattrName::new(&[b'x'; 255]).unwrap(),
                value: vec![7; XATTR_VALUE_MAX],
                flags: 1,
            },
            Request::ListXattr { handle: 3 },
            Request::RemoveXattr {
                handle: 3,
                name: XattrName::new(b"trusted.t").unwrap(),
            },
            Request::Fsync {
                handle: 4,
                data_only: true,
            },
            Request::Fallocate {
                handle: 5,
                mode: 3,
                offset: 1 << 40,
                len: 4096,
            },
        ]
    }

    fn all_responses() -> Vec<Response> {
        vec![
            Response::Error(Errno(libc::ENOENT)),
            Response::Ok,
            Response::Node {
                handle: 1,
                attr: sample_attr(),
            },
            Response::Walked(vec![(1, sample_attr()), (2, Attr::default())]),
            Response::Walked(vec![]),
            Response::Attr(sample_attr()),
            Response::Opened,
            Response::Created {
                handle: 3,
                attr: sample_attr(),
            },
            Response::Target(b"/etc/passwd".to_vec()),
            Response::Dirents {
                entries: vec![
                    Dirent {
                        ino: 1,
                        d_type: libc::DT_REG,
                        name: b"a".to_vec(),
                    },
                    Dirent {
                        ino: 2,
                        d_type: libc::DT_DIR,
                        name: vec![b'z'; 255],
                    },
                ],
                next_cookie: 42,
                eof: false,
            },
            Response::Dirents {
                entries: vec![],
                next_cookie: 0,
                eof: true,
            },
            Response::StatFs(StatFs {
                fs_type: 0xef53,
                bsize: 4096,
                namelen: 255,
                ..Default::default()
            }),
            Response::Value(b"user.a\0user.b\0".to_vec()),
            Response::Value(vec![]),
        ]
    }

    #[test]
    fn requests_round_trip() {
        for (i, req) in all_requests().into_iter().enumerate() {
            let tag = i as u32 * 77;
            let packet = req.encode(tag).unwrap();
            assert_eq!(Request::decode(&packet), Ok((tag, req)));
        }
    }

    #[test]
    fn responses_round_trip() {
        for (i, resp) in all_responses().into_iter().enumerate() {
            let tag = i as u32 + 1000;
            let packet = resp.encode(tag).unwrap();
            assert_eq!(Response::decode(&packet), Ok((tag, resp)));
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for req in all_requests() {
            let packet = req.encode(1).unwrap();
            for cut in 0..packet.len() {
                assert!(
                    Request::decode(&packet[..cut]).is_err(),
                    "{req:?} cut at {cut}"
                );
                // Also with a header that agrees with the shortened payload.
                if cut >= HEADER_LEN {
                    let mut p = packet[..cut].to_vec();
                    let len = (cut - HEADER_LEN) as u32;
                    p[6..10].copy_from_slice(&len.to_le_bytes());
                    if cut < packet.len() {
                        assert!(Request::decode(&p).is_err(), "{req:?} payload cut at {cut}");
                    }
                }
            }
        }
        for resp in all_responses() {
            let packet = resp.encode(1).unwrap();
            for cut in 0..packet.len() {
                assert!(
                    Response::decode(&packet[..cut]).is_err(),
                    "{resp:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_and_bad_lengths_are_errors() {
        let mut p = Request::Stat { handle: 1 }.encode(1).unwrap();
        p.push(0);
        assert_eq!(Request::decode(&p), Err(DecodeError::LengthMismatch));
        p[6..10].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(Request::decode(&p), Err(DecodeError::TrailingBytes));
        p[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::decode(&p), Err(DecodeError::LengthMismatch));
        assert_eq!(
            Request::decode(&vec![0; MAX_PACKET + 1]),
            Err(DecodeError::TooLong)
        );
    }

    #[test]
    fn unknown_kinds_are_errors() {
        let mut p = Request::Attach.encode(3).unwrap();
        p[4..6].copy_from_slice(&0x7777u16.to_le_bytes());
        assert_eq!(Request::decode(&p), Err(DecodeError::UnknownKind(0x7777)));
        // A reply kind is not a request.
        let p = Response::Ok.encode(3).unwrap();
        assert_eq!(Request::decode(&p), Err(DecodeError::UnknownKind(RESP_OK)));
    }

    #[test]
    fn names_are_single_components() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b", &[b'x'; 256]] {
            assert!(Name::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Name::new(&[b'x'; 256]), Err(Errno(libc::ENAMETOOLONG)));
        assert_eq!(Name::new(b".."), Err(Errno(libc::EINVAL)));
        for good in [
            &b"a"[..],
            b"...",
            b".hidden",
            b"a b",
            &[b'x'; 255],
            &[0xff, 0xfe],
        ] {
            assert!(Name::new(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn bad_names_on_the_wire_are_refused() {
        for bad in [&b".."[..], b".", b"a/b", b""] {
            let mut p = Request::Walk {
                dir: 1,
                names: vec![name("ok")],
            }
            .encode(9)
            .unwrap();
            // Rewrite the one name in place: header, dir, count, then len + bytes.
            let at = HEADER_LEN + 8 + 4;
            p.truncate(at);
            p.push(bad.len() as u8);
            p.extend_from_slice(bad);
            let len = (p.len() - HEADER_LEN) as u32;
            p[6..10].copy_from_slice(&len.to_le_bytes());
            assert_eq!(Request::decode(&p), Err(DecodeError::BadName), "{bad:?}");
        }
    }

    #[test]
    fn oversized_fields_are_refused() {
        let walk = Request::Walk {
            dir: 1,
            names: vec![name("a"); MAX_WALK_NAMES + 1],
        };
        assert_eq!(walk.encode(1), Err(Errno(libc::EINVAL)));
        let long = Request::Symlink {
            dir: 1,
            name: name("l"),
            target: vec![b'a'; 4096],
        };
        assert_eq!(long.encode(1), Err(Errno(libc::ENAMETOOLONG)));
        let big = Request::SetXattr {
            handle: 1,
            name: XattrName::new(b"user.x").unwrap(),
            value: vec![0; XATTR_VALUE_MAX + 1],
            flags: 0,
        };
        assert_eq!(big.encode(1), Err(Errno(libc::E2BIG)));
        assert_eq!(XattrName::new(b"").err(), Some(Errno(libc::ERANGE)));
        assert_eq!(
            XattrName::new(&[b'x'; 256]).err(),
            Some(Errno(libc::ERANGE))
        );
        assert_eq!(XattrName::new(b"user.a\0").err(), Some(Errno(libc::EINVAL)));
        // A walk count claiming more names than allowed.
        let mut p = Request::Walk {
            dir: 1,
            names: vec![name("a")],
        }
        .encode(1)
        .unwrap();
        p[HEADER_LEN + 8..HEADER_LEN + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::decode(&p), Err(DecodeError::BadValue));
        // A dirents count far beyond the bytes present.
        let mut p = Response::Dirents {
            entries: vec![],
            next_cookie: 0,
            eof: true,
        }
        .encode(1)
        .unwrap();
        p[HEADER_LEN + 9..HEADER_LEN + 13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Response::decode(&p), Err(DecodeError::Truncated));
        // Errors must carry a real errno.
        let p = Response::Error(Errno(0)).encode(1).unwrap();
        assert_eq!(Response::decode(&p), Err(DecodeError::BadValue));
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator; no dependency needed.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if p.len() >= HEADER_LEN {
                // Make the header plausible often, so payload decoders get exercised.
                let kind = (next() % 24) as u16 | if next() % 2 == 0 { 0x8000 } else { 0 };
                p[4..6].copy_from_slice(&kind.to_le_bytes());
                if next() % 2 == 0 {
                    let l = (p.len() - HEADER_LEN) as u32;
                    p[6..10].copy_from_slice(&l.to_le_bytes());
                }
            }
            let _ = Request::decode(&p);
            let _ = Response::decode(&p);
        }
    }
}
