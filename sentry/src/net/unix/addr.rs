//! `AF_UNIX` addresses (`unix(7)`, "Address format") and the sandbox's name tables:
//! abstract names, and the socket inodes that path names were bound to.
#![deny(unsafe_code)]

use super::Endpoint;
use crate::error::Result;
use crate::{errno, return_errno};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// `offsetof(struct sockaddr_un, sun_path)`.
pub const SUN_PATH_OFFSET: usize = 2;
/// `sizeof(struct sockaddr_un)`.
pub const SOCKADDR_UN_LEN: usize = 110;

/// A bound name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A filesystem path, as given to `bind` (without the terminating NUL).
    Path(Vec<u8>),
    /// An abstract name: the bytes after the leading NUL, all of them significant.
    Abstract(Vec<u8>),
}

/// What a `sockaddr` given to `bind`/`connect`/`sendto` names.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Addr(UnixAddr),
    /// Only `sun_family`: `bind` picks an abstract name (autobind).
    Autobind,
    /// `AF_UNSPEC`: `connect` dissolves a datagram association.
    Unspec,
}

/// Decode a `sockaddr_un` (Linux's `unix_validate_addr` and `unix_mkname_bsd`).
pub fn parse(raw: &[u8]) -> Result<Parsed> {
    let family = raw
        .get(..2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or(errno!(EINVAL))?;
    if family == libc::AF_UNSPEC as u16 {
        return Ok(Parsed::Unspec);
    }
    if family != libc::AF_UNIX as u16 || raw.len() > SOCKADDR_UN_LEN {
        return_errno!(EINVAL);
    }
    let path = raw.get(SUN_PATH_OFFSET..).unwrap_or(&[]);
    match path.first() {
        None => Ok(Parsed::Autobind),
        Some(0) => Ok(Parsed::Addr(UnixAddr::Abstract(
            path.get(1..).unwrap_or(&[]).to_vec(),
        ))),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            Ok(Parsed::Addr(UnixAddr::Path(
                path.get(..end).unwrap_or(&[]).to_vec(),
            )))
        }
    }
}

/// The `sockaddr_un` bytes for `addr` (just the family when unbound), as `getsockname`
/// and `recvfrom` report them: a path name ends with its NUL.
pub fn encode(addr: Option<&UnixAddr>) -> Vec<u8> {
    let mut v = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    match addr {
        None => {}
        Some(UnixAddr::Path(p)) => {
            v.extend_from_slice(p);
            v.push(0);
        }
        Some(UnixAddr::Abstract(n)) => {
            v.push(0);
            v.extend_from_slice(n);
        }
    }
    v
}

/// The inode a path name was bound to: (device, inode number).
pub type NodeKey = (u64, u64);

#[derive(Default)]
struct Names {
    abstract_names: HashMap<Vec<u8>, Weak<Endpoint>>,
    nodes: HashMap<NodeKey, Weak<Endpoint>>,
    next_auto: u32,
}

fn names() -> MutexGuard<'static, Names> {
    static NAMES: OnceLock<Mutex<Names>> = OnceLock::new();
    NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Claim the abstract name `name` for `ep`; `EADDRINUSE` if a live socket holds it.
pub fn bind_abstract(name: &[u8], ep: &Arc<Endpoint>) -> Result<()> {
    let mut n = names();
    n.abstract_names.retain(|_, w| w.strong_count() > 0);
    if n.abstract_names.contains_key(name) {
        return_errno!(EADDRINUSE);
    }
    n.abstract_names.insert(name.to_vec(), Arc::downgrade(ep));
    Ok(())
}

/// Pick a free five-hex-digit abstract name for `ep` (Linux's `unix_autobind`).
pub fn autobind(ep: &Arc<Endpoint>) -> Result<Vec<u8>> {
    let mut n = names();
    n.abstract_names.retain(|_, w| w.strong_count() > 0);
    for _ in 0..0x100000u32 {
        let cand = format!("{:05x}", n.next_auto & 0xfffff).into_bytes();
        n.next_auto = n.next_auto.wrapping_add(1);
        if !n.abstract_names.contains_key(&cand) {
            n.abstract_names.insert(cand.clone(), Arc::downgrade(ep));
            return Ok(cand);
        }
    }
    Err(errno!(ENOSPC))
}

/// The live socket bound to the abstract name `name`.
pub fn find_abstract(name: &[u8]) -> Option<Arc<Endpoint>> {
    names().abstract_names.get(name).and_then(Weak::upgrade)
}

/// Record that the socket inode `key` belongs to `ep`.
pub fn bind_node(key: NodeKey, ep: &Arc<Endpoint>) {
    let mut n = names();
    n.nodes.retain(|_, w| w.strong_count() > 0);
    n.nodes.insert(key, Arc::downgrade(ep));
}

/// The live socket bound to the socket inode `key`.
pub fn find_node(key: NodeKey) -> Option<Arc<Endpoint>> {
    names().nodes.get(&key).and_then(Weak::upgrade)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(path: &[u8]) -> Vec<u8> {
        let mut v = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(path);
        v
    }

    #[test]
    fn paths_abstract_names_and_autobind() {
        assert_eq!(parse(&raw(b"")).ok(), Some(Parsed::Autobind));
        assert_eq!(
            parse(&raw(b"/tmp/s\0junk")).ok(),
            Some(Parsed::Addr(UnixAddr::Path(b"/tmp/s".to_vec())))
        );
        assert_eq!(
            parse(&raw(b"\0ab\0c")).ok(),
            Some(Parsed::Addr(UnixAddr::Abstract(b"ab\0c".to_vec())))
        );
        assert!(parse(&[1]).is_err());
        assert!(parse(&raw(&[b'a'; 200])).is_err());
        let mut inet = raw(b"x");
        inet[0] = libc::AF_INET as u8;
        assert!(parse(&inet).is_err());
        assert_eq!(encode(Some(&UnixAddr::Path(b"/a".to_vec()))).len(), 5);
        assert_eq!(encode(None).len(), 2);
    }
}
